//! Where access-log lines go, written off the shard: a thread per shard takes whole
//! buffers from a bounded queue and writes them with ordinary blocking writes.
//!
//! The shard only ever hands a buffer over (`try_send`), so a sink slower than the
//! traffic (a stdout pipe nobody reads, a stalled terminal, a hung network file system)
//! never stalls its connections: once `QUEUED` buffers wait, the shard drops the next
//! one and counts its lines. Emptied buffers come back for reuse, so logging allocates
//! nothing per request. Files go through the same thread: a write to a file usually
//! lands in the page cache, but one that waits on the disk or the network must not hold
//! the shard either.
//!
//! Lines from different shards never interleave mid-line: a file is opened with
//! `O_APPEND` and written with one `write` per buffer of whole lines; standard output,
//! which may be a pipe shared with other processes, is written in whole-line chunks of
//! at most `PIPE_BUF` bytes (atomic on a pipe).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;

use crate::config::LogConfig;

/// Buffers a shard may have waiting for its writer; past them, lines are dropped. With
/// buffers of about `FLUSH_AT` bytes, a shard holds at most about 256 KiB of lines.
const QUEUED: usize = 4;

/// Largest write that is atomic on a pipe (POSIX `PIPE_BUF` on Linux).
const PIPE_BUF: usize = 4096;

/// Where lines go.
pub(super) enum Sink {
    Off,
    /// A duplicate of descriptor 1, written in whole-line chunks of at most `PIPE_BUF`.
    Stdout(File),
    /// A file opened with `O_APPEND` by this shard.
    File(File),
}

/// Opens what `config` names.
pub(super) fn open(config: &LogConfig) -> io::Result<Sink> {
    Ok(match config.access.as_str() {
        "off" => Sink::Off,
        "stdout" => Sink::Stdout(File::from(io::stdout().as_fd().try_clone_to_owned()?)),
        path => Sink::File(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| io::Error::new(e.kind(), format!("log.access {path:?}: {e}")))?,
        ),
    })
}

/// A buffer that could not be handed over: the writer is behind (or gone).
pub(super) struct Refused(pub(super) Vec<u8>);

/// The shard's end of its writer thread.
pub(super) struct Writer {
    queue: SyncSender<Vec<u8>>,
    spare: Receiver<Vec<u8>>,
    /// Lines the thread failed to write (the sink returned an error).
    failed: Arc<AtomicU64>,
    /// Disconnected once the thread has written its queue and ended.
    done: Receiver<()>,
}

impl Writer {
    /// Starts shard `shard`'s writer thread for `sink`; `None` for [`Sink::Off`].
    pub(super) fn start(shard: usize, sink: Sink) -> io::Result<Option<Writer>> {
        let out = match sink {
            Sink::Off => return Ok(None),
            Sink::Stdout(out) => Out::Stdout(out),
            Sink::File(file) => Out::File(file),
        };
        let (queue, queued) = mpsc::sync_channel::<Vec<u8>>(QUEUED);
        let (give_back, spare) = mpsc::sync_channel(QUEUED + 1);
        let (finished, done) = mpsc::sync_channel::<()>(0);
        let failed = Arc::new(AtomicU64::new(0));
        let counted = failed.clone();
        std::thread::Builder::new()
            .name(format!("haywire-log-{shard}"))
            .spawn(move || {
                let _finished = finished;
                let mut failing = false;
                for mut buf in queued {
                    match out.write(&buf) {
                        Ok(()) => failing = false,
                        Err(e) => {
                            let lines = buf.iter().filter(|&&b| b == b'\n').count();
                            counted.fetch_add(lines as u64, Ordering::Relaxed);
                            if !std::mem::replace(&mut failing, true) {
                                tracing::warn!(shard, "access log write failed: {e}");
                            }
                        }
                    }
                    buf.clear();
                    // A full return queue means the shard has spares enough.
                    give_back.try_send(buf).ok();
                }
            })?;
        Ok(Some(Writer {
            queue,
            spare,
            failed,
            done,
        }))
    }

    /// Queues `buf` for writing, without waiting.
    pub(super) fn send(&self, buf: Vec<u8>) -> Result<(), Refused> {
        self.queue.try_send(buf).map_err(|e| match e {
            TrySendError::Full(buf) | TrySendError::Disconnected(buf) => Refused(buf),
        })
    }

    /// An emptied buffer to fill next, if the thread has given one back.
    pub(super) fn spare(&self) -> Option<Vec<u8>> {
        self.spare.try_recv().ok()
    }

    /// Lines the thread failed to write since the last call.
    pub(super) fn take_failed(&self) -> u64 {
        self.failed.swap(0, Ordering::Relaxed)
    }

    /// Ends the thread once it has written what is queued; the returned handle tells
    /// when it has.
    pub(super) fn close(self) -> Closing {
        Closing {
            done: self.done,
            failed: self.failed,
        }
    }
}

/// A writer thread writing what was queued before it ends.
pub(super) struct Closing {
    done: Receiver<()>,
    failed: Arc<AtomicU64>,
}

impl Closing {
    /// Whether the thread has written everything and ended.
    pub(super) fn is_done(&self) -> bool {
        matches!(self.done.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// Lines the thread failed to write.
    pub(super) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// The writer thread's sink.
enum Out {
    Stdout(File),
    File(File),
}

impl Out {
    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Out::Stdout(out) => write_chunked(out, bytes),
            Out::File(file) => write_all(file, bytes),
        }
    }
}

/// One `write` for the whole buffer; more only if the kernel takes part of it.
fn write_all(mut file: &File, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match file.write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes `bytes` (whole lines) in chunks of whole lines of at most `PIPE_BUF` bytes, so
/// that writers sharing a pipe never interleave mid-line. A longer line goes alone.
fn write_chunked(out: &File, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let end = chunk_end(bytes);
        write_all(out, &bytes[..end])?;
        bytes = &bytes[end..];
    }
    Ok(())
}

/// Where the first chunk of `bytes` ends: after the last line that fits in `PIPE_BUF`,
/// or after the first line when even that one is longer.
fn chunk_end(bytes: &[u8]) -> usize {
    if bytes.len() <= PIPE_BUF {
        return bytes.len();
    }
    match bytes[..PIPE_BUF].iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_hold_whole_lines_within_pipe_buf() {
        let mut lines = Vec::new();
        for i in 0..500 {
            lines.extend_from_slice(format!("line {i} {}\n", "x".repeat(i % 50)).as_bytes());
        }
        lines.extend_from_slice(&[b'y'; 9000]);
        lines.push(b'\n');
        lines.extend_from_slice(b"last\n");
        let mut chunks = Vec::new();
        let mut rest = &lines[..];
        while !rest.is_empty() {
            let end = chunk_end(rest);
            chunks.push(&rest[..end]);
            rest = &rest[end..];
        }
        assert!(chunks.len() > 3, "{} chunks", chunks.len());
        for chunk in &chunks {
            assert!(chunk.ends_with(b"\n"), "a chunk ends mid-line");
            let lines_in = chunk.iter().filter(|&&b| b == b'\n').count();
            assert!(
                chunk.len() <= PIPE_BUF || lines_in == 1,
                "{} bytes",
                chunk.len()
            );
        }
        assert_eq!(chunks.concat(), lines);

        let path = std::env::temp_dir().join(format!("haywire-chunks-{}", std::process::id()));
        write_chunked(&File::create(&path).unwrap(), &lines).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), lines);
        std::fs::remove_file(&path).unwrap();
    }
}
