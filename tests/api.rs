//! The `api` example's routes on a 2-shard server over TCP: writes need the token,
//! reach every shard before they are answered, bad input gets 4xx with a reason,
//! listings come back compressed, and each answer carries a request id naming the
//! shard that served it.

mod common;

#[allow(dead_code)] // the example's `main` is not used here
#[path = "../examples/api.rs"]
mod api;

use std::collections::HashSet;
use std::io::Read;
use std::net::SocketAddr;

use api::Item;
use common::*;
use haywire::{RunningServer, Server};

const TOKEN: &str = "t0ken";

fn start() -> RunningServer {
    let mut config = test_config();
    config.routes.clear();
    Server::new(config)
        .routes(|router, shard| api::routes(router, shard, TOKEN))
        .start()
        .unwrap()
}

/// `method path` with `headers` and a JSON `body`, on a fresh connection.
fn send(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Reply {
    let mut wire = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
    for header in headers {
        wire.push_str(header);
        wire.push_str("\r\n");
    }
    if !body.is_empty() {
        wire.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    wire.push_str("\r\n");
    wire.push_str(body);
    exchange(addr, wire.as_bytes()).0
}

const AUTH: &str = "Authorization: Bearer t0ken";

/// The shard that served `reply`, from its request id (`PREFIX-SHARD-N`).
fn shard_of(reply: &Reply) -> usize {
    let id = reply.header("x-request-id").expect("a request id");
    id.split('-').nth(1).unwrap().parse().unwrap()
}

/// GETs `path` on fresh connections until both shards have answered; returns both
/// answers.
fn from_both_shards(addr: SocketAddr, path: &str) -> Vec<Reply> {
    let mut seen = HashSet::new();
    let mut replies = Vec::new();
    for _ in 0..200 {
        let reply = send(addr, "GET", path, &[], "");
        if seen.insert(shard_of(&reply)) {
            replies.push(reply);
        }
        if seen.len() == 2 {
            return replies;
        }
    }
    panic!("only shards {seen:?} answered");
}

#[test]
fn writes_reach_every_shard_before_they_are_answered() {
    let server = start();
    let addr = server.local_addr();
    let created = send(
        addr,
        "POST",
        "/items",
        &[AUTH],
        r#"{"name":"pen","price":1.5}"#,
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let item: Item = serde_json::from_slice(&created.body).unwrap();
    assert_eq!((item.name.as_str(), item.price), ("pen", 1.5));
    assert_eq!(
        created.header("location"),
        Some(&*format!("/items/{}", item.id))
    );
    for reply in from_both_shards(addr, &format!("/items/{}", item.id)) {
        assert_eq!(reply.status, 200);
        assert_eq!(serde_json::from_slice::<Item>(&reply.body).unwrap(), item);
    }

    let put = send(
        addr,
        "PUT",
        &format!("/items/{}", item.id),
        &[AUTH],
        r#"{"name":"ink pen","price":2}"#,
    );
    assert_eq!(put.status, 200, "{}", put.text());
    for reply in from_both_shards(addr, &format!("/items/{}", item.id)) {
        let now: Item = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(now.name, "ink pen");
    }

    let deleted = send(addr, "DELETE", &format!("/items/{}", item.id), &[AUTH], "");
    assert_eq!(deleted.status, 204);
    for reply in from_both_shards(addr, &format!("/items/{}", item.id)) {
        assert_eq!(reply.status, 404);
        assert_eq!(reply.text(), format!("no item {}\n", item.id));
    }
    let again = send(addr, "DELETE", &format!("/items/{}", item.id), &[AUTH], "");
    assert_eq!(again.status, 404);
    server.stop();
    server.join().unwrap();
}

#[test]
fn bad_requests_get_the_right_4xx_and_a_reason() {
    let server = start();
    let addr = server.local_addr();
    let good = r#"{"name":"cup","price":3}"#;
    let no_token = send(addr, "POST", "/items", &[], good);
    assert_eq!(no_token.status, 401);
    assert_eq!(no_token.header("www-authenticate"), Some("Bearer"));
    let wrong = send(
        addr,
        "POST",
        "/items",
        &["Authorization: Bearer nope"],
        good,
    );
    assert_eq!(wrong.status, 401);
    let broken = send(addr, "POST", "/items", &[AUTH], r#"{"name":"#);
    assert_eq!(broken.status, 400);
    assert!(
        broken.text().starts_with("invalid JSON body"),
        "{}",
        broken.text()
    );
    let shape = send(addr, "POST", "/items", &[AUTH], r#"{"name":"cup"}"#);
    assert_eq!(shape.status, 422, "a missing field");
    let empty_name = send(addr, "POST", "/items", &[AUTH], r#"{"name":" ","price":1}"#);
    assert_eq!(
        (empty_name.status, empty_name.text().as_str()),
        (422, "name must be 1 to 200 characters\n")
    );
    let as_text = format!(
        "POST /items HTTP/1.1\r\nHost: t\r\n{AUTH}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n{good}",
        good.len()
    );
    assert_eq!(exchange(addr, as_text.as_bytes()).0.status, 415);
    assert_eq!(send(addr, "GET", "/items/abc", &[], "").status, 400);
    assert_eq!(send(addr, "GET", "/items?limit=-1", &[], "").status, 400);
    assert_eq!(send(addr, "GET", "/items/999999", &[], "").status, 404);
    assert_eq!(send(addr, "PATCH", "/items/1", &[AUTH], good).status, 405);
    server.stop();
    server.join().unwrap();
}

#[test]
fn listings_are_compressed_when_asked() {
    let server = start();
    let addr = server.local_addr();
    for i in 0..40 {
        let body = format!(r#"{{"name":"item number {i} with a longer name","price":{i}}}"#);
        assert_eq!(send(addr, "POST", "/items", &[AUTH], &body).status, 201);
    }
    let plain = send(addr, "GET", "/items?limit=100", &[], "");
    let all: Vec<Item> = serde_json::from_slice(&plain.body).unwrap();
    assert_eq!(all.len(), 40);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    let gzipped = send(
        addr,
        "GET",
        "/items?limit=100",
        &["Accept-Encoding: gzip"],
        "",
    );
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert!(gzipped.body.len() < plain.body.len() / 2);
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(&gzipped.body[..])
        .read_to_end(&mut json)
        .unwrap();
    assert_eq!(json, plain.body);
    let page = send(addr, "GET", "/items?offset=38&limit=5", &[], "");
    assert_eq!(
        serde_json::from_slice::<Vec<Item>>(&page.body)
            .unwrap()
            .len(),
        2
    );
    server.stop();
    server.join().unwrap();
}
