// The trait method must return the proof that its request was resolved, and only the request's
// resolving methods make one: a proof issued by a scope of the author's own is not this call's.
use winprov_tspi::{Call, Completed, Delivery, Request};

struct Forgetful;

impl Call for Forgetful {
    fn drop_call<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
        drop(request);
        winprov_core::call::scope(|mine| mine.issuer().completed(Delivery::Delivered))
    }
}

fn main() {}
