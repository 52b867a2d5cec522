//! The meter stacked on a base provider, both through their real `WSPStartup`, as
//! `crates/wsp/tests/layer.rs` stacks its layers: the ws2_32 simulator
//! (`testing::winsock`) starts the layer with a chain entry [layer, base]; the layer finds the
//! base (`abi::Base` over the in-memory transport) in an in-process catalog and passes every
//! call down. The tests check what the application gets (unchanged), what the meter counted
//! and what it wrote to its log.
//!
//! The simulated ws2_32 is process-wide and the layer's state lives as long as the test
//! binary: the tests take turns (`Winsock::start`) and each uses endpoints of its own (the
//! accepted side's peer is `unknown`: the base reports no address for it).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use traffic_meter::TrafficMeter;
use traffic_meter::figures::{Connection, Endpoint, Figures, Line, LocalEnd, PeerEnd};
use traffic_meter::identity::PROVIDER_ID;
use traffic_meter::log::LogConfig;
use winprov_wsp::WsaError;
use winprov_wsp::abi::{Linger, Socket};
use winprov_wsp::testing::stack::{self, Answer};
use winprov_wsp::testing::winsock::{
    self, WSAID_ACCEPTEX, WSAID_CONNECTEX, WSAID_DISCONNECTEX, Winsock,
};

const AF: i32 = 2;
const SOCK_STREAM: i32 = 1;
const SD_SEND: i32 = 1;

// The meter, as `export_provider!(layer: …)` serves it, but over the in-process catalog of
// `testing::stack` and with its log in a directory of the test's own.

/// Called once, when the layer is made: an empty directory under the target's.
fn log_config() -> LogConfig {
    let directory = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("traffic-meter-stack");
    let _ = std::fs::remove_dir_all(&directory);
    LogConfig {
        directory,
        limit: 1 << 20,
    }
}

winprov_wsp::layer_process!(mod stacked: TrafficMeter = || TrafficMeter::new(Some(log_config())));

fn start() -> Winsock {
    Winsock::start(stacked::startup, stack::chain_entry(PROVIDER_ID, 0))
        .expect("the layer's WSPStartup")
}

fn meter() -> &'static TrafficMeter {
    stacked::layer()
}

/// The log's lines so far.
fn log_lines() -> Vec<Line> {
    let path = meter().log().expect("a log").path().to_path_buf();
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| Line::parse(line).unwrap_or_else(|| panic!("unreadable line {line:?}")))
        .collect()
}

/// The connection lines added since `before` lines.
fn connections_since(before: usize) -> Vec<Connection> {
    log_lines()
        .into_iter()
        .skip(before)
        .filter_map(|line| match line {
            Line::Connection { connection, .. } => Some(connection),
            Line::Totals { .. } => None,
        })
        .collect()
}

/// `SOCKADDR_IN` (or `SOCKADDR_IN6`) bytes for `address`.
fn sockaddr(address: &str) -> (Vec<u8>, Endpoint) {
    let parsed: SocketAddr = address.parse().unwrap();
    let mut bytes = Vec::new();
    match parsed {
        SocketAddr::V4(v4) => {
            bytes.extend(2u16.to_le_bytes());
            bytes.extend(v4.port().to_be_bytes());
            bytes.extend(v4.ip().octets());
            bytes.extend([0; 8]);
        }
        SocketAddr::V6(v6) => {
            bytes.extend(23u16.to_le_bytes());
            bytes.extend(v6.port().to_be_bytes());
            bytes.extend(0u32.to_be_bytes());
            bytes.extend(v6.ip().octets());
            bytes.extend(0u32.to_le_bytes());
        }
    }
    (bytes, Endpoint::Ip(parsed))
}

/// A listener at `address`.
fn listen(ws: &Winsock, name: &[u8]) -> Socket {
    let listener = ws.socket(AF, SOCK_STREAM, 6).expect("socket");
    ws.bind(listener, name).expect("bind");
    ws.listen(listener, 4).expect("listen");
    listener
}

