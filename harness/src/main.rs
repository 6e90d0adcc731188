//! `harness`: the NAT traversal matrix, and the full peer over real UDP.
//!
//! ```text
//! harness matrix [OPTIONS]   every pair of NAT presets in the simulator (docs/harness.md)
//! harness peer [OPTIONS]     the peer over real UDP, JSON lines on stdin/stdout (docs/peer.md)
//! harness sfu [OPTIONS]      many peers behind NATs joining one SFU port, in the simulator
//! ```
//! `harness --help` and `harness <command> --help` describe every option and its default. Bad
//! arguments exit 2 with a message naming the option and the value. `matrix` exits 1 if any
//! cell misses its expectation. `peer` exits 0 when all its pings were echoed, 1 when ICE or
//! DTLS failed or data is incomplete, 2 on timeout.
//!
//! The command lines are parsed with clap (derive): it gives `--help` with every option and
//! default, errors that name the option and value with exit code 2, and suggestions for
//! misspelt options and preset names, the same way in every subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;
mod ice_tcp_io;
mod matrix_cli;
mod mdns_socket;
mod peer_cli;
mod sfu_cli;

/// The NAT traversal matrix in a deterministic simulator, and the full WebRTC-style peer
/// (ICE + DTLS) over real UDP.
#[derive(Debug, Parser)]
#[command(name = "harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs every pair of NAT presets, both ways, each in a fresh simulated world with a STUN
    /// and a TURN server; exits 1 if a cell misses its expectation from NAT theory.
    Matrix(matrix_cli::MatrixArgs),
    /// Runs the peer (ICE, optionally DTLS) over a real UDP socket, signalling with JSON lines
    /// on stdin and stdout (docs/peer.md).
    Peer(peer_cli::PeerArgs),
    /// Runs many peers behind assorted NATs joining one SFU endpoint on one port (ICE-lite
    /// sessions, DTLS per session); exits 1 unless every peer became ready and stayed
    /// connected.
    Sfu(sfu_cli::SfuArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // RUST_LOG=ice=info,dtls=info,turn=info (or `info`) prints the protocol crates' diagnostics
    // on stderr; stdout stays the subcommand's (the peer's JSON lines, the matrix's table).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match cli.command {
        Command::Matrix(args) => matrix_cli::run(&args),
        Command::Peer(args) => peer_cli::run(&args),
        Command::Sfu(args) => sfu_cli::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
