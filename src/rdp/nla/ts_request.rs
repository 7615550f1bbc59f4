//! MS-CSSP 2.2.1: TSRequest, TSCredentials and TSPasswordCreds (versions 2 to 6).

use super::NlaError;
use super::der::{self, INTEGER, OCTET_STRING, SEQUENCE, ctx};

/// The highest version we speak; a client's higher number is answered with this one.
pub const VERSION: u32 = 6;
/// STATUS_LOGON_FAILURE, the errorCode Windows answers a wrong password with.
pub const STATUS_LOGON_FAILURE: u32 = 0xC000_006D;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TsRequest {
    pub version: u32,
    /// The first negoToken (clients send at most one).
    pub nego_token: Option<Vec<u8>>,
    pub auth_info: Option<Vec<u8>>,
    pub pub_key_auth: Option<Vec<u8>>,
    pub error_code: Option<u32>,
    pub client_nonce: Option<Vec<u8>>,
}

/// Length of the TSRequest at the start of `buf` once its header is there.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, NlaError> {
    if buf.first().is_some_and(|&t| t != SEQUENCE) {
        return Err(NlaError::der("not a DER sequence"));
    }
    Ok(der::header(buf)?.and_then(|(head, len)| head.checked_add(len)))
}

impl TsRequest {
    pub fn decode(frame: &[u8]) -> Result<Self, NlaError> {
        let (body, _) = der::expect(frame, SEQUENCE)?;
        let mut req = TsRequest::default();
        let mut have_version = false;
        for field in der::elements(body) {
            let field = field?;
            match field.tag {
                t if t == ctx(0) => {
                    let (v, _) = der::expect(field.value, INTEGER)?;
                    let v = der::integer(v)?;
                    req.version = u32::try_from(v).map_err(|_| NlaError::der("version"))?;
                    have_version = true;
                }
                t if t == ctx(1) => req.nego_token = Some(first_nego_token(field.value)?),
                t if t == ctx(2) => req.auth_info = Some(octets(field.value)?),
                t if t == ctx(3) => req.pub_key_auth = Some(octets(field.value)?),
                t if t == ctx(4) => {
                    let (v, _) = der::expect(field.value, INTEGER)?;
                    // An NTSTATUS: the 32 bits, whatever sign the encoder gave them.
                    req.error_code = Some(der::integer(v)? as u32);
                }
                t if t == ctx(5) => req.client_nonce = Some(octets(field.value)?),
                _ => {}
            }
        }
        if !have_version {
            return Err(NlaError::der("no version"));
        }
        Ok(req)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut body = Vec::new();
        let mut v = Vec::new();
        der::write_integer(i64::from(self.version), &mut v);
        der::write(ctx(0), &v, &mut body);
        if let Some(token) = &self.nego_token {
            let inner = der::tlv(ctx(0), &der::tlv(OCTET_STRING, token));
            let data = der::tlv(SEQUENCE, &der::tlv(SEQUENCE, &inner));
            der::write(ctx(1), &data, &mut body);
        }
        for (n, field) in [(2, &self.auth_info), (3, &self.pub_key_auth)] {
            if let Some(bytes) = field {
                der::write(ctx(n), &der::tlv(OCTET_STRING, bytes), &mut body);
            }
        }
        if let Some(code) = self.error_code {
            let mut v = Vec::new();
            der::write_integer(i64::from(code as i32), &mut v);
            der::write(ctx(4), &v, &mut body);
        }
        if let Some(nonce) = &self.client_nonce {
            der::write(ctx(5), &der::tlv(OCTET_STRING, nonce), &mut body);
        }
        der::write(SEQUENCE, &body, out);
    }
}

fn octets(value: &[u8]) -> Result<Vec<u8>, NlaError> {
    Ok(der::expect(value, OCTET_STRING)?.0.to_vec())
}

/// NegoData ::= SEQUENCE OF SEQUENCE { negoToken [0] OCTET STRING }
fn first_nego_token(value: &[u8]) -> Result<Vec<u8>, NlaError> {
    let (list, _) = der::expect(value, SEQUENCE)?;
    let (item, _) = der::expect(list, SEQUENCE)?;
    let (token, _) = der::expect(item, ctx(0))?;
    octets(token)
}