/// A connection to `listener` at `name`: (client, server).
fn connect(ws: &Winsock, listener: Socket, name: &[u8]) -> (Socket, Socket) {
    let client = ws.socket(AF, SOCK_STREAM, 6).expect("socket");
    ws.connect(client, name).expect("connect");
    let (server, _) = ws.accept(listener).expect("accept");
    (client, server)
}

/// Two connected sockets through a listener at `address`, closed again.
fn pair(ws: &Winsock, address: &str) -> (Socket, Socket, Endpoint) {
    let (name, endpoint) = sockaddr(address);
    let listener = listen(ws, &name);
    let (client, server) = connect(ws, listener, &name);
    ws.close(listener).expect("close the listener");
    (client, server, endpoint)
}

/// Reads until `want` bytes came.
fn read_exactly(ws: &Winsock, socket: Socket, want: usize) -> Vec<u8> {
    let mut data = Vec::new();
    while data.len() < want {
        let chunk = ws.recv(socket, 7).expect("recv");
        assert!(!chunk.is_empty(), "ended early");
        data.extend(chunk);
    }
    data
}

#[test]
fn the_figures_equal_the_bytes_the_application_moved_both_ways() {
    let ws = start();
    let before = log_lines().len();
    let unknown_before = meter().figures().endpoints.get(&Endpoint::Unknown).copied();
    let (client, server, endpoint) = pair(&ws, "192.0.2.10:10001");
    let (mut sent, mut received) = (0u64, 0u64);
    for (i, size) in [1usize, 5, 100, 4096, 3].into_iter().enumerate() {
        let data = vec![i as u8; size];
        sent += u64::from(ws.send(client, &data).unwrap());
        let got = read_exactly(&ws, server, size);
        assert_eq!(got, data, "unchanged by the layer");
        let back = vec![0xa0 | i as u8; size * 2];
        assert_eq!(ws.send(server, &back).unwrap() as usize, back.len());
        received += read_exactly(&ws, client, back.len()).len() as u64;
    }
    // The documented graceful sequence: the client's FIN, the server drains and answers with
    // its own, then both close.
    ws.shutdown(client, SD_SEND).unwrap();
    assert_eq!(
        ws.recv(server, 64).unwrap(),
        b"",
        "the FIN reads as 0 bytes"
    );
    assert_eq!(ws.send(server, b"last").unwrap(), 4);
    ws.shutdown(server, SD_SEND).unwrap();
    assert_eq!(ws.recv(client, 64).unwrap(), b"last");
    received += 4;
    assert_eq!(ws.recv(client, 64).unwrap(), b"");
    ws.close(client).unwrap();
    ws.close(server).unwrap();

    let client_end = Connection {
        endpoint,
        sent,
        received,
        local: LocalEnd::Shutdown,
        peer: PeerEnd::Fin,
    };
    let server_end = Connection {
        endpoint: Endpoint::Unknown,
        sent: received,
        received: sent,
        local: LocalEnd::Shutdown,
        peer: PeerEnd::Fin,
    };
    assert_eq!(connections_since(before), [client_end, server_end]);
    let figures = meter().figures();
    let mut expected = Figures::default();
    expected.add(&client_end);
    assert_eq!(figures.endpoints[&endpoint], expected);
    let mut unknown = unknown_before.unwrap_or_default();
    unknown.add(&server_end);
    assert_eq!(figures.endpoints[&Endpoint::Unknown], unknown);
    assert_eq!(stacked::PROCESS.dispatch().unwrap().sockets(), 0);
    ws.finish();
}

