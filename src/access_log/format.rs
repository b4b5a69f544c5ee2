//! Formatting one access-log line, combined, JSON or the operator's template, from what
//! the request left in an [`Entry`]: no allocation, and nothing a client sends can forge
//! a field.

use std::io::Write;
use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;

use super::template::{Field, Piece, Template};
use crate::http::date::DATE_LEN;
use crate::http::Request;

/// What the log needs from a request, kept until its response is encoded: the head (a
/// reference to the request's bytes, not a copy) and offsets into it.
pub(crate) struct Entry {
    head: Bytes,
    /// The request line, e.g. `GET /a?b HTTP/1.1`.
    line: (u16, u16),
    referer: Option<(u16, u16)>,
    agent: Option<(u16, u16)>,
    peer: Option<IpAddr>,
    /// Whether it came over TLS, for `{scheme}`.
    secure: bool,
    /// When the request was dispatched, for `{duration_us}`/`{duration_ms}`.
    start: Instant,
}

impl Entry {
    pub(super) fn new(request: &Request) -> Entry {
        let head = request.headers.head().clone();
        let start = request.method_span.start as usize;
        let end = head[start..]
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .map_or(head.len(), |i| start + i);
        let span = |value: &[u8]| {
            let at = value.as_ptr() as usize - head.as_ptr() as usize;
            (at as u16, value.len() as u16)
        };
        Entry {
            line: (start as u16, (end - start) as u16),
            referer: request.headers.get("referer").map(span),
            agent: request.headers.get("user-agent").map(span),
            peer: request.peer_addr().map(|addr| addr.ip()),
            secure: request.is_secure(),
            head,
            start: Instant::now(),
        }
    }

    fn get(&self, (at, len): (u16, u16)) -> &[u8] {
        &self.head[at as usize..at as usize + len as usize]
    }

    /// The value of the first header named `name` (lowercase), found in the head when
    /// a line is written: only templates that name a header pay for it.
    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        let after_line = self.line.0 as usize + self.line.1 as usize;
        self.head[after_line..]
            .split(|&b| b == b'\n')
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                line[..colon]
                    .eq_ignore_ascii_case(name)
                    .then(|| line[colon + 1..].trim_ascii())
            })
            .next()
    }
}

