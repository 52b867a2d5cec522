// An accepted request is completed exactly once: `complete` consumes the guard.
use winprov_tspi::{LineErr, Pending};

fn finish(pending: Pending) {
    let _ = pending.complete(Ok(()));
    let _ = pending.complete(Err(LineErr::LINEERR_OPERATIONFAILED));
}

fn main() {}
