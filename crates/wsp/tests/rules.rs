//! One test per WSP rule the runtime enforces (R-WSP-5 … R-WSP-16, R-WSP-20), each named after
//! its ID and listed in docs/rules.md. They play ws2_32 with the host simulator
//! (`winprov_wsp::testing::Host`) over the in-memory transport, which also checks on every call
//! and every notice what ws2_32's documents promise (one completion per pending operation,
//! none after an error or a close, WSAESHUTDOWN in a shut direction, FD_CLOSE once …) and
//! panics with the rule's ID on a violation.

use std::time::{Duration, Instant};
use winprov_wsp::memory::{self, Config, MESSAGE, Memory, STREAM, STREAM_WITH_DISCONNECT_DATA};
use winprov_wsp::testing::{Completion, Host, routine};
use winprov_wsp::{Linger, Mechanism, NetworkEvents, Transfer, WsaError};

const SD_RECEIVE: i32 = 0;
const SD_SEND: i32 = 1;
const SD_BOTH: i32 = 2;

/// A network whose receive window holds `window` bytes (and whose send queues hold 1 KiB).
fn narrow(window: usize) -> Host<Memory> {
    Host::new(Memory::with_config(Config {
        window,
        send_buffer: 1024,
    }))
}

fn aborted() -> Completion {
    Completion {
        bytes: 0,
        error: Some(WsaError::WSA_OPERATION_ABORTED),
        data: Vec::new(),
    }
}

/// Reads `socket` (blocking) until the end of the stream; returns what it read.
fn drain(host: &Host<Memory>, socket: winprov_wsp::SocketHandle) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let read = host.recv(socket, 7).expect("recv");
        if read.bytes == 0 {
            return all;
        }
        all.extend_from_slice(&read.data);
    }
}

#[test]
fn r_wsp_5_shutdown_checks_how_and_the_connection() {
    let host = Host::new(Memory::new());
    let (client, server) = host.pair(STREAM);
    for how in [-1, 3, 42, i32::MIN, i32::MAX] {
        assert_eq!(
            host.shutdown(client, how),
            Err(WsaError::WSAEINVAL),
            "how = {how}"
        );
    }
    // Nothing was shut by the refused calls.
    host.send(client, b"still open").unwrap();
    assert_eq!(host.recv(server, 64).unwrap().data, b"still open");
    assert_eq!(host.fd_close(server), None);

    // Not connected: a fresh socket, a bound one, a listener, of either kind.
    for protocol in [STREAM, MESSAGE] {
        let fresh = host.socket(protocol).unwrap();
        assert_eq!(host.shutdown(fresh, SD_SEND), Err(WsaError::WSAENOTCONN));
        assert_eq!(host.shutdown(fresh, 7), Err(WsaError::WSAEINVAL));
        let listener = host.socket(protocol).unwrap();
        host.bind(listener, &memory::address(900 + protocol as u16))
            .unwrap();
        assert_eq!(host.shutdown(listener, SD_BOTH), Err(WsaError::WSAENOTCONN));
        host.listen(listener, 4).unwrap();
        assert_eq!(
            host.shutdown(listener, SD_RECEIVE),
            Err(WsaError::WSAENOTCONN)
        );
        host.close(fresh).unwrap();
        host.close(listener).unwrap();
    }
    host.close(client).unwrap();
    host.close(server).unwrap();
    host.finish();
}

#[test]
fn r_wsp_6_shutdown_and_disconnects_never_block() {
    // Data that cannot leave (a window of 4 bytes nobody reads), and a 3-second linger.
    let host = narrow(4);
    let (client, server) = host.pair(STREAM_WITH_DISCONNECT_DATA);
    let (other, other_server) = host.pair(STREAM_WITH_DISCONNECT_DATA);
    let (third, _third_server) = host.pair(STREAM_WITH_DISCONNECT_DATA);
    for socket in [client, other, third] {
        host.set_linger(socket, Linger::Linger(Duration::from_secs(3)))
            .unwrap();
        assert_eq!(host.send(socket, &[7; 64]).unwrap().bytes, 64);
    }
    // An overlapped send that cannot finish either.
    let pending = host.send_overlapped(client, &[8; 2000], Mechanism::Signal);
    assert!(pending.is_pending());

    let started = Instant::now();
    host.shutdown(client, SD_SEND).unwrap();
    host.send_disconnect(other, Some(b"bye")).unwrap();
    assert_eq!(host.recv_disconnect(third, Some(16)).unwrap(), b"");
    host.shutdown(server, SD_SEND).unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "took {took:?}");

    // The FIN comes after everything taken before it, the pending send included.
    let read = drain(&host, server);
    assert_eq!(read.len(), 64 + 2000);
    assert!(read[..64].iter().all(|&b| b == 7) && read[64..].iter().all(|&b| b == 8));
    assert_eq!(host.completion(pending.id).unwrap().bytes, 2000);
    assert_eq!(drain(&host, other_server).len(), 64);
    assert_eq!(
        host.recv_disconnect(other_server, Some(16)).unwrap(),
        b"bye"
    );
    host.finish();
}

