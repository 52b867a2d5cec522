//! The framework's state machine: providers by GUID, sessions, lookups, and the End-vs-NextEx
//! protocol. Portable and free of `unsafe`: host memory reaches it only as a borrowed
//! [`ResultBuffer`], and completions leave through the registry's [`Sink`](crate::host::Sink).
//!
//! # End during NextEx (R-NSP-2, R-NSP-3, R-NSP-15)
//!
//! A lookup is an entry of a core [`LeaseTable`]: its shared state ([`LookupShared`]) and the
//! author's [`Lookup`], reached through the entry's turn. NextEx leases the entry for its
//! whole run — one atomic operation, which also takes the turn when it is free — so End (which
//! removes the handle) never frees it under a running call: the lookup is freed once, by
//! whichever returns its lease last. A NextEx that gets the turn (the common case: a client's
//! calls on one lookup come one after the other) runs on the lookup's own [`Op`], reused call
//! after call; a NextEx that finds another one running gets an `Op` of its own, registered in
//! the lookup while it waits for the turn. Either way the author's guard claims the `Op`'s one
//! delivery, and the call ends by finishing a leaked guard (see [`crate::lookup`]). End trips
//! the lookup's cancellation and closes every `Op` (claiming the running call's delivery, or
//! waiting for one in progress): exactly one delivery happens per call whoever gets there
//! first, and when End returns every NextEx that was running has been completed. A NextEx that
//! arrives after End ran — or that leased the lookup just before End retired it and reaches
//! it (arms or registers its `Op`) only after End closed it, unseen by End — finds the handle
//! released: `WSA_INVALID_HANDLE` (R-NSP-3).

use crate::host::{self, NO_ERROR, Sink};
use crate::lookup::{LookupShared, NextDelivery, NextOutcome, Op, ResultBuffer};
use crate::provider::{Lookup, NamespaceProvider, NextCall, SetServiceCall};
use crate::query::{ControlFlags, Guid, Query, RegInfo, SetServiceOp};
use crate::wire::ResultContext;
use winprov_core::sync::{
    Arc, AtomicI32, AtomicUsize, Mutex, Ordering, RwLock, arc_from_std, lock,
};
use winprov_core::{Lease, LeaseTable, WsaError, call};

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
    sessions: LeaseTable<Arc<dyn SessionObject>, ()>,
    lookups: LeaseTable<Arc<LookupShared>, AuthorLookup>,
    sink: Sink,
}

