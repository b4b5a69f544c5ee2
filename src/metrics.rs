//! Prometheus text exposition (format 0.0.4) of the gathered shard counters: one series
//! per shard (`shard="0"`, ...) and the sum (`shard="total"`).

use std::fmt::Write;

use crate::stats::{StatsSnapshot, LATENCY_BUCKETS_US};

/// Content-Type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads one counter from a snapshot.
type Getter = fn(&StatsSnapshot) -> u64;
/// A label value and the counter behind it.
type Series = (&'static str, Getter);
/// Name, type, help, label name, series: a family with one label besides `shard`.
type Labelled = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [Series],
);
/// Name, type, help, counter: a family with only the `shard` label.
type Plain = (&'static str, &'static str, &'static str, Getter);

/// Families with one labelled dimension besides `shard`.
const LABELLED: [Labelled; 4] = [
    (
        "haywire_requests_total",
        "counter",
        "Requests decoded, by method.",
        "method",
        &[
            ("GET", |s| s.methods.get),
            ("HEAD", |s| s.methods.head),
            ("POST", |s| s.methods.post),
            ("PUT", |s| s.methods.put),
            ("DELETE", |s| s.methods.delete),
            ("other", |s| s.methods.other),
        ],
    ),
    (
        "haywire_responses_total",
        "counter",
        "Responses sent, by status class.",
        "class",
        &[
            ("1xx", |s| s.responses.informational),
            ("2xx", |s| s.responses.success),
            ("3xx", |s| s.responses.redirect),
            ("4xx", |s| s.responses.client_error),
            ("5xx", |s| s.responses.server_error),
        ],
    ),
    (
        "haywire_parse_errors_total",
        "counter",
        "Requests refused before dispatch, by reason.",
        "reason",
        &[
            ("bad_request", |s| s.parse_errors.bad_request),
            ("head_too_large", |s| s.parse_errors.head_too_large),
            ("uri_too_long", |s| s.parse_errors.uri_too_long),
            ("body_too_large", |s| s.parse_errors.body_too_large),
            ("version_not_supported", |s| {
                s.parse_errors.version_not_supported
            }),
            ("unsupported_transfer_coding", |s| {
                s.parse_errors.unsupported_transfer_coding
            }),
        ],
    ),
    (
        "haywire_connections_total",
        "counter",
        "Connections accepted, or refused at max_connections.",
        "outcome",
        &[
            ("accepted", |s| s.connections.accepted),
            ("refused", |s| s.connections.refused),
        ],
    ),
];

/// Families with only the `shard` label.
const PLAIN: [Plain; 7] = [
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
];

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
    for (name, kind, help, label, series) in LABELLED {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for snapshot in &all {
            let shard = shard_label(snapshot);
            for (value, get) in series {
                let _ = writeln!(
                    out,
                    "{name}{{shard=\"{shard}\",{label}=\"{value}\"}} {}",
                    get(snapshot)
                );
            }
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