#[test]
fn r_wsp_7_io_in_a_shut_direction_is_refused() {
    let host = narrow(4);
    // Sends: shut while a send is pending behind a full window (the FIN waits for it).
    let (client, server) = host.pair(STREAM);
    assert_eq!(host.send(client, &[1; 1024]).unwrap().bytes, 1024);
    let pending = host.send_overlapped(client, b"queued", Mechanism::Signal);
    assert!(pending.is_pending());
    host.shutdown(client, SD_SEND).unwrap();
    // (Non-blocking: a send that is let through would not wait behind the pending one.)
    host.set_non_blocking(client, true).unwrap();
    assert_eq!(host.send(client, b"x"), Err(WsaError::WSAESHUTDOWN));
    let refused = host.send_overlapped(client, b"x", Mechanism::Signal);
    assert_eq!(refused.result, Err(WsaError::WSAESHUTDOWN));
    // Receiving still works there.
    host.send(server, b"back").unwrap();
    assert_eq!(host.recv(client, 64).unwrap().data, b"back");
    assert_eq!(drain(&host, server).len(), 1024 + 6);

    // Receives (nothing queued, so no reset).
    let (a, b) = host.pair(STREAM);
    host.shutdown(b, SD_RECEIVE).unwrap();
    host.set_non_blocking(b, true).unwrap();
    assert_eq!(host.recv(b, 64), Err(WsaError::WSAESHUTDOWN));
    let refused_recv = host.recv_overlapped(b, 64, Mechanism::Signal);
    assert_eq!(refused_recv.result, Err(WsaError::WSAESHUTDOWN));
    host.send(b, b"more").unwrap();
    assert_eq!(host.recv(a, 64).unwrap().data, b"more");

    // SD_BOTH, and the disconnect calls.
    let (c, d) = host.pair(STREAM_WITH_DISCONNECT_DATA);
    host.set_non_blocking(c, true).unwrap();
    host.shutdown(c, SD_BOTH).unwrap();
    assert_eq!(host.send(c, b"x"), Err(WsaError::WSAESHUTDOWN));
    assert_eq!(host.recv(c, 8), Err(WsaError::WSAESHUTDOWN));
    host.send_disconnect(d, None).unwrap();
    assert_eq!(host.send(d, b"x"), Err(WsaError::WSAESHUTDOWN));
    let (e, f) = host.pair(STREAM_WITH_DISCONNECT_DATA);
    host.set_non_blocking(e, true).unwrap();
    host.recv_disconnect(e, Some(8)).unwrap();
    assert_eq!(host.recv(e, 8), Err(WsaError::WSAESHUTDOWN));
    host.send(e, b"ok").unwrap();
    assert_eq!(host.recv(f, 64).unwrap().data, b"ok");
    assert!(host.completions(refused.id).is_empty());
    assert!(host.completions(refused_recv.id).is_empty());
    host.finish();
}

