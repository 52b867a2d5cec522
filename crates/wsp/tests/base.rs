//! A base provider through its real export: `export_provider!` makes this test binary's
//! `WSPStartup` for `abi::Base` over the in-memory transport, and the ws2_32 simulator
//! (`testing::winsock`) starts it and calls its proc table as ws2_32 does. The simulator checks
//! R-WSP-14 to R-WSP-19 on every call and upcall; each test also asserts what the host sees.
//!
//! The process has one simulated ws2_32 and one provider: the tests take turns (`Winsock::start`
//! holds the turn until `finish`).

use winprov_bindings::ws2spi::XP1_IFS_HANDLES;
use winprov_wsp::abi::{Base, Linger, Socket};
use winprov_wsp::memory::Memory;
use winprov_wsp::testing::winsock::{self, Delivery, Done, Upcall, Via, Winsock, base_protocol};
use winprov_wsp::{SocketHandle, WsaError};

winprov_wsp::export_provider!(Base<Memory>, || {
    Base::new(Memory::new()).completing_with(winsock::WPUCompleteOverlappedRequest)
});

const CATALOG: u32 = 0x42;
const AF: i32 = 2;
const SOCK_STREAM: i32 = 1;
const SOCK_SEQPACKET: i32 = 5;
const ABORTED: u32 = 995; // WSA_OPERATION_ABORTED
const FD_READ: i32 = 0x01;
const FD_WRITE: i32 = 0x02;
const FD_CLOSE: i32 = 0x20;
const FD_CLOSE_BIT: usize = 5;

fn start() -> Winsock {
    Winsock::start(WSPStartup, base_protocol(CATALOG, 0)).expect("WSPStartup")
}

/// Two connected sockets of `kind` (client, server) through a listener on `port`, closed again.
fn pair(ws: &Winsock, kind: i32, port: u16) -> (Socket, Socket) {
    let name = port.to_be_bytes();
    let listener = ws.socket(AF, kind, 0).expect("socket");
    ws.bind(listener, &name).expect("bind");
    ws.listen(listener, 1).expect("listen");
    let client = ws.socket(AF, kind, 0).expect("socket");
    ws.connect(client, &name).expect("connect");
    let (server, _) = ws.accept(listener).expect("accept");
    ws.close(listener).expect("close the listener");
    (client, server)
}

fn provider() -> &'static Base<Memory> {
    wsp_process().dispatch().expect("made by the first startup")
}

#[test]
fn sockets_are_ws2_32_handles_whose_context_is_the_runtime_socket() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 1);
    for socket in [client, server] {
        let handle = ws.handle(socket).expect("made by WPUCreateSocketHandle");
        assert_eq!(handle.catalog_entry_id, CATALOG);
        assert_ne!(handle.context, 0);
        assert!(!handle.closed);
    }
    assert_eq!(ws.send(client, b"hello").unwrap(), 5);
    assert_eq!(ws.recv(server, 64).unwrap(), b"hello");
    ws.close(client).unwrap();
    let handle = ws.handle(client).unwrap();
    assert!(handle.closed, "WSPCloseSocket releases ws2_32's handle");
    assert_eq!(handle.close_calls, 1);
    assert_eq!(ws.send(client, b"x"), Err(WsaError::WSAENOTSOCK));
    assert_eq!(
        ws.recv(server, 64).unwrap(),
        b"",
        "the FIN of the close reads as 0 bytes"
    );
    ws.close(server).unwrap();
    assert_eq!(provider().runtime().alive(), 0);
    ws.finish();
}

