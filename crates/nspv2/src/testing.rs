//! A host simulator: plays Winsock against any provider, through the real routine table.
//!
//! [`Host`] registers a provider the way `WSAAdvertiseProvider` would (after the same checks of
//! the routine table, R-NSP-1) and calls the `NSPV2_ROUTINE` function pointers with real
//! `WSAQUERYSET2W` structures and result buffers, exactly as ws2_32 would in the client's stead.
//! `WSAProviderCompleteAsyncCall` is replaced by a recorder, so every NextEx and SetServiceEx
//! is checked to complete exactly once (R-NSP-15). Results are decoded with every pointer
//! checked against the buffer (R-NSP-8), the bytes after the stated length are checked to be
//! untouched, and the legacy codes `WSAECANCELLED` / `WSAENOMORE` are refused (R-NSP-2, -4).
//! Every NextEx in flight is tracked: when End (or the Cleanup, Rundown or withdrawal that ends
//! its lookup) returns, each NextEx of that lookup that was inside the framework must have been
//! completed already, exactly once (R-NSP-2, R-NSP-15). A violated rule panics with the rule's
//! ID, so any test using the host fails.
//!
//! Provider authors use it from their own tests (`features = ["testing"]`); [`conformance`]
//! runs the lookup rules against a provider given one query it answers.

use crate::abi::exports;
use crate::host::{AsyncCompletion, Sink};
use crate::install::{NamespaceInstall, ProviderLevel};
use crate::provider::{Lookup, NamespaceProvider, NextCall, SetServiceCall};
use crate::query::{ControlFlags, Guid, Query, RegInfo, SetServiceOp};
use crate::runtime::{Registry, Stats};
use crate::wire::Decoded;
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use winprov_bindings::windows_core::PWSTR;
use winprov_bindings::ws2spi::{
    AFPROTOCOLS, BLOB, CSADDR_INFO, HANDLE, NSPV2_ROUTINE, SOCKADDR, SOCKET_ADDRESS, SOCKET_ERROR,
    WSAECOMPARATOR, WSAESETSERVICEOP, WSAQUERYSET2W, WSAVERSION,
};
use winprov_core::{Completed, WsaError};

/// The result-buffer format of `NSPv2LookupServiceNextEx` (what the simulator decodes results
/// with), for tests and benchmarks that encode or decode results themselves.
pub mod wire {
    pub use crate::wire::{
        BUFFER_ALIGN, DecodeError, Decoded, ResultContext, TooSmall, decode, encode, encoded_len,
        parse_sockaddr, sockaddr_bytes,
    };
}

// ---------------------------------------------------------------------------------------------
// The completion recorder standing in for WSAProviderCompleteAsyncCall.

/// One host's completions, by `hAsyncCall`.
#[derive(Debug, Default)]
struct Recorder {
    calls: HashMap<usize, CallRecord>,
    stray: usize,
}

/// One `hAsyncCall` in flight.
#[derive(Debug, Default)]
struct CallRecord {
    codes: Vec<i32>,
    /// The lookup of a NextEx.
    lookup: Option<usize>,
    /// An End (or Cleanup, Rundown, withdrawal) of the lookup returned before this call was
    /// completed: the call was not inside the framework yet, so it must find the handle
    /// released (R-NSP-2, R-NSP-3).
    ended_first: bool,
}

/// Completions for unknown `hAsyncCall` values, over every host of the process.
static STRAY: AtomicUsize = AtomicUsize::new(0);
static NEXT_ASYNC: AtomicUsize = AtomicUsize::new(1);

/// A host's recorder, shared with the sink its registry completes through.
type Recorded = Arc<Mutex<Recorder>>;

fn recorder(recorded: &Recorded) -> MutexGuard<'_, Recorder> {
    recorded.lock().unwrap_or_else(|p| p.into_inner())
}

/// The sink of a simulated host's registry: records each completion under its `hAsyncCall`.
fn sink(recorded: &Recorded) -> Sink {
    let recorded = Arc::clone(recorded);
    Arc::new(move |completion: AsyncCompletion| {
        let mut recorder = recorder(&recorded);
        match recorder.calls.get_mut(&completion.async_call) {
            Some(call) => call.codes.push(completion.code),
            None => {
                recorder.stray += 1;
                STRAY.fetch_add(1, Ordering::SeqCst);
            }
        }
    })
}

/// An `hAsyncCall` the recorder tracks until [`AsyncCall::finish`].
struct AsyncCall<'h> {
    id: usize,
    recorded: &'h Recorded,
}

impl<'h> AsyncCall<'h> {
    /// A call; `lookup` for a NextEx.
    fn new(recorded: &'h Recorded, lookup: Option<LookupHandle>) -> Self {
        // Odd values: never mistaken for an aligned pointer.
        let id = NEXT_ASYNC.fetch_add(2, Ordering::Relaxed) | 1;
        let call = CallRecord {
            lookup: lookup.map(|l| l.0),
            ..CallRecord::default()
        };
        recorder(recorded).calls.insert(id, call);
        Self { id, recorded }
    }

    fn handle(&self) -> HANDLE {
        HANDLE(std::ptr::without_provenance_mut(self.id))
    }

    /// The one completion the call made (R-NSP-15).
    fn finish(self, entry: &str) -> i32 {
        let call = recorder(self.recorded)
            .calls
            .remove(&self.id)
            .unwrap_or_default();
        let code = match call.codes.as_slice() {
            [code] => *code,
            codes => panic!(
                "R-NSP-15 violated: {entry} completed {} times ({codes:?}), not exactly once",
                codes.len()
            ),
        };
        if call.ended_first && code != WsaError::WSA_INVALID_HANDLE.raw() {
            panic!(
                "R-NSP-2 violated: {entry} was completed (with {code}) after the End of its \
                 lookup returned; End must complete every NextEx in flight before it returns"
            );
        }
        code
    }
}