#[test]
fn r_wsp_8_send_shutdown_sends_a_fin_after_the_data() {
    let host = Host::new(Memory::new());
    let (client, server) = host.pair(STREAM);
    let early = host.recv_overlapped(client, 16, Mechanism::Signal);
    assert!(early.is_pending());
    host.send(client, b"abc").unwrap();
    host.shutdown(client, SD_SEND).unwrap();

    // The peer heard the data, then FD_CLOSE with error 0.
    let events: Vec<_> = host
        .events(server)
        .into_iter()
        .filter(|(event, _)| *event != NetworkEvents::WRITE)
        .collect();
    assert_eq!(
        events,
        [(NetworkEvents::READ, None), (NetworkEvents::CLOSE, None)]
    );
    assert_eq!(host.recv(server, 64).unwrap().data, b"abc");
    assert_eq!(host.recv(server, 64).unwrap().bytes, 0);
    assert_eq!(host.recv(server, 64).unwrap().bytes, 0);
    let late = host.recv_overlapped(server, 16, Mechanism::Signal);
    assert_eq!(
        late.result.as_ref().ok(),
        Some(&Transfer::Complete(Default::default()))
    );
    assert_eq!(host.completion(late.id).unwrap().bytes, 0);

    // The other way round: a receive pending when the FIN arrives completes with 0 bytes.
    host.shutdown(server, SD_SEND).unwrap();
    assert_eq!(
        host.completion(early.id),
        Some(Completion {
            bytes: 0,
            error: None,
            data: Vec::new()
        })
    );
    assert_eq!(host.fd_close(client), Some(None));
    host.close(client).unwrap();
    host.close(server).unwrap();
    host.finish();
}

#[test]
fn r_wsp_9_receive_shutdown_with_data_resets() {
    let host = Host::new(Memory::new());
    // Data queued when the receives are shut.
    let (client, server) = host.pair(STREAM);
    host.send(client, b"unread").unwrap();
    host.shutdown(server, SD_RECEIVE).unwrap();
    assert_eq!(host.fd_close(client), Some(Some(WsaError::WSAECONNRESET)));
    assert_eq!(host.recv(client, 64), Err(WsaError::WSAECONNRESET));
    assert_eq!(host.send(client, b"x"), Err(WsaError::WSAECONNRESET));
    assert_eq!(host.send(server, b"x"), Err(WsaError::WSAECONNRESET));

    // Data arriving later.
    let (client, server) = host.pair(STREAM);
    host.shutdown(server, SD_RECEIVE).unwrap();
    host.send(server, b"fine").unwrap();
    assert_eq!(host.recv(client, 64).unwrap().data, b"fine");
    assert_eq!(host.fd_close(client), None);
    host.send(client, b"late").unwrap();
    assert_eq!(host.fd_close(client), Some(Some(WsaError::WSAECONNRESET)));
    assert_eq!(host.send(client, b"x"), Err(WsaError::WSAECONNRESET));

    // A message-oriented socket keeps queueing.
    let (a, b) = host.pair(MESSAGE);
    host.shutdown(b, SD_RECEIVE).unwrap();
    host.send(a, b"kept").unwrap();
    assert_eq!(host.fd_close(a), None);
    host.send(a, b"and sent").unwrap();
    for socket in [client, server, a, b] {
        host.close(socket).unwrap();
    }
    host.finish();
}

#[test]
fn r_wsp_10_end_of_stream_reads_by_socket_type() {
    let host = Host::new(Memory::new());
    // A byte stream: 0 bytes.
    let (client, server) = host.pair(STREAM);
    host.shutdown(client, SD_SEND).unwrap();
    assert_eq!(host.recv(server, 8).unwrap().bytes, 0);

    // Message-oriented: a zero-length message is data, the end is WSAEDISCON.
    let (a, b) = host.pair(MESSAGE);
    let pending = host.recv_overlapped(b, 8, Mechanism::Signal);
    host.send(a, b"").unwrap();
    host.send(a, b"m").unwrap();
    host.shutdown(a, SD_SEND).unwrap();
    assert_eq!(host.completion(pending.id).unwrap().bytes, 0);
    assert_eq!(host.recv(b, 8).unwrap().data, b"m");
    assert_eq!(host.recv(b, 8), Err(WsaError::WSAEDISCON));
    assert_eq!(host.recv(b, 8), Err(WsaError::WSAEDISCON));
    let after = host.recv_overlapped(b, 8, Mechanism::Signal);
    assert_eq!(after.result, Err(WsaError::WSAEDISCON));
    // A receive pending when the end comes completes with WSAEDISCON.
    let waiting = host.recv_overlapped(a, 8, Mechanism::Signal);
    host.shutdown(b, SD_SEND).unwrap();
    assert_eq!(
        host.completion(waiting.id).unwrap().error,
        Some(WsaError::WSAEDISCON)
    );

    // An abortive close: WSAECONNRESET, on both kinds.
    for protocol in [STREAM, MESSAGE] {
        let (x, y) = host.pair(protocol);
        host.set_linger(x, Linger::Linger(Duration::ZERO)).unwrap();
        host.close(x).unwrap();
        assert_eq!(host.recv(y, 8), Err(WsaError::WSAECONNRESET));
        host.close(y).unwrap();
    }
    for socket in [client, server, a, b] {
        host.close(socket).unwrap();
    }
    host.finish();
}

