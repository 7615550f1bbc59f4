//! The remote connection password: random, from an alphabet without look-alikes.

/// No 0/O/o, 1/l/I: the admin reads it off a management console and types it.
pub const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
pub const LENGTH: usize = 16;

pub fn generate() -> Result<String, getrandom::Error> {
    let mut out = String::with_capacity(LENGTH);
    let mut bytes = [0u8; 64];
    while out.len() < LENGTH {
        getrandom::fill(&mut bytes)?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - (256 % ALPHABET.len());
        for &b in bytes.iter().filter(|&&b| usize::from(b) < limit) {
            if out.len() == LENGTH {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_and_alphabet() {
        let password = generate().unwrap();
        assert_eq!(password.len(), LENGTH);
        assert!(password.bytes().all(|b| ALPHABET.contains(&b)));
        for confusable in [b'0', b'O', b'o', b'1', b'l', b'I'] {
            assert!(!ALPHABET.contains(&confusable));
        }
    }

    #[test]
    fn two_passwords_differ() {
        assert_ne!(generate().unwrap(), generate().unwrap());
    }
}
