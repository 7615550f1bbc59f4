//! A CredSSP/NTLMv2 client, for the tests and the fuzz target only: it plays a real client
//! (bare NTLM or SPNEGO in the shapes mstsc and others send) and can break chosen fields,
//! so the server's code after the NTLM proof is reached and attacked.

#![allow(
    clippy::indexing_slicing,
    reason = "test client; each index follows a length check"
)]

use super::crypto::{self, Direction, FLAG_KEY_EXCH, hmac_md5, ntowfv2, utf16le};
use super::ntlm::{self, AV_EOL, AV_FLAG_MIC, AV_FLAGS, AV_TIMESTAMP, MIC_OFFSET};
use super::spnego;
use super::ts_request::{self, PasswordCreds, TsRequest};

/// The wrappings real clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// FreeRDP 2, IronRDP, impacket.
    Bare,
    /// aardwolf: NTLM alone, its NEGOTIATE as the optimistic token.
    SpnegoNtlm,
    /// Windows 11 mstsc: NEGOEX first with an optimistic NEGOEX token, then NTLM.
    SpnegoNegoexFirst,
    /// Kerberos first (with a token), then NTLM.
    SpnegoKerberosFirst,
}

/// What the client does wrong on purpose.
#[derive(Clone, Debug, Default)]
pub struct Tweaks {
    pub no_mic: bool,
    pub wrong_mic: bool,
    pub wrong_mech_list_mic: bool,
    pub no_mech_list_mic: bool,
    /// Replaces the sealed pubKeyAuth with these bytes.
    pub pub_key_auth: Option<Vec<u8>>,
    /// Replaces the sealed authInfo with these bytes.
    pub auth_info: Option<Vec<u8>>,
    /// XORs a byte of the AUTHENTICATE message (index taken modulo its length).
    pub flip_authenticate: Option<(usize, u8)>,
    /// Cuts the AUTHENTICATE message to this many bytes.
    pub cut_authenticate: Option<usize>,
    /// Names another user in TSPasswordCreds.
    pub creds_user: Option<String>,
    pub no_key_exch: bool,
}

enum Stage {
    Fresh,
    SentInit,
    SentNegotiate,
    SentAuthenticate {
        from_server: Box<Direction>,
        to_server: Box<Direction>,
    },
    SentCredentials,
}

pub struct Client {
    pub user: String,
    pub domain: String,
    pub password: String,
    pub version: u32,
    pub shape: Shape,
    pub tweaks: Tweaks,
    public_key: Vec<u8>,
    negotiate: Vec<u8>,
    mech_types: Vec<u8>,
    stage: Stage,
}

const NONCE: [u8; 32] = [0x4e; 32];
const CLIENT_FLAGS: u32 = 0xe208_8297;

impl Client {
    pub fn new(user: &str, password: &str, public_key: &[u8], version: u32, shape: Shape) -> Self {
        let mut negotiate = ntlm::SIGNATURE.to_vec();
        negotiate.extend_from_slice(&1u32.to_le_bytes());
        negotiate.extend_from_slice(&CLIENT_FLAGS.to_le_bytes());
        negotiate.extend_from_slice(&[0; 16]);
        Client {
            user: user.into(),
            domain: String::new(),
            password: password.into(),
            version,
            shape,
            tweaks: Tweaks::default(),
            public_key: public_key.to_vec(),
            negotiate,
            mech_types: Vec::new(),
            stage: Stage::Fresh,
        }
    }

    fn request(&self, token: Option<Vec<u8>>) -> TsRequest {
        TsRequest {
            version: self.version,
            nego_token: token,
            ..TsRequest::default()
        }
    }

    /// The first TSRequest.
    pub fn first(&mut self) -> Vec<u8> {
        let token = match self.shape {
            Shape::Bare => self.negotiate.clone(),
            Shape::SpnegoNtlm => {
                let (token, mechs) = spnego::init(&[spnego::NTLM], Some(&self.negotiate));
                self.mech_types = mechs;
                token
            }
            Shape::SpnegoNegoexFirst | Shape::SpnegoKerberosFirst => {
                let (first, other): (&[u8], &[u8]) = if self.shape == Shape::SpnegoNegoexFirst {
                    (spnego::NEGOEX, b"NEGOEXTS\0\0\0\0optimistic negoex token")
                } else {
                    (spnego::MS_KERBEROS, &[0x60, 0x03, 0x06, 0x01, 0x00])
                };
                let (token, mechs) = spnego::init(&[first, spnego::NTLM], Some(other));
                self.mech_types = mechs;
                token
            }
        };
        self.stage = Stage::SentInit;
        encode(&self.request(Some(token)))
    }

