//! Per-shard counters: plain `Cell`s bumped on the request path, summed across shards
//! only when someone asks (a gather over the control mesh).

use std::cell::Cell;
use std::time::Duration;

use serde::Serialize;

use crate::http::{Method, ParseError};

/// Upper bounds of the latency histogram buckets, in microseconds (the last bucket,
/// `+Inf`, is implied).
pub const LATENCY_BUCKETS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// A counter bumped on one shard.
#[derive(Default, Debug)]
struct Counter(Cell<u64>);

impl Counter {
    fn add(&self, n: u64) {
        self.0.set(self.0.get().wrapping_add(n));
    }

    fn get(&self) -> u64 {
        self.0.get()
    }
}

/// One shard's live counters. Shard-local: no atomics.
#[derive(Default, Debug)]
pub struct ShardStats {
    methods: [Counter; 6],
    accepted: Counter,
    active: Cell<u64>,
    refused: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    writes: Counter,
    reads: Counter,
    responses: [Counter; 5],
    parse_errors: [Counter; 6],
    handler_panics: Counter,
    timeouts: Counter,
    latency: [Counter; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_us: Counter,
}

impl ShardStats {
    /// A connection was accepted and is now active.
    pub fn connection_opened(&self) {
        self.accepted.add(1);
        self.active.set(self.active.get() + 1);
    }

    /// An active connection ended.
    pub fn connection_closed(&self) {
        self.active.set(self.active.get().saturating_sub(1));
    }

    /// Connections open now.
    pub fn active(&self) -> u64 {
        self.active.get()
    }

    /// A connection was refused because the shard was at `max_connections`.
    pub fn refused(&self) {
        self.refused.add(1);
    }

    /// A complete request was decoded.
    pub fn request(&self, method: Method) {
        let class = match method {
            Method::Get => 0,
            Method::Head => 1,
            Method::Post => 2,
            Method::Put => 3,
            Method::Delete => 4,
            _ => 5,
        };
        self.methods[class].add(1);
    }

    /// A response with `status` was encoded.
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].add(1);
    }

    /// `requests` requests were answered `elapsed` after their batch was read.
    pub fn latency(&self, elapsed: Duration, requests: u64) {
        let us = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.latency[bucket].add(requests);
        self.latency_sum_us.add(us.saturating_mul(requests));
    }

    /// Bytes read from clients.
    pub fn bytes_in(&self, n: usize) {
        self.bytes_in.add(n as u64);
    }

    /// One write of `n` bytes to a client (a whole batch of responses).
    pub fn wrote(&self, n: usize) {
        self.bytes_out.add(n as u64);
        self.writes.add(1);
    }

    /// One `recv` call on a client socket, whether or not it found input.
    pub fn read_call(&self) {
        self.reads.add(1);
    }

    /// A request could not be decoded.
    pub fn parse_error(&self, error: ParseError) {
        let kind = match error {
            ParseError::BadRequest(_) => 0,
            ParseError::HeadTooLarge => 1,
            ParseError::UriTooLong => 2,
            ParseError::BodyTooLarge => 3,
            ParseError::VersionNotSupported => 4,
            ParseError::UnsupportedTransferCoding => 5,
        };
        self.parse_errors[kind].add(1);
    }

    /// A handler panicked.
    pub fn handler_panic(&self) {
        self.handler_panics.add(1);
    }

    /// A connection or handler ran past one of its timeouts.
    pub fn timeout(&self) {
        self.timeouts.add(1);
    }

    /// A copy of the counters, labelled with the shard id.
    pub fn snapshot(&self, shard: usize) -> StatsSnapshot {
        let m = |i: usize| self.methods[i].get();
        let r = |i: usize| self.responses[i].get();
        let p = |i: usize| self.parse_errors[i].get();
        let methods = MethodStats {
            get: m(0),
            head: m(1),
            post: m(2),
            put: m(3),
            delete: m(4),
            other: m(5),
        };
        StatsSnapshot {
            shard: Some(shard),
            requests: methods.total(),
            methods,
            connections: ConnectionStats {
                accepted: self.accepted.get(),
                active: self.active.get(),
                refused: self.refused.get(),
            },
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            writes: self.writes.get(),
            reads: self.reads.get(),
            responses: ResponseStats {
                informational: r(0),
                success: r(1),
                redirect: r(2),
                client_error: r(3),
                server_error: r(4),
            },
            parse_errors: ParseErrorStats {
                bad_request: p(0),
                head_too_large: p(1),
                uri_too_long: p(2),
                body_too_large: p(3),
                version_not_supported: p(4),
                unsupported_transfer_coding: p(5),
            },
            handler_panics: self.handler_panics.get(),
            timeouts: self.timeouts.get(),
            latency: LatencyStats {
                buckets: std::array::from_fn(|i| self.latency[i].get()),
                sum_us: self.latency_sum_us.get(),
            },
        }
    }
}

/// Sums two snapshots field by field.
trait Sum {
    fn sum(self, other: Self) -> Self;
}

macro_rules! summable {
    ($name:ident { $($field:ident),* }) => {
        impl Sum for $name {
            fn sum(self, other: Self) -> Self {
                $name { $($field: self.$field + other.$field),* }
            }
        }
    };
}

/// Requests by method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MethodStats {
    /// GET
    pub get: u64,
    /// HEAD
    pub head: u64,
    /// POST
    pub post: u64,
    /// PUT
    pub put: u64,
    /// DELETE
    pub delete: u64,
    /// Everything else.
    pub other: u64,
}
summable!(MethodStats {
    get,
    head,
    post,
    put,
    delete,
    other
});

impl MethodStats {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.get + self.head + self.post + self.put + self.delete + self.other
    }
}

