// A NextEx call is completed exactly once: the completing methods consume the guard.
use winprov_nspv2::{Completed, Lookup, NextCall, QueryResult};

struct Twice;

impl Lookup for Twice {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        let _ = call.found(QueryResult::named("a@example.org"));
        call.no_more()
    }
}

fn main() {}
