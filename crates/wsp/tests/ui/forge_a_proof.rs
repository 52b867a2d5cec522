// A proof of completion cannot be forged: a scope of the author's own issues proofs of its own
// lifetime, never of the attempt the framework is waiting on.
use winprov_core::Delivery;
use winprov_wsp::{Completed, RecvCall, SendCall, Sent, Socket, WsaError};

struct Forges;

impl Socket for Forges {
    fn send<'call>(&mut self, call: SendCall<'call>) -> Completed<'call> {
        call.complete(Sent::WouldBlock)
    }

    fn recv<'call>(&mut self, call: RecvCall<'call>) -> Completed<'call> {
        std::mem::forget(call);
        winprov_core::call::scope(|mine| mine.issuer().completed(Delivery::Delivered))
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

fn main() {}
