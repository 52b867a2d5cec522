// The call guard cannot be stored in the lookup for a later call.
use winprov_nspv2::{Completed, Lookup, NextCall};

struct Keeps {
    saved: Option<NextCall<'static>>,
}

impl Lookup for Keeps {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        self.saved = Some(call);
        panic!()
    }
}

fn main() {}
