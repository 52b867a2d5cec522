// An unresolved request cannot move to a thread that outlives the call.
use winprov_tspi::{Call, Completed, Request};

struct Threaded;

impl Call for Threaded {
    fn drop_call<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
        std::thread::spawn(move || {
            let _ = request.complete(Ok(()));
        });
        unreachable!()
    }
}

fn main() {}
