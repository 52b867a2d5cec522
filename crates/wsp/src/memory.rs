//! An in-memory loopback transport (feature `testing`), written with this crate's own
//! base-provider API: the proof that the API expresses a real transport, and the base that
//! tests of providers and layered providers stack on.
//!
//! [`Memory`] is one loopback network. Its protocols ([`STREAM`], [`MESSAGE`],
//! [`STREAM_WITH_DISCONNECT_DATA`]) are connection-oriented: a socket binds an [`address`],
//! listens, and accepts the sockets that connect to it. Each direction of a connection has a
//! send queue on the sender's side (at most [`Config::send_buffer`] bytes: what
//! [`Socket::unsent`] counts) and a receive queue on the receiver's (at most
//! [`Config::window`] bytes: what [`Socket::unread`] counts); data moves from one to the other
//! whenever the window has room, in order, followed by the FIN (with its disconnect data) once
//! everything before it has moved. A byte stream splits and joins what it carries; a message
//! protocol moves whole messages (a message larger than the window moves when the receive queue
//! is empty) and a receive into a short buffer truncates it.
//!
//! A reset drops everything queued both ways; the peer learns of it at once. Data that arrives
//! for an endpoint that was closed resets the connection, as TCP does; a listener that closes
//! resets the connections it had not accepted.
//!
//! Notifications go out after the connection's lock is released, as the API asks: the peer
//! becomes readable when data or the FIN reaches its receive queue, the sender writable when
//! its send queue shrinks after a send found no room or left data unsent.

use crate::provider::{
    Address, Notifier, Protocol, Received, RecvCall, SendCall, Sent, Socket, SocketKind,
    Termination, Transport,
};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use winprov_core::sync::{Mutex, lock};
use winprov_core::{Completed, WsaError};

/// The byte-stream protocol, without disconnect data (TCP's kind): index 0.
pub const STREAM: usize = 0;
/// The message protocol, with disconnect data: index 1.
pub const MESSAGE: usize = 1;
/// A byte-stream protocol that carries disconnect data: index 2.
pub const STREAM_WITH_DISCONNECT_DATA: usize = 2;

/// The address of `port` on the loopback network.
pub fn address(port: u16) -> Address {
    Address::new(port.to_be_bytes())
}

/// The sizes of a connection's queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The receive queue of each side, in bytes.
    pub window: usize,
    /// The send queue of each side, in bytes.
    pub send_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window: 64 * 1024,
            send_buffer: 64 * 1024,
        }
    }
}

/// One loopback network; see the [module documentation](self).
#[derive(Debug, Default)]
pub struct Memory {
    net: Arc<Net>,
    config: Config,
}

impl Memory {
    /// A network with the default queue sizes (64 KiB each).
    pub fn new() -> Self {
        Self::default()
    }

    /// A network whose connections have these queue sizes.
    pub fn with_config(config: Config) -> Self {
        Self {
            net: Arc::default(),
            config,
        }
    }

    /// The queue sizes.
    pub fn config(&self) -> Config {
        self.config
    }
}

impl Transport for Memory {
    type Socket = MemorySocket;

    fn protocols(&self) -> Vec<Protocol> {
        vec![
            Protocol::stream("winprov memory stream"),
            Protocol::message("winprov memory messages").with_disconnect_data(),
            Protocol::stream("winprov memory stream with disconnect data").with_disconnect_data(),
        ]
    }

    fn open(&self, protocol: &Protocol, notifier: Notifier) -> Result<MemorySocket, WsaError> {
        Ok(MemorySocket {
            net: Arc::clone(&self.net),
            config: self.config,
            kind: protocol.kind,
            notifier,
            endpoint: Endpoint::Fresh,
        })
    }
}

#[derive(Debug, Default)]
struct Net {
    listeners: Mutex<HashMap<Address, Arc<Listener>>>,
}

#[derive(Debug)]
struct Listener {
    kind: SocketKind,
    state: Mutex<ListenerState>,
}

#[derive(Debug)]
struct ListenerState {
    pending: VecDeque<Arc<Link>>,
    backlog: usize,
    open: bool,
    notifier: Notifier,
}

/// What a notifier is told, once the locks are released.
#[derive(Clone, Copy)]
enum Note {
    Readable,
    Writable,
    Closed(Termination),
}

type Notes = Vec<(Notifier, Note)>;

fn fire(notes: Notes) {
    for (notifier, note) in notes {
        match note {
            Note::Readable => notifier.readable(),
            Note::Writable => notifier.writable(),
            Note::Closed(how) => notifier.closed(how),
        }
    }
}

