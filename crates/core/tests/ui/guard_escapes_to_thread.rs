// A call-scoped guard cannot move to a thread that may outlive the call.
use winprov_core::call;

fn main() {
    call::scope(|scope| {
        let (guard, _handle) = scope.completion(|_code: i32| {}, -1);
        std::thread::spawn(move || {
            let _ = guard.complete(0);
        });
    });
}
