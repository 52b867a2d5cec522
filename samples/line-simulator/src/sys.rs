//! The command's Windows calls, the only `unsafe` code of the executable: loading DLLs, the
//! `tapi32.dll` functions (`lineAddProvider`, `lineGetProviderList`, `lineRemoveProvider`),
//! `GetSystemDirectoryW`, and the provider's own exports for `check`.
//!
//! Functions outside `winprov-bindings` are resolved at run time with
//! `LoadLibraryExW` + `GetProcAddress`, so a missing `tapi32.dll` or a missing function is an
//! error naming it, never a loader failure at start-up.
#![allow(unsafe_code)]

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use winprov_bindings::tapi::{
    FreeLibrary, GetProcAddress, HMODULE, LOAD_LIBRARY_FLAGS, LOAD_LIBRARY_SEARCH_SYSTEM32,
    LoadLibraryExW,
};
use winprov_bindings::windows_core::PCSTR;
use winprov_core::LineErr;

/// `INITIALIZE_NEGOTIATION` (tspi.h).
const INITIALIZE_NEGOTIATION: u32 = 0xFFFF_FFFF;
/// TAPI 2.0 and 3.0, the range `check` negotiates in.
const TAPI_2_0: u32 = 0x0002_0000;
const TAPI_3_0: u32 = 0x0003_0000;
/// `MAX_PATH`, the size TAPI gives `TSPI_providerUIIdentify`'s buffer.
const MAX_PATH: usize = 260;

type RawProc = unsafe extern "system" fn() -> isize;

/// A loaded DLL, freed on drop.
struct Library {
    module: HMODULE,
    name: String,
}

impl Library {
    /// Loads `path` (a full path, or a system DLL's name with `system32` set).
    fn load(path: &Path, system32: bool) -> Result<Self> {
        let wide = winprov_core::ffi::to_wide_nul(&path.to_string_lossy());
        let flags = if system32 {
            LOAD_LIBRARY_SEARCH_SYSTEM32
        } else {
            LOAD_LIBRARY_FLAGS(0)
        };
        // SAFETY: `wide` is NUL-terminated and outlives the call; no file handle is passed.
        let module = unsafe {
            LoadLibraryExW(
                winprov_bindings::windows_core::PCWSTR(wide.as_ptr()),
                None,
                flags,
            )
        }
        .with_context(|| format!("LoadLibraryExW({}) failed", path.display()))?;
        Ok(Self {
            module,
            name: path.display().to_string(),
        })
    }

    /// The address of export `name`, if the DLL has it.
    fn symbol(&self, name: &str) -> Option<RawProc> {
        let name = std::ffi::CString::new(name).ok()?;
        // SAFETY: `module` is a module this value loaded and has not freed; `name` is a
        // NUL-terminated ANSI string that outlives the call.
        unsafe { GetProcAddress(self.module, PCSTR(name.as_ptr().cast())) }
    }

    /// Export `name`, or an error naming the DLL and the function.
    fn require(&self, name: &str) -> Result<RawProc> {
        self.symbol(name)
            .with_context(|| format!("{} has no export {name} (GetProcAddress failed)", self.name))
    }
}

impl Drop for Library {
    fn drop(&mut self) {
        // SAFETY: `module` was loaded by `Library::load` and is freed once, here; no function
        // pointer obtained from it outlives the `Library` (they are used within the functions
        // below while it is borrowed).
        let _ = unsafe { FreeLibrary(self.module) };
    }
}

fn tapi32() -> Result<Library> {
    Library::load(Path::new("tapi32.dll"), true).context("loading tapi32.dll")
}

fn line_error(function: &str, code: i32) -> anyhow::Error {
    let error = LineErr::from_raw(code);
    anyhow::anyhow!("{function} failed: {error}")
}