/// Connection counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionStats {
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections open now.
    pub active: u64,
    /// Connections closed at once because the shard was full.
    pub refused: u64,
}
summable!(ConnectionStats {
    accepted,
    active,
    refused
});

/// Responses by status class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ResponseStats {
    /// 1xx
    #[serde(rename = "1xx")]
    pub informational: u64,
    /// 2xx
    #[serde(rename = "2xx")]
    pub success: u64,
    /// 3xx
    #[serde(rename = "3xx")]
    pub redirect: u64,
    /// 4xx
    #[serde(rename = "4xx")]
    pub client_error: u64,
    /// 5xx
    #[serde(rename = "5xx")]
    pub server_error: u64,
}
summable!(ResponseStats {
    informational,
    success,
    redirect,
    client_error,
    server_error
});

/// Refused requests by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ParseErrorStats {
    /// 400: malformed syntax or framing.
    pub bad_request: u64,
    /// 431
    pub head_too_large: u64,
    /// 414
    pub uri_too_long: u64,
    /// 413
    pub body_too_large: u64,
    /// 505
    pub version_not_supported: u64,
    /// 501
    pub unsupported_transfer_coding: u64,
}
summable!(ParseErrorStats {
    bad_request,
    head_too_large,
    uri_too_long,
    body_too_large,
    version_not_supported,
    unsupported_transfer_coding
});

impl ParseErrorStats {
    /// All refused requests.
    pub fn total(&self) -> u64 {
        self.bad_request
            + self.head_too_large
            + self.uri_too_long
            + self.body_too_large
            + self.version_not_supported
            + self.unsupported_transfer_coding
    }
}

/// Server time per request, from its batch being read to its response being encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LatencyStats {
    /// Requests per bucket (not cumulative); bounds in [`LATENCY_BUCKETS_US`], then +Inf.
    pub buckets: [u64; LATENCY_BUCKETS_US.len() + 1],
    /// Sum of all latencies, in microseconds.
    pub sum_us: u64,
}

impl Default for LatencyStats {
    fn default() -> Self {
        LatencyStats {
            buckets: [0; LATENCY_BUCKETS_US.len() + 1],
            sum_us: 0,
        }
    }
}

impl Sum for LatencyStats {
    fn sum(self, other: Self) -> Self {
        LatencyStats {
            buckets: std::array::from_fn(|i| self.buckets[i] + other.buckets[i]),
            sum_us: self.sum_us + other.sum_us,
        }
    }
}

/// A point-in-time copy of one shard's counters, or (with `shard: None`) their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// The shard, or `None` for a total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
    /// Requests decoded.
    pub requests: u64,
    /// Requests by method.
    pub methods: MethodStats,
    /// Connections.
    pub connections: ConnectionStats,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Write calls: each carries every response of one batch.
    pub writes: u64,
    /// `recv` calls on client sockets, including any that found nothing to read.
    pub reads: u64,
    /// Responses by status class.
    pub responses: ResponseStats,
    /// Requests refused as malformed or over a limit, by reason.
    pub parse_errors: ParseErrorStats,
    /// Handlers that panicked.
    pub handler_panics: u64,
    /// Timeouts: slow heads and bodies, idle connections, unread output, slow handlers.
    pub timeouts: u64,
    /// Request latency histogram.
    pub latency: LatencyStats,
}

impl StatsSnapshot {
    /// The sum of `shards`, with no shard label.
    pub fn total(shards: &[StatsSnapshot]) -> StatsSnapshot {
        shards
            .iter()
            .fold(StatsSnapshot::default(), |a, b| StatsSnapshot {
                shard: None,
                requests: a.requests + b.requests,
                methods: a.methods.sum(b.methods),
                connections: a.connections.sum(b.connections),
                bytes_in: a.bytes_in + b.bytes_in,
                bytes_out: a.bytes_out + b.bytes_out,
                writes: a.writes + b.writes,
                reads: a.reads + b.reads,
                responses: a.responses.sum(b.responses),
                parse_errors: a.parse_errors.sum(b.parse_errors),
                handler_panics: a.handler_panics + b.handler_panics,
                timeouts: a.timeouts + b.timeouts,
                latency: a.latency.sum(b.latency),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_every_counter() {
        let a = ShardStats::default();
        a.connection_opened();
        a.request(Method::Get);
        a.response(200);
        a.bytes_in(10);
        a.latency(Duration::from_micros(70), 2);
        let b = ShardStats::default();
        b.connection_opened();
        b.connection_closed();
        b.request(Method::Post);
        b.response(404);
        b.wrote(7);
        b.parse_error(ParseError::UriTooLong);
        b.latency(Duration::from_secs(60), 1);
        let total = StatsSnapshot::total(&[a.snapshot(0), b.snapshot(1)]);
        assert_eq!(total.requests, 2);
        assert_eq!((total.methods.get, total.methods.post), (1, 1));
        assert_eq!(
            total.connections,
            ConnectionStats {
                accepted: 2,
                active: 1,
                refused: 0
            }
        );
        assert_eq!(total.responses.success, 1);
        assert_eq!(total.responses.client_error, 1);
        assert_eq!((total.bytes_in, total.bytes_out, total.writes), (10, 7, 1));
        assert_eq!(total.parse_errors.uri_too_long, 1);
        assert_eq!(
            total.latency.buckets[1], 2,
            "70 µs falls in the 100 µs bucket"
        );
        assert_eq!(
            total.latency.buckets[LATENCY_BUCKETS_US.len()],
            1,
            "60 s is past every bound"
        );
        assert_eq!(total.latency.sum_us, 140 + 60_000_000);
        assert_eq!(total.shard, None);
    }
}
