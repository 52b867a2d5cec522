//! What a provider author implements ([`NamespaceProvider`], [`Lookup`]) and the per-call guards
//! the framework hands them ([`NextCall`], [`SetServiceCall`]).
//!
//! The guards carry the one obligation of an asynchronous NSPv2 call: it is completed exactly
//! once (R-NSP-15). A guard is consumed by its completing method, which returns the
//! [`Completed`] proof the trait method must return (core's [`call`](winprov_core::call)
//! module: the proof cannot be forged, nor taken from another call); so an implementation that
//! forgets to complete, or completes twice, does not compile. Guards, the cancellation they
//! expose and the caller's buffer they hold are borrowed for the call (`'call`): they cannot be
//! stored or sent to a thread that outlives the call (scoped threads are fine).

use crate::lookup::{NextDelivery, NextOutcome};
use crate::query::{ControlFlags, Query, QueryResult, RegInfo, SetServiceOp};
use std::marker::PhantomData;
use std::time::{Duration, Instant};
use winprov_core::call::Brand;
use winprov_core::{
    CancelRegistration, CancellationToken, Cancelled, Completed, Completion, Issuer, WaitOutcome,
    WsaError,
};

/// A namespace provider: the behaviour behind one advertised provider GUID.
///
/// The framework calls it from the host's threads, concurrently; it owns the protocol (handles,
/// sessions, buffers, cancellation, completion), the provider owns the behaviour.
pub trait NamespaceProvider: Send + Sync + 'static {
    /// Per-client-session state, created by [`startup`](Self::startup) for each
    /// `NSPv2Startup` and handed back, unchanged, to every call of that session (R-NSP-11).
    /// Dropped after the session's `NSPv2Cleanup` (or `NSPv2ClientSessionRundown`) once no call
    /// still uses it.
    type Session: Send + Sync + 'static;
    /// One lookup, from `NSPv2LookupServiceBegin` to `NSPv2LookupServiceEnd`.
    type Lookup: Lookup;

    /// The namespace this provider serves (`NS_EMAIL`, the only namespace NSPv2 documents).
    /// Restrictions for other namespaces than this one and `NS_ALL` are refused with `WSAEINVAL`.
    const NAMESPACE: u32 = winprov_bindings::ws2spi::NS_EMAIL;

    /// Whether the provider has containers (`LUP_CONTAINERS` lookups). When `false` the
    /// framework answers such a Begin with `WSANO_DATA` (R-NSP-10) without calling
    /// [`lookup_begin`](Self::lookup_begin).
    const SUPPORTS_CONTAINERS: bool = false;

    /// The first `NSPv2Startup` of the provider (no session open): acquire shared resources.
    /// Runs under the provider's lifecycle lock, so no other session starts meanwhile; it must
    /// not block on the host. An error fails that Startup and the next one tries again.
    fn first_startup(&self) -> Result<(), WsaError> {
        Ok(())
    }

    /// `NSPv2Startup`: a client session starts.
    fn startup(&self) -> Result<Self::Session, WsaError>;

    /// `NSPv2LookupServiceBegin`: create a lookup for `query`. This call cannot be cancelled
    /// and must be fast (R-NSP-9): start work if needed, but do the waiting in
    /// [`Lookup::next`], which can be cancelled.
    fn lookup_begin(
        &self,
        session: &Self::Session,
        query: &Query,
        flags: ControlFlags,
    ) -> Result<Self::Lookup, WsaError>;

    /// `NSPv2SetServiceEx`: register, deregister or delete a service. Without an
    /// implementation the request completes with `WSAEOPNOTSUPP` (R-NSP-13). For a register of
    /// an unknown service `WSASERVICE_NOT_FOUND` is not right; for a deregister or delete of one
    /// it is (R-NSP-14).
    fn set_service<'call>(
        &self,
        session: &Self::Session,
        call: SetServiceCall<'call>,
    ) -> Completed<'call> {
        let _ = session;
        call.complete(Err(WsaError::WSAEOPNOTSUPP))
    }

    /// `NSPv2ClientSessionRundown`: the client session is ending. The framework has already
    /// ended the session's lookups (their blocked `next` calls see cancellation).
    fn client_session_rundown(&self, session: &Self::Session) {
        let _ = session;
    }

    /// The last session closed (the k-th `NSPv2Cleanup` of k Startups, R-NSP-12): release
    /// what [`first_startup`](Self::first_startup) acquired. Runs under the lifecycle lock.
    fn final_cleanup(&self) {}
}

