// A proof of completion cannot be forged: a scope of one's own issues proofs for that scope
// only, never for the call the framework is waiting on.
use winprov_core::{Completed, Delivery, call};

fn next<'call>(_call: &'call ()) -> Completed<'call> {
    call::scope(|mine| mine.issuer().completed(Delivery::Delivered))
}

fn main() {
    let _ = next(&());
}
