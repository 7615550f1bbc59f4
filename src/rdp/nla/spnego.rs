//! SPNEGO (RFC 4178, MS-SPNG) around NTLM, the acceptor's side: mstsc and aardwolf speak
//! it; NTLM is the one mech we select whatever the client's order.

use super::NlaError;
use super::der::{self, APPLICATION_0, ENUMERATED, OCTET_STRING, OID, SEQUENCE, ctx};

/// OID contents (without tag and length).
pub const SPNEGO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
pub const NTLM: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
pub const NEGOEX: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x1e];
pub const KERBEROS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
pub const MS_KERBEROS: &[u8] = &[0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02];

pub const ACCEPT_COMPLETED: u8 = 0;
pub const ACCEPT_INCOMPLETE: u8 = 1;
pub const REJECT: u8 = 2;

/// Whether a negoToken is SPNEGO rather than a bare NTLM message ("NTLMSSP\0").
pub fn is_spnego(token: &[u8]) -> bool {
    matches!(token.first(), Some(&APPLICATION_0 | 0xa0 | 0xa1))
}

#[derive(Debug, PartialEq, Eq)]
pub struct Init {
    /// The DER of the client's MechTypeList as sent: what both mechListMICs sign.
    pub mech_types: Vec<u8>,
    pub ntlm_first: bool,
    pub offers_ntlm: bool,
    /// The optimistic token, kept only when it is for NTLM (the first mech).
    pub ntlm_token: Option<Vec<u8>>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Resp {
    pub state: Option<u8>,
    pub token: Option<Vec<u8>>,
    pub mic: Option<Vec<u8>>,
}

pub fn parse_init(token: &[u8]) -> Result<Init, NlaError> {
    let inner = if token.first() == Some(&APPLICATION_0) {
        let (body, _) = der::expect(token, APPLICATION_0)?;
        let (oid, rest) = der::expect(body, OID)?;
        if oid != SPNEGO {
            return Err(NlaError::protocol("GSS token is not SPNEGO"));
        }
        rest
    } else {
        token
    };
    let (init, _) = der::expect(inner, ctx(0))?;
    let (fields, _) = der::expect(init, SEQUENCE)?;
    let mut mech_types = None;
    let mut mech_token = None;
    for field in der::elements(fields) {
        let field = field?;
        if field.tag == ctx(0) {
            let (list, _) = der::read(field.value)?;
            if list.tag != SEQUENCE {
                return Err(NlaError::protocol("mechTypes is not a sequence"));
            }
            let mut oids = Vec::new();
            for oid in der::elements(list.value) {
                let oid = oid?;
                if oid.tag != OID {
                    return Err(NlaError::protocol("mechTypes holds a non-OID"));
                }
                oids.push(oid.value);
            }
            mech_types = Some((list.raw.to_vec(), oids));
        } else if field.tag == ctx(2) {
            mech_token = Some(der::expect(field.value, OCTET_STRING)?.0.to_vec());
        }
    }
    let (raw, oids) =
        mech_types.ok_or_else(|| NlaError::protocol("negTokenInit without mechTypes"))?;
    let ntlm_first = oids.first().is_some_and(|&o| o == NTLM);
    let offers_ntlm = oids.contains(&NTLM);
    Ok(Init {
        mech_types: raw,
        ntlm_first,
        offers_ntlm,
        ntlm_token: mech_token.filter(|_| ntlm_first),
    })
}

pub fn parse_resp(token: &[u8]) -> Result<Resp, NlaError> {
    let (body, _) = der::expect(token, ctx(1))?;
    let (fields, _) = der::expect(body, SEQUENCE)?;
    let mut resp = Resp::default();
    for field in der::elements(fields) {
        let field = field?;
        match field.tag {
            t if t == ctx(0) => {
                let (v, _) = der::expect(field.value, ENUMERATED)?;
                resp.state = Some(v.first().copied().unwrap_or(REJECT));
            }
            t if t == ctx(2) => {
                resp.token = Some(der::expect(field.value, OCTET_STRING)?.0.to_vec())
            }
            t if t == ctx(3) => resp.mic = Some(der::expect(field.value, OCTET_STRING)?.0.to_vec()),
            _ => {}
        }
    }
    if resp.state == Some(REJECT) {
        return Err(NlaError::protocol("client rejected the negotiation"));
    }
    Ok(resp)
}

/// negTokenResp; `select_ntlm` adds supportedMech (the first reply only).
pub fn resp(state: u8, select_ntlm: bool, token: Option<&[u8]>, mic: Option<&[u8]>) -> Vec<u8> {
    let mut fields = Vec::new();
    der::write(ctx(0), &der::tlv(ENUMERATED, &[state]), &mut fields);
    if select_ntlm {
        der::write(ctx(1), &der::tlv(OID, NTLM), &mut fields);
    }
    if let Some(token) = token {
        der::write(ctx(2), &der::tlv(OCTET_STRING, token), &mut fields);
    }
    if let Some(mic) = mic {
        der::write(ctx(3), &der::tlv(OCTET_STRING, mic), &mut fields);
    }
    der::tlv(ctx(1), &der::tlv(SEQUENCE, &fields))
}

/// The client's side: a negTokenInit with these mechs and an optimistic token (tests and
/// the fuzz client). Returns the token and the MechTypeList DER that the MICs sign.
pub fn init(mechs: &[&[u8]], token: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
    let mut list = Vec::new();
    for m in mechs {
        der::write(OID, m, &mut list);
    }
    let mech_types = der::tlv(SEQUENCE, &list);
    let mut fields = der::tlv(ctx(0), &mech_types);
    if let Some(token) = token {
        der::write(ctx(2), &der::tlv(OCTET_STRING, token), &mut fields);
    }
    let mut body = der::tlv(OID, SPNEGO);
    der::write(ctx(0), &der::tlv(SEQUENCE, &fields), &mut body);
    (der::tlv(APPLICATION_0, &body), mech_types)
}

/// The client's later tokens: a negTokenResp without state or mech.
pub fn client_resp(token: Option<&[u8]>, mic: Option<&[u8]>) -> Vec<u8> {
    let mut fields = Vec::new();
    if let Some(token) = token {
        der::write(ctx(2), &der::tlv(OCTET_STRING, token), &mut fields);
    }
    if let Some(mic) = mic {
        der::write(ctx(3), &der::tlv(OCTET_STRING, mic), &mut fields);
    }
    der::tlv(ctx(1), &der::tlv(SEQUENCE, &fields))
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index what they built")]
mod tests {
    use super::*;

    /// aardwolf's first token, as captured (NTLM only, NEGOTIATE inside); shortened NTLM part.
    fn capture_shape() -> Vec<u8> {
        let ntlm = b"NTLMSSP\0\x01\0\0\0\x97\x82\x08\xe2";
        init(&[NTLM], Some(ntlm)).0
    }

    #[test]
    fn ntlm_only_with_its_token() {
        let token = capture_shape();
        assert_eq!(&token[..2], &[0x60, token.len() as u8 - 2]);
        assert_eq!(
            &token[2..10],
            &[6, 6, 43, 6, 1, 5, 5, 2],
            "the bytes sspi choked on"
        );
        let init = parse_init(&token).unwrap();
        assert!(init.ntlm_first && init.offers_ntlm);
        assert_eq!(
            init.ntlm_token.as_deref(),
            Some(&b"NTLMSSP\0\x01\0\0\0\x97\x82\x08\xe2"[..])
        );
        assert_eq!(init.mech_types, der::tlv(SEQUENCE, &der::tlv(OID, NTLM)));
    }

    #[test]
    fn negoex_first_token_is_ignored() {
        let negoex_token = b"NEGOEXTS\0\0\0\0optimistic";
        let (token, mech_types) = init(&[NEGOEX, NTLM], Some(negoex_token));
        let init = parse_init(&token).unwrap();
        assert!(!init.ntlm_first && init.offers_ntlm);
        assert_eq!(init.ntlm_token, None);
        assert_eq!(init.mech_types, mech_types);
    }

    #[test]
    fn kerberos_first_then_ntlm() {
        let (token, _) = init(&[MS_KERBEROS, KERBEROS, NTLM], Some(&[0x60, 0x00]));
        let init = parse_init(&token).unwrap();
        assert!(!init.ntlm_first && init.offers_ntlm && init.ntlm_token.is_none());
    }

    #[test]
    fn no_ntlm_at_all() {
        let (token, _) = init(&[KERBEROS, NEGOEX], None);
        let init = parse_init(&token).unwrap();
        assert!(!init.offers_ntlm);
    }

    #[test]
    fn responses_round_trip() {
        let ours = resp(ACCEPT_INCOMPLETE, true, Some(b"challenge"), None);
        let back = parse_resp(&ours).unwrap();
        assert_eq!(back.state, Some(ACCEPT_INCOMPLETE));
        assert_eq!(back.token.as_deref(), Some(&b"challenge"[..]));
        let theirs = client_resp(Some(b"auth"), Some(&[9; 16]));
        let back = parse_resp(&theirs).unwrap();
        assert_eq!(
            (back.token.unwrap(), back.mic.unwrap()),
            (b"auth".to_vec(), vec![9; 16])
        );
        assert!(parse_resp(&resp(REJECT, false, None, None)).is_err());
    }

    #[test]
    fn truncations_are_errors_not_panics() {
        let (token, _) = init(&[NEGOEX, NTLM], Some(b"x"));
        for cut in 0..token.len() {
            assert!(parse_init(&token[..cut]).is_err());
        }
        let theirs = client_resp(Some(b"auth"), Some(&[9; 16]));
        for cut in 0..theirs.len() {
            assert!(parse_resp(&theirs[..cut]).is_err());
        }
    }
}
