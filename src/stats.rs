//! Per-shard counters: plain `Cell`s bumped on the request path, summed across shards
//! only when someone asks (a gather over the control mesh).

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::http::{Method, ParseError};

/// Upper bounds of the latency histogram buckets, in microseconds (the last bucket,
/// `+Inf`, is implied).
pub const LATENCY_BUCKETS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 10_000_000,
];

/// A family of counters told apart by one label (a method, a status class, a parse
/// error). The label's variants and names are listed once, here; the live counters,
/// the JSON of `/stats` and the Prometheus families all follow that list.
pub trait Label: Copy + 'static {
    /// Every label, in report order.
    const ALL: &'static [Self];
    /// The label's name in `/stats` and `/metrics`.
    fn name(self) -> &'static str;
    /// The label's position in [`Label::ALL`].
    fn index(self) -> usize;
}

/// The most labels a family has; counts are kept inline in an array this long.
const MAX_LABELS: usize = 8;

macro_rules! labels {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl Label for $name {
            const ALL: &'static [Self] = &[$($name::$variant),*];
            fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}

labels! {
    /// Methods counted on their own; the rest count as `other`.
    MethodLabel {
        /// GET
        Get => "GET",
        /// HEAD
        Head => "HEAD",
        /// POST
        Post => "POST",
        /// PUT
        Put => "PUT",
        /// DELETE
        Delete => "DELETE",
        /// Every other method.
        Other => "other",
    }
}

impl From<Method> for MethodLabel {
    fn from(method: Method) -> Self {
        match method {
            Method::Get => MethodLabel::Get,
            Method::Head => MethodLabel::Head,
            Method::Post => MethodLabel::Post,
            Method::Put => MethodLabel::Put,
            Method::Delete => MethodLabel::Delete,
            _ => MethodLabel::Other,
        }
    }
}

labels! {
    /// Response status classes.
    StatusClass {
        /// 1xx
        Informational => "1xx",
        /// 2xx
        Success => "2xx",
        /// 3xx
        Redirect => "3xx",
        /// 4xx
        ClientError => "4xx",
        /// 5xx
        ServerError => "5xx",
    }
}

impl StatusClass {
    /// The class of `status`; codes outside 100..=599 count with the nearest class.
    pub fn of(status: u16) -> StatusClass {
        StatusClass::ALL[usize::from(status / 100).clamp(1, 5) - 1]
    }
}

labels! {
    /// Why a request was refused before dispatch.
    ParseErrorLabel {
        /// 400: malformed syntax or framing.
        BadRequest => "bad_request",
        /// 431
        HeadTooLarge => "head_too_large",
        /// 414
        UriTooLong => "uri_too_long",
        /// 413
        BodyTooLarge => "body_too_large",
        /// 505
        VersionNotSupported => "version_not_supported",
        /// 501
        UnsupportedTransferCoding => "unsupported_transfer_coding",
    }
}

impl From<ParseError> for ParseErrorLabel {
    fn from(error: ParseError) -> Self {
        match error {
            ParseError::BadRequest(_) => ParseErrorLabel::BadRequest,
            ParseError::HeadTooLarge => ParseErrorLabel::HeadTooLarge,
            ParseError::UriTooLong => ParseErrorLabel::UriTooLong,
            ParseError::BodyTooLarge => ParseErrorLabel::BodyTooLarge,
            ParseError::VersionNotSupported => ParseErrorLabel::VersionNotSupported,
            ParseError::UnsupportedTransferCoding => ParseErrorLabel::UnsupportedTransferCoding,
        }
    }
}

/// Counts by label: a JSON object keyed by the labels' names.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Counts<L> {
    counts: [u64; MAX_LABELS],
    label: PhantomData<L>,
}

impl<L: Label> Counts<L> {
    /// The count for `label`.
    pub fn get(&self, label: L) -> u64 {
        self.counts[label.index()]
    }

    /// Every label with its count, in report order.
    pub fn iter(&self) -> impl Iterator<Item = (L, u64)> + '_ {
        L::ALL.iter().map(|&label| (label, self.get(label)))
    }

    /// The sum over all labels.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn sum(self, other: Self) -> Self {
        Counts {
            counts: std::array::from_fn(|i| self.counts[i] + other.counts[i]),
            label: PhantomData,
        }
    }
}