/// Called when an End, Cleanup, Rundown or withdrawal that ended the lookups `ended` returned:
/// every NextEx of them the framework was running must be completed by now, exactly once
/// (R-NSP-2, R-NSP-15). One not completed yet had not reached the framework: it is marked, and
/// must find its handle released.
fn lookups_ended(recorded: &Recorded, what: &str, ended: impl Fn(usize) -> bool) {
    let mut recorder = recorder(recorded);
    for call in recorder.calls.values_mut() {
        if !call.lookup.is_some_and(&ended) {
            continue;
        }
        match call.codes.len() {
            0 => call.ended_first = true,
            1 => {}
            times => panic!(
                "R-NSP-15 violated: a NextEx was completed {times} times ({:?}) when {what} \
                 returned",
                call.codes
            ),
        }
    }
}

/// Completions for `hAsyncCall` values no simulated call issued, over every host of the
/// process (should stay 0).
pub fn stray_completions() -> usize {
    STRAY.load(Ordering::SeqCst)
}

/// The routine table's entries, or the R-NSP-1 error `WSAAdvertiseProvider` would report.
pub fn check_routine(table: Option<&NSPV2_ROUTINE>) -> Result<(), WsaError> {
    let table = table.ok_or(WsaError::WSAEINVAL)?;
    if table.cbSize as usize != size_of::<NSPV2_ROUTINE>()
        || table.NSPv2LookupServiceBegin.is_none()
        || table.NSPv2LookupServiceNextEx.is_none()
        || table.NSPv2LookupServiceEnd.is_none()
    {
        return Err(WsaError::WSAEINVAL);
    }
    Ok(())
}

/// What each slot of the process's routine table answered in [`drive_routine`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoutineRun {
    /// `NSPv2Startup`'s return and last error.
    pub startup: Result<(), WsaError>,
    /// `NSPv2LookupServiceBegin`'s.
    pub begin: Result<(), WsaError>,
    /// `NSPv2LookupServiceNextEx`'s last error, and the name of the result it wrote.
    pub next: (i32, Option<String>),
    /// `NSPv2LookupServiceEnd`'s.
    pub end: Result<(), WsaError>,
    /// `NSPv2SetServiceEx`'s last error.
    pub set_service: i32,
    /// `NSPv2Cleanup`'s, after `NSPv2ClientSessionRundown`.
    pub cleanup: Result<(), WsaError>,
}

/// Calls each of the seven slots of [`routine()`](crate::routine) once, the way ws2_32 would,
/// against the provider registered in this process under `id` ([`crate::register`]):
/// Startup, Begin for `query`, NextEx into a 4 KiB buffer, End, SetServiceEx (delete `reg`),
/// Rundown, Cleanup. The asynchronous entries get a NULL `hAsyncCall` (their code is only the
/// last error): the process's registry completes through Winsock, which is not here.
pub fn drive_routine(id: Guid, query: &Query, reg: &RegInfo) -> RoutineRun {
    let table = crate::routine();
    let mut arg: *mut c_void = std::ptr::null_mut();
    let startup = table.NSPv2Startup.expect("filled");
    // SAFETY: a valid GUID and out-pointer for the call.
    let startup = int_status(unsafe { startup(&id, &mut arg) });
    let session = arg.cast_const();
    let begin = table.NSPv2LookupServiceBegin.expect("filled");
    let restrictions = RawQuerySet::query(query);
    let mut lookup = HANDLE::default();
    // SAFETY: the set's memory is valid for the call; valid out-pointer.
    let begin = int_status(unsafe {
        begin(
            &id,
            restrictions.as_ptr(),
            ControlFlags::RETURN_ALL.bits(),
            session,
            &mut lookup,
        )
    });
    let mut words = vec![0u64; 512];
    let mut length = 4096u32;
    let data = words.as_mut_ptr().cast::<u8>();
    let next_ex = table.NSPv2LookupServiceNextEx.expect("filled");
    // SAFETY: `length` and the 4096 bytes of `words` are valid, and aligned, for the call.
    unsafe {
        next_ex(
            HANDLE::default(),
            lookup,
            ControlFlags::RETURN_ALL.bits(),
            &length,
            data.cast(),
        )
    };
    let next_code = crate::abi::last_error();
    length = length.min(4096);
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let name = (next_code == 0)
        .then(|| wire::decode(&bytes[..length as usize], data.addr()).ok())
        .flatten()
        .and_then(|decoded| decoded.result.service_instance_name);
    let end = table.NSPv2LookupServiceEnd.expect("filled");
    // SAFETY: the handle is passed by value.
    let end = int_status(unsafe { end(lookup) });
    let set_service = table.NSPv2SetServiceEx.expect("filled");
    let registration = RawQuerySet::reg_info(reg);
    // SAFETY: the set's memory and the GUID are valid for the call.
    unsafe {
        set_service(
            HANDLE::default(),
            &id,
            registration.as_ptr(),
            WSAESETSERVICEOP(2),
            0,
            session,
        )
    };
    let set_service = crate::abi::last_error();
    let rundown = table.NSPv2ClientSessionRundown.expect("filled");
    // SAFETY: a valid GUID; the session value is passed back as an opaque pointer.
    unsafe { rundown(&id, session) };
    let cleanup = table.NSPv2Cleanup.expect("filled");
    // SAFETY: as for rundown.
    let cleanup = int_status(unsafe { cleanup(&id, session) });
    RoutineRun {
        startup,
        begin,
        next: (next_code, name),
        end,
        set_service,
        cleanup,
    }
}

// ---------------------------------------------------------------------------------------------
// Values the host passes around.

/// The value `NSPv2Startup` stored through `ppvClientSessionArg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionArg(pub usize);

