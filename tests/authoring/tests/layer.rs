//! The layer stacked on a base provider, both through their real WSPStartup: winprov-wsp's
//! ws2_32 simulator starts the layer with a chain [layer, base], and the layer finds the base
//! (the in-memory transport) in a catalog of the simulator's own.
#![forbid(unsafe_code)]

use winprov_authoring_examples::layer::ConnectCounter;
use winprov_wsp::Layer;
use winprov_wsp::testing::stack;
use winprov_wsp::testing::winsock::Winsock;

const AF_INET: i32 = 2;
const SOCK_STREAM: i32 = 1;
const IPPROTO_TCP: i32 = 6;

// The layer's process as `export_provider!(layer: …)` makes it, over the simulator's catalog.
winprov_wsp::layer_process!(mod stacked: ConnectCounter = ConnectCounter::default);

/// `SOCKADDR_IN` bytes for 192.0.2.1:`port`.
fn sockaddr(port: u16) -> Vec<u8> {
    let mut bytes = AF_INET.to_le_bytes()[..2].to_vec();
    bytes.extend(port.to_be_bytes());
    bytes.extend([192, 0, 2, 1]);
    bytes.extend([0; 8]);
    bytes
}

#[test]
fn connects_through_the_layer_are_counted_and_data_passes_unchanged() {
    let ws = Winsock::start(
        stacked::startup,
        stack::chain_entry(ConnectCounter::PROVIDER_ID, 0),
    )
    .unwrap();
    let listener = ws.socket(AF_INET, SOCK_STREAM, IPPROTO_TCP).unwrap();
    ws.bind(listener, &sockaddr(7001)).unwrap();
    ws.listen(listener, 1).unwrap();
    let client = ws.socket(AF_INET, SOCK_STREAM, IPPROTO_TCP).unwrap();
    ws.connect(client, &sockaddr(7001)).unwrap();
    let (server, _) = ws.accept(listener).unwrap();
    assert_eq!(stacked::layer().connects(), 1);

    assert_eq!(ws.send(client, b"hello").unwrap(), 5);
    assert_eq!(ws.recv(server, 64).unwrap(), b"hello");
    for socket in [client, server, listener] {
        ws.close(socket).unwrap();
    }
    ws.finish();
}
