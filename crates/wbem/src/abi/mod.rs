//! The COM layer: the provider's COM object (`IWbemProviderInit`, `IWbemServices`,
//! `IWbemEventProvider`, made with windows-core's `#[implement]`), the sinks that carry a
//! call's messages to the client's `IWbemObjectSink`, the conversions between [`Instance`]s and
//! `IWbemClassObject`s, the in-process server (class factory, live counts, DLL exports), and
//! the client side of calling WMI (`client.rs`: one sink object per call).
//! With the host simulator (`testing`), the crate's only `unsafe` code lives here.
//!
//! - Every COM method body runs inside [`winprov_core::boundary`]: a panic answers
//!   `WBEM_E_FAILED` and never unwinds into WMI (a panic of the author's code during an
//!   asynchronous call is already the call's `WBEM_E_FAILED` on its sink, in the runtime).
//! - `Initialize` reports through the init sink exactly once on every path and returns
//!   `WBEM_S_NO_ERROR` (R-WMI-1); a call before a successful `Initialize` is refused with
//!   `WBEM_E_FAILED`, without touching its sink.
//! - Each `*Async` call's sink is AddRef'd for the call, held by the call's adapter and
//!   released right after the final `SetStatus` (R-WMI-2); its identity, by which
//!   `CancelAsyncCall` finds the calls sharing it, is its `IUnknown` pointer.
//! - The synchronous methods, the class methods and the notification queries answer
//!   `WBEM_E_PROVIDER_NOT_CAPABLE` (R-WMI-6): a provider serves the asynchronous instance and
//!   method calls only.
//! - Host pointers and values are checked: a NULL sink is `WBEM_E_INVALID_PARAMETER`, a string
//!   that is not UTF-16 too, a `VARIANT` whose type does not fit its property
//!   `WBEM_E_TYPE_MISMATCH`, always before the call is accepted (R-WMI-5).

pub(crate) mod client;
mod convert;
mod decoupled;
mod impersonate;
mod install;
mod server;
mod sink;

#[cfg(feature = "testing")]
pub(crate) use convert::{bstr, read_string_array, string_array};
pub use decoupled::Decoupled;
pub(crate) use decoupled::module as decoupled_module;
pub use impersonate::{Impersonation, as_client, impersonate_client};
pub use install::{MofCompileError, compile_mof};
pub use server::{Module, Server, exports};

use crate::provider::{Init, Provider};
use crate::runtime::{CallSink, Runtime};
use convert::{Namespace, instance_of, object_class};
use server::Live;
use sink::{CallContext, EventAdapter, ResponseAdapter};
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use windows_core::{BSTR, IUnknown, Interface, OutRef, PCWSTR, Ref, implement};
use winprov_bindings::wbem::{
    IEnumWbemClassObject, IWbemCallResult, IWbemClassObject, IWbemContext, IWbemEventProvider,
    IWbemEventProvider_Impl, IWbemObjectSink, IWbemProviderInit, IWbemProviderInit_Impl,
    IWbemProviderInitSink, IWbemServices, IWbemServices_Impl, WBEM_GENERIC_FLAG_TYPE,
};
use winprov_core::{HResult, boundary, ffi};

/// Longest string read from WMI's `LPWSTR` arguments (user, namespace, locale).
const MAX_NAME_UNITS: usize = 32_767;

/// A COM interface WMI hands the provider, shared between the threads of its calls.
pub(crate) struct Shared<I>(pub(crate) I);

// SAFETY: WMI runs providers in the multithreaded apartment (they register ThreadingModel
// "Both") and calls them on its pool threads; the namespace, contexts, sinks and class objects
// it passes are free-threaded (or proxies that marshal themselves), usable from any thread of
// the apartment. The simulator's objects are free-threaded too.
unsafe impl<I> Send for Shared<I> {}
// SAFETY: as above: the interfaces are called concurrently by design.
unsafe impl<I> Sync for Shared<I> {}

/// A COM method's answer as windows-core's `Result`.
fn result(hresult: HResult) -> windows_core::Result<()> {
    match hresult.is_ok() {
        true => Ok(()),
        false => Err(windows_core::Error::from_hresult(windows_core::HRESULT(
            hresult.raw(),
        ))),
    }
}

/// Runs a COM method's body inside the export boundary: a panic answers `WBEM_E_FAILED`.
fn com(export: &'static str, body: impl FnOnce() -> HResult) -> windows_core::Result<()> {
    result(boundary(export, HResult::WBEM_E_FAILED, body))
}

/// The sink's COM identity: its `IUnknown` pointer (QueryInterface, as COM defines identity).
fn identity(sink: &IWbemObjectSink) -> Result<usize, HResult> {
    sink.cast::<IUnknown>()
        .map(|unknown| unknown.as_raw().addr())
        .map_err(|error| HResult::from_raw(error.code().0))
}