#[test]
fn r_wsp_11_linger_zero_close_resets() {
    for non_blocking in [false, true] {
        let host = narrow(4);
        let (client, server) = host.pair(STREAM);
        host.set_non_blocking(client, non_blocking).unwrap();
        host.send(client, b"lost on reset").unwrap();
        host.set_linger(client, Linger::Linger(Duration::ZERO))
            .unwrap();
        let started = Instant::now();
        host.close(client).unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(host.fd_close(server), Some(Some(WsaError::WSAECONNRESET)));
        assert_eq!(host.recv(server, 64), Err(WsaError::WSAECONNRESET));
        host.close(server).unwrap();
        host.finish();
    }
}

#[test]
fn r_wsp_12_dontlinger_close_returns_at_once_and_the_data_still_leaves() {
    for non_blocking in [false, true] {
        let host = narrow(8);
        let (client, server) = host.pair(STREAM);
        host.set_non_blocking(client, non_blocking).unwrap();
        let data: Vec<u8> = (0..100).collect();
        assert_eq!(host.send(client, &data).unwrap().bytes, 100);
        assert!(host.runtime().transport().config().window < 100);
        let started = Instant::now();
        host.close(client).unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
        // The close went on in the background: all the data, then the FIN.
        assert_eq!(drain(&host, server), data);
        assert_eq!(host.fd_close(server), Some(None));
        host.close(server).unwrap();
        host.finish();
    }
}

#[test]
fn r_wsp_13_non_blocking_linger_close_that_cannot_finish_would_block() {
    let host = narrow(8);
    let (client, server) = host.pair(STREAM);
    host.set_linger(client, Linger::Linger(Duration::from_secs(10)))
        .unwrap();
    host.set_non_blocking(client, true).unwrap();
    assert_eq!(host.send(client, &[5; 100]).unwrap().bytes, 100);
    let pending = host.recv_overlapped(client, 16, Mechanism::Signal);
    assert!(pending.is_pending());

    assert_eq!(host.close(client), Err(WsaError::WSAEWOULDBLOCK));
    // Nothing started: the handle works, the operation still pends, no FIN, no reset.
    assert_eq!(host.runtime().pending(client), Ok(1));
    assert!(host.completions(pending.id).is_empty());
    assert_eq!(host.fd_close(server), None);
    assert_eq!(host.send(client, &[6; 10]).unwrap().bytes, 10);
    host.send(server, b"reply").unwrap();
    assert_eq!(host.completion(pending.id).unwrap().data, b"reply");

    // Once the data has left, the close finishes gracefully.
    let mut read = 0;
    while read < 110 {
        read += host.recv(server, 64).unwrap().bytes;
    }
    host.close(client).unwrap();
    assert_eq!(host.recv(server, 64).unwrap().bytes, 0);
    assert_eq!(host.fd_close(server), Some(None));
    host.close(server).unwrap();
    host.finish();
}

#[test]
fn r_wsp_13_blocking_linger_close_waits_up_to_the_timeout() {
    // The reader drains once the close waits (seen waiting by the simulator): the close waits
    // for it, then closes gracefully.
    let host = narrow(8);
    let (client, server) = host.pair(STREAM);
    host.set_linger(client, Linger::Linger(Duration::from_secs(10)))
        .unwrap();
    host.send(client, &[3; 64]).unwrap();
    let (took, read) = std::thread::scope(|threads| {
        let reader = threads.spawn(|| {
            // The close waits for its data to leave (the simulator's barrier).
            assert!(
                host.wait_blocked(1, Duration::from_secs(20)),
                "the close waits"
            );
            drain(&host, server)
        });
        let started = Instant::now();
        host.close(client).unwrap();
        (started.elapsed(), reader.join().unwrap())
    });
    assert!(took < Duration::from_secs(5), "waited {took:?}");
    assert_eq!(read, [3; 64]);
    assert_eq!(host.fd_close(server), Some(None));
    host.close(server).unwrap();

    // Nobody reads: the close waits for the timeout, then resets.
    let (client, server) = host.pair(STREAM);
    host.set_linger(client, Linger::Linger(Duration::from_millis(200)))
        .unwrap();
    host.send(client, &[4; 64]).unwrap();
    let started = Instant::now();
    host.close(client).unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(180), "did not wait: {took:?}");
    assert!(took < Duration::from_secs(5), "waited {took:?}");
    assert_eq!(host.fd_close(server), Some(Some(WsaError::WSAECONNRESET)));
    assert_eq!(host.recv(server, 64), Err(WsaError::WSAECONNRESET));
    host.close(server).unwrap();
    host.finish();
}

