//! The layer: [`TrafficMeter`], a non-IFS [`Layer`] that passes every call down unchanged and
//! counts what the application did with its connections.
//!
//! Per socket ([`Metered`], made by [`Layer::open`]) it keeps the remote endpoint (decoded from
//! `connect`'s address — `ConnectEx`'s too — or `accept`'s peer; unknown for an `AcceptEx`
//! socket), the bytes each hook's outcome reports
//! (`Transfer::Done { bytes }`; a request that went pending below is counted by
//! [`Layer::completed`]), the linger option as `set_sock_opt` set it, how the application ended
//! the connection and what the peer did. When the socket goes — closed, or dropped by the final
//! `WSPCleanup` — its figures join the process's ([`TrafficMeter::figures`]) and one line goes
//! to the log ([`crate::log`]). When the process has no socket left, a `totals` line follows.
//!
//! Every hook passes its call first and looks at the outcome after: the meter never refuses
//! nor changes anything, and a hook does no more than a few atomic adds or one uncontended
//! lock.

#![forbid(unsafe_code)]

use crate::figures::{Connection, Endpoint, Figures, Line, LocalEnd, PeerEnd, ProcessId};
use crate::identity::{DESCRIPTION, PROVIDER_ID};
use crate::log::{Log, LogConfig};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use winprov_wsp::GUID;
use winprov_wsp::abi::{Linger, SockOpt, Transfer};
use winprov_wsp::layer::{
    Call, Closing, Completion, Connecting, Disconnecting, NonIfs, Opened, Origin, Passed,
    Receiving, Sending, SettingOption, ShuttingDown,
};
use winprov_wsp::{Layer, WsaError};

/// `MSG_PEEK`: the bytes stay queued; they are counted when they are read.
const MSG_PEEK: u32 = 0x2;

/// The layer. See the [module documentation](self).
#[derive(Debug)]
pub struct TrafficMeter {
    process: Arc<Process>,
}

/// What the process's sockets share.
#[derive(Debug)]
struct Process {
    id: ProcessId,
    log: Option<Log>,
    figures: Mutex<ProcessFigures>,
    /// Sockets alive.
    live: AtomicUsize,
    /// Whether a connection was counted since the last totals line.
    unreported: AtomicBool,
}

/// The figures of the process: its totals and per endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessFigures {
    /// Every connection.
    pub totals: Figures,
    /// Per remote endpoint.
    pub endpoints: HashMap<Endpoint, Figures>,
}

/// A socket of the layer.
#[derive(Debug)]
pub struct Metered {
    process: Arc<Process>,
    sent: AtomicU64,
    received: AtomicU64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The remote end, once connected (or accepted).
    endpoint: Option<Endpoint>,
    linger: Linger,
    local: Option<LocalEnd>,
    peer: PeerEnd,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TrafficMeter {
    /// The layer the DLL serves: its log as the environment says
    /// ([`LogConfig::from_environment`]).
    pub fn from_environment() -> Self {
        Self::new(LogConfig::from_environment())
    }

    /// A meter writing to `log` (none: figures in memory only).
    pub fn new(log: Option<LogConfig>) -> Self {
        let exe = std::env::current_exe()
            .ok()
            .and_then(|path| path.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            process: Arc::new(Process {
                log: log.map(|config| Log::new(config, &exe)),
                id: ProcessId {
                    pid: std::process::id(),
                    exe,
                },
                figures: Mutex::new(ProcessFigures::default()),
                live: AtomicUsize::new(0),
                unreported: AtomicBool::new(false),
            }),
        }
    }

    /// The figures of the connections finished so far.
    pub fn figures(&self) -> ProcessFigures {
        lock(&self.process.figures).clone()
    }

    /// The log, if any.
    pub fn log(&self) -> Option<&Log> {
        self.process.log.as_ref()
    }

    /// Sockets the layer serves now.
    pub fn live(&self) -> usize {
        self.process.live.load(Ordering::Acquire)
    }

    /// A socket's state, as [`Layer::open`] makes it: `endpoint` when it is connected already
    /// (accepted).
    fn socket(&self, endpoint: Option<Endpoint>) -> Metered {
        self.process.live.fetch_add(1, Ordering::AcqRel);
        Metered {
            process: Arc::clone(&self.process),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            state: Mutex::new(State {
                endpoint,
                ..State::default()
            }),
        }
    }
}

impl Metered {
    fn peer(&self, peer: PeerEnd) {
        let mut state = lock(&self.state);
        if state.peer == PeerEnd::Unseen {
            state.peer = peer;
        }
    }

    fn ended(&self, local: LocalEnd) {
        lock(&self.state).local.get_or_insert(local);
    }

