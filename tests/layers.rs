//! Layers, tested without a socket: compression negotiation (q-values, identity,
//! `Vary`), the codings themselves, CORS and its preflight, request ids, timeouts,
//! function layers that short-circuit, and layering one handler.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::stream;
use haywire::layer::{from_fn, Compression, Cors, Encoding, HandlerExt, Next, RequestId, Timeout};
use haywire::testing::{body, body_bytes, TestRequest};
use haywire::{Request, Response, Router, StatusCode};

/// 4 KiB of JSON-ish text: worth compressing.
fn text() -> String {
    (0..200)
        .map(|i| format!("{{\"id\":{i},\"v\":\"x\"}}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn compressed_router(layer: Compression) -> Router {
    let mut router = Router::new();
    router.get("/text", |_: Request| Response::json(text()));
    router.get("/small", |_: Request| Response::text("tiny"));
    router.get("/png", |_: Request| {
        Response::new(StatusCode::OK).with_body("image/png", vec![7u8; 4096])
    });
    router.get("/encoded", |_: Request| {
        Response::text(text()).with_header("Content-Encoding", "gzip")
    });
    router.get("/stream", |_: Request| {
        let pieces =
            (0..40).map(|i| Bytes::from(format!("data: event {i} {}\n\n", "y".repeat(100))));
        Response::stream("text/event-stream", stream::iter(pieces))
    });
    router.layer(layer);
    router
}

/// The coding chosen for `accept` (`None`: identity) and whether `Vary` was set.
fn chosen(router: &Router, path: &str, accept: Option<&str>) -> (Option<String>, bool) {
    let mut request = TestRequest::get(path);
    if let Some(accept) = accept {
        request = request.header("Accept-Encoding", accept);
    }
    let response = request.send(router);
    (
        response.header("content-encoding").map(str::to_owned),
        response.header("vary") == Some("Accept-Encoding"),
    )
}

fn decode(encoding: &str, data: &[u8]) -> String {
    let mut out = String::new();
    match encoding {
        "gzip" => flate2::read::GzDecoder::new(data)
            .read_to_string(&mut out)
            .unwrap(),
        "br" => brotli::Decompressor::new(data, 4096)
            .read_to_string(&mut out)
            .unwrap(),
        "zstd" => zstd::stream::read::Decoder::new(data)
            .unwrap()
            .read_to_string(&mut out)
            .unwrap(),
        other => panic!("unknown coding {other}"),
    };
    out
}

#[test]
fn accept_encoding_q_values_pick_the_coding() {
    let router = compressed_router(Compression::new());
    let pick = |accept| chosen(&router, "/text", accept).0;
    assert_eq!(pick(None), None, "no header: identity");
    assert_eq!(pick(Some("gzip")).as_deref(), Some("gzip"));
    assert_eq!(pick(Some("gzip, deflate, br, zstd")).as_deref(), Some("br"));
    assert_eq!(pick(Some("br;q=0.5, gzip;q=0.8")).as_deref(), Some("gzip"));
    assert_eq!(pick(Some("br;q=0, zstd;q=0.1")).as_deref(), Some("zstd"));
    assert_eq!(pick(Some("GZIP;Q=1.0")).as_deref(), Some("gzip"));
    assert_eq!(pick(Some("x-gzip")).as_deref(), Some("gzip"));
    assert_eq!(
        pick(Some("*")).as_deref(),
        Some("br"),
        "* stands for any coding"
    );
    assert_eq!(pick(Some("*;q=0.5, br;q=0")).as_deref(), Some("zstd"));
    assert_eq!(pick(Some("deflate, compress")), None, "nothing known");
    assert_eq!(pick(Some("gzip;q=0")), None, "q=0 refuses");
    assert_eq!(
        pick(Some("gzip;q=nonsense")),
        None,
        "a malformed q ignores the item"
    );
    assert_eq!(
        pick(Some("gzip;q=0.5, identity")),
        None,
        "identity preferred"
    );
    assert_eq!(
        pick(Some("gzip;q=0.5, identity;q=0.4")).as_deref(),
        Some("gzip")
    );
    assert_eq!(pick(Some("gzip, identity;q=0")).as_deref(), Some("gzip"));
    let gzip_only = compressed_router(Compression::new().encodings(&[Encoding::Gzip]));
    assert_eq!(
        chosen(&gzip_only, "/text", Some("br, zstd, gzip;q=0.1"))
            .0
            .as_deref(),
        Some("gzip")
    );
    assert_eq!(chosen(&gzip_only, "/text", Some("br")).0, None);
}

#[test]
fn vary_is_set_whenever_the_body_could_be_compressed() {
    let router = compressed_router(Compression::new());
    assert_eq!(
        chosen(&router, "/text", None),
        (None, true),
        "identity still varies"
    );
    assert_eq!(
        chosen(&router, "/text", Some("gzip")),
        (Some("gzip".into()), true)
    );
    for path in ["/small", "/png"] {
        assert_eq!(chosen(&router, path, Some("gzip")), (None, false), "{path}");
    }
    let (encoding, vary) = chosen(&router, "/encoded", Some("br"));
    assert_eq!(
        encoding.as_deref(),
        Some("gzip"),
        "an encoded body is left alone"
    );
    assert!(!vary);
    let roomy = compressed_router(Compression::new().min_size(1));
    assert_eq!(
        chosen(&roomy, "/small", Some("gzip")).0.as_deref(),
        Some("gzip")
    );
}

#[test]
fn every_coding_round_trips_buffered_and_streamed() {
    let router = compressed_router(Compression::new().level(6));
    let expected_stream: String = (0..40)
        .map(|i| format!("data: event {i} {}\n\n", "y".repeat(100)))
        .collect();
    for coding in ["gzip", "br", "zstd"] {
        let response = TestRequest::get("/text")
            .header("Accept-Encoding", coding)
            .send(&router);
        assert_eq!(response.header("content-encoding"), Some(coding));
        assert!(
            response.body_stream().is_none(),
            "a 4 KiB body is compressed at once"
        );
        assert!(
            response.body().len() < text().len() / 2,
            "{coding} compresses"
        );
        assert_eq!(decode(coding, response.body()), text());

        let response = TestRequest::get("/stream")
            .header("Accept-Encoding", coding)
            .send(&router);
        assert_eq!(response.header("content-encoding"), Some(coding));
        assert_eq!(response.content_type(), Some("text/event-stream"));
        assert!(response.body_stream().is_some(), "still streamed");
        assert_eq!(decode(coding, &body_bytes(&response)), expected_stream);
    }
}

#[test]
fn a_large_buffered_body_is_streamed_compressed() {
    let big: String = (0..20_000).map(|i| format!("{i},")).collect();
    let expected = big.clone();
    let mut router = Router::new();
    router.get("/big", move |_: Request| Response::text(big.clone()));
    router.layer(Compression::new());
    let response = TestRequest::get("/big")
        .header("Accept-Encoding", "gzip")
        .send(&router);
    assert!(
        response.body_stream().is_some(),
        "over 64 KiB: compressed as it is sent"
    );
    assert_eq!(decode("gzip", &body_bytes(&response)), expected);
}

#[test]
fn cors_preflight_is_answered_by_the_layer() {
    let mut router = Router::new();
    router.get("/data", |_: Request| "data");
    router.layer(
        Cors::new()
            .allow_origin("https://app.example")
            .allow_methods("GET, POST")
            .allow_credentials(true)
            .expose_headers("X-Total")
            .max_age(60),
    );
    let preflight = TestRequest::new("OPTIONS", "/data")
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type, x-token")
        .send(&router);
    assert_eq!(
        preflight.status(),
        StatusCode::NO_CONTENT,
        "not the route's 405"
    );
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET, POST")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("content-type, x-token"),
        "any header by default: the asked ones are allowed"
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("60"));
    assert_eq!(
        preflight.header("access-control-allow-credentials"),
        Some("true")
    );

    let stranger = TestRequest::new("OPTIONS", "/data")
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "GET")
        .send(&router);
    assert_eq!(stranger.status(), StatusCode::NO_CONTENT);
    assert_eq!(stranger.header("access-control-allow-origin"), None);

    let simple = TestRequest::get("/data")
        .header("Origin", "https://app.example")
        .send(&router);
    assert_eq!(body(&simple), "data");
    assert_eq!(
        simple.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(
        simple.header("access-control-expose-headers"),
        Some("X-Total")
    );
    assert_eq!(simple.header("vary"), Some("Origin"));
    let plain_options = TestRequest::new("OPTIONS", "/data").send(&router);
    assert_eq!(
        plain_options.status().as_u16(),
        405,
        "no preflight: the route answers"
    );
}

#[test]
fn cors_for_any_origin_answers_star() {
    let mut router = Router::new();
    router.post("/p", |_: Request| "ok");
    router.layer(Cors::new().allow_headers("content-type"));
    let preflight = TestRequest::new("OPTIONS", "/p")
        .header("Origin", "https://a.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-other")
        .send(&router);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("content-type")
    );
    let no_origin = TestRequest::post("/p").send(&router);
    assert_eq!(no_origin.header("access-control-allow-origin"), None);
}

