// A proof of resolution belongs to its own request.
use winprov_tspi::{Completed, Request};

fn resolve<'a, 'b>(mine: Request<'a>, other: Request<'b>) -> Completed<'a> {
    let _ = mine;
    other.complete(Ok(()))
}

fn main() {}