    /// An error a send or receive failed with: a reset is the peer's.
    fn failed(&self, error: WsaError) {
        if error == WsaError::WSAECONNRESET {
            self.peer(PeerEnd::Reset);
        }
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        let state = std::mem::take(self.state.get_mut().unwrap_or_else(|p| p.into_inner()));
        let process = &self.process;
        if let Some(endpoint) = state.endpoint {
            let connection = Connection {
                endpoint,
                sent: *self.sent.get_mut(),
                received: *self.received.get_mut(),
                local: state.local.unwrap_or(LocalEnd::Cleanup),
                peer: state.peer,
            };
            {
                let mut figures = lock(&process.figures);
                figures.totals.add(&connection);
                figures
                    .endpoints
                    .entry(endpoint)
                    .or_default()
                    .add(&connection);
            }
            process.unreported.store(true, Ordering::Release);
            if let Some(log) = &process.log {
                let line = Line::Connection {
                    process: process.id.clone(),
                    time: now(),
                    connection,
                };
                log.append(&line.to_text());
            }
        }
        let last = process.live.fetch_sub(1, Ordering::AcqRel) == 1;
        if last && process.unreported.swap(false, Ordering::AcqRel) {
            // The trait has no final-cleanup hook: a process with no socket left writes its
            // totals so far (its final cleanup drops every socket, so this runs then too).
            if let Some(log) = &process.log {
                let figures = lock(&process.figures).totals;
                let line = Line::Totals {
                    process: process.id.clone(),
                    time: now(),
                    figures,
                };
                log.append(&line.to_text());
            }
        }
    }
}

impl Layer for TrafficMeter {
    type Handles = NonIfs;
    type Socket = Metered;
    const PROVIDER_ID: GUID = PROVIDER_ID;
    const DESCRIPTION: &'static str = DESCRIPTION;

    fn open(&self, socket: &Opened<'_>) -> Metered {
        let endpoint = match socket.origin() {
            Origin::Accepted { peer } => Some(Endpoint::from_sockaddr(peer)),
            _ => None,
        };
        self.socket(endpoint)
    }

    fn connect<'c>(&self, socket: &Metered, call: Call<'c, Connecting<'c>, ()>) -> Passed<'c, ()> {
        let endpoint = Endpoint::from_sockaddr(call.args().address);
        let passed = call.pass();
        // A non-blocking connect is under way: the connection is counted (with what it moves).
        if matches!(passed.outcome(), Ok(()) | Err(WsaError::WSAEWOULDBLOCK)) {
            lock(&socket.state).endpoint = Some(endpoint);
        }
        passed
    }

