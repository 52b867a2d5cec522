//! The framework's state machine: providers by GUID, sessions, lookups, and the End-vs-NextEx
//! protocol. Portable and free of `unsafe`: host memory reaches it only through
//! [`ResultBuffer`](crate::sys::ResultBuffer), and completions leave through an [`AsyncSink`].
//!
//! # End during NextEx (R-NSP-2, R-NSP-3, R-NSP-15)
//!
//! A lookup is an `Arc` in a generation-checked [`HandleTable`]; NextEx holds a clone for its
//! whole run, so End (which removes the handle) never frees it under a running call: the object
//! is freed once, after both. Each NextEx completes through a core [`Completion`] guard whose
//! [`CompletionHandle`] is registered in the lookup while the call runs. End removes the handle,
//! trips the lookup's cancellation and aborts every registered handle with `WSA_E_CANCELLED`:
//! exactly one delivery happens per call whoever gets there first, and when End returns every
//! NextEx that was running has been completed (a delivery in progress on the NextEx thread is
//! waited for). A NextEx that registers after End ran sees the cancellation and reports it.
//! Writing the result into the caller's buffer is part of the delivery, so after End's abort
//! the buffer is never touched again.

use crate::provider::{
    Completed, Lookup, NamespaceProvider, NextCall, NextOutcome, SetServiceCall,
};
use crate::query::{ControlFlags, Guid, Query, RegInfo, SetServiceOp};
use crate::sys::ResultBuffer;
use crate::wire::{self, ResultContext};
use std::sync::atomic::AtomicI32;
use winprov_core::sync::{Arc, AtomicUsize, Mutex, Ordering, RwLock, arc_from_std, lock};
use winprov_core::{
    CancellationSource, CancellationToken, CompletionHandle, HandleTable, WsaError, completion,
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
    lookups: HandleTable<dyn LookupObject>,
    sink: std::sync::Arc<dyn AsyncSink>,
}

