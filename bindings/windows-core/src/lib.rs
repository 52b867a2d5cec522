//! `windows_core` as the generated bindings in `winprov-bindings` see it.
//!
//! windows-core defines its string types (`PCWSTR`, `PWSTR`, `PCSTR`, `PSTR`, `BSTR`, from
//! windows-strings) and the `Free` trait only when compiled for Windows. winprov's protocol logic
//! and host simulators run on every host, so the bindings must build everywhere. This crate
//! re-exports windows-core unchanged and, on other hosts only, adds stand-ins with the same
//! names, layouts and ABI roles. On Windows it is a pure re-export: the types are windows-core's.
//!
//! `winprov-bindings` depends on this crate under the name `windows_core`, so the generated
//! files stay exactly as windows-bindgen writes them.

#![cfg_attr(windows, forbid(unsafe_code))]

pub use windows_core::*;

#[cfg(not(windows))]
mod portable;
#[cfg(not(windows))]
pub use portable::*;
