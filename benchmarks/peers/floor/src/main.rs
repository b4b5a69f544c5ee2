//! Benchmark floor: the least work an HTTP/1.1 server on epoll can do. It parses nothing:
//! every `\r\n\r\n` it reads is taken as the end of a request and answered with one canned
//! `200 hello world` (the same headers as Haywire's answer: Date, Content-Type,
//! Content-Length). One thread per `--threads`, each with its own SO_REUSEPORT listener and
//! edge-triggered epoll; the answers to everything one read brought in go out in one write.
//! With `--close` each connection is closed after its first answer (the `close` scenario).
//! Its CPU per request is what a server cannot go below; benchmarks/run.sh reports every
//! server as a ratio to it.
//! Usage: peer-floor [--port N] [--threads N] [--close]

use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

/// The end of a request's head.
const END: &[u8; 4] = b"\r\n\r\n";
/// A connection whose client does not read its answers stops being read past this.
const MAX_PENDING: usize = 1 << 20;
/// The listener's key in epoll's data; connections use their fd.
const LISTENER: u64 = u64::MAX;

struct Conn {
    fd: OwnedFd,
    /// How many bytes of `END` the last read ended with.
    matched: usize,
    /// Answers not yet written.
    out: Vec<u8>,
}

fn main() {
    let (port, threads, close) = args(8004);
    let answer = canned_answer(close);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let answer = answer.clone();
            let listener = listener(port).expect("bind the floor's port");
            std::thread::spawn(move || serve(listener, &answer, close))
        })
        .collect();
    println!(
        "peer-floor on 127.0.0.1:{port} with {threads} threads{}",
        if close { ", closing" } else { "" }
    );
    for w in workers {
        if let Err(e) = w.join().expect("a floor thread panicked") {
            eprintln!("peer-floor: {e}");
            std::process::exit(1);
        }
    }
}

/// The answer to every request. The date is the start's: it has a real one's length.
fn canned_answer(close: bool) -> Vec<u8> {
    let date = http_date(rustix::time::clock_gettime(rustix::time::ClockId::Realtime).tv_sec);
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 200 OK\r\nDate: {date}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 11\r\n{connection}\r\nhello world"
    )
    .into_bytes()
}

fn listener(port: u16) -> io::Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::sockopt::set_socket_reuseaddr(&fd, true)?;
    rustix::net::sockopt::set_socket_reuseport(&fd, true)?;
    rustix::net::bind(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))?;
    rustix::net::listen(&fd, 1024)?;
    Ok(fd)
}

fn serve(listener: OwnedFd, answer: &[u8], close: bool) -> io::Result<()> {
    let poll = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    epoll::add(
        &poll,
        &listener,
        EventData::new_u64(LISTENER),
        EventFlags::IN | EventFlags::ET,
    )?;
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut events = Vec::with_capacity(256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        events.clear();
        match epoll::wait(&poll, spare_capacity(&mut events), None) {
            Ok(_) | Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        for event in &events {
            let key = event.data.u64();
            if key == LISTENER {
                accept_all(&poll, &listener, &mut conns)?;
                continue;
            }
            let slot = key as usize;
            let Some(conn) = conns.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            if !drive(conn, &mut buf, answer, close) {
                // Closing the fd also takes it out of epoll.
                conns[slot] = None;
            }
        }
    }
}

fn accept_all(poll: &OwnedFd, listener: &OwnedFd, conns: &mut Vec<Option<Conn>>) -> io::Result<()> {
    loop {
        let fd = match rustix::net::accept_with(
            listener,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        ) {
            Ok(fd) => fd,
            Err(Errno::AGAIN) => return Ok(()),
            Err(Errno::INTR | Errno::CONNABORTED) => continue,
            Err(e) => return Err(e.into()),
        };
        rustix::net::sockopt::set_tcp_nodelay(&fd, true)?;
        let slot = fd.as_raw_fd() as usize;
        let flags = EventFlags::IN | EventFlags::OUT | EventFlags::RDHUP | EventFlags::ET;
        epoll::add(poll, &fd, EventData::new_u64(slot as u64), flags)?;
        if conns.len() <= slot {
            conns.resize_with(slot + 1, || None);
        }
        conns[slot] = Some(Conn {
            fd,
            matched: 0,
            out: Vec::new(),
        });
    }
}

/// Reads until the socket is drained, answers every request end seen, writes the answers.
/// False when the connection is done.
fn drive(conn: &mut Conn, buf: &mut [u8], answer: &[u8], close: bool) -> bool {
    if !flush(conn) {
        return false;
    }
    while conn.out.len() < MAX_PENDING {
        let n = match rustix::io::read(&conn.fd, &mut *buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(Errno::AGAIN) => break,
            Err(Errno::INTR) => continue,
            Err(_) => return false,
        };
        let requests = count_ends(&buf[..n], &mut conn.matched);
        let requests = if close { requests.min(1) } else { requests };
        for _ in 0..requests {
            conn.out.extend_from_slice(answer);
        }
        if close && requests > 0 {
            flush(conn);
            return false;
        }
    }
    flush(conn)
}

/// Writes what it can of the pending answers. False on a write error.
fn flush(conn: &mut Conn) -> bool {
    let mut written = 0;
    while written < conn.out.len() {
        match rustix::io::write(&conn.fd, &conn.out[written..]) {
            Ok(n) => written += n,
            Err(Errno::AGAIN) => break,
            Err(Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
    conn.out.drain(..written);
    true
}

/// Counts the `\r\n\r\n` in `data`, including one that began in an earlier read
/// (`matched` carries how much of it had been seen).
fn count_ends(data: &[u8], matched: &mut usize) -> usize {
    let mut count = 0;
    for &byte in data {
        *matched = if byte == END[*matched] {
            *matched + 1
        } else if byte == b'\r' {
            1
        } else {
            0
        };
        if *matched == END.len() {
            count += 1;
            *matched = 0;
        }
    }
    count
}

/// An RFC 9110 date, `Sun, 06 Nov 1994 08:49:37 GMT`, from Unix seconds.
fn http_date(secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `--port N` (default 8004), `--threads N` (default 1), `--close`.
fn args(default_port: u16) -> (u16, usize, bool) {
    let (mut port, mut threads, mut close) = (default_port, 1, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--close" {
            close = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => port = value.parse().expect("--port N"),
            "--threads" => threads = value.parse().expect("--threads N"),
            _ => panic!("unknown flag {flag}: use --port N --threads N [--close]"),
        }
    }
    (port, threads.max(1), close)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ends_split_across_reads_are_counted_once() {
        let mut matched = 0;
        assert_eq!(
            count_ends(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r", &mut matched),
            1
        );
        assert_eq!(count_ends(b"\nGET / HTTP/1.1\r\r\n\r\n", &mut matched), 2);
        assert_eq!(matched, 0);
    }

    #[test]
    fn dates_are_rfc9110() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
    }
}