#[test]
fn request_ids_are_kept_when_sane_and_made_otherwise() {
    let mut router = Router::new();
    router.get("/", |_: Request| "hi");
    router.layer(RequestId::new());
    let kept = TestRequest::get("/")
        .header("X-Request-Id", "abc-123")
        .send(&router);
    assert_eq!(kept.header("x-request-id"), Some("abc-123"));
    let first = TestRequest::get("/").send(&router);
    let second = TestRequest::get("/")
        .header("X-Request-Id", "has space")
        .send(&router);
    let (a, b) = (
        first.header("x-request-id").unwrap(),
        second.header("x-request-id").unwrap(),
    );
    assert!(a.ends_with("-0-0") && b.ends_with("-0-1"), "{a} {b}");
    assert_ne!(a, b);
}

#[test]
fn a_slow_handler_times_out_with_504() {
    let mut router = Router::new();
    router.get("/slow", |_: Request| async {
        glommio::timer::sleep(Duration::from_secs(5)).await;
        "late"
    });
    router.get("/quick", |_: Request| async { "quick" });
    router.layer(Timeout::new(Duration::from_millis(20)));
    let slow = TestRequest::get("/slow").send(&router);
    assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body(&slow), "handler timed out\n");
    assert_eq!(body(&TestRequest::get("/quick").send(&router)), "quick");
}

