//! `State<T>`: a value registered with `Router::state`, shard-local.

use std::any::type_name;

use super::{FromRequestParts, States};
use crate::http::Request;
use crate::respond::Error;

/// A clone of the router's state value of type `T` (see `Router::state`): keep an
/// `Rc` inside to share it between requests. Each shard builds its own router, so
/// the value is that shard's alone and needs no lock. A handler asking for a type no
/// one registered answers 500 (a programming error, named in the body).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State<T>(pub T);

impl<T: Clone + 'static> FromRequestParts for State<T> {
    fn from_request_parts(_: &Request, states: &States) -> Result<Self, Error> {
        states
            .get::<T>()
            .map(State)
            .ok_or_else(|| Error::internal(format!("no state of type {}", type_name::<T>())))
    }
}
