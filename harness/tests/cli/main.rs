//! The command lines as a user meets them, through the built `harness` binary: every
//! subcommand's `--help` exits 0 and names every option with its default; every bad value
//! exits 2 with a message naming the option and the value; the matrix prints JSON lines and
//! CSV a program can read; and no argument list makes the binary panic (exit 101).

// The tests start the binary and bound how long it may run.
#![allow(clippy::disallowed_methods)]

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::Value;

/// What a run of the binary left.
struct Run {
    /// The exit code; `None` when it was still running at the deadline and was killed.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `harness ARGS` with stdin closed, killing it if it runs past `deadline`.
fn harness(args: &[&str], deadline: Duration) -> Run {
    harness_with_env(args, &[], deadline)
}

/// [`harness`] with these environment variables set.
fn harness_with_env(args: &[&str], env: &[(&str, &str)], deadline: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the harness binary starts");
    // Read both pipes on threads: a full pipe must not stall the child.
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status: Option<ExitStatus> = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.and_then(|s| s.code()),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// `harness matrix`'s options, each with the default its help must show (`None`: a flag, or
/// no fixed default).
const MATRIX_OPTIONS: &[(&str, Option<&str>)] = &[
    ("--format", Some("table")),
    ("--seeds", Some("1")),
    ("--jobs", None),
    ("--loss", Some("0")),
    ("--delay", Some("10")),
    ("--seed", Some("1")),
    ("--ipv6", None),
    ("--pcap", None),
    ("--hold", Some("60")),
    ("--mapping-lifetime", Some("30")),
    ("--inbound-refresh", None),
    ("--timeout", Some("60")),
    ("--presets", Some("open,full-cone,restricted")),
    ("--ping-interval", Some("1")),
    ("--consent-interval", Some("5")),
    ("--keepalive", Some("15")),
];

/// `harness peer`'s options and their defaults.
const PEER_OPTIONS: &[(&str, Option<&str>)] = &[
    ("--controlling", None),
    ("--ip", Some("127.0.0.1")),
    ("--stun", None),
    ("--turn", None),
    ("--turn-transport", Some("udp")),
    ("--turn-ca", None),
    ("--relay-only", None),
    ("--count", Some("5")),
    ("--dtls", None),
    ("--setup", None),
    ("--dtls12", None),
    ("--mdns-conceal", None),
    ("--hold", Some("0")),
    ("--timeout", Some("30")),
];

/// The help text of `args` (which ask for help), checked to exit 0 on stdout.
fn help(args: &[&str]) -> String {
    let run = harness(args, Duration::from_secs(10));
    assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
    assert!(run.stderr.is_empty(), "{args:?}: {}", run.stderr);
    run.stdout
}

/// Checks that `text` describes each option: its name, a description on its line or the
/// next, and its default.
fn describes(text: &str, options: &[(&str, Option<&str>)]) {
    for (option, default) in options {
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with(&format!("{option} ")) || l.trim() == *option)
            .unwrap_or_else(|| panic!("{option} missing from\n{text}"));
        let described: String = text
            .lines()
            .skip(line)
            .take(6)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            described.split_whitespace().count() > 3,
            "{option} is not described:\n{described}"
        );
        if let Some(default) = default {
            assert!(
                described.contains(&format!("[default: {default}")),
                "{option}: no default {default} in\n{described}"
            );
        }
    }
}

#[test]
fn rust_log_prints_the_protocol_crates_diagnostics_on_stderr_only() {
    // A peer alone gathers and times out; with RUST_LOG its ICE agent's records, tagged with
    // the agent's ufrag, go to stderr and stdout keeps only JSON lines.
    let run = harness_with_env(
        &["peer", "--timeout", "0.3"],
        &[("RUST_LOG", "ice=info")],
        Duration::from_secs(20),
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("ice: candidate discovered: candidate:"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ice: candidate gathering done"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("agent=\""), "{}", run.stderr);
    for line in run.stdout.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    // Without RUST_LOG nothing of it is printed.
    let quiet = harness(&["peer", "--timeout", "0.3"], Duration::from_secs(20));
    assert!(
        !quiet.stderr.contains("candidate discovered"),
        "{}",
        quiet.stderr
    );
}

#[test]
fn help_exits_0_and_describes_every_option_with_its_default() {
    let top = help(&["--help"]);
    assert!(top.contains("matrix") && top.contains("peer"), "{top}");
    assert_eq!(help(&["help"]), top);
    for args in [["matrix", "--help"], ["matrix", "-h"], ["help", "matrix"]] {
        let text = help(&args);
        describes(&text, MATRIX_OPTIONS);
        // The columns are defined, "time" and "DTLS done" apart.
        for column in [
            "expect",
            "outcome",
            "pair",
            "time ",
            "DTLS done",
            "ready",
            "no path",
            "held",
            "packets",
        ] {
            assert!(text.contains(&format!("\n  {column}")), "{column}:\n{text}");
        }
    }
    for args in [["peer", "--help"], ["peer", "-h"], ["help", "peer"]] {
        let text = help(&args);
        describes(&text, PEER_OPTIONS);
        assert!(text.contains("stdout: JSON lines"), "{text}");
    }
}

