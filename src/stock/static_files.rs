//! `handler = "static"`: the files under a directory, at a URL prefix.
//!
//! A request path is decoded segment by segment; a segment that is empty, `.` or `..`,
//! starts with `.` (hidden files), or decodes to hold `/`, `\` or NUL is answered 404.
//! The file is then opened with `openat2(RESOLVE_BENEATH)` from the directory's
//! descriptor, which the kernel refuses for any path (a symlink included) that would
//! resolve outside it: one syscall, no race between checking and opening. On kernels
//! without `openat2` the path is canonicalized (symlinks resolved) and must lie inside
//! the canonical directory.
//!
//! Files up to `WHOLE_FILE` bytes are read whole; larger ones become file bodies
//! (`Response::with_file`): on a plain connection the kernel sends them from the page
//! cache with `sendfile`, never through user memory; over TLS they are streamed in
//! positional reads as the client takes them. Either way a large file never sits in
//! memory.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_lite::stream;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::http::{Request, Response, StatusCode};
use crate::router::Router;

/// Files (or ranges) up to this size are read in one go and sent as one body; larger
/// ones are file bodies (`sendfile` on a plain connection, reads as the client takes
/// them elsewhere), so a client that pipelines requests for them without reading
/// makes the server hold at most a piece of each.
const WHOLE_FILE: u64 = 16 * 1024;

// Defined here rather than in router.rs, so that the router does not import the stock
// handlers (which import it).
impl Router {
    /// Serves the files under `dir` at `prefix` and below (GET and HEAD), as the
    /// config's `handler = "static"` does with its defaults (see the README's "Static
    /// files"): on a kernel without `openat2`, nothing is served.
    pub fn static_files(&mut self, prefix: &str, dir: &str) -> &mut Router {
        let options = Options {
            allow_check_then_open: false,
            max_age: None,
            index: "index.html",
        };
        mount(self, prefix, dir, &options);
        self
    }
}

/// A static route's choices (its config keys).
pub struct Options<'a> {
    /// Without `openat2`, serve by checking each path first (see [`Root::open_inside`]).
    pub allow_check_then_open: bool,
    /// Files carry `Cache-Control: max-age=` this many seconds.
    pub max_age: Option<u64>,
    /// The file a directory serves; empty: none.
    pub index: &'a str,
}

/// What every request to one mount shares.
struct Mount {
    root: Option<Root>,
    prefix: Box<str>,
    cache: Option<Box<str>>,
    index: Option<Box<Path>>,
}

/// Mounts GET (and so HEAD) `prefix` and everything below it, serving `dir`. A `dir`
/// that cannot be resolved answers 404 to everything (the config checks it exists).
pub fn mount(router: &mut Router, prefix: &str, dir: &str, options: &Options<'_>) {
    let prefix = prefix.trim_end_matches('/');
    let base = if prefix.is_empty() { "/" } else { prefix };
    let patterns = [base.to_owned(), format!("{prefix}/*")];
    let mount = Rc::new(Mount {
        root: Root::open(dir, options.allow_check_then_open),
        prefix: prefix.into(),
        cache: options.max_age.map(|age| format!("max-age={age}").into()),
        index: (!options.index.is_empty()).then(|| Path::new(options.index).into()),
    });
    for pattern in patterns {
        let mount = mount.clone();
        router.get(&pattern, move |request: Request| match &mount.root {
            Some(root) => serve(&request, root, &mount),
            None => not_found(),
        });
    }
}

fn not_found() -> Response {
    Response::new(StatusCode::NOT_FOUND).with_body("text/plain", "not found\n")
}

/// The served directory: its descriptor (for `openat2`) and canonical path.
struct Root {
    fd: OwnedFd,
    path: PathBuf,
    /// Serve where `openat2` is missing, by checking the path and then opening it.
    allow_check_then_open: bool,
}

impl Root {
    fn open(dir: &str, allow_check_then_open: bool) -> Option<Root> {
        let path = std::fs::canonicalize(dir).ok()?;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::open(&path, flags, Mode::empty()).ok()?;
        Some(Root {
            fd,
            path,
            allow_check_then_open,
        })
    }

