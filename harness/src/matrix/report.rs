//! Printing the matrix: its cells as a table for people, as JSON lines (one object per cell, for
//! `jq`) or as CSV (for a spreadsheet); and a seed sweep ([`Sweep`]): each cell's success rate
//! over many seeds and its misses counted by cause.
//!
//! The columns, as `harness matrix --help` and `docs/harness.md` define them:
//! - `expect`: what NAT theory gives ([`crate::theory`]): direct, relay or fail.
//! - `outcome`: the class of the pair the call ended on (direct host / srflx / prflx, relay),
//!   or failed, or timeout.
//! - `pair`: that pair as the controlling peer A saw it, its candidate type → B's.
//! - `time`: virtual time from the start until both peers selected a pair (or one failed).
//! - `DTLS done`: virtual time from the start until both completed the DTLS handshake; often
//!   less than `time`, as DTLS starts on the first pair that passed its checks, before ICE
//!   nominates it and both sides select it.
//! - `ready`: virtual time from the start until both peers were ready (a selected pair and
//!   DTLS keys each): what a user waits for before media flows.
//! - `no path`: in a cell that never became ready, virtual time until both peers had learnt
//!   that there is no path (ICE's early `disconnected`, or the failure).
//!
//! Below the table, the medians of `time` and `ready` over the cells that became ready and
//! of `no path` over those that did not.
//! - `held`: whether both were still connected at the end of the hold period.
//! - `one path`: whether both directions rode one path over the hold's last 10 s (each
//!   side's selected pair received the other's pings); `-` when not measured.
//! - `packets`: datagrams the two peers sent until both selected a pair (until `time`).
//! - `ok`: whether the cell met its expectation; `why`: the cause when not ([`Miss::cause`]).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::time::Duration;

use serde_json::{Value, json};

use super::{Cell, Miss, error_name};
use crate::nat::NatPreset;
use crate::theory::{Expectation, expect};

/// The name of an expectation in every format.
fn expectation(e: Expectation) -> &'static str {
    match e {
        Expectation::Direct => "direct",
        Expectation::Relay => "relay",
        Expectation::Fail => "fail",
    }
}

/// Seconds with millisecond precision, as JSON.
fn secs(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| {
        json!((d.as_secs_f64() * 1000.0).round() / 1000.0)
    })
}

/// One cell as named fields: the JSON object and the CSV row are both made of these.
fn fields(c: &Cell) -> Vec<(&'static str, Value)> {
    let miss = c.miss();
    vec![
        ("a", json!(c.a.name())),
        ("b", json!(c.b.name())),
        ("expect", json!(expectation(c.expected))),
        ("outcome", json!(c.outcome.to_string())),
        ("pair", c.pair.map_or(Value::Null, |p| json!(p.to_string()))),
        ("time_s", secs(c.time)),
        ("dtls_done_s", secs(c.dtls)),
        ("ready_s", secs(c.ready)),
        ("no_path_s", secs(c.no_path)),
        ("held", c.held.map_or(Value::Null, Value::from)),
        ("one_path", c.one_path.map_or(Value::Null, Value::from)),
        ("packets", json!(c.packets)),
        ("met", json!(miss.is_none())),
        (
            "cause",
            miss.as_ref().map_or(Value::Null, |m| json!(m.cause())),
        ),
        ("reason", miss.map_or(Value::Null, |m| json!(m.to_string()))),
        ("seed", json!(c.seed)),
        ("trace", json!(c.trace)),
    ]
}

/// Prints the cells as JSON lines: one object per cell, one per line.
pub fn print_json(cells: &[Cell], out: &mut impl Write) -> io::Result<()> {
    for c in cells {
        let object: serde_json::Map<String, Value> = fields(c)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        writeln!(out, "{}", Value::Object(object))?;
    }
    Ok(())
}

/// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
fn csv_field(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Writes one CSV record.
fn csv_record(out: &mut impl Write, values: impl Iterator<Item = String>) -> io::Result<()> {
    writeln!(out, "{}", values.collect::<Vec<_>>().join(","))
}

/// Prints the cells as CSV: a header, then one record per cell (the JSON lines' fields).
pub fn print_csv(cells: &[Cell], out: &mut impl Write) -> io::Result<()> {
    let Some(first) = cells.first() else {
        return Ok(());
    };
    csv_record(out, fields(first).into_iter().map(|(k, _)| k.to_owned()))?;
    for c in cells {
        csv_record(out, fields(c).iter().map(|(_, v)| csv_field(v)))?;
    }
    Ok(())
}

/// Prints the cells as a table, one row per cell, then each missed cell's reason and the
/// count of cells met.
pub fn print_table(cells: &[Cell], out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<16} {:<16} {:<8} {:<14} {:<12} {:>9} {:>9} {:>9} {:>9} {:<10} {:<8} {:>8}  {:<3} {:<16} trace",
        "A (controlling)",
        "B",
        "expect",
        "outcome",
        "pair (A→B)",
        "time",
        "DTLS done",
        "ready",
        "no path",
        "held",
        "one path",
        "packets",
        "ok",
        "why"
    )?;
    let time =
        |t: Option<Duration>| t.map_or("-".to_owned(), |t| format!("{:.3}s", t.as_secs_f64()));
    for c in cells {
        let held = match (c.held, c.miss()) {
            (Some(true), _) => "yes".to_owned(),
            (Some(false), Some(Miss::Dropped(Some(e)))) => format!("no:{}", error_name(Some(&e))),
            (Some(false), _) => "no".to_owned(),
            (None, _) => "-".to_owned(),
        };
        let miss = c.miss();
        writeln!(
            out,
            "{:<16} {:<16} {:<8} {:<14} {:<12} {:>9} {:>9} {:>9} {:>9} {:<10} {:<8} {:>8}  {:<3} {:<16} {}",
            c.a.name(),
            c.b.name(),
            expectation(c.expected),
            c.outcome.to_string(),
            c.pair.map_or("-".to_owned(), |p| p.to_string()),
            time(c.time),
            time(c.dtls),
            time(c.ready),
            time(c.no_path),
            held,
            c.one_path.map_or("-", |one| if one { "yes" } else { "NO" }),
            c.packets,
            if miss.is_none() { "yes" } else { "NO" },
            miss.as_ref().map_or("-".to_owned(), Miss::cause),
            c.trace
        )?;
    }
    for c in cells {
        if let Some(miss) = c.miss() {
            writeln!(out, "{} → {}: {miss}", c.a.name(), c.b.name())?;
        }
    }
    let ready: Vec<&Cell> = cells.iter().filter(|c| c.ready.is_some()).collect();
    let unready: Vec<Duration> = cells.iter().filter_map(|c| c.no_path).collect();
    writeln!(
        out,
        "median over the {} cells that became ready: time {}, ready {}; no path learnt, over the {} that did not: {}",
        ready.len(),
        time(median(ready.iter().filter_map(|c| c.time).collect())),
        time(median(ready.iter().filter_map(|c| c.ready).collect())),
        unready.len(),
        time(median(unready)),
    )?;
    let met = cells.iter().filter(|c| c.met()).count();
    writeln!(out, "{met} of {} cells met their expectation", cells.len())
}

/// The median of `values` (the lower middle one of an even count), if any.
fn median(mut values: Vec<Duration>) -> Option<Duration> {
    values.sort_unstable();
    let middle = values.len().checked_sub(1)? / 2;
    values.get(middle).copied()
}

/// How one cell, or the whole matrix, fared over a sweep of seeds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    /// Runs (seeds).
    pub runs: usize,
    /// Runs that met the expectation.
    pub met: usize,
    /// Runs that missed, by [`Miss::cause`].
    pub misses: BTreeMap<String, usize>,
    /// Runs whose two directions ended on two paths (`one_path` false).
    pub two_paths: usize,
}

impl Rates {
    fn add(&mut self, cell: &Cell) {
        self.runs += 1;
        self.two_paths += usize::from(cell.one_path == Some(false));
        match cell.miss() {
            None => self.met += 1,
            Some(miss) => *self.misses.entry(miss.cause()).or_default() += 1,
        }
    }

    /// The share of runs that met the expectation, in percent.
    pub fn percent(&self) -> f64 {
        if self.runs == 0 {
            return 0.0;
        }
        self.met as f64 * 100.0 / self.runs as f64
    }

    /// `cause n, cause n` (or `-`).
    fn misses_text(&self, separator: &str) -> String {
        if self.misses.is_empty() {
            return "-".to_owned();
        }
        let parts: Vec<String> = self
            .misses
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        parts.join(separator)
    }

