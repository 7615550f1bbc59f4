//! What the administrator needs to connect, as one JSON object: printed by
//! `thinshadow creds --json` and fed to the publish hook, byte for byte the same.

use std::fmt;
use std::net::IpAddr;

use super::State;

pub struct Published {
    pub user: String,
    pub password: String,
    pub addresses: Vec<IpAddr>,
    pub port: u16,
    pub cert_sha256: String,
    pub password_issued_at: u64,
    /// When the periodic rotation replaces the password (Unix seconds).
    pub password_rotates_at: u64,
}

impl Published {
    pub fn new(state: &State, addresses: Vec<IpAddr>, cert_sha256: &str) -> Published {
        Published {
            user: state.user.clone(),
            password: state.password.clone(),
            addresses,
            port: state.port,
            cert_sha256: cert_sha256.to_owned(),
            password_issued_at: state.password_issued_at,
            password_rotates_at: state.password_rotates_at,
        }
    }
}

/// Never shows the password, so a stray `{:?}` cannot log it.
impl fmt::Debug for Published {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Published")
            .field("user", &self.user)
            .field("password", &"<hidden>")
            .field("addresses", &self.addresses)
            .field("port", &self.port)
            .field("password_issued_at", &self.password_issued_at)
            .finish_non_exhaustive()
    }
}

pub fn to_json(p: &Published) -> String {
    let addresses: Vec<String> = p
        .addresses
        .iter()
        .map(|a| json_string(&a.to_string()))
        .collect();
    format!(
        "{{\"user\":{},\"password\":{},\"addresses\":[{}],\"port\":{},\"cert_sha256\":{},\"password_issued_at\":{},\"password_rotates_at\":{}}}",
        json_string(&p.user),
        json_string(&p.password),
        addresses.join(","),
        p.port,
        json_string(&p.cert_sha256),
        p.password_issued_at,
        p.password_rotates_at
    )
}

fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Addresses of the non-loopback interfaces, IPv4 first (no IPv6 link-local: it needs a
/// zone the admin cannot know).
pub fn addresses() -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = Vec::new();
    for ip in crate::sys::ifaddrs::all() {
        let link_local_v6 = matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
        if !ip.is_loopback() && !link_local_v6 && !found.contains(&ip) {
            found.push(ip);
        }
    }
    found.sort_by_key(|ip| ip.is_ipv6());
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Published {
        Published {
            user: "admin".into(),
            password: "pa\"ss\\\n".into(),
            addresses: vec!["10.0.2.15".parse().unwrap(), "fd00::5".parse().unwrap()],
            port: 3389,
            cert_sha256: "ab:cd".into(),
            password_issued_at: 7,
            password_rotates_at: 0,
        }
    }

    #[test]
    fn json_has_the_published_fields_escaped() {
        assert_eq!(
            to_json(&sample()),
            r#"{"user":"admin","password":"pa\"ss\\\u000a","addresses":["10.0.2.15","fd00::5"],"port":3389,"cert_sha256":"ab:cd","password_issued_at":7,"password_rotates_at":0}"#
        );
    }

    #[test]
    fn debug_hides_the_password() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("pa\\\"ss"), "{shown}");
        assert!(shown.contains("<hidden>"));
    }

    #[test]
    fn built_from_the_state() {
        let state = State {
            password: "pw".into(),
            password_issued_at: 9,
            password_rotates_at: 0,
            user: "admin".into(),
            port: 4000,
            ..State::default()
        };
        let p = Published::new(&state, vec![], "ff");
        assert_eq!(
            to_json(&p),
            r#"{"user":"admin","password":"pw","addresses":[],"port":4000,"cert_sha256":"ff","password_issued_at":9,"password_rotates_at":0}"#
        );
    }
}