    /// Opens `relative` (already free of `..` and dot-segments) for reading, only if
    /// it resolves inside the directory to a name that is not hidden.
    fn open_inside(&self, relative: &Path) -> Option<File> {
        let relative = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        // No symlink on the way: the common case, one syscall.
        let error = match self.open_strict(relative) {
            Ok(file) => return Some(file),
            Err(error) => error,
        };
        // ELOOP: a symlink on the path (NO_SYMLINKS refuses it). Where the path really
        // lands decides: inside the directory, and no hidden name on the way (a link
        // may point at `.env`). The canonical path has no symlink left, so it is
        // opened strictly again: a component swapped for a symlink since fails.
        if error == Errno::LOOP {
            let inside = self.landed_inside(relative)?;
            return self.open_strict(&inside).ok();
        }
        // No openat2 (Linux before 5.6): checking the path and then opening it can be
        // raced by a symlink swapped in between, so only when the operator allowed it.
        if error == Errno::NOSYS && self.allow_check_then_open {
            let inside = self.landed_inside(relative)?;
            let fd = rustix::fs::open(self.path.join(inside), OPEN_FLAGS, Mode::empty()).ok()?;
            return Some(File::from(fd));
        }
        None
    }

    /// `openat2` beneath the directory, following no symlink at all.
    fn open_strict(&self, relative: &Path) -> Result<File, Errno> {
        let relative = if relative.as_os_str().is_empty() {
            Path::new(".")
        } else {
            relative
        };
        let resolve =
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        rustix::fs::openat2(&self.fd, relative, OPEN_FLAGS, Mode::empty(), resolve).map(File::from)
    }

    /// Where `relative` lands with every symlink resolved, relative to the directory;
    /// `None` outside it or through a hidden name.
    fn landed_inside(&self, relative: &Path) -> Option<PathBuf> {
        let landed = std::fs::canonicalize(self.path.join(relative)).ok()?;
        let inside = landed.strip_prefix(&self.path).ok()?.to_owned();
        let hidden = inside
            .components()
            .any(|part| part.as_os_str().as_encoded_bytes().starts_with(b"."));
        (!hidden).then_some(inside)
    }
}

/// How files are opened. NONBLOCK: opening a FIFO must not wait for a writer (it is
/// refused later, as not a regular file).
const OPEN_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::CLOEXEC)
    .union(OFlags::NONBLOCK)
    .union(OFlags::NOCTTY);

/// Answers `request` from `root`, as `mount` says.
fn serve(request: &Request, root: &Root, mount: &Mount) -> Response {
    let (prefix, cache) = (&*mount.prefix, mount.cache.as_deref());
    let path = request.path();
    // The route matched by segments; the prefix must match as text too, at a segment
    // boundary (`//static/x` reaches this route, and is not under `/static`).
    let rest = match path.strip_prefix(prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => return not_found(),
    };
    let Some(relative) = decode_path(rest) else {
        return not_found();
    };
    let Some(mut file) = root.open_inside(&relative) else {
        return not_found();
    };
    let Ok(mut meta) = file.metadata() else {
        return not_found();
    };
    let mut file_path = relative.clone();
    if meta.is_dir() {
        let Some(index) = &mount.index else {
            return not_found();
        };
        if !path.ends_with('/') {
            // Relative links in the index resolve against the directory only with `/`.
            return Response::new(StatusCode::from_u16(301).expect("valid"))
                .with_header("Location", format!("{path}/"))
                .with_body("text/plain", "moved\n");
        }
        file_path = relative.join(index);
        let Some(index) = root.open_inside(&file_path) else {
            return not_found();
        };
        match index.metadata() {
            Ok(m) if m.is_file() => (file, meta) = (index, m),
            _ => return not_found(),
        }
    }
    if !meta.is_file() {
        return not_found();
    }
    let len = meta.len();
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let etag = etag(len, modified);
    let last_modified = httpdate::fmt_http_date(modified);
    let content_type = content_type(&file_path);
    let with_validators = |response: Response| {
        let response = response
            .with_header("ETag", etag.clone())
            .with_header("Last-Modified", last_modified.clone())
            .with_header("Accept-Ranges", "bytes");
        match cache {
            Some(cache) => response.with_header("Cache-Control", cache.to_owned()),
            None => response,
        }
    };
    if not_modified(request, &etag, modified) {
        return with_validators(Response::new(StatusCode::NOT_MODIFIED));
    }
    // A Range applies only while the client's copy (If-Range) is still current.
    let if_range_ok = request.header("if-range").is_none_or(|v| v.trim() == etag);
    let range = match request.header("range").filter(|_| if_range_ok) {
        None => None,
        Some(value) => match parse_range(value, len) {
            RangeAsk::Whole => None,
            RangeAsk::Part(start, end) => Some((start, end)),
            RangeAsk::Unsatisfiable => {
                return Response::new(StatusCode::from_u16(416).expect("valid"))
                    .with_header("Content-Range", format!("bytes */{len}"))
                    .with_body("text/plain", "range not satisfiable\n");
            }
        },
    };
    let (status, start, end) = match range {
        Some((start, end)) => (StatusCode::from_u16(206).expect("valid"), start, end),
        None => (StatusCode::OK, 0, len),
    };
    let mut response = with_validators(Response::new(status));
    if range.is_some() {
        response =
            response.with_header("Content-Range", format!("bytes {start}-{}/{len}", end - 1));
    }
    let count = end - start;
    if request.method() == crate::http::Method::Head {
        // No body is sent: announce the length without reading.
        return response.with_stream(content_type, Some(count), stream::empty());
    }
    if count <= WHOLE_FILE {
        let mut buf = vec![0; count as usize];
        return match file.read_exact_at(&mut buf, start) {
            Ok(()) => response.with_body(content_type, buf),
            // The file shrank since its metadata was read.
            Err(_) => not_found(),
        };
    }
    // Larger: the kernel sends it on a plain connection, reads stream it elsewhere.
    response.with_file(content_type, file, start, count)
}

