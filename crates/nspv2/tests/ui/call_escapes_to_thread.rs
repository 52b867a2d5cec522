// The call guard cannot outlive its call: no detached thread may take it.
use winprov_nspv2::{Completed, Lookup, NextCall};

struct Escapes;

impl Lookup for Escapes {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        let handle = std::thread::spawn(move || call.no_more());
        handle.join().unwrap()
    }
}

fn main() {}