impl Registry {
    pub(crate) fn new(sink: std::sync::Arc<dyn AsyncSink>) -> Self {
        Self {
            providers: RwLock::new(Vec::new()),
            sessions: HandleTable::new(),
            lookups: HandleTable::new(),
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
        let lookup = match self.lookups.get(raw) {
            Ok(lookup) => lookup,
            Err(_) => return self.fail(async_call, WsaError::WSA_INVALID_HANDLE),
        };
        match buffer {
            Ok(buffer) => lookup.next_ex(&self.sink, async_call, flags, buffer),
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
    live_lookups: AtomicUsize,
}

impl<P: NamespaceProvider> ProviderInner<P> {
    fn new(id: Guid, provider: P) -> Self {
        Self {
            id,
            provider,
            sessions: Mutex::new(0),
            live_lookups: AtomicUsize::new(0),
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
        let entry: std::sync::Arc<dyn LookupObject> = std::sync::Arc::new(LookupEntry::<P> {
            shared: LookupShared::new(
                flags,
                session_raw,
                ResultContext {
                    namespace: P::NAMESPACE,
                    provider_id: self.provider.id,
                },
            ),
            author: Mutex::new(lookup),
            provider: Arc::clone(&self.provider),
        });
        self.provider.live_lookups.fetch_add(1, Ordering::SeqCst);
        let handle = registry
            .lookups
            .insert_arc(arc_from_std(entry))
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
                    code.store(raw, std::sync::atomic::Ordering::SeqCst);
                    sink.complete(async_call, raw);
                }
            },
            Err(WsaError::WSASYSCALLFAILURE),
        );
        let Some(session) = self.open() else {
            let _ = guard.complete(Err(WsaError::WSAEINVAL));
            return code.load(std::sync::atomic::Ordering::SeqCst);
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
        code.load(std::sync::atomic::Ordering::SeqCst)
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
            if lookup.session() == session_raw && registry.lookups.remove(handle.raw()).is_ok() {
                lookup.end();
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

trait LookupObject: Send + Sync {
    fn session(&self) -> usize;
    fn end(&self);
    fn next_ex(
        &self,
        sink: &std::sync::Arc<dyn AsyncSink>,
        async_call: usize,
        flags: ControlFlags,
        buffer: ResultBuffer,
    ) -> i32;
}

/// What a delivery needs besides the outcome.
struct Progress {
    /// The result that did not fit the caller's buffer, kept for the retry (R-NSP-5).
    pending: Option<crate::query::QueryResult>,
    /// The author reported the end (R-NSP-4): later calls answer `WSA_E_NO_MORE` directly.
    exhausted: bool,
}

struct LookupShared {
    cancel: CancellationSource,
    token: CancellationToken,
    begin_flags: ControlFlags,
    session: usize,
    context: ResultContext,
    progress: Arc<Mutex<Progress>>,
    inflight: Mutex<Vec<(usize, CompletionHandle<'static, NextOutcome>)>>,
    next_call: AtomicUsize,
}

impl LookupShared {
    fn new(begin_flags: ControlFlags, session: usize, context: ResultContext) -> Self {
        let cancel = CancellationSource::new();
        let token = cancel.token();
        Self {
            cancel,
            token,
            begin_flags,
            session,
            context,
            progress: Arc::new(Mutex::new(Progress {
                pending: None,
                exhausted: false,
            })),
            inflight: Mutex::new(Vec::new()),
            next_call: AtomicUsize::new(0),
        }
    }
}

struct LookupEntry<P: NamespaceProvider> {
    shared: LookupShared,
    author: Mutex<P::Lookup>,
    provider: Arc<ProviderInner<P>>,
}

impl<P: NamespaceProvider> Drop for LookupEntry<P> {
    fn drop(&mut self) {
        self.provider.live_lookups.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Unregisters a call's handle when the call ends, however it ends, after finishing the call
/// (a no-op unless the author leaked the guard).
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

impl<P: NamespaceProvider> LookupObject for LookupEntry<P> {
    fn session(&self) -> usize {
        self.shared.session
    }

    fn end(&self) {
        self.shared.cancel.cancel();
        let running: Vec<_> = lock(&self.shared.inflight)
            .iter()
            .map(|(_, handle)| handle.clone())
            .collect();
        for handle in running {
            let _ = handle.abort(NextOutcome::Cancelled);
        }
    }

    fn next_ex(
        &self,
        sink: &std::sync::Arc<dyn AsyncSink>,
        async_call: usize,
        flags: ControlFlags,
        mut buffer: ResultBuffer,
    ) -> i32 {
        let shared = &self.shared;
        let effective = shared.begin_flags.narrowed_by(flags);
        let code = Arc::new(AtomicI32::new(NO_ERROR));
        let deliver = {
            let code = Arc::clone(&code);
            let sink = std::sync::Arc::clone(sink);
            let progress = Arc::clone(&shared.progress);
            let token = shared.token.clone();
            let context = shared.context;
            move |outcome: NextOutcome| {
                let raw = if token.is_cancelled() {
                    WsaError::WSA_E_CANCELLED.raw()
                } else {
                    match outcome {
                        NextOutcome::Cancelled => WsaError::WSA_E_CANCELLED.raw(),
                        NextOutcome::Failed(error) => error.raw(),
                        NextOutcome::NoMore => {
                            lock(&progress).exhausted = true;
                            WsaError::WSA_E_NO_MORE.raw()
                        }
                        NextOutcome::Found(result) => {
                            match buffer.write(|bytes, base| {
                                wire::encode(&result, effective, &context, bytes, base)
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
                                    lock(&progress).pending = Some(result);
                                    raw
                                }
                            }
                        }
                    }
                };
                code.store(raw, std::sync::atomic::Ordering::SeqCst);
                sink.complete(async_call, raw);
            }
        };
        let (guard, handle) = completion(deliver, NextOutcome::Failed(WsaError::WSASYSCALLFAILURE));
        let id = shared.next_call.fetch_add(1, Ordering::Relaxed);
        lock(&shared.inflight).push((id, handle.clone()));
        let _inflight = Inflight { shared, id, handle };

        if shared.token.is_cancelled() {
            // End ran before this call registered.
            let _ = guard.complete(NextOutcome::Cancelled);
        } else {
            // One NextEx per lookup at a time; End does not take this lock.
            let mut author = lock(&self.author);
            if shared.token.is_cancelled() {
                // End ran while this call waited its turn (and has completed it, or does now).
                let _ = guard.complete(NextOutcome::Cancelled);
            } else {
                let replay = {
                    let mut progress = lock(&shared.progress);
                    if progress.exhausted {
                        Some(NextOutcome::NoMore)
                    } else {
                        let pending = progress.pending.take();
                        match pending {
                            Some(_) if flags.contains(ControlFlags::FLUSHPREVIOUS) => None,
                            Some(result) => Some(NextOutcome::Found(result)),
                            None => None,
                        }
                    }
                };
                match replay {
                    Some(outcome) => {
                        let _ = guard.complete(outcome);
                    }
                    None => {
                        let call = NextCall::new(guard, &shared.token, effective);
                        let _: Completed<'_> = author.next(call);
                    }
                }
            }
        }
        drop(_inflight);
        code.load(std::sync::atomic::Ordering::SeqCst)
    }
}
