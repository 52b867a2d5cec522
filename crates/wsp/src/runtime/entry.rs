//! One socket's entry in the handle table: its state and the *turn* that serializes everything
//! done to it — the host's calls and the transport's notifications.
//!
//! A host call takes the turn, waiting for it if another holds it (`Entry::enter`). A
//! notification must never wait: the transport may send it from inside another socket's call,
//! holding that socket's turn (the memory transport's send on one end makes the other end
//! readable), and two such waits would deadlock. So a notification records its readiness in the
//! gate and takes the turn only if it is free; if it is not, whoever holds it processes the
//! readiness before giving the turn back (`Turn`'s release loop). Both happen under the gate's
//! small lock, so no readiness is ever left unprocessed. The core `LeaseTable`'s own turn is not
//! used for this: it has no way to hand a notification to its holder.
//!
//! A host call that must wait (a blocking receive, send or accept) gives the turn back while it
//! waits, so that other calls and notifications go on, and tries again when the entry's
//! *epoch* changed: every release of the turn advances it. A lingering close waits for
//! readiness while it keeps the turn (`Turn::wait_ready`).
//!
//! The locks are `winprov_core::sync`'s: loom's under `--cfg loom`, so that the models in
//! `loom_models.rs` explore this very code. Timed waits (a lingering close on a blocking
//! socket) have no loom counterpart — loom's `wait_timeout` never times out — and the models
//! stay off them.

use super::socket::State;
use crate::host::NoticeSink;
use crate::provider::{Lifeline, Notifier, Readiness, Socket, Termination, Wake};
use std::sync::{Arc, Weak};
use std::time::Instant;
use winprov_core::sync::{Condvar, Mutex, MutexGuard, lock};

/// Readiness bits recorded in the gate.
pub(crate) const READABLE: u8 = 0x01;
pub(crate) const WRITABLE: u8 = 0x02;
pub(crate) const PEER_FIN: u8 = 0x04;
pub(crate) const PEER_RESET: u8 = 0x08;
pub(crate) const PEER_ABORT: u8 = 0x10;

fn bit(readiness: Readiness) -> u8 {
    match readiness {
        Readiness::Readable => READABLE,
        Readiness::Writable => WRITABLE,
        Readiness::Closed(Termination::Graceful) => PEER_FIN,
        Readiness::Closed(Termination::Reset) => PEER_RESET,
        Readiness::Closed(Termination::Aborted) => PEER_ABORT,
    }
}

/// What every entry of one runtime shares: the host's sink, and the count of entries alive
/// (the final `WSPCleanup` returns when it is 0).
pub(crate) struct Shared {
    pub(crate) sink: NoticeSink,
    alive: Mutex<usize>,
    gone: Condvar,
    /// Threads waiting for a socket inside the runtime (the simulator's barrier).
    #[cfg(feature = "testing")]
    sleeping: std::sync::atomic::AtomicUsize,
}

