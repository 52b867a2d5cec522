//! Who this layer is, and where it keeps its figures: the one file to edit when you copy the
//! sample.
//!
//! Every value below must be unique to your layer. Generate a new GUID (`uuidgen`, PowerShell
//! `[guid]::NewGuid()`), pick your own name, file names and environment variables. Nothing else
//! in the crate repeats these values.

use winprov_wsp::GUID;

/// The layer's provider id: the `ProviderId` of its hidden catalog entry, the one GUID it is
/// installed, found and removed by.
pub const PROVIDER_ID: GUID = GUID::from_u128(0xc8e4_a011_1c6d_41af_b518_d7fa_ded5_3e13);

/// The layer's name: its hidden entry's `szProtocol`, and the start of each of its chains'
/// (`netsh winsock show catalog` lists them as "winprov traffic meter over [...]").
pub const LAYER_NAME: &str = "winprov traffic meter";

/// `szDescription` of the layer's `WSPStartup`.
pub const DESCRIPTION: &str = "winprov traffic meter (layered provider)";

/// The product name (the MSI's `product`, Add/Remove Programs).
pub const PRODUCT_NAME: &str = "winprov Traffic Meter";

/// The DLL's file name as cargo builds it, and as the MSI installs it in the system directory.
pub const DLL_FILE_NAME: &str = "traffic_meter.dll";

/// The DLL path registered in the catalog when `install` is given none (ws2_32 expands the
/// environment strings when it loads the DLL). With one path for both catalogs of 64-bit
/// Windows the system requires this form, `%windir%\system32\<dll>`: 32-bit processes load
/// the DLL of that name from the WOW64 system directory (`SysWOW64`), which this sample does
/// not ship (see the README).
pub const DEFAULT_DLL_PATH: &str = "%windir%\\system32\\traffic_meter.dll";

/// Where the figures go, under `%ProgramData%`, when [`ENV_DIR`] is not set.
pub const LOG_SUBDIRECTORY: &[&str] = &["winprov", "traffic-meter"];

/// Environment variable naming the directory of the figures (overrides
/// `%ProgramData%\winprov\traffic-meter`).
pub const ENV_DIR: &str = "TRAFFIC_METER_DIR";

/// Environment variable with the size in bytes at which a process's log is rotated (renamed
/// to `.1`, replacing the previous one).
pub const ENV_LIMIT: &str = "TRAFFIC_METER_LIMIT";

/// The rotation size when [`ENV_LIMIT`] is not set: 1 MiB per executable, plus its `.1`.
pub const DEFAULT_LIMIT: u64 = 1 << 20;