#[derive(Debug, Default)]
enum Fin {
    #[default]
    None,
    /// Behind the data still in the send queue.
    Queued(Option<Vec<u8>>),
    /// Reached the receiver, with its disconnect data.
    Arrived(Option<Vec<u8>>),
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Flow {
    /// The sender's send queue.
    backlog: VecDeque<Vec<u8>>,
    backlog_bytes: usize,
    /// The receiver's receive queue; `offset` bytes of its front segment were read.
    queue: VecDeque<Vec<u8>>,
    queue_bytes: usize,
    offset: usize,
    fin: Fin,
    /// The sender wants to hear when the send queue shrinks (a send found no room, or left
    /// data unsent).
    watch: bool,
}

#[derive(Debug)]
struct LinkState {
    /// `flows[s]` carries side `s`'s data to side `1 - s`.
    flows: [Flow; 2],
    notifiers: [Notifier; 2],
    closed: [bool; 2],
    reset: bool,
}

#[derive(Debug)]
struct Link {
    kind: SocketKind,
    config: Config,
    state: Mutex<LinkState>,
}

impl Link {
    /// Moves what the window has room for from side `from`'s send queue to the other side's
    /// receive queue, then the FIN.
    fn pump(&self, state: &mut LinkState, from: usize, notes: &mut Notes) {
        let to = 1 - from;
        if state.reset {
            return;
        }
        let before = state.flows[from].backlog_bytes;
        let mut moved = false;
        while !state.flows[from].backlog.is_empty() {
            if state.closed[to] {
                // Data for an endpoint that is gone: reset, as TCP does.
                Self::reset(state, None, notes);
                return;
            }
            let window = self.config.window;
            let flow = &mut state.flows[from];
            let room = window.saturating_sub(flow.queue_bytes);
            let Some(front) = flow.backlog.front_mut() else {
                break;
            };
            let segment = match self.kind {
                SocketKind::Stream if room == 0 => break,
                SocketKind::Stream if front.len() > room => {
                    let rest = front.split_off(room);
                    std::mem::replace(front, rest)
                }
                SocketKind::Message if flow.queue_bytes > 0 && front.len() > room => break,
                _ => match flow.backlog.pop_front() {
                    Some(segment) => segment,
                    None => break,
                },
            };
            flow.backlog_bytes -= segment.len();
            flow.queue_bytes += segment.len();
            flow.queue.push_back(segment);
            moved = true;
        }
        let flow = &mut state.flows[from];
        if moved {
            notes.push((state.notifiers[to].clone(), Note::Readable));
        }
        if flow.backlog.is_empty()
            && matches!(flow.fin, Fin::Queued(_))
            && let Fin::Queued(data) = std::mem::take(&mut flow.fin)
        {
            flow.fin = Fin::Arrived(data);
            notes.push((
                state.notifiers[to].clone(),
                Note::Closed(Termination::Graceful),
            ));
        }
        if flow.backlog_bytes < before && flow.watch {
            flow.watch = flow.backlog_bytes > 0;
            notes.push((state.notifiers[from].clone(), Note::Writable));
        }
    }

    /// Resets the connection; `by` is the side that did (not told).
    fn reset(state: &mut LinkState, by: Option<usize>, notes: &mut Notes) {
        if state.reset {
            return;
        }
        state.reset = true;
        for flow in &mut state.flows {
            *flow = Flow::default();
        }
        for side in 0..2 {
            if Some(side) != by && !state.closed[side] {
                notes.push((
                    state.notifiers[side].clone(),
                    Note::Closed(Termination::Reset),
                ));
            }
        }
    }
}

#[derive(Debug)]
enum Endpoint {
    Fresh,
    Bound(Address),
    Listening(Address, Arc<Listener>),
    Connected(Arc<Link>, usize),
}

/// A socket of a [`Memory`] network.
#[derive(Debug)]
pub struct MemorySocket {
    net: Arc<Net>,
    config: Config,
    kind: SocketKind,
    notifier: Notifier,
    endpoint: Endpoint,
}

impl MemorySocket {
    fn link(&self) -> Option<(&Link, usize)> {
        match &self.endpoint {
            Endpoint::Connected(link, side) => Some((link, *side)),
            _ => None,
        }
    }

    /// Runs `f` on the connection's state, then sends its notes.
    fn with_link<R>(
        &self,
        f: impl FnOnce(&Link, &mut LinkState, usize, &mut Notes) -> R,
    ) -> Option<R> {
        let (link, side) = self.link()?;
        let mut notes = Vec::new();
        let result = {
            let mut state = lock(&link.state);
            f(link, &mut state, side, &mut notes)
        };
        fire(notes);
        Some(result)
    }

