//! One connection's query pipeline, on the wire protocol directly (`postgres-protocol`'s
//! message encoders).
//!
//! A query is encoded where it is issued, straight into the connection's one write
//! buffer: `Bind` (the prepared statement's name, its parameters in binary), `Execute`
//! and a `Sync` of its own, so that it is its own implicit transaction (an error or an
//! `UPDATE` in one request never aborts or joins another's) and the server answers it
//! whatever failed before it. Its place in the answer order is a slot in a reused table,
//! so a query allocates nothing here. The connection's driver task, woken by the first
//! query written into an empty buffer, runs after the handlers of the loop turn and sends
//! everything queued with one write; it reads the answers in order, cuts each `DataRow`
//! out of the read buffer as a [`Row`] and wakes the query once its `ReadyForQuery`
//! arrives.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::mem;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use postgres_types::ToSql;

use super::io::{PgStream, ReadBuf};
use super::row::{Row, Statement};
use super::{DbError, PgError};

/// What a query answers with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Exactly one row.
    One,
    /// All its rows.
    Many,
    /// How many rows it changed.
    Count,
    /// Nothing: an empty query that asks whether the connection still answers.
    Probe,
}

/// A query's answer, of its [`Kind`].
pub(crate) enum Answer {
    One(Row),
    Many(Vec<Row>),
    Count(u64),
    Done,
}

/// One query's slot: what has come of its answer so far, then the answer itself.
/// Kept small (a slot is reused in place, never moved) and reset field by field.
struct Entry {
    state: State,
    statement: usize,
    waker: Option<Waker>,
    /// The query was given up on (its future dropped): the slot is freed when the
    /// answer arrives.
    abandoned: bool,
}

/// A slot's progress.
enum State {
    Free,
    /// A one-row query: its row so far, and whether more came.
    One(Option<Row>, bool),
    Many(Vec<Row>),
    Count(u64),
    Probe,
    /// The server refused the query; its `ReadyForQuery` is still to come.
    Failed(DbError),
    /// The query's `ReadyForQuery` arrived (or the connection ended).
    Done(Result<Answer, PgError>),
}

impl State {
    fn new(kind: Kind) -> State {
        match kind {
            Kind::One => State::One(None, false),
            Kind::Many => State::Many(Vec::new()),
            Kind::Count => State::Count(0),
            Kind::Probe => State::Probe,
        }
    }

    /// The answer, now that the server said it is complete.
    fn finish(self) -> Result<Answer, PgError> {
        match self {
            State::One(Some(row), false) => Ok(Answer::One(row)),
            State::One(None, _) => Err(PgError::Query(DbError::client("query returned no rows"))),
            State::One(Some(_), true) => Err(PgError::Query(DbError::client(
                "query returned more than one row",
            ))),
            State::Many(rows) => Ok(Answer::Many(rows)),
            State::Count(n) => Ok(Answer::Count(n)),
            State::Failed(e) => Err(PgError::from(e)),
            State::Probe | State::Free | State::Done(_) => Ok(Answer::Done),
        }
    }
}

/// The slots, and the order in which the server will answer them.
#[derive(Default)]
struct Book {
    entries: Vec<Entry>,
    free: Vec<usize>,
    /// Sent (or queued to be sent) and not yet answered, oldest first.
    queue: VecDeque<usize>,
}

impl Book {
    fn insert(&mut self, kind: Kind, statement: usize) -> usize {
        match self.free.pop() {
            Some(id) => {
                let entry = &mut self.entries[id];
                entry.state = State::new(kind);
                entry.statement = statement;
                id
            }
            None => {
                self.entries.push(Entry {
                    state: State::new(kind),
                    statement,
                    waker: None,
                    abandoned: false,
                });
                self.entries.len() - 1
            }
        }
    }

    /// Hands `outcome` to slot `id`'s query, or frees the slot if it was given up on.
    fn complete(&mut self, id: usize, outcome: Result<Answer, PgError>) {
        let entry = &mut self.entries[id];
        if entry.abandoned {
            self.release(id);
            return;
        }
        entry.state = State::Done(outcome);
        if let Some(waker) = entry.waker.take() {
            waker.wake();
        }
    }

