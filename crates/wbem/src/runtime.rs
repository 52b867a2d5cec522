//! The state machine between WMI's calls and the author's provider, portable and safe.
//!
//! Every asynchronous call runs the author's method inside a core `call::scope` with a guard
//! over the call's `Op`; when the method returns (or unwinds) the runtime finishes a guard the
//! author leaked, so the call's one final `SetStatus` has been delivered when the `*Async`
//! method returns `WBEM_S_NO_ERROR` — and a call refused up front returns its error without
//! touching the sink: the framework never does both (R-WMI-5).
//!
//! Calls that can be cancelled are registered, while they run, under their response sink's
//! identity (for COM, the sink's `IUnknown` pointer, which the exports compute):
//! [`Runtime::cancel_async_call`] cancels every call sharing that sink (R-WMI-12), each one's
//! final status becoming `WBEM_E_CALL_CANCELLED` unless the author's was delivered first
//! (R-WMI-11). Method calls are never registered, so never cancelled (R-WMI-13).

use crate::host::{CallFlags, CallServices, EventHostSink, ResponseSink};
use crate::op::{CancelOutcome, Op};
use crate::provider::{DeleteCall, EventSink, GetCall, MethodCall, Provider, PutCall, Response};
use crate::value::Instance;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use winprov_core::sync::{Arc, Mutex, lock};
use winprov_core::{Completed, HResult, Issuer, call};

/// A call's response sink, with the identity `CancelAsyncCall` names it by.
#[derive(Clone)]
pub struct CallSink {
    /// The sink's identity: calls made with sinks of equal identity are cancelled together.
    pub identity: usize,
    /// Where the call's `Indicate` and `SetStatus` go.
    pub sink: ResponseSink,
    /// The call's dependent-request services (the namespace and the call's `IWbemContext`,
    /// R-WMI-14), reached by the author through the guard's `context()`.
    pub context: Option<CallServices>,
}

impl CallSink {
    /// A sink of `identity` delivering to `sink`, without dependent-request services.
    pub fn new(identity: usize, sink: ResponseSink) -> Self {
        Self {
            identity,
            sink,
            context: None,
        }
    }

    /// This sink, whose calls make their dependent requests through `context`.
    pub fn with_context(mut self, context: CallServices) -> Self {
        self.context = Some(context);
        self
    }
}

impl std::fmt::Debug for CallSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallSink")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Calls {
    next: u64,
    by_sink: HashMap<usize, Vec<(u64, Arc<Op>)>>,
}

/// One provider and its calls in flight.
pub struct Runtime<P: Provider> {
    provider: P,
    calls: Mutex<Calls>,
}

impl<P: Provider> Runtime<P> {
    /// A runtime serving `provider`.
    pub fn new(provider: P) -> Self {
        Self {
            provider,
            calls: Mutex::new(Calls::default()),
        }
    }

    /// The author's provider.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The number of cancellable calls in flight.
    pub fn in_flight(&self) -> usize {
        lock(&self.calls).by_sink.values().map(Vec::len).sum()
    }

    /// Runs one call: registers it (if `cancellable`), runs `body` in a call scope, finishes a
    /// leaked guard, unregisters it. Returns `WBEM_S_NO_ERROR`: the final status went to the
    /// sink.
    fn run(
        &self,
        sink: CallSink,
        flags: i32,
        cancellable: bool,
        body: impl for<'call> FnOnce(&P, &'call Op, Issuer<'call>) -> Completed<'call>,
    ) -> HResult {
        let flags = CallFlags::from_bits_retain(flags);
        let op = Arc::new(Op::new(sink.sink, flags).with_services(sink.context));
        let id = match cancellable {
            true => Some(self.register(sink.identity, &op)),
            false => None,
        };
        let ran = catch_unwind(AssertUnwindSafe(|| {
            call::scope(|scope| {
                let _ = body(&self.provider, &op, scope.issuer()).delivery();
            })
        }));
        if ran.is_err() {
            tracing::error!("a WMI provider method panicked: the call reports WBEM_E_FAILED");
        }
        // A guard leaked with `mem::forget` (then a panic: no proof was left to return).
        let _ = op.finish(HResult::WBEM_E_FAILED, None);
        if let Some(id) = id {
            self.unregister(sink.identity, id);
        }
        HResult::S_OK
    }

    fn register(&self, identity: usize, op: &Arc<Op>) -> u64 {
        let mut calls = lock(&self.calls);
        calls.next += 1;
        let id = calls.next;
        calls
            .by_sink
            .entry(identity)
            .or_default()
            .push((id, Arc::clone(op)));
        id
    }

