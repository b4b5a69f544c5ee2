//! What can go wrong with a database query, and the HTTP answer for each.

use std::fmt;
use std::time::Duration;

use crate::{Response, StatusCode};

/// Why a database call failed. [`PgError::response`] turns it into the answer a
/// handler gives: `Err(e) => e.response()`.
#[derive(Debug)]
pub enum PgError {
    /// No connection is up (the database is down, restarting or unreachable), or the
    /// connection dropped while the query was in flight: `503`. The shard is already
    /// reconnecting; a later request may succeed.
    Unavailable(String),
    /// The shard already has `postgres.max_queries_in_flight` queries in flight: `503`
    /// at once, instead of a queue without bound.
    Busy,
    /// The query took longer than `postgres.query_timeout`: `504`.
    Timeout(Duration),
    /// The database answered with an error, a row was missing, or a value did not
    /// convert: `500`.
    Query(DbError),
    /// The `[postgres]` settings cannot be used (no database configured, a bad URL).
    Config(String),
}

/// An error from the database (its `ErrorResponse`: severity, SQLSTATE code and
/// message), or one found on this side of the wire (a missing row, a value of the wrong
/// type), which has no code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    severity: String,
    code: String,
    message: String,
}

impl DbError {
    /// An error the database sent.
    pub(crate) fn server(severity: String, code: String, message: String) -> DbError {
        DbError {
            severity,
            code,
            message,
        }
    }

    /// An error found by the client, without a SQLSTATE.
    pub(crate) fn client(message: impl Into<String>) -> DbError {
        DbError {
            severity: String::new(),
            code: String::new(),
            message: message.into(),
        }
    }

    /// The SQLSTATE code (`42P01`), when the database sent the error.
    pub fn code(&self) -> Option<&str> {
        (!self.code.is_empty()).then_some(self.code.as_str())
    }

    /// The severity (`ERROR`, `FATAL`, ...), when the database sent the error.
    pub fn severity(&self) -> Option<&str> {
        (!self.severity.is_empty()).then_some(self.severity.as_str())
    }

    /// What went wrong, in the database's words or the client's.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.severity(), self.code()) {
            (Some(severity), Some(code)) => write!(f, "{severity} {code}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DbError {}

impl PgError {
    /// The HTTP status this error answers with: 503, 504 or 500.
    pub fn status(&self) -> StatusCode {
        match self {
            PgError::Unavailable(_) | PgError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            PgError::Timeout(_) => StatusCode::from_u16(504).expect("504 is a status"),
            PgError::Query(_) | PgError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A plain-text response for this error, with a generic reason only: a client never
    /// sees the database's address, a login or prepare error or the database's message
    /// (it may name tables or values). A query error names its SQLSTATE; the detail is
    /// in the log (the connection task logs why a connection is down).
    pub fn response(&self) -> Response {
        let body = match self {
            PgError::Query(e) => match e.code() {
                Some(code) => format!("database error (SQLSTATE {code})\n"),
                None => "database error\n".to_owned(),
            },
            PgError::Unavailable(_) => "database unavailable\n".to_owned(),
            PgError::Busy => "database busy\n".to_owned(),
            PgError::Config(_) => "database not configured\n".to_owned(),
            PgError::Timeout(_) => format!("{self}\n"),
        };
        let response = Response::new(self.status()).with_body("text/plain; charset=utf-8", body);
        match self {
            // The shard retries within a second (or queries finish); tell clients so.
            PgError::Unavailable(_) | PgError::Busy => response.with_header("Retry-After", "1"),
            _ => response,
        }
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::Unavailable(why) => write!(f, "database unavailable: {why}"),
            PgError::Busy => write!(f, "database busy: too many queries in flight"),
            PgError::Timeout(after) => {
                write!(
                    f,
                    "database query timed out after {:.3} s",
                    after.as_secs_f64()
                )
            }
            PgError::Query(e) => write!(f, "database error: {e}"),
            PgError::Config(why) => write!(f, "database configuration: {why}"),
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PgError::Query(e) => Some(e),
            _ => None,
        }
    }
}

impl From<DbError> for PgError {
    /// Sorts a database error: a server going away is `Unavailable`, the server's own
    /// `statement_timeout` is `Timeout`, the rest `Query`.
    fn from(e: DbError) -> PgError {
        match e.code() {
            // 57014 query_canceled: statement_timeout fired on the server.
            Some("57014") => PgError::Timeout(Duration::ZERO),
            // 57P01..57P03: admin/crash shutdown, cannot connect now; class 08:
            // connection exceptions.
            Some(code) if code.starts_with("57P") || code.starts_with("08") => {
                PgError::Unavailable(e.to_string())
            }
            _ => PgError::Query(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_answers_with_its_status() {
        let why = "connect 10.1.2.3:5432: Connection refused";
        let unavailable = PgError::Unavailable(why.into()).response();
        assert_eq!(unavailable.status().as_u16(), 503);
        assert_eq!(unavailable.header("retry-after"), Some("1"));
        // The reason stays in the log: no address, no driver text for the client.
        assert_eq!(&unavailable.body()[..], b"database unavailable\n");
        let config = PgError::Config("postgres.url: bad port".into()).response();
        assert_eq!(&config.body()[..], b"database not configured\n");
        let timeout = PgError::Timeout(Duration::from_millis(250)).response();
        assert_eq!(timeout.status().as_u16(), 504);
        assert!(std::str::from_utf8(timeout.body())
            .unwrap()
            .contains("timed out after 0.250 s"));
        assert_eq!(PgError::Config("x".into()).status().as_u16(), 500);
    }

    #[test]
    fn database_errors_are_sorted_by_their_code() {
        let error = |code: &str| {
            PgError::from(DbError::server(
                "ERROR".into(),
                code.into(),
                "relation \"secret\" does not exist".into(),
            ))
        };
        assert!(matches!(error("57014"), PgError::Timeout(_)));
        assert!(matches!(error("57P01"), PgError::Unavailable(_)));
        assert!(matches!(error("08006"), PgError::Unavailable(_)));
        let query = error("42P01");
        assert_eq!(
            query.to_string(),
            "database error: ERROR 42P01: relation \"secret\" does not exist"
        );
        // The client sees the code, never the message.
        assert_eq!(
            &query.response().body()[..],
            b"database error (SQLSTATE 42P01)\n"
        );
        let missing = PgError::Query(DbError::client("query returned no rows"));
        assert_eq!(&missing.response().body()[..], b"database error\n");
    }
}
