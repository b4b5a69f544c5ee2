//! SIGINT, SIGTERM and SIGHUP, turned into calls on a thread of their own: the shards
//! never see a signal, only the control messages the callback sends them.

use std::io;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT or SIGTERM.
    Terminate,
    /// SIGHUP.
    Reload,
}

/// Handles SIGINT, SIGTERM and SIGHUP from now on by calling `on_signal` on a dedicated
/// thread, once per delivery, in order.
pub fn watch(mut on_signal: impl FnMut(Signal) + Send + 'static) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                on_signal(if signal == SIGHUP {
                    Signal::Reload
                } else {
                    Signal::Terminate
                });
            }
        })?;
    Ok(())
}