impl Shared {
    pub(crate) fn new(sink: NoticeSink) -> Arc<Self> {
        Arc::new(Self {
            sink,
            alive: Mutex::new(0),
            gone: Condvar::new(),
            #[cfg(feature = "testing")]
            sleeping: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Threads waiting for a socket: blocking calls waiting for readiness, lingering closes
    /// waiting for their data to leave.
    #[cfg(feature = "testing")]
    pub(crate) fn sleeping(&self) -> usize {
        self.sleeping.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sockets whose state still exists (open, or in a call that has not returned).
    pub(crate) fn alive(&self) -> usize {
        *lock(&self.alive)
    }

    /// Returns when no socket state is left.
    pub(crate) fn wait_until_gone(&self) {
        let mut alive = lock(&self.alive);
        while *alive > 0 {
            alive = self
                .gone
                .wait(alive)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

#[derive(Default)]
struct Gate {
    /// A call or a notification holds the turn.
    busy: bool,
    /// Readiness not processed yet.
    ready: u8,
    /// Advanced by every release of the turn.
    epoch: u64,
    /// Threads sleeping on `changed`.
    waiting: usize,
}

/// See the [module documentation](self).
pub(crate) struct Entry<S: Socket> {
    shared: Arc<Shared>,
    gate: Mutex<Gate>,
    changed: Condvar,
    state: Mutex<State<S>>,
    lifeline: Lifeline,
}

/// A strong reference to an entry: the handle table's, and a new entry's creator's until the
/// socket is installed. Its socket's notifier holds a weak one; whichever strong reference is
/// dropped last — one of these, or a notification's — frees the entry. Touches the entry's
/// [`Lifeline`] before it is dropped.
pub(crate) struct Held<S: Socket>(Arc<Entry<S>>);

impl<S: Socket> Held<S> {
    /// A new entry whose turn its creator holds (take it with [`Entry::adopt`]): notifications
    /// that come before the socket is installed wait in the gate.
    pub(crate) fn new(shared: Arc<Shared>, state: State<S>) -> Self {
        *lock(&shared.alive) += 1;
        Self(Arc::new(Entry {
            shared,
            gate: Mutex::new(Gate {
                busy: true,
                ..Gate::default()
            }),
            changed: Condvar::new(),
            state: Mutex::new(state),
            lifeline: Lifeline::default(),
        }))
    }

    /// The notifier of the entry's socket.
    pub(crate) fn notifier(&self) -> Notifier {
        let target: Weak<dyn Wake> = Arc::downgrade(&self.0) as Weak<dyn Wake>;
        Notifier::new(target, self.0.lifeline.clone())
    }
}

impl<S: Socket> Clone for Held<S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<S: Socket> std::ops::Deref for Held<S> {
    type Target = Entry<S>;

    fn deref(&self) -> &Entry<S> {
        &self.0
    }
}

impl<S: Socket> Drop for Held<S> {
    fn drop(&mut self) {
        // This may be the last strong reference.
        self.0.lifeline.touch();
    }
}

/// How a turn was given back.
pub(crate) struct Released {
    /// Readiness arrived during the turn and was processed on release: something may have
    /// changed since the holder looked.
    pub(crate) processed: bool,
    /// The epoch the release set.
    pub(crate) epoch: u64,
}

impl<S: Socket> Entry<S> {
    /// The turn of an entry just made by [`Held::new`].
    pub(crate) fn adopt(&self) -> Turn<'_, S> {
        debug_assert!(lock(&self.gate).busy, "a new entry's turn is its creator's");
        Turn {
            entry: self,
            state: Some(lock(&self.state)),
        }
    }

    /// Takes the turn, waiting for it.
    pub(crate) fn enter(&self) -> Turn<'_, S> {
        let mut gate = lock(&self.gate);
        while gate.busy {
            gate = self.sleep(gate, None);
        }
        gate.busy = true;
        drop(gate);
        Turn {
            entry: self,
            state: Some(lock(&self.state)),
        }
    }

    /// Sleeps until the epoch is no longer `epoch` (or `deadline` passed).
    pub(crate) fn wait_changed(&self, epoch: u64, deadline: Option<Instant>) {
        let mut gate = lock(&self.gate);
        while gate.epoch == epoch {
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                return;
            }
            gate = self.sleep(gate, deadline);
        }
    }

    fn sleep<'g>(
        &self,
        mut gate: MutexGuard<'g, Gate>,
        deadline: Option<Instant>,
    ) -> MutexGuard<'g, Gate> {
        gate.waiting += 1;
        #[cfg(feature = "testing")]
        self.shared
            .sleeping
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut gate = match deadline {
            None => self
                .changed
                .wait(gate)
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
            Some(deadline) => {
                let timeout = deadline.saturating_duration_since(Instant::now());
                self.changed
                    .wait_timeout(gate, timeout)
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .0
            }
        };
        #[cfg(feature = "testing")]
        self.shared
            .sleeping
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        gate.waiting -= 1;
        gate
    }
}

impl<S: Socket> Wake for Entry<S> {
    fn wake(&self, readiness: Readiness) {
        let mut gate = lock(&self.gate);
        gate.ready |= bit(readiness);
        if gate.busy {
            // The holder processes it before releasing; a lingering close may be waiting for it.
            if gate.waiting > 0 {
                self.changed.notify_all();
            }
            return;
        }
        gate.busy = true;
        drop(gate);
        // Released at once: the release loop processes the readiness.
        drop(Turn {
            entry: self,
            state: Some(lock(&self.state)),
        });
    }
}

impl<S: Socket> Drop for Entry<S> {
    fn drop(&mut self) {
        let mut alive = lock(&self.shared.alive);
        *alive -= 1;
        if *alive == 0 {
            self.shared.gone.notify_all();
        }
    }
}

/// The turn of one entry: `&mut` access to its state. Released when dropped, after the
/// readiness recorded meanwhile was processed.
pub(crate) struct Turn<'a, S: Socket> {
    entry: &'a Entry<S>,
    state: Option<MutexGuard<'a, State<S>>>,
}

impl<S: Socket> Turn<'_, S> {
    /// Gives the turn back (processing what readiness arrived meanwhile).
    pub(crate) fn release(mut self) -> Released {
        self.finish()
    }

    fn finish(&mut self) -> Released {
        let mut state = self.state.take();
        let mut processed = false;
        loop {
            // The state is unlocked before the turn is given back: the next holder never waits
            // for it.
            drop(state.take());
            let mut gate = lock(&self.entry.gate);
            let ready = std::mem::take(&mut gate.ready);
            if ready == 0 {
                gate.busy = false;
                gate.epoch = gate.epoch.wrapping_add(1);
                if gate.waiting > 0 {
                    self.entry.changed.notify_all();
                }
                return Released {
                    processed,
                    epoch: gate.epoch,
                };
            }
            drop(gate);
            // Still this turn's: nobody else locks the state.
            let mut guard = lock(&self.entry.state);
            guard.process(ready);
            processed = true;
            state = Some(guard);
        }
    }

    /// Waits, keeping the turn, until readiness arrives (then processes it and returns `true`)
    /// or `deadline` passes (`false`).
    pub(crate) fn wait_ready(&mut self, deadline: Instant) -> bool {
        let mut gate = lock(&self.entry.gate);
        loop {
            if gate.ready != 0 {
                let ready = std::mem::take(&mut gate.ready);
                drop(gate);
                self.process(ready);
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            gate = self.entry.sleep(gate, Some(deadline));
        }
    }
}

impl<S: Socket> std::ops::Deref for Turn<'_, S> {
    type Target = State<S>;

    fn deref(&self) -> &State<S> {
        self.state
            .as_ref()
            .expect("a turn holds its state until released")
    }
}

impl<S: Socket> std::ops::DerefMut for Turn<'_, S> {
    fn deref_mut(&mut self) -> &mut State<S> {
        self.state
            .as_mut()
            .expect("a turn holds its state until released")
    }
}

impl<S: Socket> Drop for Turn<'_, S> {
    fn drop(&mut self) {
        if self.state.is_some() {
            self.finish();
        }
    }
}