impl<L> Default for Counts<L> {
    fn default() -> Self {
        Counts {
            counts: [0; MAX_LABELS],
            label: PhantomData,
        }
    }
}

impl<L: Label> fmt::Debug for Counts<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(l, n)| (l.name(), n)))
            .finish()
    }
}

impl<L: Label> Serialize for Counts<L> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter().map(|(l, n)| (l.name(), n)))
    }
}

impl<'de, L: Label> Deserialize<'de> for Counts<L> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = HashMap::<String, u64>::deserialize(deserializer)?;
        let mut counts = Counts::default();
        for &label in L::ALL {
            counts.counts[label.index()] = map.get(label.name()).copied().unwrap_or(0);
        }
        Ok(counts)
    }
}

/// One shard's live counters of a labelled family.
struct LiveCounts<L> {
    counts: [Cell<u64>; MAX_LABELS],
    label: PhantomData<L>,
}

impl<L: Label> LiveCounts<L> {
    fn add(&self, label: L) {
        let cell = &self.counts[label.index()];
        cell.set(cell.get().wrapping_add(1));
    }

    fn snapshot(&self) -> Counts<L> {
        Counts {
            counts: std::array::from_fn(|i| self.counts[i].get()),
            label: PhantomData,
        }
    }
}

impl<L> Default for LiveCounts<L> {
    fn default() -> Self {
        LiveCounts {
            counts: Default::default(),
            label: PhantomData,
        }
    }
}

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
#[derive(Default)]
pub struct ShardStats {
    methods: LiveCounts<MethodLabel>,
    accepted: Counter,
    active: Cell<u64>,
    refused: Counter,
    evicted: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
    writes: Counter,
    reads: Counter,
    responses: LiveCounts<StatusClass>,
    parse_errors: LiveCounts<ParseErrorLabel>,
    handler_panics: Counter,
    timeouts: Counter,
    latency: [Counter; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_us: Counter,
    tls_handshakes: Counter,
    tls_resumed: Counter,
    tls_failed: Counter,
    tls_plaintext: Counter,
    tls_truncated: Counter,
    loop_turns: Counter,
    loop_parks: Counter,
    db_queries: Counter,
    db_writes: Counter,
    db_reads: Counter,
    ws_opened: Counter,
    ws_messages_in: Counter,
    ws_messages_out: Counter,
    ws_protocol_errors: Counter,
    access_log_dropped: Counter,
    sendfile_bodies: Counter,
    sendfile_bytes: Counter,
}

impl ShardStats {
    /// A connection was accepted and is now active.
    pub(crate) fn connection_opened(&self) {
        self.accepted.add(1);
        self.active.set(self.active.get() + 1);
    }

    /// An active connection ended.
    pub(crate) fn connection_closed(&self) {
        self.active.set(self.active.get().saturating_sub(1));
    }

    /// Connections open now.
    pub fn active(&self) -> u64 {
        self.active.get()
    }

    /// A connection was turned away because the shard was at `max_connections` with
    /// no idle connection to close.
    pub(crate) fn refused(&self) {
        self.refused.add(1);
    }

    /// An idle keep-alive connection was closed to admit a new one at
    /// `max_connections`.
    pub(crate) fn evicted(&self) {
        self.evicted.add(1);
    }

    /// A complete request was decoded.
    pub(crate) fn request(&self, method: Method) {
        self.methods.add(method.into());
    }

    /// A response with `status` was encoded.
    pub(crate) fn response(&self, status: u16) {
        self.responses.add(StatusClass::of(status));
    }

    /// `requests` requests were answered `elapsed` after their batch was read.
    pub(crate) fn latency(&self, elapsed: Duration, requests: u64) {
        let us = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&le| us <= le)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.latency[bucket].add(requests);
        self.latency_sum_us.add(us.saturating_mul(requests));
    }

    /// Bytes read from clients.
    pub(crate) fn bytes_in(&self, n: usize) {
        self.bytes_in.add(n as u64);
    }

    /// One write of `n` bytes to a client (a whole batch of responses).
    pub(crate) fn wrote(&self, n: usize) {
        self.bytes_out.add(n as u64);
        self.writes.add(1);
    }

    /// One `recv` call on a client socket, whether or not it found input.
    pub(crate) fn read_call(&self) {
        self.reads.add(1);
    }

    /// A file body began to go out by `sendfile`.
    pub(crate) fn sendfile_body(&self) {
        self.sendfile_bodies.add(1);
    }

