//! `stun-server [PRIMARY [ALTERNATE]]`: a STUN Binding server on real UDP sockets.
//!
//! With one address (default `0.0.0.0:3478`) it answers Binding requests; with two —
//! different IP addresses and different ports, e.g. `127.0.0.1:3478 127.0.0.2:3479` — it
//! listens on all four combinations and behaves as RFC 5780 describes (CHANGE-REQUEST,
//! RESPONSE-ORIGIN, OTHER-ADDRESS), which also serves classic RFC 3489 clients such as the
//! `stun` command. All protocol logic is in [`stun_proto::binding::BindingServer`]; this file
//! only moves datagrams.

// An example drives the sans-IO machine with real sockets and threads (one blocking reader
// per socket), which the crate's clippy rules forbid inside the machines themselves.
#![allow(clippy::disallowed_methods)]

use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Instant;

use stun_proto::TransportProtocol;
use stun_proto::binding::{BindingServer, BindingServerConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |s: &String| s.parse::<SocketAddr>();
    let primary = match args.first().map(parse).transpose() {
        Ok(primary) => primary.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 3478))),
        Err(e) => return usage(&e.to_string()),
    };
    let alternate = match args.get(1).map(parse).transpose() {
        Ok(alternate) => alternate,
        Err(e) => return usage(&e.to_string()),
    };
    if let Some(alternate) = alternate {
        if alternate.ip() == primary.ip() || alternate.port() == primary.port() {
            return usage("the alternate address must differ in both IP and port");
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

fn usage(error: &str) -> ExitCode {
    eprintln!("stun-server: {error}");
    eprintln!("usage: stun-server [PRIMARY_ADDR:PORT [ALTERNATE_ADDR:PORT]]");
    ExitCode::from(2)
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