    fn release(&mut self, id: usize) {
        let entry = &mut self.entries[id];
        // Drops what the slot still holds (rows of an abandoned query).
        entry.state = State::Free;
        entry.waker = None;
        entry.abandoned = false;
        self.free.push(id);
    }
}

/// A connection's pipeline: its prepared statements, the requests not yet written and
/// the queries waiting for answers. Shared by the queries (which write into it) and the
/// driver (which sends and receives); the socket itself belongs to the driver, so that
/// stopping the driver closes it.
pub(crate) struct Wire {
    statements: Vec<Statement>,
    backend_pid: i32,
    out: RefCell<BytesMut>,
    book: RefCell<Book>,
    /// The driver, to wake when a query is written into an empty buffer.
    driver: RefCell<Option<Waker>>,
    /// Why the connection ended, once it has: queries fail at once.
    closed: RefCell<Option<String>>,
}

impl Wire {
    /// The pipeline of a logged-in connection with `statements` prepared.
    pub(crate) fn new(statements: Vec<Statement>, backend_pid: i32) -> Wire {
        Wire {
            statements,
            backend_pid,
            out: RefCell::new(BytesMut::with_capacity(4096)),
            book: RefCell::default(),
            driver: RefCell::new(None),
            closed: RefCell::new(None),
        }
    }

    /// The server process that serves the connection.
    pub(crate) fn backend_pid(&self) -> i32 {
        self.backend_pid
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }

