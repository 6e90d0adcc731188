//! Running the `openssl` binary: certificates, `s_server`/`s_client` processes with bounded
//! waits, killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// True when the binary runs; otherwise skip (outside CI) or fail (CI=true).
pub fn available() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the openssl binary is required in CI (install the openssl package)");
        }
        eprintln!("SKIP: openssl binary not found; install it to run the DTLS interop tests");
    }
    ok
}

/// A scratch directory removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "dtls-proto-interop-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An ECDSA P-256 self-signed certificate made by OpenSSL: (cert.pem, key.pem, DER bytes).
pub fn certificate(dir: &Scratch) -> (PathBuf, PathBuf, Vec<u8>) {
    let (cert, key, der) = (
        dir.path("cert.pem"),
        dir.path("key.pem"),
        dir.path("cert.der"),
    );
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        path(&key),
        "-out",
        path(&cert),
        "-days",
        "2",
        "-subj",
        "/CN=openssl-peer",
    ]);
    run(&[
        "x509",
        "-in",
        path(&cert),
        "-outform",
        "DER",
        "-out",
        path(&der),
    ]);
    let der = std::fs::read(&der).unwrap();
    (cert, key, der)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `openssl s_server`/`s_client`, its output lines collected by reader threads.
pub struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    pub log: Vec<String>,
}

fn pump(stream: impl Read + Send + 'static, tx: Sender<String>) {
    #[allow(clippy::disallowed_methods)] // test plumbing: read the child's output off-thread
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

impl Process {
    pub fn spawn(args: &[String]) -> Self {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = channel();
        pump(child.stdout.take().unwrap(), tx.clone());
        pump(child.stderr.take().unwrap(), tx);
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits up to `timeout` for a line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        if let Some(l) = self.log.iter().find(|l| l.contains(needle)) {
            return Some(l.clone());
        }
        #[allow(clippy::disallowed_methods)] // interop runs in real time
        let end = Instant::now() + timeout;
        loop {
            #[allow(clippy::disallowed_methods)] // interop runs in real time
            let left = end.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.log.push(line.clone());
            if line.contains(needle) {
                return Some(line);
            }
        }
    }

    /// Everything the process printed, after giving it half a second to finish printing.
    pub fn dump(&mut self) -> String {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
            self.log.push(line);
        }
        self.log.join("\n")
    }

    pub fn write_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The hex after `Keying material: ` in an OpenSSL output line.
pub fn keying_material(line: &str) -> Option<String> {
    Some(
        line.split("Keying material: ")
            .nth(1)?
            .trim()
            .to_uppercase(),
    )
}
