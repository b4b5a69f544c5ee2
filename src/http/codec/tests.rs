use super::*;

fn limits() -> Limits {
    Limits {
        max_head_size: 1024,
        max_uri_length: 256,
        max_request_size: 4096,
    }
}

/// Feeds `wire` in two parts split at `split`, decoding after each, and returns every
/// request (or the first error) plus how many `Continue` events came out.
fn decode_split(wire: &[u8], split: usize) -> (Result<Vec<Request>, ParseError>, usize) {
    let mut decoder = Decoder::new(limits(), 0);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut continues = 0;
    for part in [&wire[..split], &wire[split..]] {
        buf.extend_from_slice(part);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Event::Request(r)) => out.push(r),
                Ok(Event::Continue) => continues += 1,
                Ok(Event::NeedMore) => break,
                Ok(Event::Streamed { .. }) => unreachable!("decode never streams"),
                Err(e) => return (Err(e), continues),
            }
        }
    }
    (Ok(out), continues)
}

fn decode_all(wire: &[u8]) -> Result<Vec<Request>, ParseError> {
    decode_split(wire, wire.len()).0
}

fn summary(r: &Request) -> (String, String, Option<String>, Vec<u8>, bool) {
    (
        r.method_str().to_owned(),
        r.path().to_owned(),
        r.query().map(str::to_owned),
        r.body().to_vec(),
        r.keep_alive(),
    )
}

#[test]
fn decodes_a_get() {
    let reqs =
        decode_all(b"GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\nX-Two: 1\r\nx-two: 2\r\n\r\n").unwrap();
    let r = &reqs[0];
    assert_eq!(r.method(), Method::Get);
    assert_eq!(r.path(), "/a/b");
    assert_eq!(r.query(), Some("x=1&y"));
    assert_eq!(r.version(), Version::Http11);
    assert!(r.keep_alive());
    assert_eq!(r.header("HOST"), Some("h"));
    let twos: Vec<_> = r.headers().get_all("X-TWO").collect();
    assert_eq!(twos, vec![&b"1"[..], &b"2"[..]]);
    assert!(r.body().is_empty());
}

const PIPELINE: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\n\
GET /last?q HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";

#[test]
fn pipelined_requests_decode_in_order() {
    let reqs = decode_all(PIPELINE).unwrap();
    let got: Vec<_> = reqs.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            ("GET".into(), "/".into(), None, vec![], true),
            ("POST".into(), "/echo".into(), None, b"hello".to_vec(), true),
            ("POST".into(), "/echo".into(), None, b"abcde".to_vec(), true),
            ("GET".into(), "/last".into(), Some("q".into()), vec![], true),
        ]
    );
}

#[test]
fn every_split_decodes_the_same() {
    let whole: Vec<_> = decode_all(PIPELINE).unwrap().iter().map(summary).collect();
    for split in 0..=PIPELINE.len() {
        let (reqs, _) = decode_split(PIPELINE, split);
        let got: Vec<_> = reqs.unwrap().iter().map(summary).collect();
        assert_eq!(got, whole, "split at {split}");
    }
}

