//! WebSocket echo and chat rooms whose members sit on any shard.
//!
//! `/ws` echoes every text and binary message. `/chat/:room` joins a room: the first
//! message a member gets says which shard holds it (`shard N`); every text message a
//! member sends reaches every member of the room, on every shard. A room is shard-local
//! state (this shard's members); a message crosses to each other shard once, through
//! the control mesh (`ShardCtx::broadcast`), and each shard fans it out to its own
//! members: one broadcast per message, never one cross-shard send per member.
//!
//! `cargo run --release --example websocket -- --port 8000 --shards 2`, then e.g.
//! `websocat ws://localhost:8000/chat/lobby` in two terminals.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use clap::Parser;
use haywire::config::PlacementKind;
use haywire::ws::{CloseCode, Message, Prepared, SendError, WebSocket};
use haywire::{Config, Request, Router, Server, ShardCtx};

/// This shard's members of every room, by room name.
#[derive(Default)]
struct Rooms {
    members: RefCell<HashMap<String, Vec<(u64, WebSocket)>>>,
    next_id: Cell<u64>,
}

impl Rooms {
    fn join(&self, room: &str, ws: WebSocket) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut members = self.members.borrow_mut();
        members.entry(room.to_owned()).or_default().push((id, ws));
        id
    }

    fn leave(&self, room: &str, id: u64) {
        let mut members = self.members.borrow_mut();
        if let Some(list) = members.get_mut(room) {
            list.retain(|(member, _)| *member != id);
            if list.is_empty() {
                members.remove(room);
            }
        }
    }

    /// Sends `text` to this shard's members of `room`. A member whose output buffer is
    /// full is too slow for the room: it is closed rather than let hold the others up.
    fn fan_out(&self, room: &str, text: &str) {
        let mut members = self.members.borrow_mut();
        let Some(list) = members.get_mut(room) else {
            return;
        };
        // Encoded (and compressed, for members that negotiated it) once for all.
        let message = Prepared::new(Message::Text(text.to_owned()));
        list.retain(|(_, ws)| match ws.try_send_prepared(&message) {
            Ok(()) => true,
            Err(SendError::Full(_)) => {
                ws.close(CloseCode::POLICY, "too slow for the room");
                false
            }
            Err(SendError::Closed(_)) => false,
        });
    }
}

/// Leaves the room when the connection's handler ends, however it ends.
struct Membership {
    rooms: Rc<Rooms>,
    room: String,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.rooms.leave(&self.room, self.id);
    }
}

/// Registers `/ws` and `/chat/:room` on one shard (the integration test mounts them too).
pub fn routes(router: &mut Router, shard: &Rc<ShardCtx>) {
    router.websocket("/ws", |_: Request, ws: WebSocket| async move {
        while let Some(message) = ws.recv().await {
            if let Message::Text(_) | Message::Binary(_) = message {
                if ws.send(message).await.is_err() {
                    break;
                }
            }
        }
    });

    let rooms = Rc::new(Rooms::default());
    shard.insert_local(rooms.clone());
    let ctx = shard.clone();
    router.websocket("/chat/:room", move |req: Request, ws: WebSocket| {
        let room = req.param("room").unwrap_or_default().to_owned();
        let (rooms, ctx) = (rooms.clone(), ctx.clone());
        async move {
            if ws
                .send(Message::Text(format!("shard {}", ctx.id())))
                .await
                .is_err()
            {
                return;
            }
            let id = rooms.join(&room, ws.clone());
            let _membership = Membership {
                rooms: rooms.clone(),
                room: room.clone(),
                id,
            };
            while let Some(message) = ws.recv().await {
                if let Message::Text(text) = message {
                    let room = room.clone();
                    ctx.broadcast(move |shard: &ShardCtx| {
                        if let Some(rooms) = shard.local::<Rooms>() {
                            rooms.fan_out(&room, &text);
                        }
                    });
                }
            }
        }
    });
}

/// Command-line flags.
#[derive(Parser, Debug)]
#[command(about = "WebSocket echo and cross-shard chat on Haywire")]
struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Shards; 0 = one per allowed CPU.
    #[arg(long, default_value_t = 0)]
    shards: usize,
}

#[allow(dead_code)] // the integration test mounts `routes` without this `main`
fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut config = Config::default();
    config.server.port = args.port;
    config.server.shards = args.shards;
    config.server.placement = PlacementKind::Unbound;
    config.routes.clear();
    let server = Server::new(config).routes(routes).start()?;
    println!(
        "listening on ws://{}/ws and /chat/:room",
        server.local_addr()
    );
    server.join()
}
