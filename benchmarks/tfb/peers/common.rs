//! What every TechEmpower peer shares (each includes this file with `#[path]`): the command
//! line, the TFB query-count rule, a small random generator, the SQL and the fortunes page.
//! The framework-specific parts (runtime, connections, routing) stay in each peer.
#![allow(dead_code)]

use std::fmt::Write;

pub const DEFAULT_URL: &str = "postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1/hello_world";
pub const SELECT_WORLD: &str = "SELECT id, randomnumber FROM world WHERE id = $1";
pub const SELECT_FORTUNES: &str = "SELECT id, message FROM fortune";
pub const SELECT_ALL_WORLDS: &str = "SELECT id, randomnumber FROM world";
/// One batched UPDATE for all the rows of a request (allowed by the TFB rules). Callers sort
/// the ids so that concurrent updates take row locks in the same order.
pub const UPDATE_WORLDS: &str = "UPDATE world SET randomnumber = new.rn \
     FROM (SELECT unnest($1::int[]) AS id, unnest($2::int[]) AS rn) AS new \
     WHERE world.id = new.id";
pub const HELLO: &str = "Hello, World!";
pub const WORLD_ROWS: u32 = 10_000;

pub struct Args {
    pub port: u16,
    pub threads: usize,
    pub database_url: String,
}

/// `--port P --threads N [--database-url URL]`.
pub fn args(default_port: u16) -> Args {
    let mut out = Args { port: default_port, threads: 1, database_url: DEFAULT_URL.to_string() };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            println!("usage: --port P --threads N [--database-url URL]  (URL default {DEFAULT_URL})");
            std::process::exit(0);
        }
        let value = args.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => out.port = value.parse().expect("--port P"),
            "--threads" => out.threads = value.parse().expect("--threads N"),
            "--database-url" => out.database_url = value,
            _ => panic!("unknown flag {flag}: use --port P --threads N [--database-url URL]"),
        }
    }
    out.threads = out.threads.max(1);
    out
}

/// The count parameter `key` of a query string by the TFB rules: 1..=500; missing, zero,
/// negative or not a number is 1.
pub fn count(query: Option<&str>, key: &str) -> usize {
    let value = query.and_then(|q| {
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then_some(v)
        })
    });
    match value.and_then(|v| v.parse::<i64>().ok()) {
        Some(n) if n > 500 => 500,
        Some(n) if n >= 1 => n as usize,
        _ => 1,
    }
}

/// wyrand: small, fast, good enough for picking rows.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9);
        let here = &seed as *const u64 as u64; // a per-thread difference
        Rng(seed ^ here.rotate_left(32))
    }

    /// A number in 1..=10000.
    pub fn world_id(&mut self) -> i32 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = (self.0 as u128).wrapping_mul((self.0 ^ 0xe703_7ed1_a0b4_28db) as u128);
        let r = ((t >> 64) as u64) ^ (t as u64);
        ((r % WORLD_ROWS as u64) + 1) as i32
    }
}

impl Default for Rng {
    fn default() -> Self {
        Self::new()
    }
}

/// HTML-escape `text` into `out` (&, <, >, ", ').
pub fn escape_into(out: &mut String, text: &str) {
    let mut last = 0;
    for (i, b) in text.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#x27;",
            _ => continue,
        };
        out.push_str(&text[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&text[last..]);
}

pub const EXTRA_FORTUNE: &str = "Additional fortune added at request time.";

/// Adds the request-time fortune, sorts by message and renders the TFB page.
pub fn fortunes_html(mut fortunes: Vec<(i32, String)>) -> String {
    fortunes.push((0, EXTRA_FORTUNE.to_string()));
    fortunes.sort_unstable_by(|a, b| a.1.cmp(&b.1));
    let mut out = String::with_capacity(1200);
    out.push_str("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>");
    for (id, message) in &fortunes {
        let _ = write!(out, "<tr><td>{id}</td><td>");
        escape_into(&mut out, message);
        out.push_str("</td></tr>");
    }
    out.push_str("</table></body></html>");
    out
}
