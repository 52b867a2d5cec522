//! The simulator's WMI as a client sees it ([`Host::client`]): an `IWbemServices` that hands
//! out class definitions (`GetObject`) and passes each `*Async` call, with the client's own
//! sink, and each `CancelAsyncCall` on to the provider object's vtables — on the caller's
//! thread (as an in-process provider runs a call), or on a thread of its own per call (as
//! WMI does: the `*Async` method returns at once).

use super::{Counted, Free, World, failure, lock, not_supported};
use crate::client::Connection;
use crate::host::WBEM_STATUS_COMPLETE;
use crate::provider::Provider;
use crate::testing::Host;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use windows_core::{BSTR, HRESULT, OutRef, Ref, implement};
use winprov_bindings::wbem::{
    IEnumWbemClassObject, IWbemCallResult, IWbemClassObject, IWbemContext, IWbemObjectSink,
    IWbemServices, IWbemServices_Impl, WBEM_GENERIC_FLAG_TYPE,
};
use winprov_core::HResult;

/// How the simulator's WMI runs a client's calls ([`Host::client_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dispatch {
    /// On the caller's thread, as an in-process provider runs them: the `*Async` method
    /// returns after the call's final status.
    Inline,
    /// Each on a thread of its own, as WMI runs them: the `*Async` method returns at once; a
    /// call the provider refuses gets its error as the final status. [`Host::release`] waits
    /// for the threads.
    Threaded,
    /// Inline, then as a faulty server: a second final status (`WBEM_E_FAILED`) and an
    /// `Indicate` after it, on the sink of every call the provider accepted.
    Repeating,
}

impl<P: Provider> Host<P> {
    /// A client of the provider ([`Connection`]) through the simulator's WMI, which runs each
    /// call on the caller's thread ([`Dispatch::Inline`]).
    pub fn client(&self) -> Connection {
        self.client_with(Dispatch::Inline)
    }

    /// A client of the provider through the simulator's WMI, which runs its calls as
    /// `dispatch` says. Class definitions are the declared classes' ([`Host::declare`]).
    pub fn client_with(&self, dispatch: Dispatch) -> Connection {
        let wmi: IWbemServices = SimWmi {
            world: Arc::clone(&self.world),
            provider: self.services.clone(),
            dispatch,
            _live: Counted::new(&self.world),
        }
        .into();
        Connection::new(crate::abi::client::Services::new(wmi))
    }

    /// How many `CancelAsyncCall`s the simulator's WMI received from clients.
    pub fn client_cancels(&self) -> usize {
        self.world.client_cancels.load(Ordering::SeqCst)
    }
}

/// One call, as the provider is to get it.
type Call = Box<dyn FnOnce(&IWbemServices, &IWbemObjectSink) -> windows_core::Result<()> + Send>;

/// The simulator's WMI, between a client and the provider object.
#[implement(IWbemServices)]
struct SimWmi {
    world: Arc<World>,
    provider: Free<IWbemServices>,
    dispatch: Dispatch,
    _live: Counted,
}

impl SimWmi {
    /// Runs `call` with the client's sink as `dispatch` says.
    fn run(&self, sink: Ref<'_, IWbemObjectSink>, call: Call) -> windows_core::Result<()> {
        let sink = sink
            .cloned()
            .ok_or_else(|| failure(HResult::WBEM_E_INVALID_PARAMETER))?;
        match self.dispatch {
            Dispatch::Inline => call(&self.provider.0, &sink),
            Dispatch::Repeating => {
                call(&self.provider.0, &sink)?;
                self.repeat(&sink);
                Ok(())
            }
            Dispatch::Threaded => {
                let (provider, sink) = (self.provider.clone(), Free(sink));
                let thread = std::thread::spawn(move || {
                    let (provider, sink) = (provider, sink);
                    if let Err(error) = call(&provider.0, &sink.0) {
                        // The client was told the call started: the refusal is its status.
                        // SAFETY: a live sink; an empty string and no object.
                        let _ = unsafe {
                            sink.0.SetStatus(
                                WBEM_STATUS_COMPLETE,
                                error.code(),
                                &BSTR::new(),
                                None::<&IWbemClassObject>,
                            )
                        };
                    }
                });
                lock(&self.world.threads).push(thread);
                Ok(())
            }
        }
    }

    /// A faulty server's messages after the final status.
    fn repeat(&self, sink: &IWbemObjectSink) {
        let late = self.world.object("Late", false, Vec::new());
        // SAFETY: a live sink; an empty string, no object; then one live object.
        unsafe {
            let _ = sink.SetStatus(
                WBEM_STATUS_COMPLETE,
                HRESULT(HResult::WBEM_E_FAILED.raw()),
                &BSTR::new(),
                None::<&IWbemClassObject>,
            );
            let _ = sink.Indicate(&[Some(late)]);
        }
    }
}

/// A string argument, owned (to cross to a call's thread).
fn owned(text: &BSTR) -> String {
    String::from_utf16_lossy(text)
}