#[test]
fn every_bad_value_exits_2_naming_the_option_and_the_value() {
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["matrix", "--delay", "-5"],
            &["--delay", "'-5'", "negative"],
        ),
        (&["matrix", "--hold", "-1"], &["--hold", "'-1'", "negative"]),
        (
            &["matrix", "--hold", "inf"],
            &["--hold", "'inf'", "too large"],
        ),
        (&["matrix", "--hold", "nan"], &["--hold", "'nan'", "NaN"]),
        (
            &["matrix", "--ping-interval", "nan"],
            &["--ping-interval", "'nan'", "NaN"],
        ),
        (
            &["matrix", "--ping-interval", "0"],
            &["--ping-interval", "'0'", "at least 1 ms"],
        ),
        (
            &["matrix", "--consent-interval", "0"],
            &["--consent-interval", "'0'", "at least 1 ms"],
        ),
        (
            &["matrix", "--keepalive", "0"],
            &["--keepalive", "'0'", "at least 1 ms"],
        ),
        (
            &["matrix", "--keepalive", "1e-9"],
            &["--keepalive", "'1e-9'", "at least 1 ms"],
        ),
        (
            &["matrix", "--mapping-lifetime", "-3"],
            &["--mapping-lifetime", "'-3'"],
        ),
        (
            &["matrix", "--timeout", "1e300"],
            &["--timeout", "'1e300'", "too large"],
        ),
        (&["matrix", "--loss", "-5%"], &["--loss", "'-5%'"]),
        (&["matrix", "--loss", "2"], &["--loss", "'2'", "percentage"]),
        (&["matrix", "--seed", "-1"], &["--seed", "'-1'"]),
        (&["matrix", "--seeds", "0"], &["--seeds", "'0'"]),
        (&["matrix", "--jobs", "0"], &["--jobs", "'0'"]),
        (
            &["matrix", "--format", "xml"],
            &["--format", "'xml'", "json"],
        ),
        (
            &["matrix", "--presets", "open,symetric"],
            &[
                "--presets",
                "'symetric'",
                "tip: a similar value exists: 'symmetric'",
            ],
        ),
        (
            &["matrix", "--presets", "nat"],
            &["--presets", "'nat'", "possible values"],
        ),
        (&["matrix", "--hodl", "3"], &["'--hodl'", "'--hold'"]),
        (&["matrix", "--delay"], &["--delay", "a value is required"]),
        (
            &["matrix", "--seeds", "2", "--pcap", "/nonexistent"],
            &["--pcap", "one seed"],
        ),
        (&["matrix", "--seeds", "100001"], &["--seeds", "'100001'"]),
        (
            &["peer", "--timeout", "-1"],
            &["--timeout", "'-1'", "negative"],
        ),
        (&["peer", "--hold", "nan"], &["--hold", "'nan'", "NaN"]),
        (
            &["peer", "--hold", "inf"],
            &["--hold", "'inf'", "too large"],
        ),
        (&["peer", "--count", "-1"], &["--count", "'-1'"]),
        (
            &["peer", "--count", "99999999999"],
            &["--count", "'99999999999'"],
        ),
        (&["peer", "--ip", "nowhere"], &["--ip", "'nowhere'"]),
        (
            &["peer", "--turn-transport", "sctp"],
            &["--turn-transport", "'sctp'", "udp"],
        ),
        (&["peer", "--turn-transport", "tcp"], &["--turn"]),
        (&["peer", "--relay-only"], &["--turn"]),
        (
            &["peer", "--dtls", "--setup", "sideways"],
            &["--setup", "'sideways'", "actpass"],
        ),
        (&["peer", "--setup", "passive"], &["--dtls"]),
        (
            &["peer", "--turn", "127.0.0.1:3478", "user"],
            &["--turn", "3 values"],
        ),
        (&["peer", "--dlts"], &["'--dlts'", "'--dtls'"]),
        (&["frobnicate"], &["'frobnicate'"]),
        (&[], &["matrix", "peer"]),
    ];
    for (args, says) in cases {
        let run = harness(args, Duration::from_secs(10));
        assert_eq!(run.code, Some(2), "{args:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
        for s in *says {
            assert!(
                run.stderr.contains(s),
                "{args:?} does not say {s}: {}",
                run.stderr
            );
        }
    }
}

