//! Decoupled providers (R-WMI-16): a provider served from its own process (a service, a tool)
//! instead of a DLL WMI loads. The process registers its provider object with WMI's
//! `IWbemDecoupledRegistrar` before serving and unregisters it before it exits; its MOF says
//! `HostingModel = "Decoupled:Com"` ([`Hosting::Decoupled`](crate::Hosting::Decoupled)).
//! [`Decoupled`] is that registration as a value: `Register` when it is made, `UnRegister`
//! when it is dropped, on every path.

use super::ProviderObject;
use super::server::Module;
use crate::provider::Provider;
use crate::runtime::Runtime;
use std::sync::Arc;
use windows_core::{IUnknown, Interface, PCWSTR};
use winprov_bindings::wbem::{IWbemDecoupledRegistrar, IWbemProviderInit};
use winprov_core::HResult;
use winprov_core::ffi::to_wide_nul;

/// The provider objects of decoupled registrations in this process.
static MODULE: Module = Module::new();

/// A provider registered with WMI from this process, for as long as the value lives
/// (R-WMI-16): made by `IWbemDecoupledRegistrar::Register(0, NULL, NULL, NULL, namespace,
/// name, object)`, ended by `UnRegister` when dropped. WMI then initializes the object and
/// calls it as it would a DLL's. The provider's MOF registers it with
/// [`Hosting::Decoupled`](crate::Hosting::Decoupled) under the same `name`; decoupled
/// providers play the instance, method and event roles only (the roles of this crate).
///
/// The thread that registers must have joined a COM apartment (`CoInitializeEx`), and the
/// process must keep serving (its threads alive) while the registration lives.
pub struct Decoupled<P: Provider> {
    registrar: IWbemDecoupledRegistrar,
    runtime: Arc<Runtime<P>>,
    object: IWbemProviderInit,
}

impl<P: Provider> Decoupled<P> {
    /// Registers `provider` with WMI's registrar of this machine as the decoupled provider
    /// `name` of `namespace` (its `__Win32Provider.Name`, e.g. `root\winprov`). Windows only:
    /// elsewhere `REGDB_E_CLASSNOTREG` (there is no WMI).
    pub fn register(provider: P, namespace: &str, name: &str) -> Result<Self, HResult> {
        Self::register_with(imp::registrar()?, provider, namespace, name)
    }

    /// Registers `provider` with `registrar` (WMI's, or a host simulator's).
    pub(crate) fn register_with(
        registrar: IWbemDecoupledRegistrar,
        provider: P,
        namespace: &str,
        name: &str,
    ) -> Result<Self, HResult> {
        let runtime = Arc::new(Runtime::new(provider));
        let object = ProviderObject::create(Arc::clone(&runtime), &MODULE);
        let unknown: IUnknown = object.cast().map_err(|e| HResult::from_raw(e.code().0))?;
        let (scope, registration) = (to_wide_nul(namespace), to_wide_nul(name));
        // SAFETY: NUL-terminated strings and a live object, all alive for the call; no context,
        // user or locale (R-WMI-16: Register(0, NULL, NULL, NULL, scope, name, punk)).
        unsafe {
            registrar.Register(
                0,
                None,
                PCWSTR::null(),
                PCWSTR::null(),
                PCWSTR(scope.as_ptr()),
                PCWSTR(registration.as_ptr()),
                &unknown,
            )
        }
        .map_err(|e| HResult::from_raw(e.code().0))?;
        tracing::info!(namespace, name, "decoupled provider registered with WMI");
        Ok(Self {
            registrar,
            runtime,
            object,
        })
    }

    /// The author's provider.
    pub fn provider(&self) -> &P {
        self.runtime.provider()
    }

    /// The registered object (for the simulator, which serves it as WMI would).
    pub(crate) fn object(&self) -> &IWbemProviderInit {
        &self.object
    }

    /// The runtime behind the registered object.
    pub(crate) fn runtime(&self) -> &Arc<Runtime<P>> {
        &self.runtime
    }
}

impl<P: Provider> Drop for Decoupled<P> {
    fn drop(&mut self) {
        // SAFETY: the registrar this value registered with; UnRegister takes no argument.
        match unsafe { self.registrar.UnRegister() } {
            Ok(()) => tracing::info!("decoupled provider unregistered from WMI"),
            Err(error) => tracing::error!(%error, "IWbemDecoupledRegistrar::UnRegister failed"),
        }
    }
}

impl<P: Provider> std::fmt::Debug for Decoupled<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoupled").finish_non_exhaustive()
    }
}

/// The decoupled provider objects alive in this process.
pub(crate) fn module() -> &'static Module {
    &MODULE
}

#[cfg(windows)]
mod imp {
    use winprov_bindings::wbem::{
        CLSCTX_INPROC_SERVER, CoCreateInstance, IWbemDecoupledRegistrar, WbemDecoupledRegistrar,
    };
    use winprov_core::HResult;

    pub(super) fn registrar() -> Result<IWbemDecoupledRegistrar, HResult> {
        // SAFETY: WMI's registrar class and the interface it implements; the caller's thread
        // is in an apartment (documented on `Decoupled`).
        unsafe { CoCreateInstance(&WbemDecoupledRegistrar, None, CLSCTX_INPROC_SERVER) }
            .map_err(|e| HResult::from_raw(e.code().0))
    }
}

#[cfg(not(windows))]
mod imp {
    use winprov_bindings::wbem::IWbemDecoupledRegistrar;
    use winprov_core::HResult;

    /// There is no WMI off Windows.
    pub(super) fn registrar() -> Result<IWbemDecoupledRegistrar, HResult> {
        Err(HResult::REGDB_E_CLASSNOTREG)
    }
}
