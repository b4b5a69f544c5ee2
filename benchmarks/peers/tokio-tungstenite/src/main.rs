//! Benchmark peer: a tokio-tungstenite WebSocket echo server, one current-thread tokio
//! runtime per thread, each with its own SO_REUSEPORT listener (the shape of Haywire's
//! shards). Every text and binary message is sent back; pings are answered by
//! tungstenite. Usage: peer-tokio-tungstenite [--port N] [--threads N]

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;

async fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(message)) = ws.next().await {
        if message.is_text() || message.is_binary() {
            if ws.send(message).await.is_err() {
                return;
            }
        }
    }
}

fn listener(addr: SocketAddr) -> std::net::TcpListener {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket.bind(&addr.into()).unwrap();
    socket.listen(1024).unwrap();
    socket.set_nonblocking(true).unwrap();
    socket.into()
}

fn main() {
    let mut port = 9002u16;
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().expect("a value after each flag");
        match arg.as_str() {
            "--port" => port = value.parse().expect("--port N"),
            "--threads" => threads = value.parse().expect("--threads N"),
            other => panic!("unknown flag {other}"),
        }
    }
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let std_listener = listener(addr);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                    loop {
                        if let Ok((stream, _)) = listener.accept().await {
                            tokio::spawn(echo(stream));
                        }
                    }
                })
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
}