/// One lookup's behaviour: produce results one at a time.
pub trait Lookup: Send + 'static {
    /// `NSPv2LookupServiceNextEx`: produce the next result with [`NextCall::found`], report the
    /// end with [`NextCall::no_more`] or fail with [`NextCall::fail`].
    ///
    /// May block (a slow backend): it runs on the host's thread, and when the client ends the
    /// lookup meanwhile (`NSPv2LookupServiceEnd` on another thread, R-NSP-2) the call's
    /// cancellation trips — wait with [`NextCall::wait_timeout`] or register
    /// [`NextCall::on_cancel`]. Whatever it then returns, the host sees `WSA_E_CANCELLED`
    /// as soon as End runs. Calls for one lookup never overlap (the framework serializes them,
    /// hence `&mut self`).
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call>;
}

/// The cancellation of one call, borrowed for the call's duration.
#[derive(Clone, Copy, Debug)]
pub struct Cancellation<'call> {
    token: &'call CancellationToken,
    _brand: Brand<'call>,
}

impl<'call> Cancellation<'call> {
    /// Whether the lookup was ended.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// `Err(Cancelled)` once the lookup was ended, for `?` in long loops.
    pub fn check(&self) -> Result<(), Cancelled> {
        self.token.check()
    }

    /// Blocks until the lookup is ended (a backend that only stops on cancellation).
    pub fn wait(&self) {
        self.token.wait()
    }

    /// Sleeps up to `timeout`, waking early if the lookup is ended.
    pub fn wait_timeout(&self, timeout: Duration) -> WaitOutcome {
        self.token.wait_timeout(timeout)
    }

    /// Sleeps until `deadline`, waking early if the lookup is ended.
    pub fn wait_deadline(&self, deadline: Instant) -> WaitOutcome {
        self.token.wait_deadline(deadline)
    }

    /// Runs `callback` (on the ending thread) when the lookup is ended, for example to abort a
    /// backend request; at once if it already was. Dropping the registration removes it.
    pub fn on_cancel(&self, callback: impl FnOnce() + Send + 'static) -> CancelRegistration {
        self.token.on_cancel(callback)
    }
}

/// One `NSPv2LookupServiceNextEx` call, as the author sees it.
#[must_use = "complete the call with found, no_more or fail"]
pub struct NextCall<'call> {
    delivery: NextDelivery<'call>,
    issuer: Issuer<'call>,
    cancellation: Cancellation<'call>,
    flags: ControlFlags,
}

impl<'call> NextCall<'call> {
    pub(crate) fn new(
        issuer: Issuer<'call>,
        delivery: NextDelivery<'call>,
        flags: ControlFlags,
    ) -> Self {
        Self {
            cancellation: Cancellation {
                token: delivery.token(),
                _brand: PhantomData,
            },
            delivery,
            issuer,
            flags,
        }
    }