/// A lookup handle from `NSPv2LookupServiceBegin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LookupHandle(pub usize);

/// How the result buffer of one NextEx is passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// An aligned buffer of this many bytes (0 = a size probe with a NULL buffer).
    Len(u32),
    /// `lpdwBufferLength` = NULL.
    NullLength,
    /// A NULL `lpqsResults` with this non-zero length.
    NullData(u32),
    /// A buffer of this many bytes at an address that is not pointer-aligned.
    Misaligned(u32),
}

/// What one NextEx did, as the client sees it.
#[derive(Clone, Debug)]
pub struct Next {
    /// The completion code (`0` = `NO_ERROR`).
    pub code: i32,
    /// `*lpdwBufferLength` after the call.
    pub buffer_length: u32,
    /// The decoded result, when the call succeeded.
    pub result: Option<Decoded>,
}

impl Next {
    /// The code as an error, `Ok(())` for `NO_ERROR`.
    pub fn status(&self) -> Result<(), WsaError> {
        match self.code {
            0 => Ok(()),
            code => Err(WsaError::from_raw(code)),
        }
    }

    /// The result's instance name, if any.
    pub fn name(&self) -> Option<&str> {
        self.result
            .as_ref()?
            .result
            .service_instance_name
            .as_deref()
    }
}

// ---------------------------------------------------------------------------------------------
// Raw query sets.

/// A `WSAQUERYSET2W` with the memory it points to, as a client would pass it; its raw
/// structure can be edited to make malformed input.
pub struct RawQuerySet {
    qs: Box<WSAQUERYSET2W>,
    strings: Vec<Vec<u16>>,
    protocols: Vec<AFPROTOCOLS>,
    addresses: Vec<CSADDR_INFO>,
    sockaddrs: Vec<Vec<u32>>,
    blob: Option<(Box<BLOB>, Vec<u8>)>,
    version: Option<Box<WSAVERSION>>,
    guid: Option<Box<Guid>>,
}

// SAFETY: the raw pointers point into the set's own heap allocations, which move with it.
unsafe impl Send for RawQuerySet {}
// SAFETY: shared access only reads.
unsafe impl Sync for RawQuerySet {}

impl RawQuerySet {
    fn empty() -> Self {
        let qs = WSAQUERYSET2W {
            dwSize: size_of::<WSAQUERYSET2W>() as u32,
            ..Default::default()
        };
        Self {
            qs: Box::new(qs),
            strings: Vec::new(),
            protocols: Vec::new(),
            addresses: Vec::new(),
            sockaddrs: Vec::new(),
            blob: None,
            version: None,
            guid: None,
        }
    }

    /// Keeps `units` alive with the set and returns a pointer to them (for forged strings).
    pub fn keep_wide(&mut self, units: Vec<u16>) -> PWSTR {
        self.strings.push(units);
        PWSTR(self.strings.last_mut().expect("just pushed").as_mut_ptr())
    }

    fn string(&mut self, text: &Option<String>) -> PWSTR {
        match text {
            Some(text) => self.keep_wide(winprov_core::ffi::to_wide_nul(text)),
            None => PWSTR::null(),
        }
    }

    fn common(
        &mut self,
        name: &Option<String>,
        version: Option<crate::Version>,
        namespace: u32,
        provider_id: Option<Guid>,
        context: &Option<String>,
        blob: &Option<Vec<u8>>,
    ) {
        self.qs.lpszServiceInstanceName = self.string(name);
        self.qs.lpszContext = self.string(context);
        self.qs.dwNameSpace = namespace;
        if let Some(version) = version {
            let how = match version.how {
                crate::Comparator::Equal => 0,
                crate::Comparator::NotLess => 1,
            };
            let mut raw = Box::new(WSAVERSION {
                dwVersion: version.version,
                ecHow: WSAECOMPARATOR(how),
            });
            self.qs.lpVersion = &mut *raw;
            self.version = Some(raw);
        }
        if let Some(id) = provider_id {
            let mut raw = Box::new(id);
            self.qs.lpNSProviderId = &mut *raw;
            self.guid = Some(raw);
        }
        if let Some(data) = blob {
            self.set_blob(data.clone());
        }
    }

    /// Replaces the blob.
    pub fn set_blob(&mut self, mut data: Vec<u8>) {
        let mut raw = Box::new(BLOB {
            cbSize: data.len() as u32,
            pBlobData: if data.is_empty() {
                std::ptr::null_mut()
            } else {
                data.as_mut_ptr()
            },
        });
        self.qs.lpBlob = &mut *raw;
        self.blob = Some((raw, data));
    }

    /// The restriction a client passes to `WSALookupServiceBegin`.
    pub fn query(query: &Query) -> Self {
        let mut set = Self::empty();
        set.common(
            &query.service_instance_name,
            query.version,
            query.namespace,
            query.provider_id,
            &query.context,
            &query.blob,
        );
        set.qs.lpszQueryString = set.string(&query.query_string.clone());
        set.protocols = query
            .protocols
            .iter()
            .map(|p| AFPROTOCOLS {
                iAddressFamily: p.address_family,
                iProtocol: p.protocol,
            })
            .collect();
        set.qs.dwNumberOfProtocols = set.protocols.len() as u32;
        set.qs.lpafpProtocols = if set.protocols.is_empty() {
            std::ptr::null_mut()
        } else {
            set.protocols.as_mut_ptr()
        };
        set
    }

