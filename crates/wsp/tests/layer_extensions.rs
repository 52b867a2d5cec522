//! The extension functions (`SIO_GET_EXTENSION_FUNCTION_POINTER`) through a layer stacked on
//! the base, both through their real `WSPStartup` (as `layer.rs`): a non-IFS layer hands out
//! its own `AcceptEx`, `ConnectEx` and `DisconnectEx`, which relay the application's request
//! below on the lower sockets and complete it on the layer's handle; an IFS layer hands out
//! the base's. The stack's base plays the extension functions on its own slots, answering at
//! once, pending until the test releases them, or failed (`stack::answer_extensions`).
//!
//! The simulated ws2_32 checks R-WSP-14 to 19 on every call, the extension functions' included
//! (`Winsock::connect_ex`, `accept_ex`, `disconnect_ex`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use winprov_wsp::abi::Dispatch;
use winprov_wsp::layer::{
    Call, Completion, Connecting, GUID, Ifs, NonIfs, Opened, Passed, Sending, Transfer,
};
use winprov_wsp::testing::stack::{self, Answer};
use winprov_wsp::testing::winsock::{
    self, SO_UPDATE_ACCEPT_CONTEXT, WSAID_ACCEPTEX, WSAID_CONNECTEX, WSAID_DISCONNECTEX,
    WSAID_GETACCEPTEXSOCKADDRS, WSAID_TRANSMITFILE, Winsock,
};
use winprov_wsp::{Layer, WsaError};

const LAYER_ID: GUID = GUID::from_u128(0x7769_6e70_726f_7600_1a7e_0000_0000_00e1);
const AF: i32 = 2;
const SOCK_STREAM: i32 = 1;
const SOL_SOCKET: i32 = 0xffff;
/// Data the layer's send hook panics on, after passing it down.
const PANIC_AFTER: &[u8] = b"panic after";

/// A send the hook saw: the socket, the data, the outcome.
type SeenSend = (u64, Vec<u8>, Result<Transfer, WsaError>);

/// What the layer saw: its hooks' calls and the completions it was told, by socket number
/// (the order of `Layer::open`).
#[derive(Default)]
struct Seen {
    opened: AtomicU64,
    connects: Mutex<Vec<(u64, Result<(), WsaError>)>>,
    sends: Mutex<Vec<SeenSend>>,
    completions: Mutex<Vec<(u64, Completion)>>,
}

impl Seen {
    fn reset(&self) {
        self.opened.store(0, Ordering::SeqCst);
        self.connects.lock().unwrap().clear();
        self.sends.lock().unwrap().clear();
        self.completions.lock().unwrap().clear();
    }

    fn completions(&self) -> Vec<(u64, Completion)> {
        self.completions.lock().unwrap().clone()
    }
}

macro_rules! seeing_layer {
    ($name:ident, $handles:ty) => {
        #[derive(Default)]
        struct $name(Seen);

        impl Layer for $name {
            type Handles = $handles;
            /// The socket's number.
            type Socket = u64;
            const PROVIDER_ID: GUID = LAYER_ID;

            fn open(&self, _: &Opened<'_>) -> u64 {
                self.0.opened.fetch_add(1, Ordering::SeqCst)
            }

            fn connect<'c>(&self, n: &u64, call: Call<'c, Connecting<'c>, ()>) -> Passed<'c, ()> {
                let passed = call.pass();
                self.0
                    .connects
                    .lock()
                    .unwrap()
                    .push((*n, passed.outcome().copied()));
                passed
            }

            fn send<'c>(
                &self,
                n: &u64,
                call: Call<'c, Sending<'c>, Transfer>,
            ) -> Passed<'c, Transfer> {
                let data: Vec<u8> = call.args().buffers().flatten().copied().collect();
                let passed = call.pass();
                if data == PANIC_AFTER {
                    panic!("the test layer's send hook panics after passing its call");
                }
                self.0
                    .sends
                    .lock()
                    .unwrap()
                    .push((*n, data, passed.outcome().copied()));
                passed
            }

            fn completed(&self, n: &u64, completion: Completion) {
                self.0.completions.lock().unwrap().push((*n, completion));
            }
        }
    };
}

seeing_layer!(NonIfsSeer, NonIfs);
seeing_layer!(IfsSeer, Ifs);