    fn finish(self, outcome: NextOutcome) -> Completed<'call> {
        self.issuer.completed(self.delivery.complete(outcome))
    }

    /// The effective flags: Begin's `LUP_RETURN_*` bits narrowed by this call's (R-NSP-7).
    pub fn flags(&self) -> ControlFlags {
        self.flags
    }

    /// The call's cancellation, to share with scoped threads.
    pub fn cancellation(&self) -> Cancellation<'call> {
        self.cancellation
    }

    /// Whether the lookup was ended (the call will report `WSA_E_CANCELLED` whatever it does).
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// `Err(Cancelled)` once the lookup was ended.
    pub fn check(&self) -> Result<(), Cancelled> {
        self.cancellation.check()
    }

    /// Sleeps up to `timeout`, waking early if the lookup is ended.
    pub fn wait_timeout(&self, timeout: Duration) -> WaitOutcome {
        self.cancellation.wait_timeout(timeout)
    }

    /// Blocks until the lookup is ended.
    pub fn wait(&self) {
        self.cancellation.wait()
    }

    /// Sleeps until `deadline`, waking early if the lookup is ended.
    pub fn wait_deadline(&self, deadline: Instant) -> WaitOutcome {
        self.cancellation.wait_deadline(deadline)
    }

    /// See [`Cancellation::on_cancel`].
    pub fn on_cancel(&self, callback: impl FnOnce() + Send + 'static) -> CancelRegistration {
        self.cancellation.on_cancel(callback)
    }

    /// Returns `result`. If it does not fit the caller's buffer the caller gets `WSAEFAULT`
    /// and the size needed, and the framework keeps the result for the retry (R-NSP-5).
    pub fn found(self, result: QueryResult) -> Completed<'call> {
        self.finish(NextOutcome::Found(result))
    }

    /// No more results: the caller gets `WSA_E_NO_MORE` (R-NSP-4), now and on every later
    /// NextEx of this lookup (the author is not asked again).
    pub fn no_more(self) -> Completed<'call> {
        self.finish(NextOutcome::NoMore)
    }

    /// Fails this call with `error` (`WSANO_DATA`, `WSASERVICE_NOT_FOUND` …).
    pub fn fail(self, error: WsaError) -> Completed<'call> {
        self.finish(NextOutcome::Failed(error))
    }

    /// Completes with `Ok(Some(result))` = [`found`](Self::found), `Ok(None)` =
    /// [`no_more`](Self::no_more), `Err(e)` = [`fail`](Self::fail).
    pub fn complete(self, outcome: Result<Option<QueryResult>, WsaError>) -> Completed<'call> {
        match outcome {
            Ok(Some(result)) => self.found(result),
            Ok(None) => self.no_more(),
            Err(error) => self.fail(error),
        }
    }

    /// Completes with `WSA_E_CANCELLED` when the lookup was ended (convenient after a
    /// [`check`](Self::check) failed).
    pub fn cancelled(self) -> Completed<'call> {
        self.finish(NextOutcome::Cancelled)
    }
}

impl std::fmt::Debug for NextCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextCall")
            .field("flags", &self.flags)
            .field("cancelled", &self.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// One `NSPv2SetServiceEx` call, as the author sees it.
#[must_use = "complete the call"]
pub struct SetServiceCall<'call> {
    guard: Completion<'call, Result<(), WsaError>>,
    issuer: Issuer<'call>,
    operation: SetServiceOp,
    registration: RegInfo,
    flags: u32,
}

impl<'call> SetServiceCall<'call> {
    pub(crate) fn new(
        issuer: Issuer<'call>,
        guard: Completion<'call, Result<(), WsaError>>,
        operation: SetServiceOp,
        registration: RegInfo,
        flags: u32,
    ) -> Self {
        Self {
            guard,
            issuer,
            operation,
            registration,
            flags,
        }
    }

    /// What is asked.
    pub fn operation(&self) -> SetServiceOp {
        self.operation
    }

    /// The service concerned.
    pub fn registration(&self) -> &RegInfo {
        &self.registration
    }

    /// The raw `dwControlFlags` (`SERVICE_MULTIPLE` is already in [`SetServiceOp::Register`]).
    pub fn raw_flags(&self) -> u32 {
        self.flags
    }

    /// Completes the request: `Ok(())` is `NO_ERROR`.
    pub fn complete(self, outcome: Result<(), WsaError>) -> Completed<'call> {
        self.issuer.completed(self.guard.complete(outcome))
    }
}

impl std::fmt::Debug for SetServiceCall<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetServiceCall")
            .field("operation", &self.operation)
            .field("registration", &self.registration)
            .finish_non_exhaustive()
    }
}
