// Nothing is indicated after the final status (R-WMI-3): the guard is gone.
use winprov_wbem::{Completed, Instance, InstanceProvider, Response};

struct Late;

impl InstanceProvider for Late {
    fn enumerate<'call>(&self, _class: &str, mut call: Response<'call>) -> Completed<'call> {
        let done = call.finish(Ok(()));
        let _ = call.indicate(Instance::new("Entry"));
        done
    }
}

fn main() {}
