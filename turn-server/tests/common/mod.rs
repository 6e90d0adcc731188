//! Helpers for tests that run the `turn-server` binary, shared by its interop tests and the
//! browser suite (`harness/tests/browser`, which includes this file by path): reading its
//! Prometheus endpoint, and "TURN REST API" credentials for a shared secret.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use stun_proto::shared_secret::SharedSecrets;

/// A value of the metrics endpoint at `metrics`, e.g. `turn_allocations` or
/// `turn_auth_failures_total{reason="expired"}`.
pub fn metric(metrics: SocketAddr, name: &str) -> u64 {
    let mut stream = TcpStream::connect(metrics).expect("connect to metrics");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send the request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read metrics");
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {response}"))
}

/// The username `<expiry>:<user>` and its password under `secret`, as a deployment's web
/// service hands them out (`expiry` in Unix seconds).
pub fn rest_credentials(secret: &str, user: &str, expiry: u64) -> (String, String) {
    let username = format!("{expiry}:{user}");
    let mut secrets = SharedSecrets::default();
    secrets.add_secret(secret).expect("a valid secret");
    let password = secrets
        .passwords(&username)
        .next()
        .expect("one secret, one password");
    (username, password)
}
