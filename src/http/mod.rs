//! Sans-I/O HTTP/1.1: everything here works on byte slices and buffers, never on a
//! socket, so it is unit-testable and fuzzable.

pub mod body;
pub mod codec;
pub mod date;
pub mod error;
pub mod request;
pub mod response;

pub use codec::{Decoder, Event, Limits};
pub use error::ParseError;
pub use request::{Headers, Method, Request, Version};
pub use response::{HeaderText, Response, StatusCode};