#[test]
fn an_abortive_close_is_recorded_and_the_peer_sees_the_reset() {
    let ws = start();
    let before = log_lines().len();
    let (client, server, endpoint) = pair(&ws, "192.0.2.11:10002");
    ws.send(client, b"sent").unwrap();
    assert_eq!(ws.recv(server, 64).unwrap(), b"sent");
    ws.set_linger(
        client,
        Linger {
            on: true,
            seconds: 0,
        },
    )
    .unwrap();
    ws.send(client, b"lost").unwrap();
    ws.close(client).unwrap();
    assert_eq!(ws.recv(server, 64), Err(WsaError::WSAECONNRESET));
    ws.close(server).unwrap();
    assert_eq!(
        connections_since(before),
        [
            Connection {
                endpoint,
                sent: 8,
                received: 0,
                local: LocalEnd::Abortive,
                peer: PeerEnd::Unseen,
            },
            Connection {
                endpoint: Endpoint::Unknown,
                sent: 0,
                received: 4,
                local: LocalEnd::Close,
                peer: PeerEnd::Reset,
            },
        ]
    );
    let figures = meter().figures().endpoints[&endpoint];
    assert_eq!((figures.graceful, figures.abortive), (0, 1));
    ws.finish();
}

#[test]
fn a_linger_turned_off_again_closes_gracefully() {
    let ws = start();
    let before = log_lines().len();
    let (client, server, endpoint) = pair(&ws, "192.0.2.12:10003");
    ws.set_linger(
        client,
        Linger {
            on: true,
            seconds: 0,
        },
    )
    .unwrap();
    ws.set_dont_linger(client, true).unwrap();
    ws.send(client, b"kept").unwrap();
    ws.close(client).unwrap();
    assert_eq!(
        ws.recv(server, 64).unwrap(),
        b"kept",
        "the data still leaves"
    );
    assert_eq!(ws.recv(server, 64).unwrap(), b"", "then the FIN");
    ws.close(server).unwrap();
    let ends: Vec<(Endpoint, LocalEnd, PeerEnd)> = connections_since(before)
        .into_iter()
        .map(|c| (c.endpoint, c.local, c.peer))
        .collect();
    assert_eq!(
        ends,
        [
            (endpoint, LocalEnd::Close, PeerEnd::Unseen),
            (Endpoint::Unknown, LocalEnd::Close, PeerEnd::Fin)
        ]
    );
    ws.finish();
}

#[test]
fn send_disconnect_is_a_graceful_end() {
    let ws = start();
    let before = log_lines().len();
    let (client, server, endpoint) = pair(&ws, "192.0.2.13:10004");
    ws.send(client, b"bye").unwrap();
    ws.send_disconnect(client, None).unwrap();
    assert_eq!(ws.send(client, b"more"), Err(WsaError::WSAESHUTDOWN));
    assert_eq!(ws.recv(server, 64).unwrap(), b"bye");
    assert_eq!(ws.recv(server, 64).unwrap(), b"");
    ws.close(server).unwrap();
    ws.close(client).unwrap();
    assert_eq!(
        connections_since(before),
        [
            Connection {
                endpoint: Endpoint::Unknown,
                sent: 0,
                received: 3,
                local: LocalEnd::Close,
                peer: PeerEnd::Fin,
            },
            Connection {
                endpoint,
                sent: 3,
                received: 0,
                local: LocalEnd::Disconnect,
                peer: PeerEnd::Unseen,
            },
        ]
    );
    ws.finish();
}

