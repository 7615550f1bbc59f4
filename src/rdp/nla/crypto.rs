//! NTLMv2 cryptography (MS-NLMP 3.3.2, 3.4): NTOWFv2, key derivation, and the session
//! security of one direction (extended session security: HMAC-MD5 signatures, RC4 seal).

use hmac::{KeyInit as _, Mac as _};
use md4::Digest as _;

pub const FLAG_KEY_EXCH: u32 = 0x4000_0000;
pub const FLAG_128: u32 = 0x2000_0000;
pub const FLAG_56: u32 = 0x8000_0000;

pub fn md4(data: &[u8]) -> [u8; 16] {
    md4::Md4::digest(data).into()
}

pub fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = md5::Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = hmac::Hmac::<md5::Md5>::new_from_slice(key) else {
        return [0; 16];
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Constant-time comparison (proofs, MICs and signatures).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Upper case one character at a time, as Windows' RtlUpcaseUnicodeString does: a
/// character whose upper case is several characters (ß) stays as it is.
fn upcase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// NTOWFv2: HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(Uppercase(user) + domain)).
pub fn ntowfv2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash = md4(&utf16le(password));
    let mut who = utf16le(&upcase(user));
    who.extend_from_slice(&utf16le(domain));
    hmac_md5(&nt_hash, &[&who])
}

/// RC4, as NTLM uses it for the key exchange and the seal. Twenty lines of our own rather
/// than a crate: no RC4 crate is in the tree, and this one is checked against MS-NLMP 4.2.4.
#[derive(Clone)]
pub struct Rc4 {
    s: [u8; 256],
    i: u8,
    j: u8,
}

#[expect(clippy::indexing_slicing, reason = "u8 indices into a 256-entry table")]
impl Rc4 {
    pub fn new(key: &[u8]) -> Self {
        let mut s = [0u8; 256];
        for (n, b) in s.iter_mut().enumerate() {
            *b = n as u8;
        }
        let mut j = 0u8;
        for n in 0..256usize {
            let k = key.get(n % key.len().max(1)).copied().unwrap_or(0);
            j = j.wrapping_add(s[n]).wrapping_add(k);
            s.swap(n, usize::from(j));
        }
        Rc4 { s, i: 0, j: 0 }
    }

    pub fn apply(&mut self, data: &mut [u8]) {
        for byte in data {
            self.i = self.i.wrapping_add(1);
            self.j = self.j.wrapping_add(self.s[usize::from(self.i)]);
            self.s.swap(usize::from(self.i), usize::from(self.j));
            let k = self.s[usize::from(
                self.s[usize::from(self.i)].wrapping_add(self.s[usize::from(self.j)]),
            )];
            *byte ^= k;
        }
    }
}

pub fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    Rc4::new(key).apply(&mut out);
    out
}

const CLIENT_SIGN: &[u8] = b"session key to client-to-server signing key magic constant\0";
const SERVER_SIGN: &[u8] = b"session key to server-to-client signing key magic constant\0";
const CLIENT_SEAL: &[u8] = b"session key to client-to-server sealing key magic constant\0";
const SERVER_SEAL: &[u8] = b"session key to server-to-client sealing key magic constant\0";

/// SIGNKEY and SEALKEY with extended session security (the only kind we accept).
pub fn keys(exported: &[u8; 16], flags: u32, client_to_server: bool) -> ([u8; 16], [u8; 16]) {
    let (sign_magic, seal_magic) = if client_to_server {
        (CLIENT_SIGN, CLIENT_SEAL)
    } else {
        (SERVER_SIGN, SERVER_SEAL)
    };
    let seal_len = if flags & FLAG_128 != 0 {
        16
    } else if flags & FLAG_56 != 0 {
        7
    } else {
        5
    };
    let seal_base = exported.get(..seal_len).unwrap_or(exported);
    (md5(&[exported, sign_magic]), md5(&[seal_base, seal_magic]))
}

/// One direction of an NTLM security context: its keys, RC4 state and sequence number.
#[derive(Clone)]
pub struct Direction {
    sign_key: [u8; 16],
    seal_key: [u8; 16],
    handle: Rc4,
    seq: u32,
    key_exch: bool,
}

impl Direction {
    pub fn new(exported: &[u8; 16], flags: u32, client_to_server: bool) -> Self {
        let (sign_key, seal_key) = keys(exported, flags, client_to_server);
        Direction {
            sign_key,
            seal_key,
            handle: Rc4::new(&seal_key),
            seq: 0,
            key_exch: flags & FLAG_KEY_EXCH != 0,
        }
    }