#[test]
fn r_wsp_14_close_aborts_each_pending_operation_through_its_own_mechanism() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 2);
    let window = ws.create_window();
    ws.async_select(server, Some(window), 0x400, FD_READ | FD_CLOSE)
        .unwrap();
    let port = ws.create_port();
    ws.associate(server, port, 0x77);
    let thread = ws.new_thread();
    let by_event = ws.recv_overlapped(server, 16, Via::EventOnly).unwrap();
    let by_routine = ws
        .recv_overlapped(server, 16, Via::Routine(thread))
        .unwrap();
    let by_port = ws.recv_overlapped(server, 16, Via::Port).unwrap();
    assert!(by_event.is_pending() && by_routine.is_pending() && by_port.is_pending());
    assert_eq!(provider().pending_operations(), 3);

    ws.close(server).unwrap();

    // The event: set by WPUCompleteOverlappedRequest with 995, its result readable.
    let [completion] = ws.completions(by_event.op)[..] else {
        panic!("one completion: {:?}", ws.completions(by_event.op));
    };
    assert_eq!(completion.error, ABORTED);
    assert!(matches!(
        completion.delivery,
        Delivery::Request { socket, event: Some(_), port: None } if socket == server
    ));
    let state = ws.overlapped(by_event.op).unwrap();
    assert_eq!(
        (state.internal, state.offset_high),
        (ABORTED as usize, ABORTED)
    );
    // The port: one packet with 995.
    let packet = ws.dequeue(port).expect("a packet for the port operation");
    assert_eq!(
        (packet.key, packet.op, packet.error),
        (0x77, by_port.op, ABORTED)
    );
    assert_eq!(ws.dequeue(port), None);
    // The routine: queued to its thread, run in its alertable wait with 995.
    assert_eq!(ws.apcs_queued(thread), 1);
    assert_eq!(ws.run_apcs(thread), 1);
    let [completion] = ws.completions(by_routine.op)[..] else {
        panic!("one completion: {:?}", ws.completions(by_routine.op));
    };
    assert_eq!(completion.error, ABORTED);
    assert_eq!(
        completion.delivery,
        Delivery::Routine {
            thread: Some(thread)
        }
    );
    // No FD_CLOSE for the closed socket, the handle refused, nothing left in flight.
    assert!(ws.take_messages(window).iter().all(|m| m.socket != server));
    assert_eq!(ws.recv(server, 1), Err(WsaError::WSAENOTSOCK));
    assert_eq!(
        ws.get_overlapped_result(server, by_event.op, false),
        Err(WsaError::WSAENOTSOCK)
    );
    assert_eq!(provider().pending_operations(), 0);
    ws.close(client).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_15_final_cleanup_cancels_without_events_routines_or_packets() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 3);
    let port = ws.create_port();
    ws.associate(server, port, 1);
    let thread = ws.new_thread();
    let ops = [
        ws.recv_overlapped(server, 16, Via::Event).unwrap(),
        ws.recv_overlapped(server, 16, Via::Routine(thread))
            .unwrap(),
        ws.recv_overlapped(server, 16, Via::Port).unwrap(),
        ws.recv_overlapped(client, 16, Via::EventOnly).unwrap(),
    ];
    let upcalls_before = ws.upcalls().len();

    ws.cleanup().unwrap();

    for issued in ops {
        assert!(issued.is_pending());
        assert_eq!(ws.completions(issued.op), []);
        assert_eq!(
            ws.overlapped(issued.op).unwrap().internal,
            0x103,
            "still WSS_OPERATION_IN_PROGRESS: never completed"
        );
    }
    assert_eq!(ws.apcs_queued(thread), 0);
    assert_eq!(ws.dequeue(port), None);
    let during: Vec<Upcall> = ws.upcalls()[upcalls_before..].to_vec();
    assert!(
        during
            .iter()
            .all(|u| matches!(u, Upcall::CloseSocketHandle { .. })),
        "the final cleanup only releases the handles: {during:?}"
    );
    assert_eq!(provider().runtime().alive(), 0);
    assert_eq!(provider().pending_operations(), 0);
    ws.finish();

    // The DLL stays usable: a new startup serves again.
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 4);
    ws.send(client, b"again").unwrap();
    assert_eq!(ws.recv(server, 16).unwrap(), b"again");
    ws.finish();
}