winprov_wsp::layer_process!(mod non_ifs: NonIfsSeer = NonIfsSeer::default);
winprov_wsp::layer_process!(mod ifs: IfsSeer = IfsSeer::default);

fn start() -> Winsock {
    let ws = Winsock::start(non_ifs::startup, stack::chain_entry(LAYER_ID, 0))
        .expect("the layer's WSPStartup");
    seen().reset();
    ws
}

fn seen() -> &'static Seen {
    &non_ifs::layer().0
}

fn relayed() -> usize {
    non_ifs::PROCESS.dispatch().unwrap().relayed()
}

/// Waits (up to 5 s) until the relay thread took every packet: a request completed at once
/// is freed when its packet comes, after the call.
fn packets_taken() -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while relayed() != 0 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    relayed()
}

/// A listener on `port` (socket 0).
fn listener(ws: &Winsock, port: u16) -> winprov_wsp::abi::Socket {
    let listener = ws.socket(AF, SOCK_STREAM, 6).expect("socket");
    ws.bind(listener, &port.to_be_bytes()).expect("bind");
    ws.listen(listener, 4).expect("listen");
    listener
}

// ---------------------------------------------------------------------------------------------
// The ioctl

#[test]
fn a_non_ifs_layer_hands_out_its_own_extension_functions_and_refuses_the_others() {
    let ws = start();
    let socket = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    for guid in [WSAID_ACCEPTEX, WSAID_CONNECTEX, WSAID_DISCONNECTEX] {
        let function = ws.extension_function(socket, guid).unwrap();
        assert_ne!(function, 0);
        assert_ne!(
            Some(function),
            stack::base_extension(guid),
            "the layer's own, not the base's: the base's knows only its own handles"
        );
    }
    assert_eq!(
        ws.extension_function(socket, WSAID_GETACCEPTEXSOCKADDRS),
        Ok(stack::base_extension(WSAID_GETACCEPTEXSOCKADDRS).unwrap()),
        "takes no socket: the base's own"
    );
    assert_eq!(
        ws.extension_function(socket, WSAID_TRANSMITFILE),
        Err(WsaError::WSAEOPNOTSUPP)
    );
    assert_eq!(
        ws.ioctl(
            socket,
            winsock::SIO_GET_EXTENSION_FUNCTION_POINTER,
            &[0; 4],
            8
        ),
        Err(WsaError::WSAEFAULT),
        "shorter than a GUID"
    );
    ws.close(socket).unwrap();
    assert_eq!(
        ws.extension_function(socket, WSAID_CONNECTEX),
        Err(WsaError::WSAENOTSOCK)
    );
    ws.finish();
}

#[test]
fn an_ifs_layer_hands_out_the_base_s_extension_functions() {
    let ws = Winsock::start(ifs::startup, stack::chain_entry(LAYER_ID, 0))
        .expect("the layer's WSPStartup");
    let socket = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    for guid in [WSAID_ACCEPTEX, WSAID_CONNECTEX, WSAID_DISCONNECTEX] {
        assert_eq!(
            ws.extension_function(socket, guid),
            Ok(stack::base_extension(guid).unwrap()),
            "the handles are the base's"
        );
    }
    ws.close(socket).unwrap();
    ws.finish();
}

// ---------------------------------------------------------------------------------------------
// ConnectEx

#[test]
fn r_wsp_16_a_connect_ex_that_completes_at_once_is_complete_when_it_returns() {
    let ws = start();
    let listener = listener(&ws, 30);
    let client = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let connect_ex = ws.extension_function(client, WSAID_CONNECTEX).unwrap();
    let issued = ws
        .connect_ex(
            connect_ex,
            client,
            &30u16.to_be_bytes(),
            b"hello",
            winsock::Via::Event,
        )
        .unwrap();
    // The simulator checks the completion came before the call returned (R-WSP-16).
    assert_eq!(issued.done.map(|d| d.bytes), Some(5));
    let completions = ws.completions(issued.op);
    assert_eq!(completions.len(), 1);
    assert_eq!((completions[0].error, completions[0].bytes), (0, 5));
    // The author saw a connect, and its data as a send.
    assert_eq!(*seen().connects.lock().unwrap(), [(1, Ok(()))]);
    assert_eq!(
        *seen().sends.lock().unwrap(),
        [(
            1,
            b"hello".to_vec(),
            Ok(Transfer::Done { bytes: 5, flags: 0 })
        )]
    );
    assert!(
        seen().completions().is_empty(),
        "a send the hook saw done is not told again"
    );
    let (server, _) = ws.accept(listener).unwrap();
    assert_eq!(ws.recv(server, 64).unwrap(), b"hello");
    ws.forget(issued.op);
    for socket in [client, server, listener] {
        ws.close(socket).unwrap();
    }
    assert_eq!(packets_taken(), 0, "the packet freed the substitute");
    ws.finish();
}