/// The password credentials inside authInfo; strings as the client sent them (UTF-16LE).
#[derive(Debug, PartialEq, Eq)]
pub struct PasswordCreds {
    pub domain: Vec<u8>,
    pub user: Vec<u8>,
    pub password: Vec<u8>,
}

/// TSCredentials { credType [0] INTEGER, credentials [1] OCTET STRING }; only credType 1
/// (password) is accepted: smart-card and Remote Guard logons are not ours to do.
pub fn decode_credentials(bytes: &[u8]) -> Result<PasswordCreds, NlaError> {
    let (body, _) = der::expect(bytes, SEQUENCE)?;
    let (cred_type, rest) = der::expect(body, ctx(0))?;
    let (cred_type, _) = der::expect(cred_type, INTEGER)?;
    if der::integer(cred_type)? != 1 {
        return Err(NlaError::der("credType is not password"));
    }
    let (creds, _) = der::expect(rest, ctx(1))?;
    let creds = octets(creds)?;
    let (fields, _) = der::expect(&creds, SEQUENCE)?;
    let mut parts: [Option<Vec<u8>>; 3] = [None, None, None];
    for field in der::elements(fields) {
        let field = field?;
        let slot = match field.tag {
            t if t == ctx(0) => parts.get_mut(0),
            t if t == ctx(1) => parts.get_mut(1),
            t if t == ctx(2) => parts.get_mut(2),
            _ => None,
        };
        if let Some(slot) = slot {
            *slot = Some(octets(field.value)?);
        }
    }
    let [Some(domain), Some(user), Some(password)] = parts else {
        return Err(NlaError::der("TSPasswordCreds field missing"));
    };
    Ok(PasswordCreds {
        domain,
        user,
        password,
    })
}

/// The client side of [`decode_credentials`] (tests and the fuzz client).
pub fn encode_credentials(creds: &PasswordCreds) -> Vec<u8> {
    let mut fields = Vec::new();
    for (n, s) in [(0, &creds.domain), (1, &creds.user), (2, &creds.password)] {
        der::write(ctx(n), &der::tlv(OCTET_STRING, s), &mut fields);
    }
    let inner = der::tlv(SEQUENCE, &fields);
    let mut body = Vec::new();
    let mut one = Vec::new();
    der::write_integer(1, &mut one);
    der::write(ctx(0), &one, &mut body);
    der::write(ctx(1), &der::tlv(OCTET_STRING, &inner), &mut body);
    der::tlv(SEQUENCE, &body)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index what they built")]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips() {
        let req = TsRequest {
            version: 6,
            nego_token: Some(b"NTLMSSP\0token".to_vec()),
            auth_info: Some(vec![1; 300]),
            pub_key_auth: Some(vec![2; 3]),
            error_code: Some(STATUS_LOGON_FAILURE),
            client_nonce: Some(vec![3; 32]),
        };
        let mut out = Vec::new();
        req.encode(&mut out);
        assert_eq!(frame_len(&out).unwrap(), Some(out.len()));
        assert_eq!(frame_len(&out[..1]).unwrap(), None);
        assert_eq!(TsRequest::decode(&out).unwrap(), req);
    }

    #[test]
    fn malformed_requests_are_errors() {
        assert!(frame_len(&[0x31, 0]).is_err());
        assert!(TsRequest::decode(&[0x30, 0]).is_err(), "no version");
        assert!(TsRequest::decode(&[0x30, 3, 0xa0, 1, 2]).is_err());
        // negoTokens without the inner sequence
        assert!(TsRequest::decode(&[0x30, 9, 0xa0, 3, 2, 1, 2, 0xa1, 2, 4, 0]).is_err());
    }

    #[test]
    fn credentials_round_trip_and_other_types_refused() {
        let creds = PasswordCreds {
            domain: vec![],
            user: b"a\0d\0".to_vec(),
            password: b"p\0".to_vec(),
        };
        let enc = encode_credentials(&creds);
        assert_eq!(decode_credentials(&enc).unwrap(), creds);
        let mut smartcard = enc.clone();
        // credType 1 -> 2
        let at = smartcard.windows(3).position(|w| w == [2, 1, 1]).unwrap() + 2;
        smartcard[at] = 2;
        assert!(decode_credentials(&smartcard).is_err());
        assert!(decode_credentials(&enc[..enc.len() - 1]).is_err());
    }
}
