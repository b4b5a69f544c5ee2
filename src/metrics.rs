//! Prometheus text exposition (format 0.0.4) of the gathered shard counters: one series
//! per shard (`shard="0"`, ...) and the sum (`shard="total"`).

use std::fmt::Write;

use crate::stats::{Counts, Label, StatsSnapshot, LATENCY_BUCKETS_US};

/// Content-Type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads one counter from a snapshot.
type Getter = fn(&StatsSnapshot) -> u64;
/// Name, type, help, counter: a family with only the `shard` label.
type Plain = (&'static str, &'static str, &'static str, Getter);

/// Families with only the `shard` label.
const PLAIN: [Plain; 20] = [
    (
        "haywire_connections_active",
        "gauge",
        "Connections open now.",
        |s| s.connections.active,
    ),
    (
        "haywire_received_bytes_total",
        "counter",
        "Bytes read from clients.",
        |s| s.bytes_in,
    ),
    (
        "haywire_sent_bytes_total",
        "counter",
        "Bytes written to clients.",
        |s| s.bytes_out,
    ),
    (
        "haywire_writes_total",
        "counter",
        "Writes, each carrying a batch of responses.",
        |s| s.writes,
    ),
    (
        "haywire_reads_total",
        "counter",
        "recv calls on client sockets, including those that found nothing.",
        |s| s.reads,
    ),
    (
        "haywire_handler_panics_total",
        "counter",
        "Handlers that panicked.",
        |s| s.handler_panics,
    ),
    (
        "haywire_timeouts_total",
        "counter",
        "Connections or handlers past a timeout.",
        |s| s.timeouts,
    ),
    (
        "haywire_tls_handshakes_total",
        "counter",
        "TLS handshakes completed.",
        |s| s.tls.handshakes,
    ),
    (
        "haywire_tls_resumed_total",
        "counter",
        "TLS handshakes that resumed a session.",
        |s| s.tls.resumed,
    ),
    (
        "haywire_tls_failed_total",
        "counter",
        "TLS connections closed on a bad message (failed handshake, bad record).",
        |s| s.tls.failed,
    ),
    (
        "haywire_tls_plaintext_total",
        "counter",
        "Connections closed because plaintext HTTP reached the TLS listener.",
        |s| s.tls.plaintext,
    ),
    (
        "haywire_tls_truncated_total",
        "counter",
        "TLS connections whose input ended inside a record or the handshake.",
        |s| s.tls.truncated,
    ),
    (
        "haywire_loop_turns_total",
        "counter",
        "Harvests of the shard's epoll set (epoll_wait calls).",
        |s| s.event_loop.turns,
    ),
    (
        "haywire_loop_parks_total",
        "counter",
        "Times the shard slept until its epoll set had an event: its wake-ups by socket input.",
        |s| s.event_loop.parks,
    ),
    (
        "haywire_db_queries_total",
        "counter",
        "Queries handed to the shard's PostgreSQL connections.",
        |s| s.database.queries,
    ),
    (
        "haywire_db_writes_total",
        "counter",
        "Writes to database sockets: each carries every query queued since the last.",
        |s| s.database.writes,
    ),
    (
        "haywire_db_reads_total",
        "counter",
        "Reads from database sockets that found input.",
        |s| s.database.reads,
    ),
    (
        "haywire_access_log_dropped_total",
        "counter",
        "Access-log lines dropped because the sink was slower than the traffic, or failed.",
        |s| s.access_log_dropped,
    ),
    (
        "haywire_sendfile_bodies_total",
        "counter",
        "File bodies sent by the kernel (sendfile) on plain connections.",
        |s| s.sendfile_bodies,
    ),
    (
        "haywire_sendfile_bytes_total",
        "counter",
        "Bytes of file bodies sent by sendfile (also in haywire_sent_bytes_total).",
        |s| s.sendfile_bytes,
    ),
];

/// Connection outcomes, with the `outcome` label.
const CONNECTIONS: [(&str, Getter); 3] = [
    ("accepted", |s| s.connections.accepted),
    ("refused", |s| s.connections.refused),
    ("evicted", |s| s.connections.evicted),
];

/// Writes a family with one label besides `shard`, whose values the label type lists.
fn labelled<L: Label>(
    out: &mut String,
    all: &[&StatsSnapshot],
    (name, help, label): (&str, &str, &str),
    counts: fn(&StatsSnapshot) -> &Counts<L>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
    for snapshot in all {
        let shard = shard_label(snapshot);
        for (value, count) in counts(snapshot).iter() {
            let value = value.name();
            let _ = writeln!(
                out,
                "{name}{{shard=\"{shard}\",{label}=\"{value}\"}} {count}"
            );
        }
    }
}

fn shard_label(snapshot: &StatsSnapshot) -> String {
    snapshot
        .shard
        .map_or_else(|| "total".to_owned(), |id| id.to_string())
}

/// Renders the shards' snapshots and their total.
pub fn render(shards: &[StatsSnapshot]) -> String {
    let total = StatsSnapshot::total(shards);
    let all: Vec<&StatsSnapshot> = shards.iter().chain(std::iter::once(&total)).collect();
    let mut out = String::with_capacity(8192);
    let requests = (
        "haywire_requests_total",
        "Requests decoded, by method.",
        "method",
    );
    labelled(&mut out, &all, requests, |s| &s.methods);
    let responses = (
        "haywire_responses_total",
        "Responses sent, by status class.",
        "class",
    );
    labelled(&mut out, &all, responses, |s| &s.responses);
    let errors = (
        "haywire_parse_errors_total",
        "Requests refused before dispatch, by reason.",
        "reason",
    );
    labelled(&mut out, &all, errors, |s| &s.parse_errors);
    let name = "haywire_connections_total";
    let _ = writeln!(
        out,
        "# HELP {name} Connections accepted, refused at max_connections, or closed idle to admit new ones.\n# TYPE {name} counter"
    );
    for snapshot in &all {
        let shard = shard_label(snapshot);
        for (outcome, get) in CONNECTIONS {
            let _ = writeln!(
                out,
                "{name}{{shard=\"{shard}\",outcome=\"{outcome}\"}} {}",
                get(snapshot)
            );
        }
    }
    for (name, kind, help, get) in PLAIN {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for snapshot in &all {
            let _ = writeln!(
                out,
                "{name}{{shard=\"{}\"}} {}",
                shard_label(snapshot),
                get(snapshot)
            );
        }
    }
    let name = "haywire_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Server time per request, from its batch being read to its response being encoded.\n# TYPE {name} histogram"
    );
    for snapshot in &all {
        let shard = shard_label(snapshot);
        let mut cumulative = 0;
        for (i, count) in snapshot.latency.buckets.iter().enumerate() {
            cumulative += count;
            let le = LATENCY_BUCKETS_US
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(
                out,
                "{name}_bucket{{shard=\"{shard}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_sum{{shard=\"{shard}\"}} {}",
            snapshot.latency.sum_us as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{{shard=\"{shard}\"}} {cumulative}");
    }
    out
}
