//! The transport run by the framework's runtime, played by winprov-wsp's ws2_32 simulator.
#![forbid(unsafe_code)]

use winprov_authoring_examples::transport::Discard;
use winprov_wsp::testing::Host;
use winprov_wsp::{Address, WsaError};

#[test]
fn no_send_after_shutdown_send() {
    let host = Host::new(Discard);
    let socket = host.socket(0).unwrap();
    host.connect(socket, &Address::new(*b"anywhere")).unwrap();
    assert_eq!(host.send(socket, b"gone").unwrap().bytes, 4);
    host.shutdown(socket, 1).unwrap(); // SD_SEND
    // The framework's rule (R-WSP-7), not the transport's code:
    assert_eq!(host.send(socket, b"more"), Err(WsaError::WSAESHUTDOWN));
    host.close(socket).unwrap();
    host.finish(); // every operation completed exactly once, nothing left
}