/// A `BSTR` argument as a string: `WBEM_E_INVALID_PARAMETER` when it is not UTF-16.
fn string(text: &BSTR) -> Result<String, HResult> {
    String::from_utf16(text).map_err(|_| HResult::WBEM_E_INVALID_PARAMETER)
}

/// An optional `LPWSTR` argument.
///
/// # Safety
/// `text` is null or a NUL-terminated UTF-16 string (or has `MAX_NAME_UNITS` readable units).
unsafe fn wide_arg(text: &PCWSTR) -> Result<Option<String>, HResult> {
    // SAFETY: forwarded to the caller's contract.
    match unsafe { ffi::wide_str_opt(text.0, MAX_NAME_UNITS) } {
        Ok(None) => Ok(None),
        Ok(Some(units)) => String::from_utf16(units)
            .map(Some)
            .map_err(|_| HResult::WBEM_E_INVALID_PARAMETER),
        Err(_) => Err(HResult::WBEM_E_INVALID_PARAMETER),
    }
}

#[cfg(feature = "testing")]
thread_local! {
    /// How many calls this thread's last `CancelAsyncCall` won (the COM method returns only
    /// `WBEM_S_NO_ERROR`; the simulator reads the count here, on the thread that called it).
    static CANCELS_WON: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many calls this thread's last `CancelAsyncCall` won.
#[cfg(feature = "testing")]
pub(crate) fn cancels_won() -> usize {
    CANCELS_WON.get()
}

/// Where the provider object is in its life.
enum State {
    /// Created; `Initialize` not called yet.
    New,
    /// `Initialize` is running the author's hook.
    Initializing,
    /// Initialized: the namespace it was given.
    Ready(Namespace),
    /// `Initialize` failed: every call is refused.
    Failed,
}

/// The provider's COM object: one per `CoCreateInstance` of its class, owning the runtime of
/// the author's provider.
#[implement(IWbemProviderInit, IWbemServices, IWbemEventProvider)]
pub(crate) struct ProviderObject<P>
where
    P: Provider,
{
    runtime: ManuallyDrop<Arc<Runtime<P>>>,
    state: Mutex<State>,
    _live: Live,
}

impl<P: Provider> ProviderObject<P> {
    /// A new, uninitialized object serving `runtime`, counted in `module`.
    pub(crate) fn create(runtime: Arc<Runtime<P>>, module: &'static Module) -> IWbemProviderInit {
        ProviderObject {
            runtime: ManuallyDrop::new(runtime),
            state: Mutex::new(State::New),
            _live: Live::new(module),
        }
        .into()
    }

    /// The runtime of a provider object of this type (for the simulator, which activates
    /// objects through the class factory).
    ///
    /// # Safety
    /// `object` was made by [`create`](Self::create) for this `P` (by this crate's factory of
    /// a `Server<P>`).
    #[cfg(feature = "testing")]
    pub(crate) unsafe fn runtime_of(object: &IWbemProviderInit) -> Arc<Runtime<P>> {
        use windows_core::AsImpl;
        // SAFETY: the caller's contract: the object's implementation is a ProviderObject<P>.
        let this: &ProviderObject<P> = unsafe { object.as_impl() };
        Arc::clone(&this.runtime)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The namespace of a successful `Initialize`; `WBEM_E_FAILED` before (or after a failed
    /// one).
    fn namespace(&self) -> Result<Namespace, HResult> {
        match &*self.state() {
            State::Ready(namespace) => Ok(namespace.clone()),
            _ => Err(HResult::WBEM_E_FAILED),
        }
    }

    /// `Initialize`'s work, whose outcome goes to the init sink: the arguments, then the
    /// author's hook (a panic is a failure).
    ///
    /// # Safety
    /// The strings are null or NUL-terminated UTF-16.
    unsafe fn initialize(
        &self,
        user: &PCWSTR,
        flags: i32,
        namespace_name: &PCWSTR,
        locale: &PCWSTR,
        namespace: Option<IWbemServices>,
    ) -> HResult {
        {
            let mut state = self.state();
            if !matches!(*state, State::New) {
                tracing::error!("IWbemProviderInit::Initialize called twice");
                return HResult::WBEM_E_FAILED;
            }
            *state = State::Initializing;
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: forwarded to the caller's contract.
            let (user, name, locale) = unsafe {
                (
                    wide_arg(user)?,
                    wide_arg(namespace_name)?,
                    wide_arg(locale)?,
                )
            };
            let namespace = namespace.ok_or(HResult::WBEM_E_INVALID_PARAMETER)?;
            let name = name.unwrap_or_default();
            let init = Init {
                user: user.as_deref(),
                namespace: &name,
                locale: locale.as_deref(),
                flags,
            };
            self.runtime.provider().init(&init)?;
            Ok::<_, HResult>(Namespace::new(namespace))
        }));
        let mut state = self.state();
        match outcome {
            Ok(Ok(namespace)) => {
                *state = State::Ready(namespace);
                HResult::S_OK
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "the provider's initialization failed");
                *state = State::Failed;
                HResult::WBEM_E_FAILED
            }
            Err(_) => {
                tracing::error!("the provider's initialization panicked");
                *state = State::Failed;
                HResult::WBEM_E_FAILED
            }
        }
    }

    /// One asynchronous call: the object is initialized, the sink is there (AddRef'd for the
    /// call, R-WMI-2), then the runtime runs it with an adapter over the sink.
    fn serve(
        &self,
        export: &'static str,
        context: Ref<'_, IWbemContext>,
        sink: Ref<'_, IWbemObjectSink>,
        method: Option<(String, String)>,
        start: impl FnOnce(&Runtime<P>, CallSink) -> HResult,
    ) -> windows_core::Result<()> {
        com(export, || {
            let call = (|| {
                let namespace = self.namespace()?;
                let sink = sink.cloned().ok_or(HResult::WBEM_E_INVALID_PARAMETER)?;
                let identity = identity(&sink)?;
                let context = context.cloned().map(Shared).map(Arc::new);
                let adapter =
                    ResponseAdapter::new(sink, namespace.clone(), context.clone(), method);
                let services = CallContext::new(namespace, context);
                Ok(CallSink::new(identity, Arc::new(adapter)).with_context(Arc::new(services)))
            })();
            match call {
                Ok(call) => start(&self.runtime, call),
                Err(error) => error,
            }
        })
    }
}