    /// The registration a client passes to `WSASetService`.
    pub fn reg_info(reg: &RegInfo) -> Self {
        let mut set = Self::empty();
        set.common(
            &reg.service_instance_name,
            reg.version,
            reg.namespace,
            reg.provider_id,
            &reg.context,
            &reg.blob,
        );
        set.qs.lpszComment = set.string(&reg.comment.clone());
        for address in &reg.addresses {
            let local = set.socket_address(address.local);
            let remote = set.socket_address(address.remote);
            set.addresses.push(CSADDR_INFO {
                LocalAddr: local,
                RemoteAddr: remote,
                iSocketType: address.socket_type,
                iProtocol: address.protocol,
            });
        }
        set.qs.dwNumberOfCsAddrs = set.addresses.len() as u32;
        set.qs.lpcsaBuffer = if set.addresses.is_empty() {
            std::ptr::null_mut()
        } else {
            set.addresses.as_mut_ptr()
        };
        set
    }

    fn socket_address(&mut self, address: Option<std::net::SocketAddr>) -> SOCKET_ADDRESS {
        let Some(address) = address else {
            return SOCKET_ADDRESS::default();
        };
        let bytes = wire::sockaddr_bytes(&address);
        let len = bytes.len();
        // Kept as u32 words: a SOCKADDR must be aligned like one.
        let words = bytes
            .chunks(4)
            .map(|chunk| {
                let mut word = [0u8; 4];
                word[..chunk.len()].copy_from_slice(chunk);
                u32::from_ne_bytes(word)
            })
            .collect();
        self.sockaddrs.push(words);
        SOCKET_ADDRESS {
            lpSockaddr: self
                .sockaddrs
                .last_mut()
                .expect("just pushed")
                .as_mut_ptr()
                .cast::<SOCKADDR>(),
            iSockaddrLength: len as i32,
        }
    }

    /// The raw structure, for malformed input.
    pub fn raw_mut(&mut self) -> &mut WSAQUERYSET2W {
        &mut self.qs
    }

    fn as_ptr(&self) -> *const WSAQUERYSET2W {
        &*self.qs
    }
}

impl std::fmt::Debug for RawQuerySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawQuerySet").finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// The host.

/// Winsock, simulated: one advertised provider, in a registry of its own whose completions
/// this host records (hosts run side by side in one process).
#[derive(Debug)]
pub struct Host {
    id: Guid,
    registry: Arc<Registry>,
    recorded: Recorded,
    withdrawn: AtomicBool,
    /// The session of every lookup begun through this host.
    lookups: Mutex<HashMap<usize, SessionArg>>,
    /// Sessions started through this host and not cleaned up or run down.
    sessions: Mutex<Vec<SessionArg>>,
    /// Where the provider's `next` is entered.
    probe: Arc<Probe>,
    /// The installation Winsock routes by (`None`: every lookup reaches the provider).
    installed: Mutex<Option<NamespaceInstall>>,
}

const GUARD: usize = 64;
const CANARY: u8 = 0xA5;

impl Host {
    /// Plays `WSAAdvertiseProvider(id, routine())` for `provider`: the table is checked as
    /// Winsock checks it (R-NSP-1), then the provider answers calls for `id`.
    pub fn advertise<P: NamespaceProvider>(id: Guid, provider: P) -> Result<Self, WsaError> {
        check_routine(Some(crate::routine()))?;
        let recorded = Recorded::default();
        let registry = Arc::new(Registry::new(sink(&recorded)));
        Self::advertise_in(registry, recorded, id, provider)
    }

    fn advertise_in<P: NamespaceProvider>(
        registry: Arc<Registry>,
        recorded: Recorded,
        id: Guid,
        provider: P,
    ) -> Result<Self, WsaError> {
        let probe = Arc::new(Probe::default());
        let probed = Probed {
            provider,
            probe: Arc::clone(&probe),
        };
        registry
            .register(id, probed)
            .map_err(|_| WsaError::WSAEINVAL)?;
        Ok(Self {
            id,
            registry,
            recorded,
            withdrawn: AtomicBool::new(false),
            lookups: Mutex::new(HashMap::new()),
            sessions: Mutex::new(Vec::new()),
            probe,
            installed: Mutex::new(None),
        })
    }

    /// Routes lookups as Winsock does for a provider installed with `description`
    /// (`WSCInstallNameSpaceEx`): a lookup of an e-mail name reaches the provider when its
    /// domain is one of the description's primary or secondary domains, when the provider
    /// supports wildcards (this host knows no other provider of the domain), or when the query
    /// names the provider by id; any other [`begin`](Self::begin) fails with
    /// `WSASERVICE_NOT_FOUND` without the provider being asked. A query without a name is
    /// routed. Until this is called, every lookup reaches the provider.
    pub fn install(&self, description: &NamespaceInstall) {
        *self.installed.lock().unwrap_or_else(|p| p.into_inner()) = Some(description.clone());
    }

    /// Whether Winsock would route a lookup of `query` to this provider (see
    /// [`install`](Self::install)).
    pub fn routes(&self, query: &Query) -> bool {
        let installed = self.installed.lock().unwrap_or_else(|p| p.into_inner());
        let Some(description) = installed.as_ref() else {
            return true;
        };
        if query.provider_id == Some(self.id) || description.supports_wildcard {
            return true;
        }
        let Some(name) = &query.service_instance_name else {
            return true;
        };
        let domain = name
            .rsplit_once('@')
            .map_or(name.as_str(), |(_, domain)| domain);
        description.domains.iter().any(|known| {
            known.level != ProviderLevel::None && known.name.eq_ignore_ascii_case(domain)
        })
    }

    /// How many times the provider's [`Lookup::next`] has been entered, for all the lookups
    /// of this host: a call counted has been handed to the provider's code (the host's NextEx
    /// is inside it, or was).
    pub fn nexts_entered(&self) -> usize {
        *self.probe.lock()
    }

    /// Waits up to `timeout` until the provider's [`Lookup::next`] has been entered `n` times
    /// in all ([`nexts_entered`](Self::nexts_entered)); whether it was. The barrier a cancel
    /// race needs: once a NextEx is counted, an End on another thread finds it inside the
    /// provider's code and must complete it with `WSA_E_CANCELLED`.
    pub fn wait_nexts_entered(&self, n: usize, timeout: Duration) -> bool {
        self.probe.wait(timeout, |entered| entered >= n)
    }

