//! A base provider's transport: its sockets connect anywhere, take every byte and deliver none.
use winprov_wsp::{
    Address, Completed, Notifier, Protocol, Received, RecvCall, SendCall, Sent, Socket, Transport,
    WsaError,
};

/// The transport.
#[derive(Debug, Default)]
pub struct Discard;

/// One of its sockets.
#[derive(Debug)]
pub struct DiscardSocket;

impl Transport for Discard {
    type Socket = DiscardSocket;

    fn protocols(&self) -> Vec<Protocol> {
        vec![Protocol::stream("discard")]
    }

    fn open(&self, _: &Protocol, _: Notifier) -> Result<DiscardSocket, WsaError> {
        Ok(DiscardSocket)
    }
}

impl Socket for DiscardSocket {
    fn connect(&mut self, _: &Address) -> Result<(), WsaError> {
        Ok(())
    }

    fn send<'call>(&mut self, call: SendCall<'call>) -> Completed<'call> {
        let taken = call.data().len();
        call.complete(Sent::Accepted(taken))
    }

    fn recv<'call>(&mut self, call: RecvCall<'call>) -> Completed<'call> {
        call.complete(Received::WouldBlock) // nothing ever arrives
    }

    fn unread(&self) -> usize {
        0
    }

    fn unsent(&self) -> usize {
        0
    }

    fn send_fin(&mut self, _: Option<&[u8]>) -> Result<(), WsaError> {
        Ok(())
    }

    fn reset(&mut self) {}
}

// The DLL's WSPStartup and its proc table, served by the framework over the transport.
winprov_wsp::export_provider!(transport: Discard, Discard::default);