/// The values of one line.
pub(super) struct Line<'a> {
    pub(super) entry: Option<&'a Entry>,
    pub(super) status: u16,
    /// Body bytes sent (of a streamed body, what went out before it ended).
    pub(super) bytes: u64,
    pub(super) date: &'a [u8; DATE_LEN],
    pub(super) shard: usize,
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl Line<'_> {
    /// `1.2.3.4 - - [06/Nov/1994:08:49:37 +0000] "GET / HTTP/1.1" 200 11 "-" "curl/8"`
    pub(super) fn combined(&self, buf: &mut Vec<u8>) {
        self.peer(buf);
        buf.extend_from_slice(b" - - [");
        self.common_time(buf);
        buf.extend_from_slice(b"] \"");
        self.text(buf, self.request_line());
        buf.extend_from_slice(b"\" ");
        self.status(buf);
        buf.push(b' ');
        self.bytes(buf);
        for header in [self.referer(), self.agent()] {
            buf.extend_from_slice(b" \"");
            self.text(buf, header);
            buf.push(b'"');
        }
        buf.push(b'\n');
    }

    /// `template`'s pieces, each field written as the combined format writes it.
    pub(super) fn template(&self, template: &Template, buf: &mut Vec<u8>) {
        for piece in &*template.pieces {
            match piece {
                Piece::Text(text) => buf.extend_from_slice(text),
                Piece::Field(field) => self.field(*field, buf),
                Piece::Header(name) => self.text(buf, self.entry.and_then(|e| e.header(name))),
            }
        }
        buf.push(b'\n');
    }

    fn field(&self, field: Field, buf: &mut Vec<u8>) {
        match field {
            Field::Remote => self.peer(buf),
            Field::Time => self.common_time(buf),
            Field::TimeIso => self.iso_time(buf),
            Field::Request => self.text(buf, self.request_line()),
            Field::Method => self.text(buf, self.request_part(0)),
            Field::Target => self.text(buf, self.request_part(1)),
            Field::Path => self.text(buf, self.target_part(0)),
            Field::Query => self.text(buf, self.target_part(1).or(self.entry.and(Some(b"")))),
            Field::Scheme => self.text(
                buf,
                self.entry
                    .map(|e| if e.secure { &b"https"[..] } else { b"http" }),
            ),
            Field::Protocol => self.text(buf, self.request_part(2)),
            Field::Status => self.status(buf),
            Field::Bytes => self.bytes(buf),
            Field::Referer => self.text(buf, self.referer()),
            Field::UserAgent => self.text(buf, self.agent()),
            Field::Shard => {
                buf.extend_from_slice(itoa::Buffer::new().format(self.shard).as_bytes())
            }
            Field::DurationUs | Field::DurationMs => self.duration(field, buf),
        }
    }

    /// Microseconds (or milliseconds with three decimals) from the request's dispatch to
    /// now, as its response head is written; `-` for a response to no request.
    fn duration(&self, field: Field, buf: &mut Vec<u8>) {
        let Some(entry) = self.entry else {
            buf.push(b'-');
            return;
        };
        let micros = entry.start.elapsed().as_micros() as u64;
        let mut number = itoa::Buffer::new();
        if field == Field::DurationMs {
            buf.extend_from_slice(number.format(micros / 1000).as_bytes());
            let frac = micros % 1000;
            buf.extend_from_slice(&[
                b'.',
                b'0' + (frac / 100) as u8,
                b'0' + (frac / 10 % 10) as u8,
                b'0' + (frac % 10) as u8,
            ]);
        } else {
            buf.extend_from_slice(number.format(micros).as_bytes());
        }
    }

    /// The cached Date header, `Sun, 06 Nov 1994 08:49:37 GMT`, as
    /// `06/Nov/1994:08:49:37 +0000`.
    fn common_time(&self, buf: &mut Vec<u8>) {
        let d = self.date;
        buf.extend_from_slice(&d[5..7]);
        buf.push(b'/');
        buf.extend_from_slice(&d[8..11]);
        buf.push(b'/');
        buf.extend_from_slice(&d[12..16]);
        buf.push(b':');
        buf.extend_from_slice(&d[17..25]);
        buf.extend_from_slice(b" +0000");
    }

    /// The cached Date header as `1994-11-06T08:49:37Z`.
    fn iso_time(&self, buf: &mut Vec<u8>) {
        let d = self.date;
        let month = MONTHS
            .iter()
            .position(|m| m[..] == d[8..11])
            .map_or(0, |i| i + 1);
        buf.extend_from_slice(&d[12..16]);
        buf.push(b'-');
        buf.push(b'0' + (month / 10) as u8);
        buf.push(b'0' + (month % 10) as u8);
        buf.push(b'-');
        buf.extend_from_slice(&d[5..7]);
        buf.push(b'T');
        buf.extend_from_slice(&d[17..25]);
        buf.push(b'Z');
    }

    fn status(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(itoa::Buffer::new().format(self.status).as_bytes());
    }

    fn bytes(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(itoa::Buffer::new().format(self.bytes).as_bytes());
    }

    /// `value` escaped, or `-`.
    fn text(&self, buf: &mut Vec<u8>, value: Option<&[u8]>) {
        match value {
            Some(value) => escape_combined(buf, value),
            None => buf.push(b'-'),
        }
    }

    fn request_line(&self) -> Option<&[u8]> {
        self.entry.map(|e| e.get(e.line))
    }

    /// The request line's `index`th space-separated part (method, target, protocol).
    fn request_part(&self, index: usize) -> Option<&[u8]> {
        self.request_line()?.splitn(3, |&b| b == b' ').nth(index)
    }

    /// The target's path (0) or its query (1), split at the first `?`.
    fn target_part(&self, index: usize) -> Option<&[u8]> {
        self.request_part(1)?.splitn(2, |&b| b == b'?').nth(index)
    }

    fn referer(&self) -> Option<&[u8]> {
        self.entry.and_then(|e| e.referer.map(|s| e.get(s)))
    }

    fn agent(&self) -> Option<&[u8]> {
        self.entry.and_then(|e| e.agent.map(|s| e.get(s)))
    }

    /// `{"time":"1994-11-06T08:49:37Z","remote":"1.2.3.4","method":"GET","target":"/",
    /// "protocol":"HTTP/1.1","status":200,"bytes":11,"referer":null,"user_agent":"curl/8",
    /// "shard":0}`
    pub(super) fn json(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(b"{\"time\":\"");
        self.iso_time(buf);
        buf.extend_from_slice(b"\",\"remote\":");
        if self.entry.and_then(|e| e.peer).is_some() {
            buf.push(b'"');
            self.peer(buf);
            buf.push(b'"');
        } else {
            buf.extend_from_slice(b"null");
        }
        for (index, key) in ["method", "target", "protocol"].into_iter().enumerate() {
            buf.extend_from_slice(b",\"");
            buf.extend_from_slice(key.as_bytes());
            buf.extend_from_slice(b"\":");
            json_string(buf, self.request_part(index));
        }
        buf.extend_from_slice(b",\"status\":");
        self.status(buf);
        buf.extend_from_slice(b",\"bytes\":");
        self.bytes(buf);
        buf.extend_from_slice(b",\"referer\":");
        json_string(buf, self.referer());
        buf.extend_from_slice(b",\"user_agent\":");
        json_string(buf, self.agent());
        buf.extend_from_slice(b",\"shard\":");
        buf.extend_from_slice(itoa::Buffer::new().format(self.shard).as_bytes());
        buf.extend_from_slice(b"}\n");
    }

    /// The peer's IP address, or `-`. IPv4 with `itoa`: the formatting machinery of
    /// `Display` cost more than the rest of the line. Neither allocates.
    fn peer(&self, buf: &mut Vec<u8>) {
        match self.entry.and_then(|e| e.peer) {
            Some(IpAddr::V4(ip)) => {
                for (i, octet) in ip.octets().into_iter().enumerate() {
                    if i > 0 {
                        buf.push(b'.');
                    }
                    buf.extend_from_slice(itoa::Buffer::new().format(octet).as_bytes());
                }
            }
            Some(ip) => {
                let _ = write!(buf, "{ip}");
            }
            None => buf.push(b'-'),
        }
    }
}

