// A call has exactly one final status (R-WMI-3): finish consumes the guard.
use winprov_wbem::{Completed, EventProvider, InstanceProvider, MethodProvider, Response};

struct Twice;

impl InstanceProvider for Twice {
    fn enumerate<'call>(&self, _class: &str, call: Response<'call>) -> Completed<'call> {
        let _ = call.finish(Ok(()));
        call.finish(Ok(()))
    }
}
impl MethodProvider for Twice {}
impl EventProvider for Twice {}

fn main() {}