#[test]
fn keep_alive_rules() {
    let close = decode_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").unwrap();
    assert!(!close[0].keep_alive());
    let http10 = decode_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert!(!http10[0].keep_alive());
    let http10_ka = decode_all(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
    assert!(http10_ka[0].keep_alive());
}

#[test]
fn expect_continue_is_announced_only_when_the_body_is_missing() {
    let head = b"POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    let (reqs, continues) = decode_split(head, head.len());
    assert!(reqs.unwrap().is_empty());
    assert_eq!(continues, 1);
    let mut whole = head.to_vec();
    whole.extend_from_slice(b"abc");
    let (reqs, continues) = decode_split(&whole, whole.len());
    assert_eq!(reqs.unwrap()[0].body().as_ref(), b"abc");
    assert_eq!(continues, 0);
    let (reqs, continues) = decode_split(&whole, head.len());
    assert_eq!(reqs.unwrap()[0].body().as_ref(), b"abc");
    assert_eq!(continues, 1);
}

fn error_of(wire: &[u8]) -> ParseError {
    match decode_all(wire) {
        Err(e) => e,
        Ok(reqs) => panic!(
            "decoded {} request(s) from {:?}",
            reqs.len(),
            String::from_utf8_lossy(wire)
        ),
    }
}

#[test]
fn each_error_maps_to_its_status() {
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(), 400),
        (b"GET\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n".to_vec(), 505),
        (b"GET / HTTP/1.2\r\nHost: h\r\n\r\n".to_vec(), 505),
        (b"GET / HTTQ/1.1\r\nHost: h\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n".to_vec(), 413),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(), 501),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(), 501),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n".to_vec(), 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n".to_vec(), 413),
        ([b"GET /".as_slice(), &[b'a'; 300], b" HTTP/1.1\r\nHost: h\r\n\r\n"].concat(), 414),
        ([b"GET /".as_slice(), &[b'a'; 300]].concat(), 414),
        ([b"GET / HTTP/1.1\r\nHost: h\r\nX: ".as_slice(), &[b'a'; 1100], b"\r\n\r\n"].concat(), 431),
        ([b"GET / HTTP/1.1\r\nHost: h\r\n".as_slice(), &b"X: y\r\n".repeat(70), b"\r\n"].concat(), 431),
    ];
    for (wire, status) in cases {
        assert_eq!(
            error_of(&wire).status().as_u16(),
            status,
            "{:?}",
            String::from_utf8_lossy(&wire)
        );
    }
}

#[test]
fn identical_content_lengths_are_accepted() {
    let reqs = decode_all(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
    )
    .unwrap();
    assert_eq!(reqs[0].body().as_ref(), b"ok");
}

#[test]
fn absolute_form_targets_use_their_path() {
    let reqs =
        decode_all(b"GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n").unwrap();
    assert_eq!(reqs[0].path(), "/x");
    assert_eq!(reqs[0].query(), Some("y"));
}

#[test]
fn absolute_form_targets_with_an_empty_path_mean_the_root() {
    let wire = b"GET http://a HTTP/1.1\r\nHost: a\r\n\r\n\
        GET http://a?x=1 HTTP/1.1\r\nHost: a\r\n\r\n\
        GET HTTP://A:80/p HTTP/1.1\r\nHost: a\r\n\r\n\
        GET hTTpS://a?q HTTP/1.1\r\nHost: a\r\n\r\n\
        POST http://a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi";
    let reqs = decode_all(wire).unwrap();
    let got: Vec<_> = reqs.iter().map(summary).collect();
    let want = [
        ("GET", "/", None, &b""[..]),
        ("GET", "/", Some("x=1"), b""),
        ("GET", "/p", None, b""),
        ("GET", "/", Some("q"), b""),
        ("POST", "/", None, b"hi"),
    ];
    assert_eq!(got.len(), want.len());
    for ((method, path, query, body, _), (m, p, q, b)) in got.iter().zip(want) {
        assert_eq!((method.as_str(), path.as_str()), (m, p));
        assert_eq!(query.as_deref(), q);
        assert_eq!(body.as_slice(), b);
    }
    // Streamed routes see the same path: the body check runs inside the decoder.
    let mut decoder = Decoder::new(limits(), 0);
    let mut buf =
        BytesMut::from(&b"POST http://a HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"[..]);
    match decoder
        .decode_routed(&mut buf, &|r| r.path() == "/")
        .unwrap()
    {
        Event::Streamed { request, .. } => assert_eq!(request.path(), "/"),
        other => panic!("not streamed: {other:?}"),
    }
}

