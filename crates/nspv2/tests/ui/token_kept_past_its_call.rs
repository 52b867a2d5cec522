// The call's cancellation is borrowed for the call: it cannot be kept in the lookup.
use winprov_nspv2::{Cancellation, Completed, Lookup, NextCall};

struct Keeps {
    cancellation: Option<Cancellation<'static>>,
}

impl Lookup for Keeps {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        self.cancellation = Some(call.cancellation());
        call.no_more()
    }
}

fn main() {}
