//! The host simulator (feature `testing`): plays WMI against any provider, at the runtime
//! level until the COM layer exists.
//!
//! It makes client sinks ([`Host::sink`]; several calls may share one, as WMI clients may),
//! starts the `*Async` calls through a [`Runtime`] of its own, and cancels by sink
//! ([`Host::cancel`]) at whatever point a test chooses, from any thread. Each call's messages
//! are recorded (its [`CallRecord`]) and checked, on every message and at the call's return,
//! against what WMI's documents promise the client, panicking with the rule's ID otherwise:
//!
//! - exactly one final `SetStatus` per call when the `*Async` method returned
//!   `WBEM_S_NO_ERROR`, and nothing after it (R-WMI-3, R-WMI-11);
//! - no `SetStatus` at all when it returned an error (R-WMI-5: the framework never does both);
//! - no progress report unless the call's flags had `WBEM_FLAG_SEND_STATUS` (R-WMI-4);
//! - no `Indicate` of zero or more than [`BATCH_SIZE`] objects;
//! - at most one object indicated by a method call, before its final status (R-WMI-8).

use crate::host::{
    EventIndicate, SinkMessage, WBEM_FLAG_SEND_STATUS, WBEM_STATUS_COMPLETE, WBEM_STATUS_PROGRESS,
};
use crate::provider::{BATCH_SIZE, Provider};
use crate::runtime::{CallSink, Runtime};
use crate::value::Instance;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use winprov_core::{HResult, HostSink};

/// What one call's sink received, in order.
#[derive(Clone, Debug, Default)]
pub struct CallRecord {
    /// What the `*Async` method returned.
    pub returned: Option<HResult>,
    /// Every object indicated, in order.
    pub indicated: Vec<Instance>,
    /// The size of each `Indicate`.
    pub batches: Vec<usize>,
    /// Progress reports (`MAKELONG(done, total)` each).
    pub progress: Vec<HResult>,
    /// The final status and its `strParam`.
    pub status: Option<(HResult, Option<String>)>,
    /// Final statuses received (the checks panic past one).
    pub finals: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Instance,
    Method,
}

/// One call's end of a client sink: records and checks what the call sends.
struct CallLog {
    record: Mutex<CallRecord>,
    flags: i32,
    kind: Kind,
    client: ClientSink,
}

impl CallLog {
    fn returned(&self, hresult: HResult) -> CallRecord {
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        record.returned = Some(hresult);
        match hresult.is_ok() {
            true => assert_eq!(
                record.finals, 1,
                "R-WMI-3: the call returned WBEM_S_NO_ERROR with {} final SetStatus",
                record.finals
            ),
            false => assert!(
                record.finals == 0 && record.batches.is_empty() && record.progress.is_empty(),
                "R-WMI-5: the call returned {hresult} and also used the sink"
            ),
        }
        record.clone()
    }
}

impl HostSink<SinkMessage> for CallLog {
    fn deliver(&self, message: SinkMessage) -> HResult {
        if let (SinkMessage::Indicate { .. }, Some(hook)) = (&message, &self.client.hook) {
            hook();
        }
        let mut record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        match message {
            SinkMessage::Indicate { objects } => {
                assert_eq!(
                    record.finals, 0,
                    "R-WMI-3: Indicate after the final SetStatus"
                );
                assert!(
                    (1..=BATCH_SIZE).contains(&objects.len()),
                    "Indicate of {} objects (1 to {BATCH_SIZE} allowed)",
                    objects.len()
                );
                if self.kind == Kind::Method {
                    assert!(
                        record.indicated.is_empty() && objects.len() == 1,
                        "R-WMI-8: a method call indicated more than one out-parameters object"
                    );
                }
                record.batches.push(objects.len());
                record.indicated.extend(objects);
            }
            SinkMessage::SetStatus {
                flags: WBEM_STATUS_PROGRESS,
                hresult,
                ..
            } => {
                assert_eq!(
                    record.finals, 0,
                    "R-WMI-3: progress after the final SetStatus"
                );
                assert!(
                    self.flags & WBEM_FLAG_SEND_STATUS != 0,
                    "R-WMI-4: a progress report without WBEM_FLAG_SEND_STATUS"
                );
                record.progress.push(hresult);
            }
            SinkMessage::SetStatus {
                flags: WBEM_STATUS_COMPLETE,
                hresult,
                param,
            } => {
                assert_eq!(
                    record.finals, 0,
                    "R-WMI-11: a second final SetStatus (first {:?}, now {hresult})",
                    record.status
                );
                record.finals += 1;
                record.status = Some((hresult, param));
            }
            SinkMessage::SetStatus { flags, .. } => panic!("SetStatus with flags {flags}"),
        }
        self.client.fail_with.unwrap_or(HResult::S_OK)
    }
}

