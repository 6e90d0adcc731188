//! `harness sfu`: many peers behind assorted NATs joining one SFU endpoint on one port
//! (`harness::sfu`); prints how many became ready and stayed connected, and exits 1 unless
//! all did.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use harness::sfu::{self, SfuOptions, SfuReport};

use crate::cli;

/// The SFU scenario's options.
#[derive(Debug, Args)]
pub struct SfuArgs {
    /// How many peers join (each behind a NAT of the matrix's presets in turn, UDP-blocking
    /// left out).
    #[arg(long, value_name = "N", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    peers: u32,
    /// ICE only: no DTLS on the sessions.
    #[arg(long)]
    no_dtls: bool,
    /// Loss probability on every link: a fraction (0.02) or a percentage (2%).
    #[arg(long, value_name = "P", default_value = "0", allow_hyphen_values = true, value_parser = cli::loss)]
    loss: f64,
    /// One-way latency of every link, in milliseconds.
    #[arg(long, value_name = "MS", default_value = "10", allow_negative_numbers = true, value_parser = cli::millis)]
    delay: Duration,
    /// How long the calls run, in seconds of virtual time.
    #[arg(long, value_name = "SECS", default_value = "10", allow_negative_numbers = true, value_parser = cli::interval)]
    duration: Duration,
    /// The world's seed.
    #[arg(long, value_name = "N", default_value_t = 1)]
    seed: u64,
}

/// Runs the scenario and prints its report.
pub fn run(args: &SfuArgs) -> ExitCode {
    let options = SfuOptions {
        peers: args.peers as usize,
        dtls: !args.no_dtls,
        loss: args.loss,
        delay: args.delay,
        duration: args.duration,
        seed: args.seed,
    };
    #[allow(clippy::disallowed_methods)] // wall time of the run, for the report
    let began = Instant::now();
    let report = sfu::run(&options);
    let wall = began.elapsed();
    let times = report.ready_quantiles([0.5, 0.9, 0.99, 1.0]).map_or_else(
        || "-".to_owned(),
        |[m, p90, p99, x]| {
            let s = |d: Duration| format!("{:.3}s", d.as_secs_f64());
            format!(
                "median {}, p90 {}, p99 {}, max {}",
                s(m),
                s(p90),
                s(p99),
                s(x)
            )
        },
    );
    let all = report.ready.len() == report.peers && report.connected == report.peers;
    let mut out = std::io::stdout().lock();
    // stdout closed early (`| head`): the report is nobody's; the exit code still says.
    let _ = print(&mut out, &options, &report, &times, wall);
    if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print(
    out: &mut impl Write,
    options: &SfuOptions,
    report: &SfuReport,
    times: &str,
    wall: Duration,
) -> std::io::Result<()> {
    let sessions = if options.dtls {
        "ICE-lite + DTLS"
    } else {
        "ICE-lite only"
    };
    writeln!(
        out,
        "{} peers, one SFU port, {}% loss on every link, {} ms latency, {sessions}, seed {}",
        report.peers,
        options.loss * 100.0,
        options.delay.as_millis(),
        options.seed
    )?;
    writeln!(
        out,
        "ready: {}/{} ({times}); connected at the end: {}; SFU sessions connected: {}, DTLS done: {}",
        report.ready.len(),
        report.peers,
        report.connected,
        report.sfu_connected,
        report.sfu_secured
    )?;
    writeln!(
        out,
        "echoed {} datagrams; the simulator delivered {} and dropped {}; wall time {:.2}s",
        report.echoed,
        report.delivered,
        report.dropped,
        wall.as_secs_f64()
    )?;
    for (preset, why) in &report.failures {
        writeln!(out, "failed behind {}: {why}", preset.name())?;
    }
    Ok(())
}
