//! Opening a connection: the startup message, the password exchange the server asks
//! for (none, cleartext, MD5 or SCRAM-SHA-256) and the statements prepared once.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use super::io::{PgStream, ReadBuf};
use super::row::{type_of, Statement};
use super::settings::Address;
use super::wire::{db_error, frame, HEADER};
use super::{DbError, PgError};
use crate::net::Poller;

/// Who logs in where, with which startup parameters.
pub(crate) struct Login {
    pub(crate) address: Address,
    pub(crate) user: String,
    pub(crate) password: String,
    /// `(name, value)` startup parameters: user, database, application_name, options.
    pub(crate) params: Vec<(&'static str, String)>,
}

/// A logged-in connection: the socket, input already read past the login, and the
/// server process's id.
pub(crate) struct Session {
    pub(crate) stream: PgStream,
    pub(crate) input: ReadBuf,
    pub(crate) backend_pid: i32,
}

impl Login {
    /// Connects and logs in; ready for queries.
    pub(crate) async fn open(&self, poller: &Rc<Poller>) -> Result<Session, PgError> {
        let stream = match &self.address {
            Address::Tcp(addr) => PgStream::tcp(addr, poller)
                .await
                .map_err(|e| PgError::Unavailable(format!("connect {addr}: {e}")))?,
            Address::Unix(path) => PgStream::unix(path, poller)
                .await
                .map_err(|e| PgError::Unavailable(format!("connect {}: {e}", path.display())))?,
        };
        let mut session = Session {
            stream,
            input: ReadBuf::new(),
            backend_pid: 0,
        };
        self.log_in(&mut session)
            .await
            .map_err(|why| PgError::Unavailable(format!("login: {why}")))?;
        Ok(session)
    }

    async fn log_in(&self, session: &mut Session) -> Result<(), String> {
        let mut out = BytesMut::new();
        let params = self.params.iter().map(|(k, v)| (*k, v.as_str()));
        frontend::startup_message(params, &mut out).map_err(|e| e.to_string())?;
        session.send(&mut out).await?;
        let mut scram = None;
        loop {
            match session.message().await? {
                Message::AuthenticationOk => break,
                Message::AuthenticationCleartextPassword => {
                    frontend::password_message(self.password()?, &mut out)
                        .map_err(|e| e.to_string())?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(self.user.as_bytes(), self.password()?, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut out)
                        .map_err(|e| e.to_string())?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut offered = false;
                    while let Ok(Some(mechanism)) = mechanisms.next() {
                        offered |= mechanism == SCRAM_SHA_256;
                    }
                    if !offered {
                        return Err("the server offers no SASL mechanism supported here".into());
                    }
                    // No TLS, so no channel binding.
                    let exchange =
                        ScramSha256::new(self.password()?, ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, exchange.message(), &mut out)
                        .map_err(|e| e.to_string())?;
                    scram = Some(exchange);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let exchange = scram.as_mut().ok_or("SASL continue without a start")?;
                    exchange.update(body.data()).map_err(|e| e.to_string())?;
                    frontend::sasl_response(exchange.message(), &mut out)
                        .map_err(|e| e.to_string())?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let exchange = scram.as_mut().ok_or("SASL final without a start")?;
                    exchange.finish(body.data()).map_err(|e| e.to_string())?;
                    continue;
                }
                _ => return Err("an authentication method not supported here".into()),
            }
            session.send(&mut out).await?;
        }
        loop {
            match session.message().await? {
                Message::ReadyForQuery(_) => return Ok(()),
                Message::BackendKeyData(body) => session.backend_pid = body.process_id(),
                // Parameter status, notices: nothing to keep.
                _ => {}
            }
        }
    }

    fn password(&self) -> Result<&[u8], String> {
        if self.password.is_empty() {
            Err("the server asks for a password and none is configured".into())
        } else {
            Ok(self.password.as_bytes())
        }
    }
}

impl Session {
    /// Prepares `texts` as statements `s0`, `s1`, ... with one round trip; the server's
    /// description of each gives the types of its parameters and columns.
    pub(crate) async fn prepare(&mut self, texts: &[String]) -> Result<Vec<Statement>, PgError> {
        self.prepare_all(texts).await.map_err(|why| match why {
            Failure::Server(e) => PgError::Unavailable(format!("prepare: {e}")),
            Failure::Wire(why) => PgError::Unavailable(format!("prepare: {why}")),
        })
    }