    fn unregister(&self, identity: usize, id: u64) {
        let mut calls = lock(&self.calls);
        if let Some(list) = calls.by_sink.get_mut(&identity) {
            list.retain(|(each, _)| *each != id);
            if list.is_empty() {
                calls.by_sink.remove(&identity);
            }
        }
    }

    /// `IWbemServices::GetObjectAsync`.
    pub fn get_object_async(&self, path: &str, flags: i32, sink: CallSink) -> HResult {
        if path.is_empty() {
            return HResult::WBEM_E_INVALID_OBJECT_PATH;
        }
        self.run(sink, flags, true, |provider, op, issuer| {
            provider.get_object(path, GetCall::new(op, issuer))
        })
    }

    /// `IWbemServices::CreateInstanceEnumAsync`.
    pub fn create_instance_enum_async(&self, class: &str, flags: i32, sink: CallSink) -> HResult {
        if class.is_empty() {
            return HResult::WBEM_E_INVALID_CLASS;
        }
        self.run(sink, flags, true, |provider, op, issuer| {
            provider.enumerate(class, Response::new(op, issuer))
        })
    }

    /// `IWbemServices::ExecQueryAsync`.
    pub fn exec_query_async(
        &self,
        language: &str,
        query: &str,
        flags: i32,
        sink: CallSink,
    ) -> HResult {
        if query.is_empty() {
            return HResult::WBEM_E_INVALID_QUERY;
        }
        self.run(sink, flags, true, |provider, op, issuer| {
            provider.query(language, query, Response::new(op, issuer))
        })
    }

    /// `IWbemServices::PutInstanceAsync`.
    pub fn put_instance_async(&self, instance: Instance, flags: i32, sink: CallSink) -> HResult {
        self.run(sink, flags, true, |provider, op, issuer| {
            provider.put(instance, PutCall::new(op, issuer))
        })
    }

    /// `IWbemServices::DeleteInstanceAsync`.
    pub fn delete_instance_async(&self, path: &str, flags: i32, sink: CallSink) -> HResult {
        if path.is_empty() {
            return HResult::WBEM_E_INVALID_OBJECT_PATH;
        }
        self.run(sink, flags, true, |provider, op, issuer| {
            provider.delete(path, DeleteCall::new(op, issuer))
        })
    }

    /// `IWbemServices::ExecMethodAsync`. Not registered for cancellation (R-WMI-13).
    pub fn exec_method_async(
        &self,
        path: &str,
        method: &str,
        in_parameters: Option<&Instance>,
        flags: i32,
        sink: CallSink,
    ) -> HResult {
        if method.is_empty() {
            return HResult::WBEM_E_INVALID_METHOD;
        }
        self.run(sink, flags, false, |provider, op, issuer| {
            provider.exec_method(path, method, in_parameters, MethodCall::new(op, issuer))
        })
    }

    /// `IWbemServices::CancelAsyncCall(pSink)`: cancels every call in flight whose sink has
    /// `identity` (R-WMI-12). Each one's sink gets exactly one final status: the cancel's
    /// `WBEM_E_CALL_CANCELLED`, or the author's if it was delivered first (R-WMI-11). Returns
    /// how many calls the cancel won.
    pub fn cancel_async_call(&self, identity: usize) -> usize {
        let ops: Vec<Arc<Op>> = match lock(&self.calls).by_sink.get(&identity) {
            Some(list) => list.iter().map(|(_, op)| Arc::clone(op)).collect(),
            None => Vec::new(),
        };
        ops.iter()
            .filter(|op| op.cancel() == CancelOutcome::Cancelled)
            .count()
    }

    /// `IWbemEventProvider::ProvideEvents`: hands the author a sink that can only indicate
    /// (R-WMI-10). A panic is `WBEM_E_FAILED`.
    pub fn provide_events(&self, sink: EventHostSink, flags: i32) -> HResult {
        let sink = EventSink::new(sink);
        match catch_unwind(AssertUnwindSafe(|| {
            self.provider.provide_events(sink, flags)
        })) {
            Ok(Ok(())) => HResult::S_OK,
            Ok(Err(error)) => error,
            Err(_) => {
                tracing::error!("a WMI event provider's provide_events panicked");
                HResult::WBEM_E_FAILED
            }
        }
    }
}

impl<P: Provider> std::fmt::Debug for Runtime<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}