    fn send<'c>(
        &self,
        socket: &Metered,
        call: Call<'c, Sending<'c>, Transfer>,
    ) -> Passed<'c, Transfer> {
        let passed = call.pass();
        match passed.outcome() {
            Ok(Transfer::Done { bytes, .. }) => {
                socket.sent.fetch_add(u64::from(*bytes), Ordering::Relaxed);
            }
            Ok(Transfer::Pending) => {} // counted by `completed`
            Err(error) => socket.failed(error),
        }
        passed
    }

    fn recv<'c>(
        &self,
        socket: &Metered,
        call: Call<'c, Receiving, Transfer>,
    ) -> Passed<'c, Transfer> {
        let (capacity, peek) = (call.args().capacity(), call.args().flags() & MSG_PEEK != 0);
        let passed = call.pass();
        match passed.outcome() {
            Ok(Transfer::Done { bytes: 0, .. }) if capacity > 0 && !peek => {
                socket.peer(PeerEnd::Fin);
            }
            Ok(Transfer::Done { bytes, .. }) if !peek => {
                socket
                    .received
                    .fetch_add(u64::from(*bytes), Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(WsaError::WSAEDISCON) => socket.peer(PeerEnd::Fin),
            Err(error) => socket.failed(error),
        }
        passed
    }

    fn completed(&self, socket: &Metered, completion: Completion) {
        // A 0-byte completion is not read as the peer's FIN: the request's capacity is not
        // known here, and 0-byte receives are a common readiness probe.
        match completion {
            Completion::Sent { outcome: Ok(bytes) } => {
                socket.sent.fetch_add(u64::from(bytes), Ordering::Relaxed);
            }
            Completion::Received {
                outcome: Ok((bytes, _)),
            } => {
                socket
                    .received
                    .fetch_add(u64::from(bytes), Ordering::Relaxed);
            }
            Completion::Sent { outcome: Err(e) } | Completion::Received { outcome: Err(e) } => {
                socket.failed(e);
            }
            // `AcceptEx` into this socket: a connection (its peer is not told), and its first
            // data.
            Completion::Accepted { outcome: Ok(bytes) } => {
                lock(&socket.state)
                    .endpoint
                    .get_or_insert(Endpoint::Unknown);
                socket
                    .received
                    .fetch_add(u64::from(bytes), Ordering::Relaxed);
            }
            // A `ConnectEx` (without data) that failed made no connection.
            Completion::Connected { outcome: Err(_) } => lock(&socket.state).endpoint = None,
            Completion::Disconnected { outcome: Ok(()) } => socket.ended(LocalEnd::Disconnect),
            _ => {}
        }
    }

    fn shutdown<'c>(&self, socket: &Metered, call: Call<'c, ShuttingDown, ()>) -> Passed<'c, ()> {
        let sends_fin = call.args().how.shuts_send();
        let passed = call.pass();
        if sends_fin && passed.outcome().is_ok() {
            socket.ended(LocalEnd::Shutdown);
        }
        passed
    }

    fn send_disconnect<'c>(
        &self,
        socket: &Metered,
        call: Call<'c, Disconnecting<'c>, ()>,
    ) -> Passed<'c, ()> {
        let passed = call.pass();
        if passed.outcome().is_ok() {
            socket.ended(LocalEnd::Disconnect);
        }
        passed
    }

    fn set_sock_opt<'c>(
        &self,
        socket: &Metered,
        call: Call<'c, SettingOption<'c>, ()>,
    ) -> Passed<'c, ()> {
        let option = *call.args().option();
        let passed = call.pass();
        if passed.outcome().is_ok() {
            let mut state = lock(&socket.state);
            match option {
                SockOpt::Linger(linger) => state.linger = linger,
                SockOpt::DontLinger(dont) => state.linger.on = !dont,
                _ => {}
            }
        }
        passed
    }

    fn close<'c>(&self, socket: &Metered, call: Call<'c, Closing, ()>) -> Passed<'c, ()> {
        let passed = call.pass();
        // A close that failed (a non-blocking one that would have to linger) changed nothing.
        if passed.outcome().is_ok() {
            let mut state = lock(&socket.state);
            if state.linger
                == (Linger {
                    on: true,
                    seconds: 0,
                })
            {
                state.local = Some(LocalEnd::Abortive);
            } else {
                state.local.get_or_insert(LocalEnd::Close);
            }
        }
        passed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> TrafficMeter {
        TrafficMeter::new(None)
    }

    #[test]
    fn completions_count_bytes_and_a_reset() {
        let meter = meter();
        let endpoint = Endpoint::parse("192.0.2.1:80").unwrap();
        let socket = meter.socket(Some(endpoint));
        meter.completed(&socket, Completion::Sent { outcome: Ok(7) });
        meter.completed(
            &socket,
            Completion::Received {
                outcome: Ok((5, 0)),
            },
        );
        meter.completed(
            &socket,
            Completion::Received {
                outcome: Ok((0, 0)),
            },
        );
        meter.completed(
            &socket,
            Completion::Received {
                outcome: Err(WsaError::WSAECONNRESET),
            },
        );
        assert_eq!(meter.live(), 1);
        drop(socket);
        assert_eq!(meter.live(), 0);
        let figures = meter.figures();
        let expected = Figures {
            connections: 1,
            sent: 7,
            received: 5,
            abortive: 1, // never closed: taken by the cleanup
            peer_reset: 1,
            ..Figures::default()
        };
        assert_eq!(figures.totals, expected);
        assert_eq!(figures.endpoints[&endpoint], expected);
    }

    #[test]
    fn extension_functions_count_an_accepted_connection_its_first_data_and_a_disconnect() {
        let meter = meter();
        let accepted = meter.socket(None);
        meter.completed(&accepted, Completion::Accepted { outcome: Ok(5) });
        meter.completed(&accepted, Completion::Disconnected { outcome: Ok(()) });
        drop(accepted);
        let refused = meter.socket(Some(Endpoint::parse("192.0.2.1:80").unwrap()));
        meter.completed(
            &refused,
            Completion::Connected {
                outcome: Err(WsaError::WSAECONNREFUSED),
            },
        );
        drop(refused);
        let expected = Figures {
            connections: 1,
            received: 5,
            graceful: 1, // the DisconnectEx
            ..Figures::default()
        };
        let figures = meter.figures();
        assert_eq!(figures.totals, expected);
        assert_eq!(figures.endpoints[&Endpoint::Unknown], expected);
        assert_eq!(figures.endpoints.len(), 1, "the refused connect is none");
    }

    #[test]
    fn a_socket_never_connected_is_no_connection() {
        let meter = meter();
        drop(meter.socket(None));
        assert_eq!(meter.figures(), ProcessFigures::default());
    }
}
