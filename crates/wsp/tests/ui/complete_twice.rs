// An attempt is answered once (R-WSP-16 rests on it): `complete` consumes the guard.
use winprov_wsp::{Completed, RecvCall, Received, SendCall, Sent, Socket, WsaError};

struct Twice;

impl Socket for Twice {
    fn send<'call>(&mut self, call: SendCall<'call>) -> Completed<'call> {
        call.complete(Sent::WouldBlock)
    }

    fn recv<'call>(&mut self, call: RecvCall<'call>) -> Completed<'call> {
        let _ = call.complete(Received::WouldBlock);
        call.complete(Received::Data(0))
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
