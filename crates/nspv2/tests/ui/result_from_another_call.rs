// A proof of completion is tied to its own call: one made for another call does not do.
use winprov_nspv2::{Completed, Lookup, NextCall};

struct Reuses {
    old: Option<Completed<'static>>,
}

impl Lookup for Reuses {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        drop(call);
        self.old.take().unwrap()
    }
}

fn main() {}
