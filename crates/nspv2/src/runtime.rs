//! The framework's state machine: providers by GUID, sessions, lookups, and the End-vs-NextEx
//! protocol. Portable and free of `unsafe`: host memory reaches it only through
//! [`ResultBuffer`](crate::abi::ResultBuffer), and completions leave through an [`AsyncSink`].
//!
//! # End during NextEx (R-NSP-2, R-NSP-3, R-NSP-15)
//!
//! A lookup is an entry of a core [`LeaseTable`]: its shared state ([`LookupShared`]) and the
//! author's [`Lookup`], reached through the entry's turn. NextEx leases the entry for its
//! whole run — one atomic operation, which also takes the turn when it is free — so End (which
//! removes the handle) never frees it under a running call: the lookup is freed once, by
//! whichever returns its lease last. A NextEx that gets the turn (the common case: a client's
//! calls on one lookup come one after the other) runs in the lookup's [`CallSlot`], reused call
//! after call: its guard claims the slot's one delivery, and the call ends by finishing a
//! leaked guard and freeing the slot, before it returns the turn. A NextEx that finds another
//! one running waits for the turn with a core [`Completion`] of its own, registered in the
//! lookup while it waits. End trips the lookup's
//! cancellation, closes the slot (claiming the running call's delivery, or waiting for one in
//! progress) and aborts every registered completion with `WSA_E_CANCELLED`: exactly one
//! delivery happens per call whoever gets there first, and when End returns every NextEx that
//! was running has been completed. A NextEx that arrives after End ran sees the cancellation
//! and reports it. Writing the result into the caller's buffer is part of the delivery, so
//! after End's delivery the buffer is never touched again.

use crate::abi::ResultBuffer;
use crate::provider::{
    Completed, Lookup, NamespaceProvider, NextCall, NextOutcome, SetServiceCall,
};
use crate::query::{ControlFlags, Guid, Query, RegInfo, SetServiceOp};
use crate::wire::{self, ResultContext};
use winprov_core::sync::{
    Arc, AtomicBool, AtomicI32, AtomicUsize, Mutex, Ordering, RwLock, arc_from_std, lock,
};
use winprov_core::{
    CallSlot, CancellationSource, CancellationToken, Claimed, Completion, CompletionHandle,
    Delivery, HandleTable, Lease, LeaseTable, WsaError, completion,
};

/// `NO_ERROR`.
pub(crate) const NO_ERROR: i32 = 0;

/// Where completions go: `WSAProviderCompleteAsyncCall` in a real host, a recorder in tests.
pub(crate) trait AsyncSink: Send + Sync {
    /// Completes the host's asynchronous call `async_call` with `code`.
    fn complete(&self, async_call: usize, code: i32);
}

/// Live object counts of one provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Lookup objects alive (begun and not yet freed).
    pub live_lookups: usize,
    /// Sessions open (Startup without its Cleanup or Rundown).
    pub open_sessions: usize,
}

/// Every provider registered in one process, with their sessions and lookups.
pub(crate) struct Registry {
    providers: RwLock<Vec<(Guid, Arc<dyn ProviderObject>)>>,
    sessions: HandleTable<dyn SessionObject>,
    lookups: LeaseTable<Arc<LookupShared>, AuthorLookup>,
    sink: std::sync::Arc<dyn AsyncSink>,
}

impl Registry {
    pub(crate) fn new(sink: std::sync::Arc<dyn AsyncSink>) -> Self {
        Self {
            providers: RwLock::new(Vec::new()),
            sessions: HandleTable::new(),
            lookups: LeaseTable::new(),
            sink,
        }
    }

    /// Adds `provider` under `id`; fails if `id` is taken.
    pub(crate) fn register<P: NamespaceProvider>(&self, id: Guid, provider: P) -> Result<(), P> {
        let mut providers = self.providers.write().unwrap_or_else(|p| p.into_inner());
        if providers.iter().any(|(known, _)| *known == id) {
            return Err(provider);
        }
        let runtime = ProviderRuntime {
            inner: Arc::new(ProviderInner::new(id, provider)),
        };
        providers.push((id, arc_from_std(std::sync::Arc::new(runtime))));
        Ok(())
    }