#[test]
fn r_wsp_16_overlapped_calls_complete_at_once_later_once_or_never() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 5);
    let thread = ws.new_thread();

    // Data already there: 0 returned, the routine already queued.
    ws.send(client, b"now").unwrap();
    let at_once = ws
        .recv_overlapped(server, 16, Via::Routine(thread))
        .unwrap();
    assert_eq!(at_once.done, Some(Done { bytes: 3, flags: 0 }));
    assert_eq!(ws.apcs_queued(thread), 1, "queued before the call returned");
    assert_eq!(ws.received(at_once.op), b"now");
    ws.run_apcs(thread);
    assert_eq!(ws.completions(at_once.op).len(), 1);
    // The provider completed the structure itself before queueing the routine.
    let state = ws.overlapped(at_once.op).unwrap();
    assert_eq!((state.internal, state.internal_high), (0, 3));
    assert_eq!(
        ws.get_overlapped_result(server, at_once.op, false),
        Ok(Done { bytes: 3, flags: 0 })
    );

    // Nothing there: WSA_IO_PENDING, then exactly one completion when the data comes.
    let later = ws.recv_overlapped(server, 16, Via::Event).unwrap();
    assert!(later.is_pending());
    assert_eq!(
        ws.get_overlapped_result(server, later.op, false),
        Err(WsaError::WSA_IO_INCOMPLETE)
    );
    ws.send(client, b"later").unwrap();
    assert_eq!(ws.completions(later.op).len(), 1);
    assert_eq!(ws.received(later.op), b"later");
    assert_eq!(
        ws.get_overlapped_result(server, later.op, true),
        Ok(Done { bytes: 5, flags: 0 })
    );
    let state = ws.overlapped(later.op).unwrap();
    assert_eq!((state.internal, state.internal_high), (0, 5));

    // A send completes too (at once here: the window has room).
    let sent = ws.send_overlapped(client, b"out", Via::Event).unwrap();
    assert_eq!(sent.done, Some(Done { bytes: 3, flags: 0 }));
    assert_eq!(ws.completions(sent.op).len(), 1);

    // A call that fails: no completion, ever.
    ws.shutdown(server, 0).unwrap(); // SD_RECEIVE
    assert_eq!(
        ws.recv_overlapped(server, 16, Via::Routine(thread)),
        Err(WsaError::WSAESHUTDOWN)
    );
    assert_eq!(ws.apcs_queued(thread), 0);
    assert_eq!(provider().pending_operations(), 0);
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_16_a_wait_in_get_overlapped_result_ends_with_the_completion() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 6);
    let pending = ws.recv_overlapped(server, 16, Via::Event).unwrap();
    assert!(pending.is_pending());
    let context = ws.handle(client).unwrap().context;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            provider_send(context);
        });
        assert_eq!(
            ws.get_overlapped_result(server, pending.op, true),
            Ok(Done { bytes: 4, flags: 0 })
        );
    });
    assert_eq!(ws.received(pending.op), b"wake");
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

/// A send on `client` from another thread, straight through the provider's runtime (the
/// socket its handle's context names), while the test's thread waits in the table.
fn provider_send(context: usize) {
    let runtime = provider().runtime();
    let sent = runtime.send(SocketHandle::from_raw(context), b"wake", None);
    assert!(sent.is_ok(), "{sent:?}");
}

