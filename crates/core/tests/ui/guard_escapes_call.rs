// A call-scoped guard cannot be kept after the call that made it.
use winprov_core::{Completion, call};

fn main() {
    let mut kept: Option<Completion<'_, i32>> = None;
    call::scope(|scope| {
        let (guard, _handle) = scope.completion(|_code: i32| {}, -1);
        kept = Some(guard);
    });
    drop(kept);
}
