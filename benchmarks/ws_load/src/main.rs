//! WebSocket echo load: N connections, each one thread with one message in flight
//! (send a masked binary frame, read the echo in full, repeat) for a fixed time.
//! Prints messages per second and, given the server's pid, its CPU time per message
//! (utime + stime of every thread, from /proc/PID/stat).
//!
//! Usage: ws-load --addr HOST:PORT [--path /ws] [--connections 64] [--size 64]
//!                [--seconds 5] [--pid PID]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

struct Args {
    addr: String,
    path: String,
    connections: usize,
    size: usize,
    seconds: f64,
    pid: Option<u32>,
}

fn args() -> Args {
    let mut args = Args {
        addr: String::new(),
        path: "/ws".into(),
        connections: 64,
        size: 64,
        seconds: 5.0,
        pid: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().expect("a value after each flag");
        match flag.as_str() {
            "--addr" => args.addr = value,
            "--path" => args.path = value,
            "--connections" => args.connections = value.parse().expect("--connections N"),
            "--size" => args.size = value.parse().expect("--size BYTES"),
            "--seconds" => args.seconds = value.parse().expect("--seconds S"),
            "--pid" => args.pid = Some(value.parse().expect("--pid PID")),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!args.addr.is_empty(), "--addr HOST:PORT is required");
    args
}

/// A masked binary frame carrying `size` bytes.
fn frame(size: usize) -> Vec<u8> {
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![0x82];
    match size {
        0..=125 => out.push(0x80 | size as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(size as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(size as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend((0..size).map(|i| (i as u8) ^ key[i % 4]));
    out
}

/// Opens a connection and completes the handshake.
fn open(addr: &str, path: &str) -> BufReader<TcpStream> {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    reader.get_mut().write_all(request.as_bytes()).unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 101"), "handshake refused: {line:?}");
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            return reader;
        }
    }
}

/// Reads one unmasked frame into `payload`; returns its length.
fn read_frame(reader: &mut BufReader<TcpStream>, payload: &mut Vec<u8>) -> usize {
    let mut head = [0u8; 2];
    reader.read_exact(&mut head).expect("frame header");
    let len = match head[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            reader.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            reader.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    payload.resize(len, 0);
    reader.read_exact(payload).unwrap();
    len
}

/// Clock ticks of CPU (user + system) used by process `pid` so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the server's /proc stat");
    // Fields after the command (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn main() {
    let args = args();
    let frame = Arc::new(frame(args.size));
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Barrier::new(args.connections + 1));
    let workers: Vec<_> = (0..args.connections)
        .map(|_| {
            let mut conn = open(&args.addr, &args.path);
            let (frame, stop, total, ready) = (frame.clone(), stop.clone(), total.clone(), ready.clone());
            let size = args.size;
            std::thread::spawn(move || {
                let mut payload = Vec::with_capacity(size);
                let mut count = 0u64;
                ready.wait();
                while !stop.load(Ordering::Relaxed) {
                    conn.get_mut().write_all(&frame).unwrap();
                    assert_eq!(read_frame(&mut conn, &mut payload), size, "echo size");
                    count += 1;
                }
                total.fetch_add(count, Ordering::Relaxed);
            })
        })
        .collect();
    ready.wait();
    let cpu_before = args.pid.map(cpu_ticks);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    let cpu_after = args.pid.map(cpu_ticks);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.join().unwrap();
    }
    let messages = total.load(Ordering::Relaxed);
    let rate = messages as f64 / elapsed;
    let ticks_per_second = 100.0; // USER_HZ on Linux
    match (cpu_before, cpu_after) {
        (Some(before), Some(after)) => {
            let cpu_s = (after - before) as f64 / ticks_per_second;
            println!(
                "messages {messages} msgs/s {rate:.0} server_cpu_s {cpu_s:.2} cpu_us_per_msg {:.2}",
                cpu_s * 1e6 / messages.max(1) as f64
            );
        }
        _ => println!("messages {messages} msgs/s {rate:.0}"),
    }
}
