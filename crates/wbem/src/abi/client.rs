//! The COM side of calling WMI ([`crate::client`]): a namespace's `IWbemServices` (from WMI's
//! locator on Windows, or any the crate holds), and for every `*Async` call one new
//! `IWbemObjectSink` object (`#[implement]`) of its own, whose messages go through an unbounded
//! channel to the caller.
//!
//! - The sink passes on exactly one final status: the first `SetStatus(WBEM_STATUS_COMPLETE)`.
//!   It then drops its end of the channel; whatever a faulty server sends after it (another
//!   final status, an `Indicate`) is counted and logged, never passed on. Progress reports are
//!   dropped (the calls never ask for them: no `WBEM_FLAG_SEND_STATUS`).
//! - Sending never blocks: an in-process server runs the call on the caller's thread, inside
//!   the `*Async` method, before anyone reads the channel.
//! - Objects are read as [`Instance`]s during `Indicate` (they are the server's, borrowed for
//!   the call); one that cannot be read is reported as such, in its place.
//! - Once the caller has let go of the call (its receiver dropped), `Indicate` answers
//!   `WBEM_E_CALL_CANCELLED`, so a server still sending learns nobody reads.
//! - `CancelAsyncCall` is made with the call's own sink, so it names that call only (a sink is
//!   never shared between calls).

use super::convert::{Converter, Namespace, Variant, instance_of, object_class};
use super::{Shared, com};
use crate::host::{WBEM_STATUS_COMPLETE, WBEM_STATUS_PROGRESS};
use crate::value::Instance;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use windows_core::{BSTR, HRESULT, Ref, implement};
use winprov_bindings::wbem::{
    IWbemClassObject, IWbemObjectSink, IWbemObjectSink_Impl, IWbemServices, WBEM_GENERIC_FLAG_TYPE,
};
use winprov_core::HResult;

/// Most objects read from one `Indicate`: beyond, the array is refused as malformed.
const MAX_BATCH: usize = 1 << 16;

/// What a call's sink passes on, in the order it received it.
#[derive(Debug)]
pub(crate) enum SinkEvent {
    /// The objects of one `Indicate`, read as instances.
    Objects(Vec<Instance>),
    /// An indicated object that could not be read as an instance: why.
    Unreadable(HResult),
    /// The final `SetStatus`: its `hResult` and `strParam`. Nothing follows it.
    Status {
        hresult: HResult,
        param: Option<String>,
    },
}

/// `windows_core::Error` to the raw code.
fn code(error: windows_core::Error) -> HResult {
    HResult::from_raw(error.code().0)
}

/// A namespace's `IWbemServices` the calls are made on, which also gives the class definitions
/// (`GetObject`) that instances and in-parameters are made from.
pub(crate) struct Services {
    services: Shared<IWbemServices>,
    namespace: Namespace,
    /// The calls' sinks still alive (held by a call or by the server).
    sinks: Arc<AtomicUsize>,
    /// Declared last: released after the interfaces above (they live in the apartment).
    #[cfg(windows)]
    _apartment: Option<imp::MtaUsage>,
}