    /// Waits up to `timeout` until `n` NextEx calls of `lookup` wait for the lookup's turn
    /// (another call of the lookup runs): registered with the lookup, so that an End now
    /// completes each with `WSA_E_CANCELLED`. Whether they did.
    pub fn wait_waiting_nexts(&self, lookup: LookupHandle, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.registry.waiting_nexts(lookup.0).unwrap_or(0) >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
    }

    /// Another provider advertised in the same process as this one (one routine table serves
    /// both, routing by provider id), under a fresh id: for the rules about values of one
    /// provider passed to another.
    pub fn advertise_beside<P: NamespaceProvider>(&self, provider: P) -> Self {
        let id = fresh_id();
        let (registry, recorded) = (Arc::clone(&self.registry), Arc::clone(&self.recorded));
        Self::advertise_in(registry, recorded, id, provider).expect("a fresh id is free")
    }

    /// Like [`advertise`](Self::advertise) with a fresh random-looking id.
    pub fn advertise_new<P: NamespaceProvider>(provider: P) -> Self {
        Self::advertise(fresh_id(), provider).expect("a fresh id is free")
    }

    /// The provider id.
    pub fn id(&self) -> Guid {
        self.id
    }

    /// Live lookups and open sessions.
    pub fn stats(&self) -> Stats {
        self.registry.stats(&self.id).unwrap_or_default()
    }

    /// Completions this host received for `hAsyncCall` values it never issued (should be 0).
    pub fn stray_completions(&self) -> usize {
        recorder(&self.recorded).stray
    }

    /// Plays `WSAUnadvertiseProvider` while calls may be running: the provider's sessions
    /// close and its running lookups are cancelled; later calls find no such provider.
    pub fn withdraw(&self) {
        if !self.withdrawn.swap(true, Ordering::SeqCst) {
            self.registry.unregister(self.id);
            let lookups = self.lookups_of(|_| true);
            lookups_ended(&self.recorded, "the withdrawal", |l| lookups.contains(&l));
        }
    }

    /// Forgets the lookups begun through this host in the sessions `session` selects, and
    /// returns them.
    fn lookups_of(&self, session: impl Fn(SessionArg) -> bool) -> Vec<usize> {
        let mut lookups = self.lookups.lock().unwrap_or_else(|p| p.into_inner());
        let ended: Vec<usize> = lookups
            .iter()
            .filter(|&(_, &s)| session(s))
            .map(|(&l, _)| l)
            .collect();
        for lookup in &ended {
            lookups.remove(lookup);
        }
        ended
    }

    /// NextEx calls of `lookup` that are in flight and not completed yet.
    pub fn uncompleted_nexts(&self, lookup: LookupHandle) -> usize {
        recorder(&self.recorded)
            .calls
            .values()
            .filter(|c| c.lookup == Some(lookup.0) && c.codes.is_empty())
            .count()
    }

    /// `NSPv2Startup`.
    pub fn startup(&self) -> Result<SessionArg, WsaError> {
        let mut out: *mut c_void = std::ptr::null_mut();
        // SAFETY: valid GUID and out-pointer for the call.
        let rc = unsafe { exports::startup(&self.registry, &self.id, &mut out) };
        int_status(rc)?;
        let session = SessionArg(out.addr());
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(session);
        Ok(session)
    }