    /// One `sendfile` call moved `n` bytes of a file body to a client (also counted in
    /// the bytes and writes).
    pub(crate) fn sent_file(&self, n: usize) {
        self.sendfile_bytes.add(n as u64);
        self.wrote(n);
    }

    /// A request could not be decoded.
    pub(crate) fn parse_error(&self, error: ParseError) {
        self.parse_errors.add(error.into());
    }

    /// A handler panicked.
    pub(crate) fn handler_panic(&self) {
        self.handler_panics.add(1);
    }

    /// A connection or handler ran past one of its timeouts.
    pub(crate) fn timeout(&self) {
        self.timeouts.add(1);
    }

    /// A TLS handshake completed; `resumed`: from a session ticket or id.
    pub(crate) fn tls_handshake(&self, resumed: bool) {
        self.tls_handshakes.add(1);
        self.tls_resumed.add(u64::from(resumed));
    }

    /// A TLS connection failed on a bad message (a handshake that went wrong, a record
    /// that does not decrypt) and was closed.
    pub(crate) fn tls_failed(&self) {
        self.tls_failed.add(1);
    }

    /// Plaintext (an HTTP request) reached the TLS listener; the connection was closed.
    pub(crate) fn tls_plaintext(&self) {
        self.tls_plaintext.add(1);
    }

    /// A TLS connection's input ended inside a record or the handshake.
    pub(crate) fn tls_truncated(&self) {
        self.tls_truncated.add(1);
    }

    /// The shard's poller harvested its epoll set once (one `epoll_wait`).
    pub(crate) fn loop_turn(&self) {
        self.loop_turns.add(1);
    }

    /// The shard found nothing ready and went to sleep until its epoll set had an
    /// event: each park ends in one wake-up.
    pub(crate) fn loop_park(&self) {
        self.loop_parks.add(1);
    }

    /// A query was handed to a database connection (feature `pg`).
    #[cfg_attr(not(feature = "pg"), allow(dead_code))]
    pub(crate) fn db_query(&self) {
        self.db_queries.add(1);
    }

    /// One write to a database socket (every query queued since the last one).
    #[cfg_attr(not(feature = "pg"), allow(dead_code))]
    pub(crate) fn db_wrote(&self) {
        self.db_writes.add(1);
    }

    /// One read from a database socket that found input.
    #[cfg_attr(not(feature = "pg"), allow(dead_code))]
    pub(crate) fn db_read(&self) {
        self.db_reads.add(1);
    }

    /// A WebSocket handshake was accepted.
    pub(crate) fn ws_opened(&self) {
        self.ws_opened.add(1);
    }

    /// A WebSocket message (text, binary or close) reached its handler.
    pub(crate) fn ws_message_in(&self) {
        self.ws_messages_in.add(1);
    }

    /// A handler sent a WebSocket message.
    pub(crate) fn ws_message_out(&self) {
        self.ws_messages_out.add(1);
    }

    /// A WebSocket client broke the protocol and was closed with 1002, 1007 or 1009.
    pub(crate) fn ws_protocol_error(&self) {
        self.ws_protocol_errors.add(1);
    }

    /// `lines` access-log lines were dropped: the sink was behind or failed.
    pub(crate) fn access_log_dropped(&self, lines: u64) {
        self.access_log_dropped.add(lines);
    }

    /// A copy of the counters, labelled with the shard id.
    pub fn snapshot(&self, shard: usize) -> StatsSnapshot {
        let methods = self.methods.snapshot();
        StatsSnapshot {
            shard: Some(shard),
            requests: methods.total(),
            methods,
            connections: ConnectionStats {
                accepted: self.accepted.get(),
                active: self.active.get(),
                refused: self.refused.get(),
                evicted: self.evicted.get(),
            },
            bytes_in: self.bytes_in.get(),
            bytes_out: self.bytes_out.get(),
            writes: self.writes.get(),
            reads: self.reads.get(),
            responses: self.responses.snapshot(),
            parse_errors: self.parse_errors.snapshot(),
            handler_panics: self.handler_panics.get(),
            timeouts: self.timeouts.get(),
            latency: LatencyStats {
                buckets: std::array::from_fn(|i| self.latency[i].get()),
                sum_us: self.latency_sum_us.get(),
            },
            tls: TlsStats {
                handshakes: self.tls_handshakes.get(),
                resumed: self.tls_resumed.get(),
                failed: self.tls_failed.get(),
                plaintext: self.tls_plaintext.get(),
                truncated: self.tls_truncated.get(),
            },
            event_loop: LoopStats {
                turns: self.loop_turns.get(),
                parks: self.loop_parks.get(),
            },
            database: DatabaseStats {
                queries: self.db_queries.get(),
                writes: self.db_writes.get(),
                reads: self.db_reads.get(),
            },
            websocket: WebSocketStats {
                connections: self.ws_opened.get(),
                messages_in: self.ws_messages_in.get(),
                messages_out: self.ws_messages_out.get(),
                protocol_errors: self.ws_protocol_errors.get(),
            },
            access_log_dropped: self.access_log_dropped.get(),
            sendfile_bodies: self.sendfile_bodies.get(),
            sendfile_bytes: self.sendfile_bytes.get(),
        }
    }
}

