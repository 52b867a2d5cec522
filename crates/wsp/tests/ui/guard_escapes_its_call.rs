// An attempt is answered within its call: the guard cannot be kept, or sent to a thread that
// outlives the call, to answer "later" (answer WouldBlock and notify instead).
use std::sync::Mutex;
use winprov_wsp::{Completed, RecvCall, Received, SendCall, Sent, Socket, WsaError};

struct Keeps {
    kept: Mutex<Option<RecvCall<'static>>>,
}

impl Socket for Keeps {
    fn send<'call>(&mut self, call: SendCall<'call>) -> Completed<'call> {
        call.complete(Sent::WouldBlock)
    }

    fn recv<'call>(&mut self, call: RecvCall<'call>) -> Completed<'call> {
        std::thread::spawn(move || {
            let _ = call.complete(Received::Data(0));
        });
        todo!()
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

fn keep<'call>(keeps: &Keeps, call: RecvCall<'call>) {
    *keeps.kept.lock().unwrap() = Some(call);
}

fn main() {}