    fn session_closed(&self, session: SessionArg) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|&open| open != session);
    }

    /// What this host left unfinished, one line each: sessions never cleaned up, lookups
    /// never ended (with their session), NextEx and SetServiceEx calls still running (with
    /// their `hAsyncCall` and lookup).
    pub fn leftovers(&self) -> Vec<String> {
        let mut left: Vec<String> = self
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|session| {
                format!(
                    "session {:#x}: never cleaned up (NSPv2Cleanup) nor run down",
                    session.0
                )
            })
            .collect();
        let mut lookups: Vec<(usize, SessionArg)> = self
            .lookups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(&lookup, &session)| (lookup, session))
            .collect();
        lookups.sort_unstable_by_key(|&(lookup, _)| lookup);
        left.extend(lookups.into_iter().map(|(lookup, session)| {
            format!(
                "lookup {lookup:#x} of session {:#x}: never ended (NSPv2LookupServiceEnd)",
                session.0
            )
        }));
        let recorder = recorder(&self.recorded);
        let mut running: Vec<(&usize, &CallRecord)> = recorder.calls.iter().collect();
        running.sort_unstable_by_key(|&(id, _)| *id);
        left.extend(running.into_iter().map(|(id, call)| match call.lookup {
            Some(lookup) => format!(
                "NSPv2LookupServiceNextEx hAsyncCall {id:#x} of lookup {lookup:#x}: still running"
            ),
            None => format!("NSPv2SetServiceEx hAsyncCall {id:#x}: still running"),
        }));
        left
    }

    /// Checks the end state of a run: no session, lookup or call left, here
    /// ([`leftovers`](Self::leftovers), named in the failure) nor in the provider's registry
    /// ([`stats`](Self::stats)).
    #[track_caller]
    pub fn assert_idle(&self) {
        let stats = self.stats();
        let left = self.leftovers();
        assert!(
            stats.live_lookups == 0 && stats.open_sessions == 0 && left.is_empty(),
            "left unfinished ({stats:?}):\n{}",
            left.join("\n")
        );
    }

    /// `NSPv2Cleanup`.
    pub fn cleanup(&self, session: SessionArg) -> Result<(), WsaError> {
        let arg = std::ptr::without_provenance(session.0);
        // SAFETY: a valid GUID; the session value is passed back as an opaque pointer.
        let status = int_status(unsafe { exports::cleanup(&self.registry, &self.id, arg) });
        if status.is_ok() {
            self.session_closed(session);
            let lookups = self.lookups_of(|s| s == session);
            lookups_ended(&self.recorded, "NSPv2Cleanup", |l| lookups.contains(&l));
        }
        status
    }

    /// `NSPv2ClientSessionRundown`.
    pub fn rundown(&self, session: SessionArg) {
        let arg = std::ptr::without_provenance(session.0);
        // SAFETY: as for cleanup.
        unsafe { exports::client_session_rundown(&self.registry, &self.id, arg) };
        self.session_closed(session);
        let lookups = self.lookups_of(|s| s == session);
        lookups_ended(&self.recorded, "NSPv2ClientSessionRundown", |l| {
            lookups.contains(&l)
        });
    }

    /// `NSPv2LookupServiceBegin` for `query`. A lookup Winsock would not route to the provider ([`install`](Self::install)) fails
    /// with `WSASERVICE_NOT_FOUND` without the provider being asked.
    pub fn begin(
        &self,
        session: SessionArg,
        query: &Query,
        flags: ControlFlags,
    ) -> Result<LookupHandle, WsaError> {
        if !self.routes(query) {
            return Err(WsaError::WSASERVICE_NOT_FOUND);
        }
        self.begin_raw(session, Some(&RawQuerySet::query(query)), flags)
    }

    /// `NSPv2LookupServiceBegin` with a raw restriction (`None` = NULL).
    pub fn begin_raw(
        &self,
        session: SessionArg,
        restrictions: Option<&RawQuerySet>,
        flags: ControlFlags,
    ) -> Result<LookupHandle, WsaError> {
        let mut handle = HANDLE::default();
        let qs = restrictions.map_or(std::ptr::null(), RawQuerySet::as_ptr);
        // SAFETY: the set's memory is valid for the call; valid out-pointer.
        let rc = unsafe {
            exports::lookup_service_begin(
                &self.registry,
                &self.id,
                qs,
                flags.bits(),
                std::ptr::without_provenance(session.0),
                &mut handle,
            )
        };
        int_status(rc)?;
        let lookup = LookupHandle(handle.0.addr());
        self.lookups
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(lookup.0, session);
        Ok(lookup)
    }

    /// `NSPv2LookupServiceNextEx` with an aligned buffer of `len` bytes.
    pub fn next(&self, lookup: LookupHandle, flags: ControlFlags, len: u32) -> Next {
        self.next_with(lookup, flags, Buffer::Len(len))
    }

    /// The size probe and the retry a client makes: NextEx with a NULL buffer, then with the
    /// size it asked for. Returns the final call.
    pub fn next_sized(&self, lookup: LookupHandle, flags: ControlFlags) -> Next {
        let probe = self.next(lookup, flags, 0);
        if probe.code == WsaError::WSAEFAULT.raw() {
            self.next(lookup, flags, probe.buffer_length)
        } else {
            probe
        }
    }

    /// `NSPv2LookupServiceNextEx` with the buffer passed as `buffer` says, checking R-NSP-2,
    /// -4, -5, -8 and -15 on the way.
    pub fn next_with(&self, lookup: LookupHandle, flags: ControlFlags, buffer: Buffer) -> Next {
        let call = AsyncCall::new(&self.recorded, Some(lookup));
        let (given, offset, null_length, null_data) = match buffer {
            Buffer::Len(len) => (len, 0, false, len == 0),
            Buffer::NullLength => (0, 0, true, true),
            Buffer::NullData(len) => (len, 0, false, true),
            Buffer::Misaligned(len) => (len, 4, false, false),
        };
        let total = offset + given as usize + GUARD;
        let mut words = vec![0u64; total.div_ceil(8)];
        let mut length = given;
        // Fill the whole allocation with the canary through a byte view built in safe code.
        for word in &mut words {
            *word = u64::from_ne_bytes([CANARY; 8]);
        }
        let base = words.as_mut_ptr().cast::<u8>();
        let data = if null_data {
            std::ptr::null_mut()
        } else {
            base.wrapping_add(offset)
        };
        let length_ptr: *const u32 = if null_length {
            std::ptr::null()
        } else {
            &mut length
        };
        // SAFETY: `data` has `given` writable bytes (plus the guard) and `length` is valid, both
        // for the duration of the call.
        unsafe {
            exports::lookup_service_next_ex(
                &self.registry,
                call.handle(),
                HANDLE(std::ptr::without_provenance_mut(lookup.0)),
                flags.bits(),
                length_ptr,
                data.cast(),
            )
        };
        let code = call.finish("NSPv2LookupServiceNextEx");
        let last = crate::abi::last_error();
        assert_eq!(
            last, code,
            "NextEx must leave its completion code as the last error"
        );
        assert_ne!(
            code,
            WsaError::WSAECANCELLED.raw(),
            "R-NSP-2 violated: WSAECANCELLED instead of WSA_E_CANCELLED"
        );
        assert_ne!(
            code,
            WsaError::WSAENOMORE.raw(),
            "R-NSP-4 violated: WSAENOMORE instead of WSA_E_NO_MORE"
        );
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        if !null_data {
            let after = &bytes[offset + given as usize..];
            assert!(
                after.iter().all(|&b| b == CANARY),
                "the provider wrote past the {given} bytes it was given"
            );
        }
        let mut result = None;
        if code == 0 {
            let region = &bytes[offset..offset + given as usize];
            match wire::decode(region, data.addr()) {
                Ok(decoded) => result = Some(decoded),
                Err(error) => panic!("R-NSP-8 violated: {error}"),
            }
        } else if code == WsaError::WSAEFAULT.raw() && !null_length {
            assert!(
                length > given || matches!(buffer, Buffer::NullData(_) | Buffer::Misaligned(_)),
                "R-NSP-5 violated: WSAEFAULT with lpdwBufferLength {length}, not more than {given}"
            );
        }
        Next {
            code,
            buffer_length: length,
            result,
        }
    }

    /// `NSPv2LookupServiceEnd`. On success, each NextEx of the lookup in flight must have been
    /// completed exactly once when it returns (R-NSP-15); one not completed yet had not reached
    /// the lookup (End could not see it), and must then find the handle released:
    /// `WSA_INVALID_HANDLE`, checked when it returns (R-NSP-2, R-NSP-3). Tests that know a call
    /// is inside the framework check [`uncompleted_nexts`](Self::uncompleted_nexts) is 0.
    pub fn end(&self, lookup: LookupHandle) -> Result<(), WsaError> {
        let handle = HANDLE(std::ptr::without_provenance_mut(lookup.0));
        // SAFETY: the handle is passed by value.
        let status = int_status(unsafe { exports::lookup_service_end(&self.registry, handle) });
        if status.is_ok() {
            self.lookups
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&lookup.0);
            lookups_ended(&self.recorded, "NSPv2LookupServiceEnd", |l| l == lookup.0);
        }
        status
    }

    /// `NSPv2SetServiceEx`; returns the completion code.
    pub fn set_service(
        &self,
        session: SessionArg,
        reg: &RegInfo,
        operation: SetServiceOp,
    ) -> Result<(), WsaError> {
        let (op, flags) = match operation {
            SetServiceOp::Register { multiple } => (0, u32::from(multiple)),
            SetServiceOp::Deregister => (1, 0),
            SetServiceOp::Delete => (2, 0),
        };
        self.set_service_raw(session, Some(&RawQuerySet::reg_info(reg)), op, flags)
    }

    /// `NSPv2SetServiceEx` with raw arguments.
    pub fn set_service_raw(
        &self,
        session: SessionArg,
        reg: Option<&RawQuerySet>,
        operation: i32,
        flags: u32,
    ) -> Result<(), WsaError> {
        let call = AsyncCall::new(&self.recorded, None);
        let qs = reg.map_or(std::ptr::null(), RawQuerySet::as_ptr);
        // SAFETY: the set's memory and the GUID are valid for the call.
        unsafe {
            exports::set_service_ex(
                &self.registry,
                call.handle(),
                &self.id,
                qs,
                WSAESETSERVICEOP(operation),
                flags,
                std::ptr::without_provenance(session.0),
            )
        };
        match call.finish("NSPv2SetServiceEx") {
            0 => Ok(()),
            code => Err(WsaError::from_raw(code)),
        }
    }

    /// `NSPv2LookupServiceNextEx` into `buffer` with a NULL `hAsyncCall` (nothing is completed
    /// or recorded: the bare call path, for benchmarks). Returns the last error and
    /// `*lpdwBufferLength` after the call. `buffer` should start at a multiple of
    /// [`wire::BUFFER_ALIGN`] (otherwise the call fails with `WSAEFAULT`).
    pub fn next_into(
        &self,
        lookup: LookupHandle,
        flags: ControlFlags,
        buffer: &mut [u8],
    ) -> (i32, u32) {
        let mut length = u32::try_from(buffer.len()).expect("a buffer under 4 GiB");
        let length_ptr: *mut u32 = &mut length;
        // SAFETY: `length` is valid for reads and writes and `buffer` writable for `length`
        // bytes, both for the duration of the call, which is synchronous.
        unsafe {
            exports::lookup_service_next_ex(
                &self.registry,
                HANDLE::default(),
                HANDLE(std::ptr::without_provenance_mut(lookup.0)),
                flags.bits(),
                length_ptr.cast_const(),
                buffer.as_mut_ptr().cast(),
            )
        };
        (crate::abi::last_error(), length)
    }

    /// `NSPv2LookupServiceNextEx` with a NULL `hAsyncCall`: nothing can be completed; returns
    /// the last error.
    pub fn next_without_async_call(&self, lookup: LookupHandle) -> i32 {
        let length = 0u32;
        let before = self.stray_completions();
        // SAFETY: valid length pointer; NULL buffer with zero length.
        unsafe {
            exports::lookup_service_next_ex(
                &self.registry,
                HANDLE::default(),
                HANDLE(std::ptr::without_provenance_mut(lookup.0)),
                0,
                &length,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(
            self.stray_completions(),
            before,
            "completed a NULL hAsyncCall"
        );
        crate::abi::last_error()
    }
}

impl Drop for Host {
    /// Withdraws the provider (as dropping an advertisement does): its sessions close.
    fn drop(&mut self) {
        self.withdraw();
    }
}

/// A provider id no other simulated host of the process uses.
fn fresh_id() -> Guid {
    static SEQUENCE: AtomicUsize = AtomicUsize::new(1);
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed) as u128;
    Guid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 | n)
}

