//! `thinshadow creds`: what the administrator needs to connect, for people and for JSON.

use super::CredsArgs;
use crate::net::{tls, tls_store};
use crate::state;
use crate::state::published::{Published, addresses, to_json};

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
    // `mode` run before the first start saves modes only: nothing to publish yet.
    if current.password.is_empty() {
        return Err(
            "no credentials yet (the agent has not made its first password); is the \
             agent running?"
                .into(),
        );
    }
    let cert_path = args.state_dir.join(tls_store::CERT_FILE);
    let cert = std::fs::read(&cert_path).map_err(|e| format!("{}: {e}", cert_path.display()))?;
    Ok(Published::new(
        &current,
        addresses(),
        &tls::fingerprint(&cert),
    ))
}

/// "in 23 h 59 min (Unix 1795862400)": people read the first part, scripts the second.
fn next_change(at: u64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if at == 0 {
        return "unknown".to_owned();
    }
    let left = at.saturating_sub(now);
    format!(
        "in {} h {} min (Unix {at}), or at the next start of the agent",
        left / 3600,
        left % 3600 / 60
    )
}

pub fn to_text(p: &Published) -> String {
    let addresses: Vec<String> = p.addresses.iter().map(ToString::to_string).collect();
    let first = addresses.first().map_or("THIN-CLIENT-IP", String::as_str);
    format!(
        "addresses:   {}\nport:        {}\nuser:        {}\npassword:    {}\nnext change: {}\ncertificate: sha256 {}\nconnect:     xfreerdp /v:{first}:{} /u:{} /p:{}\n",
        if addresses.is_empty() {
            "(none up)".to_owned()
        } else {
            addresses.join(" ")
        },
        p.port,
        p.user,
        p.password,
        next_change(p.password_rotates_at),
        p.cert_sha256,
        p.port,
        p.user,
        p.password,
    )
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
            password_rotates_at: 86_407,
        };
        assert_eq!(
            to_json(&p),
            r#"{"user":"admin","password":"pa\"ss","addresses":["10.0.2.15"],"port":3389,"cert_sha256":"ab:cd","password_issued_at":7,"password_rotates_at":86407}"#
        );
        assert!(to_text(&p).contains("xfreerdp /v:10.0.2.15:3389 /u:admin"));
    }

    #[test]
    fn modes_saved_before_the_first_start_publish_nothing() {
        // What `thinshadow mode ...` leaves before the agent's first start (the first boot's
        // modes): a state with no password yet, and a certificate already there.
        let dir = std::env::temp_dir().join(format!("thinshadow-creds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        state::ensure_dir(&dir).unwrap();
        state::save(&dir, &state::State::default()).unwrap();
        std::fs::write(dir.join(tls_store::CERT_FILE), b"cert").unwrap();
        let args = CredsArgs {
            state_dir: dir.clone(),
            json: true,
        };
        let Err(err) = gather(&args) else {
            panic!("an empty password was published");
        };
        assert!(err.contains("no credentials yet"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
