// A proof of completion cannot be forged: a scope of the author's own issues proofs of its own
// lifetime, never of the call the framework is waiting on.
use winprov_nspv2::{Completed, Delivery, Lookup, NextCall};

struct Forges;

impl Lookup for Forges {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        std::mem::forget(call);
        winprov_core::call::scope(|mine| mine.issuer().completed(Delivery::Delivered))
    }
}

fn main() {}
