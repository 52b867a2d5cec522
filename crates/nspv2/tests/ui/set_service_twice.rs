// SetServiceEx is completed exactly once too.
use winprov_nspv2::{
    Completed, ControlFlags, Lookup, NamespaceProvider, NextCall, Query, SetServiceCall, WsaError,
};

struct Provider;
struct NoLookup;

impl Lookup for NoLookup {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        call.no_more()
    }
}

impl NamespaceProvider for Provider {
    type Session = ();
    type Lookup = NoLookup;
    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }
    fn lookup_begin(&self, _: &(), _: &Query, _: ControlFlags) -> Result<NoLookup, WsaError> {
        Ok(NoLookup)
    }
    fn set_service<'call>(&self, _: &(), call: SetServiceCall<'call>) -> Completed<'call> {
        let _ = call.complete(Ok(()));
        call.complete(Err(WsaError::WSAEINVAL))
    }
}

fn main() {}
