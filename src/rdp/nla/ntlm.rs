//! The NTLM server (MS-NLMP 2.2.1, 3.2.5): NEGOTIATE in, CHALLENGE out, AUTHENTICATE checked.
//! NTLMv2 only: an LM or NTLMv1 response, or one without extended session security, fails.

use super::NlaError;
use super::crypto::{self, FLAG_56, FLAG_128, FLAG_KEY_EXCH, ct_eq, hmac_md5, ntowfv2};

pub const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
pub const FLAG_UNICODE: u32 = 0x0000_0001;
pub const FLAG_REQUEST_TARGET: u32 = 0x0000_0004;
pub const FLAG_SIGN: u32 = 0x0000_0010;
pub const FLAG_SEAL: u32 = 0x0000_0020;
pub const FLAG_NTLM: u32 = 0x0000_0200;
pub const FLAG_ALWAYS_SIGN: u32 = 0x0000_8000;
pub const FLAG_TARGET_TYPE_SERVER: u32 = 0x0002_0000;
pub const FLAG_ESS: u32 = 0x0008_0000;
pub const FLAG_TARGET_INFO: u32 = 0x0080_0000;
pub const FLAG_VERSION: u32 = 0x0200_0000;

pub const AV_EOL: u16 = 0;
pub const AV_NB_COMPUTER: u16 = 1;
pub const AV_NB_DOMAIN: u16 = 2;
pub const AV_DNS_COMPUTER: u16 = 3;
pub const AV_DNS_DOMAIN: u16 = 4;
pub const AV_FLAGS: u16 = 6;
pub const AV_TIMESTAMP: u16 = 7;
/// MsvAvFlags bit: the AUTHENTICATE carries a MIC.
pub const AV_FLAG_MIC: u32 = 0x2;
/// Where the MIC sits in an AUTHENTICATE that has a Version field.
pub const MIC_OFFSET: usize = 72;

/// What we tell clients we are (Windows Server 2022's numbers; revision 15 = W2K3).
const VERSION: [u8; 8] = [10, 0, 0x7c, 0x4f, 0, 0, 0, 0x0f];

