//! `log.template`: an access-log line of the operator's own shape, parsed once per
//! configuration into text and fields, so a line costs no more than the stock formats.

/// One value a line can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    /// The client's IP address, `-` when unknown.
    Remote,
    /// The response time as the combined format writes it, `06/Nov/1994:08:49:37 +0000`.
    Time,
    /// The response time in ISO 8601, `1994-11-06T08:49:37Z`.
    TimeIso,
    /// The request line, `GET /a?b HTTP/1.1`.
    Request,
    /// The method.
    Method,
    /// The request target, query included.
    Target,
    /// The target's path, up to its `?`.
    Path,
    /// The target's query, after its `?`; empty when it has none.
    Query,
    /// `https` for a request that came over TLS, else `http`.
    Scheme,
    /// The protocol, `HTTP/1.1`.
    Protocol,
    /// The status code.
    Status,
    /// Body bytes sent (of a body sent after its head, what went out before it ended).
    Bytes,
    /// The `Referer` header, `-` when absent.
    Referer,
    /// The `User-Agent` header, `-` when absent.
    UserAgent,
    /// The shard that served the request.
    Shard,
    /// Microseconds from the request's dispatch to its response being written (a body
    /// sent after its head included).
    DurationUs,
    /// The same in milliseconds, three decimals.
    DurationMs,
}

/// The names a template may use, in `{name}`.
const NAMES: [(&str, Field); 17] = [
    ("remote", Field::Remote),
    ("time", Field::Time),
    ("time_iso", Field::TimeIso),
    ("request", Field::Request),
    ("method", Field::Method),
    ("target", Field::Target),
    ("path", Field::Path),
    ("query", Field::Query),
    ("scheme", Field::Scheme),
    ("protocol", Field::Protocol),
    ("status", Field::Status),
    ("bytes", Field::Bytes),
    ("referer", Field::Referer),
    ("user_agent", Field::UserAgent),
    ("shard", Field::Shard),
    ("duration_us", Field::DurationUs),
    ("duration_ms", Field::DurationMs),
];

/// A piece of a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    /// Written as is.
    Text(Box<[u8]>),
    /// A value, escaped as the combined format escapes it.
    Field(Field),
    /// `{header:NAME}`: the request's first header of that name (lowercase here), `-`
    /// when it has none.
    Header(Box<[u8]>),
}

/// How a template names a request header: `{header:x-request-id}`.
const HEADER: &str = "header:";

/// A parsed `log.template`: `{name}` for a field, `{header:NAME}` for a request header,
/// `{{` and `}}` for braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(super) pieces: Box<[Piece]>,
}

impl Template {
    /// Parses `text`; the error says what is wrong and where.
    pub(crate) fn parse(text: &str) -> Result<Template, String> {
        if text.contains(['\r', '\n']) {
            return Err("a line break in the template would split a line".into());
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let tail = &rest[at..];
            if tail.starts_with("{{") || tail.starts_with("}}") {
                literal.push_str(&tail[..1]);
                rest = &tail[2..];
                continue;
            }
            if tail.starts_with('}') {
                return Err(format!(
                    "a lone '}}' at byte {}: write '}}}}' for a brace",
                    text.len() - tail.len()
                ));
            }
            let end = tail
                .find('}')
                .ok_or_else(|| format!("'{{' at byte {} is not closed", text.len() - tail.len()))?;
            let piece = parse_field(&tail[1..end])?;
            if !literal.is_empty() {
                pieces.push(Piece::Text(
                    std::mem::take(&mut literal).into_bytes().into(),
                ));
            }
            pieces.push(piece);
            rest = &tail[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal.into_bytes().into()));
        }
        Ok(Template {
            pieces: pieces.into(),
        })
    }
}

/// The piece `{name}` stands for.
fn parse_field(name: &str) -> Result<Piece, String> {
    if let Some(header) = name.strip_prefix(HEADER) {
        // A header name is a token (RFC 9110): anything else could never match.
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if header.is_empty() || !header.bytes().all(token) {
            return Err(format!("{{{name}}}: {header:?} is not a header name"));
        }
        return Ok(Piece::Header(
            header.to_ascii_lowercase().into_bytes().into(),
        ));
    }
    NAMES
        .iter()
        .find(|(known, _)| *known == name)
        .map(|&(_, field)| Piece::Field(field))
        .ok_or_else(|| {
            let known: Vec<&str> = NAMES.iter().map(|(n, _)| *n).collect();
            format!(
                "unknown field {{{name}}}; the fields: {}, {HEADER}NAME",
                known.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_text_and_escaped_braces_parse() {
        let template = Template::parse("{{x}} {remote}:{status}}}{header:X-Request-Id}").unwrap();
        assert_eq!(
            &*template.pieces,
            [
                Piece::Text(b"{x} ".to_vec().into()),
                Piece::Field(Field::Remote),
                Piece::Text(b":".to_vec().into()),
                Piece::Field(Field::Status),
                Piece::Text(b"}".to_vec().into()),
                Piece::Header(b"x-request-id".to_vec().into()),
            ]
        );
    }

    #[test]
    fn mistakes_say_what_is_wrong() {
        for (text, says) in [
            ("{nope}", "unknown field {nope}; the fields: remote, time"),
            ("{status", "'{' at byte 0 is not closed"),
            ("a } b", "a lone '}' at byte 2"),
            ("{status}\n{method}", "line break"),
            ("{header:}", "\"\" is not a header name"),
            ("{header:a b}", "\"a b\" is not a header name"),
            (
                "{nope}",
                "user_agent, shard, duration_us, duration_ms, header:NAME",
            ),
        ] {
            let err = Template::parse(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }
}