impl Services {
    /// Calls on `services` (any namespace the crate holds: WMI's own, or the simulator's).
    #[cfg_attr(
        not(any(windows, feature = "testing")),
        expect(dead_code, reason = "only WMI's locator and the simulator make one")
    )]
    pub(crate) fn new(services: IWbemServices) -> Self {
        Self {
            namespace: Namespace::new(services.clone()),
            services: Shared(services),
            sinks: Arc::default(),
            #[cfg(windows)]
            _apartment: None,
        }
    }

    /// Connects to `namespace` on this computer through WMI's locator (`WbemLocator`):
    /// `REGDB_E_CLASSNOTREG` when there is no WMI (and always off Windows).
    pub(crate) fn connect(namespace: &str) -> Result<Self, HResult> {
        imp::connect(namespace)
    }

    /// Makes a call: a new sink of its own, then `start` with it. The sink is released here
    /// when `start` fails (the server then does not use it).
    fn start(
        self: &Arc<Self>,
        start: impl FnOnce(&IWbemServices, &IWbemObjectSink) -> windows_core::Result<()>,
    ) -> Result<Pending, HResult> {
        let (sender, events) = mpsc::channel();
        let ignored = Arc::new(AtomicUsize::new(0));
        let sink: IWbemObjectSink = CallSink {
            sender: Mutex::new(Some(sender)),
            ignored: Arc::clone(&ignored),
            _live: Live::new(&self.sinks),
        }
        .into();
        start(&self.services.0, &sink).map_err(code)?;
        Ok(Pending {
            services: Arc::clone(self),
            sink: Some(Shared(sink)),
            events,
            ignored,
        })
    }

    /// The calls' sinks still alive: each until its call and the server both released it.
    pub(crate) fn live_sinks(&self) -> usize {
        self.sinks.load(Ordering::SeqCst)
    }

    /// `CreateInstanceEnumAsync(class)`.
    pub(crate) fn enumerate(self: &Arc<Self>, class: &str) -> Result<Pending, HResult> {
        let class = BSTR::from(class);
        self.start(|services, sink| {
            // SAFETY: a live namespace, a string and a sink alive for the call; no context.
            unsafe { services.CreateInstanceEnumAsync(&class, flags(), None, sink) }
        })
    }

    /// `ExecQueryAsync("WQL", query)`.
    pub(crate) fn query(self: &Arc<Self>, query: &str) -> Result<Pending, HResult> {
        let (language, query) = (BSTR::from("WQL"), BSTR::from(query));
        self.start(|services, sink| {
            // SAFETY: as for `enumerate`.
            unsafe { services.ExecQueryAsync(&language, &query, flags(), None, sink) }
        })
    }

    /// `GetObjectAsync(path)`.
    pub(crate) fn get(self: &Arc<Self>, path: &str) -> Result<Pending, HResult> {
        let path = BSTR::from(path);
        self.start(|services, sink| {
            // SAFETY: as for `enumerate`.
            unsafe { services.GetObjectAsync(&path, flags(), None, sink) }
        })
    }

    /// `DeleteInstanceAsync(path)`.
    pub(crate) fn delete(self: &Arc<Self>, path: &str) -> Result<Pending, HResult> {
        let path = BSTR::from(path);
        self.start(|services, sink| {
            // SAFETY: as for `enumerate`.
            unsafe { services.DeleteInstanceAsync(&path, flags(), None, sink) }
        })
    }

    /// `PutInstanceAsync` of an instance of the class `instance` names (created or updated),
    /// made from the namespace's class definition.
    pub(crate) fn put(self: &Arc<Self>, instance: &Instance) -> Result<Pending, HResult> {
        let object = Converter::new(self.namespace.clone(), None, None).object(instance)?;
        self.start(|services, sink| {
            // SAFETY: as for `enumerate`, and a live object.
            unsafe { services.PutInstanceAsync(&object, flags(), None, sink) }
        })
    }

    /// `ExecMethodAsync(path, method, in_parameters)`, the in-parameters an instance of the
    /// method's in-parameters signature.
    pub(crate) fn exec_method(
        self: &Arc<Self>,
        path: &str,
        method: &str,
        in_parameters: Option<&Instance>,
    ) -> Result<Pending, HResult> {
        let parameters = match in_parameters {
            Some(parameters) => Some(self.in_parameters(path, method, parameters)?),
            None => None,
        };
        let (path, method) = (BSTR::from(path), BSTR::from(method));
        self.start(|services, sink| {
            // SAFETY: as for `enumerate`, and a live object or none.
            unsafe {
                services.ExecMethodAsync(&path, &method, flags(), None, parameters.as_ref(), sink)
            }
        })
    }

    /// The in-parameters object of `method` of the class `path` names, with `parameters`'
    /// properties: `WBEM_E_INVALID_METHOD_PARAMETERS` when the method takes none.
    fn in_parameters(
        &self,
        path: &str,
        method: &str,
        parameters: &Instance,
    ) -> Result<IWbemClassObject, HResult> {
        let class = self.namespace.get_object(object_class(path), None)?;
        let (mut inputs, mut outputs) = (None, None);
        let name = winprov_core::ffi::to_wide_nul(method);
        // SAFETY: a live class object; a NUL-terminated name; local out-pointers.
        unsafe {
            class.GetMethod(
                windows_core::PCWSTR(name.as_ptr()),
                0,
                &mut inputs,
                &mut outputs,
            )
        }
        .map_err(code)?;
        let signature = inputs.ok_or(HResult::WBEM_E_INVALID_METHOD_PARAMETERS)?;
        // SAFETY: a live class object.
        let object = unsafe { signature.SpawnInstance(0) }.map_err(code)?;
        for (name, value) in parameters.properties() {
            let variant = Variant::from_value(value)?;
            let name = winprov_core::ffi::to_wide_nul(name);
            // SAFETY: a live object, a NUL-terminated name and a valid VARIANT, which Put
            // copies; `Type` 0 for an instance.
            unsafe { object.Put(windows_core::PCWSTR(name.as_ptr()), 0, variant.as_ptr(), 0) }
                .map_err(code)?;
        }
        Ok(object)
    }
}

