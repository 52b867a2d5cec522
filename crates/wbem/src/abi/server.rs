//! The in-process COM server: the live objects and locks of the module, which decide when the
//! DLL may be unloaded; the class factory; the bodies of the DLL exports; self-registration.

use super::{ProviderObject, result};
use crate::provider::Provider;
use crate::runtime::Runtime;
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use windows_core::{BOOL, GUID, HRESULT, IUnknown, Interface, Ref, implement};
use winprov_bindings::wbem::{IClassFactory, IClassFactory_Impl};
use winprov_core::{HResult, boundary, ffi};

/// The live COM objects and `LockServer` locks of one in-process server: a DLL's (the static
/// of [`export_provider!`](crate::export_provider)), or a host simulator's own.
#[derive(Debug, Default)]
pub struct Module {
    objects: AtomicUsize,
    locks: AtomicUsize,
}

impl Module {
    /// A module with nothing alive.
    pub const fn new() -> Self {
        Self {
            objects: AtomicUsize::new(0),
            locks: AtomicUsize::new(0),
        }
    }

    /// The provider objects and class factories alive.
    pub fn objects(&self) -> usize {
        self.objects.load(Ordering::SeqCst)
    }

    /// The `LockServer(TRUE)` calls not yet undone.
    pub fn locks(&self) -> usize {
        self.locks.load(Ordering::SeqCst)
    }

    /// `DllCanUnloadNow`: no object and no lock is alive.
    pub fn can_unload(&self) -> bool {
        self.objects() == 0 && self.locks() == 0
    }
}