impl IWbemServices_Impl for SimWmi_Impl {
    fn OpenNamespace(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemServices>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn CancelAsyncCall(&self, psink: Ref<'_, IWbemObjectSink>) -> windows_core::Result<()> {
        self.world.client_cancels.fetch_add(1, Ordering::SeqCst);
        // SAFETY: the provider's live object; the client's sink, live for the call.
        unsafe { self.provider.0.CancelAsyncCall(psink.as_ref()) }
    }
    fn QueryObjectSink(&self, _: WBEM_GENERIC_FLAG_TYPE) -> windows_core::Result<IWbemObjectSink> {
        not_supported()
    }
    /// Class definitions: the declared classes (untyped when not declared).
    fn GetObject(
        &self,
        strobjectpath: &BSTR,
        _lflags: WBEM_GENERIC_FLAG_TYPE,
        _pctx: Ref<'_, IWbemContext>,
        ppobject: OutRef<'_, IWbemClassObject>,
        _ppcallresult: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        let path = owned(strobjectpath);
        if path.is_empty() || path.contains(['.', '=']) {
            return not_supported();
        }
        ppobject.write(Some(self.world.object(&path, true, Vec::new())))
    }
    fn GetObjectAsync(
        &self,
        strobjectpath: &BSTR,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        let (path, context) = (owned(strobjectpath), Free(pctx.cloned()));
        self.run(
            presponsehandler,
            Box::new(move |provider, sink| {
                let context = context;
                // SAFETY: live objects and a string, alive for the call.
                unsafe {
                    provider.GetObjectAsync(
                        &BSTR::from(path.as_str()),
                        lflags,
                        context.0.as_ref(),
                        sink,
                    )
                }
            }),
        )
    }
    fn PutClass(
        &self,
        _: Ref<'_, IWbemClassObject>,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn PutClassAsync(
        &self,
        _: Ref<'_, IWbemClassObject>,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn DeleteClass(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn DeleteClassAsync(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn CreateClassEnum(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_supported()
    }
    fn CreateClassEnumAsync(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn PutInstance(
        &self,
        _: Ref<'_, IWbemClassObject>,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn PutInstanceAsync(
        &self,
        pinst: Ref<'_, IWbemClassObject>,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        let (object, context) = (Free(pinst.cloned()), Free(pctx.cloned()));
        self.run(
            presponsehandler,
            Box::new(move |provider, sink| {
                let (object, context) = (object, context);
                // SAFETY: live objects, alive for the call.
                unsafe {
                    provider.PutInstanceAsync(object.0.as_ref(), lflags, context.0.as_ref(), sink)
                }
            }),
        )
    }
    fn DeleteInstance(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn DeleteInstanceAsync(
        &self,
        strobjectpath: &BSTR,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        let (path, context) = (owned(strobjectpath), Free(pctx.cloned()));
        self.run(
            presponsehandler,
            Box::new(move |provider, sink| {
                let context = context;
                // SAFETY: live objects and a string, alive for the call.
                unsafe {
                    provider.DeleteInstanceAsync(
                        &BSTR::from(path.as_str()),
                        lflags,
                        context.0.as_ref(),
                        sink,
                    )
                }
            }),
        )
    }
    fn CreateInstanceEnum(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_supported()
    }
    fn CreateInstanceEnumAsync(
        &self,
        strfilter: &BSTR,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        let (class, context) = (owned(strfilter), Free(pctx.cloned()));
        self.run(
            presponsehandler,
            Box::new(move |provider, sink| {
                let context = context;
                // SAFETY: live objects and a string, alive for the call.
                unsafe {
                    provider.CreateInstanceEnumAsync(
                        &BSTR::from(class.as_str()),
                        lflags,
                        context.0.as_ref(),
                        sink,
                    )
                }
            }),
        )
    }
    fn ExecQuery(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_supported()
    }
    fn ExecQueryAsync(
        &self,
        strquerylanguage: &BSTR,
        strquery: &BSTR,
        lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        presponsehandler: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        let (language, query) = (owned(strquerylanguage), owned(strquery));
        let context = Free(pctx.cloned());
        self.run(
            presponsehandler,
            Box::new(move |provider, sink| {
                let context = context;
                // SAFETY: live objects and strings, alive for the call.
                unsafe {
                    provider.ExecQueryAsync(
                        &BSTR::from(language.as_str()),
                        &BSTR::from(query.as_str()),
                        lflags,
                        context.0.as_ref(),
                        sink,
                    )
                }
            }),
        )
    }
    fn ExecNotificationQuery(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_supported()
    }
    fn ExecNotificationQueryAsync(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
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
        not_supported()
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
        let (path, method) = (owned(strobjectpath), owned(strmethodname));
        let (parameters, context) = (Free(pinparams.cloned()), Free(pctx.cloned()));
        self.run(
            presponsehandler,
            Box::new(move |provider, sink| {
                let (parameters, context) = (parameters, context);
                // SAFETY: live objects and strings, alive for the call.
                unsafe {
                    provider.ExecMethodAsync(
                        &BSTR::from(path.as_str()),
                        &BSTR::from(method.as_str()),
                        lflags,
                        context.0.as_ref(),
                        parameters.0.as_ref(),
                        sink,
                    )
                }
            }),
        )
    }
}
