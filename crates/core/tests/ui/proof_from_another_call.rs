// A proof belongs to one call: the proof of one call does not stand in for another's.
use winprov_core::{Completed, Delivery, call};

/// What a framework asks of the trait method of the call `second`.
fn proof_for<'call>(_call: &'call call::Scope<'call, '_>, proof: Completed<'call>) -> Delivery {
    proof.delivery()
}

fn main() {
    call::scope(|first| {
        let proof = first.issuer().completed(Delivery::Delivered);
        call::scope(|second| {
            let _ = proof_for(second, proof);
        });
    });
}
