// A completion guard is consumed by `complete`: the host cannot be told twice.
use winprov_core::completion;

fn main() {
    let (guard, _handle) = completion(|_code: i32| {}, -1);
    let _ = guard.complete(0);
    let _ = guard.complete(0);
}