#[test]
fn r_wsp_14_close_aborts_pending_operations_without_fd_close() {
    let host = narrow(8);
    let (client, server) = host.pair(STREAM);
    host.set_linger(client, Linger::Linger(Duration::from_secs(10)))
        .unwrap();
    let by_event = host.recv_overlapped(client, 16, Mechanism::Signal);
    let by_routine = host.recv_overlapped(client, 16, routine(7));
    // The window (8) and the send queue (1024) full: the overlapped send cannot start.
    host.send(client, &[1; 8 + 1024]).unwrap();
    let send = host.send_overlapped(client, &[2; 2000], routine(8));
    for op in [&by_event, &by_routine, &send] {
        assert!(op.is_pending());
    }
    // The peer's FIN arrives while the (lingering, blocking) close waits for the data to
    // leave: no FD_CLOSE for the closing socket.
    std::thread::scope(|threads| {
        threads.spawn(|| {
            // The close waits for its data to leave (the simulator's barrier).
            assert!(
                host.wait_blocked(1, Duration::from_secs(20)),
                "the close waits"
            );
            host.shutdown(server, SD_SEND).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            assert_eq!(drain(&host, server), [1; 8 + 1024]);
        });
        host.close(client).unwrap();
    });
    for op in [&by_event, &by_routine, &send] {
        assert_eq!(host.completions(op.id), [aborted()]);
    }
    // Each through its own mechanism (the simulator checks it on every notice).
    let mechanisms: Vec<_> = host
        .notices()
        .into_iter()
        .filter_map(|notice| match notice {
            winprov_wsp::Notice::Overlapped { op, mechanism, .. } => Some((op, mechanism)),
            _ => None,
        })
        .collect();
    assert!(mechanisms.contains(&(by_event.id, Mechanism::Signal)));
    assert!(mechanisms.contains(&(by_routine.id, routine(7))));
    assert!(mechanisms.contains(&(send.id, routine(8))));
    assert_eq!(host.fd_close(client), None);
    // The handle is gone.
    assert_eq!(host.send(client, b"x"), Err(WsaError::WSAENOTSOCK));
    assert_eq!(host.recv(client, 8), Err(WsaError::WSAENOTSOCK));
    assert_eq!(host.shutdown(client, SD_SEND), Err(WsaError::WSAENOTSOCK));
    assert_eq!(host.close(client), Err(WsaError::WSAENOTSOCK));
    host.close(server).unwrap();
    host.finish();
}

#[test]
fn r_wsp_15_final_cleanup_cancels_without_completions() {
    let host = narrow(8);
    let (a, b) = host.pair(STREAM);
    let (c, d) = host.pair(MESSAGE);
    let recv = host.recv_overlapped(a, 16, Mechanism::Signal);
    let routine_recv = host.recv_overlapped(c, 16, routine(3));
    host.send(a, &[1; 1024]).unwrap();
    let send = host.send_overlapped(a, &[2; 100], Mechanism::Signal);
    for op in [&recv, &routine_recv, &send] {
        assert!(op.is_pending());
    }
    let notices = host.notices().len();
    // A blocking receive in progress on another thread is interrupted.
    let blocked = std::thread::scope(|threads| {
        let blocked = threads.spawn(|| host.recv(d, 16));
        // The receive waits for data (the simulator's barrier).
        assert!(
            host.wait_blocked(1, Duration::from_secs(20)),
            "the receive waits"
        );
        host.cleanup();
        blocked.join().unwrap()
    });
    assert_eq!(blocked, Err(WsaError::WSAEINTR));
    for op in [&recv, &routine_recv, &send] {
        assert!(host.completions(op.id).is_empty(), "{op:?} completed");
    }
    assert_eq!(host.notices().len(), notices, "nothing was delivered");
    assert_eq!(host.runtime().alive(), 0);
    assert_eq!(host.runtime().sockets(), 0);
    assert_eq!(host.send(b, b"x"), Err(WsaError::WSAENOTSOCK));
    // A new startup may follow.
    let (x, y) = host.pair(STREAM);
    host.send(x, b"again").unwrap();
    assert_eq!(host.recv(y, 8).unwrap().data, b"again");
    host.finish();
}

