//! What the meter counts, and the one-line text form of it the log holds and `traffic-meter
//! show` reads back.
//!
//! # The log's lines
//!
//! One line per connection, written when its socket goes (closed, or dropped by the final
//! `WSPCleanup`), and a `totals` line whenever the process has no socket left:
//!
//! ```text
//! connection pid=4242 endpoint=192.0.2.7:443 sent=517 received=4096 local=shutdown peer=fin time=1718000000 exe=curl.exe
//! totals pid=4242 connections=1 sent=517 received=4096 graceful=1 abortive=0 peer-fin=1 peer-reset=0 time=1718000001 exe=curl.exe
//! ```
//!
//! Fields are `key=value`, separated by one space, in this order; `exe` is last and runs to the
//! end of the line (an executable's name may hold spaces). `time` is seconds since 1970 (UTC).
//! `endpoint` is `address:port` (`[v6]:port`) or `unknown`. `local` is how the application
//! ended the connection ([`LocalEnd`]), `peer` what the peer did ([`PeerEnd`]).

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `AF_INET` as a `SOCKADDR` carries it.
const AF_INET: u16 = 2;
/// `AF_INET6` on Windows (ws2def.h).
const AF_INET6: u16 = 23;

/// The remote end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// An IPv4 or IPv6 address and port.
    Ip(SocketAddr),
    /// An address the meter does not decode (another family, or none reported).
    Unknown,
}

impl Endpoint {
    /// Decodes a `SOCKADDR`'s bytes: `SOCKADDR_IN` (16 bytes: family, port in network order,
    /// address) or `SOCKADDR_IN6` (28 bytes: family, port, flow info, address, scope id; 24
    /// accepted). The family is read little-endian, as every Windows target stores it.
    /// Anything else, or too short, is [`Endpoint::Unknown`].
    pub fn from_sockaddr(bytes: &[u8]) -> Self {
        let family = match bytes.get(..2) {
            Some(&[a, b]) => u16::from_le_bytes([a, b]),
            _ => return Self::Unknown,
        };
        let port = |bytes: &[u8]| u16::from_be_bytes([bytes[2], bytes[3]]);
        match family {
            AF_INET => match bytes.get(4..8) {
                Some(&[a, b, c, d]) if bytes.len() >= 8 => Self::Ip(SocketAddr::new(
                    IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
                    port(bytes),
                )),
                _ => Self::Unknown,
            },
            AF_INET6 => match bytes.get(8..24).and_then(|a| <[u8; 16]>::try_from(a).ok()) {
                Some(address) => Self::Ip(SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::from(address)),
                    port(bytes),
                )),
                None => Self::Unknown,
            },
            _ => Self::Unknown,
        }
    }

    /// Reads the text form back (`None` for anything else).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "unknown" => Some(Self::Unknown),
            _ => text.parse().ok().map(Self::Ip),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(address) => address.fmt(f),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// How the application ended a connection: the first of these it did, except that an
/// abortive close wins over everything before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LocalEnd {
    /// Graceful: `shutdown(SD_SEND)` or `shutdown(SD_BOTH)` (a FIN after the data).
    Shutdown,
    /// Graceful: `WSASendDisconnect` (a FIN, with disconnect data where the protocol has it),
    /// or `DisconnectEx`.
    Disconnect,
    /// Graceful: `closesocket` without an abortive linger (the data still leaves, then a FIN).
    Close,
    /// Abortive: `closesocket` with `SO_LINGER {1, 0}` (a reset; unsent data is lost, the
    /// peer's receive fails with `WSAECONNRESET`).
    Abortive,
    /// Never closed: the process's final `WSACleanup` (or its exit) took the socket, which
    /// resets an open connection.
    Cleanup,
}

impl LocalEnd {
    /// Whether the application ended the connection gracefully.
    pub fn is_graceful(self) -> bool {
        matches!(self, Self::Shutdown | Self::Disconnect | Self::Close)
    }

    /// The word in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shutdown => "shutdown",
            Self::Disconnect => "disconnect",
            Self::Close => "close",
            Self::Abortive => "abortive",
            Self::Cleanup => "cleanup",
        }
    }

    /// Reads [`as_str`](Self::as_str) back.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Shutdown,
            Self::Disconnect,
            Self::Close,
            Self::Abortive,
            Self::Cleanup,
        ]
        .into_iter()
        .find(|end| end.as_str() == text)
    }
}

/// What the application learnt of the peer's end of the connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PeerEnd {
    /// Nothing: the application never read the end.
    #[default]
    Unseen,
    /// A graceful end: a receive returned 0 bytes (a byte stream) or `WSAEDISCON` (a message
    /// protocol).
    Fin,
    /// A reset: a send or receive failed with `WSAECONNRESET`.
    Reset,
}

impl PeerEnd {
    /// The word in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unseen => "unseen",
            Self::Fin => "fin",
            Self::Reset => "reset",
        }
    }

    /// Reads [`as_str`](Self::as_str) back.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Unseen, Self::Fin, Self::Reset]
            .into_iter()
            .find(|end| end.as_str() == text)
    }
}

/// One finished connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The remote end.
    pub endpoint: Endpoint,
    /// Bytes the application sent.
    pub sent: u64,
    /// Bytes the application received.
    pub received: u64,
    /// How the application ended it.
    pub local: LocalEnd,
    /// What the peer did.
    pub peer: PeerEnd,
}

/// Sums over connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Connections.
    pub connections: u64,
    /// Bytes sent.
    pub sent: u64,
    /// Bytes received.
    pub received: u64,
    /// Connections the application ended gracefully.
    pub graceful: u64,
    /// Connections the application ended abortively (or left to the final cleanup).
    pub abortive: u64,
    /// Connections whose peer's FIN the application read.
    pub peer_fin: u64,
    /// Connections the peer reset.
    pub peer_reset: u64,
}

