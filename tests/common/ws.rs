//! A WebSocket test client over any byte stream (plain TCP or TLS): it masks its
//! frames and reads the server's, byte by byte as the RFC lays them out.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::io::{BufReader, Read, Write};

use super::{is_closed, read_reply, Reply};

pub const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CONT: u8 = 0x0;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}\r\n"
    )
}

/// A client over any byte stream (plain TCP or TLS).
pub struct Client<S: Read + Write> {
    pub io: BufReader<S>,
}

impl<S: Read + Write> Client<S> {
    /// Sends the upgrade for `path` and reads the 101.
    pub fn open(stream: S, path: &str, extra: &str) -> (Client<S>, Reply) {
        let mut io = BufReader::new(stream);
        io.get_mut()
            .write_all(upgrade_request(path, extra).as_bytes())
            .unwrap();
        let reply = read_reply(&mut io, false);
        (Client { io }, reply)
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.io.get_mut().write_all(bytes).unwrap();
        self.io.get_mut().flush().unwrap();
    }

    /// Sends one masked frame.
    pub fn frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        self.raw(&frame(fin, opcode, payload, true));
    }

    /// Reads one frame: (fin, opcode, payload). Server frames are never masked.
    pub fn read(&mut self) -> (bool, u8, Vec<u8>) {
        let (first, payload) = self.read_frame();
        (first & 0x80 != 0, first & 0x0F, payload)
    }

    /// Reads one frame: its first byte (FIN, the RSV bits, the opcode) and payload.
    pub fn read_frame(&mut self) -> (u8, Vec<u8>) {
        let mut head = [0u8; 2];
        self.io.read_exact(&mut head).expect("a frame header");
        assert_eq!(head[1] & 0x80, 0, "a server frame is unmasked");
        let len = match head[1] & 0x7F {
            126 => {
                let mut b = [0u8; 2];
                self.io.read_exact(&mut b).unwrap();
                u64::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                self.io.read_exact(&mut b).unwrap();
                u64::from_be_bytes(b)
            }
            n => u64::from(n),
        };
        let mut payload = vec![0; len as usize];
        self.io.read_exact(&mut payload).unwrap();
        (head[0], payload)
    }

    pub fn read_text(&mut self) -> String {
        let (fin, opcode, payload) = self.read();
        assert_eq!((fin, opcode), (true, TEXT), "{payload:?}");
        String::from_utf8(payload).unwrap()
    }

    /// Reads a close frame; its code (None for an empty one).
    pub fn read_close(&mut self) -> Option<u16> {
        let (_, opcode, payload) = self.read();
        assert_eq!(opcode, CLOSE, "expected a close, got {payload:?}");
        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
    }

    /// Whether the server then closed the connection.
    pub fn ends(&mut self) -> bool {
        is_closed(&mut self.io)
    }
}

pub fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        out.extend_from_slice(&KEY);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}
