//! `harness matrix`: its options, and the run that prints the matrix. Cells run in parallel on
//! std threads (each is its own world, so the results do not depend on the threads); a
//! progress line goes to stderr when it is a terminal.

// The command line reports the real time the matrix took; nothing in the simulation reads it.
#![allow(clippy::disallowed_methods)]

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harness::NatPreset;
use harness::matrix::report::{Sweep, print_csv, print_json, print_table};
use harness::matrix::{Cell, Liveness, MatrixOptions, pairs, run_standard_cell};

use crate::cli;

/// The options of `harness matrix`. Their defaults are [`MatrixOptions::default`]'s (a test
/// holds them equal).
#[derive(Clone, Debug, clap::Args)]
#[command(after_help = COLUMNS)]
pub struct MatrixArgs {
    /// How to print the cells: a table for people, JSON lines (one object per cell) or CSV.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Run every cell with N seeds (--seed, --seed + 1, …) and print each cell's success
    /// rate and misses by cause, and the whole matrix's.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=MAX_SEEDS))]
    seeds: u32,
    /// Cells run at once, on this many threads [default: the number of CPUs].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
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
    /// Let inbound datagrams refresh NAT mappings too, as Linux conntrack does (by default
    /// only outbound ones do).
    #[arg(long)]
    inbound_refresh: bool,
    /// How long a cell may take to settle (select a pair or fail), in virtual seconds.
    #[arg(long, value_name = "SECS", default_value = "60", allow_negative_numbers = true, value_parser = cli::seconds)]
    timeout: Duration,
    /// The presets to run, comma-separated (every pair of them, both ways).
    #[arg(
        long,
        value_name = "a,b,…",
        value_enum,
        value_delimiter = ',',
        default_value = "open,full-cone,restricted,port-restricted,symmetric,symmetric-seq,cgnat-double,udp-blocked,corporate,http-only"
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

/// The most seeds `--seeds` takes.
const MAX_SEEDS: i64 = 100_000;

/// What `harness matrix --help` says after the options: the columns.
const COLUMNS: &str = "Columns (--format table; JSON and CSV have the same fields):
  expect     what NAT theory gives: direct, relay or fail (docs/harness.md)
  outcome    the class of the pair the call ended on (direct host/srflx/prflx, relay), or
             failed, or timeout (neither a pair nor a failure within --timeout)
  pair       that pair as the controlling peer A saw it: A's candidate type → B's
             (srflx→relay: A sent from its server-reflexive mapping to B's relay)
  time       virtual time from the start until both peers selected a pair (or one failed)
  DTLS done  virtual time from the start until both completed the DTLS handshake; often less
             than time: DTLS starts on the first pair that passed its checks, before ICE
             nominates it and both sides select it
  ready      virtual time until both peers were ready: a selected pair and DTLS keys each
  no path    in a cell never ready: virtual time until both peers had learnt there is no
             path (ICE's early disconnected, once every check failed or went unanswered
             5 s, or the failure)
  held       both still connected at the end of --hold (no:consent: consent expired)
  one path   both directions on one pair over the hold's last 10 s: each side's selected
             pair received the other's pings (NO: each sends on a pair the other does not
             receive on); - when not measured (hold under 10 s, pings rarer than that)
  packets    datagrams the two peers sent until both selected a pair (until time)
  ok, why    whether the cell met its expectation; if not, the cause, and below the table
             the reason in words
Below the table: the medians of time and ready over the cells that became ready, and of
no path over the others.
With --seeds N: each cell's runs met, its rate and its misses by cause, then the overall rate.
Exit: 0 every cell met its expectation, 1 one did not, 2 bad arguments or --pcap I/O.";

/// How `harness matrix` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
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
            inbound_refreshes: self.inbound_refresh,
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
        if args.seeds > 1 {
            eprintln!("error: --pcap writes one capture per cell: use it with one seed");
            return ExitCode::from(2);
        }
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("error: --pcap {}: {e}", dir.display());
            return ExitCode::from(2);
        }
    }
    let started = Instant::now();
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, usize::from),
        usize::from,
    );
    let mut out = std::io::stdout().lock();
    // One seed: every cell is printed. A sweep: each cell is counted as it comes, and only the
    // rates are kept.
    let (printed, all_met) = if args.seeds == 1 {
        let mut cells: Vec<Option<Cell>> = vec![None; pairs(&options).len()];
        let ran = run_cells(&options, 1, jobs, |i, cell| {
            if let Some(slot) = cells.get_mut(i) {
                *slot = Some(cell);
            }
        });
        if let Err(e) = ran {
            eprintln!("error: matrix: {e}");
            return ExitCode::from(2);
        }
        let cells: Vec<Cell> = cells.into_iter().flatten().collect();
        let printed = match args.format {
            Format::Table => print_table(&cells, &mut out),
            Format::Json => print_json(&cells, &mut out),
            Format::Csv => print_csv(&cells, &mut out),
        };
        (printed, cells.iter().all(Cell::met))
    } else {
        let mut sweep = Sweep::new(&pairs(&options));
        if let Err(e) = run_cells(&options, args.seeds, jobs, |_, cell| sweep.add(&cell)) {
            eprintln!("error: matrix: {e}");
            return ExitCode::from(2);
        }
        let printed = match args.format {
            Format::Table => sweep.print_table(&mut out),
            Format::Json => sweep.print_json(&mut out),
            Format::Csv => sweep.print_csv(&mut out),
        };
        (printed, sweep.overall.met == sweep.overall.runs)
    };
    let summary = summary(&options, args.seeds, started.elapsed());
    // The table is for people: the summary follows it. JSON and CSV keep stdout to the data.
    let printed = printed.and_then(|()| match args.format {
        Format::Table => writeln!(out, "{summary}"),
        Format::Json | Format::Csv => {
            eprintln!("{summary}");
            Ok(())
        }
    });
    if printed.is_ok() && all_met {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The line that says what was run.
fn summary(options: &MatrixOptions, seeds: u32, wall: Duration) -> String {
    let seed = match seeds {
        1 => format!("seed {}", options.seed),
        n => format!(
            "seeds {}..={}",
            options.seed,
            options.seed.wrapping_add(u64::from(n) - 1)
        ),
    };
    format!(
        "loss {:.0}%, delay {:?}, {seed}, {}, mapping lifetime {:?}{}, hold {:?}, pings every {:?}, \
         consent {}, keepalive {:?}; wall time {:.2}s",
        options.loss * 100.0,
        options.delay,
        if options.ipv6 { "IPv6" } else { "IPv4" },
        options.mapping_lifetime,
        if options.inbound_refreshes {
            " (refreshed by inbound too)"
        } else {
            ""
        },
        options.hold,
        options.liveness.ping_interval,
        options
            .liveness
            .consent_interval
            .map_or("off".to_owned(), |i| format!("every {i:?}")),
        options.liveness.keepalive_interval,
        wall.as_secs_f64()
    )
}

/// Runs every cell with each of `seeds` seeds (`options.seed`, `options.seed` + 1, …) on
/// `jobs` threads, and hands each to `done` with its index (seed by seed, each seed's cells in
/// the matrix's order) as it finishes, in any order. Shows progress on stderr when it is a
/// terminal. The first I/O error (`--pcap`) stops the run.
fn run_cells(
    options: &MatrixOptions,
    seeds: u32,
    jobs: usize,
    mut done: impl FnMut(usize, Cell),
) -> std::io::Result<()> {
    let pairs = pairs(options);
    let total = pairs.len().saturating_mul(seeds as usize);
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    let mut progress = Progress::new(total);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(total) {
            let tx = tx.clone();
            let (next, pairs) = (&next, &pairs);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    // i < total: there are pairs, and i % pairs.len() is one of them.
                    let pair = if i < total {
                        pairs.get(i % pairs.len())
                    } else {
                        None
                    };
                    let Some(&(a, b)) = pair else {
                        break;
                    };
                    let options = MatrixOptions {
                        seed: options.seed.wrapping_add((i / pairs.len()) as u64),
                        ..options.clone()
                    };
                    let cell = run_standard_cell(a, b, &options);
                    let failed = cell.is_err();
                    if tx.send((i, cell)).is_err() || failed {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (i, cell) in rx {
            let cell = cell?;
            progress.cell(&cell);
            done(i, cell);
        }
        progress.finish();
        Ok(())
    })
}

/// The progress line on stderr, when stderr is a terminal (none when it is piped or a file).
struct Progress {
    total: usize,
    done: usize,
    missed: usize,
    started: Instant,
    /// When the line was last drawn: at most every [`Progress::REDRAW`].
    drawn: Option<Instant>,
    terminal: bool,
}

impl Progress {
    /// How often the line is redrawn at most (a sweep finishes hundreds of cells a second).
    const REDRAW: Duration = Duration::from_millis(100);

    fn new(total: usize) -> Self {
        Self {
            total,
            done: 0,
            missed: 0,
            started: Instant::now(),
            drawn: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// One more cell done: rewrites the line.
    fn cell(&mut self, cell: &Cell) {
        self.done += 1;
        self.missed += usize::from(!cell.met());
        let now = Instant::now();
        let due = self
            .drawn
            .is_none_or(|at| now.saturating_duration_since(at) >= Self::REDRAW);
        if self.terminal && due {
            self.drawn = Some(now);
            eprint!(
                "\r\x1b[Kmatrix: {}/{} cells, {} missed, {:.1}s (last: {} → {}, {})",
                self.done,
                self.total,
                self.missed,
                self.started.elapsed().as_secs_f64(),
                cell.a.name(),
                cell.b.name(),
                cell.outcome
            );
        }
    }

    /// Clears the line.
    fn finish(&self) {
        if self.terminal {
            eprint!("\r\x1b[K");
        }
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
             --keepalive 3 --inbound-refresh",
        )
        .unwrap();
        assert_eq!(
            (o.loss, o.delay, o.seed),
            (0.1, Duration::from_micros(2500), 7)
        );
        assert!(o.ipv6 && o.inbound_refreshes && o.pcap_dir == Some(PathBuf::from("/tmp/x")));
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
            ("--ping-interval 0", "at least 1 ms"),
            ("--consent-interval 0", "at least 1 ms"),
            ("--keepalive 0", "at least 1 ms"),
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
