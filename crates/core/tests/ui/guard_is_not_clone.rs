// There is one guard per operation: it cannot be duplicated to complete twice.
use winprov_core::completion;

fn main() {
    let (guard, _handle) = completion(|_code: i32| {}, -1);
    let copy = guard.clone();
    let _ = guard.complete(0);
    let _ = copy.complete(1);
}
