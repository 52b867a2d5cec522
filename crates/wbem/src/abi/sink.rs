//! The host's end of the runtime's messages: a call's response sink and an event provider's
//! sink over the client's `IWbemObjectSink`, and a call's dependent-request services.

use super::Shared;
use super::convert::{Converter, Namespace, instance_of};
use crate::host::{EventIndicate, Services, SinkMessage, WBEM_STATUS_COMPLETE};
use crate::value::Instance;
use std::sync::{Arc, Mutex, PoisonError};
use windows_core::{BSTR, HRESULT};
use winprov_bindings::wbem::{IWbemClassObject, IWbemContext, IWbemObjectSink};
use winprov_core::{HResult, HostSink};

fn code(result: windows_core::Result<()>) -> HResult {
    match result {
        Ok(()) => HResult::S_OK,
        Err(error) => HResult::from_raw(error.code().0),
    }
}

/// `Indicate(objects)` on `sink`, the instances converted first.
fn indicate(
    sink: &IWbemObjectSink,
    converter: &Converter,
    objects: Vec<Instance>,
) -> Result<HResult, HResult> {
    let objects = converter.objects(objects)?;
    // SAFETY: a live sink (held by the caller) and an array of live objects, which WMI
    // AddRefs if it keeps them; ours are released when `objects` drops.
    Ok(code(unsafe { sink.Indicate(&objects) }))
}

/// One `*Async` call's response sink: the client's `IWbemObjectSink`, AddRef'd for the call
/// and released right after the final `SetStatus` (R-WMI-2).
pub(crate) struct ResponseAdapter {
    sink: Mutex<Option<Shared<IWbemObjectSink>>>,
    converter: Converter,
    /// The first instance that could not be converted: the call's final status becomes its
    /// error instead of a success (the client never sees success for a result it lost).
    lost: Mutex<Option<HResult>>,
}

impl ResponseAdapter {
    pub(crate) fn new(
        sink: IWbemObjectSink,
        namespace: Namespace,
        context: Option<Arc<Shared<IWbemContext>>>,
        method: Option<(String, String)>,
    ) -> Self {
        Self {
            sink: Mutex::new(Some(Shared(sink))),
            converter: Converter::new(namespace, context, method),
            lost: Mutex::default(),
        }
    }

    /// The sink, for one message (another reference, so no lock is held while it runs); the
    /// final status takes it: nothing reaches the client after it.
    fn sink(&self, last: bool) -> Option<IWbemObjectSink> {
        let mut held = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        match last {
            true => held.take().map(|shared| shared.0),
            false => held.as_ref().map(|shared| shared.0.clone()),
        }
    }
}

impl HostSink<SinkMessage> for ResponseAdapter {
    fn deliver(&self, message: SinkMessage) -> HResult {
        match message {
            SinkMessage::Indicate { objects } => {
                let Some(sink) = self.sink(false) else {
                    return HResult::WBEM_E_FAILED;
                };
                match indicate(&sink, &self.converter, objects) {
                    Ok(reply) => reply,
                    Err(error) => {
                        tracing::error!(%error, "an instance could not be converted for WMI");
                        let mut lost = self.lost.lock().unwrap_or_else(PoisonError::into_inner);
                        lost.get_or_insert(error);
                        error
                    }
                }
            }
            SinkMessage::SetStatus {
                flags,
                hresult,
                param,
            } => {
                let last = flags == WBEM_STATUS_COMPLETE;
                let lost = *self.lost.lock().unwrap_or_else(PoisonError::into_inner);
                let hresult = match (last, lost) {
                    (true, Some(error)) if hresult.is_ok() => error,
                    _ => hresult,
                };
                let Some(sink) = self.sink(last) else {
                    return HResult::WBEM_E_FAILED;
                };
                let param = param.map(|p| BSTR::from(p.as_str())).unwrap_or_default();
                // SAFETY: a live sink; the BSTR (or null) and the absent object are valid for
                // the call. After the final status, `sink` — our last reference — is released.
                code(unsafe {
                    sink.SetStatus(
                        flags,
                        HRESULT(hresult.raw()),
                        &param,
                        None::<&IWbemClassObject>,
                    )
                })
            }
        }
    }
}

/// An event provider's sink: `Indicate` only (R-WMI-10), AddRef'd for as long as the author
/// keeps it.
pub(crate) struct EventAdapter {
    sink: Shared<IWbemObjectSink>,
    converter: Converter,
}

impl EventAdapter {
    pub(crate) fn new(sink: IWbemObjectSink, namespace: Namespace) -> Self {
        Self {
            sink: Shared(sink),
            // Events are fired on the provider's own behalf: no client context.
            converter: Converter::new(namespace, None, None),
        }
    }
}

impl HostSink<EventIndicate> for EventAdapter {
    fn deliver(&self, message: EventIndicate) -> HResult {
        indicate(&self.sink.0, &self.converter, message.objects).unwrap_or_else(|error| error)
    }
}

/// A call's dependent requests: the namespace, with the call's `IWbemContext` (R-WMI-14).
pub(crate) struct CallContext {
    namespace: Namespace,
    context: Option<Arc<Shared<IWbemContext>>>,
}

impl CallContext {
    pub(crate) fn new(namespace: Namespace, context: Option<Arc<Shared<IWbemContext>>>) -> Self {
        Self { namespace, context }
    }
}

impl Services for CallContext {
    fn get_object(&self, path: &str) -> Result<Instance, HResult> {
        let context = self.context.as_deref().map(|c| &c.0);
        instance_of(&self.namespace.get_object(path, context)?)
    }
}
