// An unresolved request cannot move to a thread that outlives the call.
use winprov_tspi::{Call, Reply, Request};

struct Threaded;

impl Call for Threaded {
    fn drop_call<'r>(&mut self, request: Request<'r>, _: &[u8]) -> Reply<'r> {
        std::thread::spawn(move || {
            let _ = request.complete(Ok(()));
        });
        unreachable!()
    }
}

fn main() {}
