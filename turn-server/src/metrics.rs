//! The counters the workers publish and the Prometheus text exposition (format 0.0.4) the
//! metrics endpoint serves. Each worker owns one [`WorkerMetrics`] (on its own cache lines)
//! and stores its totals there after each turn of its loop; only the endpoint reads them,
//! summing over workers, so no counter is shared between writers.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use stun_proto::turn::server::TurnServerStats;

/// How many values each worker publishes.
const METRIC_COUNT: usize = 25;

/// Family name, labels, help and type of each value, in the order
/// [`WorkerMetrics::publish`] stores them; a family's entries follow one another.
const EXPOSITION: [(&str, &str, &str, &str); METRIC_COUNT] = [
    ("turn_allocations", "", "Live allocations.", "gauge"),
    (
        "turn_tcp_connections",
        "",
        "Open TCP client connections.",
        "gauge",
    ),
    (
        "turn_requests_total",
        "",
        "STUN/TURN requests answered.",
        "counter",
    ),
    (
        "turn_relayed_packets_total",
        "direction=\"to_peer\"",
        "Datagrams relayed.",
        "counter",
    ),
    (
        "turn_relayed_packets_total",
        "direction=\"to_client\"",
        "",
        "",
    ),
    (
        "turn_relayed_bytes_total",
        "direction=\"to_peer\"",
        "Bytes relayed (to clients with ChannelData or Data indication framing).",
        "counter",
    ),
    (
        "turn_relayed_bytes_total",
        "direction=\"to_client\"",
        "",
        "",
    ),
    (
        "turn_auth_failures_total",
        "reason=\"challenge\"",
        "Requests refused by the long-term credential checks.",
        "counter",
    ),
    ("turn_auth_failures_total", "reason=\"bad_request\"", "", ""),
    ("turn_auth_failures_total", "reason=\"stale_nonce\"", "", ""),
    (
        "turn_auth_failures_total",
        "reason=\"wrong_credentials\"",
        "",
        "",
    ),
    ("turn_auth_failures_total", "reason=\"expired\"", "", ""),
    (
        "turn_quota_refusals_total",
        "reason=\"user_quota\"",
        "Allocations, connections or datagrams refused for a limit.",
        "counter",
    ),
    (
        "turn_quota_refusals_total",
        "reason=\"total_quota\"",
        "",
        "",
    ),
    (
        "turn_quota_refusals_total",
        "reason=\"no_relay_address\"",
        "",
        "",
    ),
    (
        "turn_quota_refusals_total",
        "reason=\"tcp_connections\"",
        "",
        "",
    ),
    ("turn_quota_refusals_total", "reason=\"bandwidth\"", "", ""),
    (
        "turn_redirected_total",
        "",
        "Allocate requests answered 300 Try Alternate.",
        "counter",
    ),
    (
        "turn_dropped_total",
        "",
        "Datagrams the TURN server dropped (no allocation, permission, bad message, full queue).",
        "counter",
    ),
    (
        "turn_send_failures_total",
        "",
        "Datagrams or frames the sockets would not take.",
        "counter",
    ),
    (
        "turn_reservation_handoffs_total",
        "",
        "EVEN-PORT reservations (with their relay port) handed over by another worker.",
        "counter",
    ),
    (
        "turn_peer_connections",
        "",
        "Open RFC 6062 peer connections (connecting, waiting for ConnectionBind, or bound).",
        "gauge",
    ),
    (
        "turn_tcp_relayed_bytes_total",
        "direction=\"to_peer\"",
        "Bytes relayed between RFC 6062 client data connections and peer connections.",
        "counter",
    ),
    (
        "turn_tcp_relayed_bytes_total",
        "direction=\"to_client\"",
        "",
        "",
    ),
    (
        "turn_tcp_unallocated_closed_total",
        "",
        "TCP or TLS client connections closed for holding no allocation 30 s after they were accepted (a handshake or request that never came).",
        "counter",
    ),
];

/// A worker's own counters, besides what its machine counts.
#[derive(Clone, Copy, Debug, Default)]
pub struct DriverCounters {
    /// Datagrams relayed to peers, and their payload bytes.
    pub to_peer: (u64, u64),
    /// Datagrams relayed to clients, and their bytes.
    pub to_client: (u64, u64),
    /// Open TCP connections.
    pub tcp_connections: u64,
    /// TCP connections refused for the cap.
    pub tcp_refused: u64,
    /// Sends that failed.
    pub send_failures: u64,
    /// EVEN-PORT reservations adopted from another worker (module `handoff`).
    pub reservations_adopted: u64,
    /// Open RFC 6062 peer connections.
    pub peer_connections: u64,
    /// Bytes relayed over RFC 6062 connections, to peers and to clients.
    pub tcp_relayed: (u64, u64),
    /// Client connections closed for holding no allocation in time.
    pub tcp_unallocated_closed: u64,
}

/// What one worker publishes, on cache lines of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerMetrics {
    values: [AtomicU64; METRIC_COUNT],
}

impl WorkerMetrics {
    /// Stores the worker's current totals.
    pub fn publish(&self, allocations: usize, stats: &TurnServerStats, own: &DriverCounters) {
        let values = [
            allocations as u64,
            own.tcp_connections,
            stats.requests,
            own.to_peer.0,
            own.to_client.0,
            own.to_peer.1,
            own.to_client.1,
            stats.auth.challenges,
            stats.auth.bad_requests,
            stats.auth.stale_nonces,
            stats.auth.wrong_credentials,
            stats.auth.expired,
            stats.refused_user_quota,
            stats.refused_total_quota,
            stats.refused_no_relay_address,
            own.tcp_refused,
            stats.over_bandwidth,
            stats.redirected,
            stats.dropped,
            own.send_failures,
            own.reservations_adopted,
            own.peer_connections,
            own.tcp_relayed.0,
            own.tcp_relayed.1,
            own.tcp_unallocated_closed,
        ];
        for (slot, value) in self.values.iter().zip(values) {
            slot.store(value, Ordering::Relaxed);
        }
    }
}

/// The Prometheus text exposition of the sum over `workers`.
pub fn render(workers: &[WorkerMetrics]) -> String {
    let mut out = String::with_capacity(4096);
    let mut family = "";
    for (index, (name, labels, help, kind)) in EXPOSITION.iter().enumerate() {
        if *name != family {
            family = name;
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        }
        let total: u64 = workers
            .iter()
            .map(|w| w.values.get(index).map_or(0, |v| v.load(Ordering::Relaxed)))
            .fold(0, u64::saturating_add);
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {total}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {total}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_summed_and_families_declared_once() {
        let workers = [WorkerMetrics::default(), WorkerMetrics::default()];
        let mut stats = TurnServerStats::default();
        stats.auth.expired = 2;
        let own = DriverCounters {
            to_peer: (3, 300),
            ..DriverCounters::default()
        };
        workers[0].publish(1, &stats, &own);
        workers[1].publish(4, &stats, &own);
        let text = render(&workers);
        assert!(text.contains("\nturn_allocations 5\n"), "{text}");
        assert!(text.contains("turn_auth_failures_total{reason=\"expired\"} 4\n"));
        assert!(text.contains("turn_relayed_bytes_total{direction=\"to_peer\"} 600\n"));
        assert_eq!(
            text.matches("# TYPE turn_auth_failures_total counter")
                .count(),
            1
        );
        assert_eq!(text.matches("# HELP").count(), 14);
        assert!(
            text.lines()
                .all(|l| l.starts_with('#') || l.starts_with("turn_"))
        );
    }
}
