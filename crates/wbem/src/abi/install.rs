//! Installing a provider's MOF with WMI's own compiler: `IMofCompiler::CompileBuffer`, the COM
//! object `mofcomp.exe` is a front end to, so an installer needs no temporary file and gets the
//! compiler's status (phase, lines) instead of an exit code.

use std::fmt;
use winprov_core::HResult;

/// Why WMI's MOF compiler refused (or could not be reached).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MofCompileError {
    /// The error: `REGDB_E_CLASSNOTREG` when WMI's MOF compiler is not there at all (no WMI,
    /// as under Wine), `WBEM_E_*` from the compiler otherwise.
    pub hresult: HResult,
    /// `WBEM_COMPILE_STATUS_INFO::lPhaseError`: 1 argument error, 2 syntax error, 3 error
    /// storing the classes and instances in WMI; 0 when the compiler never ran.
    pub phase: i32,
    /// The MOF lines of the failing object (1-based), when the compiler names them.
    pub lines: Option<(i32, i32)>,
}

impl MofCompileError {
    /// Whether WMI's MOF compiler is absent (COM does not know its class): nothing was, or
    /// can be, compiled into WMI on this system.
    pub fn compiler_unavailable(&self) -> bool {
        self.hresult == HResult::REGDB_E_CLASSNOTREG
    }
}

impl fmt::Display for MofCompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.compiler_unavailable() {
            return write!(
                f,
                "WMI's MOF compiler (CLSID_MofCompiler) cannot be created: {}",
                self.hresult
            );
        }
        let phase = match self.phase {
            0 => "creating the compiler",
            1 => "its arguments",
            2 => "the MOF's syntax",
            3 => "storing classes and instances in WMI",
            _ => "an unknown phase",
        };
        write!(f, "the MOF compiler failed in {phase}: {}", self.hresult)?;
        if let Some((first, last)) = self.lines {
            write!(f, " (lines {first}-{last})")?;
        }
        Ok(())
    }
}

impl std::error::Error for MofCompileError {}

/// Compiles `mof` (a [`Mof`](crate::Mof)'s `install()` or `uninstall()` text) into the WMI
/// repository of this machine with WMI's MOF compiler, as `mofcomp.exe` would. Needs an
/// elevated administrator for most namespaces. Joins the multithreaded apartment for the call
/// if the thread has none.
pub fn compile_mof(mof: &str) -> Result<(), MofCompileError> {
    imp::compile(&buffer(mof))
}

/// The bytes the compiler reads: ASCII as it is, anything else as UTF-16LE with its byte order
/// mark (the two encodings a MOF file may have).
fn buffer(mof: &str) -> Vec<u8> {
    if mof.is_ascii() {
        return mof.as_bytes().to_vec();
    }
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(mof.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

#[cfg(windows)]
mod imp {
    use super::MofCompileError;
    use windows_core::PCWSTR;
    use winprov_bindings::wbem::{
        CLSCTX_INPROC_SERVER, COINIT_MULTITHREADED, CoCreateInstance, CoInitializeEx,
        CoUninitialize, IMofCompiler, MofCompiler, WBEM_COMPILE_STATUS_INFO,
    };
    use winprov_core::HResult;

    /// `CoUninitialize` for a successful `CoInitializeEx` of this thread.
    struct Apartment(bool);

    impl Drop for Apartment {
        fn drop(&mut self) {
            if self.0 {
                // SAFETY: balances this thread's successful CoInitializeEx.
                unsafe { CoUninitialize() };
            }
        }
    }

    pub(super) fn compile(buffer: &[u8]) -> Result<(), MofCompileError> {
        // SAFETY: no reserved pointer; S_OK and S_FALSE are balanced by `Apartment`, an
        // apartment of another kind (RPC_E_CHANGED_MODE) is used as it is.
        let joined = unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) };
        let _apartment = Apartment(joined.is_ok());
        let unavailable = |error: windows_core::Error| MofCompileError {
            hresult: HResult::from_raw(error.code().0),
            phase: 0,
            lines: None,
        };
        // SAFETY: a registered in-proc class id and the interface it implements.
        let compiler: IMofCompiler =
            unsafe { CoCreateInstance(&MofCompiler, None, CLSCTX_INPROC_SERVER) }
                .map_err(unavailable)?;
        let mut info = WBEM_COMPILE_STATUS_INFO::default();
        // SAFETY: the buffer outlives the call; NULL server, user, authority and password (the
        // MOF's own #pragma namespace, the caller's credentials); `info` is ours to fill.
        let compiled = unsafe {
            compiler.CompileBuffer(
                buffer,
                PCWSTR::null(),
                PCWSTR::null(),
                PCWSTR::null(),
                PCWSTR::null(),
                0,
                0,
                0,
                &mut info,
            )
        };
        compiled.map_err(|error| MofCompileError {
            hresult: HResult::from_raw(match info.hRes.0 {
                0 => error.code().0,
                code => code,
            }),
            phase: info.lPhaseError,
            lines: (info.FirstLine > 0).then_some((info.FirstLine, info.LastLine)),
        })
    }
}

#[cfg(not(windows))]
mod imp {
    use super::MofCompileError;
    use winprov_core::HResult;

    /// Off Windows there is no WMI: the compiler is unavailable.
    pub(super) fn compile(_buffer: &[u8]) -> Result<(), MofCompileError> {
        Err(MofCompileError {
            hresult: HResult::REGDB_E_CLASSNOTREG,
            phase: 0,
            lines: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_ascii_or_utf16_with_its_mark() {
        assert_eq!(buffer("class A {};"), b"class A {};");
        assert_eq!(buffer("é"), [0xff, 0xfe, 0xe9, 0x00]);
    }

    #[test]
    fn errors_say_where_the_compiler_failed() {
        let absent = MofCompileError {
            hresult: HResult::REGDB_E_CLASSNOTREG,
            phase: 0,
            lines: None,
        };
        assert!(absent.compiler_unavailable());
        assert!(absent.to_string().contains("cannot be created"));
        let syntax = MofCompileError {
            hresult: HResult::WBEM_E_FAILED,
            phase: 2,
            lines: Some((4, 6)),
        };
        assert!(!syntax.compiler_unavailable());
        assert!(syntax.to_string().contains("syntax"), "{syntax}");
        assert!(syntax.to_string().contains("lines 4-6"), "{syntax}");
    }
}