fn int_status(rc: i32) -> Result<(), WsaError> {
    match rc {
        0 => Ok(()),
        SOCKET_ERROR => Err(WsaError::from_raw(crate::abi::last_error())),
        other => panic!("an INT entry returned {other}, neither NO_ERROR nor SOCKET_ERROR"),
    }
}

/// Runs the lookup rules that hold for any provider against the one behind `host`, given a
/// `query` it answers with at least one result:
///
/// - a size probe gets `WSAEFAULT` and the needed size, and the retry gets the result (R-NSP-5);
/// - results decode with every pointer inside the buffer (R-NSP-8);
/// - `LUP_RETURN_*` bits absent at Begin never come back (R-NSP-7);
/// - the lookup ends with `WSA_E_NO_MORE`, and stays there (R-NSP-4);
/// - End then NextEx or End again give `WSA_INVALID_HANDLE` (R-NSP-3);
/// - a forged handle gives `WSA_INVALID_HANDLE`;
/// - End on another thread while NextEx runs finishes that NextEx with a result or
///   `WSA_E_CANCELLED`, exactly once (R-NSP-2, R-NSP-15);
/// - every lookup is freed (live lookups back to where they were).
///
/// Panics with the rule's ID on a violation.
pub fn conformance(host: &Host, query: &Query) {
    let before = host.stats().live_lookups;
    let session = host.startup().expect("NSPv2Startup");
    let all = ControlFlags::RETURN_ALL;

    let lookup = host.begin(session, query, all).expect("Begin");
    let probe = host.next(lookup, all, 0);
    assert_eq!(
        probe.status(),
        Err(WsaError::WSAEFAULT),
        "R-NSP-5: a size probe must get WSAEFAULT"
    );
    let first = host.next(lookup, all, probe.buffer_length);
    assert_eq!(
        first.status(),
        Ok(()),
        "R-NSP-5: the retry with the size must succeed"
    );
    let mut seen = 1;
    loop {
        let next = host.next_sized(lookup, all);
        match next.status() {
            Ok(()) => seen += 1,
            Err(WsaError::WSA_E_NO_MORE) => break,
            Err(other) => panic!("unexpected {other} after {seen} results"),
        }
        assert!(seen < 1_000_000, "the lookup never ends");
    }
    assert_eq!(
        host.next_sized(lookup, all).status(),
        Err(WsaError::WSA_E_NO_MORE),
        "R-NSP-4: stays at WSA_E_NO_MORE"
    );
    host.end(lookup).expect("End");
    assert_eq!(
        host.next(lookup, all, 4096).status(),
        Err(WsaError::WSA_INVALID_HANDLE),
        "R-NSP-3: NextEx after End"
    );
    assert_eq!(
        host.end(lookup),
        Err(WsaError::WSA_INVALID_HANDLE),
        "R-NSP-3: End after End"
    );
    assert_eq!(
        host.next(LookupHandle(lookup.0 ^ 0x5a5a_0000), all, 4096)
            .status(),
        Err(WsaError::WSA_INVALID_HANDLE),
        "forged handle"
    );

    let narrow = ControlFlags::RETURN_NAME;
    let lookup = host.begin(session, query, narrow).expect("Begin");
    let next = host.next_sized(lookup, all);
    if let Some(decoded) = &next.result {
        let r = &decoded.result;
        assert!(
            r.comment.is_none() && r.addresses.is_empty() && r.blob.is_none(),
            "R-NSP-7: fields not asked at Begin came back"
        );
    }
    host.end(lookup).expect("End");

    for _ in 0..32 {
        let lookup = host.begin(session, query, all).expect("Begin");
        std::thread::scope(|s| {
            let next = s.spawn(|| host.next(lookup, all, 64 * 1024));
            s.spawn(|| host.end(lookup).expect("End"));
            let next = next.join().expect("NextEx thread");
            assert!(
                matches!(
                    next.status(),
                    Ok(()) | Err(WsaError::WSA_E_CANCELLED) | Err(WsaError::WSA_INVALID_HANDLE)
                ),
                "R-NSP-2: NextEx racing End finished with {:?}",
                next.status()
            );
        });
    }
    host.cleanup(session).expect("Cleanup");
    assert_eq!(
        host.stats().live_lookups,
        before,
        "lookups still alive after their End"
    );
}