    /// The next TSRequest, given the server's reply; an error when the server refused.
    pub fn next(&mut self, reply: &[u8]) -> Result<Vec<u8>, String> {
        let reply = TsRequest::decode(reply).map_err(|e| format!("{e:?}"))?;
        if let Some(code) = reply.error_code {
            return Err(format!("errorCode {code:#010x}"));
        }
        match std::mem::replace(&mut self.stage, Stage::SentCredentials) {
            Stage::SentInit | Stage::SentNegotiate => {
                let token = reply.nego_token.ok_or("no negoToken")?;
                let challenge = if self.shape == Shape::Bare {
                    token
                } else {
                    let resp = spnego::parse_resp(&token).map_err(|e| format!("{e:?}"))?;
                    match resp.token {
                        Some(t) => t,
                        None => {
                            // NTLM was selected without a token: now send our NEGOTIATE.
                            self.stage = Stage::SentNegotiate;
                            let t = spnego::client_resp(Some(&self.negotiate), None);
                            return Ok(encode(&self.request(Some(t))));
                        }
                    }
                };
                self.authenticate(&challenge)
            }
            Stage::SentAuthenticate {
                mut from_server,
                mut to_server,
            } => {
                if self.shape != Shape::Bare {
                    let token = reply.nego_token.ok_or("no final negTokenResp")?;
                    let resp = spnego::parse_resp(&token).map_err(|e| format!("{e:?}"))?;
                    if resp.state != Some(spnego::ACCEPT_COMPLETED) {
                        return Err("SPNEGO not completed".into());
                    }
                    if let Some(mic) = resp.mic {
                        if !from_server.verify(&self.mech_types, &mic) {
                            return Err("server mechListMIC wrong".into());
                        }
                        from_server.reset_handle();
                    }
                }
                let sealed = reply.pub_key_auth.ok_or("no pubKeyAuth")?;
                let plain = from_server
                    .unseal(&sealed)
                    .ok_or("server pubKeyAuth does not unseal")?;
                let expected = if self.version >= 5 {
                    super::server_binding_hash(&NONCE, &self.public_key).to_vec()
                } else {
                    let mut k = self.public_key.clone();
                    if let Some(b) = k.first_mut() {
                        *b = b.wrapping_add(1);
                    }
                    k
                };
                if plain != expected {
                    return Err("server pubKeyAuth is not the expected one".into());
                }
                let creds = PasswordCreds {
                    domain: utf16le(&self.domain),
                    user: utf16le(self.tweaks.creds_user.as_deref().unwrap_or(&self.user)),
                    password: utf16le(&self.password),
                };
                let sealed = to_server.seal(&ts_request::encode_credentials(&creds));
                let req = TsRequest {
                    auth_info: Some(self.tweaks.auth_info.clone().unwrap_or(sealed)),
                    ..self.request(None)
                };
                Ok(encode(&req))
            }
            Stage::Fresh | Stage::SentCredentials => Err("nothing more to send".into()),
        }
    }

