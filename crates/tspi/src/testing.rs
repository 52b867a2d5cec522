//! A host simulator: plays TAPISRV against any [`ServiceProvider`], through the same export
//! bodies the generated `TSPI_*` functions call, with real `ASYNC_COMPLETION` / `LINEEVENT`
//! function pointers, and checks the interface's rules as it goes.
//!
//! ```
//! # use winprov_tspi::{Call, Line, LineCaps, LineEvents, LineIndex, LineErr, MakeCall, Completed,
//! #     Request, ServiceProvider};
//! # struct Echo; struct EchoLine; struct EchoCall;
//! # impl ServiceProvider for Echo {
//! #     type Line = EchoLine;
//! #     const NAME: &'static str = "Echo";
//! #     fn line_count(&self) -> u32 { 1 }
//! #     fn line_caps(&self, _: LineIndex) -> LineCaps { LineCaps::voice("Echo line") }
//! #     fn open(&self, _: LineIndex, _: LineEvents<Self>) -> Result<EchoLine, LineErr> {
//! #         Ok(EchoLine) }
//! # }
//! # impl Line for EchoLine {
//! #     type Call = EchoCall;
//! #     fn make_call<'call>(&mut self, request: MakeCall<'call, EchoCall>) -> Completed<'call> {
//! #         let (pending, reply) = request.accept(EchoCall);
//! #         let _ = pending.succeed();
//! #         reply
//! #     }
//! # }
//! # impl Call for EchoCall {
//! #     fn drop_call<'call>(&mut self, request: Request<'call>, _: &[u8]) -> Completed<'call> {
//! #         request.complete(Ok(()))
//! #     }
//! # }
//! use winprov_tspi::testing::Host;
//!
//! let host = Host::new(Echo);
//! host.start().unwrap();
//! let line = host.open(0).unwrap();
//! let call = host.make_call(line, Some("5551234"));
//! assert_eq!(host.completion(call.request), Some(Ok(())));
//! let dropped = host.drop_call(call.value.unwrap());
//! assert_eq!(dropped.result(), Ok(()), "accepted: the export returned the request id");
//! assert_eq!(host.close_call(call.value.unwrap()), Ok(()));
//! host.assert_clean();
//! ```
//!
//! Callbacks that break a rule are logged as violations ([`Host::assert_clean`]). The
//! guarantees a close gives *before it returns* are checked at its return: when
//! `TSPI_lineCloseCall` or `TSPI_lineClose` returns, every request of the call (or of the line
//! and its calls) whose export returned its id must have been completed — the host panics with
//! the rule's ID (R-TSP-7, R-TSP-8, R-TSP-13) otherwise.
//!
//! Several hosts may run at once (tests run in parallel): each stamps its request ids and TAPI
//! handles with its own number, which routes the callbacks back to it.

pub mod registry;

use crate::abi::exports;
use crate::flags::{CallFeatures, CallStates};
use crate::provider::{ServiceProvider, Version};
use crate::runtime::{Runtime, Stats};
pub use crate::var::{read_dword, read_string};
use std::collections::{HashMap, HashSet};
use std::mem::offset_of;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use winprov_bindings::not_in_metadata::{INITIALIZE_NEGOTIATION, LINE_NEWCALL};
use winprov_bindings::tapi::{
    self, HDRVCALL, HDRVLINE, HPROVIDER, HTAPICALL, HTAPILINE, LINECALLINFO, LINECALLSTATUS,
    LINEDEVCAPS,
};
use winprov_bindings::windows_core::{PCSTR, PCWSTR};
use winprov_core::LineErr;

/// A TSPI function's `LONG`: 0 is success, anything else the `LINEERR_*` (kept raw).
fn status(ret: i32) -> Result<(), LineErr> {
    if ret == 0 {
        Ok(())
    } else {
        Err(LineErr::from_raw(ret))
    }
}

/// One callback the provider made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// `ASYNC_COMPLETION(dwRequestID, lResult)`.
    Completion {
        /// `dwRequestID`.
        request: u32,
        /// `lResult`.
        result: i32,
    },
    /// `LINEEVENT(htLine, htCall, dwMsg, dwParam1, dwParam2, dwParam3)`.
    Event {
        /// `htLine`.
        ht_line: usize,
        /// `htCall`.
        ht_call: usize,
        /// `dwMsg`.
        msg: u32,
        /// `dwParam1` … `dwParam3` (for `LINE_NEWCALL`, `dwParam2` is the handle this host
        /// stored, not the pointer).
        params: [usize; 3],
    },
}

/// How this host answers `LINE_NEWCALL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewCallAnswer {
    /// Stores a fresh `HTAPICALL` (TAPI's normal behaviour).
    Accept,
    /// Stores NULL (TAPI under load, R-TSP-14).
    Null,
}

/// An open line, as this host knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LineRef {
    /// The provider's `HDRVLINE`.
    pub hd: usize,
    /// This host's `HTAPILINE`.
    pub ht: usize,
    /// The line's index within the provider.
    pub index: u32,
}

