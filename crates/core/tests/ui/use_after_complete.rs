// Once completed, the guard is gone: nothing can be asked of it any more.
use winprov_core::completion;

fn main() {
    let (guard, _handle) = completion(|_code: i32| {}, -1);
    let _ = guard.complete(0);
    if guard.is_aborted() {}
}
