// The trait method must return the proof that its request was resolved.
use winprov_tspi::{Call, Reply, Request};

struct Forgetful;

impl Call for Forgetful {
    fn drop_call<'r>(&mut self, request: Request<'r>, _: &[u8]) -> Reply<'r> {
        let _ = request.id();
    }
}

fn main() {}
