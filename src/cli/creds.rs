//! `thinshadow creds`: what the administrator needs to connect, for people and for JSON.

use std::net::IpAddr;

use super::CredsArgs;
use crate::net::tls;
use crate::state;

pub struct Published {
    pub user: String,
    pub password: String,
    pub addresses: Vec<IpAddr>,
    pub port: u16,
    pub cert_sha256: String,
    pub password_issued_at: u64,
}

pub fn run(args: &CredsArgs) -> Result<(), String> {
    let published = gather(args)?;
    if args.json {
        println!("{}", to_json(&published));
    } else {
        print!("{}", to_text(&published));
    }
    Ok(())
}

fn gather(args: &CredsArgs) -> Result<Published, String> {
    let current = state::read(&args.state_dir)
        .map_err(|e| format!("no credentials yet ({e}); is the agent running?"))?;
    let cert_path = args.state_dir.join(tls::CERT_FILE);
    let cert = std::fs::read(&cert_path).map_err(|e| format!("{}: {e}", cert_path.display()))?;
    Ok(Published {
        user: current.user,
        password: current.password,
        addresses: addresses(),
        port: current.port,
        cert_sha256: tls::fingerprint(&cert),
        password_issued_at: current.password_issued_at,
    })
}

/// Addresses of the non-loopback interfaces, IPv4 first.
pub fn addresses() -> Vec<IpAddr> {
    let mut found: Vec<IpAddr> = Vec::new();
    if let Ok(list) = nix::ifaddrs::getifaddrs() {
        for ifaddr in list {
            let Some(address) = ifaddr.address else {
                continue;
            };
            let ip = if let Some(v4) = address.as_sockaddr_in() {
                IpAddr::V4(v4.ip())
            } else if let Some(v6) = address.as_sockaddr_in6() {
                IpAddr::V6(v6.ip())
            } else {
                continue;
            };
            let link_local_v6 =
                matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80);
            if !ip.is_loopback() && !link_local_v6 && !found.contains(&ip) {
                found.push(ip);
            }
        }
    }
    found.sort_by_key(|ip| ip.is_ipv6());
    found
}

pub fn to_text(p: &Published) -> String {
    let addresses: Vec<String> = p.addresses.iter().map(ToString::to_string).collect();
    let first = addresses.first().map_or("THIN-CLIENT-IP", String::as_str);
    format!(
        "addresses:   {}\nport:        {}\nuser:        {}\npassword:    {}\ncertificate: sha256 {}\nconnect:     xfreerdp /v:{first}:{} /u:{} /p:{}\n",
        if addresses.is_empty() {
            "(none up)".to_owned()
        } else {
            addresses.join(" ")
        },
        p.port,
        p.user,
        p.password,
        p.cert_sha256,
        p.port,
        p.user,
        p.password,
    )
}

pub fn to_json(p: &Published) -> String {
    let addresses: Vec<String> = p
        .addresses
        .iter()
        .map(|a| json_string(&a.to_string()))
        .collect();
    format!(
        "{{\"user\":{},\"password\":{},\"addresses\":[{}],\"port\":{},\"cert_sha256\":{},\"password_issued_at\":{}}}",
        json_string(&p.user),
        json_string(&p.password),
        addresses.join(","),
        p.port,
        json_string(&p.cert_sha256),
        p.password_issued_at
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_published_fields() {
        let p = Published {
            user: "admin".into(),
            password: "pa\"ss".into(),
            addresses: vec!["10.0.2.15".parse().unwrap()],
            port: 3389,
            cert_sha256: "ab:cd".into(),
            password_issued_at: 7,
        };
        assert_eq!(
            to_json(&p),
            r#"{"user":"admin","password":"pa\"ss","addresses":["10.0.2.15"],"port":3389,"cert_sha256":"ab:cd","password_issued_at":7}"#
        );
        assert!(to_text(&p).contains("xfreerdp /v:10.0.2.15:3389 /u:admin"));
    }
}
