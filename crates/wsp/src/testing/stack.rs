//! A layered provider stacked on a base provider in one test process (feature `testing`): the
//! ws2_32 simulator (`testing::winsock`) starts the layer with a chain entry
//! [layer, base]; the layer finds the base in an in-process catalog ([`catalog`]) and starts it
//! with the same upcall table; the base is [`abi::Base`](crate::abi::Base) over the in-memory
//! transport ([`Memory`]), with a `WSPStartup` of its own ([`base_startup`]).
//!
//! [`layer_process!`](crate::layer_process) declares the layer's side: its process (the
//! `static` `export_provider!` would make, over this catalog instead of the system's, relaying
//! its overlapped requests through the simulator's ports) and its `WSPStartup`.
//!
//! ```
//! use winprov_wsp::layer::{GUID, NonIfs, Opened};
//! use winprov_wsp::testing::stack;
//! use winprov_wsp::testing::winsock::Winsock;
//! use winprov_wsp::Layer;
//!
//! #[derive(Default)]
//! struct Transparent;
//!
//! impl Layer for Transparent {
//!     type Handles = NonIfs;
//!     type Socket = ();
//!     const PROVIDER_ID: GUID = GUID::from_u128(0x7769_6e70_726f_7600_1a7e_0000_0000_00aa);
//!     fn open(&self, _: &Opened<'_>) {}
//! }
//!
//! winprov_wsp::layer_process!(mod transparent: Transparent = Transparent::default);
//!
//! fn main() {
//!     let entry = stack::chain_entry(Transparent::PROVIDER_ID, 0);
//!     let ws = Winsock::start(transparent::startup, entry).unwrap();
//!     let socket = ws.socket(2, 1, 6).unwrap();
//!     assert_eq!(ws.handle(socket).unwrap().catalog_entry_id, stack::CHAIN);
//!     assert_eq!(stack::base().dispatch().unwrap().handles(), 1, "one socket below");
//!     ws.close(socket).unwrap();
//!     ws.finish();
//! }
//! ```

use super::winsock::{self, Startup};
use crate::abi::{Base, Export, InProcess, Process};
use crate::memory::Memory;
use winprov_bindings::windows_core::GUID;
use winprov_bindings::ws2spi::{WSAPROTOCOL_INFOW, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE};

/// The layer's hidden entry.
pub const HIDDEN: u32 = 2001;
/// The base provider's entry.
pub const BASE_ENTRY: u32 = 2002;
/// The chain [layer, base].
pub const CHAIN: u32 = 2003;
/// The base provider's GUID.
pub const BASE_PROVIDER: GUID = GUID::from_u128(0x7769_6e70_726f_7600_ba5e_0000_0000_0001);
/// The base provider's DLL path, as the catalog has it.
pub const BASE_DLL: &str = "%SystemRoot%\\system32\\winprov-memory-base.dll";

/// A TCP/IPv4 catalog entry: `id`, of `provider`, with the protocol chain `chain` (empty: a
/// layer's hidden entry) and the service flags `flags`.
pub fn entry(id: u32, provider: GUID, chain: &[u32], flags: u32) -> WSAPROTOCOL_INFOW {
    let mut info = WSAPROTOCOL_INFOW {
        dwServiceFlags1: flags,
        ProviderId: provider,
        dwCatalogEntryId: id,
        iVersion: 2,
        iAddressFamily: 2,
        iMaxSockAddr: 28,
        iMinSockAddr: 16,
        iSocketType: 1,
        iProtocol: 6,
        ..WSAPROTOCOL_INFOW::default()
    };
    info.ProtocolChain.ChainLen = chain.len() as i32;
    info.ProtocolChain.ChainEntries[..chain.len()].copy_from_slice(chain);
    for (unit, out) in "winprov stacked protocol"
        .encode_utf16()
        .zip(info.szProtocol.iter_mut())
    {
        *out = unit;
    }
    info
}

/// The base provider's own entry.
pub fn base_entry() -> WSAPROTOCOL_INFOW {
    entry(BASE_ENTRY, BASE_PROVIDER, &[BASE_ENTRY], 0)
}

/// The chain entry of the layer `layer` (its provider GUID) over the base, with the service
/// flags `flags`: what ws2_32 starts the layer with.
pub fn chain_entry(layer: GUID, flags: u32) -> WSAPROTOCOL_INFOW {
    entry(CHAIN, layer, &[HIDDEN, BASE_ENTRY], flags)
}