impl Figures {
    /// Counts `connection` in.
    pub fn add(&mut self, connection: &Connection) {
        self.connections += 1;
        self.sent += connection.sent;
        self.received += connection.received;
        if connection.local.is_graceful() {
            self.graceful += 1;
        } else {
            self.abortive += 1;
        }
        match connection.peer {
            PeerEnd::Unseen => {}
            PeerEnd::Fin => self.peer_fin += 1,
            PeerEnd::Reset => self.peer_reset += 1,
        }
    }

    /// Adds `other` to these.
    pub fn merge(&mut self, other: &Figures) {
        self.connections += other.connections;
        self.sent += other.sent;
        self.received += other.received;
        self.graceful += other.graceful;
        self.abortive += other.abortive;
        self.peer_fin += other.peer_fin;
        self.peer_reset += other.peer_reset;
    }
}

/// The process a line came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessId {
    /// Its id.
    pub pid: u32,
    /// Its executable's file name.
    pub exe: String,
}

/// A line of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// A finished connection.
    Connection {
        /// The process.
        process: ProcessId,
        /// Seconds since 1970.
        time: u64,
        /// The connection.
        connection: Connection,
    },
    /// The process's figures so far, written when it had no socket left.
    Totals {
        /// The process.
        process: ProcessId,
        /// Seconds since 1970.
        time: u64,
        /// Every connection of the process so far.
        figures: Figures,
    },
}

impl Line {
    /// The line's text, with its `\n`.
    pub fn to_text(&self) -> String {
        match self {
            Self::Connection {
                process,
                time,
                connection: c,
            } => format!(
                "connection pid={} endpoint={} sent={} received={} local={} peer={} time={} exe={}\n",
                process.pid,
                c.endpoint,
                c.sent,
                c.received,
                c.local.as_str(),
                c.peer.as_str(),
                time,
                one_line(&process.exe),
            ),
            Self::Totals {
                process,
                time,
                figures: f,
            } => format!(
                "totals pid={} connections={} sent={} received={} graceful={} abortive={} peer-fin={} peer-reset={} time={} exe={}\n",
                process.pid,
                f.connections,
                f.sent,
                f.received,
                f.graceful,
                f.abortive,
                f.peer_fin,
                f.peer_reset,
                time,
                one_line(&process.exe),
            ),
        }
    }

    /// Reads a line (with or without its `\n`); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim_end_matches(['\r', '\n']);
        let (head, exe) = text.split_once(" exe=")?;
        let mut words = head.split(' ');
        let kind = words.next()?;
        let mut field = |key: &str| {
            words
                .next()
                .and_then(|word| word.strip_prefix(key))
                .and_then(|word| word.strip_prefix('='))
        };
        let number = |value: Option<&str>| value.and_then(|v| v.parse::<u64>().ok());
        let pid = field("pid")?.parse().ok()?;
        let line = match kind {
            "connection" => {
                let endpoint = Endpoint::parse(field("endpoint")?)?;
                let sent = number(field("sent"))?;
                let received = number(field("received"))?;
                let local = LocalEnd::parse(field("local")?)?;
                let peer = PeerEnd::parse(field("peer")?)?;
                let time = number(field("time"))?;
                Self::Connection {
                    process: ProcessId {
                        pid,
                        exe: exe.to_owned(),
                    },
                    time,
                    connection: Connection {
                        endpoint,
                        sent,
                        received,
                        local,
                        peer,
                    },
                }
            }
            "totals" => {
                let figures = Figures {
                    connections: number(field("connections"))?,
                    sent: number(field("sent"))?,
                    received: number(field("received"))?,
                    graceful: number(field("graceful"))?,
                    abortive: number(field("abortive"))?,
                    peer_fin: number(field("peer-fin"))?,
                    peer_reset: number(field("peer-reset"))?,
                };
                let time = number(field("time"))?;
                Self::Totals {
                    process: ProcessId {
                        pid,
                        exe: exe.to_owned(),
                    },
                    time,
                    figures,
                }
            }
            _ => return None,
        };
        words.next().is_none().then_some(line)
    }
}

/// An executable's name on one line.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// What `traffic-meter show` prints: the connection lines of some logs summed per process and
/// per endpoint, and each process's last totals line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Per process, from its connection lines.
    pub processes: BTreeMap<ProcessId, Figures>,
    /// Per endpoint, over every process.
    pub endpoints: BTreeMap<Endpoint, Figures>,
    /// Each process's latest totals line (by `time`, then position).
    pub totals: BTreeMap<ProcessId, Figures>,
    /// Lines that were not the meter's.
    pub unreadable: u64,
}

impl Summary {
    /// Adds the lines of `text` (one log file's content).
    pub fn add_text(&mut self, text: &str) {
        let mut latest: BTreeMap<ProcessId, u64> = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match Line::parse(line) {
                Some(Line::Connection {
                    process,
                    connection,
                    ..
                }) => {
                    self.endpoints
                        .entry(connection.endpoint)
                        .or_default()
                        .add(&connection);
                    self.processes.entry(process).or_default().add(&connection);
                }
                Some(Line::Totals {
                    process,
                    time,
                    figures,
                }) => {
                    if latest.get(&process).is_none_or(|&seen| time >= seen) {
                        latest.insert(process.clone(), time);
                        self.totals.insert(process, figures);
                    }
                }
                None => self.unreadable += 1,
            }
        }
    }

    /// Every process together.
    pub fn overall(&self) -> Figures {
        let mut all = Figures::default();
        for figures in self.processes.values() {
            all.merge(figures);
        }
        all
    }
}