    async fn prepare_all(&mut self, texts: &[String]) -> Result<Vec<Statement>, Failure> {
        let mut out = BytesMut::new();
        let names: Vec<String> = (0..texts.len()).map(|i| format!("s{i}")).collect();
        for (name, text) in names.iter().zip(texts) {
            frontend::parse(name, text, None, &mut out)
                .map_err(|e| Failure::Wire(e.to_string()))?;
            frontend::describe(b'S', name, &mut out).map_err(|e| Failure::Wire(e.to_string()))?;
        }
        frontend::sync(&mut out);
        self.send(&mut out).await.map_err(Failure::Wire)?;
        let mut statements = Vec::with_capacity(texts.len());
        let mut params = Vec::new();
        let mut names = names.into_iter();
        let mut failed = None;
        loop {
            if let Some(e) = self.error().await.map_err(Failure::Wire)? {
                failed.get_or_insert(e);
                continue;
            }
            match self.message().await.map_err(Failure::Wire)? {
                Message::ReadyForQuery(_) => break,
                Message::ParameterDescription(body) => {
                    params = collect(body.parameters()).map_err(Failure::Wire)?;
                }
                Message::RowDescription(body) => {
                    let columns =
                        collect(body.fields().map(|f| Ok(f.type_oid()))).map_err(Failure::Wire)?;
                    statements.push(self.statement(&mut names, &mut params, &columns)?);
                }
                Message::NoData => statements.push(self.statement(&mut names, &mut params, &[])?),
                _ => {}
            }
        }
        match failed {
            Some(e) => Err(Failure::Server(e)),
            None if statements.len() == texts.len() => Ok(statements),
            None => Err(Failure::Wire(
                "the server described too few statements".into(),
            )),
        }
    }

    fn statement(
        &self,
        names: &mut impl Iterator<Item = String>,
        params: &mut Vec<u32>,
        columns: &[u32],
    ) -> Result<Statement, Failure> {
        let name = names
            .next()
            .ok_or_else(|| Failure::Wire("the server described too many statements".into()))?;
        Ok(Statement {
            name,
            params: std::mem::take(params).into_iter().map(type_of).collect(),
            columns: columns.iter().copied().map(type_of).collect(),
        })
    }

    /// Writes `out` and empties it.
    async fn send(&self, out: &mut BytesMut) -> Result<(), String> {
        let sent = self.stream.write_all(out).await;
        out.clear();
        sent.map_err(|e| format!("write: {e}"))
    }

    /// The next whole message, read as needed.
    async fn frame(&mut self) -> Result<(u8, Bytes), String> {
        loop {
            if let Some((tag, len)) = frame(self.input.input())? {
                return Ok((tag, self.input.take(len)));
            }
            self.stream
                .read_more(&mut self.input)
                .await
                .map_err(|e| format!("read: {e}"))?;
        }
    }

    /// The next message, an `ErrorResponse` being an error.
    async fn message(&mut self) -> Result<Message, String> {
        let (tag, frame) = self.frame().await?;
        if tag == b'E' {
            return Err(db_error(&frame[HEADER..]).to_string());
        }
        Message::parse(&mut BytesMut::from(&frame[..]))
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "a cut message".to_owned())
    }

    /// The next message if it is an `ErrorResponse`, taken; otherwise it stays.
    async fn error(&mut self) -> Result<Option<DbError>, String> {
        loop {
            if let Some((tag, len)) = frame(self.input.input())? {
                if tag != b'E' {
                    return Ok(None);
                }
                let frame = self.input.take(len);
                return Ok(Some(db_error(&frame[HEADER..])));
            }
            self.stream
                .read_more(&mut self.input)
                .await
                .map_err(|e| format!("read: {e}"))?;
        }
    }
}

/// Why preparing failed: the server refused a statement, or the connection broke.
enum Failure {
    Server(DbError),
    Wire(String),
}

/// The items of one of the protocol crate's fallible iterators.
fn collect<I>(items: I) -> Result<Vec<u32>, String>
where
    I: FallibleIterator<Item = u32, Error = std::io::Error>,
{
    items.collect().map_err(|e| e.to_string())
}
