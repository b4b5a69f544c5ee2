//! `[compression]` and `[cors]` on a 2-shard server over TCP: the stock routes answer
//! compressed and take CORS preflights; routes added in code are left alone.

mod common;

use std::io::Read;
use std::rc::Rc;

use common::*;
use haywire::config::{Config, RouteConfig};
use haywire::{Request, Response, Router, Server, ShardCtx};

fn config() -> Config {
    let mut config = Config::from_toml(
        "[compression]\nenabled = true\nencodings = [\"gzip\"]\n\
         [cors]\nenabled = true\nallow_origins = [\"https://app.example\"]\n",
    )
    .unwrap();
    let test = test_config();
    config.server = test.server;
    config.limits = test.limits;
    config.routes = vec![RouteConfig::Text {
        path: "/big".into(),
        body: "stock text ".repeat(200),
        content_type: "text/plain".into(),
    }];
    config
}

#[test]
fn config_sections_wrap_the_stock_routes_only() {
    let running = Server::new(config())
        .routes(|router: &mut Router, _: &Rc<ShardCtx>| {
            router.get("/code", |_: Request| {
                Response::text("code text ".repeat(200))
            });
        })
        .start()
        .unwrap();
    let addr = running.local_addr();
    let ask = |path: &str, extra: &str| {
        let wire = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
        exchange(addr, wire.as_bytes()).0
    };
    let zipped = ask("/big", "Accept-Encoding: br, gzip;q=0.5\r\n");
    assert_eq!(
        zipped.header("content-encoding"),
        Some("gzip"),
        "br is not offered"
    );
    assert_eq!(zipped.header("vary"), Some("Accept-Encoding"));
    let mut text = String::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "stock text ".repeat(200));
    let code = ask("/code", "Accept-Encoding: gzip\r\n");
    assert_eq!(
        code.header("content-encoding"),
        None,
        "code routes are not wrapped"
    );

    let preflight = "OPTIONS /big HTTP/1.1\r\nHost: t\r\nOrigin: https://app.example\r\n\
                     Access-Control-Request-Method: GET\r\n\r\n";
    let reply = exchange(addr, preflight.as_bytes()).0;
    assert_eq!(reply.status, 204);
    assert_eq!(
        reply.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let simple = ask("/big", "Origin: https://app.example\r\n");
    assert_eq!(
        simple.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let stranger = ask("/big", "Origin: https://evil.example\r\n");
    assert_eq!(stranger.header("access-control-allow-origin"), None);
    running.stop();
    running.join().unwrap();
}