    /// Queues prepared statement `statement` with `params`; its answer comes to
    /// [`Wire::poll_answer`] with the returned id.
    pub(crate) fn send(
        &self,
        kind: Kind,
        statement: usize,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<usize, PgError> {
        self.check_open()?;
        let Some(stmt) = self.statements.get(statement) else {
            return Err(PgError::Query(DbError::client(format!(
                "no statement {statement}: {} were prepared",
                self.statements.len()
            ))));
        };
        if params.len() != stmt.params.len() {
            return Err(PgError::Query(DbError::client(format!(
                "statement {statement} takes {} parameters, given {}",
                stmt.params.len(),
                params.len()
            ))));
        }
        let mut out = self.out.borrow_mut();
        let mark = out.len();
        let bound = frontend::bind(
            "",
            &stmt.name,
            Some(1),
            params.iter().zip(&stmt.params),
            |(param, ty), buf| match param.to_sql_checked(ty, buf)? {
                postgres_types::IsNull::Yes => Ok(postgres_protocol::IsNull::Yes),
                postgres_types::IsNull::No => Ok(postgres_protocol::IsNull::No),
            },
            Some(1),
            &mut out,
        );
        if let Err(e) = bound {
            out.truncate(mark);
            let why = match e {
                frontend::BindError::Conversion(e) => e.to_string(),
                frontend::BindError::Serialization(e) => e.to_string(),
            };
            return Err(PgError::Query(DbError::client(format!("parameter: {why}"))));
        }
        // Unnamed portal, all rows: cannot fail.
        let _ = frontend::execute("", 0, &mut out);
        frontend::sync(&mut out);
        drop(out);
        Ok(self.queued(kind, statement, mark))
    }

    /// Queues an empty query, which the server answers once everything before it is.
    pub(crate) fn send_probe(&self) -> Result<usize, PgError> {
        self.check_open()?;
        let mut out = self.out.borrow_mut();
        let mark = out.len();
        // An empty string has no NUL to refuse.
        let _ = frontend::query("", &mut out);
        drop(out);
        Ok(self.queued(Kind::Probe, 0, mark))
    }

    fn check_open(&self) -> Result<(), PgError> {
        match &*self.closed.borrow() {
            Some(why) => Err(PgError::Unavailable(why.clone())),
            None => Ok(()),
        }
    }

    /// Books the query just written after `mark` bytes; wakes the driver when these
    /// are the first bytes waiting (it sends them after this loop turn's handlers).
    fn queued(&self, kind: Kind, statement: usize, mark: usize) -> usize {
        let mut book = self.book.borrow_mut();
        let id = book.insert(kind, statement);
        book.queue.push_back(id);
        drop(book);
        if mark == 0 {
            if let Some(driver) = &*self.driver.borrow() {
                driver.wake_by_ref();
            }
        }
        id
    }

    /// The answer of query `id`, once it has come.
    pub(crate) fn poll_answer(&self, id: usize, cx: &Context<'_>) -> Poll<Result<Answer, PgError>> {
        let mut book = self.book.borrow_mut();
        let entry = &mut book.entries[id];
        if let State::Done(_) = entry.state {
            let State::Done(outcome) = mem::replace(&mut entry.state, State::Free) else {
                unreachable!("the state was just matched")
            };
            book.release(id);
            return Poll::Ready(outcome);
        }
        if !entry
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            entry.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Query `id` is given up on: its answer, when it comes, is dropped.
    pub(crate) fn abandon(&self, id: usize) {
        let mut book = self.book.borrow_mut();
        if let State::Done(_) = book.entries[id].state {
            book.release(id);
        } else {
            book.entries[id].abandoned = true;
        }
    }

    /// Ends the connection: every query waiting, and every later one, fails with
    /// [`PgError::Unavailable`].
    fn close(&self, why: &str) {
        if self.closed.borrow().is_some() {
            return;
        }
        *self.closed.borrow_mut() = Some(why.to_owned());
        self.out.borrow_mut().clear();
        let mut book = self.book.borrow_mut();
        while let Some(id) = book.queue.pop_front() {
            book.complete(id, Err(PgError::Unavailable(why.to_owned())));
        }
    }

    /// Hands the complete messages in `input` to the queries they answer.
    fn receive(&self, input: &mut ReadBuf) -> Result<(), String> {
        let mut book = self.book.borrow_mut();
        while let Some((tag, len)) = frame(input.input())? {
            let front = book.queue.front().copied();
            match (tag, front) {
                (b'D', Some(id)) => {
                    let entry = &mut book.entries[id];
                    if let State::One(..) | State::Many(_) = entry.state {
                        input.skip(HEADER);
                        let columns = &self.statements[entry.statement].columns;
                        let row = Row::new(columns, input.take(len - HEADER))
                            .ok_or("a malformed data row")?;
                        match &mut entry.state {
                            State::Many(rows) => rows.push(row),
                            State::One(first @ None, _) => *first = Some(row),
                            State::One(_, more) => *more = true,
                            _ => {}
                        }
                        continue;
                    }
                }
                (b'C', Some(id)) => {
                    if let State::Count(n) = &mut book.entries[id].state {
                        *n = rows_changed(&input.input()[HEADER..len]);
                    }
                }
                (b'E', Some(id)) => {
                    let entry = &mut book.entries[id];
                    if !matches!(entry.state, State::Failed(_)) {
                        entry.state = State::Failed(db_error(&input.input()[HEADER..len]));
                    }
                }
                (b'Z', Some(id)) => {
                    book.queue.pop_front();
                    let progress = mem::replace(&mut book.entries[id].state, State::Free);
                    book.complete(id, progress.finish());
                }
                // Bind done, an empty query's answer, notices, settings, notifications.
                (b'2' | b'I' | b'N' | b'S' | b'A', _) => {}
                // Outside any query: the server is going away (an admin shutdown).
                (b'E', None) => return Err(db_error(&input.input()[HEADER..len]).to_string()),
                (tag, _) => {
                    return Err(format!(
                        "unexpected message {:?} from the server",
                        char::from(tag)
                    ))
                }
            }
            input.skip(len);
        }
        Ok(())
    }

    /// Sends what queries queued and hands out answers until the connection ends;
    /// returns why it did. Dropping the future closes the socket; either way every
    /// query still waiting fails with [`PgError::Unavailable`].
    pub(crate) async fn drive(&self, stream: PgStream, mut input: ReadBuf) -> String {
        struct Closing<'a>(&'a Wire);
        impl Drop for Closing<'_> {
            fn drop(&mut self) {
                self.0.close("connection closed");
            }
        }
        let _closing = Closing(self);
        let mut written = 0;
        let why = poll_fn(|cx| self.poll_drive(cx, &stream, &mut input, &mut written)).await;
        self.close(&why);
        why
    }