#[test]
fn r_wsp_16_overlapped_completes_once_or_never() {
    let host = narrow(8);
    let (client, server) = host.pair(STREAM);
    // Immediate: returned 0, completion already delivered.
    host.send(server, b"hi").unwrap();
    let now = host.recv_overlapped(client, 16, routine(1));
    assert!(matches!(now.result, Ok(Transfer::Complete(ref done)) if done.data == b"hi"));
    assert_eq!(host.completions(now.id).len(), 1);

    // Pending, then exactly one completion, in posting order.
    let first = host.recv_overlapped(client, 2, Mechanism::Signal);
    let second = host.recv_overlapped(client, 2, Mechanism::Signal);
    assert!(first.is_pending() && second.is_pending());
    assert!(host.completions(first.id).is_empty());
    // A plain receive does not jump ahead of them.
    host.set_non_blocking(client, true).unwrap();
    assert_eq!(host.recv(client, 2), Err(WsaError::WSAEWOULDBLOCK));
    host.send(server, b"abcd").unwrap();
    assert_eq!(host.completion(first.id).unwrap().data, b"ab");
    assert_eq!(host.completion(second.id).unwrap().data, b"cd");

    // A send that pends completes when the window opens, once.
    let big = host.send_overlapped(client, &[9; 2000], Mechanism::Signal);
    assert!(big.is_pending());
    // It completes when the transport took the last byte (the send queue had room again).
    let mut read = 0;
    while read < 2000 {
        read += host.recv(server, 64).unwrap().bytes;
    }
    assert_eq!(host.completions(big.id).len(), 1);
    assert_eq!(host.completion(big.id).unwrap().bytes, 2000);
    let small = host.send_overlapped(client, b"fits", Mechanism::Signal);
    assert!(matches!(small.result, Ok(Transfer::Complete(ref done)) if done.bytes == 4));
    assert_eq!(host.completions(small.id).len(), 1);

    // A call that fails has no completion, ever: not on data, not on close.
    host.shutdown(client, SD_RECEIVE).unwrap();
    let refused = host.recv_overlapped(client, 16, Mechanism::Signal);
    assert_eq!(refused.result, Err(WsaError::WSAESHUTDOWN));
    host.close(client).unwrap();
    host.close(server).unwrap();
    assert!(host.completions(refused.id).is_empty());
    // Nor when the transport's answer is the failure (a reset connection).
    let (x, y) = host.pair(MESSAGE);
    host.set_linger(x, Linger::Linger(Duration::ZERO)).unwrap();
    host.close(x).unwrap();
    let reset_recv = host.recv_overlapped(y, 16, routine(2));
    let reset_send = host.send_overlapped(y, b"x", routine(2));
    assert_eq!(reset_recv.result, Err(WsaError::WSAECONNRESET));
    assert_eq!(reset_send.result, Err(WsaError::WSAECONNRESET));
    host.close(y).unwrap();
    assert!(host.completions(reset_recv.id).is_empty());
    assert!(host.completions(reset_send.id).is_empty());
    host.finish();
}

#[test]
fn r_wsp_20_disconnect_data_needs_a_protocol_that_carries_it() {
    let host = Host::new(Memory::new());
    let (client, server) = host.pair(STREAM);
    assert_eq!(
        host.send_disconnect(client, Some(b"total=3")),
        Err(WsaError::WSAENOPROTOOPT)
    );
    // Refused: nothing was shut.
    host.send(client, b"x").unwrap();
    assert_eq!(
        host.recv_disconnect(server, Some(16)),
        Err(WsaError::WSAENOPROTOOPT)
    );
    host.send_disconnect(client, None).unwrap();
    assert_eq!(host.recv(server, 8).unwrap().data, b"x");
    assert_eq!(host.recv(server, 8).unwrap().bytes, 0);
    assert_eq!(host.recv_disconnect(server, None).unwrap(), b"");

    for protocol in [STREAM_WITH_DISCONNECT_DATA, MESSAGE] {
        let (client, server) = host.pair(protocol);
        host.send_disconnect(client, Some(b"total=3")).unwrap();
        assert_eq!(host.fd_close(server), Some(None));
        // A buffer too short: WSAEFAULT, and the receives stay open.
        assert_eq!(
            host.recv_disconnect(server, Some(4)),
            Err(WsaError::WSAEFAULT)
        );
        let end = host.recv(server, 8);
        assert!(
            matches!(end, Ok(ref done) if done.bytes == 0) || end == Err(WsaError::WSAEDISCON),
            "{end:?}"
        );
        assert_eq!(host.recv_disconnect(server, Some(7)).unwrap(), b"total=3");
        host.close(client).unwrap();
        host.close(server).unwrap();
    }
    host.close(client).unwrap();
    host.close(server).unwrap();
    host.finish();
}

