//! The documented connection shutdown ("Graceful Shutdown, Linger Options, and Socket
//! Closure"; the WSP "Connection Shutdown" page) played end to end over the in-memory
//! transport: A shutdown(SD_SEND) → B gets FD_CLOSE, drains, sends the rest,
//! shutdown(SD_SEND) → A gets FD_CLOSE → both close. Then the same exchange with disconnect
//! data, as the page's client/server table does it (the client's transaction count out, the
//! server's grand total back), and through the abortive and the lingering closes. The host
//! simulator checks every step as well (FD_CLOSE once and never after a close, nothing after
//! the end of a connection, no completion after a close …).

use std::time::{Duration, Instant};
use winprov_wsp::memory::{Config, MESSAGE, Memory, STREAM, STREAM_WITH_DISCONNECT_DATA};
use winprov_wsp::testing::Host;
use winprov_wsp::{Linger, NetworkEvents, SocketHandle, WsaError};

const SD_SEND: i32 = 1;

/// The events a socket received, without FD_WRITE (which every connected socket gets).
fn events(host: &Host<Memory>, socket: SocketHandle) -> Vec<(NetworkEvents, Option<WsaError>)> {
    host.events(socket)
        .into_iter()
        .filter(|(event, _)| *event != NetworkEvents::WRITE && *event != NetworkEvents::CONNECT)
        .collect()
}

/// Reads until the end of the connection: what it read, and how the end read (`Ok(())` for 0
/// bytes on a byte stream, `Err(WSAEDISCON)` on a message socket, `Err(WSAECONNRESET)` …). The
/// scenarios send no zero-length message, nor messages longer than 64 bytes.
fn drain(host: &Host<Memory>, socket: SocketHandle) -> (Vec<u8>, Result<(), WsaError>) {
    let mut all = Vec::new();
    loop {
        match host.recv(socket, 64) {
            Ok(read) if read.bytes == 0 => return (all, Ok(())),
            Ok(read) => all.extend_from_slice(&read.data),
            Err(error) => return (all, Err(error)),
        }
    }
}

/// The documented sequence between connected sockets `a` and `b`, up to both closes.
fn graceful_sequence(host: &Host<Memory>, a: SocketHandle, b: SocketHandle) {
    host.send(a, b"request").unwrap();
    // A: shutdown(SD_SEND).
    host.shutdown(a, SD_SEND).unwrap();
    // B gets FD_CLOSE (after FD_READ), drains: the data, then the end.
    assert_eq!(
        events(host, b),
        [(NetworkEvents::READ, None), (NetworkEvents::CLOSE, None)]
    );
    assert_eq!(drain(host, b), (b"request".to_vec(), Ok(())));
    // B sends the rest, shutdown(SD_SEND).
    host.send(b, b"the rest").unwrap();
    assert_eq!(events(host, a), [(NetworkEvents::READ, None)]);
    host.shutdown(b, SD_SEND).unwrap();
    // A gets FD_CLOSE, reads the rest and the end.
    assert_eq!(
        events(host, a),
        [(NetworkEvents::READ, None), (NetworkEvents::CLOSE, None)]
    );
    assert_eq!(drain(host, a), (b"the rest".to_vec(), Ok(())));
    // Both close; neither hears anything more.
    host.close(a).unwrap();
    host.close(b).unwrap();
    assert_eq!(events(host, a).len(), 2);
    assert_eq!(events(host, b).len(), 2);
}

#[test]
fn graceful_shutdown_without_disconnect_data() {
    let host = Host::new(Memory::new());
    let (a, b) = host.pair(STREAM);
    graceful_sequence(&host, a, b);
    host.finish();
}

/// The page's table: (1) the client's WSPSendDisconnect with its transaction count; (2) the
/// server's FD_CLOSE, or a receive of 0 / WSAEDISCON; (3) the server's WSPRecvDisconnect;
/// (4) the grand total; (5) the server's WSPSendDisconnect with it, (5') its WSPCloseSocket;
/// (6) the client's FD_CLOSE; (7) its WSPRecvDisconnect; (8) its WSPCloseSocket.
fn disconnect_data_exchange(protocol: usize, end: Result<(), WsaError>) {
    let host = Host::new(Memory::new());
    let (client, server) = host.pair(protocol);
    let mut grand_total = 40;
    host.send(client, b"last transaction").unwrap();
    // (1)
    host.send_disconnect(client, Some(b"3")).unwrap();
    // (2)
    assert_eq!(host.fd_close(server), Some(None));
    let (read, ended) = drain(&host, server);
    assert_eq!((read.as_slice(), ended), (&b"last transaction"[..], end));
    // (3), (4)
    let count = host.recv_disconnect(server, Some(64)).unwrap();
    grand_total += std::str::from_utf8(&count).unwrap().parse::<u32>().unwrap();
    // (5), (5')
    host.send_disconnect(server, Some(grand_total.to_string().as_bytes()))
        .unwrap();
    host.close(server).unwrap();
    // (6)
    assert_eq!(host.fd_close(client), Some(None));
    // (7)
    assert_eq!(host.recv_disconnect(client, Some(64)).unwrap(), b"43");
    // (8)
    host.close(client).unwrap();
    assert_eq!(
        events(&host, server),
        [(NetworkEvents::READ, None), (NetworkEvents::CLOSE, None)]
    );
    host.finish();
}