#[test]
fn function_layers_run_before_and_after_and_can_short_circuit() {
    let mut router = Router::new();
    router.get("/open", |_: Request| "open");
    router.get(
        "/guarded",
        (|_: Request| "secret").with(from_fn(|req: Request, next: Next| {
            if req.header("authorization") == Some("Bearer ok") {
                next.run(req)
            } else {
                Response::new(StatusCode::UNAUTHORIZED).into()
            }
        })),
    );
    // Outer layer, async: sees every answer, including the 404.
    router.layer(from_fn(|req: Request, next: Next| async move {
        let path = req.path().to_owned();
        let response = next.run(req).await;
        response.with_header("X-Seen", path)
    }));
    let open = TestRequest::get("/open").send(&router);
    assert_eq!(
        (body(&open).as_str(), open.header("x-seen")),
        ("open", Some("/open"))
    );
    let denied = TestRequest::get("/guarded").send(&router);
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(denied.header("x-seen"), Some("/guarded"));
    let allowed = TestRequest::get("/guarded")
        .header("Authorization", "Bearer ok")
        .send(&router);
    assert_eq!(body(&allowed), "secret");
    let missing = TestRequest::get("/missing").send(&router);
    assert_eq!(
        (missing.status().as_u16(), missing.header("x-seen")),
        (404, Some("/missing"))
    );
}

#[test]
fn routes_added_after_a_layer_are_not_wrapped() {
    let mut router = Router::new();
    router.get("/before", |_: Request| "b");
    router.layer(from_fn(|req: Request, next: Next| {
        next.run(req).map(|r| r.with_header("X-L", "1"))
    }));
    router.get("/after", |_: Request| "a");
    assert_eq!(
        TestRequest::get("/before").send(&router).header("x-l"),
        Some("1")
    );
    assert_eq!(TestRequest::get("/after").send(&router).header("x-l"), None);
}
