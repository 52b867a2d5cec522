// A proof of completion cannot be forged: a scope of the author's own issues proofs of its own
// lifetime, never of the call the framework is waiting on.
use winprov_wbem::{Completed, Delivery, GetCall, InstanceProvider};

struct Forges;

impl InstanceProvider for Forges {
    fn get_object<'call>(&self, _path: &str, call: GetCall<'call>) -> Completed<'call> {
        std::mem::forget(call);
        winprov_core::call::scope(|mine| mine.issuer().completed(Delivery::Delivered))
    }
}

fn main() {}