/// Connection counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionStats {
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections open now.
    pub active: u64,
    /// Connections turned away because the shard was full of busy connections.
    pub refused: u64,
    /// Idle keep-alive connections closed to make room for new ones.
    #[serde(default)]
    pub evicted: u64,
}

impl ConnectionStats {
    fn sum(self, other: Self) -> Self {
        ConnectionStats {
            accepted: self.accepted + other.accepted,
            active: self.active + other.active,
            refused: self.refused + other.refused,
            evicted: self.evicted + other.evicted,
        }
    }
}

/// TLS counters (all zero when `[tls]` is off).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsStats {
    /// Handshakes completed.
    pub handshakes: u64,
    /// Of those, resumed sessions (ticket or session id).
    pub resumed: u64,
    /// Connections closed on a bad TLS message: failed handshakes, bad records.
    pub failed: u64,
    /// Connections closed because plaintext HTTP reached the TLS listener.
    pub plaintext: u64,
    /// Connections whose input ended inside a TLS record or the handshake.
    pub truncated: u64,
}

impl TlsStats {
    fn sum(self, other: Self) -> Self {
        TlsStats {
            handshakes: self.handshakes + other.handshakes,
            resumed: self.resumed + other.resumed,
            failed: self.failed + other.failed,
            plaintext: self.plaintext + other.plaintext,
            truncated: self.truncated + other.truncated,
        }
    }
}

/// The event loop's work: how often it looked for ready sockets and how often it
/// slept. Requests ÷ parks is the requests served per wake-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopStats {
    /// Harvests of the shard's epoll set (`epoll_wait` calls).
    pub turns: u64,
    /// Times the shard slept waiting for its epoll set: its wake-ups by socket input.
    pub parks: u64,
}

impl LoopStats {
    fn sum(self, other: Self) -> Self {
        LoopStats {
            turns: self.turns + other.turns,
            parks: self.parks + other.parks,
        }
    }
}

/// The shard's PostgreSQL client (feature `pg`; all zero without it): queries ÷
/// writes is how many queries leave together in one write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseStats {
    /// Queries handed to a database connection.
    pub queries: u64,
    /// Writes to database sockets.
    pub writes: u64,
    /// Reads from database sockets that found input.
    pub reads: u64,
}

impl DatabaseStats {
    fn sum(self, other: Self) -> Self {
        DatabaseStats {
            queries: self.queries + other.queries,
            writes: self.writes + other.writes,
            reads: self.reads + other.reads,
        }
    }
}

/// WebSocket counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSocketStats {
    /// Handshakes accepted.
    pub connections: u64,
    /// Messages received (text, binary, close).
    pub messages_in: u64,
    /// Messages sent by handlers.
    pub messages_out: u64,
    /// Connections closed for breaking the protocol (1002, 1007, 1009).
    pub protocol_errors: u64,
}

impl WebSocketStats {
    fn sum(self, other: Self) -> Self {
        WebSocketStats {
            connections: self.connections + other.connections,
            messages_in: self.messages_in + other.messages_in,
            messages_out: self.messages_out + other.messages_out,
            protocol_errors: self.protocol_errors + other.protocol_errors,
        }
    }
}

/// Server time per request, from its batch being read to its response being encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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

impl LatencyStats {
    fn sum(self, other: Self) -> Self {
        LatencyStats {
            buckets: std::array::from_fn(|i| self.buckets[i] + other.buckets[i]),
            sum_us: self.sum_us + other.sum_us,
        }
    }
}