    fn send_now(&self, data: &[u8]) -> Sent {
        let send_buffer = self.config.send_buffer;
        let kind = self.kind;
        self.with_link(|link, state, side, notes| {
            if state.reset {
                return Sent::Failed(WsaError::WSAECONNRESET);
            }
            let flow = &mut state.flows[side];
            if !matches!(flow.fin, Fin::None) {
                return Sent::Failed(WsaError::WSAESHUTDOWN);
            }
            let room = send_buffer.saturating_sub(flow.backlog_bytes);
            let taken = match kind {
                SocketKind::Stream if data.is_empty() => return Sent::Accepted(0),
                SocketKind::Stream => data.len().min(room),
                SocketKind::Message if flow.backlog_bytes > 0 && data.len() > room => 0,
                SocketKind::Message => data.len(),
            };
            if taken == 0 && !data.is_empty() {
                flow.watch = true;
                return Sent::WouldBlock;
            }
            flow.backlog.push_back(data[..taken].to_vec());
            flow.backlog_bytes += taken;
            link.pump(state, side, notes);
            let flow = &mut state.flows[side];
            if flow.backlog_bytes > 0 {
                flow.watch = true;
            }
            Sent::Accepted(taken)
        })
        .unwrap_or(Sent::Failed(WsaError::WSAENOTCONN))
    }

    fn recv_now(&self, buffer: &mut [u8]) -> Received {
        let kind = self.kind;
        self.with_link(|link, state, side, notes| {
            if state.reset {
                return Received::End(Termination::Reset);
            }
            let from = 1 - side;
            let flow = &mut state.flows[from];
            if flow.queue.is_empty() {
                return match flow.fin {
                    Fin::Arrived(_) => Received::End(Termination::Graceful),
                    _ => Received::WouldBlock,
                };
            }
            let received = match kind {
                SocketKind::Stream => {
                    let mut written = 0;
                    while written < buffer.len() {
                        let Some(front) = flow.queue.front() else {
                            break;
                        };
                        let available = &front[flow.offset..];
                        let n = available.len().min(buffer.len() - written);
                        buffer[written..written + n].copy_from_slice(&available[..n]);
                        written += n;
                        flow.offset += n;
                        flow.queue_bytes -= n;
                        if flow.offset == front.len() {
                            flow.queue.pop_front();
                            flow.offset = 0;
                        }
                    }
                    Received::Data(written)
                }
                SocketKind::Message => match flow.queue.pop_front() {
                    None => Received::WouldBlock,
                    Some(message) => {
                        flow.queue_bytes -= message.len();
                        let n = message.len().min(buffer.len());
                        buffer[..n].copy_from_slice(&message[..n]);
                        match n < message.len() {
                            true => Received::Truncated,
                            false => Received::Data(n),
                        }
                    }
                },
            };
            // The window opened: more may move.
            link.pump(state, from, notes);
            received
        })
        .unwrap_or(Received::Failed(WsaError::WSAENOTCONN))
    }
}

impl Socket for MemorySocket {
    fn bind(&mut self, address: &Address) -> Result<(), WsaError> {
        if !matches!(self.endpoint, Endpoint::Fresh) {
            return Err(WsaError::WSAEINVAL);
        }
        if lock(&self.net.listeners).contains_key(address) {
            return Err(WsaError::WSAEADDRINUSE);
        }
        self.endpoint = Endpoint::Bound(address.clone());
        Ok(())
    }

    fn listen(&mut self, backlog: usize) -> Result<(), WsaError> {
        let backlog = backlog.clamp(1, 1024);
        match &self.endpoint {
            Endpoint::Listening(_, listener) => {
                lock(&listener.state).backlog = backlog;
                Ok(())
            }
            Endpoint::Bound(address) => {
                let address = address.clone();
                let listener = Arc::new(Listener {
                    kind: self.kind,
                    state: Mutex::new(ListenerState {
                        pending: VecDeque::new(),
                        backlog,
                        open: true,
                        notifier: self.notifier.clone(),
                    }),
                });
                {
                    let mut listeners = lock(&self.net.listeners);
                    if listeners.contains_key(&address) {
                        return Err(WsaError::WSAEADDRINUSE);
                    }
                    listeners.insert(address.clone(), Arc::clone(&listener));
                }
                self.endpoint = Endpoint::Listening(address, listener);
                Ok(())
            }
            _ => Err(WsaError::WSAEINVAL),
        }
    }

