//! Helpers the interop test binaries share: finding the real peers we did not write, the
//! examples `cargo test` builds, and child processes that die with the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Finds `binary` on PATH. Outside CI a missing one skips the test with a message naming the
/// Debian `package`; with `CI=true` it fails the test.
pub fn require(binary: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(binary))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        let message = format!("`{binary}` not found: install the Debian package `{package}`");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// An example binary of this package, which `cargo test` builds next to the test binaries.
pub fn example(name: &str) -> PathBuf {
    built(&Path::new("examples").join(name))
}

/// A program cargo built into this profile's target folder (`target/debug`): `path` is
/// `examples/<name>` for an example, or a binary's name (another package's binary is there
/// only if it was built: `cargo test --workspace` builds them all).
pub fn built(path: &Path) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let program = profile.join(path);
    assert!(
        program.is_file(),
        "{} missing: run through `cargo test` (an example) or build it (a binary: `cargo \
         build -p <package>`, or `cargo test --workspace`)",
        program.display()
    );
    program
}

/// A child process killed when the test ends, however it ends.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// coturn's `turnserver` listening on `port`, as the interop tests start it: no configuration
/// file, no TLS, DTLS or CLI listeners, its log discarded. Add the credentials and addresses,
/// then [`spawn`].
pub fn coturn(turnserver: &Path, port: u16) -> Command {
    let mut command = Command::new(turnserver);
    command
        .args(["-n", "--no-tls", "--no-dtls", "--no-cli"])
        .args(["--listening-port", &port.to_string()])
        .args(["--log-file", "stdout", "--simple-log"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// `coturn` relaying on 127.0.0.1 from the 40 ports above `port`, to loopback peers too.
pub fn coturn_relay(turnserver: &Path, port: u16) -> Command {
    let mut command = coturn(turnserver, port);
    command
        .args(["-L", "127.0.0.1", "--relay-ip", "127.0.0.1"])
        .args(["--min-port", &(port + 1).to_string()])
        .args(["--max-port", &(port + 40).to_string()])
        .arg("--allow-loopback-peers");
    command
}

/// Starts `command`, a child killed when the test ends.
pub fn spawn(mut command: Command) -> Running {
    Running(command.spawn().expect("start the third-party server"))
}