#[test]
fn r_wsp_18_a_pending_connect_ex_completes_through_the_port_of_the_layer_handle() {
    let ws = start();
    let listener = listener(&ws, 31);
    let client = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let port = ws.create_port();
    ws.associate(client, port, 0xc0);
    let connect_ex = ws.extension_function(client, WSAID_CONNECTEX).unwrap();
    stack::answer_extensions(Answer::Pending);
    let with_data = ws
        .connect_ex(
            connect_ex,
            client,
            &31u16.to_be_bytes(),
            b"abc",
            winsock::Via::Port,
        )
        .unwrap();
    assert!(with_data.is_pending());
    assert_eq!(
        ws.get_overlapped_result(client, with_data.op, false),
        Err(WsaError::WSA_IO_INCOMPLETE)
    );
    assert_eq!(
        *seen().sends.lock().unwrap(),
        [(1, b"abc".to_vec(), Ok(Transfer::Pending))]
    );
    assert_eq!(stack::release(), 1);
    // Waits for the relay with fWait: no sleep.
    assert_eq!(
        ws.get_overlapped_result(client, with_data.op, true)
            .unwrap()
            .bytes,
        3
    );
    let packet = ws.dequeue(port).expect("the caller's port got the packet");
    assert_eq!(
        (packet.key, packet.op, packet.bytes, packet.error),
        (0xc0, with_data.op, 3, 0)
    );
    assert_eq!(
        seen().completions(),
        [(1, Completion::Sent { outcome: Ok(3) })],
        "the send the hook saw pending is told"
    );

    // Without data: told as a connect, however it ends.
    let other = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    ws.associate(other, port, 0xc1);
    let bare = ws
        .connect_ex(
            connect_ex,
            other,
            &31u16.to_be_bytes(),
            b"",
            winsock::Via::Port,
        )
        .unwrap();
    assert_eq!(stack::release(), 1);
    ws.get_overlapped_result(other, bare.op, true).unwrap();
    let packet = ws.dequeue(port).expect("the packet");
    assert_eq!((packet.key, packet.op), (0xc1, bare.op));
    assert_eq!(
        seen().completions()[1],
        (2, Completion::Connected { outcome: Ok(()) })
    );
    ws.forget(with_data.op);
    ws.forget(bare.op);
    let (server, _) = ws.accept(listener).unwrap();
    let (second, _) = ws.accept(listener).unwrap();
    for socket in [client, other, server, second, listener] {
        ws.close(socket).unwrap();
    }
    assert_eq!(relayed(), 0);
    ws.finish();
}

