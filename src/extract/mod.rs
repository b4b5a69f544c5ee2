//! Typed handler arguments: a handler may take, instead of the `Request`, values
//! extracted from it, one extractor per file here.
//!
//! ```rust,no_run
//! # use haywire::{Router, extract::{Path, Query}, Json, Error};
//! # #[derive(serde::Deserialize)] struct Page { limit: Option<u32> }
//! # #[derive(serde::Deserialize)] struct NewItem { name: String }
//! # let mut router = Router::new();
//! router.get("/items/:id", |Path(id): Path<u32>, Query(page): Query<Page>| {
//!     format!("item {id}, limit {:?}\n", page.limit)
//! });
//! router.post("/items", |Json(item): Json<NewItem>| -> Result<String, Error> {
//!     Ok(format!("made {}\n", item.name))
//! });
//! ```
//!
//! Every extractor reads the request by reference, so a handler may take several, and
//! the `Request` itself as its last argument. The body is already in memory when the
//! handler runs (within `max_request_size`), so extraction is synchronous. A failed
//! extraction answers with the extractor's [`Error`] (400, 415 or 422 and a short
//! reason) and the handler is not called.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::rc::Rc;

use crate::http::Request;
use crate::respond::Error;

mod form;
mod header;
mod json;
mod path;
mod query;
mod state;

pub use form::Form;
pub use header::{Authorization, Header, NamedHeader, UserAgent};
pub use path::Path;
pub use query::Query;
pub use state::State;

/// A value taken from a request by reference. Any number of these may precede a
/// handler's last argument.
pub trait FromRequestParts: Sized {
    /// Extracts the value, or the error to answer with instead of calling the handler.
    fn from_request_parts(request: &Request, states: &States) -> Result<Self, Error>;
}

/// A value made from the whole request: a handler's last argument. Every
/// [`FromRequestParts`] is one, and so is `Request` itself.
pub trait FromRequest: Sized {
    /// Extracts the value, or the error to answer with instead of calling the handler.
    fn from_request(request: Request, states: &States) -> Result<Self, Error>;
}

impl<T: FromRequestParts> FromRequest for T {
    fn from_request(request: Request, states: &States) -> Result<Self, Error> {
        T::from_request_parts(&request, states)
    }
}

impl FromRequest for Request {
    #[inline]
    fn from_request(request: Request, _: &States) -> Result<Self, Error> {
        Ok(request)
    }
}

/// `None` instead of a rejection: for optional headers, bodies or queries.
impl<T: FromRequestParts> FromRequestParts for Option<T> {
    fn from_request_parts(request: &Request, states: &States) -> Result<Self, Error> {
        Ok(T::from_request_parts(request, states).ok())
    }
}

/// The extraction's error itself, for a handler that answers it its own way.
impl<T: FromRequestParts> FromRequestParts for Result<T, Error> {
    fn from_request_parts(request: &Request, states: &States) -> Result<Self, Error> {
        Ok(T::from_request_parts(request, states))
    }
}

/// A router's state values (see `Router::state`), found by type. Shard-local: each
/// shard's router has its own, so they need not be `Send` or `Sync`.
#[derive(Default)]
pub struct States {
    values: RefCell<Vec<(TypeId, Rc<dyn Any>)>>,
}

impl States {
    /// Stores `value`, replacing an earlier value of its type.
    pub(crate) fn insert<T: 'static>(&self, value: T) {
        let mut values = self.values.borrow_mut();
        values.retain(|(id, _)| *id != TypeId::of::<T>());
        values.push((TypeId::of::<T>(), Rc::new(value)));
    }

    /// A clone of the value of type `T`, if one was stored.
    pub fn get<T: Clone + 'static>(&self) -> Option<T> {
        let values = self.values.borrow();
        let (_, value) = values.iter().find(|(id, _)| *id == TypeId::of::<T>())?;
        value.downcast_ref::<T>().cloned()
    }

    /// Adds `parent`'s values of types this one lacks (a nested router sees its
    /// parent's state).
    pub(crate) fn inherit(&self, parent: &States) {
        let parent = parent.values.borrow();
        let mut values = self.values.borrow_mut();
        for (id, value) in parent.iter() {
            if !values.iter().any(|(have, _)| have == id) {
                values.push((*id, value.clone()));
            }
        }
    }
}