/// A client's `IWbemObjectSink`: its identity is what `CancelAsyncCall` names. Clones are the
/// same sink.
#[derive(Clone)]
pub struct ClientSink {
    identity: usize,
    fail_with: Option<HResult>,
    hook: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl ClientSink {
    /// This sink, whose `Indicate` and `SetStatus` answer `error` (the framework must tolerate
    /// it).
    pub fn failing(mut self, error: HResult) -> Self {
        self.fail_with = Some(error);
        self
    }

    /// This sink, whose `Indicate` first runs `hook` (a test cancels from there, or blocks to
    /// let another thread cancel while an `Indicate` is with the client).
    pub fn on_indicate(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// The sink's identity.
    pub fn identity(&self) -> usize {
        self.identity
    }
}

impl std::fmt::Debug for ClientSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSink")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// An event provider's sink as WMI implements it: records the events, answers each `Indicate`
/// with the next reply of its script (then `WBEM_S_NO_ERROR`).
#[derive(Debug, Default)]
pub struct EventLog {
    events: Mutex<Vec<Instance>>,
    replies: Mutex<std::collections::VecDeque<HResult>>,
}

impl EventLog {
    /// A sink whose first `Indicate`s answer `replies`, in order.
    pub fn answering(replies: impl IntoIterator<Item = HResult>) -> Arc<Self> {
        Arc::new(Self {
            events: Mutex::default(),
            replies: Mutex::new(replies.into_iter().collect()),
        })
    }

    /// The events accepted (answered with success) so far.
    pub fn events(&self) -> Vec<Instance> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl HostSink<EventIndicate> for EventLog {
    fn deliver(&self, message: EventIndicate) -> HResult {
        let reply = self
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(HResult::S_OK);
        if reply.is_ok() {
            self.events
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(message.objects);
        }
        reply
    }
}

/// WMI, as far as the runtime sees it: see the [module documentation](self).
pub struct Host<P: Provider> {
    runtime: Runtime<P>,
    identities: AtomicUsize,
}

impl<P: Provider> Host<P> {
    /// A host serving `provider` with a runtime of its own.
    pub fn new(provider: P) -> Self {
        Self {
            runtime: Runtime::new(provider),
            identities: AtomicUsize::new(0x1000),
        }
    }

    /// The runtime under test.
    pub fn runtime(&self) -> &Runtime<P> {
        &self.runtime
    }

    /// A new client sink (a new identity).
    pub fn sink(&self) -> ClientSink {
        ClientSink {
            identity: self.identities.fetch_add(0x10, Ordering::Relaxed),
            fail_with: None,
            hook: None,
        }
    }

    fn call(
        &self,
        client: &ClientSink,
        flags: i32,
        kind: Kind,
        start: impl FnOnce(CallSink) -> HResult,
    ) -> CallRecord {
        let log = Arc::new(CallLog {
            record: Mutex::default(),
            flags,
            kind,
            client: client.clone(),
        });
        let returned = start(CallSink {
            identity: client.identity,
            sink: Arc::clone(&log) as _,
        });
        log.returned(returned)
    }

    /// `GetObjectAsync(path)` with `sink`; returns when the call does.
    pub fn get_object(&self, sink: &ClientSink, path: &str, flags: i32) -> CallRecord {
        self.call(sink, flags, Kind::Instance, |s| {
            self.runtime.get_object_async(path, flags, s)
        })
    }

    /// `CreateInstanceEnumAsync(class)`.
    pub fn enumerate(&self, sink: &ClientSink, class: &str, flags: i32) -> CallRecord {
        self.call(sink, flags, Kind::Instance, |s| {
            self.runtime.create_instance_enum_async(class, flags, s)
        })
    }

    /// `ExecQueryAsync("WQL", query)`.
    pub fn query(&self, sink: &ClientSink, query: &str, flags: i32) -> CallRecord {
        self.call(sink, flags, Kind::Instance, |s| {
            self.runtime.exec_query_async("WQL", query, flags, s)
        })
    }

    /// `PutInstanceAsync(instance)`.
    pub fn put(&self, sink: &ClientSink, instance: Instance, flags: i32) -> CallRecord {
        self.call(sink, flags, Kind::Instance, |s| {
            self.runtime.put_instance_async(instance, flags, s)
        })
    }

    /// `DeleteInstanceAsync(path)`.
    pub fn delete(&self, sink: &ClientSink, path: &str, flags: i32) -> CallRecord {
        self.call(sink, flags, Kind::Instance, |s| {
            self.runtime.delete_instance_async(path, flags, s)
        })
    }

    /// `ExecMethodAsync(path, method, in_parameters)`.
    pub fn exec_method(
        &self,
        sink: &ClientSink,
        path: &str,
        method: &str,
        in_parameters: Option<&Instance>,
        flags: i32,
    ) -> CallRecord {
        self.call(sink, flags, Kind::Method, |s| {
            self.runtime
                .exec_method_async(path, method, in_parameters, flags, s)
        })
    }

    /// `CancelAsyncCall(sink)`: how many calls the cancel won.
    pub fn cancel(&self, sink: &ClientSink) -> usize {
        self.runtime.cancel_async_call(sink.identity)
    }

    /// `ProvideEvents(events)`.
    pub fn provide_events(&self, events: &Arc<EventLog>, flags: i32) -> HResult {
        self.runtime.provide_events(Arc::clone(events) as _, flags)
    }
}

impl<P: Provider> std::fmt::Debug for Host<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("runtime", &self.runtime)
            .finish()
    }
}
