//! What a provider author implements — one trait per role: [`InstanceProvider`],
//! [`MethodProvider`], [`EventProvider`] — and the per-call guards the framework hands them.
//!
//! Every method of every role is optional: the default answers `WBEM_E_PROVIDER_NOT_CAPABLE`
//! (R-WMI-6), so a provider implements the roles it registers and nothing else.
//!
//! The guards carry the obligation of an asynchronous WMI call: exactly one final
//! `SetStatus`, after every `Indicate` (R-WMI-3). A guard is consumed by its finishing method,
//! which returns the [`Completed`] proof the trait method must return (core's
//! [`call`](winprov_core::call) module: the proof cannot be forged, nor taken from another
//! call); a guard dropped unfinished sends `WBEM_E_FAILED` once and logs an error. Guards are
//! borrowed for the call (`'call`): they cannot be stored or sent to a thread that outlives it
//! (scoped threads are fine).

use crate::host::{
    CallFlags, EventHostSink, EventIndicate, Services, SinkMessage, WBEM_STATUS_PROGRESS,
};
use crate::op::Op;
use crate::value::Instance;
use std::marker::PhantomData;
use std::time::Duration;
use winprov_core::call::Brand;
use winprov_core::{
    CancelRegistration, CancellationToken, Cancelled, Completed, Delivery, HResult, Issuer,
    WaitOutcome,
};

/// The most objects one `Indicate` carries: the response guard sends its objects in batches
/// of at most this many, and flushes the last batch before the final status.
pub const BATCH_SIZE: usize = 64;

/// An instance provider (`__InstanceProviderRegistration`): `GetObjectAsync`,
/// `CreateInstanceEnumAsync`, `ExecQueryAsync`, `PutInstanceAsync`, `DeleteInstanceAsync`.
///
/// Called from WMI's threads, concurrently. A call blocks the thread it runs on until it
/// finishes (wait on the call's cancellation, not on a bare sleep).
pub trait InstanceProvider: Send + Sync + 'static {
    /// `GetObjectAsync(path)`: [`GetCall::found`] the instance, or [`GetCall::not_found`] for a
    /// path the provider does not know (R-WMI-7).
    fn get_object<'call>(&self, path: &str, call: GetCall<'call>) -> Completed<'call> {
        let _ = path;
        call.fail(HResult::WBEM_E_PROVIDER_NOT_CAPABLE)
    }

    /// `CreateInstanceEnumAsync(class)`: [`Response::indicate`] every instance, then
    /// [`Response::finish`].
    fn enumerate<'call>(&self, class: &str, call: Response<'call>) -> Completed<'call> {
        let _ = class;
        call.finish(Err(HResult::WBEM_E_PROVIDER_NOT_CAPABLE))
    }

    /// `ExecQueryAsync(language, query)`: as [`enumerate`](Self::enumerate), for the instances
    /// the query selects.
    fn query<'call>(&self, language: &str, query: &str, call: Response<'call>) -> Completed<'call> {
        let _ = (language, query);
        call.finish(Err(HResult::WBEM_E_PROVIDER_NOT_CAPABLE))
    }

    /// `PutInstanceAsync(instance)`: store it and return its object path (R-WMI-9).
    fn put<'call>(&self, instance: Instance, call: PutCall<'call>) -> Completed<'call> {
        let _ = instance;
        call.complete(Err(HResult::WBEM_E_PROVIDER_NOT_CAPABLE))
    }

    /// `DeleteInstanceAsync(path)`.
    fn delete<'call>(&self, path: &str, call: DeleteCall<'call>) -> Completed<'call> {
        let _ = path;
        call.complete(Err(HResult::WBEM_E_PROVIDER_NOT_CAPABLE))
    }
}

