//! Sans-I/O HTTP/1.1: everything here works on byte slices and buffers, never on a
//! socket, so it is unit-testable and fuzzable.

pub(crate) mod body;
pub(crate) mod codec;
pub(crate) mod date;
pub(crate) mod encode;
mod error;
pub(crate) mod file;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod token;

pub(crate) use codec::{BodyPiece, Decoder, Event, Limits};
pub use error::ParseError;
pub use request::{Headers, Method, Request, TlsInfo, TlsSession, Version};
pub(crate) use response::{put_header, ResponseMode};
pub use response::{BodyStream, ChunkStream, HeaderText, Response, StatusCode};
