// A proof of resolution belongs to its own request.
use winprov_tspi::{Reply, Request};

fn resolve<'a, 'b>(mine: Request<'a>, other: Request<'b>) -> Reply<'a> {
    let _ = mine;
    other.complete(Ok(()))
}

fn main() {}