/// Appends `value` with `"`, `\`, control and non-ASCII bytes as `\xHH` (as nginx does),
/// so a client cannot forge a line or a field.
fn escape_combined(buf: &mut Vec<u8>, value: &[u8]) {
    let plain = |b: u8| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\';
    if value.iter().all(|&b| plain(b)) {
        buf.extend_from_slice(value);
        return;
    }
    for &b in value {
        if plain(b) {
            buf.push(b);
        } else {
            buf.extend_from_slice(&[b'\\', b'x', hex(b >> 4), hex(b & 0xf)]);
        }
    }
}

/// Appends `value` as a JSON string (`null` when absent). Bytes that are not printable
/// ASCII become `\u00HH`: a header may hold any byte, and the line must stay valid JSON.
fn json_string(buf: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(value) = value else {
        buf.extend_from_slice(b"null");
        return;
    };
    buf.push(b'"');
    // Almost every value needs no escape: copied whole.
    if value
        .iter()
        .all(|&b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        buf.extend_from_slice(value);
        buf.push(b'"');
        return;
    }
    for &b in value {
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            0x20..=0x7e => buf.push(b),
            _ => buf.extend_from_slice(&[b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xf)]),
        }
    }
    buf.push(b'"');
}

fn hex(nibble: u8) -> u8 {
    b"0123456789abcdef"[nibble as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn entry(head: &'static [u8], peer: Option<IpAddr>) -> Entry {
        let text = std::str::from_utf8(head).unwrap();
        let span = |needle: &str| text.find(needle).map(|at| (at as u16, needle.len() as u16));
        let line_end = text.find("\r\n").unwrap();
        Entry {
            head: Bytes::from_static(head),
            line: (0, line_end as u16),
            referer: span("http://r/\"x"),
            agent: span("agent\u{1}"),
            peer,
            secure: false,
            start: Instant::now(),
        }
    }

    /// The line `write` makes for `entry`: a 200 of 11 bytes on shard 1.
    fn line(entry: Option<&Entry>, write: impl Fn(&Line<'_>, &mut Vec<u8>)) -> String {
        let line = Line {
            entry,
            status: 200,
            bytes: 11,
            date: DATE,
            shard: 1,
        };
        let mut buf = Vec::new();
        write(&line, &mut buf);
        String::from_utf8(buf).unwrap()
    }

    const HEAD: &[u8] =
        b"GET /a?b=\"c HTTP/1.1\r\nReferer: http://r/\"x\r\nUser-Agent: agent\x01\r\n\r\n";

    #[test]
    fn combined_lines_escape_what_could_forge_a_field() {
        let e = entry(HEAD, Some("10.0.255.7".parse().unwrap()));
        assert_eq!(
            line(Some(&e), |l: &Line<'_>, b: &mut Vec<u8>| l.combined(b)),
            "10.0.255.7 - - [06/Nov/1994:08:49:37 +0000] \"GET /a?b=\\x22c HTTP/1.1\" 200 11 \
             \"http://r/\\x22x\" \"agent\\x01\"\n"
        );
        assert_eq!(
            line(None, |l: &Line<'_>, b: &mut Vec<u8>| l.combined(b)),
            "- - - [06/Nov/1994:08:49:37 +0000] \"-\" 200 11 \"-\" \"-\"\n"
        );
    }

    /// Every field, escaped as the combined format escapes it; `-` for what a response
    /// to no request lacks.
    #[test]
    fn template_lines_show_each_field() {
        let template = Template::parse(
            "{remote}|{time}|{time_iso}|{request}|{method}|{target}|{protocol}|{status}|{bytes}|{referer}|{user_agent}|{shard}",
        )
        .unwrap();
        let entry = entry(HEAD, Some("10.0.0.7".parse().unwrap()));
        let render = |entry| {
            line(entry, |line: &Line<'_>, buf: &mut Vec<u8>| {
                line.template(&template, buf)
            })
        };
        assert_eq!(
            render(Some(&entry)),
            "10.0.0.7|06/Nov/1994:08:49:37 +0000|1994-11-06T08:49:37Z|GET /a?b=\\x22c HTTP/1.1|GET|/a?b=\\x22c|HTTP/1.1|200|11|http://r/\\x22x|agent\\x01|1\n"
        );
        assert_eq!(
            render(None),
            "-|06/Nov/1994:08:49:37 +0000|1994-11-06T08:49:37Z|-|-|-|-|200|11|-|-|1\n"
        );
    }

    /// The target's parts, the scheme and any request header, escaped; `-` for what
    /// is absent (an empty query is empty).
    #[test]
    fn template_lines_show_path_query_scheme_and_headers() {
        let template = Template::parse(
            "{path}|{query}|{scheme}|{header:user-agent}|{header:X-Id}|{header:host}",
        )
        .unwrap();
        let render = |entry| {
            line(entry, |line: &Line<'_>, buf: &mut Vec<u8>| {
                line.template(&template, buf)
            })
        };
        const PLAIN: &[u8] = b"GET /x HTTP/1.1\r\nHost: h\r\nx-id:  7 \r\nX-Id: 8\r\n\r\n";
        let plain = entry(HEAD, None);
        let mut secure = entry(PLAIN, None);
        secure.secure = true;
        assert_eq!(render(Some(&plain)), "/a|b=\\x22c|http|agent\\x01|-|-\n");
        assert_eq!(render(Some(&secure)), "/x||https|-|7|h\n");
        assert_eq!(render(None), "-|-|-|-|-|-\n");
    }

    /// The time since the request's dispatch, in µs and in ms with three decimals.
    #[test]
    fn durations_count_from_the_dispatch() {
        let template = Template::parse("{duration_us} {duration_ms}").unwrap();
        let mut e = entry(HEAD, None);
        e.start = Instant::now() - std::time::Duration::from_micros(12_345);
        let render = |entry| {
            line(entry, |line: &Line<'_>, buf: &mut Vec<u8>| {
                line.template(&template, buf)
            })
        };
        let text = render(Some(&e));
        let (us, ms) = text.trim_end().split_once(' ').unwrap();
        let us: u64 = us.parse().unwrap();
        assert!((12_345..2_012_345).contains(&us), "{text}");
        let (whole, frac) = ms.split_once('.').unwrap();
        assert_eq!(frac.len(), 3, "{text}");
        assert!(whole.parse::<u64>().unwrap() >= 12, "{text}");
        assert_eq!(render(None), "- -\n");
    }

    #[test]
    fn json_lines_are_valid_json() {
        let e = entry(HEAD, Some("::1".parse().unwrap()));
        let text = line(Some(&e), |l: &Line<'_>, b: &mut Vec<u8>| l.json(b));
        assert!(text.ends_with("}\n"));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["time"], "1994-11-06T08:49:37Z");
        assert_eq!(value["remote"], "::1");
        assert_eq!(value["method"], "GET");
        assert_eq!(value["target"], "/a?b=\"c");
        assert_eq!(value["protocol"], "HTTP/1.1");
        assert_eq!(value["status"], 200);
        assert_eq!(value["bytes"], 11);
        assert_eq!(value["referer"], "http://r/\"x");
        assert_eq!(value["user_agent"], "agent\u{1}");
        assert_eq!(value["shard"], 1);
        let bare: serde_json::Value =
            serde_json::from_str(&line(None, |l: &Line<'_>, b: &mut Vec<u8>| l.json(b))).unwrap();
        assert_eq!(bare["remote"], serde_json::Value::Null);
        assert_eq!(bare["method"], serde_json::Value::Null);
    }

    #[test]
    fn every_month_maps_to_its_number() {
        for (i, month) in MONTHS.iter().enumerate() {
            let mut date = *DATE;
            date[8..11].copy_from_slice(&month[..]);
            let mut buf = Vec::new();
            Line {
                entry: None,
                status: 200,
                bytes: 0,
                date: &date,
                shard: 0,
            }
            .json(&mut buf);
            let value: serde_json::Value = serde_json::from_slice(&buf).unwrap();
            assert_eq!(value["time"], format!("1994-{:02}-06T08:49:37Z", i + 1));
        }
    }
}
