#![doc = include_str!("../README.md")]

/// Generated code: the lints below are the generator's business, not ours. Hand-written code in
/// this crate (`not_in_metadata`) gets every workspace lint.
macro_rules! generated {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {$(
        $(#[$attr])*
        #[rustfmt::skip]
        #[allow(
            missing_debug_implementations,
            rust_2018_idioms,
            unsafe_op_in_unsafe_fn,
            clippy::undocumented_unsafe_blocks,
        )]
        pub mod $name;
    )*};
}

generated! {
    /// Winsock: the namespace provider v2 (NSPv2) and service provider (WSP/LSP) interfaces,
    /// from `ws2spi.txt`.
    ws2spi,
    /// WMI provider interfaces and WBEM status codes, from `wbem.txt`.
    wbem,
    /// TAPI 2.x service-provider types, callbacks and constants, from `tapi.txt`.
    tapi,
}

pub mod automation;
pub mod not_in_metadata;

/// The `windows-core` the generated code is written against (GUID, string pointers, HRESULT …),
/// so dependants name the very same types.
pub use windows_core;