#[test]
fn r_wsp_14_closing_a_socket_aborts_its_relayed_connect_ex_before_it_returns() {
    let ws = start();
    let listener = listener(&ws, 32);
    let client = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let connect_ex = ws.extension_function(client, WSAID_CONNECTEX).unwrap();
    stack::answer_extensions(Answer::Pending);
    let issued = ws
        .connect_ex(
            connect_ex,
            client,
            &32u16.to_be_bytes(),
            b"",
            winsock::Via::Event,
        )
        .unwrap();
    assert!(issued.is_pending());
    ws.close(client).unwrap();
    // The simulator checks it completed with 995 before the close returned.
    let completions = ws.completions(issued.op);
    assert_eq!(completions.len(), 1);
    assert_eq!(completions[0].error, 995);
    assert_eq!(
        seen().completions(),
        [(
            1,
            Completion::Connected {
                outcome: Err(WsaError::WSA_OPERATION_ABORTED)
            }
        )]
    );
    assert_eq!(relayed(), 0);
    ws.forget(issued.op);
    let (server, _) = ws.accept(listener).unwrap();
    ws.close(server).unwrap();
    ws.close(listener).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_16_a_connect_ex_that_fails_below_never_completes() {
    let ws = start();
    let client = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let connect_ex = ws.extension_function(client, WSAID_CONNECTEX).unwrap();
    stack::answer_extensions(Answer::Fail(WsaError::WSAECONNREFUSED));
    assert_eq!(
        ws.connect_ex(
            connect_ex,
            client,
            &33u16.to_be_bytes(),
            b"data",
            winsock::Via::Event,
        ),
        Err(WsaError::WSAECONNREFUSED)
    );
    assert_eq!(
        *seen().connects.lock().unwrap(),
        [(0, Err(WsaError::WSAECONNREFUSED))]
    );
    assert!(seen().completions().is_empty());
    assert_eq!(relayed(), 0, "the substitute was freed by the call");
    ws.close(client).unwrap();
    ws.finish();
}

#[test]
fn r_wsp_15_the_final_cleanup_relays_no_connect_ex() {
    let ws = start();
    let _listener = listener(&ws, 34);
    let client = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let connect_ex = ws.extension_function(client, WSAID_CONNECTEX).unwrap();
    stack::answer_extensions(Answer::Pending);
    let issued = ws
        .connect_ex(
            connect_ex,
            client,
            &34u16.to_be_bytes(),
            b"",
            winsock::Via::Event,
        )
        .unwrap();
    assert_eq!(relayed(), 1);
    ws.cleanup().unwrap();
    // The simulator checks nothing was notified during the cleanup or after it.
    assert!(ws.completions(issued.op).is_empty());
    assert!(seen().completions().is_empty());
    assert_eq!(relayed(), 0, "freed");
    assert_eq!(stack::held(), 0);
    ws.finish();
}

// ---------------------------------------------------------------------------------------------
// DisconnectEx

#[test]
fn disconnect_ex_is_relayed_and_told() {
    let ws = start();
    let listener = listener(&ws, 35);
    let client = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    ws.connect(client, &35u16.to_be_bytes()).unwrap();
    let (server, _) = ws.accept(listener).unwrap();
    let disconnect_ex = ws.extension_function(client, WSAID_DISCONNECTEX).unwrap();
    stack::answer_extensions(Answer::Pending);
    let issued = ws
        .disconnect_ex(disconnect_ex, client, 0, Some(winsock::Via::Event))
        .unwrap()
        .expect("overlapped");
    assert!(issued.is_pending());
    assert_eq!(stack::release(), 1);
    ws.get_overlapped_result(client, issued.op, true).unwrap();
    assert_eq!(ws.completions(issued.op)[0].error, 0);
    assert_eq!(ws.recv(server, 16).unwrap(), b"", "the peer read the end");
    assert_eq!(
        seen().completions(),
        [(1, Completion::Disconnected { outcome: Ok(()) })]
    );
    ws.forget(issued.op);

    // Without a request: done when it returns, and told.
    let (other_client, other_server) = {
        let c = ws.socket(AF, SOCK_STREAM, 6).unwrap();
        ws.connect(c, &35u16.to_be_bytes()).unwrap();
        (c, ws.accept(listener).unwrap().0)
    };
    assert_eq!(
        ws.disconnect_ex(disconnect_ex, other_client, 0, None),
        Ok(None)
    );
    assert_eq!(ws.recv(other_server, 16).unwrap(), b"");
    assert_eq!(
        seen().completions()[1],
        (3, Completion::Disconnected { outcome: Ok(()) })
    );
    for socket in [client, server, other_client, other_server, listener] {
        ws.close(socket).unwrap();
    }
    assert_eq!(relayed(), 0);
    ws.finish();
}

// ---------------------------------------------------------------------------------------------
// AcceptEx

#[test]
fn accept_ex_takes_the_layer_s_handles_and_the_accept_context_is_translated() {
    let ws = start();
    let listener = listener(&ws, 36);
    let accept = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let client = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    ws.connect(client, &36u16.to_be_bytes()).unwrap();
    ws.send(client, b"first").unwrap();
    let accept_ex = ws.extension_function(listener, WSAID_ACCEPTEX).unwrap();
    let issued = ws
        .accept_ex(accept_ex, listener, accept, 16, winsock::Via::Event)
        .unwrap();
    assert_eq!(issued.done.map(|d| d.bytes), Some(5));
    assert_eq!(ws.received(issued.op), b"first");
    assert_eq!(
        seen().completions(),
        [(1, Completion::Accepted { outcome: Ok(5) })],
        "told with the accept socket's state"
    );
    let mut listener_raw = listener.raw().to_ne_bytes();
    ws.set_sock_opt(accept, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, &listener_raw)
        .expect("the listener translated for the base");
    let contexts = stack::accept_contexts();
    assert_eq!(contexts.len(), 1);
    let base = stack::base().dispatch().unwrap();
    assert!(base.knows_socket(contexts[0].0) && base.knows_socket(contexts[0].1));
    assert_ne!(contexts[0].1, listener);
    // A handle that is not the layer's socket.
    listener_raw = usize::MAX.to_ne_bytes();
    assert_eq!(
        ws.set_sock_opt(accept, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, &listener_raw),
        Err(WsaError::WSAENOTSOCK)
    );
    ws.forget(issued.op);
    for socket in [accept, client, listener] {
        ws.close(socket).unwrap();
    }
    assert_eq!(packets_taken(), 0);
    ws.finish();
}

#[test]
fn r_wsp_14_closing_the_listener_aborts_its_relayed_accept_ex_before_it_returns() {
    let ws = start();
    let listener = listener(&ws, 37);
    let accept = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let client = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    ws.connect(client, &37u16.to_be_bytes()).unwrap();
    let accept_ex = ws.extension_function(listener, WSAID_ACCEPTEX).unwrap();
    stack::answer_extensions(Answer::Pending);
    let issued = ws
        .accept_ex(accept_ex, listener, accept, 0, winsock::Via::Event)
        .unwrap();
    assert!(issued.is_pending());
    ws.close(listener).unwrap();
    assert_eq!(ws.completions(issued.op)[0].error, 995);
    assert_eq!(
        seen().completions(),
        [(
            1,
            Completion::Accepted {
                outcome: Err(WsaError::WSA_OPERATION_ABORTED)
            }
        )]
    );
    assert_eq!(relayed(), 0);
    ws.forget(issued.op);
    ws.close(accept).unwrap();
    ws.close(client).unwrap();
    ws.finish();
}

// ---------------------------------------------------------------------------------------------
// A hook that panics after its relayed request went down

#[test]
fn r_wsp_16_a_hook_that_panics_after_its_relayed_request_went_down_keeps_its_answer() {
    let ws = start();
    let listener = listener(&ws, 38);
    let client = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    ws.connect(client, &38u16.to_be_bytes()).unwrap();
    let (server, _) = ws.accept(listener).unwrap();
    // Done at once below: the caller's request is complete, the call answers so.
    let at_once = ws
        .send_overlapped(client, PANIC_AFTER, winsock::Via::Event)
        .expect("the request went down: its answer stands");
    assert_eq!(at_once.done.map(|d| d.bytes), Some(11));
    assert_eq!(ws.completions(at_once.op).len(), 1);
    assert_eq!(ws.recv(server, 64).unwrap(), PANIC_AFTER);

    // Pending below (a ConnectEx's data): the call answers pending, the request completes once.
    let other = ws.socket(AF, SOCK_STREAM, 6).unwrap();
    let connect_ex = ws.extension_function(other, WSAID_CONNECTEX).unwrap();
    stack::answer_extensions(Answer::Pending);
    let pending = ws
        .connect_ex(
            connect_ex,
            other,
            &38u16.to_be_bytes(),
            PANIC_AFTER,
            winsock::Via::Event,
        )
        .expect("the request went down: its answer stands");
    assert!(pending.is_pending());
    assert_eq!(stack::release(), 1);
    assert_eq!(
        ws.get_overlapped_result(other, pending.op, true)
            .unwrap()
            .bytes,
        11
    );
    assert_eq!(ws.completions(pending.op).len(), 1);
    ws.forget(at_once.op);
    ws.forget(pending.op);
    let (second, _) = ws.accept(listener).unwrap();
    for socket in [client, server, other, second, listener] {
        ws.close(socket).unwrap();
    }
    assert_eq!(packets_taken(), 0);
    ws.finish();
}
