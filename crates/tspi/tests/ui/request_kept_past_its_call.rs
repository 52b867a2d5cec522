// A request is resolved during the trait method that received it: it cannot be stored for
// later (accept it, and keep the owned `Pending` instead).
use winprov_tspi::{Call, Reply, Request};

struct Kept {
    later: Option<Request<'static>>,
}

impl Call for Kept {
    fn drop_call<'r>(&mut self, request: Request<'r>, _: &[u8]) -> Reply<'r> {
        self.later = Some(request);
        unreachable!()
    }
}

fn main() {}
