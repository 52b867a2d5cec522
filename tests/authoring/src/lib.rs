//! The providers of the authoring guide (`docs/authoring.md`), one module per interface, each
//! as an author's crate would have it; `tests/` holds their tests on the simulators and the
//! check that the guide quotes these files.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod layer;
pub mod transport;
pub mod tsp;
pub mod wmi;