    /// Removes the provider `id`: its sessions close, its lookups end (blocked NextEx calls
    /// complete with `WSA_E_CANCELLED`).
    pub(crate) fn unregister(&self, id: Guid) {
        let removed = {
            let mut providers = self.providers.write().unwrap_or_else(|p| p.into_inner());
            let at = providers.iter().position(|(known, _)| *known == id);
            at.map(|at| providers.remove(at))
        };
        if removed.is_none() {
            return;
        }
        for (handle, session) in self.sessions.snapshot() {
            if session.provider_id() == id {
                session.close(self, Close::Cleanup, handle.raw());
                let _ = self.sessions.remove(handle.raw());
            }
        }
    }

    fn provider(&self, id: &Guid) -> Option<Arc<dyn ProviderObject>> {
        let providers = self.providers.read().unwrap_or_else(|p| p.into_inner());
        providers
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, p)| Arc::clone(p))
    }

    /// Live counts of provider `id`.
    pub(crate) fn stats(&self, id: &Guid) -> Option<Stats> {
        self.provider(id).map(|p| p.stats())
    }

    /// `NSPv2Startup`: the new session's value for `*ppvClientSessionArg`.
    pub(crate) fn startup(&self, provider_id: Option<Guid>) -> Result<usize, WsaError> {
        let id = provider_id.ok_or(WsaError::WSAEINVAL)?;
        let provider = self.provider(&id).ok_or(WsaError::WSAEINVALIDPROVIDER)?;
        let session = provider.startup()?;
        match self.sessions.insert_arc(session.clone()) {
            Ok(handle) => Ok(handle.raw()),
            Err(_) => {
                session.close(self, Close::Cleanup, 0);
                Err(WsaError::WSA_NOT_ENOUGH_MEMORY)
            }
        }
    }

    fn session(
        &self,
        provider_id: Option<Guid>,
        raw: usize,
    ) -> Result<Arc<dyn SessionObject>, WsaError> {
        let session = self.sessions.get(raw).map_err(|_| WsaError::WSAEINVAL)?;
        match provider_id {
            Some(id) if id != session.provider_id() => Err(WsaError::WSAEINVALIDPROVIDER),
            _ => Ok(session),
        }
    }

    /// `NSPv2Cleanup`.
    pub(crate) fn cleanup(&self, provider_id: Option<Guid>, raw: usize) -> Result<(), WsaError> {
        let session = self.session(provider_id, raw)?;
        session.close(self, Close::Cleanup, raw);
        self.sessions.remove(raw).map_err(|_| WsaError::WSAEINVAL)?;
        Ok(())
    }

    /// `NSPv2ClientSessionRundown` (no return value: failures are only logged).
    pub(crate) fn rundown(&self, provider_id: Option<Guid>, raw: usize) {
        match self.session(provider_id, raw) {
            Ok(session) => session.close(self, Close::Rundown, raw),
            Err(error) => {
                tracing::warn!(%error, raw, "NSPv2ClientSessionRundown for an unknown session")
            }
        }
    }

    /// `NSPv2LookupServiceBegin`: the new lookup handle.
    pub(crate) fn begin(
        &self,
        provider_id: Option<Guid>,
        query: Result<Query, WsaError>,
        flags: ControlFlags,
        session_raw: usize,
    ) -> Result<usize, WsaError> {
        let session = self.session(provider_id, session_raw)?;
        let query = query?;
        session.begin(self, &query, flags, session_raw)
    }

    /// `NSPv2LookupServiceEnd`.
    pub(crate) fn end(&self, raw: usize) -> Result<(), WsaError> {
        let lookup = self
            .lookups
            .remove(raw)
            .map_err(|_| WsaError::WSA_INVALID_HANDLE)?;
        lookup.end();
        Ok(())
    }

    /// `NSPv2LookupServiceNextEx`: completes `async_call` exactly once, and returns the code it
    /// completed with (for `WSASetLastError`).
    pub(crate) fn next_ex(
        &self,
        async_call: usize,
        raw: usize,
        flags: ControlFlags,
        buffer: Result<ResultBuffer, WsaError>,
    ) -> i32 {
        let mut lookup = match self.lookups.lease(raw) {
            Ok(lookup) => lookup,
            Err(_) => return self.fail(async_call, WsaError::WSA_INVALID_HANDLE),
        };
        match buffer {
            Ok(buffer) => next_ex(&mut lookup, async_call, flags, buffer),
            Err(error) => self.fail(async_call, error),
        }
    }

    /// `NSPv2SetServiceEx`: completes `async_call` exactly once and returns the code.
    pub(crate) fn set_service(
        &self,
        async_call: usize,
        provider_id: Option<Guid>,
        registration: Result<RegInfo, WsaError>,
        operation: i32,
        flags: u32,
        session_raw: usize,
    ) -> i32 {
        let session = match self.session(provider_id, session_raw) {
            Ok(session) => session,
            Err(error) => return self.fail(async_call, error),
        };
        let registration = match registration {
            Ok(registration) => registration,
            Err(error) => return self.fail(async_call, error),
        };
        let multiple = flags & winprov_bindings::ws2spi::SERVICE_MULTIPLE != 0;
        let operation = match operation {
            0 => SetServiceOp::Register { multiple },
            1 => SetServiceOp::Deregister,
            2 => SetServiceOp::Delete,
            _ => return self.fail(async_call, WsaError::WSAEINVAL),
        };
        session.set_service(&self.sink, async_call, operation, registration, flags)
    }

    fn fail(&self, async_call: usize, error: WsaError) -> i32 {
        self.sink.complete(async_call, error.raw());
        error.raw()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("sessions", &self.sessions.len())
            .field("lookups", &self.lookups.len())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Close {
    Cleanup,
    Rundown,
}

// ---------------------------------------------------------------------------------------------
// Providers

trait ProviderObject: Send + Sync {
    fn startup(&self) -> Result<Arc<dyn SessionObject>, WsaError>;
    fn stats(&self) -> Stats;
}

struct ProviderRuntime<P: NamespaceProvider> {
    inner: Arc<ProviderInner<P>>,
}

struct ProviderInner<P: NamespaceProvider> {
    id: Guid,
    provider: P,
    /// Open sessions; the lifecycle lock of `first_startup` / `final_cleanup`.
    sessions: Mutex<usize>,
    live_lookups: Arc<AtomicUsize>,
}

impl<P: NamespaceProvider> ProviderInner<P> {
    fn new(id: Guid, provider: P) -> Self {
        Self {
            id,
            provider,
            sessions: Mutex::new(0),
            live_lookups: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn release_session(&self) {
        let mut open = lock(&self.sessions);
        *open -= 1;
        if *open == 0 {
            self.provider.final_cleanup();
        }
    }
}

impl<P: NamespaceProvider> ProviderObject for ProviderRuntime<P> {
    fn startup(&self) -> Result<Arc<dyn SessionObject>, WsaError> {
        let inner = &self.inner;
        {
            let mut open = lock(&inner.sessions);
            if *open == 0 {
                inner.provider.first_startup()?;
            }
            *open += 1;
        }
        match inner.provider.startup() {
            Ok(session) => Ok(arc_from_std(std::sync::Arc::new(SessionEntry {
                provider: Arc::clone(inner),
                state: Mutex::new(SessionState::Open(Arc::new(session))),
            }))),
            Err(error) => {
                inner.release_session();
                Err(error)
            }
        }
    }

    fn stats(&self) -> Stats {
        Stats {
            live_lookups: self.inner.live_lookups.load(Ordering::SeqCst),
            open_sessions: *lock(&self.inner.sessions),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions

trait SessionObject: Send + Sync {
    fn provider_id(&self) -> Guid;
    fn begin(
        &self,
        registry: &Registry,
        query: &Query,
        flags: ControlFlags,
        session_raw: usize,
    ) -> Result<usize, WsaError>;
    fn set_service(
        &self,
        sink: &std::sync::Arc<dyn AsyncSink>,
        async_call: usize,
        operation: SetServiceOp,
        registration: RegInfo,
        flags: u32,
    ) -> i32;
    fn close(&self, registry: &Registry, how: Close, session_raw: usize);
}

enum SessionState<S> {
    Open(Arc<S>),
    /// Run down: lookups ended, session released; a later Cleanup only removes the entry.
    RunDown,
    Closed,
}

struct SessionEntry<P: NamespaceProvider> {
    provider: Arc<ProviderInner<P>>,
    state: Mutex<SessionState<P::Session>>,
}

impl<P: NamespaceProvider> SessionEntry<P> {
    fn open(&self) -> Option<Arc<P::Session>> {
        match &*lock(&self.state) {
            SessionState::Open(session) => Some(Arc::clone(session)),
            _ => None,
        }
    }
}

impl<P: NamespaceProvider> SessionObject for SessionEntry<P> {
    fn provider_id(&self) -> Guid {
        self.provider.id
    }

    fn begin(
        &self,
        registry: &Registry,
        query: &Query,
        flags: ControlFlags,
        session_raw: usize,
    ) -> Result<usize, WsaError> {
        let session = self.open().ok_or(WsaError::WSAEINVAL)?;
        if flags.contains(ControlFlags::CONTAINERS) && !P::SUPPORTS_CONTAINERS {
            return Err(WsaError::WSANO_DATA);
        }
        if query.namespace != winprov_bindings::ws2spi::NS_ALL && query.namespace != P::NAMESPACE {
            return Err(WsaError::WSAEINVAL);
        }
        if query.provider_id.is_some_and(|id| id != self.provider.id) {
            return Err(WsaError::WSAEINVALIDPROVIDER);
        }
        let lookup = self
            .provider
            .provider
            .lookup_begin(&session, query, flags)?;
        let shared = Arc::new(LookupShared::new(
            flags,
            session_raw,
            ResultContext {
                namespace: P::NAMESPACE,
                provider_id: self.provider.id,
            },
            std::sync::Arc::clone(&registry.sink),
        ));
        let author = AuthorLookup::new(lookup, &self.provider.live_lookups);
        let handle = registry
            .lookups
            .insert(shared, author)
            .map_err(|_| WsaError::WSA_NOT_ENOUGH_MEMORY)?;
        // A Cleanup or Rundown that ran meanwhile may have missed this lookup: undo it.
        if self.open().is_none() {
            if let Ok(lookup) = registry.lookups.remove(handle.raw()) {
                lookup.end();
            }
            return Err(WsaError::WSAEINVAL);
        }
        Ok(handle.raw())
    }

    fn set_service(
        &self,
        sink: &std::sync::Arc<dyn AsyncSink>,
        async_call: usize,
        operation: SetServiceOp,
        registration: RegInfo,
        flags: u32,
    ) -> i32 {
        let code = Arc::new(AtomicI32::new(NO_ERROR));
        let sink = std::sync::Arc::clone(sink);
        let (guard, handle) = completion(
            {
                let code = Arc::clone(&code);
                move |outcome: Result<(), WsaError>| {
                    let raw = outcome.err().map_or(NO_ERROR, WsaError::raw);
                    code.store(raw, Ordering::SeqCst);
                    sink.complete(async_call, raw);
                }
            },
            Err(WsaError::WSASYSCALLFAILURE),
        );
        let Some(session) = self.open() else {
            let _ = guard.complete(Err(WsaError::WSAEINVAL));
            return code.load(Ordering::SeqCst);
        };
        let ns_email = P::NAMESPACE == winprov_bindings::ws2spi::NS_EMAIL;
        if ns_email
            && matches!(operation, SetServiceOp::Register { .. })
            && registration.blob.is_none()
        {
            // NS_EMAIL registrations carry their data in lpBlob (required by the interface).
            let _ = guard.complete(Err(WsaError::WSAEINVAL));
        } else {
            let call = SetServiceCall::new(guard, operation, registration, flags);
            let _: Completed<'_> = self.provider.provider.set_service(&session, call);
        }
        // A guard leaked with mem::forget is finished here; otherwise a no-op.
        let _ = handle.abort(Err(WsaError::WSASYSCALLFAILURE));
        code.load(Ordering::SeqCst)
    }

    fn close(&self, registry: &Registry, how: Close, session_raw: usize) {
        let previous = {
            let mut state = lock(&self.state);
            let next = match (&*state, how) {
                (SessionState::Open(_), Close::Rundown) => SessionState::RunDown,
                (SessionState::Closed, _) | (SessionState::RunDown, Close::Rundown) => return,
                _ => SessionState::Closed,
            };
            std::mem::replace(&mut *state, next)
        };
        let SessionState::Open(session) = previous else {
            return; // Cleanup after Rundown: the session was already released.
        };
        for (handle, lookup) in registry.lookups.snapshot() {
            if lookup.session == session_raw
                && let Ok(removed) = registry.lookups.remove(handle.raw())
            {
                removed.end();
            }
        }
        if how == Close::Rundown {
            self.provider.provider.client_session_rundown(&session);
        }
        drop(session);
        self.provider.release_session();
    }
}

// ---------------------------------------------------------------------------------------------
// Lookups

/// A lease on a lookup's entry in the registry's table: the shared part, and the author's
/// lookup as the exclusive part (reached when the lease holds the entry's turn).
type LookupLease<'t> = Lease<'t, Arc<LookupShared>, AuthorLookup>;

/// The author's lookup, counted in its provider's live lookups until it is dropped (when the
/// last lease of an ended lookup is returned).
struct AuthorLookup {
    lookup: Box<dyn Lookup>,
    live: Arc<AtomicUsize>,
}

impl AuthorLookup {
    fn new(lookup: impl Lookup, live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Self {
            lookup: Box::new(lookup),
            live: Arc::clone(live),
        }
    }
}

impl Drop for AuthorLookup {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a delivery needs besides the outcome.
struct Progress {
    /// The result that did not fit the caller's buffer, kept for the retry (R-NSP-5).
    pending: Option<crate::query::QueryResult>,
    /// The author reported the end (R-NSP-4): later calls answer `WSA_E_NO_MORE` directly.
    exhausted: bool,
}

/// A lookup's state that does not depend on the provider's types.
struct LookupShared {
    cancel: CancellationSource,
    token: CancellationToken,
    begin_flags: ControlFlags,
    session: usize,
    context: ResultContext,
    sink: std::sync::Arc<dyn AsyncSink>,
    /// The NextEx call that found the lookup free, reusing this slot call after call (the
    /// common case: no allocation, no registration).
    slot: CallSlot,
    /// That call's `hAsyncCall`, stored before the slot arms.
    async_call: AtomicUsize,
    /// The code that call completed with, stored by its delivery.
    code: AtomicI32,
    progress: Mutex<Progress>,
    /// Whether `progress` holds a pending result or the end: lets NextEx skip its lock.
    replay: AtomicBool,
    /// Calls that had to wait for the lookup (another NextEx was running): each has its own
    /// completion, registered here so that End completes them while they wait.
    inflight: Mutex<Vec<(usize, CompletionHandle<'static, NextOutcome>)>>,
    next_call: AtomicUsize,
}

impl LookupShared {
    /// `NSPv2LookupServiceEnd` (the handle is already removed): trips the cancellation and
    /// completes every running NextEx with `WSA_E_CANCELLED` (or waits for a delivery in
    /// progress), so that none is completed after End returns.
    fn end(&self) {
        self.cancel.cancel();
        if let Some(claimed) = self.slot.close() {
            self.deliver_slot(claimed, NextOutcome::Cancelled, None);
        }
        let waiting: Vec<_> = lock(&self.inflight)
            .iter()
            .map(|(_, handle)| handle.clone())
            .collect();
        for handle in waiting {
            let _ = handle.abort(NextOutcome::Cancelled);
        }
    }

    fn new(
        begin_flags: ControlFlags,
        session: usize,
        context: ResultContext,
        sink: std::sync::Arc<dyn AsyncSink>,
    ) -> Self {
        let cancel = CancellationSource::new();
        let token = cancel.token();
        Self {
            cancel,
            token,
            begin_flags,
            session,
            context,
            sink,
            slot: CallSlot::new(),
            async_call: AtomicUsize::new(0),
            code: AtomicI32::new(NO_ERROR),
            progress: Mutex::new(Progress {
                pending: None,
                exhausted: false,
            }),
            replay: AtomicBool::new(false),
            inflight: Mutex::new(Vec::new()),
            next_call: AtomicUsize::new(0),
        }
    }

    /// Delivers one NextEx call's outcome: writes a result into the caller's buffer (only the
    /// call's own guard has one), records the end or a result that did not fit, and completes
    /// the host's call. Once the lookup is ended every outcome becomes `WSA_E_CANCELLED`.
    /// Returns the code.
    #[inline]
    fn deliver(
        &self,
        async_call: usize,
        outcome: NextOutcome,
        buffer: Option<(&mut ResultBuffer, ControlFlags)>,
    ) -> i32 {
        let raw = if self.token.is_cancelled() {
            WsaError::WSA_E_CANCELLED.raw()
        } else {
            match outcome {
                NextOutcome::Cancelled => WsaError::WSA_E_CANCELLED.raw(),
                NextOutcome::Failed(error) => error.raw(),
                NextOutcome::NoMore => {
                    lock(&self.progress).exhausted = true;
                    self.replay.store(true, Ordering::Release);
                    WsaError::WSA_E_NO_MORE.raw()
                }
                NextOutcome::Found(result) => match buffer {
                    // Only End and the framework deliver without the buffer, never a result.
                    None => WsaError::WSASYSCALLFAILURE.raw(),
                    Some((buffer, flags)) => match buffer.write(|bytes, base| {
                        wire::encode(&result, flags, &self.context, bytes, base)
                    }) {
                        Ok(_) => NO_ERROR,
                        Err(too_small) => {
                            let raw = match u32::try_from(too_small.needed) {
                                Ok(needed) => {
                                    buffer.set_needed(needed);
                                    WsaError::WSAEFAULT.raw()
                                }
                                Err(_) => WsaError::WSA_NOT_ENOUGH_MEMORY.raw(),
                            };
                            lock(&self.progress).pending = Some(result);
                            self.replay.store(true, Ordering::Release);
                            raw
                        }
                    },
                },
            }
        };
        self.sink.complete(async_call, raw);
        raw
    }

    /// Delivers the slot's call (claimed by the caller) and records its code.
    #[inline]
    fn deliver_slot(
        &self,
        claimed: Claimed<'_>,
        outcome: NextOutcome,
        buffer: Option<(&mut ResultBuffer, ControlFlags)>,
    ) {
        let async_call = self.async_call.load(Ordering::Relaxed);
        let code = self.deliver(async_call, outcome, buffer);
        self.code.store(code, Ordering::Relaxed);
        drop(claimed);
    }

    /// The pending result or the end, if there is one to answer with instead of asking the
    /// author. Called with the author's lock held.
    #[inline]
    fn replay(&self, flags: ControlFlags) -> Option<NextOutcome> {
        if !self.replay.load(Ordering::Acquire) {
            return None;
        }
        let mut progress = lock(&self.progress);
        let replay = if progress.exhausted {
            Some(NextOutcome::NoMore)
        } else {
            match progress.pending.take() {
                Some(_) if flags.contains(ControlFlags::FLUSHPREVIOUS) => None,
                Some(result) => Some(NextOutcome::Found(result)),
                None => None,
            }
        };
        self.replay.store(progress.exhausted, Ordering::Release);
        replay
    }
}

/// How a NextEx call is completed, as the author's [`NextCall`] holds it.
pub(crate) enum NextGuard<'call> {
    /// A call that found the lookup free: the lookup's slot.
    Slot(SlotCall<'call>),
    /// A call that waited for the lookup: its own completion, registered in the lookup.
    Owned(Completion<'static, NextOutcome>),
}

impl NextGuard<'_> {
    /// Completes the call with `outcome`, unless End already did.
    #[inline]
    pub(crate) fn complete(self, outcome: NextOutcome) -> Delivery {
        match self {
            Self::Slot(mut call) => call.finish(outcome),
            Self::Owned(guard) => guard.complete(outcome),
        }
    }
}

/// The author's side of the slot's call: owns the caller's buffer; dropped uncompleted (a
/// panic, an early return) it completes the call with `WSASYSCALLFAILURE`.
pub(crate) struct SlotCall<'call> {
    shared: &'call LookupShared,
    buffer: ResultBuffer,
    flags: ControlFlags,
    finished: bool,
}

impl SlotCall<'_> {
    #[inline]
    fn finish(&mut self, outcome: NextOutcome) -> Delivery {
        self.finished = true;
        match self.shared.slot.claim() {
            Some(claimed) => {
                let buffer = Some((&mut self.buffer, self.flags));
                self.shared.deliver_slot(claimed, outcome, buffer);
                Delivery::Delivered
            }
            None => {
                tracing::debug!("complete() after the lookup was ended: ignored");
                Delivery::AlreadyFinished
            }
        }
    }
}

impl Drop for SlotCall<'_> {
    fn drop(&mut self) {
        if !self.finished {
            tracing::debug!("NextEx guard dropped uncompleted");
            let _ = self.finish(NextOutcome::Failed(WsaError::WSASYSCALLFAILURE));
        }
    }
}

/// Ends the slot's cycle when the call ends, however it ends: finishes a guard the author
/// leaked (`WSASYSCALLFAILURE`) or waits for a delivery End runs on another thread, so that the
/// slot is free for the next call. Dropped before the author's lock is released.
struct SlotTurn<'a> {
    shared: &'a LookupShared,
}

impl Drop for SlotTurn<'_> {
    fn drop(&mut self) {
        let shared = self.shared;
        if let Some(claimed) = shared.slot.claim() {
            tracing::debug!("NextEx guard leaked: completed by the framework");
            let failure = NextOutcome::Failed(WsaError::WSASYSCALLFAILURE);
            shared.deliver_slot(claimed, failure, None);
        }
    }
}

/// Unregisters a waiting call's handle when the call ends, however it ends, after finishing
/// the call (a no-op unless the author leaked the guard).
struct Inflight<'a> {
    shared: &'a LookupShared,
    id: usize,
    handle: CompletionHandle<'static, NextOutcome>,
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        let _ = self
            .handle
            .abort(NextOutcome::Failed(WsaError::WSASYSCALLFAILURE));
        lock(&self.shared.inflight).retain(|(id, _)| *id != self.id);
    }
}

/// Runs one call with the lookup's turn: the replay of a kept result or of the end, or the
/// author's `next`.
#[inline]
fn serve(
    shared: &LookupShared,
    author: &mut AuthorLookup,
    guard: NextGuard<'_>,
    flags: ControlFlags,
    effective: ControlFlags,
) {
    if shared.token.is_cancelled() {
        // End ran before this call got the lookup (and has completed it, or does now).
        let _ = guard.complete(NextOutcome::Cancelled);
        return;
    }
    match shared.replay(flags) {
        Some(outcome) => {
            let _ = guard.complete(outcome);
        }
        None => {
            let call = NextCall::new(guard, &shared.token, effective);
            let _: Completed<'_> = author.lookup.next(call);
        }
    }
}

/// `NSPv2LookupServiceNextEx` on a leased lookup: completes `async_call` exactly once and
/// returns the code.
#[inline]
fn next_ex(
    lookup: &mut LookupLease<'_>,
    async_call: usize,
    flags: ControlFlags,
    buffer: ResultBuffer,
) -> i32 {
    let (shared, author) = lookup.parts();
    let effective = shared.begin_flags.narrowed_by(flags);
    // The common case: the lease got the turn. The call runs in the lookup's slot, which End
    // closes (completing the call) from any thread.
    if let Some(author) = author {
        shared.async_call.store(async_call, Ordering::Relaxed);
        if shared.slot.arm() {
            let turn = SlotTurn { shared };
            let guard = NextGuard::Slot(SlotCall {
                shared,
                buffer,
                flags: effective,
                finished: false,
            });
            serve(shared, author, guard, flags, effective);
            drop(turn);
            return shared.code.load(Ordering::Relaxed);
        }
        // Closed: End ran. Answered below, like a call that arrives while another runs.
    }
    next_ex_waiting(lookup, async_call, flags, effective, buffer)
}

/// A call that found the lookup busy: an owned completion registered for End, then its turn.
#[cold]
fn next_ex_waiting(
    lookup: &mut LookupLease<'_>,
    async_call: usize,
    flags: ControlFlags,
    effective: ControlFlags,
    mut buffer: ResultBuffer,
) -> i32 {
    let shared = Arc::clone(&**lookup);
    let code = Arc::new(AtomicI32::new(NO_ERROR));
    let deliver = {
        let code = Arc::clone(&code);
        let shared = Arc::clone(&shared);
        move |outcome: NextOutcome| {
            let raw = shared.deliver(async_call, outcome, Some((&mut buffer, effective)));
            code.store(raw, Ordering::SeqCst);
        }
    };
    let (guard, handle) = completion(deliver, NextOutcome::Failed(WsaError::WSASYSCALLFAILURE));
    let id = shared.next_call.fetch_add(1, Ordering::Relaxed);
    lock(&shared.inflight).push((id, handle.clone()));
    let inflight = Inflight {
        shared: &shared,
        id,
        handle,
    };

    if shared.token.is_cancelled() {
        // End ran before this call registered.
        let _ = guard.complete(NextOutcome::Cancelled);
    } else {
        // One NextEx per lookup at a time; End does not take the turn.
        let (_, author) = lookup.wait_turn();
        serve(&shared, author, NextGuard::Owned(guard), flags, effective);
    }
    drop(inflight);
    code.load(Ordering::SeqCst)
}