#[test]
fn absolute_form_targets_need_a_scheme_and_a_host() {
    for target in ["http:///x", "http://", "ftp://a/x", "http:/a", "a/x"] {
        let wire = format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(
            matches!(decode_all(wire.as_bytes()), Err(ParseError::BadRequest(_))),
            "{target}"
        );
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// A generated request and its wire form.
    #[derive(Debug, Clone)]
    struct Model {
        method: &'static str,
        path: String,
        query: Option<String>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        chunks: Option<Vec<usize>>,
        close: bool,
    }

    impl Model {
        fn wire(&self) -> Vec<u8> {
            let mut out = format!("{} {}", self.method, self.path);
            if let Some(q) = &self.query {
                out += &format!("?{q}");
            }
            out += " HTTP/1.1\r\nHost: example\r\n";
            for (name, value) in &self.headers {
                out += &format!("{name}: {value}\r\n");
            }
            if self.close {
                out += "Connection: close\r\n";
            }
            let mut wire = match &self.chunks {
                None if self.body.is_empty() => (out + "\r\n").into_bytes(),
                None => {
                    (out + &format!("Content-Length: {}\r\n\r\n", self.body.len())).into_bytes()
                }
                Some(_) => (out + "Transfer-Encoding: chunked\r\n\r\n").into_bytes(),
            };
            if let Some(sizes) = &self.chunks {
                let mut rest = &self.body[..];
                for &size in sizes {
                    let take = size.min(rest.len());
                    if take == 0 {
                        continue;
                    }
                    wire.extend_from_slice(format!("{take:x}\r\n").as_bytes());
                    wire.extend_from_slice(&rest[..take]);
                    wire.extend_from_slice(b"\r\n");
                    rest = &rest[take..];
                }
                if !rest.is_empty() {
                    wire.extend_from_slice(format!("{:X}\r\n", rest.len()).as_bytes());
                    wire.extend_from_slice(rest);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"0\r\n\r\n");
            } else {
                wire.extend_from_slice(&self.body);
            }
            wire
        }

        fn matches(&self, request: &Request) -> bool {
            request.method_str() == self.method
                && request.path() == self.path
                && request.query() == self.query.as_deref()
                && request.body().as_ref() == self.body.as_slice()
                && request.keep_alive() != self.close
                && self
                    .headers
                    .iter()
                    .all(|(n, v)| request.headers().get_all(n).any(|got| got == v.as_bytes()))
        }
    }

    fn model() -> impl Strategy<Value = Model> {
        (
            prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "PROPFIND"]),
            prop::collection::vec("[a-zA-Z0-9._~-]{1,8}", 0..4),
            prop::option::of("[a-z0-9=&]{0,12}"),
            prop::collection::vec(
                ("X-[A-Za-z0-9-]{1,10}", "[ -~&&[^ ]]([ -~]{0,20}[!-~])?"),
                0..6,
            ),
            prop::collection::vec(any::<u8>(), 0..300),
            prop::option::of(prop::collection::vec(1usize..64, 0..8)),
            any::<bool>(),
        )
            .prop_map(
                |(method, segments, query, headers, body, chunks, close)| Model {
                    method,
                    path: format!("/{}", segments.join("/")),
                    query,
                    headers,
                    body,
                    chunks,
                    close,
                },
            )
    }

    /// Decodes `wire` fed in the pieces cut at `cuts`.
    fn decode_in_pieces(wire: &[u8], cuts: &[usize]) -> Result<Vec<Request>, ParseError> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(wire.len());
        let mut decoder = Decoder::new(Limits::default(), 0);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut from = 0;
        for cut in cuts {
            buf.extend_from_slice(&wire[from..cut]);
            from = cut;
            loop {
                match decoder.decode(&mut buf)? {
                    Event::Request(r) => out.push(r),
                    Event::Continue => {}
                    Event::NeedMore => break,
                    Event::Streamed { .. } => unreachable!("decode never streams"),
                }
            }
        }
        Ok(out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_never_panic(wire in prop::collection::vec(any::<u8>(), 0..2048), cuts in prop::collection::vec(any::<usize>(), 0..4)) {
            let _ = decode_in_pieces(&wire, &cuts);
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_head_never_panic(tail in prop::collection::vec(any::<u8>(), 0..512)) {
            let mut wire = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            wire.extend_from_slice(&tail);
            let _ = decode_in_pieces(&wire, &[]);
        }

        #[test]
        fn a_valid_request_split_anywhere_decodes_the_same(m in model(), cuts in prop::collection::vec(any::<usize>(), 0..3)) {
            let wire = m.wire();
            let requests = decode_in_pieces(&wire, &cuts).unwrap();
            prop_assert_eq!(requests.len(), 1);
            prop_assert!(m.matches(&requests[0]), "{:?} vs {:?}", m, requests[0]);
        }

        #[test]
        fn pipelined_sequences_decode_to_the_same_sequence(models in prop::collection::vec(model(), 1..5), cuts in prop::collection::vec(any::<usize>(), 0..5)) {
            // Only the last request may close the connection.
            let mut models = models;
            let last = models.len() - 1;
            for m in &mut models[..last] {
                m.close = false;
            }
            let wire: Vec<u8> = models.iter().flat_map(Model::wire).collect();
            let requests = decode_in_pieces(&wire, &cuts).unwrap();
            prop_assert_eq!(requests.len(), models.len());
            for (m, r) in models.iter().zip(&requests) {
                prop_assert!(m.matches(r), "{:?} vs {:?}", m, r);
            }
        }
    }
}