/// A connection whose peer's last words and FIN arrive together: the first receive attempt
/// finds nothing, and while it runs (the socket's turn held) the transport learns of both, so
/// the runtime processes them in one batch.
mod last_words {
    use winprov_wsp::{
        Address, Completed, Notifier, Protocol, Received, RecvCall, SendCall, Sent, Socket,
        Termination, Transport, WsaError,
    };

    pub struct LastWords;

    pub struct Peer {
        notifier: Notifier,
        /// 0: nothing arrived yet; 1: the words and the FIN arrived; 2: the words were read.
        stage: u8,
    }

    impl Transport for LastWords {
        type Socket = Peer;

        fn protocols(&self) -> Vec<Protocol> {
            vec![Protocol::stream("last words")]
        }

        fn open(&self, _: &Protocol, notifier: Notifier) -> Result<Peer, WsaError> {
            Ok(Peer { notifier, stage: 0 })
        }
    }

    impl Socket for Peer {
        fn connect(&mut self, _: &Address) -> Result<(), WsaError> {
            Ok(())
        }

        fn send<'call>(&mut self, call: SendCall<'call>) -> Completed<'call> {
            let n = call.data().len();
            call.complete(Sent::Accepted(n))
        }

        fn recv<'call>(&mut self, mut call: RecvCall<'call>) -> Completed<'call> {
            match self.stage {
                0 => {
                    self.stage = 1;
                    self.notifier.readable();
                    self.notifier.closed(Termination::Graceful);
                    call.complete(Received::WouldBlock)
                }
                1 => {
                    self.stage = 2;
                    call.buffer()[..3].copy_from_slice(b"bye");
                    call.complete(Received::Data(3))
                }
                _ => call.complete(Received::End(Termination::Graceful)),
            }
        }

        fn unread(&self) -> usize {
            if self.stage == 1 { 3 } else { 0 }
        }

        fn unsent(&self) -> usize {
            0
        }

        fn send_fin(&mut self, _: Option<&[u8]>) -> Result<(), WsaError> {
            Ok(())
        }

        fn reset(&mut self) {}
    }
}

#[test]
fn r_wsp_8_fd_close_follows_the_last_data_when_both_arrive_together() {
    let host = Host::new(last_words::LastWords);
    let socket = host.socket(0).unwrap();
    host.connect(socket, &winprov_wsp::Address::new(*b"peer"))
        .unwrap();
    host.select_events(socket, NetworkEvents::READ.union(NetworkEvents::CLOSE))
        .unwrap();
    let op = host.recv_overlapped(socket, 16, Mechanism::Signal);
    // The words and the FIN were processed in one batch, when the receive gave the turn back:
    // the receive completed with the words, and FD_CLOSE came after them.
    let completion = host.completion(op.id).expect("the receive completed");
    assert_eq!(completion.data, b"bye");
    let order: Vec<&'static str> = host
        .notices()
        .iter()
        .filter(|n| n.socket() == socket)
        .map(|n| match n {
            winprov_wsp::Notice::Overlapped { .. } => "completion",
            winprov_wsp::Notice::Network { event, .. } => event.name().unwrap_or("?"),
        })
        .filter(|name| *name != "FD_CONNECT" && *name != "FD_WRITE")
        .collect();
    assert_eq!(
        order,
        ["completion", "FD_CLOSE"],
        "the data first, then the end"
    );
    assert_eq!(host.fd_close(socket), Some(None));
    assert_eq!(host.recv(socket, 16).unwrap().bytes, 0);
    host.close(socket).unwrap();
    host.finish();
}