fn u16_at(msg: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(msg.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(msg: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(msg.get(at..at + 4)?.try_into().ok()?))
}

/// The payload a (len, maxlen, offset) field at `at` points to, checked against `msg`.
fn field(msg: &[u8], at: usize) -> Option<&[u8]> {
    let len = usize::from(u16_at(msg, at)?);
    let offset = usize::try_from(u32_at(msg, at + 4)?).ok()?;
    msg.get(offset..offset.checked_add(len)?)
}

fn header(msg: &[u8], kind: u32) -> Option<()> {
    (msg.get(..8)? == SIGNATURE && u32_at(msg, 8)? == kind).then_some(())
}

/// NEGOTIATE_MESSAGE: its flags.
pub fn parse_negotiate(msg: &[u8]) -> Result<u32, NlaError> {
    header(msg, 1).ok_or_else(|| NlaError::protocol("not an NTLM NEGOTIATE message"))?;
    let flags = u32_at(msg, 12).ok_or_else(|| NlaError::protocol("short NTLM NEGOTIATE"))?;
    if flags & FLAG_UNICODE == 0 {
        return Err(NlaError::protocol("NTLM client without Unicode"));
    }
    Ok(flags)
}

fn av_pair(id: u16, value: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// CHALLENGE_MESSAGE for these client flags; `name` is our NetBIOS name.
pub fn build_challenge(
    client_flags: u32,
    server_challenge: &[u8; 8],
    filetime: u64,
    name: &str,
) -> Vec<u8> {
    let name16 = crypto::utf16le(name);
    let mut info = Vec::new();
    for id in [AV_NB_DOMAIN, AV_NB_COMPUTER, AV_DNS_DOMAIN, AV_DNS_COMPUTER] {
        av_pair(id, &name16, &mut info);
    }
    av_pair(AV_TIMESTAMP, &filetime.to_le_bytes(), &mut info);
    av_pair(AV_EOL, &[], &mut info);

    let offered = FLAG_SIGN | FLAG_SEAL | FLAG_KEY_EXCH | FLAG_128 | FLAG_56 | FLAG_REQUEST_TARGET;
    let flags = (client_flags & offered)
        | FLAG_UNICODE
        | FLAG_NTLM
        | FLAG_ALWAYS_SIGN
        | FLAG_TARGET_TYPE_SERVER
        | FLAG_ESS
        | FLAG_TARGET_INFO
        | FLAG_VERSION;
    const HEAD: usize = 56;
    let name_at = HEAD as u32;
    let info_at = name_at + name16.len() as u32;
    let mut m = Vec::with_capacity(HEAD + name16.len() + info.len());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&(name16.len() as u16).to_le_bytes());
    m.extend_from_slice(&(name16.len() as u16).to_le_bytes());
    m.extend_from_slice(&name_at.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(server_challenge);
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&(info.len() as u16).to_le_bytes());
    m.extend_from_slice(&info_at.to_le_bytes());
    m.extend_from_slice(&VERSION);
    m.extend_from_slice(&name16);
    m.extend_from_slice(&info);
    m
}

/// The value of AV pair `id` in a target info list, if the list is well formed up to it.
pub fn find_av(mut list: &[u8], id: u16) -> Option<&[u8]> {
    // Each pair consumes at least four bytes, so this ends.
    while let (Some(kind), Some(len)) = (u16_at(list, 0), u16_at(list, 2)) {
        let len = usize::from(len);
        let value = list.get(4..4 + len)?;
        if kind == id {
            return Some(value);
        }
        if kind == AV_EOL {
            return None;
        }
        list = list.get(4 + len..)?;
    }
    None
}

/// The one account we accept.
pub struct Account<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

/// A user name matches the account ignoring case, and ignoring a `DOMAIN\` prefix or an
/// `@domain` suffix that a client left in the name field.
pub fn user_matches(sent: &str, account: &str) -> bool {
    let name = sent.rsplit('\\').next().unwrap_or(sent);
    let name = name.split('@').next().unwrap_or(name);
    !account.is_empty()
        && (sent.eq_ignore_ascii_case(account) || name.eq_ignore_ascii_case(account))
}

pub fn utf16_string(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes(c.try_into().unwrap_or_default()));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// A client that proved it knows the password.
#[derive(Debug)]
pub struct Authenticated {
    pub user: String,
    pub flags: u32,
    pub exported_key: [u8; 16],
}

/// Checks an AUTHENTICATE_MESSAGE against the account; `negotiate` and `challenge` are the
/// two earlier messages (the MIC covers all three). The error is a reason for the log.
pub fn verify_authenticate(
    msg: &[u8],
    negotiate: &[u8],
    challenge: &[u8],
    server_challenge: &[u8; 8],
    account: &Account<'_>,
) -> Result<Authenticated, &'static str> {
    header(msg, 3).ok_or("not an NTLM AUTHENTICATE message")?;
    let flags = u32_at(msg, 60).ok_or("short AUTHENTICATE")?;
    let nt = field(msg, 20).ok_or("NT response out of bounds")?;
    let domain = field(msg, 28).ok_or("domain out of bounds")?;
    let user = field(msg, 36).ok_or("user name out of bounds")?;
    let session_key = field(msg, 52).ok_or("session key out of bounds")?;
    if flags & FLAG_UNICODE == 0 {
        return Err("no Unicode");
    }
    if flags & FLAG_ESS == 0 {
        return Err("no extended session security");
    }
    if nt.len() <= 24 {
        return Err("not an NTLMv2 response (anonymous, LM or NTLMv1)");
    }
    let (proof, temp) = nt.split_at_checked(16).ok_or("short NT response")?;
    if temp.len() < 28 || temp.get(..2) != Some(&[1, 1]) {
        return Err("malformed NTLMv2 client challenge");
    }
    let av_pairs = temp.get(28..).unwrap_or_default();
    let user = utf16_string(user).ok_or("user name is not UTF-16")?;
    let domain = utf16_string(domain).ok_or("domain is not UTF-16")?;

    // NTOWFv2 takes the names as the client sent them; only the password is ours.
    let key = ntowfv2(account.password, &user, &domain);
    let expected = hmac_md5(&key, &[server_challenge, temp]);
    if !ct_eq(&expected, proof) {
        return Err("wrong password (NTProofStr)");
    }
    if !user_matches(&user, account.user) {
        return Err("unknown user");
    }
    let base_key = hmac_md5(&key, &[proof]);
    let exported_key = if flags & FLAG_KEY_EXCH != 0 {
        let sent: [u8; 16] = session_key
            .try_into()
            .map_err(|_| "session key is not 16 bytes")?;
        let mut key = sent;
        crypto::Rc4::new(&base_key).apply(&mut key);
        key
    } else {
        base_key
    };

    let mic_flag = find_av(av_pairs, AV_FLAGS)
        .and_then(|v| v.try_into().ok())
        .map(u32::from_le_bytes)
        .is_some_and(|f| f & AV_FLAG_MIC != 0);
    if mic_flag {
        let mic = msg
            .get(MIC_OFFSET..MIC_OFFSET + 16)
            .ok_or("MIC past the message")?;
        let mut zeroed = msg.to_vec();
        if let Some(slot) = zeroed.get_mut(MIC_OFFSET..MIC_OFFSET + 16) {
            slot.fill(0);
        }
        let expected = hmac_md5(&exported_key, &[negotiate, challenge, &zeroed]);
        if !ct_eq(&expected, mic) {
            return Err("wrong MIC");
        }
    }
    Ok(Authenticated {
        user,
        flags,
        exported_key,
    })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index what they built")]
mod tests {
    use super::*;

    #[test]
    fn challenge_has_the_timestamp_and_names() {
        let msg = build_challenge(0xe2088297, &[1; 8], 0x01d9_0000_1234_5678, "THIN");
        assert_eq!(&msg[..8], SIGNATURE);
        assert_eq!(u32_at(&msg, 8), Some(2));
        assert_eq!(&msg[24..32], &[1; 8]);
        assert_eq!(field(&msg, 12), Some(&crypto::utf16le("THIN")[..]));
        let info = field(&msg, 40).unwrap();
        assert_eq!(
            find_av(info, AV_TIMESTAMP),
            Some(&0x01d9_0000_1234_5678u64.to_le_bytes()[..])
        );
        assert_eq!(
            find_av(info, AV_NB_COMPUTER),
            Some(&crypto::utf16le("THIN")[..])
        );
        let flags = u32_at(&msg, 20).unwrap();
        assert_ne!(flags & FLAG_ESS, 0);
        assert_ne!(flags & FLAG_KEY_EXCH, 0, "client asked for it");
    }

    #[test]
    fn av_pairs_out_of_bounds_are_absent() {
        assert_eq!(
            find_av(&[6, 0, 4, 0, 2, 0, 0, 0, 0, 0, 0, 0], AV_FLAGS),
            Some(&[2, 0, 0, 0][..])
        );
        assert_eq!(find_av(&[6, 0, 9, 0, 2, 0], AV_FLAGS), None);
        assert_eq!(find_av(&[1, 0], AV_FLAGS), None);
        assert_eq!(
            find_av(&[0, 0, 0, 0, 6, 0, 4, 0, 2, 0, 0, 0], AV_FLAGS),
            None
        );
    }

    #[test]
    fn user_names() {
        assert!(user_matches("Admin", "admin"));
        assert!(user_matches("MicrosoftAccount\\admin", "admin"));
        assert!(user_matches("admin@thin", "admin"));
        assert!(!user_matches("administrator", "admin"));
        assert!(!user_matches("", ""));
    }

    #[test]
    fn negotiate_is_checked() {
        let mut msg = SIGNATURE.to_vec();
        msg.extend_from_slice(&1u32.to_le_bytes());
        assert!(parse_negotiate(&msg).is_err());
        msg.extend_from_slice(&0xe2088297u32.to_le_bytes());
        assert_eq!(parse_negotiate(&msg).unwrap(), 0xe2088297);
        assert!(parse_negotiate(b"NTLMSSP\0\x03\0\0\0\x97\x82\x08\xe2").is_err());
    }
}