/// A call, as this host knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallRef {
    /// The provider's `HDRVCALL`.
    pub hd: usize,
    /// This host's `HTAPICALL`.
    pub ht: usize,
}

/// What an asynchronous export returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Async<T> {
    /// The `dwRequestID` this host passed.
    pub request: u32,
    /// What the export returned (`request` or a negative `LINEERR_*`).
    pub ret: i32,
    /// What else the call produced (the new call of `TSPI_lineMakeCall`).
    pub value: T,
}

impl<T> Async<T> {
    /// Whether the export accepted the request (returned its id).
    pub fn accepted(&self) -> bool {
        self.ret > 0
    }

    /// The export's answer: `Ok` when it returned the request's id, else its `LINEERR_*` (raw
    /// in [`ret`](Self::ret)).
    pub fn result(&self) -> Result<(), LineErr> {
        if self.ret == self.request as i32 {
            Ok(())
        } else {
            Err(LineErr::from_raw(self.ret))
        }
    }
}

/// `LINECALLSTATUS`, read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallStatus {
    /// `dwCallState`.
    pub state: CallStates,
    /// `dwCallStateMode`.
    pub mode: u32,
    /// `dwCallFeatures`.
    pub features: CallFeatures,
}

#[derive(Default)]
struct Log {
    messages: Vec<Message>,
    /// Requests this host issued, with the export's return once known.
    issued: HashMap<u32, Option<i32>>,
    completions: HashMap<u32, Vec<i32>>,
    /// Outbound calls: `HTAPICALL` → the creating request.
    created_by: HashMap<usize, u32>,
    /// Every call: `HTAPICALL` → its line's `HTAPILINE`.
    call_line: HashMap<usize, usize>,
    /// Every request: its line's `HTAPILINE` and, for a call's request (the creating one
    /// included), the call's `HTAPICALL`.
    request_of: HashMap<u32, (usize, Option<usize>)>,
    /// Inbound calls offered: (`HDRVCALL`, `HTAPICALL`), in order.
    offered: Vec<(usize, usize)>,
    /// `HTAPICALL`s whose `LINE_NEWCALL` was answered and whose `LINE_CALLSTATE` is due.
    awaiting_first_state: HashSet<usize>,
    closed_calls: HashSet<usize>,
    closed_lines: HashSet<usize>,
    /// Lines opened and not (successfully) closed.
    open_lines: Vec<LineRef>,
    /// The export each request was issued to.
    kinds: HashMap<u32, &'static str>,
    /// Accepted outbound calls: `HTAPICALL` → `HDRVCALL`.
    call_hd: HashMap<usize, usize>,
    violations: Vec<String>,
}

impl Log {
    /// The requests `of(line, call)` selects whose export returned their id and that are not
    /// completed. (A request whose export has not returned yet is not counted: when it was
    /// accepted after a close took its call or line, it is completed before its export returns.)
    fn unfinished(&self, of: impl Fn(usize, Option<usize>) -> bool) -> Vec<u32> {
        let mut unfinished: Vec<u32> = self
            .request_of
            .iter()
            .filter(|&(request, &(line, call))| {
                of(line, call)
                    && matches!(self.issued.get(request), Some(Some(ret)) if *ret > 0)
                    && !self.completions.contains_key(request)
            })
            .map(|(&request, _)| request)
            .collect();
        unfinished.sort_unstable();
        unfinished
    }
}

struct Record {
    log: Mutex<Log>,
    changed: Condvar,
    inside: AtomicBool,
    new_call: Mutex<NewCallAnswer>,
    next_ht: AtomicUsize,
    host: usize,
}

impl Record {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn enter(&self) {
        let overlapping = self.inside.swap(true, Ordering::SeqCst);
        // Widens the window in which an overlapping callback would be seen.
        std::thread::yield_now();
        if overlapping {
            self.log()
                .violations
                .push("R-TSP-5: a callback into TAPI started while another was running".into());
        }
    }

    fn leave(&self) {
        self.inside.store(false, Ordering::SeqCst);
        self.changed.notify_all();
    }

    fn completion(&self, request: u32, result: i32) {
        let mut log = self.log();
        log.messages.push(Message::Completion { request, result });
        match log.issued.get(&request).copied() {
            None => log.violations.push(format!(
                "R-TSP-4: completion of request {request:#x}, never issued"
            )),
            Some(Some(ret)) if ret < 0 => log.violations.push(format!(
                "R-TSP-4: completion of request {request:#x}, whose export returned {ret:#x}"
            )),
            _ => {}
        }
        let done = log.completions.entry(request).or_default();
        done.push(result);
        let times = done.len();
        if times > 1 {
            log.violations.push(format!(
                "R-TSP-4: request {request:#x} completed {times} times"
            ));
        }
        if result > 0 {
            log.violations.push(format!(
                "R-TSP-4: request {request:#x} completed with {result:#x}, neither 0 nor a LINEERR"
            ));
        }
    }