impl<P: Provider> Drop for ProviderObject<P> {
    /// The last `Release`: the author's provider is dropped here, inside a boundary of its own
    /// (a panicking `Drop` must not unwind into WMI).
    fn drop(&mut self) {
        // SAFETY: taken once, here; the field is not used again.
        let runtime = unsafe { ManuallyDrop::take(&mut self.runtime) };
        boundary("IUnknown::Release", (), || drop(runtime));
    }
}

impl<P: Provider> IWbemProviderInit_Impl for ProviderObject_Impl<P> {
    fn Initialize(
        &self,
        wszuser: &PCWSTR,
        lflags: i32,
        wsznamespace: &PCWSTR,
        wszlocale: &PCWSTR,
        pnamespace: Ref<'_, IWbemServices>,
        _pctx: Ref<'_, IWbemContext>,
        pinitsink: Ref<'_, IWbemProviderInitSink>,
    ) -> windows_core::Result<()> {
        com("IWbemProviderInit::Initialize", || {
            // Held (AddRef'd) until the status is reported (R-WMI-2).
            let Some(sink) = pinitsink.cloned() else {
                return HResult::WBEM_E_INVALID_PARAMETER;
            };
            // SAFETY: WMI passes NUL-terminated strings (or NULL).
            let status = unsafe {
                self.initialize(
                    wszuser,
                    lflags,
                    wsznamespace,
                    wszlocale,
                    pnamespace.cloned(),
                )
            };
            // Exactly once, on every path (R-WMI-1): `initialize` does not unwind.
            // SAFETY: a live sink held for the call.
            if let Err(error) = unsafe { sink.SetStatus(status.raw(), 0) } {
                tracing::warn!(%error, "the init sink's SetStatus failed");
            }
            HResult::S_OK
        })
    }
}

/// The methods a provider does not serve (R-WMI-6).
fn not_capable<T>() -> windows_core::Result<T> {
    Err(windows_core::Error::from_hresult(windows_core::HRESULT(
        HResult::WBEM_E_PROVIDER_NOT_CAPABLE.raw(),
    )))
}

