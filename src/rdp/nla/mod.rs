//! Our own CredSSP server (MS-CSSP) with NTLMv2 (MS-NLMP), bare or inside SPNEGO (MS-SPNG).
//! Sans-IO: one TSRequest in, the reply out; the clock and the random challenge are given.
//!
//! Rules of this layer: no indexing (every field is reached through `get` and checked
//! lengths), so no client input panics; once our CHALLENGE is out, every failure is a
//! failed login (the caller counts it), never a protocol error a guesser could hide behind.

#![deny(clippy::indexing_slicing)]

pub mod client;
pub mod crypto;
pub mod der;
pub mod ntlm;
pub mod spnego;
pub mod ts_request;

#[cfg(test)]
mod tests;

use sha2::{Digest as _, Sha256};

use crypto::{Direction, ct_eq};
use ntlm::Account;
use ts_request::{STATUS_LOGON_FAILURE, TsRequest, VERSION};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NlaError {
    /// Not CredSSP, or a shape we do not take, before the client tried to log in.
    Protocol(String),
    /// The login attempt failed; the reason is for the log, never for the client.
    Logon(&'static str),
}

impl NlaError {
    pub fn der(what: &'static str) -> Self {
        NlaError::Protocol(format!("der: {what}"))
    }
    pub fn protocol(what: &str) -> Self {
        NlaError::Protocol(what.to_owned())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    /// The client proved the password and sent matching credentials.
    Done,
}

const CLIENT_TO_SERVER: &[u8] = b"CredSSP Client-To-Server Binding Hash\0";
const SERVER_TO_CLIENT: &[u8] = b"CredSSP Server-To-Client Binding Hash\0";

/// How the client wraps its NTLM messages; we answer in the same wrapping.
#[derive(Clone)]
enum Wrap {
    Bare,
    Spnego {
        mech_types: Vec<u8>,
        ntlm_first: bool,
    },
}

enum State {
    Start,
    /// SPNEGO with another mech first: NTLM selected, its NEGOTIATE still to come.
    AwaitNegotiate(Wrap),
    AwaitAuthenticate {
        wrap: Wrap,
        negotiate: Vec<u8>,
        challenge: Vec<u8>,
    },
    AwaitCredentials {
        from_client: Box<Direction>,
    },
    Finished,
}

pub struct Server {
    user: String,
    password: String,
    public_key: Vec<u8>,
    name: String,
    server_challenge: [u8; 8],
    filetime: u64,
    state: State,
    version: u32,
}

impl Server {
    /// `filetime`: now, in 100 ns since 1601 (the CHALLENGE's MsvAvTimestamp).
    pub fn new(
        user: &str,
        password: &str,
        public_key: Vec<u8>,
        name: &str,
        server_challenge: [u8; 8],
        filetime: u64,
    ) -> Self {
        let name: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(15)
            .collect::<String>()
            .to_ascii_uppercase();
        Server {
            user: user.to_owned(),
            password: password.to_owned(),
            public_key,
            name: if name.is_empty() {
                "THINSHADOW".into()
            } else {
                name
            },
            server_challenge,
            filetime,
            state: State::Start,
            version: VERSION,
        }
    }

    /// One TSRequest in; the reply (also the errorCode reply of a failed login) appended.
    pub fn step(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<Outcome, NlaError> {
        let trying = matches!(
            self.state,
            State::AwaitAuthenticate { .. } | State::AwaitCredentials { .. }
        );
        let state = std::mem::replace(&mut self.state, State::Finished);
        let result = self.advance(state, frame, out);
        match result {
            Err(NlaError::Protocol(_)) if trying => self.fail("malformed request", out),
            Err(NlaError::Logon(reason)) => self.fail(reason, out),
            other => other,
        }
    }

    fn fail(&mut self, reason: &'static str, out: &mut Vec<u8>) -> Result<Outcome, NlaError> {
        self.state = State::Finished;
        TsRequest {
            version: self.version,
            error_code: Some(STATUS_LOGON_FAILURE),
            ..TsRequest::default()
        }
        .encode(out);
        Err(NlaError::Logon(reason))
    }

    fn reply(&self, token: Vec<u8>, out: &mut Vec<u8>) {
        TsRequest {
            version: self.version,
            nego_token: Some(token),
            ..TsRequest::default()
        }
        .encode(out);
    }

    fn advance(
        &mut self,
        state: State,
        frame: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Outcome, NlaError> {
        let req = TsRequest::decode(frame)?;
        if req.version < 2 {
            return Err(NlaError::protocol("CredSSP version 1"));
        }
        self.version = req.version.min(VERSION);
        match state {
            State::Start => self.start(&req, out),
            State::AwaitNegotiate(wrap) => {
                let token = req
                    .nego_token
                    .ok_or_else(|| NlaError::protocol("no negoToken"))?;
                let negotiate = spnego::parse_resp(&token)?
                    .token
                    .ok_or_else(|| NlaError::protocol("negTokenResp without the NTLM NEGOTIATE"))?;
                self.challenge(wrap, negotiate, false, out)
            }
            State::AwaitAuthenticate {
                wrap,
                negotiate,
                challenge,
            } => self.authenticate(&req, wrap, &negotiate, &challenge, out),
            State::AwaitCredentials { mut from_client } => {
                let sealed = req.auth_info.ok_or(NlaError::Logon("no authInfo"))?;
                let plain = from_client
                    .unseal(&sealed)
                    .ok_or(NlaError::Logon("authInfo does not unseal"))?;
                let creds = ts_request::decode_credentials(&plain)
                    .map_err(|_| NlaError::Logon("bad TSCredentials"))?;
                let user = ntlm::utf16_string(&creds.user)
                    .ok_or(NlaError::Logon("credential user name"))?;
                if !ntlm::user_matches(&user, &self.user) {
                    return Err(NlaError::Logon("credentials name another user"));
                }
                // The same password the NTLM proof showed; a client that sends another is broken.
                if !ct_eq(&creds.password, &crypto::utf16le(&self.password)) {
                    return Err(NlaError::Logon("credentials carry another password"));
                }
                self.state = State::Finished;
                Ok(Outcome::Done)
            }
            State::Finished => Err(NlaError::protocol("request after the end of CredSSP")),
        }
    }

    fn start(&mut self, req: &TsRequest, out: &mut Vec<u8>) -> Result<Outcome, NlaError> {
        let token = req
            .nego_token
            .as_deref()
            .ok_or_else(|| NlaError::protocol("first TSRequest without a negoToken"))?;
        if !spnego::is_spnego(token) {
            return self.challenge(Wrap::Bare, token.to_vec(), false, out);
        }
        let init = spnego::parse_init(token)?;
        if !init.offers_ntlm {
            self.reply(spnego::resp(spnego::REJECT, false, None, None), out);
            return Err(NlaError::protocol(
                "SPNEGO without NTLM (Kerberos or NEGOEX only)",
            ));
        }
        let wrap = Wrap::Spnego {
            mech_types: init.mech_types,
            ntlm_first: init.ntlm_first,
        };
        match init.ntlm_token {
            Some(negotiate) => self.challenge(wrap, negotiate, true, out),
            None => {
                // The optimistic token (if any) was for a mech we do not do: select NTLM
                // and let the client start it.
                self.reply(
                    spnego::resp(spnego::ACCEPT_INCOMPLETE, true, None, None),
                    out,
                );
                self.state = State::AwaitNegotiate(wrap);
                Ok(Outcome::Continue)
            }
        }
    }

    fn challenge(
        &mut self,
        wrap: Wrap,
        negotiate: Vec<u8>,
        select: bool,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, NlaError> {
        let flags = ntlm::parse_negotiate(&negotiate)?;
        let challenge =
            ntlm::build_challenge(flags, &self.server_challenge, self.filetime, &self.name);
        let token = match wrap {
            Wrap::Bare => challenge.clone(),
            Wrap::Spnego { .. } => {
                spnego::resp(spnego::ACCEPT_INCOMPLETE, select, Some(&challenge), None)
            }
        };
        self.reply(token, out);
        self.state = State::AwaitAuthenticate {
            wrap,
            negotiate,
            challenge,
        };
        Ok(Outcome::Continue)
    }

    fn authenticate(
        &mut self,
        req: &TsRequest,
        wrap: Wrap,
        negotiate: &[u8],
        challenge: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Outcome, NlaError> {
        let token = req
            .nego_token
            .as_deref()
            .ok_or(NlaError::Logon("no AUTHENTICATE"))?;
        let (authenticate, client_mic) = match &wrap {
            Wrap::Bare => (token.to_vec(), None),
            Wrap::Spnego { .. } => {
                let resp =
                    spnego::parse_resp(token).map_err(|_| NlaError::Logon("bad negTokenResp"))?;
                (
                    resp.token
                        .ok_or(NlaError::Logon("negTokenResp without AUTHENTICATE"))?,
                    resp.mic,
                )
            }
        };
        let account = Account {
            user: &self.user,
            password: &self.password,
        };
        let auth = ntlm::verify_authenticate(
            &authenticate,
            negotiate,
            challenge,
            &self.server_challenge,
            &account,
        )
        .map_err(NlaError::Logon)?;
        let mut from_client = Direction::new(&auth.exported_key, auth.flags, true);
        let mut to_client = Direction::new(&auth.exported_key, auth.flags, false);

        // SPNEGO: the client's mechListMIC protects its mech list (required when NTLM was not
        // its first choice, else a downgrade could pass); ours answers it.
        let mut final_token = None;
        if let Wrap::Spnego {
            mech_types,
            ntlm_first,
        } = &wrap
        {
            let our_mic = match client_mic {
                Some(mic) => {
                    if !from_client.verify(mech_types, &mic) {
                        return Err(NlaError::Logon("wrong mechListMIC"));
                    }
                    from_client.reset_handle();
                    true
                }
                None if !ntlm_first => {
                    return Err(NlaError::Logon("no mechListMIC after a mech downgrade"));
                }
                None => false,
            };
            let mic = our_mic.then(|| {
                let mic = to_client.sign(mech_types);
                to_client.reset_handle();
                mic
            });
            final_token = Some(spnego::resp(
                spnego::ACCEPT_COMPLETED,
                false,
                None,
                mic.as_ref().map(|m| &m[..]),
            ));
        }

        let sealed = req
            .pub_key_auth
            .as_deref()
            .ok_or(NlaError::Logon("no pubKeyAuth"))?;
        let plain = from_client
            .unseal(sealed)
            .ok_or(NlaError::Logon("pubKeyAuth does not unseal"))?;
        let answer = if self.version >= 5 {
            let nonce = req
                .client_nonce
                .as_deref()
                .ok_or(NlaError::Logon("no clientNonce"))?;
            let expected = binding_hash(CLIENT_TO_SERVER, nonce, &self.public_key);
            if !ct_eq(&plain, &expected) {
                return Err(NlaError::Logon("pubKeyAuth hash is not our key's"));
            }
            binding_hash(SERVER_TO_CLIENT, nonce, &self.public_key).to_vec()
        } else {
            if !ct_eq(&plain, &self.public_key) {
                return Err(NlaError::Logon("pubKeyAuth is not our key"));
            }
            let mut echo = plain;
            if let Some(first) = echo.first_mut() {
                *first = first.wrapping_add(1);
            }
            echo
        };
        TsRequest {
            version: self.version,
            nego_token: final_token,
            pub_key_auth: Some(to_client.seal(&answer)),
            ..TsRequest::default()
        }
        .encode(out);
        self.state = State::AwaitCredentials {
            from_client: Box::new(from_client),
        };
        Ok(Outcome::Continue)
    }
}

pub fn binding_hash(magic: &[u8], nonce: &[u8], public_key: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(magic);
    h.update(nonce);
    h.update(public_key);
    h.finalize().into()
}

/// Client-to-server binding hash, for the test client.
pub fn client_binding_hash(nonce: &[u8], public_key: &[u8]) -> [u8; 32] {
    binding_hash(CLIENT_TO_SERVER, nonce, public_key)
}

/// Server-to-client binding hash, for the test client.
pub fn server_binding_hash(nonce: &[u8], public_key: &[u8]) -> [u8; 32] {
    binding_hash(SERVER_TO_CLIENT, nonce, public_key)
}