/// The calls' `lFlags`: none (no progress reports, create or update for a put).
fn flags() -> WBEM_GENERIC_FLAG_TYPE {
    WBEM_GENERIC_FLAG_TYPE(0)
}

/// A call whose `*Async` method accepted it: its sink (for `CancelAsyncCall`) and the
/// receiving end of the sink's channel.
pub(crate) struct Pending {
    services: Arc<Services>,
    sink: Option<Shared<IWbemObjectSink>>,
    events: Receiver<SinkEvent>,
    ignored: Arc<AtomicUsize>,
}

impl Pending {
    /// The sink's next message, waiting for it; `None` once the sink is gone (after its final
    /// status, or released by the server without one).
    pub(crate) fn next(&self) -> Option<SinkEvent> {
        self.events.recv().ok()
    }

    /// The sink's next message if there is one already.
    pub(crate) fn try_next(&self) -> Option<SinkEvent> {
        self.events.try_recv().ok()
    }

    /// Lets go of the call's sink: from now on the channel closes when the server releases it,
    /// with or without a final status. The call can no longer be cancelled.
    pub(crate) fn release_sink(&mut self) {
        self.sink = None;
    }

    /// `CancelAsyncCall` with this call's sink: what it returned (a call WMI no longer knows is
    /// an error, and harmless).
    pub(crate) fn cancel(&self) -> HResult {
        let Some(sink) = &self.sink else {
            return HResult::WBEM_E_INVALID_PARAMETER;
        };
        // SAFETY: a live namespace and the live sink this call was made with.
        match unsafe { self.services.services.0.CancelAsyncCall(&sink.0) } {
            Ok(()) => HResult::S_OK,
            Err(error) => code(error),
        }
    }

    /// Messages the sink ignored so far: anything after the final status.
    pub(crate) fn ignored(&self) -> usize {
        self.ignored.load(Ordering::SeqCst)
    }
}

/// One live sink, in its connection's count.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(count))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One call's sink: a COM object of its own, so its identity is this call's alone.
#[implement(IWbemObjectSink)]
struct CallSink {
    /// `None` after the final status.
    sender: Mutex<Option<Sender<SinkEvent>>>,
    ignored: Arc<AtomicUsize>,
    _live: Live,
}

impl CallSink {
    /// The sender, unless the final status came already (then the message is counted).
    fn sender(&self, what: &str) -> Option<Sender<SinkEvent>> {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if sender.is_none() {
            self.ignored.fetch_add(1, Ordering::SeqCst);
            tracing::warn!("{what} after the call's final status: ignored");
        }
        sender
    }

    /// The objects of an `Indicate`, each read as an instance (or why it could not be).
    ///
    /// # Safety
    /// `array` is null or points to `count` interface pointers, each null or live.
    unsafe fn read(count: i32, array: *const Option<IWbemClassObject>) -> Vec<SinkEvent> {
        let count = usize::try_from(count).unwrap_or(0);
        if count == 0 || array.is_null() || count > MAX_BATCH {
            return vec![SinkEvent::Unreadable(HResult::WBEM_E_INVALID_PARAMETER)];
        }
        // SAFETY: `count` pointers at `array` (the caller's contract), borrowed for the call.
        let objects = unsafe { std::slice::from_raw_parts(array, count) };
        let mut events = Vec::new();
        let mut batch = Vec::new();
        for object in objects {
            let read = object
                .as_ref()
                .ok_or(HResult::WBEM_E_INVALID_PARAMETER)
                .and_then(instance_of);
            match read {
                Ok(instance) => batch.push(instance),
                Err(error) => {
                    if !batch.is_empty() {
                        events.push(SinkEvent::Objects(std::mem::take(&mut batch)));
                    }
                    events.push(SinkEvent::Unreadable(error));
                }
            }
        }
        if !batch.is_empty() {
            events.push(SinkEvent::Objects(batch));
        }
        events
    }
}

