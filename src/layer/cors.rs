//! `Cors`: cross-origin resource sharing, preflight included.

use std::rc::Rc;

use super::Layer;
use crate::config::CorsConfig;
use crate::handler::{Handler, Reply};
use crate::http::{HeaderText, Method, Request, Response, StatusCode};

/// Lets browsers on other origins call the wrapped routes.
///
/// A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
/// answered here, `204` with the allowed methods, headers and max age, without
/// calling the handler; other requests with an `Origin` get
/// `Access-Control-Allow-Origin` (and the credentials and exposed headers) added to
/// their response. An origin not allowed gets no CORS headers, so the browser refuses
/// the response. Responses vary by `Origin` unless every origin is allowed without
/// credentials.
#[derive(Debug, Clone)]
pub struct Cors {
    /// `None`: every origin.
    origins: Option<Vec<HeaderText>>,
    methods: HeaderText,
    /// `None`: whatever the preflight asks for.
    headers: Option<HeaderText>,
    expose: Option<HeaderText>,
    credentials: bool,
    max_age: HeaderText,
}

impl Default for Cors {
    fn default() -> Cors {
        Cors::new()
    }
}

impl Cors {
    /// Every origin, the methods GET, HEAD, POST, PUT, PATCH, DELETE, any request
    /// header, no credentials, preflights cached for 600 s.
    pub fn new() -> Cors {
        Cors {
            origins: None,
            methods: HeaderText::from("GET, HEAD, POST, PUT, PATCH, DELETE"),
            headers: None,
            expose: None,
            credentials: false,
            max_age: HeaderText::from("600"),
        }
    }

    /// Allows `origin` (e.g. `https://app.example`); once one is given, only the
    /// origins given are allowed.
    pub fn allow_origin(mut self, origin: impl Into<HeaderText>) -> Cors {
        self.origins
            .get_or_insert_with(Vec::new)
            .push(origin.into());
        self
    }

    /// The methods preflights allow, as the header lists them (`"GET, POST"`).
    pub fn allow_methods(mut self, methods: impl Into<HeaderText>) -> Cors {
        self.methods = methods.into();
        self
    }

    /// The request headers preflights allow (`"content-type, authorization"`),
    /// instead of any.
    pub fn allow_headers(mut self, headers: impl Into<HeaderText>) -> Cors {
        self.headers = Some(headers.into());
        self
    }

    /// Response headers the page's script may read, beyond the simple ones.
    pub fn expose_headers(mut self, headers: impl Into<HeaderText>) -> Cors {
        self.expose = Some(headers.into());
        self
    }

    /// Allows cookies and `Authorization` on cross-origin requests. The origin is
    /// then echoed rather than `*`, as browsers require.
    pub fn allow_credentials(mut self, allow: bool) -> Cors {
        self.credentials = allow;
        self
    }

    /// How long browsers may cache a preflight's answer.
    pub fn max_age(mut self, seconds: u32) -> Cors {
        self.max_age = HeaderText::from(seconds.to_string());
        self
    }

    /// The layer `[cors]` describes.
    pub(crate) fn from_config(config: &CorsConfig) -> Cors {
        let mut cors = Cors::new()
            .allow_methods(config.allow_methods.clone())
            .allow_credentials(config.allow_credentials)
            .max_age(config.max_age);
        for origin in &config.allow_origins {
            cors = cors.allow_origin(origin.clone());
        }
        if !config.allow_headers.is_empty() {
            cors = cors.allow_headers(config.allow_headers.clone());
        }
        if !config.expose_headers.is_empty() {
            cors = cors.expose_headers(config.expose_headers.clone());
        }
        cors
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, `None` when it is not
    /// allowed.
    fn allow(&self, origin: &HeaderText) -> Option<HeaderText> {
        match &self.origins {
            None if !self.credentials => Some(HeaderText::from("*")),
            None => Some(origin.clone()),
            Some(list) => list
                .iter()
                .any(|o| o.as_str().eq_ignore_ascii_case(origin.as_str()))
                .then(|| origin.clone()),
        }
    }

    /// Whether responses differ by origin (caches must then key on it).
    fn varies(&self) -> bool {
        self.origins.is_some() || self.credentials
    }

    fn preflight(&self, request: &Request, origin: &HeaderText) -> Response {
        let mut response = Response::new(StatusCode::NO_CONTENT).with_header(
            "Vary",
            "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        );
        let Some(allowed) = self.allow(origin) else {
            return response;
        };
        response = response
            .with_header("Access-Control-Allow-Origin", allowed)
            .with_header("Access-Control-Allow-Methods", self.methods.clone())
            .with_header("Access-Control-Max-Age", self.max_age.clone());
        let headers = match &self.headers {
            Some(headers) => Some(headers.clone()),
            None => request.header_bytes("access-control-request-headers"),
        };
        if let Some(headers) = headers {
            response = response.with_header("Access-Control-Allow-Headers", headers);
        }
        if self.credentials {
            response = response.with_header("Access-Control-Allow-Credentials", "true");
        }
        response
    }

    fn decorate(&self, mut response: Response, origin: Option<HeaderText>) -> Response {
        if self.varies() {
            response = response.with_header("Vary", "Origin");
        }
        let Some(allowed) = origin.as_ref().and_then(|o| self.allow(o)) else {
            return response;
        };
        response = response.with_header("Access-Control-Allow-Origin", allowed);
        if self.credentials {
            response = response.with_header("Access-Control-Allow-Credentials", "true");
        }
        if let Some(expose) = &self.expose {
            response = response.with_header("Access-Control-Expose-Headers", expose.clone());
        }
        response
    }
}

struct Crossing {
    inner: Rc<dyn Handler>,
    cors: Rc<Cors>,
}

impl Handler for Crossing {
    fn call(&self, request: Request) -> Reply {
        let origin = request.header_bytes("origin");
        if let Some(origin) = &origin {
            if request.method() == Method::Options
                && request.header("access-control-request-method").is_some()
            {
                return Reply::Ready(self.cors.preflight(&request, origin));
            }
        }
        if origin.is_none() && !self.cors.varies() {
            return self.inner.call(request);
        }
        let cors = self.cors.clone();
        self.inner
            .call(request)
            .map(move |response| cors.decorate(response, origin))
    }
}

impl Layer for Cors {
    fn layer(&self, inner: Rc<dyn Handler>) -> Rc<dyn Handler> {
        Rc::new(Crossing {
            inner,
            cors: Rc::new(self.clone()),
        })
    }
}