/// One live object of a module, counted from its creation to its last `Release`.
pub(crate) struct Live(&'static Module);

impl Live {
    pub(crate) fn new(module: &'static Module) -> Self {
        module.objects.fetch_add(1, Ordering::SeqCst);
        Self(module)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.objects.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One provider class of a DLL: its CLSID, the constructor of its provider, and the module
/// counts of its objects. [`export_provider!`](crate::export_provider) makes the static one and
/// the DLL exports around it.
pub struct Server<P: Provider> {
    clsid: GUID,
    make: fn() -> P,
    module: Module,
}

impl<P: Provider> Server<P> {
    /// The class `clsid`, whose objects each serve a provider `make` constructs.
    pub const fn new(clsid: GUID, make: fn() -> P) -> Self {
        Self {
            clsid,
            make,
            module: Module::new(),
        }
    }

    /// The CLSID.
    pub fn clsid(&self) -> GUID {
        self.clsid
    }

    /// The live objects and locks: [`Module::can_unload`] is `DllCanUnloadNow`.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// The module, for objects of the host simulator's activation.
    #[cfg(feature = "testing")]
    pub(crate) fn module_static(&'static self) -> &'static Module {
        &self.module
    }

    /// A class factory of this class (what `DllGetClassObject` hands out).
    pub fn class_factory(&'static self) -> IClassFactory {
        ClassFactory {
            server: self,
            _live: Live::new(&self.module),
        }
        .into()
    }
}

impl<P: Provider> std::fmt::Debug for Server<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("clsid", &self.clsid)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

/// The class factory of a provider class: each `CreateInstance` makes a provider object with
/// a new provider.
#[implement(IClassFactory)]
struct ClassFactory<P>
where
    P: Provider,
{
    server: &'static Server<P>,
    _live: Live,
}

impl<P: Provider> IClassFactory_Impl for ClassFactory_Impl<P> {
    fn CreateInstance(
        &self,
        punkouter: Ref<'_, IUnknown>,
        riid: *const GUID,
        ppvobject: *mut *mut c_void,
    ) -> windows_core::Result<()> {
        result(boundary(
            "IClassFactory::CreateInstance",
            HResult::E_UNEXPECTED,
            || {
                if ppvobject.is_null() {
                    return HResult::E_POINTER;
                }
                // SAFETY: checked non-null; COM's out-pointer, cleared first as COM requires.
                unsafe { ppvobject.write(std::ptr::null_mut()) };
                if !punkouter.is_null() {
                    return HResult::CLASS_E_NOAGGREGATION;
                }
                if riid.is_null() {
                    return HResult::E_INVALIDARG;
                }
                let server = self.server;
                let runtime = Arc::new(Runtime::new((server.make)()));
                let object = ProviderObject::create(runtime, &server.module);
                // SAFETY: a live object; `riid` and `ppvobject` are COM's, checked non-null.
                HResult::from_raw(unsafe { object.query(riid, ppvobject) }.0)
            },
        ))
    }

    fn LockServer(&self, flock: BOOL) -> windows_core::Result<()> {
        let locks = &self.server.module.locks;
        match flock.as_bool() {
            true => {
                locks.fetch_add(1, Ordering::SeqCst);
            }
            false => {
                // Never below zero, whatever the caller does.
                let _ =
                    locks.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
            }
        }
        Ok(())
    }
}

/// `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`, as the registry spells a CLSID.
pub(crate) fn clsid_string(clsid: &GUID) -> String {
    let b = clsid.data4;
    format!(
        "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
        clsid.data1, clsid.data2, clsid.data3, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]
    )
}

/// The bodies of the DLL exports [`export_provider!`](crate::export_provider) generates, each
/// inside the export boundary.
pub mod exports {
    use super::*;

    /// `DllGetClassObject(rclsid, riid, ppv)`.
    ///
    /// # Safety
    /// `rclsid` and `riid` are null or readable GUIDs, `ppv` null or writable.
    pub unsafe fn get_class_object<P: Provider>(
        server: &'static Server<P>,
        rclsid: *const GUID,
        riid: *const GUID,
        ppv: *mut *mut c_void,
    ) -> HRESULT {
        HRESULT(
            boundary("DllGetClassObject", HResult::E_UNEXPECTED, || {
                if ffi::check(ppv.cast_const()).is_err() {
                    return HResult::E_POINTER;
                }
                // SAFETY: checked; cleared first as COM requires.
                unsafe { ppv.write(std::ptr::null_mut()) };
                // SAFETY: the caller's contract; `ffi::read` checks null and alignment.
                let (clsid, iid) = match unsafe { (ffi::read(rclsid), ffi::check(riid)) } {
                    (Ok(clsid), Ok(_)) => (clsid, riid),
                    _ => return HResult::E_INVALIDARG,
                };
                if clsid != server.clsid {
                    return HResult::CLASS_E_CLASSNOTAVAILABLE;
                }
                let factory = server.class_factory();
                // SAFETY: a live object; `iid` and `ppv` checked above.
                HResult::from_raw(unsafe { factory.query(iid, ppv) }.0)
            })
            .raw(),
        )
    }

    /// `DllCanUnloadNow`: `S_OK` only when no object and no lock of the module is alive.
    pub fn can_unload_now<P: Provider>(server: &'static Server<P>) -> HRESULT {
        match server.module.can_unload() {
            true => HRESULT(HResult::S_OK.raw()),
            false => HRESULT(HResult::S_FALSE.raw()),
        }
    }

    /// `DllRegisterServer`: `HKCR\CLSID\{clsid}\InprocServer32` = this DLL's full path,
    /// `ThreadingModel` = `Both`. `SELFREG_E_CLASS` when the registry refuses.
    pub fn register_server<P: Provider>(server: &'static Server<P>) -> HRESULT {
        let outcome = boundary("DllRegisterServer", Err(HResult::E_UNEXPECTED), || {
            super::registry::register(&server.clsid)
        });
        HRESULT(outcome.err().unwrap_or(HResult::S_OK).raw())
    }

    /// `DllUnregisterServer`: removes `HKCR\CLSID\{clsid}`; succeeds when it is absent.
    pub fn unregister_server<P: Provider>(server: &'static Server<P>) -> HRESULT {
        let outcome = boundary("DllUnregisterServer", Err(HResult::E_UNEXPECTED), || {
            super::registry::unregister(&server.clsid)
        });
        HRESULT(outcome.err().unwrap_or(HResult::S_OK).raw())
    }
}

/// Self-registration in `HKEY_CLASSES_ROOT`.
#[cfg(windows)]
mod registry {
    use super::clsid_string;
    use windows_core::{GUID, PCWSTR};
    use winprov_bindings::wbem::{
        ERROR_FILE_NOT_FOUND, GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS,
        GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT, GetModuleFileNameW, GetModuleHandleExW, HKEY,
        HKEY_CLASSES_ROOT, HMODULE, KEY_WRITE, REG_OPTION_NON_VOLATILE, REG_SZ, RegCloseKey,
        RegCreateKeyExW, RegDeleteTreeW, RegSetValueExW, WIN32_ERROR,
    };
    use winprov_core::HResult;
    use winprov_core::ffi::to_wide_nul;

    /// The full path of the module (DLL) this code is in.
    fn own_module_path() -> Option<Vec<u16>> {
        let mut module = HMODULE::default();
        let anchor = own_module_path as *const () as *const u16;
        // SAFETY: FROM_ADDRESS takes any address inside a loaded module (this function's);
        // UNCHANGED_REFCOUNT means nothing is to be released; `module` is a valid out pointer.
        unsafe {
            GetModuleHandleExW(
                GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS
                    | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                PCWSTR(anchor),
                &mut module,
            )
        }
        .ok()?;
        let mut path = vec![0u16; 32_768];
        // SAFETY: a writable buffer of the stated length.
        let len = unsafe { GetModuleFileNameW(Some(module), &mut path) } as usize;
        (len > 0 && len < path.len()).then(|| path[..=len].to_vec())
    }

    fn bytes(units: &[u16]) -> Vec<u8> {
        units.iter().flat_map(|u| u.to_le_bytes()).collect()
    }

    fn check(code: WIN32_ERROR) -> Result<(), HResult> {
        match code.0 {
            0 => Ok(()),
            other => {
                tracing::error!(code = other, "registering the provider's class");
                Err(HResult::SELFREG_E_CLASS)
            }
        }
    }

    pub(super) fn register(clsid: &GUID) -> Result<(), HResult> {
        let path = own_module_path().ok_or(HResult::SELFREG_E_CLASS)?;
        let key = to_wide_nul(&format!("CLSID\\{}\\InprocServer32", clsid_string(clsid)));
        let mut hkey = HKEY::default();
        // SAFETY: a NUL-terminated key name and a valid out-pointer.
        check(unsafe {
            RegCreateKeyExW(
                HKEY_CLASSES_ROOT,
                PCWSTR(key.as_ptr()),
                None,
                PCWSTR::null(),
                REG_OPTION_NON_VOLATILE,
                KEY_WRITE,
                None,
                &mut hkey,
                None,
            )
        })?;
        let model = to_wide_nul("ThreadingModel");
        // SAFETY: an open key; NUL-terminated REG_SZ data with its NUL counted.
        let set = unsafe {
            check(RegSetValueExW(
                hkey,
                PCWSTR::null(),
                None,
                REG_SZ,
                Some(&bytes(&path)),
            ))
            .and_then(|()| {
                check(RegSetValueExW(
                    hkey,
                    PCWSTR(model.as_ptr()),
                    None,
                    REG_SZ,
                    Some(&bytes(&to_wide_nul("Both"))),
                ))
            })
        };
        // SAFETY: the key opened above, closed once.
        let _ = unsafe { RegCloseKey(hkey) };
        set
    }

    pub(super) fn unregister(clsid: &GUID) -> Result<(), HResult> {
        let key = to_wide_nul(&format!("CLSID\\{}", clsid_string(clsid)));
        // SAFETY: a NUL-terminated key name.
        match unsafe { RegDeleteTreeW(HKEY_CLASSES_ROOT, PCWSTR(key.as_ptr())) } {
            code if code == ERROR_FILE_NOT_FOUND => Ok(()),
            code => check(code),
        }
    }
}

/// No registry off Windows: registration is refused, and there is nothing to unregister.
#[cfg(not(windows))]
mod registry {
    use windows_core::GUID;
    use winprov_core::HResult;

    pub(super) fn register(clsid: &GUID) -> Result<(), HResult> {
        tracing::error!(clsid = %super::clsid_string(clsid), "no registry on this platform");
        Err(HResult::SELFREG_E_CLASS)
    }

    pub(super) fn unregister(_: &GUID) -> Result<(), HResult> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clsid_is_spelled_as_the_registry_spells_it() {
        let clsid = GUID::from_u128(0x0123abcd_4567_89ef_0a1b_2c3d4e5f6a7b);
        assert_eq!(
            clsid_string(&clsid),
            "{0123ABCD-4567-89EF-0A1B-2C3D4E5F6A7B}"
        );
    }
}