#[test]
fn graceful_shutdown_with_disconnect_data_on_a_byte_stream() {
    disconnect_data_exchange(STREAM_WITH_DISCONNECT_DATA, Ok(()));
}

#[test]
fn graceful_shutdown_with_disconnect_data_on_a_message_socket() {
    disconnect_data_exchange(MESSAGE, Err(WsaError::WSAEDISCON));
}

#[test]
fn the_same_exchange_ended_by_an_abortive_close() {
    let host = Host::new(Memory::new());
    let (a, b) = host.pair(STREAM);
    host.send(a, b"request").unwrap();
    host.shutdown(a, SD_SEND).unwrap();
    assert_eq!(drain(&host, b), (b"request".to_vec(), Ok(())));
    host.send(b, b"the rest, never read").unwrap();
    // A closes abortively before reading: B's connection is reset.
    host.set_linger(a, Linger::Linger(Duration::ZERO)).unwrap();
    host.close(a).unwrap();
    assert_eq!(
        events(&host, b),
        [
            (NetworkEvents::READ, None),
            (NetworkEvents::CLOSE, None),
            // The reset comes after the graceful end: FD_CLOSE was posted once already.
        ]
    );
    assert_eq!(host.send(b, b"more"), Err(WsaError::WSAECONNRESET));
    assert_eq!(host.recv(b, 8), Err(WsaError::WSAECONNRESET));
    host.close(b).unwrap();

    // An abortive close with nothing ended before: FD_CLOSE carries WSAECONNRESET.
    let (a, b) = host.pair(STREAM);
    host.send(a, b"request").unwrap();
    host.set_linger(a, Linger::Linger(Duration::ZERO)).unwrap();
    host.close(a).unwrap();
    assert_eq!(host.fd_close(b), Some(Some(WsaError::WSAECONNRESET)));
    assert_eq!(drain(&host, b), (Vec::new(), Err(WsaError::WSAECONNRESET)));
    host.close(b).unwrap();
    host.finish();
}

#[test]
fn the_same_sequence_with_lingering_sockets() {
    // SO_LINGER with a timeout on both sides: the closes at the end find nothing unsent and
    // return at once, blocking or not.
    let host = Host::new(Memory::new());
    let (a, b) = host.pair(STREAM);
    for socket in [a, b] {
        host.set_linger(socket, Linger::Linger(Duration::from_secs(10)))
            .unwrap();
    }
    host.set_non_blocking(b, true).unwrap();
    let started = Instant::now();
    graceful_sequence(&host, a, b);
    assert!(started.elapsed() < Duration::from_secs(1));
    host.finish();
}

#[test]
fn the_same_exchange_ended_by_a_lingering_close() {
    // A narrow window: A's data leaves only as B reads it.
    let host = Host::new(Memory::with_config(Config {
        window: 16,
        send_buffer: 4096,
    }));
    let (a, b) = host.pair(STREAM);
    let request: Vec<u8> = (0..=255).cycle().take(1000).collect();
    host.send(a, &request).unwrap();
    host.set_linger(a, Linger::Linger(Duration::from_secs(10)))
        .unwrap();
    // A's blocking close waits while B drains, sends the rest and shuts down; the close returns
    // once A's data has left.
    let (took, (read, ended)) = std::thread::scope(|threads| {
        let reader = threads.spawn(|| {
            // The close retires the handle before it waits.
            let started = Instant::now();
            while host.runtime().sockets() != 1 {
                assert!(started.elapsed() < Duration::from_secs(20));
                std::thread::sleep(Duration::from_millis(1));
            }
            std::thread::sleep(Duration::from_millis(50));
            let drained = drain(&host, b);
            assert_eq!(host.fd_close(b), Some(None));
            drained
        });
        let started = Instant::now();
        host.close(a).unwrap();
        (started.elapsed(), reader.join().unwrap())
    });
    assert!(took >= Duration::from_millis(40), "did not wait: {took:?}");
    assert!(took < Duration::from_secs(5), "waited {took:?}");
    assert_eq!((read, ended), (request, Ok(())));
    // B's rest goes to a closed socket: the connection is reset, B learns it.
    host.send(b, b"the rest").unwrap();
    assert_eq!(host.send(b, b"more"), Err(WsaError::WSAECONNRESET));
    host.close(b).unwrap();
    // A heard nothing after its close.
    assert_eq!(events(&host, a), []);
    host.finish();
}
