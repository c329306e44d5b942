//! What the gateway will serve: a public address only with client
//! authentication or an explicit opt-out, and the README's Security example
//! is a config it accepts.

mod support;

use support::*;

#[test]
fn a_public_address_is_served_only_with_auth_or_an_explicit_opt_out() {
    let open = TempFile::new("yaml", "listen: \"0.0.0.0:0\"\n");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--config"])
        .arg(&open.path)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("refusing to serve 0.0.0.0:0 without client authentication"),
        "{message}"
    );
    assert!(message.contains("--insecure-no-auth"), "{message}");

    let mut opted_out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    opted_out
        .args(["serve", "--insecure-no-auth", "--config"])
        .arg(&open.path);
    let _served = Proc::start(opted_out, "switchboard listening on");

    let with_auth = TempFile::new(
        "yaml",
        "listen: \"0.0.0.0:0\"\nauth:\n  apiKeys:\n    - subject: ops\n      key: \"ops-key-0123456789abcdef\"\nauthorization:\n  - subjects: [ops]\n    allow: [\"*\"]\n",
    );
    let mut authenticated = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
    authenticated
        .args(["serve", "--config"])
        .arg(&with_auth.path);
    let _served = Proc::start(authenticated, "switchboard listening on");
}

/// The README's Security example is a config `check-config` accepts.
#[test]
fn the_readme_security_example_is_a_valid_config() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let section = &readme[readme.find("## Security").expect("a Security section")..];
    let start = section.find("```yaml\n").unwrap() + "```yaml\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let file = TempFile::new("yaml", example);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("check-config")
        .arg(&file.path)
        .env("ALICE_KEY", "alice-key-from-the-environment")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
