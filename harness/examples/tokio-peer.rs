//! Two WebRTC-style transports (ICE + DTLS, `harness::peer::Peer`) in one tokio runtime, each
//! its own task with its own UDP socket on loopback, signalling over in-process channels: they
//! gather, check, select a pair, complete DTLS with fingerprints, export SRTP keys, exchange a
//! message over DTLS and close.
//!
//! The machine never awaits and never reads the clock; each task runs the loop every sans-IO
//! machine of this workspace wants: after each input, send what `poll_transmit` gives, forward
//! `poll_signal` and act on `poll_event`; then wait for the first of a datagram, a signal or
//! the `poll_timeout` deadline, and feed it back.
//!
//! `cargo run -p harness --example tokio-peer` exits 0 when both sides received the other's
//! message.

// An example drives the sans-IO machine with real sockets, real time and OS randomness.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dtls_proto::crypto::RustCrypto;
use dtls_proto::{CertificateParams, DtlsCertificate};
use harness::peer::{Event, Peer, PeerConfig, PeerDtlsConfig, PeerState, Setup, Signal};
use ice_proto::AgentConfig;
use ice_proto::TransportProtocol;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// How long a side may take to receive the other's message.
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let (to_b, from_a) = unbounded_channel();
    let (to_a, from_b) = unbounded_channel();
    let a = tokio::spawn(run(true, to_b, from_b));
    let b = tokio::spawn(run(false, to_a, from_a));
    let mut ok = true;
    for (name, side) in [("A", a), ("B", b)] {
        match side.await {
            Ok(Ok(report)) => println!("{name}: {report}"),
            Ok(Err(e)) => {
                eprintln!("{name}: {e}");
                ok = false;
            }
            Err(e) => {
                eprintln!("{name}: the task ended abnormally: {e}");
                ok = false;
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One side: binds, runs its Peer until the other side's message arrived and ours was sent.
async fn run(
    controlling: bool,
    signals_out: UnboundedSender<Signal>,
    mut signals_in: UnboundedReceiver<Signal>,
) -> Result<String, String> {
    let socket = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let base = socket.local_addr().map_err(|e| e.to_string())?;
    let mut rng = ChaCha20Rng::from_os_rng();
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let certificate =
        DtlsCertificate::generate(&RustCrypto, &mut rng, &CertificateParams::new(unix))
            .map_err(|e| e.to_string())?;
    let config = PeerConfig {
        ice: AgentConfig {
            controlling,
            ..AgentConfig::default()
        },
        bases: vec![base],
        tcp_bases: Vec::new(),
        relay_only: false,
        dtls: Some(PeerDtlsConfig {
            certificate,
            setup: if controlling {
                Setup::ActPass
            } else {
                Setup::Active
            },
            provider: &RustCrypto,
            versions: vec![dtls_proto::ProtocolVersion::Dtls12],
        }),
    };
    let mut peer = Peer::new(config, rng).map_err(|e| e.to_string())?;
    let me = if controlling { "A" } else { "B" };
    let started = Instant::now();
    peer.handle_start(started);
    let mut sent = false;
    let mut received = None;
    let mut buf = [0u8; 2048];
    loop {
        while let Some(t) = peer.poll_transmit() {
            // A datagram the OS refuses is like one lost: the machine's timers recover.
            let _ = socket.send_to(&t.payload, t.destination).await;
        }
        while let Some(signal) = peer.poll_signal() {
            // The other side may have finished already; its signals are no longer needed.
            let _ = signals_out.send(signal);
        }
        while let Some(event) = peer.poll_event() {
            match event {
                Event::StateChanged(PeerState::Ready) if !sent => {
                    let message = format!("hello from {me}");
                    peer.handle_send(Instant::now(), message.as_bytes())
                        .map_err(|e| e.to_string())?;
                    sent = true;
                }
                Event::StateChanged(PeerState::Failed(e)) => return Err(e.to_string()),
                Event::Data(d) => received = Some(String::from_utf8_lossy(&d).into_owned()),
                _ => {}
            }
        }
        if let (true, Some(message)) = (sent, &received) {
            let pair = peer
                .selected_types()
                .map_or("-".into(), |(l, r)| format!("{l} -> {r}"));
            let keys = peer
                .handshake()
                .and_then(|h| h.srtp.as_ref())
                .map_or(0, |k| k.material.len());
            return Ok(format!(
                "received {message:?} after {:?}; pair {pair}; {keys} bytes of SRTP keys",
                started.elapsed()
            ));
        }
        let deadline = peer
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_millis(100));
        tokio::select! {
            datagram = socket.recv_from(&mut buf) => {
                let (n, source): (usize, SocketAddr) = datagram.map_err(|e| e.to_string())?;
                peer.handle_datagram(Instant::now(), TransportProtocol::Udp, source, base, &buf[..n]);
            }
            Some(signal) = signals_in.recv() => peer.handle_signal(Instant::now(), signal),
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                peer.handle_timeout(Instant::now());
            }
        }
        if started.elapsed() > PATIENCE {
            return Err(format!(
                "no message from the other side within {PATIENCE:?}"
            ));
        }
    }
}
