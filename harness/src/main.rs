//! `harness`: the NAT traversal matrix, and the full peer over real UDP.
//!
//! ```text
//! harness matrix [--loss P] [--delay MS] [--seed N] [--ipv6] [--pcap DIR]
//!                [--hold SECS] [--mapping-lifetime SECS] [--timeout SECS] [--presets a,b,…]
//!                [--ping-interval SECS] [--consent-interval SECS|off] [--keepalive SECS]
//! harness peer [--controlling] [--ip ADDR] [--stun HOST:PORT] [--turn HOST:PORT USER PASS]
//!              [--turn-transport udp|tcp] [--relay-only] [--count N] [--dtls] [--timeout SECS]
//! ```
//! `matrix` exits 1 if any cell misses its expectation, 2 on bad arguments. `peer` speaks
//! JSON lines on stdin/stdout (see `docs/peer.md`) and exits 0 when all its pings were
//! echoed, 1 when ICE or DTLS failed or data is incomplete, 2 on timeout or bad arguments.

// The command line reports the real time the matrix took; nothing in the simulation reads it.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use harness::NatPreset;
use harness::matrix::{MatrixOptions, print_table, run_matrix};

mod mdns_socket;
mod peer_cli;

const USAGE: &str = "usage: harness matrix [--loss P] [--delay MS] [--seed N] [--ipv6] [--pcap DIR] \\
                      [--hold SECS] [--mapping-lifetime SECS] [--timeout SECS] [--presets a,b,...] \\
                      [--ping-interval SECS] [--consent-interval SECS|off] [--keepalive SECS]
presets: open full-cone restricted port-restricted symmetric symmetric-seq cgnat-double udp-blocked";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        Some((command, rest)) if command == "matrix" => match parse_matrix(rest) {
            Ok(options) => matrix(&options),
            Err(e) => {
                eprintln!("{e}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        Some((command, rest)) if command == "peer" => match peer_cli::parse(rest) {
            Ok(options) => peer_cli::run(&options),
            Err(e) => {
                eprintln!("{e}\n{}", peer_cli::USAGE);
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("{USAGE}\n{}", peer_cli::USAGE);
            ExitCode::from(2)
        }
    }
}

fn parse_matrix(args: &[String]) -> Result<MatrixOptions, String> {
    let mut o = MatrixOptions::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--loss" => {
                let v = value()?;
                let loss = match v.strip_suffix('%') {
                    Some(percent) => number(percent)? / 100.0,
                    None => number(v)?,
                };
                if !(0.0..=1.0).contains(&loss) {
                    return Err(format!("--loss {v}: a fraction 0..1 or a percentage"));
                }
                o.loss = loss;
            }
            "--delay" => o.delay = Duration::from_secs_f64(number(value()?)? / 1000.0),
            "--seed" => o.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--ipv6" => o.ipv6 = true,
            "--pcap" => o.pcap_dir = Some(PathBuf::from(value()?)),
            "--hold" => o.hold = Duration::from_secs_f64(number(value()?)?),
            "--mapping-lifetime" => o.mapping_lifetime = Duration::from_secs_f64(number(value()?)?),
            "--timeout" => o.timeout = Duration::from_secs_f64(number(value()?)?),
            "--ping-interval" => {
                o.liveness.ping_interval = Duration::from_secs_f64(number(value()?)?);
            }
            "--consent-interval" => {
                o.liveness.consent_interval = match value()?.as_str() {
                    "off" => None,
                    v => Some(Duration::from_secs_f64(number(v)?)),
                };
            }
            "--keepalive" => {
                o.liveness.keepalive_interval = Duration::from_secs_f64(number(value()?)?);
            }
            "--presets" => {
                o.presets = value()?
                    .split(',')
                    .map(|name| {
                        NatPreset::ALL
                            .into_iter()
                            .find(|p| p.name() == name)
                            .ok_or(format!("unknown preset {name}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn matrix(options: &MatrixOptions) -> ExitCode {
    if let Some(dir) = &options.pcap_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("--pcap {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    let started = Instant::now();
    let cells = match run_matrix(options) {
        Ok(cells) => cells,
        Err(e) => {
            eprintln!("matrix: {e}");
            return ExitCode::from(2);
        }
    };
    let wall = started.elapsed();
    let mut out = std::io::stdout().lock();
    let printed = print_table(&cells, &mut out);
    println!(
        "loss {:.0}%, delay {:?}, seed {}, {}, mapping lifetime {:?}, hold {:?}, pings every {:?}, \
         consent {}, keepalive {:?}; wall time {:.2}s",
        options.loss * 100.0,
        options.delay,
        options.seed,
        if options.ipv6 { "IPv6" } else { "IPv4" },
        options.mapping_lifetime,
        options.hold,
        options.liveness.ping_interval,
        options
            .liveness
            .consent_interval
            .map_or("off".to_owned(), |i| format!("every {i:?}")),
        options.liveness.keepalive_interval,
        wall.as_secs_f64()
    );
    if printed.is_err() || cells.iter().any(|c| !c.met()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