    /// MAC(): the 16-byte NTLMSSP_MESSAGE_SIGNATURE over `msg`; advances the sequence.
    pub fn sign(&mut self, msg: &[u8]) -> [u8; 16] {
        let seq = self.seq.to_le_bytes();
        let digest = hmac_md5(&self.sign_key, &[&seq, msg]);
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
        if self.key_exch {
            self.handle.apply(&mut checksum);
        }
        self.seq = self.seq.wrapping_add(1);
        let mut sig = [0u8; 16];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&seq);
        sig
    }

    pub fn verify(&mut self, msg: &[u8], signature: &[u8]) -> bool {
        ct_eq(&self.sign(msg), signature)
    }

    /// GSS_WrapEx as CredSSP lays it out: signature, then the sealed message.
    pub fn seal(&mut self, msg: &[u8]) -> Vec<u8> {
        let mut sealed = msg.to_vec();
        self.handle.apply(&mut sealed);
        let mut out = self.sign(msg).to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// The message inside `data`, or None when it is short or its signature is wrong.
    pub fn unseal(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        let (signature, sealed) = data.split_at_checked(16)?;
        let mut msg = sealed.to_vec();
        self.handle.apply(&mut msg);
        self.verify(&msg, signature).then_some(msg)
    }

    /// MS-SPNG 3.3.5.1: the RC4 state after the mechListMIC is the one before it.
    pub fn reset_handle(&mut self) {
        self.handle = Rc4::new(&self.seal_key);
    }

    #[cfg(test)]
    pub fn key_pair(&self) -> ([u8; 16], [u8; 16]) {
        (self.sign_key, self.seal_key)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests index what they built")]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// MS-NLMP 4.2.4: the NTLMv2 worked example.
    const SERVER_CHALLENGE: &str = "0123456789abcdef";
    const TARGET_INFO: &str =
        "02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000";
    const FLAGS: u32 = 0xe28a_8233;

    #[test]
    fn ms_nlmp_4_2_4_ntlmv2_example() {
        let key = ntowfv2("Password", "User", "Domain");
        assert_eq!(key.to_vec(), hex("0c868a403bfd7a93a3001ef22ef02e3f"));
        // temp = 01 01, 6 zero, time 0, client challenge aa.., 4 zero, target info, 4 zero
        let mut temp = vec![1, 1, 0, 0, 0, 0, 0, 0];
        temp.extend_from_slice(&[0; 8]);
        temp.extend_from_slice(&[0xaa; 8]);
        temp.extend_from_slice(&[0; 4]);
        temp.extend_from_slice(&hex(TARGET_INFO));
        temp.extend_from_slice(&[0; 4]);
        let proof = hmac_md5(&key, &[&hex(SERVER_CHALLENGE), &temp]);
        assert_eq!(proof.to_vec(), hex("68cd0ab851e51c96aabc927bebef6a1c"));
        let base = hmac_md5(&key, &[&proof]);
        assert_eq!(base.to_vec(), hex("8de40ccadbc14a82f15cb0ad0de95ca3"));
        let lm = hmac_md5(&key, &[&hex(SERVER_CHALLENGE), &[0xaa; 8]]);
        assert_eq!(lm.to_vec(), hex("86c35097ac9cec102554764a57cccc19"));

        // Key exchange: the random session key 55.. sent RC4-encrypted with the base key.
        let exported = [0x55u8; 16];
        let encrypted = rc4(&base, &exported);
        assert_eq!(encrypted, hex("c5dad2544fc9799094ce1ce90bc9d03e"));
        assert_eq!(rc4(&base, &encrypted), exported.to_vec());

        let mut client = Direction::new(&exported, FLAGS, true);
        let (sign, seal) = client.key_pair();
        assert_eq!(sign.to_vec(), hex("4788dc861b4782f35d43fd98fe1a2d39"));
        assert_eq!(seal.to_vec(), hex("59f600973cc4960a25480a7c196e4c58"));
        let sealed = client.seal(&utf16le("Plaintext"));
        assert_eq!(
            sealed[..16].to_vec(),
            hex("010000007fb38ec5c55d497600000000")
        );
        assert_eq!(
            sealed[16..].to_vec(),
            hex("54e50165bf1936dc996020c1811b0f06fb5f")
        );

        // The server's view of the same message, and its own first signature.
        let mut from_client = Direction::new(&exported, FLAGS, true);
        assert_eq!(from_client.unseal(&sealed).unwrap(), utf16le("Plaintext"));
        let mut server = Direction::new(&exported, FLAGS, false);
        let reply = server.seal(&utf16le("Plaintext"));
        assert_eq!(
            reply[..16].to_vec(),
            hex("01000000b298b847ce7c580700000000")
        );
    }

    #[test]
    fn unseal_refuses_short_and_altered_data() {
        let exported = [7u8; 16];
        let mut tx = Direction::new(&exported, FLAGS, true);
        let sealed = tx.seal(b"hello");
        for cut in 0..16 {
            assert!(
                Direction::new(&exported, FLAGS, true)
                    .unseal(&sealed[..cut])
                    .is_none()
            );
        }
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(
            Direction::new(&exported, FLAGS, true)
                .unseal(&bad)
                .is_none()
        );
        // Sequence numbers matter: the second message does not verify as the first.
        let second = tx.seal(b"hello");
        assert!(
            Direction::new(&exported, FLAGS, true)
                .unseal(&second)
                .is_none()
        );
        let mut rx = Direction::new(&exported, FLAGS, true);
        assert_eq!(rx.unseal(&sealed).unwrap(), b"hello");
        assert_eq!(rx.unseal(&second).unwrap(), b"hello");
    }

    #[test]
    fn upcase_is_per_character() {
        assert_eq!(upcase("straße admin"), "STRAßE ADMIN");
        assert_eq!(
            ntowfv2("Password", "user", "Domain"),
            ntowfv2("Password", "USER", "Domain")
        );
        assert_ne!(
            ntowfv2("Password", "User", "domain"),
            ntowfv2("Password", "User", "Domain")
        );
    }
}