/// `GetSystemDirectoryW`.
pub fn system_directory() -> Result<PathBuf> {
    type GetSystemDirectoryW = unsafe extern "system" fn(buffer: *mut u16, size: u32) -> u32;
    let kernel32 = Library::load(Path::new("kernel32.dll"), true)?;
    let raw = kernel32.require("GetSystemDirectoryW")?;
    // SAFETY: GetSystemDirectoryW's prototype (sysinfoapi.h) is exactly this type.
    let get: GetSystemDirectoryW = unsafe { std::mem::transmute::<RawProc, _>(raw) };
    let mut buffer = vec![0u16; MAX_PATH + 1];
    // SAFETY: `buffer` is writable for the stated number of UTF-16 units.
    let len = unsafe { get(buffer.as_mut_ptr(), buffer.len() as u32) } as usize;
    if len == 0 || len >= buffer.len() {
        bail!(
            "GetSystemDirectoryW failed ({})",
            std::io::Error::last_os_error()
        );
    }
    Ok(PathBuf::from(String::from_utf16_lossy(&buffer[..len])))
}

/// tapi32 `lineAddProviderW(file, NULL, &id)`: returns the permanent provider id.
pub fn line_add_provider(file_name: &str) -> Result<u32> {
    type LineAddProviderW = unsafe extern "system" fn(
        file: *const u16,
        owner: *mut core::ffi::c_void,
        id: *mut u32,
    ) -> i32;
    let tapi = tapi32()?;
    let raw = tapi.require("lineAddProviderW")?;
    // SAFETY: lineAddProviderW's prototype (tapi.h) is exactly this type.
    let add: LineAddProviderW = unsafe { std::mem::transmute::<RawProc, _>(raw) };
    let wide = winprov_core::ffi::to_wide_nul(file_name);
    let mut id = 0u32;
    // SAFETY: a NUL-terminated file name, no owner window, a writable DWORD; all outlive the
    // call, and `tapi` stays loaded during it.
    let code = unsafe { add(wide.as_ptr(), std::ptr::null_mut(), &mut id) };
    if code != 0 {
        return Err(line_error("lineAddProviderW", code));
    }
    Ok(id)
}

/// tapi32 `lineGetProviderListW(2.0, list)`: the `LINEPROVIDERLIST` bytes.
pub fn line_get_provider_list() -> Result<Vec<u8>> {
    type LineGetProviderListW = unsafe extern "system" fn(version: u32, list: *mut u8) -> i32;
    let tapi = tapi32()?;
    let raw = tapi.require("lineGetProviderListW")?;
    // SAFETY: lineGetProviderListW's prototype (tapi.h) is this type (LPLINEPROVIDERLIST as
    // bytes).
    let get: LineGetProviderListW = unsafe { std::mem::transmute::<RawProc, _>(raw) };
    let mut size = 4096usize;
    for _ in 0..4 {
        // u32 words: the structure's alignment.
        let mut words = vec![0u32; size.div_ceil(4)];
        words[0] = (words.len() * 4) as u32;
        // SAFETY: `words` is writable for dwTotalSize bytes and 4-aligned.
        let code = unsafe { get(TAPI_2_0, words.as_mut_ptr().cast()) };
        if code != 0 {
            return Err(line_error("lineGetProviderListW", code));
        }
        let bytes: Vec<u8> = words.iter().flat_map(|word| word.to_le_bytes()).collect();
        let needed = line_simulator::install::provider_list_needed(&bytes)?;
        if needed <= bytes.len() {
            return Ok(bytes);
        }
        size = needed;
    }
    bail!("lineGetProviderListW kept asking for a larger buffer")
}

/// tapi32 `lineRemoveProvider(id, NULL)`.
pub fn line_remove_provider(id: u32) -> Result<()> {
    type LineRemoveProvider =
        unsafe extern "system" fn(id: u32, owner: *mut core::ffi::c_void) -> i32;
    let tapi = tapi32()?;
    let raw = tapi.require("lineRemoveProvider")?;
    // SAFETY: lineRemoveProvider's prototype (tapi.h) is exactly this type.
    let remove: LineRemoveProvider = unsafe { std::mem::transmute::<RawProc, _>(raw) };
    // SAFETY: no pointers; `tapi` stays loaded during the call.
    let code = unsafe { remove(id, std::ptr::null_mut()) };
    if code != 0 {
        return Err(line_error("lineRemoveProvider", code));
    }
    Ok(())
}

