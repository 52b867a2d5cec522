//! A base provider DLL over `winprov-wsp`'s in-memory loopback transport, for the Wine layer:
//! its one export, `WSPStartup`, is driven by `tests/wine-wsp/host/wsp_host.c`, which plays
//! ws2_32 (Wine does not host third-party providers). All of it is `winprov_wsp`'s
//! `abi::Base`; this crate has no code of its own.
#![forbid(unsafe_code)]

winprov_wsp::export_provider!(
    transport: winprov_wsp::memory::Memory,
    winprov_wsp::memory::Memory::new
);