#[test]
fn r_wsp_17_the_buffer_array_and_thread_id_are_copied() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 7);
    let thread = ws.new_thread();
    // Two buffers (3 and 5 bytes), pending; the simulator scribbles over the array and the
    // thread id as soon as the call returns.
    let op = ws
        .recv_overlapped_vectored(server, &[3, 5], Via::Routine(thread))
        .unwrap();
    assert!(op.is_pending());
    ws.send(client, b"abcdefgh").unwrap();
    assert_eq!(
        ws.run_apcs(thread),
        1,
        "queued to the thread passed, not the scribbled one"
    );
    assert_eq!(ws.received(op.op), b"abcdefgh");
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_18_completions_name_the_handle_ws2_32_made() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 8);
    let op = ws.recv_overlapped(server, 8, Via::Event).unwrap();
    ws.send(client, b"12345").unwrap();
    let [completion] = ws.completions(op.op)[..] else {
        panic!("one completion");
    };
    let Delivery::Request { socket, .. } = completion.delivery else {
        panic!("through WPUCompleteOverlappedRequest: {completion:?}");
    };
    assert_eq!(socket, server);
    assert!(ws.handle(socket).is_some_and(|h| !h.closed));
    // InternalHigh (bytes) is written no later than Internal leaves WSS_OPERATION_IN_PROGRESS.
    let state = ws.overlapped(op.op).unwrap();
    assert_eq!((state.internal, state.internal_high), (0, 5));
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_19_a_catalog_entry_declaring_ifs_handles_is_refused() {
    let refused = Winsock::start(WSPStartup, base_protocol(CATALOG, XP1_IFS_HANDLES));
    assert_eq!(refused.err(), Some(WsaError::WSAEPROVIDERFAILEDINIT));
    let ws = start();
    assert!(
        ws.upcalls()
            .iter()
            .all(|u| !matches!(u, Upcall::CreateSocketHandle { .. })),
        "no handle was made for the IFS entry"
    );
    let s = ws.socket(AF, SOCK_STREAM, 0).unwrap();
    ws.close(s).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_8_the_peer_of_a_send_shutdown_gets_fd_close_0_by_message_and_by_event() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 9);
    let window = ws.create_window();
    ws.async_select(server, Some(window), 0x401, FD_READ | FD_CLOSE)
        .unwrap();
    let event = ws.create_event();
    ws.event_select(client, Some(event), FD_CLOSE | FD_WRITE)
        .unwrap();

    ws.send(client, b"last words").unwrap();
    ws.shutdown(client, 1).unwrap(); // SD_SEND
    let messages = ws.take_messages(window);
    let events: Vec<(i32, u16)> = messages
        .iter()
        .map(|m| {
            assert_eq!((m.message, m.socket), (0x401, server));
            (i32::from(m.event), m.error)
        })
        .collect();
    assert_eq!(events, [(FD_READ, 0), (FD_CLOSE, 0)]);
    assert_eq!(ws.recv(server, 64).unwrap(), b"last words");
    assert_eq!(ws.recv(server, 64).unwrap(), b"", "then 0 bytes");

    ws.send(server, b"reply").unwrap();
    ws.shutdown(server, 1).unwrap();
    let state = ws.event_state(event).unwrap();
    assert!(state.signalled);
    let recorded = ws.enum_network_events(client, Some(event)).unwrap();
    assert_ne!(recorded.events & FD_CLOSE, 0);
    assert_eq!(recorded.errors[FD_CLOSE_BIT], 0);
    assert!(
        !ws.event_state(event).unwrap().signalled,
        "reset by the enumeration"
    );
    assert_eq!(ws.recv(client, 64).unwrap(), b"reply");
    assert_eq!(ws.recv(client, 64).unwrap(), b"");
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_10_message_sockets_end_with_wsaediscon_through_the_table() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_SEQPACKET, 10);
    ws.send(client, b"m").unwrap();
    ws.shutdown(client, 1).unwrap();
    assert_eq!(ws.recv(server, 8).unwrap(), b"m");
    assert_eq!(ws.recv(server, 8), Err(WsaError::WSAEDISCON));
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_11_to_13_close_by_linger_option_through_the_table() {
    let ws = start();
    // R-WSP-11: SO_LINGER {1, 0} resets; the peer reads WSAECONNRESET.
    let (client, server) = pair(&ws, SOCK_STREAM, 11);
    ws.set_linger(
        client,
        Linger {
            on: true,
            seconds: 0,
        },
    )
    .unwrap();
    assert_eq!(
        ws.get_linger(client).unwrap(),
        Linger {
            on: true,
            seconds: 0
        }
    );
    ws.send(client, b"lost").unwrap();
    ws.close(client).unwrap();
    assert_eq!(ws.recv(server, 8), Err(WsaError::WSAECONNRESET));
    ws.close(server).unwrap();

    // R-WSP-12: SO_DONTLINGER, non-blocking: returns at once, the data still leaves.
    let (client, server) = pair(&ws, SOCK_STREAM, 12);
    ws.set_non_blocking(client, true).unwrap();
    ws.set_dont_linger(client, true).unwrap();
    ws.send(client, b"kept").unwrap();
    ws.close(client).unwrap();
    assert_eq!(ws.recv(server, 8).unwrap(), b"kept");
    assert_eq!(ws.recv(server, 8).unwrap(), b"");
    ws.close(server).unwrap();

    ws.finish();
}

#[test]
fn r_wsp_13_a_non_blocking_lingering_close_that_cannot_finish_keeps_the_handle() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 13);
    ws.set_non_blocking(client, true).unwrap();
    ws.set_linger(
        client,
        Linger {
            on: true,
            seconds: 5,
        },
    )
    .unwrap();
    // Filled until the send queue and the peer's window are full: the data cannot leave until
    // the peer reads.
    let mut sent = 0;
    while let Ok(n) = ws.send(client, &[7; 4096]) {
        sent += n as usize;
    }
    assert_eq!(ws.close(client), Err(WsaError::WSAEWOULDBLOCK));
    let handle = ws.handle(client).unwrap();
    assert!(!handle.closed, "the handle stays valid");
    assert_eq!(handle.close_calls, 0);
    // Nothing started: the peer reads data, not the end.
    assert_eq!(ws.recv(server, 16).unwrap(), [7; 16]);
    let mut read = 16;
    while read < sent {
        read += ws.recv(server, 65536).unwrap().len();
    }
    ws.close(client).unwrap();
    assert_eq!(ws.recv(server, 8).unwrap(), b"");
    ws.close(server).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_5_shutdown_checks_how_and_the_connection_through_the_table() {
    let ws = start();
    let s = ws.socket(AF, SOCK_STREAM, 0).unwrap();
    assert_eq!(ws.shutdown(s, 1), Err(WsaError::WSAENOTCONN));
    let (client, server) = pair(&ws, SOCK_STREAM, 14);
    for how in [-1, 3, 7] {
        assert_eq!(ws.shutdown(client, how), Err(WsaError::WSAEINVAL));
    }
    ws.send(client, b"still open").unwrap();
    assert_eq!(ws.recv(server, 64).unwrap(), b"still open");
    for socket in [s, client, server] {
        ws.close(socket).unwrap();
    }
    ws.finish();
}