#[test]
fn the_matrix_prints_json_lines_and_csv_and_no_progress_into_a_pipe() {
    let presets = ["--presets", "open,http-only"];
    let json = harness(
        &[&["matrix", "--format", "json"], &presets[..]].concat(),
        Duration::from_secs(120),
    );
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let cells: Vec<Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert_eq!(cells.len(), 4, "{}", json.stdout);
    let open = &cells[0];
    assert_eq!(
        (open["a"].as_str(), open["b"].as_str()),
        (Some("open"), Some("open"))
    );
    assert_eq!(open["pair"], "host→host");
    assert_eq!(open["met"], true);
    assert!(open["time_s"].as_f64().is_some_and(|t| t > 0.0), "{open}");
    assert!(
        open["dtls_done_s"].as_f64().is_some_and(|t| t > 0.0),
        "{open}"
    );
    let blocked = &cells[1];
    assert_eq!(
        (blocked["outcome"].as_str(), blocked["pair"].as_null()),
        (Some("failed"), Some(()))
    );
    // stderr (a pipe): the summary only, no progress line.
    assert!(
        !json.stderr.contains('\r') && json.stderr.contains("wall time"),
        "{}",
        json.stderr
    );

    let csv = harness(
        &[&["matrix", "--format", "csv"], &presets[..]].concat(),
        Duration::from_secs(120),
    );
    assert_eq!(csv.code, Some(0), "{}", csv.stderr);
    let rows: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(rows.len(), 5, "{}", csv.stdout);
    assert!(rows[0].starts_with(
        "a,b,expect,outcome,pair,time_s,dtls_done_s,ready_s,no_path_s,held,one_path,packets,met"
    ));
    assert!(
        rows[1].starts_with("open,open,direct,direct host,host→host,"),
        "{}",
        rows[1]
    );

    let table = harness(
        &[&["matrix"], &presets[..]].concat(),
        Duration::from_secs(120),
    );
    assert_eq!(table.code, Some(0));
    assert!(table.stderr.is_empty(), "{}", table.stderr);
    assert!(
        table.stdout.contains("4 of 4 cells met their expectation"),
        "{}",
        table.stdout
    );
}

#[test]
fn a_seed_sweep_reports_rates_per_cell_and_overall() {
    let args = [
        "matrix",
        "--presets",
        "open,full-cone",
        "--seeds",
        "3",
        "--format",
        "json",
    ];
    let run = harness(&args, Duration::from_secs(120));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let lines: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert_eq!(lines.len(), 5, "{}", run.stdout);
    for cell in &lines[..4] {
        assert_eq!(
            (cell["runs"].as_u64(), cell["met"].as_u64()),
            (Some(3), Some(3)),
            "{cell}"
        );
        assert_eq!(cell["rate"], 1.0);
    }
    let overall = &lines[4];
    assert_eq!(overall["overall"], true);
    assert_eq!(
        (overall["runs"].as_u64(), overall["met"].as_u64()),
        (Some(12), Some(12))
    );
}

/// The options of both subcommands, some misspelt, and stray words.
#[rustfmt::skip]
const OPTIONS: &[&str] = &[
    "--help", "-h", "--loss", "--delay", "--seed", "--seeds", "--jobs", "--format", "--ipv6",
    "--hold", "--mapping-lifetime", "--inbound-refresh", "--timeout", "--presets",
    "--ping-interval", "--consent-interval", "--keepalive", "--controlling", "--ip", "--stun",
    "--turn", "--turn-transport", "--relay-only", "--count", "--dtls", "--setup", "--pcap",
    "--mdns-conceal", "--dtls12",
    "--hodl", "--", "-", "matrix", "peer",
];

/// Values, good and bad.
#[rustfmt::skip]
const VALUES: &[&str] = &[
    "0", "1", "-1", "2.5", "1e9", "1e10", "1e308", "-0", "nan", "NaN", "inf", "-inf", "off",
    "10%", "100%", "-5%", "%", "", " ", "0x10", "18446744073709551616", "99999999999", "open",
    "open,udp-blocked", "symetric", "json", "csv", "table", "tcp", "udp", "passive", "actpass",
    "::1", "127.0.0.1", "256.0.0.1", "127.0.0.1:1", "é", "\u{7f}", "--dtls",
];

/// An argument: an option, a listed value, or a random number.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(OPTIONS).prop_map(str::to_owned),
        proptest::sample::select(VALUES).prop_map(str::to_owned),
        any::<f64>().prop_map(|f| f.to_string()),
        any::<i64>().prop_map(|i| i.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// No argument list panics the binary: it exits 0, 1 or 2, or is still running (a valid
    /// matrix or peer) when the test stops it.
    #[test]
    fn no_argument_list_panics(
        command in proptest::sample::select(&["matrix", "peer", "help", "bogus"][..]),
        pairs in proptest::collection::vec((proptest::sample::select(OPTIONS), word()), 0..5),
    ) {
        let mut args = vec![command.to_owned()];
        for (option, value) in pairs {
            args.extend([option.to_owned(), value]);
        }
        // Keep a matrix that happens to be valid short.
        if command == "matrix" {
            args.extend(["--presets".to_owned(), "open".to_owned()]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = harness(&argv, Duration::from_secs(3));
        prop_assert!(
            matches!(run.code, None | Some(0..=2)),
            "{argv:?} exited {:?}: {}", run.code, run.stderr
        );
        prop_assert!(!run.stderr.contains("panicked"), "{argv:?}: {}", run.stderr);
    }
}