    fn event(&self, ht_line: usize, ht_call: usize, msg: u32, params: [usize; 3]) {
        let mut log = self.log();
        log.messages.push(Message::Event {
            ht_line,
            ht_call,
            msg,
            params,
        });
        if log.closed_lines.contains(&ht_line) {
            log.violations.push(format!(
                "R-TSP-13: event {msg} for line {ht_line:#x} after TSPI_lineClose returned"
            ));
        }
        if ht_call != 0 && log.closed_calls.contains(&ht_call) {
            log.violations.push(format!(
                "R-TSP-9: event {msg} for call {ht_call:#x} after TSPI_lineCloseCall returned"
            ));
        }
        if msg == tapi::LINE_CALLSTATE as u32 {
            if ht_call == 0 {
                log.violations
                    .push("R-TSP-14: LINE_CALLSTATE with a NULL htCall".into());
            }
            if let Some(&request) = log.created_by.get(&ht_call) {
                let succeeded = log
                    .completions
                    .get(&request)
                    .is_some_and(|results| results.first() == Some(&0));
                if !succeeded {
                    log.violations.push(format!(
                        "R-TSP-6: event for call {ht_call:#x} before its TSPI_lineMakeCall \
                         (request {request:#x}) completed successfully"
                    ));
                }
            }
            if log.awaiting_first_state.remove(&ht_call)
                && params[0] != tapi::LINECALLSTATE_OFFERING as usize
                && params[0] != tapi::LINECALLSTATE_ACCEPTED as usize
            {
                log.violations.push(format!(
                    "R-TSP-14: the first state of inbound call {ht_call:#x} is {:#x}",
                    params[0]
                ));
            }
        }
    }

    fn new_call(&self, ht_line: usize, hd_call: usize) -> usize {
        let answer = *self
            .new_call
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let ht_call = match answer {
            NewCallAnswer::Accept => self.fresh_ht(2),
            NewCallAnswer::Null => 0,
        };
        let mut log = self.log();
        log.messages.push(Message::Event {
            ht_line,
            ht_call: 0,
            msg: LINE_NEWCALL,
            params: [hd_call, ht_call, 0],
        });
        if log.closed_lines.contains(&ht_line) {
            log.violations.push(format!(
                "R-TSP-13: LINE_NEWCALL for line {ht_line:#x} after TSPI_lineClose returned"
            ));
        }
        log.offered.push((hd_call, ht_call));
        log.call_line.insert(ht_call, ht_line);
        if ht_call != 0 {
            log.awaiting_first_state.insert(ht_call);
        }
        ht_call
    }

    fn fresh_ht(&self, kind: usize) -> usize {
        let n = self.next_ht.fetch_add(1, Ordering::Relaxed);
        (self.host << 48) | (kind << 40) | n
    }
}

/// The records of the hosts alive, by host number (1..=127).
static HOSTS: Mutex<Vec<Option<Arc<Record>>>> = Mutex::new(Vec::new());

fn hosts() -> MutexGuard<'static, Vec<Option<Arc<Record>>>> {
    HOSTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn record(host: usize) -> Option<Arc<Record>> {
    hosts().get(host).cloned().flatten()
}

unsafe extern "system" fn completion_proc(request: u32, result: i32) {
    if let Some(record) = record(((request >> 24) & 0x7F) as usize) {
        record.enter();
        record.completion(request, result);
        record.leave();
    }
}

unsafe extern "system" fn event_proc(
    ht_line: HTAPILINE,
    ht_call: HTAPICALL,
    msg: u32,
    param1: usize,
    param2: usize,
    param3: usize,
) {
    let ht_line = ht_line.0 as usize;
    let Some(record) = record((ht_line >> 48) & 0x7F) else {
        return;
    };
    record.enter();
    if msg == LINE_NEWCALL {
        let value = record.new_call(ht_line, param1);
        let slot = param2 as *mut HTAPICALL;
        if !slot.is_null() {
            // SAFETY: LINE_NEWCALL's dwParam2 is the provider's LPHTAPICALL, writable for the
            // duration of the callback.
            unsafe { slot.write(HTAPICALL(std::ptr::without_provenance_mut(value))) };
        }
    } else {
        record.event(ht_line, ht_call.0 as usize, msg, [param1, param2, param3]);
    }
    record.leave();
}

/// Plays TAPISRV. See the module documentation.
pub struct Host<P: ServiceProvider> {
    runtime: &'static Runtime<P>,
    record: Arc<Record>,
    host: usize,
    next_request: AtomicU32,
    provider_id: u32,
    line_base: u32,
    /// Open lines: `HDRVLINE` → `HTAPILINE`.
    lines: Mutex<HashMap<usize, usize>>,
}

impl<P: ServiceProvider> std::fmt::Debug for Host<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("host", &self.host)
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

impl<P: ServiceProvider> Drop for Host<P> {
    fn drop(&mut self) {
        if let Some(slot) = hosts().get_mut(self.host) {
            *slot = None;
        }
    }
}

impl<P: ServiceProvider> Host<P> {
    /// A host for a new runtime around `provider`.
    pub fn new(provider: P) -> Self {
        Self::with_runtime(Runtime::leak(provider))
    }