#[test]
fn strict_framing_rejects_each_rfc9112_violation() {
    let cases: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\tX-A: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\rX-A: 1\r\n\r\n",
        b"GET / HTTP/1.1\rHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHo\0st: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\0x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\x01x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\x7fx\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHo[st: h\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /\r\nHost: h\r\n\r\n",
        b"/ HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0xA\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\n\r\n",
    ];
    for wire in cases {
        let error = error_of(wire);
        assert_eq!(
            error.status().as_u16(),
            400,
            "{:?}: {error}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn transfer_coding_case_and_spacing_follow_the_token_rules() {
    for te in ["chunked", "CHUNKED", "Chunked", " chunked ", "\tchunked"] {
        let wire =
            format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n");
        assert!(decode_all(wire.as_bytes()).is_ok(), "{te:?}");
    }
    for te in ["xchunked", "chunkedx", "identity", "gzip"] {
        let wire = format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n");
        assert_eq!(error_of(wire.as_bytes()).status().as_u16(), 501, "{te:?}");
    }
}

#[test]
fn bare_lf_ends_head_lines_but_not_chunked_framing() {
    let reqs = decode_all(b"GET /lf HTTP/1.1\nHost: h\n\n").unwrap();
    assert_eq!(reqs[0].path(), "/lf");
    let error =
        error_of(b"POST / HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\n");
    assert_eq!(error.status().as_u16(), 400);
}

#[test]
fn headers_past_the_inline_ones_keep_their_order() {
    let mut wire = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for i in 0..30 {
        wire.extend_from_slice(format!("X-N: {i}\r\n").as_bytes());
    }
    wire.extend_from_slice(b"X-Last: end\r\n\r\n");
    let reqs = decode_all(&wire).unwrap();
    let headers = reqs[0].headers();
    assert_eq!(headers.len(), 32);
    let values: Vec<String> = headers
        .get_all("x-n")
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert_eq!(values, (0..30).map(|i| i.to_string()).collect::<Vec<_>>());
    assert_eq!(reqs[0].header("x-last"), Some("end"));
    assert_eq!(reqs[0].header("host"), Some("h"));
}

#[test]
fn empty_list_elements_in_transfer_encoding_are_ignored() {
    for te in [
        ", chunked",
        ",chunked",
        "chunked,",
        " , chunked , ",
        "chunked, ,",
    ] {
        let wire =
            format!("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: {te}\r\n\r\n0\r\n\r\n");
        assert!(decode_all(wire.as_bytes()).is_ok(), "{te:?}");
    }
}

#[test]
fn host_must_be_a_valid_authority() {
    for host in [
        "example.com",
        "example.com:8080",
        "127.0.0.1",
        "127.0.0.1:80",
        "[::1]",
        "[::1]:8080",
        "[2001:db8::7]:1",
        "xn--bcher-kva.example",
        "a%41b.example",
        "host:",
        "",
    ] {
        let wire = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert!(decode_all(wire.as_bytes()).is_ok(), "{host:?}");
    }
    for host in [
        "user@example.com",
        "user:pass@example.com",
        "example.com/path",
        "/",
        "a b",
        "a.com, b.com",
        "a.com,b.com",
        "example.com:80x",
        "example.com:http",
        "example.com:123456",
        ":80",
        "[::1",
        "[::1]x",
        "[zz::1]",
        "[127.0.0.1]",
        "a%4",
        "exa\"mple.com",
    ] {
        let wire = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(
            error_of(wire.as_bytes()),
            ParseError::BadRequest("invalid Host header"),
            "{host:?}"
        );
    }
}

#[test]
fn request_targets_are_visible_ascii_without_spaces() {
    for wire in [
        &b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /a b c HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let error = error_of(wire);
        assert_eq!(
            error.status().as_u16(),
            400,
            "{:?}: {error}",
            String::from_utf8_lossy(wire)
        );
    }
    let reqs = decode_all(b"GET /caf%C3%A9?q=%20 HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(reqs[0].path(), "/caf%C3%A9");
}

#[test]
fn a_few_empty_lines_before_a_request_are_skipped_and_more_are_refused() {
    let reqs = decode_all(b"\r\n\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(reqs[0].path(), "/x");
    // Between pipelined requests too, and the count starts again for each request.
    let wire = [
        get("/a"),
        "\r\n".repeat(8),
        get("/b"),
        "\r\n".repeat(8),
        get("/c"),
    ]
    .concat();
    assert_eq!(decode_all(wire.as_bytes()).unwrap().len(), 3);
    let flood = "\r\n".repeat(9) + &get("/");
    assert_eq!(
        error_of(flood.as_bytes()),
        ParseError::BadRequest("too many empty lines before the request line")
    );
    // Arriving one line per read changes nothing.
    let mut decoder = Decoder::new(limits(), 0);
    let mut buf = BytesMut::new();
    let mut result = Ok(Event::NeedMore);
    for _ in 0..9 {
        buf.extend_from_slice(b"\r\n");
        result = decoder.decode(&mut buf);
        if result.is_err() {
            break;
        }
    }
    assert!(
        result.is_err(),
        "nine empty lines in nine reads were accepted"
    );
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n")
}

#[test]
fn a_streamed_body_comes_out_piece_by_piece_past_the_size_limit() {
    let limits = Limits {
        max_request_size: 4,
        ..Limits::default()
    };
    for (wire, body) in [
        (
            &b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            &b"0123456789"[..],
        ),
        (
            &b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n7\r\ndefghij\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            &b"abcdefghij"[..],
        ),
    ] {
        // Every split of the input gives the same pieces in total.
        for split in 1..wire.len() {
            let mut decoder = Decoder::new(limits, 0);
            let mut buf = BytesMut::from(&wire[..split]);
            let mut got = Vec::new();
            let mut streamed = false;
            let mut next_request = false;
            let mut rest = &wire[split..];
            loop {
                if streamed && decoder.in_body() {
                    match decoder.body_piece(&mut buf).unwrap() {
                        BodyPiece::Data(piece) => {
                            got.extend_from_slice(&piece);
                            continue;
                        }
                        BodyPiece::End => continue,
                        BodyPiece::NeedMore => {}
                    }
                } else {
                    match decoder.decode_routed(&mut buf, &|r| r.path() == "/up").unwrap() {
                        Event::Streamed { request, .. } => {
                            assert!(request.body().is_empty());
                            streamed = true;
                            continue;
                        }
                        Event::Request(request) => {
                            assert_eq!(request.path(), "/");
                            next_request = true;
                            break;
                        }
                        Event::NeedMore | Event::Continue => {}
                    }
                }
                if rest.is_empty() {
                    break;
                }
                buf.extend_from_slice(&rest[..1]);
                rest = &rest[1..];
            }
            assert!(streamed && next_request, "split {split}");
            assert_eq!(got, body, "split {split}");
        }
    }
}

#[test]
fn a_streamed_body_all_in_the_buffer_is_taken_whole_up_to_the_max() {
    let wire = b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let streams = |r: &Request| r.path() == "/up";
    let head = |decoder: &mut Decoder, buf: &mut BytesMut| {
        assert!(matches!(
            decoder.decode_routed(buf, &streams).unwrap(),
            Event::Streamed { .. }
        ));
    };
    // All there: taken whole, and the next request decodes.
    let mut decoder = Decoder::new(limits(), 0);
    let mut buf = BytesMut::from(&wire[..]);
    head(&mut decoder, &mut buf);
    assert_eq!(
        decoder.whole_body(&mut buf, 10).as_deref(),
        Some(&b"0123456789"[..])
    );
    match decoder.decode_routed(&mut buf, &streams).unwrap() {
        Event::Request(request) => assert_eq!(request.path(), "/"),
        other => panic!("{other:?}"),
    }
    // Longer than the max, or not all there: nothing taken, it streams.
    // (The GET is 27 bytes: `wire.len() - 32` leaves 5 of the 10 body bytes.)
    for (max, split) in [(9, wire.len()), (10, wire.len() - 32)] {
        let mut decoder = Decoder::new(limits(), 0);
        let mut buf = BytesMut::from(&wire[..split]);
        head(&mut decoder, &mut buf);
        let before = buf.len();
        assert!(decoder.whole_body(&mut buf, max).is_none(), "max {max}");
        assert_eq!(buf.len(), before);
        assert!(matches!(
            decoder.body_piece(&mut buf),
            Ok(BodyPiece::Data(_))
        ));
    }
}

#[test]
fn a_chunked_body_all_in_the_buffer_is_taken_whole_up_to_the_max() {
    let head = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let body = b"3\r\nabc\r\n7;ext=1\r\ndefghij\r\n0\r\nX-T: 1\r\n\r\n";
    let next = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let streams = |r: &Request| r.path() == "/up";
    let start = |wire: &[u8]| {
        let mut decoder = Decoder::new(limits(), 0);
        let mut buf = BytesMut::from(wire);
        assert!(matches!(
            decoder.decode_routed(&mut buf, &streams).unwrap(),
            Event::Streamed { .. }
        ));
        (decoder, buf)
    };
    // All there, trailers included: its data taken whole, and the next request decodes.
    let (mut decoder, mut buf) = start(&[&head[..], body, next].concat());
    assert_eq!(
        decoder.whole_body(&mut buf, 10).as_deref(),
        Some(&b"abcdefghij"[..])
    );
    match decoder.decode_routed(&mut buf, &streams).unwrap() {
        Event::Request(request) => assert_eq!(request.path(), "/"),
        other => panic!("{other:?}"),
    }
    // Longer than the max, or its end not there yet: nothing taken, it streams from
    // its first chunk.
    for (max, cut) in [(9, 0), (10, 3)] {
        let (mut decoder, mut buf) = start(&[&head[..], &body[..body.len() - cut]].concat());
        let before = buf.clone();
        assert!(decoder.whole_body(&mut buf, max).is_none(), "max {max}");
        assert_eq!(buf, before);
        match decoder.body_piece(&mut buf) {
            Ok(BodyPiece::Data(data)) => assert_eq!(&data[..], b"abcdefghij"),
            other => panic!("{other:?}"),
        }
    }
    // Bad framing: nothing taken; streaming it fails.
    let (mut decoder, mut buf) = start(&[&head[..], b"3\r\nabc\r\nzz\r\n\r\n"].concat());
    assert!(decoder.whole_body(&mut buf, 1024).is_none());
    assert!(decoder.body_piece(&mut buf).is_err());
}
