//! `harness matrix`: its options, and the run that prints the matrix.

// The command line reports the real time the matrix took; nothing in the simulation reads it.
#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use harness::NatPreset;
use harness::matrix::{Liveness, MatrixOptions, print_table, run_matrix};

use crate::cli;

/// The options of `harness matrix`. Their defaults are [`MatrixOptions::default`]'s (a test
/// holds them equal).
#[derive(Clone, Debug, clap::Args)]
pub struct MatrixArgs {
    /// Loss probability on every link: a fraction (0.1) or a percentage (10%).
    #[arg(long, value_name = "P", default_value = "0", allow_hyphen_values = true, value_parser = cli::loss)]
    loss: f64,
    /// One-way latency of every link, in milliseconds.
    #[arg(long, value_name = "MS", default_value = "10", allow_negative_numbers = true, value_parser = cli::millis)]
    delay: Duration,
    /// The seed every cell's world is drawn from (mixed with the cell's position).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    seed: u64,
    /// IPv6 addresses everywhere (the NAT boxes translate IPv6 too).
    #[arg(long)]
    ipv6: bool,
    /// Write one pcap capture per cell into this directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
    /// How long the call runs after selection, in seconds; both peers must still be connected
    /// at its end.
    #[arg(long, value_name = "SECS", default_value = "60", allow_negative_numbers = true, value_parser = cli::seconds)]
    hold: Duration,
    /// NAT mapping lifetime, in seconds: a mapping expires this long after its last outbound
    /// datagram.
    #[arg(long, value_name = "SECS", default_value = "30", allow_negative_numbers = true, value_parser = cli::seconds)]
    mapping_lifetime: Duration,
    /// How long a cell may take to settle (select a pair or fail), in virtual seconds.
    #[arg(long, value_name = "SECS", default_value = "60", allow_negative_numbers = true, value_parser = cli::seconds)]
    timeout: Duration,
    /// The presets to run, comma-separated (every pair of them, both ways).
    #[arg(
        long,
        value_name = "a,b,…",
        value_enum,
        value_delimiter = ',',
        default_value = "open,full-cone,restricted,port-restricted,symmetric,symmetric-seq,cgnat-double,udp-blocked"
    )]
    presets: Vec<NatPreset>,
    /// How often each peer sends a ping once ready, in seconds (above the mapping lifetime:
    /// an idle call, held by ICE alone).
    #[arg(long, value_name = "SECS", default_value = "1", allow_negative_numbers = true, value_parser = cli::interval)]
    ping_interval: Duration,
    /// RFC 7675 consent check interval in seconds (randomized ±20%), or `off`.
    #[arg(long, value_name = "SECS|off", default_value = "5", allow_negative_numbers = true, value_parser = cli::interval_or_off)]
    consent_interval: cli::IntervalOrOff,
    /// RFC 8445 §11 keepalive interval Tr in seconds (acts when consent is off).
    #[arg(long, value_name = "SECS", default_value = "15", allow_negative_numbers = true, value_parser = cli::interval)]
    keepalive: Duration,
}

impl MatrixArgs {
    fn options(&self) -> MatrixOptions {
        MatrixOptions {
            loss: self.loss,
            delay: self.delay,
            seed: self.seed,
            ipv6: self.ipv6,
            pcap_dir: self.pcap.clone(),
            hold: self.hold,
            mapping_lifetime: self.mapping_lifetime,
            liveness: Liveness {
                ping_interval: self.ping_interval,
                consent_interval: self.consent_interval.0,
                keepalive_interval: self.keepalive,
            },
            timeout: self.timeout,
            presets: self.presets.clone(),
        }
    }
}

/// Runs `harness matrix` to its exit code.
pub fn run(args: &MatrixArgs) -> ExitCode {
    let options = args.options();
    if let Some(dir) = &options.pcap_dir {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("--pcap {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    let started = Instant::now();
    let cells = match run_matrix(&options) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Matrix {
        #[command(flatten)]
        args: MatrixArgs,
    }

    fn parse(s: &str) -> Result<MatrixOptions, String> {
        use clap::Parser;
        let argv = std::iter::once("matrix").chain(s.split_whitespace());
        Matrix::try_parse_from(argv)
            .map(|m| m.args.options())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_shown_in_help_are_the_library_s() {
        let o = parse("").unwrap();
        let d = MatrixOptions::default();
        assert_eq!(
            (o.loss, o.delay, o.seed, o.ipv6, &o.pcap_dir),
            (d.loss, d.delay, d.seed, d.ipv6, &d.pcap_dir)
        );
        assert_eq!(
            (
                o.hold,
                o.mapping_lifetime,
                o.timeout,
                o.liveness,
                &o.presets
            ),
            (
                d.hold,
                d.mapping_lifetime,
                d.timeout,
                d.liveness,
                &d.presets
            )
        );
    }

    #[test]
    fn every_option_parses() {
        let o = parse(
            "--loss 10% --delay 2.5 --seed 7 --ipv6 --pcap /tmp/x --hold 0 --mapping-lifetime 5 \
             --timeout 9 --presets open,symmetric --ping-interval 40 --consent-interval off \
             --keepalive 3",
        )
        .unwrap();
        assert_eq!(
            (o.loss, o.delay, o.seed),
            (0.1, Duration::from_micros(2500), 7)
        );
        assert!(o.ipv6 && o.pcap_dir == Some(PathBuf::from("/tmp/x")));
        assert_eq!(o.presets, [NatPreset::Open, NatPreset::Symmetric]);
        assert_eq!(o.liveness.consent_interval, None);
        assert_eq!(o.liveness.keepalive_interval, Duration::from_secs(3));
        assert_eq!(o.liveness.ping_interval, Duration::from_secs(40));
        assert_eq!(
            (o.hold, o.timeout),
            (Duration::ZERO, Duration::from_secs(9))
        );
    }

    #[test]
    fn bad_values_name_the_option_and_the_value() {
        for (args, what) in [
            ("--delay -5", "negative"),
            ("--hold -1", "negative"),
            ("--hold inf", "too large"),
            ("--ping-interval nan", "NaN"),
            ("--ping-interval 0", "more than 0"),
            ("--consent-interval 0", "more than 0"),
            ("--keepalive 0", "more than 0"),
            ("--loss 150%", "percentage"),
            ("--seed -1", "-1"),
        ] {
            let e = parse(args).unwrap_err();
            let (option, value) = args.split_once(' ').unwrap();
            assert!(
                e.contains(option) && e.contains(value) && e.contains(what),
                "{args}: {e}"
            );
        }
        let e = parse("--presets open,symetric").unwrap_err();
        assert!(e.contains("'symetric'") && e.contains("'symmetric'"), "{e}");
    }
}