    fn json(&self) -> serde_json::Map<String, Value> {
        let mut o = serde_json::Map::new();
        o.insert("runs".into(), json!(self.runs));
        o.insert("met".into(), json!(self.met));
        o.insert("rate".into(), json!(self.percent() / 100.0));
        o.insert("misses".into(), json!(self.misses));
        o.insert("two_paths".into(), json!(self.two_paths));
        o
    }
}

/// A seed sweep: every cell run with many seeds; each cell's rates and the whole matrix's.
#[derive(Clone, Debug, Default)]
pub struct Sweep {
    /// Each cell (A, B, its expectation) and its rates, in the matrix's order.
    pub cells: Vec<((NatPreset, NatPreset, Expectation), Rates)>,
    /// Every run of every cell together.
    pub overall: Rates,
}

impl Sweep {
    /// A sweep of these cells (A, B), none run yet.
    pub fn new(pairs: &[(NatPreset, NatPreset)]) -> Self {
        let cells = pairs
            .iter()
            .map(|&(a, b)| ((a, b, expect(a, b)), Rates::default()))
            .collect();
        Self {
            cells,
            overall: Rates::default(),
        }
    }

    /// Counts one run of a cell.
    pub fn add(&mut self, cell: &Cell) {
        let key = (cell.a, cell.b, cell.expected);
        match self.cells.iter_mut().find(|(k, _)| *k == key) {
            Some((_, rates)) => rates.add(cell),
            None => {
                let mut rates = Rates::default();
                rates.add(cell);
                self.cells.push((key, rates));
            }
        }
        self.overall.add(cell);
    }

    /// Prints each cell's rate and misses, then the whole matrix's.
    pub fn print_table(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(
            out,
            "{:<16} {:<16} {:<8} {:>11} {:>8}  misses by cause",
            "A (controlling)", "B", "expect", "met/runs", "rate"
        )?;
        for ((a, b, expected), r) in &self.cells {
            let two_paths = match r.two_paths {
                0 => String::new(),
                n => format!(" (two paths: {n})"),
            };
            writeln!(
                out,
                "{:<16} {:<16} {:<8} {:>11} {:>7.1}%  {}{two_paths}",
                a.name(),
                b.name(),
                expectation(*expected),
                format!("{}/{}", r.met, r.runs),
                r.percent(),
                r.misses_text(", ")
            )?;
        }
        let o = &self.overall;
        writeln!(
            out,
            "overall: {} of {} runs met their expectation ({:.2}%); misses by cause: {}; \
             two paths (each direction on its own pair) in {} runs",
            o.met,
            o.runs,
            o.percent(),
            o.misses_text(", "),
            o.two_paths
        )
    }

    /// Prints one JSON object per cell (`a`, `b`, `expect`, `runs`, `met`, `rate`,
    /// `misses`), then one for the whole matrix (`overall`: true, the same counts).
    pub fn print_json(&self, out: &mut impl Write) -> io::Result<()> {
        for ((a, b, expected), r) in &self.cells {
            let mut o = serde_json::Map::new();
            o.insert("a".into(), json!(a.name()));
            o.insert("b".into(), json!(b.name()));
            o.insert("expect".into(), json!(expectation(*expected)));
            o.extend(r.json());
            writeln!(out, "{}", Value::Object(o))?;
        }
        let mut o = serde_json::Map::new();
        o.insert("overall".into(), json!(true));
        o.extend(self.overall.json());
        writeln!(out, "{}", Value::Object(o))
    }

    /// Prints CSV: a header, one record per cell, and a last record for the whole matrix
    /// (A and B `all`); misses as `cause n; cause n`.
    pub fn print_csv(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "a,b,expect,runs,met,rate,misses,two_paths")?;
        let row = |out: &mut dyn Write, a: &str, b: &str, e: &str, r: &Rates| {
            writeln!(
                out,
                "{a},{b},{e},{},{},{:.4},{},{}",
                r.runs,
                r.met,
                r.percent() / 100.0,
                r.misses_text("; "),
                r.two_paths
            )
        };
        for ((a, b, expected), r) in &self.cells {
            row(out, a.name(), b.name(), expectation(*expected), r)?;
        }
        row(out, "all", "all", "", &self.overall)
    }
}