/// What `check` found in a provider DLL.
#[derive(Debug)]
pub struct CheckReport {
    /// Each name of [`TSPI_EXPORTS`](line_simulator::install::TSPI_EXPORTS) with whether the DLL
    /// exports it.
    pub exports: Vec<(&'static str, bool)>,
    /// `TSPI_lineNegotiateTSPIVersion(INITIALIZE_NEGOTIATION, 2.0, 3.0)`: the version or the error.
    pub negotiated: std::result::Result<u32, LineErr>,
    /// `TSPI_providerEnumDevices`: the number of lines or the error.
    pub lines: std::result::Result<u32, LineErr>,
    /// `TSPI_providerUIIdentify`: the UI DLL path or the error.
    pub ui_dll: std::result::Result<String, LineErr>,
}

/// Loads `dll` and asks it what TAPISRV asks first (no `TSPI_providerInit`: nothing starts).
pub fn check(dll: &Path) -> Result<CheckReport> {
    type Negotiate =
        unsafe extern "system" fn(device: u32, low: u32, high: u32, version: *mut u32) -> i32;
    type EnumDevices = unsafe extern "system" fn(
        provider_id: u32,
        lines: *mut u32,
        phones: *mut u32,
        provider: *mut core::ffi::c_void,
        line_create: *const core::ffi::c_void,
        phone_create: *const core::ffi::c_void,
    ) -> i32;
    type UiIdentify = unsafe extern "system" fn(name: *mut u16) -> i32;

    let library = Library::load(dll, false)?;
    let exports = line_simulator::install::TSPI_EXPORTS
        .iter()
        .map(|&name| (name, library.symbol(name).is_some()))
        .collect();

    let negotiated = match library.symbol("TSPI_lineNegotiateTSPIVersion") {
        None => Err(LineErr::LINEERR_OPERATIONUNAVAIL),
        Some(raw) => {
            // SAFETY: the prototype of TSPI_lineNegotiateTSPIVersion (tspi.h).
            let negotiate: Negotiate = unsafe { std::mem::transmute::<RawProc, _>(raw) };
            let mut version = 0u32;
            // SAFETY: a writable DWORD; the library stays loaded during the call.
            let code =
                unsafe { negotiate(INITIALIZE_NEGOTIATION, TAPI_2_0, TAPI_3_0, &mut version) };
            if code == 0 {
                Ok(version)
            } else {
                Err(LineErr::from_raw(code))
            }
        }
    };
    let lines = match library.symbol("TSPI_providerEnumDevices") {
        None => Err(LineErr::LINEERR_OPERATIONUNAVAIL),
        Some(raw) => {
            // SAFETY: the prototype of TSPI_providerEnumDevices (tspi.h; the callbacks as
            // untyped pointers, passed NULL).
            let enumerate: EnumDevices = unsafe { std::mem::transmute::<RawProc, _>(raw) };
            let (mut lines, mut phones) = (0u32, 0u32);
            // SAFETY: writable DWORDs; NULL provider handle and callbacks (TAPI may pass
            // callbacks; the provider does not need them to count its devices).
            let code = unsafe {
                enumerate(
                    0,
                    &mut lines,
                    &mut phones,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    std::ptr::null(),
                )
            };
            if code == 0 {
                Ok(lines)
            } else {
                Err(LineErr::from_raw(code))
            }
        }
    };
    let ui_dll = match library.symbol("TSPI_providerUIIdentify") {
        None => Err(LineErr::LINEERR_OPERATIONUNAVAIL),
        Some(raw) => {
            // SAFETY: the prototype of TSPI_providerUIIdentify (tspi.h).
            let identify: UiIdentify = unsafe { std::mem::transmute::<RawProc, _>(raw) };
            let mut buffer = vec![0u16; MAX_PATH];
            // SAFETY: a MAX_PATH buffer, as TAPI passes.
            let code = unsafe { identify(buffer.as_mut_ptr()) };
            if code == 0 {
                let len = buffer
                    .iter()
                    .position(|&unit| unit == 0)
                    .unwrap_or(buffer.len());
                Ok(String::from_utf16_lossy(&buffer[..len]))
            } else {
                Err(LineErr::from_raw(code))
            }
        }
    };
    Ok(CheckReport {
        exports,
        negotiated,
        lines,
        ui_dll,
    })
}
