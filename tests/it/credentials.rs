//! The remote connection password as an admin meets it: rotated, published in the state
//! directory, refused when old, and a lockout for an address that keeps guessing.

use crate::common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::agent::{self, Options, USER};
use common::client::{ClientConfig, ConnectError, Security, TestClient};
use thinshadow::policy::{Allowlist, LockoutPolicy};
use thinshadow::state::rotation::RotationPolicy;
use thinshadow::state::{self, KeeperConfig};

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(module_path!(), name)
}

fn keeper(dir: &Path, rotation: RotationPolicy, lockout: LockoutPolicy) -> KeeperConfig {
    KeeperConfig {
        state_dir: dir.to_owned(),
        user: USER.into(),
        port: 0,
        cert_sha256: "ab:cd".into(),
        rotation,
        hook: None,
        lockout,
        allow: Allowlist::all(),
    }
}

fn synthetic() -> Box<dyn thinshadow::screen::Source> {
    thinshadow::screen::open("synthetic:256x192").unwrap()
}

fn published_password(dir: &Path) -> String {
    state::read(dir).expect("state written").password
}

fn login(addr: SocketAddr, password: &str) -> Result<TestClient, ConnectError> {
    TestClient::connect(&ClientConfig::new(addr, USER, password, Security::Nla))
}

#[test]
fn after_a_session_the_old_password_fails_and_the_new_one_works() {
    let dir = temp_dir("rotate");
    let rotation = RotationPolicy {
        after_session: true,
        ..RotationPolicy::default()
    };
    // The failed login with the old password would make the next one wait a second.
    let quick_retry = LockoutPolicy {
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        ..LockoutPolicy::default()
    };
    let options = Options {
        keeper: Some(keeper(&dir, rotation, quick_retry)),
        ..Options::default()
    };
    let agent = agent::start(options, synthetic);
    let first = published_password(&dir);
    let mut client = login(agent.addr, &first).expect("login with the published password");
    client.pump_for(Duration::from_millis(300)).unwrap();
    client.disconnect();

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut second = published_password(&dir);
    while second == first && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        second = published_password(&dir);
    }
    assert_ne!(first, second, "no rotation after the session");

    match login(agent.addr, &first) {
        Err(e) => assert!(e.is_auth_failure(), "old password: {e:?}"),
        Ok(_) => panic!("the old password still works"),
    }
    std::thread::sleep(Duration::from_millis(20));
    login(agent.addr, &second).expect("login with the new password");
}

#[test]
fn a_retry_right_after_a_wrong_password_is_held_back_not_refused() {
    let dir = temp_dir("held");
    let options = Options {
        keeper: Some(keeper(
            &dir,
            RotationPolicy::default(),
            LockoutPolicy::default(),
        )),
        ..Options::default()
    };
    let agent = agent::start(options, synthetic);
    let password = published_password(&dir);
    match login(agent.addr, "typo") {
        Err(e) => assert!(e.is_auth_failure(), "{e:?}"),
        Ok(_) => panic!("a wrong password logged in"),
    }
    let started = Instant::now();
    login(agent.addr, &password).expect("the retyped password works");
    // The default policy makes the address wait a second after its first failure.
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not held: {:?}",
        started.elapsed()
    );
}