impl Registry {
    /// An empty registry whose completions go to `sink`.
    pub(crate) fn new(sink: Sink) -> Self {
        Self {
            providers: RwLock::new(Vec::new()),
            sessions: LeaseTable::new(),
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
                drop(session);
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
        match self.sessions.insert(Arc::clone(&session), ()) {
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
        let session = self
            .sessions
            .lease_shared(raw)
            .map_err(|_| WsaError::WSAEINVAL)?;
        match provider_id {
            Some(id) if id != session.provider_id() => Err(WsaError::WSAEINVALIDPROVIDER),
            _ => Ok(Arc::clone(&*session)),
        }
    }

    /// `NSPv2Cleanup`.
    pub(crate) fn cleanup(&self, provider_id: Option<Guid>, raw: usize) -> Result<(), WsaError> {
        let session = self.session(provider_id, raw)?;
        session.close(self, Close::Cleanup, raw);
        drop(self.sessions.remove(raw).map_err(|_| WsaError::WSAEINVAL)?);
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

    /// NextEx calls of lookup `raw` registered for End while they wait for its turn (for the
    /// simulator).
    #[cfg(feature = "testing")]
    pub(crate) fn waiting_nexts(&self, raw: usize) -> Option<usize> {
        let lookup = self.lookups.lease_shared(raw).ok()?;
        Some(lookup.waiting_count())
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
        buffer: Result<ResultBuffer<'_>, WsaError>,
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

    /// Completes `async_call` with `error` (a call refused before it reached a lookup or a
    /// session) and returns the code.
    pub(crate) fn fail(&self, async_call: usize, error: WsaError) -> i32 {
        let code = error.raw();
        host::complete(&self.sink, async_call, code);
        code
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
        sink: &Sink,
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
            Sink::clone(&registry.sink),
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
        sink: &Sink,
        async_call: usize,
        operation: SetServiceOp,
        registration: RegInfo,
        flags: u32,
    ) -> i32 {
        let code = AtomicI32::new(NO_ERROR);
        call::scope(|scope| {
            let (guard, handle) = scope.completion(
                |outcome: Result<(), WsaError>| {
                    let raw = outcome.err().map_or(NO_ERROR, WsaError::raw);
                    code.store(raw, Ordering::SeqCst);
                    host::complete(sink, async_call, raw);
                },
                Err(WsaError::WSASYSCALLFAILURE),
            );
            // However the call ends — a guard leaked with mem::forget, then a panic (the author
            // has no proof to return) — the request is finished before the export returns; a
            // no-op when the guard completed.
            let _finish = scopeguard::guard(handle, |handle| {
                let _ = handle.abort(Err(WsaError::WSASYSCALLFAILURE));
            });
            let ns_email = P::NAMESPACE == winprov_bindings::ws2spi::NS_EMAIL;
            match self.open() {
                None => {
                    let _ = guard.complete(Err(WsaError::WSAEINVAL));
                }
                // NS_EMAIL registrations carry their data in lpBlob (required by the interface).
                Some(_)
                    if ns_email
                        && matches!(operation, SetServiceOp::Register { .. })
                        && registration.blob.is_none() =>
                {
                    let _ = guard.complete(Err(WsaError::WSAEINVAL));
                }
                Some(session) => {
                    let call =
                        SetServiceCall::new(scope.issuer(), guard, operation, registration, flags);
                    let _ = self
                        .provider
                        .provider
                        .set_service(&session, call)
                        .delivery();
                }
            }
        });
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

/// Runs one call with the lookup's turn: the replay of a kept result or of the end, or the
/// author's `next`.
#[inline]
fn serve(
    shared: &LookupShared,
    author: &mut AuthorLookup,
    op: &Op,
    buffer: ResultBuffer<'_>,
    flags: ControlFlags,
    effective: ControlFlags,
) {
    let delivery = NextDelivery::new(shared, op, buffer, effective);
    if shared.token.is_cancelled() {
        // End ran before this call got the lookup (and has completed it, or does now).
        let _ = delivery.complete(NextOutcome::Cancelled);
        return;
    }
    match shared.replay(flags) {
        Some(outcome) => {
            let _ = delivery.complete(outcome);
        }
        None => call::scope(|scope| {
            let call = NextCall::new(scope.issuer(), delivery, effective);
            let _ = author.lookup.next(call).delivery();
        }),
    }
}

/// `NSPv2LookupServiceNextEx` on a leased lookup: completes `async_call` exactly once and
/// returns the code.
#[inline]
fn next_ex(
    lookup: &mut LookupLease<'_>,
    async_call: usize,
    flags: ControlFlags,
    buffer: ResultBuffer<'_>,
) -> i32 {
    let (shared, author) = lookup.parts();
    let effective = shared.begin_flags.narrowed_by(flags);
    // The common case: the lease got the turn. The call runs on the lookup's own Op, which
    // End closes (completing the call) from any thread.
    if let Some(author) = author {
        let op = &shared.op;
        if op.arm(async_call) {
            // However the call ends (a panic, a leaked guard), its Op is finished before the
            // turn is returned.
            let end = scopeguard::guard((), |()| shared.end_of_call(op));
            serve(shared, author, op, buffer, flags, effective);
            drop(end);
            return op.code();
        }
        // Closed: End ran. Answered below, like a call that arrives while another runs.
    }
    next_ex_waiting(lookup, async_call, flags, effective, buffer)
}

/// A call that found the lookup busy (or ended): an `Op` of its own, registered for End,
/// then its turn.
#[cold]
fn next_ex_waiting(
    lookup: &mut LookupLease<'_>,
    async_call: usize,
    flags: ControlFlags,
    effective: ControlFlags,
    buffer: ResultBuffer<'_>,
) -> i32 {
    let shared = Arc::clone(&**lookup);
    let op = Arc::new(Op::new());
    let armed = op.arm(async_call);
    debug_assert!(armed, "a new Op arms");
    shared.register(&op);
    // Unregisters the call however it ends, after finishing it (a no-op unless the author
    // leaked the guard).
    let _registered = scopeguard::guard((), |()| {
        shared.end_of_call(&op);
        shared.unregister(&op);
    });
    if shared.token.is_cancelled() {
        // End ran before this call was registered, so it may not have seen it (it may have
        // returned already): for this call the handle is released. (A call End did see is
        // closed by End, with WSA_E_CANCELLED, and this delivery is then a no-op.)
        let _ = NextDelivery::new(&shared, &op, buffer, effective).complete(NextOutcome::Released);
    } else {
        // One NextEx per lookup at a time; End does not take the turn.
        let (_, author) = lookup.wait_turn();
        serve(&shared, author, &op, buffer, flags, effective);
    }
    drop(_registered);
    op.code()
}