impl IWbemObjectSink_Impl for CallSink_Impl {
    fn Indicate(
        &self,
        lobjectcount: i32,
        apobjarray: *const Option<IWbemClassObject>,
    ) -> windows_core::Result<()> {
        com("IWbemObjectSink::Indicate", || {
            let Some(sender) = self.sender("Indicate") else {
                return HResult::S_OK;
            };
            // SAFETY: the server passes `lobjectcount` object pointers, live for the call.
            let events = unsafe { CallSink::read(lobjectcount, apobjarray) };
            for event in events {
                if sender.send(event).is_err() {
                    // The caller let go of the call: tell the server to stop.
                    return HResult::WBEM_E_CALL_CANCELLED;
                }
            }
            HResult::S_OK
        })
    }

    fn SetStatus(
        &self,
        lflags: i32,
        hresult: HRESULT,
        strparam: &BSTR,
        _pobjparam: Ref<'_, IWbemClassObject>,
    ) -> windows_core::Result<()> {
        com("IWbemObjectSink::SetStatus", || {
            match lflags {
                WBEM_STATUS_COMPLETE => {}
                WBEM_STATUS_PROGRESS => return HResult::S_OK,
                other => {
                    tracing::debug!(flags = other, "SetStatus of another kind: ignored");
                    return HResult::S_OK;
                }
            }
            // The first final status takes the sender: nothing is passed on after it.
            let taken = self
                .sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            let Some(sender) = taken else {
                self.ignored.fetch_add(1, Ordering::SeqCst);
                tracing::warn!(
                    hresult = %HResult::from_raw(hresult.0),
                    "a second final SetStatus: ignored"
                );
                return HResult::S_OK;
            };
            let param = (!strparam.is_empty()).then(|| String::from_utf16_lossy(strparam));
            // A caller that let go of the call does not read it: nothing to do.
            let _ = sender.send(SinkEvent::Status {
                hresult: HResult::from_raw(hresult.0),
                param,
            });
            HResult::S_OK
        })
    }
}

#[cfg(windows)]
mod imp {
    use super::Services;
    use windows_core::BSTR;
    use winprov_bindings::wbem::{
        CLSCTX_INPROC_SERVER, CO_MTA_USAGE_COOKIE, COINIT_MULTITHREADED, CoCreateInstance,
        CoDecrementMTAUsage, CoIncrementMTAUsage, CoInitializeEx, CoSetProxyBlanket,
        CoUninitialize, EOAC_NONE, IWbemLocator, RPC_C_AUTHN_LEVEL_CALL, RPC_C_AUTHN_WINNT,
        RPC_C_AUTHZ_NONE, RPC_C_IMP_LEVEL_IMPERSONATE, WbemLocator,
    };
    use winprov_core::HResult;

    /// A use of the process's multithreaded apartment, which keeps it alive (and threads with
    /// no apartment in it) until dropped, on any thread.
    pub(super) struct MtaUsage(CO_MTA_USAGE_COOKIE);

    // SAFETY: the cookie is a token CoDecrementMTAUsage takes on any thread.
    unsafe impl Send for MtaUsage {}
    // SAFETY: as above; nothing reads it before the drop.
    unsafe impl Sync for MtaUsage {}

    impl Drop for MtaUsage {
        fn drop(&mut self) {
            // SAFETY: the cookie of this value's one successful CoIncrementMTAUsage.
            if let Err(error) = unsafe { CoDecrementMTAUsage(self.0) } {
                tracing::warn!(%error, "CoDecrementMTAUsage failed");
            }
        }
    }

    fn code(error: windows_core::Error) -> HResult {
        HResult::from_raw(error.code().0)
    }