/// The catalog's entries: the layer's hidden entry, the base's, the chain.
pub fn entries(layer: GUID) -> Vec<WSAPROTOCOL_INFOW> {
    vec![
        entry(HIDDEN, layer, &[], 0),
        base_entry(),
        chain_entry(layer, 0),
    ]
}

/// The in-process catalog the layer `layer` finds the base in.
pub fn catalog(layer: GUID) -> InProcess {
    // SAFETY: `memory_base_startup` is the base's generated WSPStartup (abi::startup::startup).
    unsafe {
        InProcess::new(entries(layer)).with_provider(
            BASE_PROVIDER,
            BASE_DLL,
            Some(memory_base_startup),
        )
    }
}

enum BaseExport {}

static BASE: Process<Base<Memory>> = Process::new(|| {
    Base::new(Memory::new()).completing_with(winsock::WPUCompleteOverlappedRequest)
});

impl Export for BaseExport {
    type Dispatch = Base<Memory>;
    fn process() -> &'static Process<Base<Memory>> {
        &BASE
    }
}

unsafe extern "system" fn memory_base_startup(
    version: u16,
    data: *const WSPDATA,
    info: *const WSAPROTOCOL_INFOW,
    upcalls: WSPUPCALLTABLE,
    table: *mut WSPPROC_TABLE,
) -> i32 {
    // SAFETY: forwarded from its caller, under WSPStartup's contract.
    unsafe { crate::abi::startup::startup::<BaseExport>(version, data, info, upcalls, table) }
}

/// The base provider's `WSPStartup` (to start it alone, with [`base_entry`]).
pub fn base_startup() -> Startup {
    memory_base_startup
}

/// The base provider's process: its startup count, and its [`Base`] once started.
pub fn base() -> &'static Process<Base<Memory>> {
    &BASE
}

/// Declares a layer's process for tests, stacked on the [`testing::stack`](crate::testing::stack)
/// base: `layer_process!(mod name: MyLayer = MyLayer::new)` makes a module `name` with, visible in
/// the enclosing module, `PROCESS` (the layer's `Process`: `abi::Layered` over `stack::catalog`, its overlapped
/// requests relayed through the simulator's `LayerPorts` and completed through its
/// `WPUCompleteOverlappedRequest`), `startup` (its `WSPStartup`, for `Winsock::start`) and
/// `layer()` (the author's layer, once started). `$make` (a path or a closure without
/// captures, resolved in the enclosing module) makes the layer at the first `WSPStartup`.
#[macro_export]
macro_rules! layer_process {
    ($(#[$meta:meta])* $vis:vis mod $name:ident: $layer:ty = $make:expr $(,)?) => {
        $(#[$meta])*
        $vis mod $name {
            #[allow(unused_imports)]
            use super::*;

            /// The layer's process.
            pub(super) static PROCESS: $crate::abi::Process<
                $crate::abi::Layered<$layer, $crate::abi::InProcess>,
            > = $crate::abi::Process::new(|| {
                $crate::abi::Layered::new(
                    ($make)(),
                    $crate::testing::stack::catalog(<$layer as $crate::Layer>::PROVIDER_ID),
                )
                .with_ports($crate::testing::winsock::LayerPorts)
                .completing_with($crate::testing::winsock::WPUCompleteOverlappedRequest)
            });

            #[doc(hidden)]
            pub(super) enum Export {}

            impl $crate::abi::Export for Export {
                type Dispatch = $crate::abi::Layered<$layer, $crate::abi::InProcess>;
                fn process() -> &'static $crate::abi::Process<Self::Dispatch> {
                    &PROCESS
                }
            }

            /// The layer's `WSPStartup`.
            ///
            /// # Safety
            /// ws2_32's contract for `WSPStartup`.
            pub(super) unsafe extern "system" fn startup(
                version: u16,
                data: *const $crate::__private::ws2spi::WSPDATA,
                info: *const $crate::__private::ws2spi::WSAPROTOCOL_INFOW,
                upcalls: $crate::__private::ws2spi::WSPUPCALLTABLE,
                table: *mut $crate::__private::ws2spi::WSPPROC_TABLE,
            ) -> i32 {
                // SAFETY: forwarded from the simulator, under WSPStartup's contract.
                unsafe {
                    $crate::abi::startup::startup::<Export>(version, data, info, upcalls, table)
                }
            }

            /// The author's layer, once the first `WSPStartup` made it.
            #[allow(dead_code)]
            pub(super) fn layer() -> &'static $layer {
                PROCESS
                    .dispatch()
                    .expect("the layer's first WSPStartup made it")
                    .layer()
            }
        }
    };
}
