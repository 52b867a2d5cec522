//! `traffic-meter`: the reference layered service provider (LSP) of winprov, and the template
//! for your own.
//!
//! A non-IFS layer over TCP (IPv4 and IPv6) that passes every call down unchanged and counts,
//! per process and per remote endpoint, the connections, the bytes sent and received and how
//! each connection ended: gracefully (`shutdown(SD_SEND)`, `WSASendDisconnect`, a close without
//! an abortive linger) or abortively (`SO_LINGER {1, 0}` then close), and what the peer did (a
//! FIN, a reset). All protocol work — `WSPStartup`, the protocol chain, the provider below,
//! handles, the proc table — is `winprov-wsp`'s; this crate is only the behaviour:
//!
//! - [`identity`]: the layer's GUID, name, file names and environment variables — the one
//!   place to edit when copying the sample;
//! - [`TrafficMeter`] ([`meter`]): the [`Layer`](winprov_wsp::Layer);
//! - [`figures`]: what is counted, and the log's line format;
//! - [`log`]: the per-executable log files, rotated at a size limit;
//! - [`install`]: what the `traffic-meter` command does with the Winsock catalog.
//!
//! The DLL's one export, `WSPStartup`, is the line below.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod figures;
pub mod identity;
pub mod install;
pub mod log;
pub mod meter;

pub use meter::TrafficMeter;

winprov_wsp::export_provider!(layer: TrafficMeter, TrafficMeter::from_environment);