// ---------------------------------------------------------------------------------------------
// The probe: where a test meets the provider's code.

/// The count of the provider's `next` calls entered, with a condition variable to wait on.
#[derive(Debug, Default)]
struct Probe {
    nexts: Mutex<usize>,
    changed: Condvar,
}

impl Probe {
    fn lock(&self) -> MutexGuard<'_, usize> {
        self.nexts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enter_next(&self) {
        *self.lock() += 1;
        self.changed.notify_all();
    }

    fn wait(&self, timeout: Duration, done: impl Fn(usize) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut entered = self.lock();
        while !done(*entered) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            entered = self
                .changed
                .wait_timeout(entered, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

/// The provider as the host advertises it: every call passed on unchanged; `next` counted in
/// the probe first.
struct Probed<P> {
    provider: P,
    probe: Arc<Probe>,
}

/// A lookup of a [`Probed`] provider.
struct ProbedLookup<L> {
    lookup: L,
    probe: Arc<Probe>,
}

impl<P: NamespaceProvider> NamespaceProvider for Probed<P> {
    type Session = P::Session;
    type Lookup = ProbedLookup<P::Lookup>;
    const NAMESPACE: u32 = P::NAMESPACE;
    const SUPPORTS_CONTAINERS: bool = P::SUPPORTS_CONTAINERS;

    fn first_startup(&self) -> Result<(), WsaError> {
        self.provider.first_startup()
    }

    fn startup(&self) -> Result<Self::Session, WsaError> {
        self.provider.startup()
    }

    fn lookup_begin(
        &self,
        session: &Self::Session,
        query: &Query,
        flags: ControlFlags,
    ) -> Result<Self::Lookup, WsaError> {
        let lookup = self.provider.lookup_begin(session, query, flags)?;
        Ok(ProbedLookup {
            lookup,
            probe: Arc::clone(&self.probe),
        })
    }

    fn set_service<'call>(
        &self,
        session: &Self::Session,
        call: SetServiceCall<'call>,
    ) -> Completed<'call> {
        self.provider.set_service(session, call)
    }

    fn client_session_rundown(&self, session: &Self::Session) {
        self.provider.client_session_rundown(session);
    }

    fn final_cleanup(&self) {
        self.provider.final_cleanup();
    }
}

impl<L: Lookup> Lookup for ProbedLookup<L> {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        self.probe.enter_next();
        self.lookup.next(call)
    }
}