    fn authenticate(&mut self, challenge: &[u8]) -> Result<Vec<u8>, String> {
        let server_challenge: [u8; 8] = challenge
            .get(24..32)
            .and_then(|c| c.try_into().ok())
            .ok_or("short CHALLENGE")?;
        let mut flags = challenge
            .get(20..24)
            .and_then(|f| f.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or("short CHALLENGE")?;
        if self.tweaks.no_key_exch {
            flags &= !FLAG_KEY_EXCH;
        }
        let info_len = challenge
            .get(40..42)
            .map_or(0, |b| usize::from(u16::from_le_bytes([b[0], b[1]])));
        let info_at = challenge
            .get(44..48)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
        let info = challenge
            .get(info_at..info_at + info_len)
            .ok_or("target info out of bounds")?;
        let time = ntlm::find_av(info, AV_TIMESTAMP)
            .unwrap_or(&[0; 8])
            .to_vec();

        // Our AV pairs: the server's, less its EOL, plus MsvAvFlags when a MIC is sent.
        let mut pairs = Vec::new();
        let mut rest = info;
        while let (Some(id), Some(len)) = (rest.get(0..2), rest.get(2..4)) {
            let id = u16::from_le_bytes([id[0], id[1]]);
            let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
            if id == AV_EOL {
                break;
            }
            pairs.extend_from_slice(rest.get(..4 + len).ok_or("bad AV pair")?);
            rest = rest.get(4 + len..).ok_or("bad AV pair")?;
        }
        let mic = !self.tweaks.no_mic;
        if mic {
            pairs.extend_from_slice(&AV_FLAGS.to_le_bytes());
            pairs.extend_from_slice(&4u16.to_le_bytes());
            pairs.extend_from_slice(&AV_FLAG_MIC.to_le_bytes());
        }
        pairs.extend_from_slice(&[0; 4]);

        let mut temp = vec![1, 1, 0, 0, 0, 0, 0, 0];
        temp.extend_from_slice(&time);
        temp.extend_from_slice(&[0xaa; 8]);
        temp.extend_from_slice(&[0; 4]);
        temp.extend_from_slice(&pairs);
        temp.extend_from_slice(&[0; 4]);
        let key = ntowfv2(&self.password, &self.user, &self.domain);
        let proof = hmac_md5(&key, &[&server_challenge, &temp]);
        let mut nt = proof.to_vec();
        nt.extend_from_slice(&temp);
        let base = hmac_md5(&key, &[&proof]);
        let (exported, encrypted) = if flags & FLAG_KEY_EXCH != 0 {
            let exported = [0x55u8; 16];
            (exported, crypto::rc4(&base, &exported))
        } else {
            (base, Vec::new())
        };

        let payload: [Vec<u8>; 6] = [
            vec![0; 24],
            nt,
            utf16le(&self.domain),
            utf16le(&self.user),
            utf16le("FUZZCLIENT"),
            encrypted,
        ];
        let mut msg = ntlm::SIGNATURE.to_vec();
        msg.extend_from_slice(&3u32.to_le_bytes());
        let mut at = 88u32;
        for p in &payload {
            msg.extend_from_slice(&(p.len() as u16).to_le_bytes());
            msg.extend_from_slice(&(p.len() as u16).to_le_bytes());
            msg.extend_from_slice(&at.to_le_bytes());
            at += p.len() as u32;
        }
        msg.extend_from_slice(&flags.to_le_bytes());
        msg.extend_from_slice(&[10, 0, 0x61, 0x4a, 0, 0, 0, 0x0f]);
        msg.extend_from_slice(&[0; 16]);
        for p in &payload {
            msg.extend_from_slice(p);
        }
        if mic {
            let mut value = hmac_md5(&exported, &[&self.negotiate, challenge, &msg]);
            if self.tweaks.wrong_mic {
                value[0] ^= 1;
            }
            if let Some(slot) = msg.get_mut(MIC_OFFSET..MIC_OFFSET + 16) {
                slot.copy_from_slice(&value);
            }
        }
        if let Some((i, x)) = self.tweaks.flip_authenticate {
            let len = msg.len();
            if let Some(b) = msg.get_mut(i % len) {
                *b ^= x;
            }
        }
        if let Some(n) = self.tweaks.cut_authenticate {
            msg.truncate(n);
        }

        let mut to_server = Direction::new(&exported, flags, true);
        let from_server = Direction::new(&exported, flags, false);
        let token = if self.shape == Shape::Bare {
            msg
        } else if self.tweaks.no_mech_list_mic {
            spnego::client_resp(Some(&msg), None)
        } else {
            let mut mic = to_server.sign(&self.mech_types);
            to_server.reset_handle();
            if self.tweaks.wrong_mech_list_mic {
                mic[5] ^= 1;
            }
            spnego::client_resp(Some(&msg), Some(&mic))
        };
        let pub_key_auth = if self.version >= 5 {
            to_server.seal(&super::client_binding_hash(&NONCE, &self.public_key))
        } else {
            to_server.seal(&self.public_key)
        };
        let req = TsRequest {
            pub_key_auth: Some(self.tweaks.pub_key_auth.clone().unwrap_or(pub_key_auth)),
            client_nonce: (self.version >= 5).then(|| NONCE.to_vec()),
            ..self.request(Some(token))
        };
        self.stage = Stage::SentAuthenticate {
            from_server: Box::new(from_server),
            to_server: Box::new(to_server),
        };
        Ok(encode(&req))
    }
}

fn encode(req: &TsRequest) -> Vec<u8> {
    let mut out = Vec::new();
    req.encode(&mut out);
    out
}
