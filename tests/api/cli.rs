//! The command line: help texts, and what stops `serve` before it starts
//! (checklist row C2).

use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::process::*;

#[test]
fn serve_help_names_the_signing_secret_and_every_database_url_form() {
    let output = command(Path::new("."))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for says in [
        "TODO_API_JWT_SECRET",
        "openssl rand",
        "sqlite:PATH",
        "sqlite://PATH",
        "postgres://",
    ] {
        assert!(
            help.contains(says),
            "serve --help does not say {says:?}:\n{help}"
        );
    }
    let output = command(Path::new("."))
        .args(["create-user", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for option in ["--username", "--name", "--email"] {
        let described = help
            .lines()
            .skip_while(|line| !line.trim_start().starts_with(option))
            .nth(1)
            .is_some_and(|line| !line.trim().is_empty());
        assert!(
            described,
            "create-user --help leaves {option} blank:\n{help}"
        );
    }
}

#[test]
fn a_taken_port_stops_serve_before_the_database_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let main_port_taken = vec!["--bind", address.as_str()];
    let metrics_port_taken = vec!["--bind", "127.0.0.1:0", "--metrics-bind", address.as_str()];
    for extra in [main_port_taken, metrics_port_taken] {
        let output = command(dir.path())
            .args(["serve", "--demo"])
            .args(&extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{extra:?}: {stderr}");
        assert!(stderr.contains("cannot listen on"), "{extra:?}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{extra:?} left {left:?} behind");
    }
}

#[test]
fn serve_refuses_a_trusted_proxy_that_is_no_address_nor_network() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["10.0.0.0/33", "proxy.example", "10.0.0.1,nonsense"] {
        let output = command(dir.path())
            .args(["serve", "--bind", "127.0.0.1:0", "--trusted-proxies", bad])
            .env("TODO_API_JWT_SECRET", RUN_SECRET)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{bad}: {stderr}");
        assert!(stderr.contains("the trusted proxy"), "{bad}: {stderr}");
        assert!(
            !dir.path().join("ops.db").exists(),
            "{bad}: the database was touched"
        );
    }
}

#[test]
fn c2_serve_refuses_to_start_without_a_strong_jwt_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(Option<String>, &str); 2] =
        [(None, "is not set"), (Some("x".repeat(31)), "31 bytes")];
    for (secret, says) in cases {
        let mut command = command(dir.path());
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(secret) = &secret {
            command.env("TODO_API_JWT_SECRET", secret);
        }
        let mut child = command.spawn().unwrap();
        let status = wait_bounded(&mut child, Duration::from_secs(20))
            .expect("the server should refuse to start, not run");
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(!status.success(), "{secret:?}");
        assert!(stderr.contains("TODO_API_JWT_SECRET"), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}
