//! Haywire: a thread-per-core HTTP/1.1 server framework on glommio.
pub mod http;
