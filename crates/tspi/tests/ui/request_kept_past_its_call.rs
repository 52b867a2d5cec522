// A request is resolved during the trait method that received it: it cannot be stored for
// later (accept it, and keep the owned `Pending` instead).
use winprov_tspi::{Call, Completed, Request};

struct Kept {
    later: Option<Request<'static>>,
}

impl Call for Kept {
    fn drop_call<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
        self.later = Some(request);
        unreachable!()
    }
}

fn main() {}