#[test]
fn connect_ex_data_accept_ex_data_and_disconnect_ex_are_counted() {
    let ws = start();
    let before = log_lines().len();
    let (name, endpoint) = sockaddr("192.0.2.14:10005");
    let listener = listen(&ws, &name);
    let client = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let connect_ex = ws.extension_function(client, WSAID_CONNECTEX).unwrap();
    // Pending below: counted when it completes.
    stack::answer_extensions(Answer::Pending);
    let connecting = ws
        .connect_ex(connect_ex, client, &name, b"hello", winsock::Via::Event)
        .unwrap();
    assert!(connecting.is_pending());
    assert_eq!(stack::release(), 1);
    assert_eq!(
        ws.get_overlapped_result(client, connecting.op, true)
            .unwrap()
            .bytes,
        5
    );
    stack::answer_extensions(Answer::AtOnce);
    let accept = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let accept_ex = ws.extension_function(listener, WSAID_ACCEPTEX).unwrap();
    let accepting = ws
        .accept_ex(accept_ex, listener, accept, 5, winsock::Via::Event)
        .unwrap();
    assert_eq!(ws.received(accepting.op), b"hello");
    let disconnect_ex = ws.extension_function(client, WSAID_DISCONNECTEX).unwrap();
    assert_eq!(ws.disconnect_ex(disconnect_ex, client, 0, None), Ok(None));
    ws.forget(connecting.op);
    ws.forget(accepting.op);
    for socket in [listener, accept, client] {
        ws.close(socket).unwrap();
    }
    assert_eq!(
        connections_since(before),
        [
            Connection {
                endpoint: Endpoint::Unknown,
                sent: 0,
                received: 5,
                local: LocalEnd::Close,
                peer: PeerEnd::Unseen,
            },
            Connection {
                endpoint,
                sent: 5,
                received: 0,
                local: LocalEnd::Disconnect,
                peer: PeerEnd::Unseen,
            },
        ]
    );
    ws.finish();
}

#[test]
fn connections_are_grouped_per_endpoint_ipv4_and_ipv6() {
    let ws = start();
    let (a_name, a) = sockaddr("198.51.100.1:10005");
    let (b_name, b) = sockaddr("[2001:db8::7]:10006");
    let a_listener = listen(&ws, &a_name);
    let b_listener = listen(&ws, &b_name);
    let mut sockets = Vec::new();
    for (listener, name, bytes) in [
        (a_listener, &a_name, 10),
        (a_listener, &a_name, 20),
        (b_listener, &b_name, 30),
    ] {
        let (client, server) = connect(&ws, listener, name);
        ws.send(client, &vec![1; bytes]).unwrap();
        read_exactly(&ws, server, bytes);
        sockets.extend([client, server]);
    }
    for socket in sockets.into_iter().chain([a_listener, b_listener]) {
        ws.close(socket).unwrap();
    }
    let figures = meter().figures();
    let (fa, fb) = (figures.endpoints[&a], figures.endpoints[&b]);
    assert_eq!((fa.connections, fa.sent, fa.graceful), (2, 30, 2));
    assert_eq!((fb.connections, fb.sent, fb.graceful), (1, 30, 1));
    ws.finish();
}

#[test]
fn totals_follow_the_last_socket_and_the_final_cleanup_takes_what_is_left() {
    let ws = start();
    let before = log_lines().len();
    let (client, server, endpoint) = pair(&ws, "192.0.2.14:10007");
    ws.send(client, b"left open").unwrap();
    // No close: the final cleanup drops both sockets.
    let _ = server;
    ws.finish();
    assert_eq!(meter().live(), 0);
    let lines: Vec<Line> = log_lines().into_iter().skip(before).collect();
    let cleaned: Vec<Connection> = lines
        .iter()
        .filter_map(|line| match line {
            Line::Connection { connection, .. } => Some(*connection),
            _ => None,
        })
        .collect();
    assert_eq!(cleaned.len(), 2);
    assert!(cleaned.iter().all(|c| c.local == LocalEnd::Cleanup));
    assert!(
        cleaned
            .iter()
            .any(|c| c.endpoint == endpoint && c.sent == 9)
    );
    let Some(Line::Totals {
        process, figures, ..
    }) = lines.last()
    else {
        panic!("a totals line last: {lines:?}");
    };
    assert_eq!(process.pid, std::process::id());
    assert_eq!(
        *figures,
        meter().figures().totals,
        "the process's totals so far"
    );
}
