//! `tokio-binding SERVER:PORT`: what is my address as the server sees it? — the sans-IO
//! [`BindingClient`] embedded in a tokio task over a tokio UDP socket.
//!
//! The drive loop is the same in any runtime: after each input, send what `poll_transmit`
//! gives and read `poll_event`; then wait for whichever comes first, a datagram or the
//! deadline of `poll_timeout`, and feed it back as `handle_datagram` or `handle_timeout`. The
//! machine never awaits anything and never reads the clock: the task does.

// An example drives the sans-IO machine with a real socket, real time and OS randomness,
// which the crate's clippy rules forbid inside the machines themselves.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use stun_proto::TransportProtocol;
use stun_proto::binding::{BindingClient, BindingEvent, BindingOptions, BindingResult};
use stun_proto::transaction::TransactionConfig;
use tokio::net::UdpSocket;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let server = match std::env::args().nth(1).map(|s| s.parse::<SocketAddr>()) {
        Some(Ok(server)) => server,
        _ => {
            eprintln!("usage: tokio-binding SERVER_IP:PORT");
            return ExitCode::from(2);
        }
    };
    match query(server).await {
        Ok(result) => {
            println!("mapped address {}", result.mapped);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tokio-binding: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One Binding transaction to `server`, retransmitted by the machine's timers until answered
/// or given up (RFC 8489 §6.2.1: 39.5 s with the default configuration).
async fn query(server: SocketAddr) -> Result<BindingResult, Box<dyn std::error::Error>> {
    let unspecified: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let socket = UdpSocket::bind(unspecified).await?;
    socket.connect(server).await?;
    let local = socket.local_addr()?;
    let config = TransactionConfig::default();
    let mut client = BindingClient::new(
        local,
        TransportProtocol::Udp,
        config,
        ChaCha20Rng::from_os_rng(),
    );
    client.handle_query(Instant::now(), server, BindingOptions::default())?;
    let mut buf = [0u8; 2048];
    loop {
        while let Some(t) = client.poll_transmit() {
            socket.send_to(&t.payload, t.destination).await?;
        }
        while let Some(event) = client.poll_event() {
            match event {
                BindingEvent::Mapped { result, .. } => return Ok(result),
                BindingEvent::Failed { failure, .. } => return Err(format!("{failure:?}").into()),
                _ => {}
            }
        }
        let Some(deadline) = client.poll_timeout() else {
            return Err("nothing scheduled and no answer".into());
        };
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (n, from) = received?;
                let udp = TransportProtocol::Udp;
                client.handle_datagram(Instant::now(), udp, from, client.local(), &buf[..n]);
            }
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {
                client.handle_timeout(Instant::now());
            }
        }
    }
}