impl<P: Provider> IWbemServices_Impl for ProviderObject_Impl<P> {
    fn OpenNamespace(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemServices>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn CancelAsyncCall(&self, psink: Ref<'_, IWbemObjectSink>) -> windows_core::Result<()> {
        com("IWbemServices::CancelAsyncCall", || {
            if let Err(error) = self.namespace() {
                return error;
            }
            let Some(sink) = psink.as_ref() else {
                return HResult::WBEM_E_INVALID_PARAMETER;
            };
            match identity(sink) {
                Ok(identity) => {
                    let won = self.runtime.cancel_async_call(identity);
                    tracing::debug!(won, "CancelAsyncCall");
                    #[cfg(feature = "testing")]
                    CANCELS_WON.set(won);
                    HResult::S_OK
                }
                Err(error) => error,
            }
        })
    }

    fn QueryObjectSink(&self, _: WBEM_GENERIC_FLAG_TYPE) -> windows_core::Result<IWbemObjectSink> {
        not_capable()
    }

    fn GetObject(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemClassObject>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn GetObjectAsync(
        &self,
        strobjectpath: &BSTR,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        let path = string(strobjectpath);
        self.serve(
            "IWbemServices::GetObjectAsync",
            pctx,
            presponsehandler,
            None,
            |runtime, sink| match path {
                Ok(path) => runtime.get_object_async(&path, lflags.0, sink),
                Err(error) => error,
            },
        )
    }

    fn PutClass(
        &self,
        _: Ref<'_, IWbemClassObject>,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn PutClassAsync(
        &self,
        _: Ref<'_, IWbemClassObject>,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn DeleteClass(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn DeleteClassAsync(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn CreateClassEnum(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_capable()
    }

    fn CreateClassEnumAsync(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn PutInstance(
        &self,
        _: Ref<'_, IWbemClassObject>,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn PutInstanceAsync(
        &self,
        pinst: Ref<'_, IWbemClassObject>,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        self.serve(
            "IWbemServices::PutInstanceAsync",
            pctx,
            presponsehandler,
            None,
            |runtime, sink| {
                let instance = match pinst.as_ref() {
                    Some(object) => instance_of(object),
                    None => Err(HResult::WBEM_E_INVALID_PARAMETER),
                };
                match instance {
                    Ok(instance) => runtime.put_instance_async(instance, lflags.0, sink),
                    Err(error) => error,
                }
            },
        )
    }

    fn DeleteInstance(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn DeleteInstanceAsync(
        &self,
        strobjectpath: &BSTR,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        let path = string(strobjectpath);
        self.serve(
            "IWbemServices::DeleteInstanceAsync",
            pctx,
            presponsehandler,
            None,
            |runtime, sink| match path {
                Ok(path) => runtime.delete_instance_async(&path, lflags.0, sink),
                Err(error) => error,
            },
        )
    }

    fn CreateInstanceEnum(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_capable()
    }

    fn CreateInstanceEnumAsync(
        &self,
        strfilter: &BSTR,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        let class = string(strfilter);
        self.serve(
            "IWbemServices::CreateInstanceEnumAsync",
            pctx,
            presponsehandler,
            None,
            |runtime, sink| match class {
                Ok(class) => runtime.create_instance_enum_async(&class, lflags.0, sink),
                Err(error) => error,
            },
        )
    }

    fn ExecQuery(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_capable()
    }

    fn ExecQueryAsync(
        &self,
        strquerylanguage: &BSTR,
        strquery: &BSTR,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        let query = string(strquerylanguage).and_then(|l| Ok((l, string(strquery)?)));
        self.serve(
            "IWbemServices::ExecQueryAsync",
            pctx,
            presponsehandler,
            None,
            |runtime, sink| match query {
                Ok((language, query)) => {
                    runtime.exec_query_async(&language, &query, lflags.0, sink)
                }
                Err(error) => error,
            },
        )
    }

    fn ExecNotificationQuery(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_capable()
    }

    fn ExecNotificationQueryAsync(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn ExecMethod(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemClassObject>,
        _: OutRef<'_, IWbemClassObject>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_capable()
    }

    fn ExecMethodAsync(
        &self,
        strobjectpath: &BSTR,
        strmethodname: &BSTR,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        pinparams: Ref<'_, IWbemClassObject>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        let names = string(strobjectpath).and_then(|p| Ok((p, string(strmethodname)?)));
        let target = names
            .as_ref()
            .ok()
            .map(|(path, method)| (object_class(path).to_string(), method.clone()));
        self.serve(
            "IWbemServices::ExecMethodAsync",
            pctx,
            presponsehandler,
            target,
            |runtime, sink| {
                let (path, method) = match names {
                    Ok(names) => names,
                    Err(error) => return error,
                };
                let in_parameters = match pinparams.as_ref().map(instance_of).transpose() {
                    Ok(parameters) => parameters,
                    Err(error) => return error,
                };
                runtime.exec_method_async(&path, &method, in_parameters.as_ref(), lflags.0, sink)
            },
        )
    }
}

impl<P: Provider> IWbemEventProvider_Impl for ProviderObject_Impl<P> {
    fn ProvideEvents(
        &self,
        psink: Ref<'_, IWbemObjectSink>,
        lflags: i32,
    ) -> windows_core::Result<()> {
        com("IWbemEventProvider::ProvideEvents", || {
            let namespace = match self.namespace() {
                Ok(namespace) => namespace,
                Err(error) => return error,
            };
            // AddRef'd: the author keeps it after ProvideEvents returns (R-WMI-10).
            let Some(sink) = psink.cloned() else {
                return HResult::WBEM_E_INVALID_PARAMETER;
            };
            self.runtime
                .provide_events(Arc::new(EventAdapter::new(sink, namespace)), lflags)
        })
    }
}