/// A method provider (`__MethodProviderRegistration`): `ExecMethodAsync`.
pub trait MethodProvider: Send + Sync + 'static {
    /// `ExecMethodAsync(path, method, in_parameters)`: return the out-parameters (with
    /// `ReturnValue`), if any; the framework indicates them once, before the final status
    /// (R-WMI-8). A method call is never cancelled (R-WMI-13): it runs to completion.
    fn exec_method<'call>(
        &self,
        path: &str,
        method: &str,
        in_parameters: Option<&Instance>,
        call: MethodCall<'call>,
    ) -> Completed<'call> {
        let _ = (path, method, in_parameters);
        call.complete(Err(HResult::WBEM_E_PROVIDER_NOT_CAPABLE))
    }
}

/// An event provider (`__EventProviderRegistration`): `ProvideEvents`.
pub trait EventProvider: Send + Sync + 'static {
    /// `ProvideEvents`: keep `sink` (it only indicates, R-WMI-10) and return at once; fire
    /// events from a thread of the provider's own.
    fn provide_events(&self, sink: EventSink, flags: i32) -> Result<(), HResult> {
        let _ = (sink, flags);
        Err(HResult::WBEM_E_PROVIDER_NOT_CAPABLE)
    }
}

/// What every provider is told once, before any call: `IWbemProviderInit::Initialize`.
pub trait ProviderInit: Send + Sync + 'static {
    /// Prepares the provider for `init`'s namespace. `Err` (or a panic) fails the
    /// initialization: the framework reports `WBEM_E_FAILED` to WMI's init sink and answers
    /// every later call with `WBEM_E_FAILED` (R-WMI-1). The default accepts.
    fn init(&self, init: &Init<'_>) -> Result<(), HResult> {
        let _ = init;
        Ok(())
    }
}

/// The arguments of `IWbemProviderInit::Initialize` an author may use.
#[derive(Clone, Copy, Debug)]
pub struct Init<'a> {
    /// `wszUser`: the user the provider serves, if WMI names one (per-user providers).
    pub user: Option<&'a str>,
    /// `wszNamespace`: the namespace the provider is initialized for (`root\cimv2` …).
    pub namespace: &'a str,
    /// `wszLocale`: the locale WMI asks for (`MS_409` …), if any.
    pub locale: Option<&'a str>,
    /// `lFlags` (reserved, 0).
    pub flags: i32,
}

/// A provider of any roles: implement the role traits and [`ProviderInit`] (the ones a
/// provider does not play as empty `impl`s, whose defaults answer
/// `WBEM_E_PROVIDER_NOT_CAPABLE`, or accept the initialization).
pub trait Provider: ProviderInit + InstanceProvider + MethodProvider + EventProvider {}

impl<P: ProviderInit + InstanceProvider + MethodProvider + EventProvider> Provider for P {}

/// The WMI a call may make dependent requests to, borrowed for the call: the namespace the
/// provider was initialized with, and the `IWbemContext` WMI passed with the call, which every
/// request made on the call's behalf reuses (R-WMI-14). A request of the provider's own (not on
/// a client's behalf) must not go through it.
#[derive(Clone, Copy)]
pub struct Context<'call> {
    services: Option<&'call dyn Services>,
    _brand: Brand<'call>,
}

impl<'call> Context<'call> {
    /// `GetObject(path)` on the provider's namespace, as a request of this call (with its
    /// `IWbemContext`): the instance or class `path` names. `WBEM_E_NOT_AVAILABLE` when the
    /// call's host offers no namespace.
    pub fn get_object(&self, path: &str) -> Result<Instance, HResult> {
        match self.services {
            Some(services) => services.get_object(path),
            None => Err(HResult::WBEM_E_NOT_AVAILABLE),
        }
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("available", &self.services.is_some())
            .finish()
    }
}

/// The cancellation of one call, borrowed for the call's duration: it trips when the client
/// cancels the call (`CancelAsyncCall` on its sink).
#[derive(Clone, Copy, Debug)]
pub struct Cancellation<'call> {
    token: &'call CancellationToken,
    _brand: Brand<'call>,
}