    pub(super) fn connect(namespace: &str) -> Result<Services, HResult> {
        // SAFETY: no arguments; the cookie is released by MtaUsage's drop.
        let usage = MtaUsage(unsafe { CoIncrementMTAUsage() }.map_err(code)?);
        // The sink is called back on WMI's threads: the calling thread must not be in a
        // single-threaded apartment (RPC_E_CHANGED_MODE), whose calls wait for its message loop.
        // SAFETY: no reserved pointer; a success is balanced at once (the MTA stays alive
        // through `usage`, and this thread in it).
        unsafe { CoInitializeEx(None, COINIT_MULTITHREADED) }
            .ok()
            .map_err(code)?;
        // SAFETY: balances the successful CoInitializeEx above, on the same thread.
        unsafe { CoUninitialize() };
        // SAFETY: a registered in-proc class id and the interface it implements.
        let locator: IWbemLocator =
            unsafe { CoCreateInstance(&WbemLocator, None, CLSCTX_INPROC_SERVER) }.map_err(code)?;
        let empty = BSTR::new();
        // SAFETY: a live locator; strings alive for the call (NULL user, password, locale and
        // authority: the caller's own identity); no context.
        let services = unsafe {
            locator.ConnectServer(
                &BSTR::from(namespace),
                &empty,
                &empty,
                &empty,
                0,
                &empty,
                None,
            )
        }
        .map_err(code)?;
        // Calls on the proxy impersonate the caller, as WMI's providers expect.
        // SAFETY: a live proxy; no principal name and no authentication identity (the
        // process's own).
        unsafe {
            CoSetProxyBlanket(
                &services,
                RPC_C_AUTHN_WINNT,
                RPC_C_AUTHZ_NONE,
                windows_core::PCWSTR::null(),
                RPC_C_AUTHN_LEVEL_CALL,
                RPC_C_IMP_LEVEL_IMPERSONATE,
                None,
                EOAC_NONE,
            )
        }
        .map_err(code)?;
        let mut connected = Services::new(services);
        connected._apartment = Some(usage);
        Ok(connected)
    }
}

#[cfg(not(windows))]
mod imp {
    use super::Services;
    use winprov_core::HResult;

    /// Off Windows there is no WMI: its locator's class is not registered.
    pub(super) fn connect(_namespace: &str) -> Result<Services, HResult> {
        Err(HResult::REGDB_E_CLASSNOTREG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::TryRecvError;

    /// A sink whose channel the test reads, and the interface a server calls.
    fn sink() -> (IWbemObjectSink, Receiver<SinkEvent>, Arc<AtomicUsize>) {
        let (sender, events) = mpsc::channel();
        let ignored = Arc::new(AtomicUsize::new(0));
        let sink = CallSink {
            sender: Mutex::new(Some(sender)),
            ignored: Arc::clone(&ignored),
            _live: Live::new(&Arc::default()),
        }
        .into();
        (sink, events, ignored)
    }

    fn set_status(sink: &IWbemObjectSink, flags: i32, hresult: HResult, param: &str) {
        // SAFETY: a live sink, a string alive for the call, no object.
        unsafe {
            sink.SetStatus(
                flags,
                HRESULT(hresult.raw()),
                &BSTR::from(param),
                None::<&IWbemClassObject>,
            )
        }
        .unwrap();
    }

    #[test]
    fn one_final_status_is_passed_on_and_the_rest_ignored() {
        let (sink, events, ignored) = sink();
        set_status(
            &sink,
            WBEM_STATUS_PROGRESS,
            HResult::from_raw(0x0001_0002),
            "",
        );
        set_status(
            &sink,
            WBEM_STATUS_COMPLETE,
            HResult::S_OK,
            "Entry.Name=\"a\"",
        );
        set_status(&sink, WBEM_STATUS_COMPLETE, HResult::WBEM_E_FAILED, "");
        // SAFETY: a live sink; an empty array is refused as malformed before it is read.
        unsafe { sink.Indicate(&[]) }.unwrap();
        let received: Vec<SinkEvent> = events.try_iter().collect();
        assert!(
            matches!(
                &received[..],
                [SinkEvent::Status { hresult: HResult::S_OK, param: Some(path) }]
                    if path == "Entry.Name=\"a\""
            ),
            "{received:?}"
        );
        assert_eq!(ignored.load(Ordering::SeqCst), 2);
        // The sender went with the final status: the channel is closed.
        assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Disconnected);
    }

    #[test]
    fn a_sink_nobody_reads_tells_the_server_to_stop() {
        let (sink, events, _) = sink();
        drop(events);
        // SAFETY: a live sink; the NULL object is read as unreadable.
        let indicated = unsafe { sink.Indicate(&[None]) };
        assert_eq!(
            indicated.unwrap_err().code().0,
            HResult::WBEM_E_CALL_CANCELLED.raw()
        );
        set_status(&sink, WBEM_STATUS_COMPLETE, HResult::S_OK, "");
    }

    #[test]
    fn off_windows_there_is_no_wmi() {
        if cfg!(windows) {
            return;
        }
        assert_eq!(
            Services::connect("root\\cimv2").err(),
            Some(HResult::REGDB_E_CLASSNOTREG)
        );
    }
}