/// The decoded segments of `rest` (the path after the prefix) as a relative path;
/// `None` for anything that could leave the directory or name a hidden file.
fn decode_path(rest: &str) -> Option<PathBuf> {
    let mut relative = PathBuf::new();
    if rest.is_empty() || rest == "/" {
        return Some(relative);
    }
    let rest = rest.strip_prefix('/')?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    for segment in rest.split('/') {
        let decoded = percent_decode(segment)?;
        let bad =
            decoded.is_empty() || decoded.starts_with('.') || decoded.contains(['/', '\\', '\0']);
        if bad {
            return None;
        }
        relative.push(decoded);
    }
    Some(relative)
}

/// `%XX` decoding into UTF-8 text; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn etag(len: u64, modified: SystemTime) -> String {
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

/// Whether the client's copy is current: `If-None-Match` decides when present (weak
/// comparison), else `If-Modified-Since` (to the second).
fn not_modified(request: &Request, etag: &str, modified: SystemTime) -> bool {
    if let Some(tags) = request.header("if-none-match") {
        return tags
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag);
    }
    let Some(since) = request
        .header("if-modified-since")
        .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
    else {
        return false;
    };
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    secs(modified) <= secs(since)
}

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsk {
    /// The whole file: no usable range (several ranges, another unit, bad syntax).
    Whole,
    /// Bytes `start..end`.
    Part(u64, u64),
    /// A range that starts past the end.
    Unsatisfiable,
}

/// Parses a single `bytes=` range against a file of `len` bytes.
fn parse_range(value: &str, len: u64) -> RangeAsk {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    if spec.contains(',') {
        return RangeAsk::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsk::Whole;
    };
    let number = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.is_empty(), number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (true, _, Some(n)) if n > 0 && len > 0 => RangeAsk::Part(len.saturating_sub(n), len),
        (true, _, Some(_)) => RangeAsk::Unsatisfiable,
        (false, Some(start), _) if start >= len => RangeAsk::Unsatisfiable,
        (false, Some(start), None) if last.is_empty() => RangeAsk::Part(start, len),
        (false, Some(start), Some(end)) if end >= start => {
            RangeAsk::Part(start, end.saturating_add(1).min(len))
        }
        _ => RangeAsk::Whole,
    }
}

/// The content type for a file name's extension.
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" | "text" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_leave_the_directory_are_refused() {
        assert_eq!(decode_path("/a/b.txt"), Some(PathBuf::from("a/b.txt")));
        assert_eq!(decode_path("/a%20b"), Some(PathBuf::from("a b")));
        assert_eq!(decode_path(""), Some(PathBuf::new()));
        for bad in [
            "/../x",
            "/a/../../x",
            "/%2e%2e/x",
            "/%2E%2e/x",
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a%00",
            "/.hidden",
            "/a//b",
            "/%zz",
            "/%c3",
            "/.",
            "/a/./b",
        ] {
            assert_eq!(decode_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeAsk::Part(0, 10));
        assert_eq!(parse_range("bytes=90-", 100), RangeAsk::Part(90, 100));
        assert_eq!(parse_range("bytes=-10", 100), RangeAsk::Part(90, 100));
        assert_eq!(parse_range("bytes=-200", 100), RangeAsk::Part(0, 100));
        assert_eq!(parse_range("bytes=50-500", 100), RangeAsk::Part(50, 100));
        assert_eq!(parse_range("bytes=100-", 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeAsk::Unsatisfiable);
        assert_eq!(parse_range("bytes=5-1", 100), RangeAsk::Whole);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeAsk::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeAsk::Whole);
        assert_eq!(parse_range("bytes=x-1", 100), RangeAsk::Whole);
    }
}