    /// A host for `runtime` (e.g. the one behind a crate's generated exports).
    pub fn with_runtime(runtime: &'static Runtime<P>) -> Self {
        let mut table = hosts();
        if table.is_empty() {
            table.resize(128, None);
        }
        let host = (1..128)
            .find(|&n| table[n].is_none())
            .expect("at most 127 simulated hosts at once");
        let record = Arc::new(Record {
            log: Mutex::new(Log::default()),
            changed: Condvar::new(),
            inside: AtomicBool::new(false),
            new_call: Mutex::new(NewCallAnswer::Accept),
            next_ht: AtomicUsize::new(1),
            host,
        });
        table[host] = Some(Arc::clone(&record));
        drop(table);
        Self {
            runtime,
            record,
            host,
            next_request: AtomicU32::new(1),
            provider_id: 7,
            line_base: 100,
            lines: Mutex::new(HashMap::new()),
        }
    }

    /// The runtime driven.
    pub fn runtime(&self) -> &'static Runtime<P> {
        self.runtime
    }

    /// The runtime's live objects.
    pub fn stats(&self) -> Stats {
        self.runtime.stats()
    }

    /// TAPI's device id of line `index` (this host initializes with a base of 100).
    pub fn device(&self, index: u32) -> u32 {
        self.line_base + index
    }

    /// A fresh `dwRequestID` (stamped with this host's number).
    pub fn request_id(&self) -> u32 {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed) & 0x00FF_FFFF;
        let id = ((self.host as u32) << 24) | n.max(1);
        self.record.log().issued.insert(id, None);
        id
    }

    /// A fresh request id for `export`.
    fn issue(&self, export: &'static str) -> u32 {
        let request = self.request_id();
        self.record.log().kinds.insert(request, export);
        request
    }

    fn returned(&self, request: u32, ret: i32) {
        let mut log = self.record.log();
        log.issued.insert(request, Some(ret));
        if ret >= 0 && ret != request as i32 {
            log.violations.push(format!(
                "R-TSP-3: an export given request {request:#x} returned {ret:#x}"
            ));
        }
        if ret < 0 && log.completions.contains_key(&request) {
            log.violations.push(format!(
                "R-TSP-4: request {request:#x} was completed but its export returned {ret:#x}"
            ));
        }
        drop(log);
        self.record.changed.notify_all();
    }

    /// `TSPI_lineNegotiateTSPIVersion`.
    pub fn negotiate(&self, device: u32, low: u32, high: u32) -> Result<u32, LineErr> {
        let mut version = 0xDEAD_BEEF;
        // SAFETY: a valid out pointer.
        let ret = unsafe {
            exports::line_negotiate_tspi_version(self.runtime, device, low, high, &mut version)
        };
        status(ret).map(|()| version)
    }

    /// `TSPI_providerEnumDevices`: the number of lines.
    pub fn enum_devices(&self) -> Result<u32, LineErr> {
        let (mut lines, mut phones) = (0, 0);
        // SAFETY: valid out pointers; null procs are allowed (this host adds no devices).
        let ret = unsafe {
            exports::provider_enum_devices(
                self.runtime,
                self.provider_id,
                &mut lines,
                &mut phones,
                HPROVIDER(std::ptr::null_mut()),
                None,
                None,
            )
        };
        status(ret).map(|()| lines)
    }

    /// `TSPI_providerInit` at `version`, with this host's completion proc.
    pub fn init_at(&self, version: u32) -> Result<(), LineErr> {
        let lines = self.enum_devices().unwrap_or(0);
        let mut options = 0xFFFF_FFFF;
        // SAFETY: a valid out pointer and a completion proc that lives for the process.
        let ret = unsafe {
            exports::provider_init(
                self.runtime,
                version,
                self.provider_id,
                self.line_base,
                0,
                lines as usize,
                0,
                Some(completion_proc),
                &mut options,
            )
        };
        if ret == 0 && options & tapi::LINETSPIOPTION_NONREENTRANT != 0 {
            self.record
                .log()
                .violations
                .push("R-TSP-15: the provider asked for LINETSPIOPTION_NONREENTRANT".into());
        }
        status(ret)
    }

    /// Negotiates (`INITIALIZE_NEGOTIATION`), enumerates and initializes, as TAPISRV does.
    pub fn start(&self) -> Result<u32, LineErr> {
        let version = self.negotiate(INITIALIZE_NEGOTIATION, Version::V2_0.0, Version::V3_0.0)?;
        self.enum_devices()?;
        self.init_at(version).map(|()| version)
    }

    /// `TSPI_providerShutdown`.
    /// After the final one, the provider has closed what was left open (R-TSP-18).
    pub fn shutdown(&self) -> Result<(), LineErr> {
        // SAFETY: no pointers.
        status(unsafe {
            exports::provider_shutdown(self.runtime, Version::V2_2.0, self.provider_id)
        })?;
        if self.stats().init_pairs == 0 {
            let mut log = self.record.log();
            let log = &mut *log;
            log.open_lines.clear();
            log.closed_calls.extend(log.call_hd.keys().copied());
            log.closed_calls
                .extend(log.offered.iter().map(|&(_, ht)| ht));
        }
        Ok(())
    }

    /// `TSPI_lineOpen` of line `index` at the provider's highest version.
    pub fn open(&self, index: u32) -> Result<LineRef, LineErr> {
        let ht = self.record.fresh_ht(1);
        let mut hd = HDRVLINE(std::ptr::null_mut());
        // SAFETY: a valid out pointer; an event proc that lives for the process.
        let ret = unsafe {
            exports::line_open(
                self.runtime,
                self.device(index),
                HTAPILINE(std::ptr::without_provenance_mut(ht)),
                &mut hd,
                P::HIGHEST_VERSION.0,
                Some(event_proc),
            )
        };
        status(ret)?;
        let line = LineRef {
            hd: hd.0 as usize,
            ht,
            index,
        };
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(line.hd, ht);
        self.record.log().open_lines.push(line);
        Ok(line)
    }

    /// `TSPI_lineClose`; on success, every accepted request of the line and of its calls must
    /// have been completed already (R-TSP-13; panics otherwise), and any later event for the
    /// line is a violation.
    pub fn close(&self, line: LineRef) -> Result<(), LineErr> {
        // SAFETY: no pointers.
        let ret = unsafe {
            exports::line_close(
                self.runtime,
                HDRVLINE(std::ptr::without_provenance_mut(line.hd)),
            )
        };
        if ret == 0 {
            let mut log = self.record.log();
            let unfinished = log.unfinished(|of_line, _| of_line == line.ht);
            assert!(
                unfinished.is_empty(),
                "R-TSP-13 violated: TSPI_lineClose returned before requests {unfinished:x?} of \
                 the line (or of its calls) were completed"
            );
            log.closed_lines.insert(line.ht);
            let calls: Vec<usize> = log
                .call_line
                .iter()
                .filter(|&(&ht_call, &ht_line)| ht_line == line.ht && ht_call != 0)
                .map(|(&ht_call, _)| ht_call)
                .collect();
            log.closed_calls.extend(calls);
            log.open_lines.retain(|open| open.ht != line.ht);
        }
        status(ret)
    }

    /// `TSPI_lineMakeCall` on `line` to `destination`.
    pub fn make_call(&self, line: LineRef, destination: Option<&str>) -> Async<Option<CallRef>> {
        let wide = destination.map(winprov_core::ffi::to_wide_nul);
        self.make_call_raw(line.hd, wide.as_deref())
    }

    fn line_of(&self, hd_line: usize) -> Option<usize> {
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&hd_line)
            .copied()
    }

    /// `TSPI_lineMakeCall` with a raw line handle and raw UTF-16 (NUL-terminated by the
    /// caller, or not, to test the provider).
    pub fn make_call_raw(
        &self,
        hd_line: usize,
        destination: Option<&[u16]>,
    ) -> Async<Option<CallRef>> {
        let request = self.issue("TSPI_lineMakeCall");
        let ht = self.record.fresh_ht(2);
        {
            let mut log = self.record.log();
            log.created_by.insert(ht, request);
            if let Some(line) = self.line_of(hd_line) {
                log.call_line.insert(ht, line);
                log.request_of.insert(request, (line, Some(ht)));
            }
        }
        let mut hd = HDRVCALL(std::ptr::null_mut());
        // SAFETY: a valid out pointer; the destination (if any) lives across the call.
        let ret = unsafe {
            exports::line_make_call(
                self.runtime,
                request,
                HDRVLINE(std::ptr::without_provenance_mut(hd_line)),
                HTAPICALL(std::ptr::without_provenance_mut(ht)),
                &mut hd,
                PCWSTR(destination.map_or(std::ptr::null(), <[u16]>::as_ptr)),
                0,
                std::ptr::null(),
            )
        };
        self.returned(request, ret);
        let value = (ret > 0).then_some(CallRef {
            hd: hd.0 as usize,
            ht,
        });
        if let Some(call) = value {
            self.record.log().call_hd.insert(call.ht, call.hd);
        }
        if ret > 0 && hd.0.is_null() {
            self.record
                .log()
                .violations
                .push("R-TSP-6: TSPI_lineMakeCall accepted without writing *lphdCall".into());
        }
        Async {
            request,
            ret,
            value,
        }
    }

    /// `TSPI_lineDrop`.
    pub fn drop_call(&self, call: CallRef) -> Async<()> {
        self.call_request(call, "TSPI_lineDrop", exports::line_drop::<P>)
    }

    /// `TSPI_lineAnswer`.
    pub fn answer(&self, call: CallRef) -> Async<()> {
        self.call_request(call, "TSPI_lineAnswer", exports::line_answer::<P>)
    }

    /// A call request with no user-user information, through `export`.
    fn call_request(
        &self,
        call: CallRef,
        name: &'static str,
        export: unsafe fn(&'static Runtime<P>, u32, HDRVCALL, PCSTR, u32) -> i32,
    ) -> Async<()> {
        let request = self.issue(name);
        self.record.log().call_hd.entry(call.ht).or_insert(call.hd);
        {
            let mut log = self.record.log();
            if let Some(&line) = log.call_line.get(&call.ht) {
                log.request_of.insert(request, (line, Some(call.ht)));
            }
        }
        // SAFETY: no user-user information.
        let ret = unsafe {
            export(
                self.runtime,
                request,
                hd_call(call),
                PCSTR(std::ptr::null()),
                0,
            )
        };
        self.returned(request, ret);
        Async {
            request,
            ret,
            value: (),
        }
    }

    /// `TSPI_lineDevSpecific` without a call (a call-less request).
    pub fn dev_specific(&self, line: LineRef, params: &mut [u8]) -> Async<()> {
        let request = self.issue("TSPI_lineDevSpecific");
        self.record
            .log()
            .request_of
            .insert(request, (line.ht, None));
        // SAFETY: `params` is writable for its length for the duration of the call.
        let ret = unsafe {
            exports::line_dev_specific(
                self.runtime,
                request,
                HDRVLINE(std::ptr::without_provenance_mut(line.hd)),
                0,
                HDRVCALL(std::ptr::null_mut()),
                params.as_mut_ptr().cast(),
                params.len() as u32,
            )
        };
        self.returned(request, ret);
        Async {
            request,
            ret,
            value: (),
        }
    }

    /// `TSPI_lineCloseCall`; on success, every accepted request of the call must have been
    /// completed already (R-TSP-7, R-TSP-8; panics otherwise), and any later event for the call
    /// is a violation.
    pub fn close_call(&self, call: CallRef) -> Result<(), LineErr> {
        // SAFETY: no pointers.
        let ret = unsafe {
            exports::line_close_call(
                self.runtime,
                HDRVCALL(std::ptr::without_provenance_mut(call.hd)),
            )
        };
        if ret == 0 {
            let mut log = self.record.log();
            let unfinished = log.unfinished(|_, of_call| of_call == Some(call.ht));
            let creating = log.created_by.get(&call.ht).copied();
            assert!(
                unfinished.is_empty(),
                "{} violated: TSPI_lineCloseCall returned before requests {unfinished:x?} of the \
                 call were completed",
                if unfinished.iter().all(|&r| Some(r) == creating) {
                    "R-TSP-7"
                } else {
                    "R-TSP-8"
                }
            );
            log.closed_calls.insert(call.ht);
        }
        status(ret)
    }

    /// `TSPI_lineGetCallStatus` with a `total`-byte buffer prefilled with `fill`; returns the
    /// export's value and the buffer.
    pub fn call_status_bytes(&self, call: CallRef, total: usize, fill: u8) -> (i32, Vec<u8>) {
        AlignedBuffer::query(total, fill, |buffer| {
            // SAFETY: `buffer` is 8-aligned, `total` bytes, with dwTotalSize set.
            unsafe { exports::line_get_call_status(self.runtime, hd_call(call), buffer.cast()) }
        })
    }

    /// `TSPI_lineGetCallStatus`, decoded.
    pub fn call_status(&self, call: CallRef) -> Result<CallStatus, LineErr> {
        let (ret, bytes) = self.call_status_bytes(call, size_of::<LINECALLSTATUS>(), 0);
        status(ret)?;
        let dword = |member| read_dword(&bytes, member).unwrap_or(0);
        Ok(CallStatus {
            state: CallStates::from_bits_retain(dword(offset_of!(LINECALLSTATUS, dwCallState))),
            mode: dword(offset_of!(LINECALLSTATUS, dwCallStateMode)),
            features: CallFeatures::from_bits_retain(dword(offset_of!(
                LINECALLSTATUS,
                dwCallFeatures
            ))),
        })
    }

    /// `TSPI_lineGetCallInfo` with a `total`-byte buffer.
    pub fn call_info_bytes(&self, call: CallRef, total: usize) -> (i32, Vec<u8>) {
        AlignedBuffer::query(total, 0, |buffer| {
            // SAFETY: as in `call_status_bytes`.
            unsafe { exports::line_get_call_info(self.runtime, hd_call(call), buffer.cast()) }
        })
    }

    /// The caller id (number) of a call, from `TSPI_lineGetCallInfo`.
    pub fn caller_id(&self, call: CallRef) -> Option<String> {
        let (ret, bytes) = self.call_info_bytes(call, 4096);
        (ret == 0)
            .then(|| {
                read_string(
                    &bytes,
                    offset_of!(LINECALLINFO, dwCallerIDSize),
                    offset_of!(LINECALLINFO, dwCallerIDOffset),
                )
            })
            .flatten()
    }

    /// `TSPI_lineGetDevCaps` of line `index` with a `total`-byte buffer.
    pub fn dev_caps_bytes(&self, index: u32, total: usize) -> (i32, Vec<u8>) {
        AlignedBuffer::query(total, 0, |buffer| {
            // SAFETY: as in `call_status_bytes`.
            unsafe {
                exports::line_get_dev_caps(
                    self.runtime,
                    self.device(index),
                    P::HIGHEST_VERSION.0,
                    0,
                    buffer.cast(),
                )
            }
        })
    }

    /// The line name from `TSPI_lineGetDevCaps`.
    pub fn line_name(&self, index: u32) -> Option<String> {
        let (ret, bytes) = self.dev_caps_bytes(index, 4096);
        (ret == 0)
            .then(|| {
                read_string(
                    &bytes,
                    offset_of!(LINEDEVCAPS, dwLineNameSize),
                    offset_of!(LINEDEVCAPS, dwLineNameOffset),
                )
            })
            .flatten()
    }

    /// How this host answers the next `LINE_NEWCALL`s.
    pub fn answer_new_calls(&self, answer: NewCallAnswer) {
        *self
            .record
            .new_call
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = answer;
    }

    /// How many requests (`TSPI_lineMakeCall`, `TSPI_lineDrop`, `TSPI_lineAnswer`,
    /// `TSPI_lineDevSpecific` …) have been handed to the provider's method so far: a request
    /// counted had its line's or call's turn and is inside the provider's code (or was).
    pub fn requests_entered(&self) -> u64 {
        self.runtime.inner().entered.count()
    }

    /// Waits up to `timeout` until `n` requests in all were handed to the provider's method
    /// ([`requests_entered`](Self::requests_entered)); whether they were. The barrier of close
    /// races: once a request is counted, a [`close_call`](Self::close_call) or
    /// [`close`](Self::close) on another thread finds it inside the provider's code and waits
    /// for it, then completes it if it was accepted (R-TSP-8, R-TSP-13).
    pub fn wait_requests_entered(&self, n: u64, timeout: Duration) -> bool {
        self.runtime.inner().entered.wait(n, timeout)
    }

    /// Every callback so far.
    pub fn messages(&self) -> Vec<Message> {
        self.record.log().messages.clone()
    }

    /// The results `request` was completed with (exactly one is right): `Ok` for 0, else the
    /// `LINEERR_*` (the raw `lResult` is also in [`messages`](Self::messages)).
    pub fn completions_of(&self, request: u32) -> Vec<Result<(), LineErr>> {
        self.record
            .log()
            .completions
            .get(&request)
            .map(|results| results.iter().map(|&result| status(result)).collect())
            .unwrap_or_default()
    }

    /// The result of `request`, if it was completed.
    pub fn completion(&self, request: u32) -> Option<Result<(), LineErr>> {
        self.completions_of(request).first().copied()
    }

    /// Waits up to `timeout` for `request`'s completion.
    pub fn wait_completion(&self, request: u32, timeout: Duration) -> Option<Result<(), LineErr>> {
        self.wait_for(timeout, |log| log.completions.contains_key(&request));
        self.completion(request)
    }

    /// Waits up to `timeout` until `done(messages)`; returns whether it became true.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[Message]) -> bool) -> bool {
        self.wait_for(timeout, |log| done(&log.messages))
    }

    fn wait_for(&self, timeout: Duration, done: impl Fn(&Log) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut log = self.record.log();
        loop {
            if done(&log) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            log = self
                .record
                .changed
                .wait_timeout(log, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// The `LINE_CALLSTATE` states reported for `call`, in order.
    pub fn states(&self, call: CallRef) -> Vec<CallStates> {
        self.states_with_modes(call)
            .into_iter()
            .map(|(state, _)| state)
            .collect()
    }

    /// The `LINE_CALLSTATE`s reported for `call`, in order, each with its mode (`dwParam2`:
    /// the `LINEDISCONNECTMODE_*` of `DISCONNECTED`, [`DisconnectMode::raw`](crate::DisconnectMode::raw)).
    pub fn states_with_modes(&self, call: CallRef) -> Vec<(CallStates, u32)> {
        self.record
            .log()
            .messages
            .iter()
            .filter_map(|message| match *message {
                Message::Event {
                    ht_call,
                    msg,
                    params,
                    ..
                } if ht_call == call.ht && msg == tapi::LINE_CALLSTATE as u32 => Some((
                    CallStates::from_bits_retain(params[0] as u32),
                    params[1] as u32,
                )),
                _ => None,
            })
            .collect()
    }

    /// Waits up to `timeout` until `call` reported `state`.
    pub fn wait_state(&self, call: CallRef, state: CallStates, timeout: Duration) -> bool {
        self.wait_for(timeout, |log| {
            log.messages.iter().any(|message| {
                matches!(*message, Message::Event { ht_call, msg, params, .. }
                    if ht_call == call.ht
                        && msg == tapi::LINE_CALLSTATE as u32
                        && params[0] == state.bits() as usize)
            })
        })
    }

    /// Inbound calls offered with `LINE_NEWCALL` (with the handle this host stored, 0 for
    /// NULL).
    pub fn offered(&self) -> Vec<CallRef> {
        self.record
            .log()
            .offered
            .iter()
            .map(|&(hd, ht)| CallRef { hd, ht })
            .collect()
    }

    /// Waits up to `timeout` for the `n`-th inbound call.
    pub fn wait_offered(&self, n: usize, timeout: Duration) -> Option<CallRef> {
        self.wait_for(timeout, |log| log.offered.len() >= n);
        self.offered().get(n - 1).copied()
    }

    /// Requests that were accepted and are not completed yet.
    pub fn unfinished(&self) -> Vec<u32> {
        let log = self.record.log();
        log.issued
            .iter()
            .filter(|(id, ret)| {
                matches!(ret, Some(r) if *r > 0) && !log.completions.contains_key(id)
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every rule violation seen so far.
    pub fn violations(&self) -> Vec<String> {
        self.record.log().violations.clone()
    }

    /// What this host left unfinished, one line each: lines open, calls not closed, accepted
    /// requests never completed (with their export and the line or call they belong to).
    pub fn leftovers(&self) -> Vec<String> {
        let log = self.record.log();
        let mut left: Vec<String> = log
            .open_lines
            .iter()
            .map(|line| {
                format!(
                    "line {} (HDRVLINE {:#x}, HTAPILINE {:#x}): open, never closed",
                    line.index, line.hd, line.ht
                )
            })
            .collect();
        let mut calls: Vec<(usize, usize)> =
            log.call_hd.iter().map(|(&ht, &hd)| (ht, hd)).collect();
        calls.extend(log.offered.iter().map(|&(hd, ht)| (ht, hd)));
        calls.sort_unstable();
        calls.dedup();
        for (ht, hd) in calls {
            if ht != 0 && !log.closed_calls.contains(&ht) {
                left.push(format!(
                    "call HDRVCALL {hd:#x} (HTAPICALL {ht:#x}): never closed with TSPI_lineCloseCall"
                ));
            }
        }
        let mut requests: Vec<u32> = log
            .issued
            .iter()
            .filter(|&(id, ret)| {
                matches!(ret, Some(r) if *r > 0) && !log.completions.contains_key(id)
            })
            .map(|(&id, _)| id)
            .collect();
        requests.sort_unstable();
        for request in requests {
            let export = log.kinds.get(&request).copied().unwrap_or("a request");
            let of = match log.request_of.get(&request) {
                Some(&(_, Some(ht_call))) => match log.call_hd.get(&ht_call) {
                    Some(hd) => format!(" of call HDRVCALL {hd:#x} (HTAPICALL {ht_call:#x})"),
                    None => format!(" of call HTAPICALL {ht_call:#x}"),
                },
                Some(&(ht_line, None)) => format!(" of line HTAPILINE {ht_line:#x}"),
                None => String::new(),
            };
            left.push(format!(
                "{export} request {request:#x}{of}: accepted, never completed"
            ));
        }
        left
    }

    /// Checks the end state of a run: no rule violation, every accepted request completed,
    /// and no line, call, pending request or Init pair left; a failure names what is left
    /// ([`leftovers`](Self::leftovers)). Call it after the final
    /// [`shutdown`](Self::shutdown).
    #[track_caller]
    pub fn assert_idle(&self) {
        self.assert_clean();
        let stats = self.stats();
        let left = self.leftovers();
        let live = (
            stats.lines,
            stats.calls,
            stats.pending_requests,
            stats.init_pairs,
        );
        assert!(
            live == (0, 0, 0, 0) && left.is_empty(),
            "left unfinished ({stats:?}):\n{}",
            left.join("\n")
        );
    }

    /// Panics with the violations, if any.
    #[track_caller]
    pub fn assert_clean(&self) {
        let violations = self.violations();
        assert!(
            violations.is_empty(),
            "rule violations:\n{}",
            violations.join("\n")
        );
    }
}

/// A `dwTotalSize`-prefixed buffer with the alignment TAPI's structures need.
struct AlignedBuffer {
    words: Vec<u64>,
    len: usize,
}

fn hd_call(call: CallRef) -> HDRVCALL {
    HDRVCALL(std::ptr::without_provenance_mut(call.hd))
}

impl AlignedBuffer {
    /// Runs one query export on a fresh buffer; returns its value and the bytes.
    fn query(total: usize, fill: u8, export: impl FnOnce(*mut u8) -> i32) -> (i32, Vec<u8>) {
        let mut buffer = Self::new(total, fill);
        let ret = export(buffer.as_mut_ptr());
        (ret, buffer.into_bytes())
    }

    fn new(total: usize, fill: u8) -> Self {
        let mut words = vec![u64::from_ne_bytes([fill; 8]); total.div_ceil(8).max(1)];
        let header = (total as u32).to_le_bytes();
        let first = words[0].to_ne_bytes();
        let mut bytes = first;
        bytes[..4].copy_from_slice(&header);
        words[0] = u64::from_ne_bytes(bytes);
        Self { words, len: total }
    }

    fn as_mut_ptr(&mut self) -> *mut u8 {
        self.words.as_mut_ptr().cast()
    }

    fn into_bytes(self) -> Vec<u8> {
        self.words
            .iter()
            .flat_map(|word| word.to_ne_bytes())
            .take(self.len)
            .collect()
    }
}