impl<'call> Cancellation<'call> {
    /// Whether the call was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// `Err(Cancelled)` once the call was cancelled, for `?` in long loops.
    pub fn check(&self) -> Result<(), Cancelled> {
        self.token.check()
    }

    /// Sleeps up to `timeout`, waking early if the call is cancelled.
    pub fn wait_timeout(&self, timeout: Duration) -> WaitOutcome {
        self.token.wait_timeout(timeout)
    }

    /// Runs `callback` (on the cancelling thread) when the call is cancelled; at once if it
    /// already was. Dropping the registration removes it.
    pub fn on_cancel(&self, callback: impl FnOnce() + Send + 'static) -> CancelRegistration {
        self.token.on_cancel(callback)
    }
}

/// The common part of every guard: the call, its proof issuer, and whether it finished.
struct Reply<'call> {
    op: &'call Op,
    issuer: Option<Issuer<'call>>,
}

impl<'call> Reply<'call> {
    fn new(op: &'call Op, issuer: Issuer<'call>) -> Self {
        Self {
            op,
            issuer: Some(issuer),
        }
    }

    fn cancellation(&self) -> Cancellation<'call> {
        Cancellation {
            token: self.op.token(),
            _brand: PhantomData,
        }
    }

    fn context(&self) -> Context<'call> {
        Context {
            services: self.op.services(),
            _brand: PhantomData,
        }
    }

    /// Indicates `objects` (non-empty) unless the call is over.
    fn indicate(&self, objects: Vec<Instance>) -> Result<(), Cancelled> {
        self.op
            .send(SinkMessage::Indicate { objects })
            .map(drop)
            .map_err(|()| Cancelled)
    }

    fn finish(mut self, hresult: HResult, param: Option<String>) -> Completed<'call> {
        let issuer = self.issuer.take().expect("a guard finishes once");
        issuer.completed(self.op.finish(hresult, param))
    }

    /// `Indicate(out)` then the final status, for the calls that return at most one object.
    fn finish_with(self, outcome: Result<Option<Instance>, HResult>) -> Completed<'call> {
        match outcome {
            Ok(Some(object)) => {
                if self.indicate(vec![object]).is_err() {
                    // Cancelled: the final status is already the cancel's.
                    return self.finish(HResult::WBEM_E_CALL_CANCELLED, None);
                }
                self.finish(HResult::S_OK, None)
            }
            Ok(None) => self.finish(HResult::S_OK, None),
            Err(error) => self.finish(error, None),
        }
    }
}

impl Drop for Reply<'_> {
    fn drop(&mut self) {
        if self.issuer.is_some()
            && self.op.finish(HResult::WBEM_E_FAILED, None) == Delivery::Delivered
        {
            tracing::error!("a WMI call's guard was dropped unfinished: reported WBEM_E_FAILED");
        }
    }
}

/// One `CreateInstanceEnumAsync` or `ExecQueryAsync` call: indicate the instances, then
/// finish.
#[must_use = "finish the call"]
pub struct Response<'call> {
    reply: Reply<'call>,
    batch: Vec<Instance>,
}

impl<'call> Response<'call> {
    pub(crate) fn new(op: &'call Op, issuer: Issuer<'call>) -> Self {
        Self {
            reply: Reply::new(op, issuer),
            batch: Vec::new(),
        }
    }

