//! NLA: the server side of CredSSP with NTLMv2, bare or in SPNEGO, driven frame by frame
//! (sans-IO). The protocol lives in [`super::nla`]; this is the connection's view of it:
//! one account, a failed login told apart from a broken exchange.

use std::time::{SystemTime, UNIX_EPOCH};

use super::nla::{self, NlaError, Outcome, Server};

#[derive(Debug)]
pub enum CredsspError {
    /// The login failed: wrong password or user, or anything wrong after our CHALLENGE.
    LogonFailed,
    /// The client sent something that is not CredSSP, or the exchange broke before a login.
    Protocol(String),
}

impl std::fmt::Display for CredsspError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredsspError::LogonFailed => write!(f, "wrong user name or password"),
            CredsspError::Protocol(reason) => write!(f, "credssp failed: {reason}"),
        }
    }
}

pub enum Step {
    /// Send these bytes and wait for the next TsRequest.
    Continue,
    /// Authentication succeeded (the reply, if any, is already written).
    Done,
}

pub struct Credssp {
    server: Server,
    failure: Option<&'static str>,
}

/// 100 ns intervals between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

impl Credssp {
    /// Reads the wall clock once (the CHALLENGE's timestamp) and draws the server challenge.
    pub fn new(
        user: &str,
        password: &str,
        server_public_key: Vec<u8>,
        client_name: String,
    ) -> Result<Self, CredsspError> {
        let mut challenge = [0u8; 8];
        getrandom::fill(&mut challenge)
            .map_err(|e| CredsspError::Protocol(format!("no random challenge: {e}")))?;
        let since_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos() / 100).unwrap_or(u64::MAX));
        let filetime = FILETIME_UNIX_EPOCH.saturating_add(since_unix);
        Ok(Self::with_challenge(
            user,
            password,
            server_public_key,
            &client_name,
            challenge,
            filetime,
        ))
    }

    /// A fixed challenge and time (tests, fuzzing).
    pub fn with_challenge(
        user: &str,
        password: &str,
        server_public_key: Vec<u8>,
        name: &str,
        challenge: [u8; 8],
        filetime: u64,
    ) -> Self {
        Credssp {
            server: Server::new(user, password, server_public_key, name, challenge, filetime),
            failure: None,
        }
    }

    /// Length of the TsRequest at the start of `buf`, once enough bytes are there.
    pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, CredsspError> {
        nla::ts_request::frame_len(buf).map_err(|e| match e {
            NlaError::Protocol(reason) => {
                CredsspError::Protocol(format!("not a TsRequest: {reason}"))
            }
            NlaError::Logon(_) => CredsspError::LogonFailed,
        })
    }

    /// Feeds one whole TsRequest; appends the reply (also the error reply on failure) to `out`.
    pub fn step(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<Step, CredsspError> {
        match self.server.step(frame, out) {
            Ok(Outcome::Continue) => Ok(Step::Continue),
            Ok(Outcome::Done) => Ok(Step::Done),
            Err(NlaError::Logon(reason)) => {
                self.failure = Some(reason);
                Err(CredsspError::LogonFailed)
            }
            Err(NlaError::Protocol(reason)) => Err(CredsspError::Protocol(reason)),
        }
    }

    /// Why the last login failed, for the log (never for the client).
    pub fn failure_reason(&self) -> Option<&'static str> {
        self.failure
    }
}

/// The 4-byte Early User Authorization Result of HYBRID_EX (MS-RDPBCGR 2.2.10.2).
pub fn early_user_auth_result(success: bool, out: &mut Vec<u8>) {
    let code: u32 = if success { 0 } else { 5 };
    out.extend_from_slice(&code.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdp::nla::client::{Client, Shape};
    use crate::rdp::nla::ntlm::{AV_TIMESTAMP, find_av};
    use crate::rdp::nla::ts_request::TsRequest;

    /// The CHALLENGE carries the wall clock as a FILETIME, and each connection its own challenge.
    #[test]
    fn challenge_has_now_and_a_fresh_nonce() {
        let mut challenges = Vec::new();
        for _ in 0..2 {
            let mut credssp = Credssp::new("admin", "pw", vec![4; 65], String::new()).unwrap();
            let mut out = Vec::new();
            let first = Client::new("admin", "pw", &[4; 65], 6, Shape::Bare).first();
            assert!(matches!(credssp.step(&first, &mut out), Ok(Step::Continue)));
            let token = TsRequest::decode(&out).unwrap().nego_token.unwrap();
            let at = u32::from_le_bytes(token[44..48].try_into().unwrap()) as usize;
            let len = usize::from(u16::from_le_bytes(token[40..42].try_into().unwrap()));
            let stamp = find_av(&token[at..at + len], AV_TIMESTAMP).unwrap();
            let stamp = u64::from_le_bytes(stamp.try_into().unwrap());
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let stamp_unix = (stamp - FILETIME_UNIX_EPOCH) / 10_000_000;
            assert!(now.abs_diff(stamp_unix) < 60, "{stamp_unix} vs {now}");
            challenges.push(token[24..32].to_vec());
        }
        assert_ne!(challenges[0], challenges[1]);
    }
}
