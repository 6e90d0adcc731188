//! `stun-server [PRIMARY [ALTERNATE]]`: a STUN Binding server on real UDP sockets.
//!
//! With one address (default `0.0.0.0:3478`) it answers Binding requests; with two —
//! different IP addresses and different ports, e.g. `127.0.0.1:3478 127.0.0.2:3479` — it
//! listens on all four combinations and behaves as RFC 5780 describes (CHANGE-REQUEST,
//! RESPONSE-ORIGIN, OTHER-ADDRESS), which also serves classic RFC 3489 clients such as the
//! `stun` command. All protocol logic is in [`stun_proto::binding::BindingServer`]; this file
//! only moves datagrams. `--help` describes the arguments; a bad one exits 2 naming it (clap,
//! as `harness matrix` and `harness peer` do).

// An example drives the sans-IO machine with real sockets and threads (one blocking reader
// per socket), which the crate's clippy rules forbid inside the machines themselves.
#![allow(clippy::disallowed_methods)]

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Instant;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use stun_proto::TransportProtocol;
use stun_proto::binding::{BindingServer, BindingServerConfig};

/// A STUN Binding server on real UDP sockets; with an alternate address, an RFC 5780 server
/// on all four combinations of the two IPs and two ports.
#[derive(Debug, Parser)]
#[command(name = "stun-server", version)]
struct Options {
    /// The primary address.
    #[arg(value_name = "PRIMARY_ADDR:PORT", default_value = "0.0.0.0:3478")]
    primary: SocketAddr,
    /// The RFC 5780 alternate address: a different IP and a different port.
    #[arg(value_name = "ALTERNATE_ADDR:PORT")]
    alternate: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let Options { primary, alternate } = Options::parse();
    if let Some(alternate) = alternate {
        if alternate.ip() == primary.ip() || alternate.port() == primary.port() {
            Options::command()
                .error(
                    ErrorKind::ArgumentConflict,
                    format!(
                        "the alternate address {alternate} must differ from {primary} in both \
                         IP and port"
                    ),
                )
                .exit();
        }
    }
    let mut config = BindingServerConfig::new(primary);
    config.alternate = alternate;
    match serve(BindingServer::new(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stun-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(mut server: BindingServer) -> std::io::Result<()> {
    let (tx, rx) = mpsc::sync_channel::<(SocketAddr, SocketAddr, Vec<u8>)>(1024);
    let mut sockets = Vec::new();
    for address in server.local_addresses() {
        let socket = UdpSocket::bind(address)?;
        println!("listening on {}", socket.local_addr()?);
        let reader = socket.try_clone()?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            loop {
                match reader.recv_from(&mut buf) {
                    // A full queue drops the datagram, as a busy socket would.
                    Ok((len, from)) => {
                        let _ = tx.try_send((address, from, buf[..len].to_vec()));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(e) => {
                        eprintln!("stun-server: receive on {address}: {e}");
                        return;
                    }
                }
            }
        });
        sockets.push((address, socket));
    }
    drop(tx);
    for (local, from, datagram) in rx {
        server.handle_datagram(
            Instant::now(),
            TransportProtocol::Udp,
            from,
            local,
            &datagram,
        );
        while let Some(t) = server.poll_transmit() {
            if let Some((_, socket)) = sockets.iter().find(|(a, _)| *a == t.source) {
                if let Err(e) = socket.send_to(&t.payload, t.destination) {
                    eprintln!("stun-server: send to {}: {e}", t.destination);
                }
            }
        }
    }
    Ok(())
}