    /// Sends `instance` to the client (in a batch of at most [`BATCH_SIZE`]).
    /// `Err(Cancelled)` once the client cancelled the call: nothing more reaches it, stop and
    /// [`finish`](Self::finish) (whose status the client will not see).
    pub fn indicate(&mut self, instance: Instance) -> Result<(), Cancelled> {
        if self.reply.op.is_over() {
            self.batch.clear();
            return Err(Cancelled);
        }
        self.batch.push(instance);
        if self.batch.len() >= BATCH_SIZE {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Cancelled> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let objects = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_SIZE));
        self.reply.indicate(objects)
    }

    /// Reports progress (`SetStatus(WBEM_STATUS_PROGRESS, MAKELONG(done, total))`) if the
    /// client asked for it with `WBEM_FLAG_SEND_STATUS`; otherwise does nothing (R-WMI-4).
    /// Whether a report was sent.
    pub fn progress(&mut self, done: u16, total: u16) -> bool {
        if !self.reply.op.flags.contains(CallFlags::SEND_STATUS) || self.flush().is_err() {
            return false;
        }
        let hresult = HResult::from_raw((u32::from(total) << 16 | u32::from(done)) as i32);
        let message = SinkMessage::SetStatus {
            flags: WBEM_STATUS_PROGRESS,
            hresult,
            param: None,
        };
        self.reply.op.send(message).is_ok()
    }

    /// The call's cancellation, to share with scoped threads.
    pub fn cancellation(&self) -> Cancellation<'call> {
        self.reply.cancellation()
    }

    /// The call's dependent-request context (R-WMI-14).
    pub fn context(&self) -> Context<'call> {
        self.reply.context()
    }

    /// Whether the client cancelled the call.
    pub fn is_cancelled(&self) -> bool {
        self.reply.op.token().is_cancelled()
    }

    /// The call's `lFlags`.
    pub fn flags(&self) -> CallFlags {
        self.reply.op.flags
    }

    /// Sends the instances still batched, then the one final status: `Ok(())` is
    /// `WBEM_S_NO_ERROR`. The proof says [`Delivery::AlreadyFinished`] when the client had
    /// cancelled the call (its sink got `WBEM_E_CALL_CANCELLED` instead).
    pub fn finish(mut self, status: Result<(), HResult>) -> Completed<'call> {
        let hresult = match self.flush() {
            Err(Cancelled) => HResult::WBEM_E_CALL_CANCELLED,
            Ok(()) => status.err().unwrap_or(HResult::S_OK),
        };
        let Self { reply, .. } = self;
        reply.finish(hresult, None)
    }
}

impl std::fmt::Debug for Response<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("batched", &self.batch.len())
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// Implements the accessors every single-answer guard shares.
macro_rules! single_answer_guard {
    ($name:ident) => {
        impl<'call> $name<'call> {
            pub(crate) fn new(op: &'call Op, issuer: Issuer<'call>) -> Self {
                Self {
                    reply: Reply::new(op, issuer),
                }
            }

            /// The call's `lFlags`.
            pub fn flags(&self) -> CallFlags {
                self.reply.op.flags
            }

            /// The call's dependent-request context (R-WMI-14).
            pub fn context(&self) -> Context<'call> {
                self.reply.context()
            }
        }

        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

/// One `GetObjectAsync` call.
#[must_use = "complete the call"]
pub struct GetCall<'call> {
    reply: Reply<'call>,
}

single_answer_guard!(GetCall);

impl<'call> GetCall<'call> {
    /// The call's cancellation.
    pub fn cancellation(&self) -> Cancellation<'call> {
        self.reply.cancellation()
    }

    /// Indicates `instance`, then `WBEM_S_NO_ERROR`.
    pub fn found(self, instance: Instance) -> Completed<'call> {
        self.reply.finish_with(Ok(Some(instance)))
    }

    /// The path names nothing this provider knows: `WBEM_E_NOT_FOUND`, no `Indicate`
    /// (R-WMI-7).
    pub fn not_found(self) -> Completed<'call> {
        self.reply.finish(HResult::WBEM_E_NOT_FOUND, None)
    }

    /// Fails the call with `error`.
    pub fn fail(self, error: HResult) -> Completed<'call> {
        self.reply.finish(error, None)
    }

    /// `Ok(Some(i))` = [`found`](Self::found), `Ok(None)` = [`not_found`](Self::not_found),
    /// `Err(e)` = [`fail`](Self::fail).
    pub fn complete(self, outcome: Result<Option<Instance>, HResult>) -> Completed<'call> {
        match outcome {
            Ok(Some(instance)) => self.found(instance),
            Ok(None) => self.not_found(),
            Err(error) => self.fail(error),
        }
    }
}