    fn connect(&mut self, address: &Address) -> Result<(), WsaError> {
        if !matches!(self.endpoint, Endpoint::Fresh | Endpoint::Bound(_)) {
            return Err(WsaError::WSAEISCONN);
        }
        let listener = lock(&self.net.listeners).get(address).cloned();
        let listener = listener.ok_or(WsaError::WSAECONNREFUSED)?;
        if listener.kind != self.kind {
            return Err(WsaError::WSAECONNREFUSED);
        }
        let link = Arc::new(Link {
            kind: self.kind,
            config: self.config,
            state: Mutex::new(LinkState {
                flows: Default::default(),
                notifiers: [self.notifier.clone(), Notifier::detached()],
                closed: [false; 2],
                reset: false,
            }),
        });
        let notifier = {
            let mut state = lock(&listener.state);
            if !state.open || state.pending.len() >= state.backlog {
                return Err(WsaError::WSAECONNREFUSED);
            }
            state.pending.push_back(Arc::clone(&link));
            state.notifier.clone()
        };
        self.endpoint = Endpoint::Connected(link, 0);
        notifier.readable();
        Ok(())
    }

    fn accept(&mut self, notifier: Notifier) -> Result<Option<Self>, WsaError> {
        let Endpoint::Listening(_, listener) = &self.endpoint else {
            return Err(WsaError::WSAEINVAL);
        };
        let Some(link) = lock(&listener.state).pending.pop_front() else {
            return Ok(None);
        };
        let mut notes = Vec::new();
        {
            let mut state = lock(&link.state);
            state.notifiers[1] = notifier.clone();
            if state.reset {
                notes.push((notifier.clone(), Note::Closed(Termination::Reset)));
            } else {
                let flow = &state.flows[0];
                if !flow.queue.is_empty() {
                    notes.push((notifier.clone(), Note::Readable));
                }
                if matches!(flow.fin, Fin::Arrived(_)) {
                    notes.push((notifier.clone(), Note::Closed(Termination::Graceful)));
                }
            }
        }
        fire(notes);
        Ok(Some(MemorySocket {
            net: Arc::clone(&self.net),
            config: self.config,
            kind: self.kind,
            notifier,
            endpoint: Endpoint::Connected(link, 1),
        }))
    }

    fn send<'call>(&mut self, call: SendCall<'call>) -> Completed<'call> {
        let sent = self.send_now(call.data());
        call.complete(sent)
    }

    fn recv<'call>(&mut self, mut call: RecvCall<'call>) -> Completed<'call> {
        let received = self.recv_now(call.buffer());
        call.complete(received)
    }

    fn unread(&self) -> usize {
        self.with_link(|_, state, side, _| state.flows[1 - side].queue_bytes)
            .unwrap_or(0)
    }

    fn unsent(&self) -> usize {
        self.with_link(|_, state, side, _| state.flows[side].backlog_bytes)
            .unwrap_or(0)
    }

    fn send_fin(&mut self, disconnect_data: Option<&[u8]>) -> Result<(), WsaError> {
        self.with_link(|link, state, side, notes| {
            if state.reset {
                return Err(WsaError::WSAECONNRESET);
            }
            if matches!(state.flows[side].fin, Fin::None) {
                state.flows[side].fin = Fin::Queued(disconnect_data.map(<[u8]>::to_vec));
                link.pump(state, side, notes);
            }
            Ok(())
        })
        .unwrap_or(Err(WsaError::WSAENOTCONN))
    }

    fn disconnect_data(&self) -> Option<Vec<u8>> {
        self.with_link(|_, state, side, _| match &state.flows[1 - side].fin {
            Fin::Arrived(data) => data.clone(),
            _ => None,
        })
        .flatten()
    }

    fn reset(&mut self) {
        self.with_link(|_, state, side, notes| Link::reset(state, Some(side), notes));
    }
}

impl Drop for MemorySocket {
    fn drop(&mut self) {
        match &self.endpoint {
            Endpoint::Connected(..) => {
                self.with_link(|link, state, side, notes| {
                    state.closed[side] = true;
                    state.notifiers[side] = Notifier::detached();
                    // What this side had not read is dropped; what the peer still sends resets.
                    let flow = &mut state.flows[1 - side];
                    flow.queue.clear();
                    flow.queue_bytes = 0;
                    flow.offset = 0;
                    link.pump(state, 1 - side, notes);
                });
            }
            Endpoint::Listening(address, listener) => {
                {
                    let mut listeners = lock(&self.net.listeners);
                    if listeners
                        .get(address)
                        .is_some_and(|current| Arc::ptr_eq(current, listener))
                    {
                        listeners.remove(address);
                    }
                }
                let pending = {
                    let mut state = lock(&listener.state);
                    state.open = false;
                    std::mem::take(&mut state.pending)
                };
                let mut notes = Vec::new();
                for link in pending {
                    let mut state = lock(&link.state);
                    state.closed[1] = true;
                    Link::reset(&mut state, Some(1), &mut notes);
                }
                fire(notes);
            }
            Endpoint::Fresh | Endpoint::Bound(_) => {}
        }
    }
}