#[test]
fn an_event_selection_makes_the_socket_non_blocking_and_keeps_it_so() {
    let ws = start();
    let (client, server) = pair(&ws, SOCK_STREAM, 15);
    let event = ws.create_event();
    ws.event_select(server, Some(event), FD_READ).unwrap();
    assert_eq!(ws.recv(server, 8), Err(WsaError::WSAEWOULDBLOCK));
    assert_eq!(
        ws.set_non_blocking(server, false),
        Err(WsaError::WSAEINVAL),
        "FIONBIO cannot make a selecting socket blocking"
    );
    ws.event_select(server, None, 0).unwrap();
    ws.set_non_blocking(server, false).unwrap();
    ws.close(client).unwrap();
    ws.close(server).unwrap();
    ws.finish();
}

/// A small deterministic generator (xorshift64*): the same calls on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) % n
    }
}

/// Randomized calls through the export — pairs made and closed in any order, plain and
/// overlapped I/O by every mechanism, shutdowns, linger options, closes with operations
/// pending — then nothing is left: no socket state, no request kept by the provider, every
/// handle ws2_32 made released once; the simulator checked R-WSP-14 to R-WSP-19 on every call.
#[test]
fn randomized_calls_through_the_export_leave_nothing_behind() {
    const ROUNDS: usize = 200_000;
    let ws = start();
    let mut rng = Rng(0x5eed_cafe_f00d_0001);
    let thread = ws.new_thread();
    let port = ws.create_port();
    let mut sockets: Vec<Socket> = Vec::new();
    let mut made: Vec<Socket> = Vec::new();
    let mut ops = Vec::new();
    let mut next_port = 100u16;
    for _ in 0..ROUNDS {
        match rng.below(10) {
            0 if sockets.len() < 16 => {
                next_port += 1;
                let (a, b) = pair(&ws, SOCK_STREAM, next_port);
                ws.associate(b, port, b.raw());
                made.extend([a, b]);
                sockets.extend([a, b]);
            }
            1 | 2 if !sockets.is_empty() => {
                let s = sockets[rng.below(sockets.len() as u64) as usize];
                let _ = ws.send(s, &[rng.below(256) as u8; 5]);
            }
            3..=5 if !sockets.is_empty() => {
                let s = sockets[rng.below(sockets.len() as u64) as usize];
                let via = match rng.below(4) {
                    0 => Via::Event,
                    1 => Via::EventOnly,
                    2 => Via::Port,
                    _ => Via::Routine(thread),
                };
                let issued = if rng.below(2) == 0 {
                    ws.recv_overlapped(s, 1 + rng.below(16) as u32, via)
                } else {
                    ws.send_overlapped(s, b"overlapped", via)
                };
                if let Ok(issued) = issued {
                    ops.push(issued.op);
                }
            }
            6 if !sockets.is_empty() => {
                let s = sockets[rng.below(sockets.len() as u64) as usize];
                let _ = ws.shutdown(s, rng.below(3) as i32);
            }
            7 if !sockets.is_empty() => {
                let s = sockets[rng.below(sockets.len() as u64) as usize];
                let linger = Linger {
                    on: rng.below(2) == 0,
                    seconds: 0,
                };
                let _ = ws.set_linger(s, linger);
            }
            8 if !sockets.is_empty() => {
                let i = rng.below(sockets.len() as u64) as usize;
                let s = sockets.swap_remove(i);
                ws.close(s)
                    .expect("a close that neither lingers nor blocks");
            }
            _ => {
                ws.run_apcs(thread);
                while ws.dequeue(port).is_some() {}
                ops.retain(|op| {
                    if ws.completions(*op).is_empty() {
                        return true;
                    }
                    ws.forget(*op);
                    false
                });
            }
        }
    }
    for s in sockets.drain(..) {
        ws.close(s).unwrap();
    }
    ws.run_apcs(thread);
    for op in ops.drain(..) {
        assert_eq!(
            ws.completions(op).len(),
            1,
            "every operation completed once"
        );
        ws.forget(op);
    }
    assert_eq!(provider().runtime().alive(), 0, "no socket state left");
    assert_eq!(provider().runtime().sockets(), 0);
    assert_eq!(provider().pending_operations(), 0, "no request kept");
    assert_eq!(provider().handles(), 0, "no route kept");
    for s in made {
        let handle = ws.handle(s).unwrap();
        assert!(
            handle.closed && handle.close_calls == 1,
            "{s:?}: {handle:?}"
        );
    }
    ws.finish();
}
