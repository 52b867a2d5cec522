// A guard is borrowed for its call: it cannot be kept, or sent to a thread that outlives it, to
// finish "later".
use std::sync::Mutex;
use winprov_wbem::{Completed, InstanceProvider, Response};

struct Keeps {
    kept: Mutex<Option<Response<'static>>>,
}

impl InstanceProvider for Keeps {
    fn enumerate<'call>(&self, _class: &str, call: Response<'call>) -> Completed<'call> {
        std::thread::spawn(move || {
            let _ = call.finish(Ok(()));
        });
        todo!()
    }
}

fn keep<'call>(keeps: &Keeps, call: Response<'call>) {
    *keeps.kept.lock().unwrap() = Some(call);
}

fn main() {}
