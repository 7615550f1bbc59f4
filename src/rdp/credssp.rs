//! NLA: the server side of CredSSP with NTLM, driven frame by frame (sans-IO).
//!
//! ironrdp-acceptor's own `CredsspSequence` borrows its identity, which does not fit a
//! connection struct that owns everything; this is the same few steps over sspi's
//! `CredSspServer` with a proxy that owns the one account we accept.

use std::io;

use ironrdp_connector::sspi::credssp::{
    CredSspServer, CredentialsProxy, EarlyUserAuthResult, NStatusCode, ServerMode, ServerState,
    TsRequest,
};
use ironrdp_connector::sspi::{self, AuthIdentity, Username, ntlm::NtlmConfig};

/// The one account the agent accepts. The user name is matched without regard to case
/// (mstsc may change it) and ignoring any domain part.
struct OneAccount {
    user: String,
    password: String,
}

impl OneAccount {
    fn identity_for(&self, username: &Username) -> io::Result<AuthIdentity> {
        if !username.account_name().eq_ignore_ascii_case(&self.user) {
            return Err(io::Error::other("unknown user"));
        }
        Ok(AuthIdentity {
            username: username.clone(),
            password: self.password.clone().into(),
        })
    }
}

impl CredentialsProxy for OneAccount {
    type AuthenticationData = AuthIdentity;

    fn auth_data_by_user(&mut self, username: &Username) -> io::Result<AuthIdentity> {
        self.identity_for(username)
    }

    fn auth_data(&mut self) -> io::Result<Vec<AuthIdentity>> {
        let username = Username::new(&self.user, None).map_err(io::Error::other)?;
        Ok(vec![self.identity_for(&username)?])
    }
}

#[derive(Debug)]
pub enum CredsspError {
    /// The client's proof did not match: wrong password or unknown user.
    LogonFailed,
    /// The client sent something that is not CredSSP, or the exchange broke.
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
    server: CredSspServer<OneAccount>,
}

impl Credssp {
    pub fn new(
        user: &str,
        password: &str,
        server_public_key: Vec<u8>,
        client_name: String,
    ) -> Result<Self, CredsspError> {
        let account = OneAccount {
            user: user.to_owned(),
            password: password.to_owned(),
        };
        let server = CredSspServer::new(
            server_public_key,
            account,
            ServerMode::Ntlm(NtlmConfig::new(client_name)),
        )
        .map_err(|e| CredsspError::Protocol(e.to_string()))?;
        Ok(Credssp { server })
    }

    /// Length of the TsRequest at the start of `buf`, once enough bytes are there.
    pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, CredsspError> {
        match TsRequest::read_length(buf) {
            Ok(len) => Ok(Some(len)),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(CredsspError::Protocol(format!("not a TsRequest: {e}"))),
        }
    }

    /// Feeds one whole TsRequest; appends the reply (also the error reply on failure) to `out`.
    pub fn step(&mut self, frame: &[u8], out: &mut Vec<u8>) -> Result<Step, CredsspError> {
        let request = TsRequest::from_buffer(frame)
            .map_err(|e| CredsspError::Protocol(format!("bad TsRequest: {e}")))?;
        // NTLM never suspends for a network request (only Kerberos would).
        let result = self.server.process(request).resolve_to_result();
        match result {
            Ok(ServerState::ReplyNeeded(reply)) => {
                write_ts_request(&reply, out)?;
                Ok(Step::Continue)
            }
            Ok(ServerState::Finished(_identity)) => Ok(Step::Done),
            Err(error) => {
                let logon_denied = error.error.error_type == sspi::ErrorKind::LogonDenied;
                if let Some(mut reply) = error.ts_request.map(|boxed| *boxed) {
                    if logon_denied {
                        // As Windows does, so clients say "wrong password" and may ask again.
                        reply.error_code = Some(NStatusCode::LOGON_FAILURE);
                    }
                    write_ts_request(&reply, out)?;
                }
                if logon_denied {
                    Err(CredsspError::LogonFailed)
                } else {
                    Err(CredsspError::Protocol(error.error.to_string()))
                }
            }
        }
    }
}

fn write_ts_request(request: &TsRequest, out: &mut Vec<u8>) -> Result<(), CredsspError> {
    let len = usize::from(
        request
            .buffer_len()
            .map_err(|e| CredsspError::Protocol(e.to_string()))?,
    );
    let start = out.len();
    out.resize(start + len, 0);
    request
        .encode_ts_request(&mut out[start..])
        .map_err(|e| CredsspError::Protocol(e.to_string()))
}

/// The 4-byte Early User Authorization Result of HYBRID_EX.
pub fn early_user_auth_result(success: bool, out: &mut Vec<u8>) {
    let result = if success {
        EarlyUserAuthResult::Success
    } else {
        EarlyUserAuthResult::AccessDenied
    };
    // Writing into a Vec cannot fail.
    let _ = result.to_buffer(&mut *out);
}