/// One `PutInstanceAsync` call.
#[must_use = "complete the call"]
pub struct PutCall<'call> {
    reply: Reply<'call>,
}

single_answer_guard!(PutCall);

/// What a `PutInstanceAsync` may do, from its `lFlags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// `WBEM_FLAG_CREATE_OR_UPDATE`: create the instance or replace it.
    CreateOrUpdate,
    /// `WBEM_FLAG_UPDATE_ONLY`: the instance must exist (else `WBEM_E_NOT_FOUND`).
    UpdateOnly,
    /// `WBEM_FLAG_CREATE_ONLY`: the instance must not exist (else `WBEM_E_ALREADY_EXISTS`).
    CreateOnly,
}

impl<'call> PutCall<'call> {
    /// What the client allows: create, update, or either.
    pub fn mode(&self) -> PutMode {
        let flags = self.reply.op.flags;
        if flags.contains(CallFlags::CREATE_ONLY) {
            PutMode::CreateOnly
        } else if flags.contains(CallFlags::UPDATE_ONLY) {
            PutMode::UpdateOnly
        } else {
            PutMode::CreateOrUpdate
        }
    }

    /// `Ok(path)`: the instance was stored under `path`, which the final status carries in
    /// `strParam` (R-WMI-9).
    pub fn complete(self, outcome: Result<String, HResult>) -> Completed<'call> {
        match outcome {
            Ok(path) => self.reply.finish(HResult::S_OK, Some(path)),
            Err(error) => self.reply.finish(error, None),
        }
    }
}

/// One `DeleteInstanceAsync` call.
#[must_use = "complete the call"]
pub struct DeleteCall<'call> {
    reply: Reply<'call>,
}

single_answer_guard!(DeleteCall);

impl<'call> DeleteCall<'call> {
    /// Finishes the call: `Ok(())` is `WBEM_S_NO_ERROR`.
    pub fn complete(self, outcome: Result<(), HResult>) -> Completed<'call> {
        self.reply
            .finish(outcome.err().unwrap_or(HResult::S_OK), None)
    }
}

/// One `ExecMethodAsync` call. It has no cancellation: WMI never tells a method provider
/// (R-WMI-13).
#[must_use = "complete the call"]
pub struct MethodCall<'call> {
    reply: Reply<'call>,
}

single_answer_guard!(MethodCall);

impl<'call> MethodCall<'call> {
    /// `Ok(Some(out))`: indicates the out-parameters once, then `WBEM_S_NO_ERROR` (R-WMI-8);
    /// `Ok(None)`: a method without out-parameters.
    pub fn complete(self, outcome: Result<Option<Instance>, HResult>) -> Completed<'call> {
        self.reply.finish_with(outcome)
    }
}

/// An event provider's sink (`ProvideEvents`' `pSink`, kept until shutdown). It can only
/// indicate: it has no `SetStatus` (R-WMI-10).
#[derive(Clone)]
pub struct EventSink {
    sink: EventHostSink,
}

impl EventSink {
    pub(crate) fn new(sink: EventHostSink) -> Self {
        Self { sink }
    }

    /// Delivers `events`. `Err(WBEM_E_SERVER_TOO_BUSY)` says WMI could not take them now: the
    /// provider may fire them again later (R-WMI-15); other failures are WMI's answer too.
    pub fn indicate(&self, events: Vec<Instance>) -> Result<(), HResult> {
        if events.is_empty() {
            return Ok(());
        }
        let reply = self.sink.deliver(EventIndicate { objects: events });
        match reply.is_ok() {
            true => Ok(()),
            false => Err(reply),
        }
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink").finish_non_exhaustive()
    }
}
