//! Per-shard counters: plain `Cell`s bumped on the request path, summed across shards
//! only when someone asks (a gather over the control mesh).

use std::cell::Cell;

use serde::Serialize;

/// One shard's live counters. Shard-local: no atomics.
#[derive(Default, Debug)]
pub struct ShardStats {
    requests: Cell<u64>,
    accepted: Cell<u64>,
    active: Cell<u64>,
    bytes_in: Cell<u64>,
    bytes_out: Cell<u64>,
    writes: Cell<u64>,
    responses: [Cell<u64>; 5],
    parse_errors: Cell<u64>,
    handler_panics: Cell<u64>,
    timeouts: Cell<u64>,
    refused: Cell<u64>,
}

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().wrapping_add(by));
}

impl ShardStats {
    /// A connection was accepted and is now active.
    pub fn connection_opened(&self) {
        bump(&self.accepted, 1);
        bump(&self.active, 1);
    }

    /// An active connection ended.
    pub fn connection_closed(&self) {
        self.active.set(self.active.get().saturating_sub(1));
    }

    /// A complete request was decoded.
    pub fn request(&self) {
        bump(&self.requests, 1);
    }

    /// A response with `status` was encoded.
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        bump(&self.responses[class], 1);
    }

    /// Bytes read from clients.
    pub fn bytes_in(&self, n: usize) {
        bump(&self.bytes_in, n as u64);
    }

    /// One write of `n` bytes to a client (a whole batch of responses).
    pub fn wrote(&self, n: usize) {
        bump(&self.bytes_out, n as u64);
        bump(&self.writes, 1);
    }

    /// A request could not be decoded.
    pub fn parse_error(&self) {
        bump(&self.parse_errors, 1);
    }

    /// A handler panicked.
    pub fn handler_panic(&self) {
        bump(&self.handler_panics, 1);
    }

    /// A connection or handler ran past one of its timeouts.
    pub fn timeout(&self) {
        bump(&self.timeouts, 1);
    }

    /// A connection was refused because the shard was at `max_connections`.
    pub fn refused(&self) {
        bump(&self.refused, 1);
    }

    /// Connections open now.
    pub fn active(&self) -> u64 {
        self.active.get()
    }

    /// A copy of the counters, labelled with the shard id.
    pub fn snapshot(&self, shard: usize) -> StatsSnapshot {
        let r = |class: usize| self.responses[class].get();
        StatsSnapshot {
            shard: Some(shard),
            requests: self.requests.get(),
            connections: ConnectionStats {
                accepted: self.accepted.get(),
                active: self.active.get(),
                refused: self.refused.get(),
            },
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            writes: self.writes.get(),
            responses: ResponseStats {
                informational: r(0),
                success: r(1),
                redirect: r(2),
                client_error: r(3),
                server_error: r(4),
            },
            parse_errors: self.parse_errors.get(),
            handler_panics: self.handler_panics.get(),
            timeouts: self.timeouts.get(),
        }
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

/// A point-in-time copy of one shard's counters, or (with `shard: None`) their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StatsSnapshot {
    /// The shard, or `None` for a total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
    /// Requests decoded.
    pub requests: u64,
    /// Connections.
    pub connections: ConnectionStats,
    /// Bytes read.
    pub bytes_in: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Write calls: each carries every response of one batch.
    pub writes: u64,
    /// Responses by status class.
    pub responses: ResponseStats,
    /// Requests refused as malformed or over a limit.
    pub parse_errors: u64,
    /// Handlers that panicked.
    pub handler_panics: u64,
    /// Timeouts: slow heads and bodies, idle connections, unread output, slow handlers.
    pub timeouts: u64,
}

impl StatsSnapshot {
    /// The sum of `shards`, with no shard label.
    pub fn total(shards: &[StatsSnapshot]) -> StatsSnapshot {
        shards
            .iter()
            .fold(StatsSnapshot::default(), |a, b| StatsSnapshot {
                shard: None,
                requests: a.requests + b.requests,
                connections: ConnectionStats {
                    accepted: a.connections.accepted + b.connections.accepted,
                    active: a.connections.active + b.connections.active,
                    refused: a.connections.refused + b.connections.refused,
                },
                bytes_in: a.bytes_in + b.bytes_in,
                bytes_out: a.bytes_out + b.bytes_out,
                writes: a.writes + b.writes,
                responses: ResponseStats {
                    informational: a.responses.informational + b.responses.informational,
                    success: a.responses.success + b.responses.success,
                    redirect: a.responses.redirect + b.responses.redirect,
                    client_error: a.responses.client_error + b.responses.client_error,
                    server_error: a.responses.server_error + b.responses.server_error,
                },
                parse_errors: a.parse_errors + b.parse_errors,
                handler_panics: a.handler_panics + b.handler_panics,
                timeouts: a.timeouts + b.timeouts,
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
        a.request();
        a.response(200);
        a.bytes_in(10);
        let b = ShardStats::default();
        b.connection_opened();
        b.connection_closed();
        b.request();
        b.response(404);
        b.wrote(7);
        let total = StatsSnapshot::total(&[a.snapshot(0), b.snapshot(1)]);
        assert_eq!(total.requests, 2);
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
        assert_eq!((total.bytes_in, total.bytes_out), (10, 7));
        assert_eq!(total.shard, None);
    }
}
