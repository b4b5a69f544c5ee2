//! The access log: one line per response, buffered per shard, written off the shard.
//!
//! Each shard appends formatted lines (`format`) to its own reused buffer (no lock, no
//! syscall, no allocation once the buffer has grown) and hands the buffer to its writer
//! thread (`writer`) once a second, when it passes `FLUSH_AT`, on a reload, and at the
//! end of a graceful stop. The hand-over never waits: when the sink is slower than the
//! traffic, whole buffers are dropped and their lines counted
//! (`haywire_access_log_dropped_total`), and no connection stalls.
//!
//! When the log is off, the request path pays one branch where a request is decoded
//! (no entry is made) and one where its response is encoded.

mod format;
mod template;
mod writer;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

pub(crate) use format::Entry;
use format::Line;
pub(crate) use template::Template;
use writer::{Refused, Writer};

use crate::config::{LogConfig, LogFormat};
use crate::http::date::DATE_LEN;
use crate::http::{Request, Response, ResponseMode};
use crate::stats::ShardStats;

/// Buffered bytes that trigger a hand-over before the next timer tick, so a busy
/// shard's buffer stays small (one per ~500 lines, not per line).
const FLUSH_AT: usize = 64 * 1024;

/// How often buffered lines are handed over at the latest.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How long a graceful stop waits for the writer to finish what is queued: a sink that
/// takes longer is stalled, and its lines are lost with the process.
const FINISH_WAIT: Duration = Duration::from_secs(2);

/// One shard's access log.
pub(crate) struct AccessLog {
    shard: usize,
    /// Read on every request: the one branch the log costs when off.
    on: Cell<bool>,
    format: Cell<LogFormat>,
    /// `log.template`, which replaces `format` when set.
    template: RefCell<Option<Rc<Template>>>,
    buf: RefCell<Vec<u8>>,
    /// Lines in `buf`, counted as dropped if the writer cannot take them.
    lines: Cell<u64>,
    /// `None` while the log is off.
    writer: RefCell<Option<Writer>>,
    stats: Rc<ShardStats>,
}

/// Opens what `config` names, checking that it can be written: at start and before a
/// reload is applied, so a bad path is refused with the key's name.
pub(crate) fn check(config: &LogConfig) -> io::Result<()> {
    writer::open(config).map(drop)
}

impl AccessLog {
    /// Shard `shard`'s log as `config` asks, counting into `stats`; a file that cannot
    /// be opened leaves the log off (reported), since the shard can still serve.
    pub(crate) fn new(shard: usize, config: &LogConfig, stats: Rc<ShardStats>) -> AccessLog {
        let log = AccessLog {
            shard,
            on: Cell::new(false),
            format: Cell::new(config.format),
            template: RefCell::new(None),
            buf: RefCell::new(Vec::new()),
            lines: Cell::new(0),
            writer: RefCell::new(None),
            stats,
        };
        log.reopen(config);
        log
    }

    /// Hands what is buffered to the old destination, then opens the one `config` names
    /// (a reload: also how a rotated file is reopened). On failure the old destination
    /// stays. The old writer ends once it has written its queue.
    pub(crate) fn reopen(&self, config: &LogConfig) {
        self.flush();
        match writer::open(config).and_then(|sink| Writer::start(self.shard, sink)) {
            Ok(writer) => {
                self.on.set(writer.is_some());
                self.format.set(config.format);
                // Checked with the rest of the configuration: it parses.
                *self.template.borrow_mut() = (!config.template.is_empty())
                    .then(|| Template::parse(&config.template).ok().map(Rc::new))
                    .flatten();
                if let Some(old) = self.writer.replace(writer) {
                    // Ends once it has written its queue.
                    self.stats.access_log_dropped(old.take_failed());
                }
            }
            Err(e) => tracing::error!(shard = self.shard, "access log not reopened: {e}"),
        }
    }

    /// Whether lines are being logged.
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.on.get()
    }

    /// What the log needs from `request`, or `None` when the log is off.
    #[inline]
    pub(crate) fn entry(&self, request: &Request) -> Option<Entry> {
        if self.is_on() {
            Some(Entry::new(request))
        } else {
            None
        }
    }

    /// Logs one encoded response whose body went out with its head. `entry` is `None`
    /// for a response to no request (a malformed one, a timeout) or when the log was
    /// off as the request arrived.
    #[inline]
    pub(crate) fn log(
        &self,
        entry: Option<&Entry>,
        response: &Response,
        mode: ResponseMode,
        date: &[u8; DATE_LEN],
    ) {
        if self.is_on() {
            let status = response.status();
            let bytes = if mode.head_only || status.forbids_body() {
                0
            } else {
                response.body().len() as u64
            };
            self.append(entry, status.as_u16(), bytes, date);
        }
    }

    /// Logs a response whose body was sent after its head (streamed, a file, a large
    /// one) once that body has ended, completed or cut short: `bytes` is what was
    /// sent of it, and the line's duration ends here.
    pub(crate) fn log_sent(
        &self,
        entry: Option<&Entry>,
        status: u16,
        bytes: u64,
        date: &[u8; DATE_LEN],
    ) {
        if self.is_on() {
            self.append(entry, status, bytes, date);
        }
    }

    #[inline(never)]
    fn append(&self, entry: Option<&Entry>, status: u16, bytes: u64, date: &[u8; DATE_LEN]) {
        self.lines.set(self.lines.get() + 1);
        let full = {
            let mut buf = self.buf.borrow_mut();
            let line = Line {
                entry,
                status,
                bytes,
                date,
                shard: self.shard,
            };
            match (&*self.template.borrow(), self.format.get()) {
                (Some(template), _) => line.template(template, &mut buf),
                (None, LogFormat::Combined) => line.combined(&mut buf),
                (None, LogFormat::Json) => line.json(&mut buf),
            }
            buf.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
    }

    /// Hands every buffered line to the writer without waiting; if it is behind, the
    /// lines are dropped and counted.
    pub(crate) fn flush(&self) {
        let mut buf = self.buf.borrow_mut();
        if buf.is_empty() {
            return;
        }
        let lines = self.lines.replace(0);
        let writer = self.writer.borrow();
        let Some(writer) = writer.as_ref() else {
            buf.clear();
            return;
        };
        self.stats.access_log_dropped(writer.take_failed());
        let full = std::mem::take(&mut *buf);
        match writer.send(full) {
            Ok(()) => {
                *buf = writer
                    .spare()
                    .unwrap_or_else(|| Vec::with_capacity(FLUSH_AT + FLUSH_AT / 4))
            }
            Err(Refused(mut lost)) => {
                self.stats.access_log_dropped(lines);
                lost.clear();
                *buf = lost;
            }
        }
    }

    /// At the end of a graceful stop: hands over the last lines and waits, a bounded
    /// time, for the writer to write everything queued. The log is off afterwards.
    pub(crate) async fn finish(&self) {
        self.flush();
        self.on.set(false);
        let Some(writer) = self.writer.take() else {
            return;
        };
        let closing = writer.close();
        let deadline = Instant::now() + FINISH_WAIT;
        while !closing.is_done() && Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
        self.stats.access_log_dropped(closing.failed());
    }

    /// The shard's flush timer: buffered lines are handed over within a second.
    pub(crate) async fn run(self: Rc<Self>) {
        loop {
            glommio::timer::sleep(FLUSH_EVERY).await;
            self.flush();
        }
    }
}