/// A point-in-time copy of one shard's counters, or (with `shard: None`) their sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// The shard, or `None` for a total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
    /// Requests decoded.
    pub requests: u64,
    /// Requests by method.
    pub methods: Counts<MethodLabel>,
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
    pub responses: Counts<StatusClass>,
    /// Requests refused as malformed or over a limit, by reason.
    pub parse_errors: Counts<ParseErrorLabel>,
    /// Handlers that panicked.
    pub handler_panics: u64,
    /// Timeouts: slow heads and bodies, idle connections, unread output, slow handlers.
    pub timeouts: u64,
    /// Request latency histogram.
    pub latency: LatencyStats,
    /// TLS handshakes and failures.
    #[serde(default)]
    pub tls: TlsStats,
    /// Event loop turns and parks.
    #[serde(default, rename = "loop")]
    pub event_loop: LoopStats,
    /// Database queries, writes and reads.
    #[serde(default)]
    pub database: DatabaseStats,
    /// WebSocket connections and messages.
    #[serde(default)]
    pub websocket: WebSocketStats,
    /// Access-log lines dropped because the sink was slower than the traffic (or failed).
    #[serde(default)]
    pub access_log_dropped: u64,
    /// File bodies sent by the kernel (`sendfile`), on plain connections.
    #[serde(default)]
    pub sendfile_bodies: u64,
    /// Bytes of file bodies sent by `sendfile` (also in `bytes_out`).
    #[serde(default)]
    pub sendfile_bytes: u64,
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
                tls: a.tls.sum(b.tls),
                event_loop: a.event_loop.sum(b.event_loop),
                database: a.database.sum(b.database),
                websocket: a.websocket.sum(b.websocket),
                access_log_dropped: a.access_log_dropped + b.access_log_dropped,
                sendfile_bodies: a.sendfile_bodies + b.sendfile_bodies,
                sendfile_bytes: a.sendfile_bytes + b.sendfile_bytes,
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
        a.tls_handshake(true);
        b.tls_handshake(false);
        b.tls_plaintext();
        a.loop_turn();
        a.loop_park();
        b.loop_turn();
        a.db_query();
        b.db_query();
        a.db_wrote();
        b.db_read();
        a.ws_opened();
        b.ws_opened();
        a.ws_message_in();
        b.ws_message_out();
        b.ws_protocol_error();
        a.access_log_dropped(3);
        b.access_log_dropped(4);
        a.sendfile_body();
        a.sent_file(5);
        b.sent_file(6);
        let total = StatsSnapshot::total(&[a.snapshot(0), b.snapshot(1)]);
        assert_eq!(
            total.websocket,
            WebSocketStats {
                connections: 2,
                messages_in: 1,
                messages_out: 1,
                protocol_errors: 1
            }
        );
        assert_eq!(total.requests, 2);
        assert_eq!(
            (
                total.methods.get(MethodLabel::Get),
                total.methods.get(MethodLabel::Post)
            ),
            (1, 1)
        );
        assert_eq!(
            total.connections,
            ConnectionStats {
                accepted: 2,
                active: 1,
                refused: 0,
                evicted: 0
            }
        );
        assert_eq!(total.responses.get(StatusClass::Success), 1);
        assert_eq!(total.responses.get(StatusClass::ClientError), 1);
        assert_eq!((total.bytes_in, total.bytes_out, total.writes), (10, 18, 3));
        assert_eq!(total.parse_errors.get(ParseErrorLabel::UriTooLong), 1);
        let json = serde_json::to_value(total).unwrap();
        assert_eq!(json["parse_errors"]["uri_too_long"], 1);
        assert_eq!(json["responses"]["4xx"], 1);
        assert_eq!(json["loop"]["turns"], 2);
        let back: StatsSnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, total, "a snapshot survives JSON");
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
        assert_eq!(total.event_loop, LoopStats { turns: 2, parks: 1 });
        assert_eq!(
            total.database,
            DatabaseStats {
                queries: 2,
                writes: 1,
                reads: 1
            }
        );
        assert_eq!(total.access_log_dropped, 7);
        assert_eq!((total.sendfile_bodies, total.sendfile_bytes), (1, 11));
        assert_eq!(
            (total.tls.handshakes, total.tls.resumed, total.tls.plaintext),
            (2, 1, 1)
        );
    }
}