    fn poll_drive(
        &self,
        cx: &Context<'_>,
        stream: &PgStream,
        input: &mut ReadBuf,
        written: &mut usize,
    ) -> Poll<String> {
        {
            let mut driver = self.driver.borrow_mut();
            if !driver.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *driver = Some(cx.waker().clone());
            }
        }
        {
            let mut out = self.out.borrow_mut();
            while *written < out.len() {
                match stream.poll_write(cx, &out[*written..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready("write: connection closed".into()),
                    Poll::Ready(Ok(n)) => *written += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(format!("write: {e}")),
                    Poll::Pending => break,
                }
            }
            if *written == out.len() {
                out.clear();
                *written = 0;
            }
        }
        loop {
            match stream.poll_read(cx, input.spare()) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready("the server closed the connection".into())
                }
                Poll::Ready(Ok(n)) => {
                    input.filled(n);
                    if let Err(why) = self.receive(input) {
                        return Poll::Ready(why);
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(format!("read: {e}")),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Bytes before a message's contents: its tag and its length.
pub(crate) const HEADER: usize = 5;

/// The tag and whole length of the message at the front of `input`, once it is all
/// there.
pub(crate) fn frame(input: &[u8]) -> Result<Option<(u8, usize)>, String> {
    let Some(header) = input.get(..HEADER) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len < 4 {
        return Err(format!("a message of length {len}"));
    }
    let total = len + 1;
    Ok((input.len() >= total).then_some((header[0], total)))
}

/// An `ErrorResponse`'s severity, SQLSTATE and message (its other fields stay behind).
pub(crate) fn db_error(mut fields: &[u8]) -> DbError {
    let (mut severity, mut localized, mut code, mut message) = (None, None, None, None);
    while let Some((&kind, rest)) = fields.split_first() {
        if kind == 0 {
            break;
        }
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let value = String::from_utf8_lossy(&rest[..end]).into_owned();
        match kind {
            b'V' => severity = Some(value),
            b'S' => localized = Some(value),
            b'C' => code = Some(value),
            b'M' => message = Some(value),
            _ => {}
        }
        fields = rest.get(end + 1..).unwrap_or(&[]);
    }
    DbError::server(
        severity.or(localized).unwrap_or_default(),
        code.unwrap_or_default(),
        message.unwrap_or_default(),
    )
}

/// The row count at the end of a `CommandComplete` tag (`UPDATE 5`, `SELECT 1`); 0 for
/// a command without one.
fn rows_changed(tag: &[u8]) -> u64 {
    let tag = tag.strip_suffix(&[0]).unwrap_or(tag);
    let last = tag.rsplit(|&b| b == b' ').next().unwrap_or(&[]);
    std::str::from_utf8(last)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_whole_messages() {
        assert_eq!(frame(b"Z\0\0\0"), Ok(None));
        assert_eq!(frame(b"Z\0\0\0\x05I"), Ok(Some((b'Z', 6))));
        assert_eq!(frame(b"D\0\0\0\x08ab"), Ok(None));
        assert!(frame(b"Z\0\0\0\x03").is_err());
    }

    #[test]
    fn error_fields_and_command_tags() {
        let e = db_error(b"SERREUR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0P15\0\0");
        assert_eq!(e.severity(), Some("ERROR"));
        assert_eq!(e.code(), Some("42P01"));
        assert_eq!(e.message(), "relation \"x\" does not exist");
        let cut = db_error(b"SFATAL\0C57P01\0Mshutting");
        assert_eq!((cut.severity(), cut.code()), (Some("FATAL"), Some("57P01")));
        assert_eq!(cut.message(), "shutting");
        assert_eq!(rows_changed(b"UPDATE 5\0"), 5);
        assert_eq!(rows_changed(b"INSERT 0 3\0"), 3);
        assert_eq!(rows_changed(b"BEGIN\0"), 0);
    }
}
