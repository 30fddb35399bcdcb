//! Shutdown signalling: one place that turns SIGTERM/SIGINT (or a caller's request) into a
//! value every task can wait for.
//!
//! The worker stops fetching when the signal fires, finishes what is in flight within its
//! bound, commits and returns; the binary then exits 0.

use tokio::sync::watch;

/// Cloneable handle that reports whether shutdown was requested and lets tasks wait for it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// Fires the [`Shutdown`] handles made from it.
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

/// A trigger and its first handle.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    pub fn fire(&self) {
        let _ = self.sender.send(true);
    }

    /// Fires on the first SIGTERM or SIGINT. Runs until then; spawn it.
    pub async fn fire_on_signals(self) {
        wait_for_signal().await;
        tracing::info!("shutdown requested: finishing in-flight records");
        self.fire();
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the worker");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

impl Shutdown {
    pub fn is_requested(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves once shutdown is requested (at once if it already was).
    pub async fn requested(&mut self) {
        let _ = self.receiver.wait_for(|&fired| fired).await;
    }
}
