// The framework's buffer is lent for the call: nothing can keep it and write to it after the
// call returned.
use winprov_wsp::{Completed, RecvCall, Received, SendCall, Sent, Socket, WsaError};

struct Keeps {
    last: Option<&'static mut [u8]>,
}

impl Socket for Keeps {
    fn send<'call>(&mut self, call: SendCall<'call>) -> Completed<'call> {
        call.complete(Sent::WouldBlock)
    }

    fn recv<'call>(&mut self, mut call: RecvCall<'call>) -> Completed<'call> {
        self.last = Some(call.buffer());
        call.complete(Received::WouldBlock)
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
