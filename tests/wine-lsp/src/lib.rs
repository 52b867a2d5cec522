//! The Wine tests of layered Winsock providers. For now the package carries their declarations
//! only: `base/wsp_base.c`, a base (transport) provider written in C over the process's real
//! ws2_32 sockets, which Wine lacks and a layer needs beneath it, and `host/base_host.c`, the
//! harness that proves that base alone (`tests/README.md`). The layered provider's test DLL
//! comes later, as this crate's cdylib.
#![forbid(unsafe_code)]
