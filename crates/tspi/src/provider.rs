//! What a provider author implements ([`ServiceProvider`], [`Line`], [`Call`]) and the guards
//! the framework hands them.
//!
//! Every TSPI function with a `dwRequestID` is asynchronous. The author receives it as a
//! call-scoped [`Request`] (or [`MakeCall`]) that must be resolved before the trait method
//! returns, in one of three ways, each returning the [`Completed`] proof the method must return:
//!
//! - [`Request::reject`]: a synchronous failure; the export returns the negative `LINEERR_*`
//!   and TAPI hears nothing more about the request (R-TSP-4);
//! - [`Request::complete`]: done at once; `ASYNC_COMPLETION` is called before the export
//!   returns `dwRequestID`;
//! - [`Request::accept`]: the work continues elsewhere; the author gets a [`Pending`] guard
//!   (owned, `Send`: it may move to a worker thread), completed exactly once by
//!   [`Pending::complete`] or, if dropped, with `LINEERR_OPERATIONFAILED`. If the host ends the
//!   request first (`TSPI_lineCloseCall`, `TSPI_lineClose`, the final `TSPI_providerShutdown`),
//!   the framework has already completed it and the author's completion is a no-op.
//!
//! A new call's event sender ([`CallEvents`]) only exists once its creating request succeeded
//! ([`PendingCall::succeed`]), so no event can precede that completion (R-TSP-6). A remote
//! hang-up consumes the sender ([`CallEvents::disconnected`], R-TSP-11); `LINECALLSTATE_IDLE` is
//! the framework's, after a successful drop (R-TSP-10).

use crate::dial::DialString;
use crate::flags::{BearerModes, CallStates, DevCapFlags, MediaModes};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use winprov_bindings::tapi;
use winprov_core::{CancellationToken, Completed, Delivery, Issuer, LineErr};

/// A TSPI version: major in the high word, minor in the low word (`0x00020002` is 2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32);

impl Version {
    /// TAPI 2.0.
    pub const V2_0: Self = Self(0x0002_0000);
    /// TAPI 2.1.
    pub const V2_1: Self = Self(0x0002_0001);
    /// TAPI 2.2 (`TAPI_CURRENT_VERSION` in the metadata).
    pub const V2_2: Self = Self(0x0002_0002);
    /// TAPI 3.0.
    pub const V3_0: Self = Self(0x0003_0000);
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0 >> 16, self.0 & 0xFFFF)
    }
}

/// A line of this provider, counted from 0 (TAPI's device id minus `dwLineDeviceIDBase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LineIndex(pub u32);

/// What `TSPI_providerInit` told the provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InitInfo {
    /// The negotiated TSPI version.
    pub version: Version,
    /// `dwPermanentProviderID`.
    pub provider_id: u32,
    /// `dwLineDeviceIDBase`: TAPI's device id of [`LineIndex(0)`](LineIndex).
    pub line_device_base: u32,
    /// `dwNumLines`.
    pub lines: u32,
}

/// The capabilities of one line (`LINEDEVCAPS`), which the framework writes for
/// `TSPI_lineGetDevCaps` and also uses itself (dial-string validation, call limits).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LineCaps {
    /// `dwLineName`: the line's name as users see it.
    pub name: String,
    /// `dwSwitchInfo`: free text about the switch behind the line (empty for none).
    pub switch_info: String,
    /// `dwMediaModes`.
    pub media_modes: MediaModes,
    /// `dwBearerModes`.
    pub bearer_modes: BearerModes,
    /// `dwDevCapFlags`. `DIALBILLING`, `DIALQUIET` and `DIALDIALTONE` also decide which
    /// dial characters `TSPI_lineMakeCall` accepts (R-TSP-17).
    pub dev_cap_flags: DevCapFlags,
    /// Whether `?` (prompt the user) is supported in dial strings.
    pub dial_prompt: bool,
    /// `dwMaxNumActiveCalls`: more concurrent calls on the line are refused with
    /// `LINEERR_CALLUNAVAIL` before the author is asked.
    pub max_calls: u32,
}

impl LineCaps {
    /// A voice line called `name`, one call at a time, no special dial characters.
    pub fn voice(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            switch_info: String::new(),
            media_modes: MediaModes::INTERACTIVEVOICE,
            bearer_modes: BearerModes::VOICE,
            dev_cap_flags: DevCapFlags::CLOSEDROP,
            dial_prompt: false,
            max_calls: 1,
        }
    }

    /// Sets [`max_calls`](Self::max_calls).
    pub fn with_max_calls(mut self, max_calls: u32) -> Self {
        self.max_calls = max_calls.max(1);
        self
    }

    /// Sets [`switch_info`](Self::switch_info).
    pub fn with_switch_info(mut self, info: impl Into<String>) -> Self {
        self.switch_info = info.into();
        self
    }

    /// Adds device capability flags.
    pub fn with_dev_cap_flags(mut self, flags: DevCapFlags) -> Self {
        self.dev_cap_flags |= flags;
        self
    }

    /// Accepts `?` in dial strings.
    pub fn with_dial_prompt(mut self) -> Self {
        self.dial_prompt = true;
        self
    }
}

/// A telephony service provider: the behaviour behind one `.tsp`.
///
/// The framework calls it from TAPI's threads, concurrently (R-TSP-15): the provider object is
/// shared (`Sync`); each open line and each call serves one request at a time (`&mut self`:
/// a second request for the same line or call waits for its turn), while requests for other
/// lines and calls run in parallel.
/// Generate the exports with [`export_provider!`](crate::export_provider).
pub trait ServiceProvider: Send + Sync + Sized + 'static {
    /// One open line, from `TSPI_lineOpen` to `TSPI_lineClose`.
    type Line: Line;

    /// The provider's name (`LINEDEVCAPS.dwProviderInfo`).
    const NAME: &'static str;
    /// The lowest TSPI version supported.
    const LOWEST_VERSION: Version = Version::V2_0;
    /// The highest TSPI version supported (negotiation picks the highest common one, R-TSP-1).
    const HIGHEST_VERSION: Version = Version::V2_2;

    /// How many lines the provider has (`TSPI_providerEnumDevices`).
    fn line_count(&self) -> u32;

    /// The first `TSPI_providerInit` of an Init/Shutdown pair (extra Inits while one is
    /// outstanding are absorbed by the framework, R-TSP-2).
    fn init(&self, info: &InitInfo) -> Result<(), LineErr> {
        let _ = info;
        Ok(())
    }

    /// The final `TSPI_providerShutdown`. The framework has closed every line (and completed
    /// every pending request) before calling it.
    fn shutdown(&self) {}

    /// The capabilities of `line`.
    fn line_caps(&self, line: LineIndex) -> LineCaps;

    /// `TSPI_lineOpen`: start serving `line`. `events` reports inbound calls.
    fn open(&self, line: LineIndex, events: LineEvents<Self>) -> Result<Self::Line, LineErr>;

    /// `TUISPI_providerInstall` (runs in the installing application's process).
    fn ui_install(&self, provider_id: u32) -> Result<(), LineErr> {
        let _ = provider_id;
        Ok(())
    }

    /// `TUISPI_providerRemove`.
    fn ui_remove(&self, provider_id: u32) -> Result<(), LineErr> {
        let _ = provider_id;
        Ok(())
    }

    /// `TUISPI_providerConfig`. Without an implementation: `LINEERR_OPERATIONUNAVAIL`.
    fn ui_configure(&self, provider_id: u32) -> Result<(), LineErr> {
        let _ = provider_id;
        Err(LineErr::LINEERR_OPERATIONUNAVAIL)
    }
}

/// One open line.
pub trait Line: Send + 'static {
    /// One call on this line, from its creation to `TSPI_lineCloseCall`.
    type Call: Call;

    /// `TSPI_lineMakeCall`. The destination was validated already (R-TSP-17): a string the
    /// line cannot dial never reaches this method.
    fn make_call<'call>(&mut self, request: MakeCall<'call, Self::Call>) -> Completed<'call>;

    /// `TSPI_lineDevSpecific` without a call: a call-less request, ended only by
    /// `TSPI_lineClose` (which completes it with `LINEERR_OPERATIONFAILED` if still pending).
    fn dev_specific<'call>(
        &mut self,
        request: Request<'call>,
        params: &mut [u8],
    ) -> Completed<'call> {
        let _ = params;
        request.reject(LineErr::LINEERR_OPERATIONUNAVAIL)
    }

    /// `TSPI_lineClose`: the framework has already completed the line's pending requests and
    /// closed its calls; release what the line holds.
    fn close(self)
    where
        Self: Sized,
    {
    }
}

/// One call.
pub trait Call: Send + 'static {
    /// `TSPI_lineDrop`. On success the framework reports `LINECALLSTATE_IDLE` (R-TSP-10);
    /// dropping an idle call never reaches this method (`LINEERR_INVALCALLSTATE`, R-TSP-12).
    fn drop_call<'call>(
        &mut self,
        request: Request<'call>,
        user_user_info: &[u8],
    ) -> Completed<'call>;

    /// `TSPI_lineAnswer` of an offered inbound call.
    fn answer<'call>(
        &mut self,
        request: Request<'call>,
        user_user_info: &[u8],
    ) -> Completed<'call> {
        let _ = user_user_info;
        request.reject(LineErr::LINEERR_OPERATIONUNAVAIL)
    }

    /// `TSPI_lineCloseCall`: the framework has already completed the call's pending requests
    /// with `LINEERR_OPERATIONFAILED` and silenced its events; stop its work.
    fn close(self)
    where
        Self: Sized,
    {
    }
}

/// Where an export learns how its request was resolved: 0 = not yet, else its return value.
pub(crate) type ReplySlot = AtomicI32;

/// The `LONG` that reports `error`: a value that is not a `LINEERR_*` (not negative) would read
/// as success or a request id, so it becomes `LINEERR_OPERATIONFAILED`.
pub(crate) fn error_value(error: LineErr) -> i32 {
    if LineErr::is_error_value(error.raw()) {
        error.raw()
    } else {
        tracing::warn!(%error, "a request was failed with a value that is not a LINEERR");
        LineErr::LINEERR_OPERATIONFAILED.raw()
    }
}

/// The framework's side of one request while the author's method runs: what [`Request`] and
/// [`MakeCall`] resolve it with. The runtime implements it; a guard names no runtime type.
pub(crate) trait RequestPort: Sync {
    /// TAPI's `dwRequestID`.
    fn id(&self) -> u32;

    /// Registers the request as pending and returns the author's guard. Called at most once.
    fn accept(&self) -> Pending;

    /// Completes the request now, before the export returns. Called at most once, instead of
    /// [`accept`](Self::accept).
    fn complete_now(&self, result: Result<(), LineErr>) -> Delivery;
}

/// The framework's side of one call, for the author's [`PendingCall`] and [`CallEvents`].
pub(crate) trait CallLink: Send + Sync {
    /// Reports `LINE_CALLSTATE(state, mode)`.
    fn report_state(&self, state: u32, mode: u32) -> Result<(), EventError>;
    /// Whether the host closed the call (or its line).
    fn is_closed(&self) -> bool;
    /// Whether TAPI knows the call (its creating request succeeded, or it was offered).
    fn is_created(&self) -> bool;
    /// Trips when the call is closed.
    fn cancellation(&self) -> &CancellationToken;
    /// The call's current `LINECALLSTATE_*`.
    fn current_state(&self) -> u32;
}

/// The framework's side of one open line, for the author's [`LineEvents`].
pub(crate) trait LineLink<P: ServiceProvider>: Send + Sync {
    /// Offers an inbound call (see [`LineEvents::new_call`]).
    fn offer(
        &self,
        call: <P::Line as Line>::Call,
        caller: CallerId,
    ) -> Result<CallEvents, NewCallError>;
    /// Whether the host closed the line.
    fn is_closed(&self) -> bool;
    /// Trips when the line is closed.
    fn cancellation(&self) -> &CancellationToken;
    /// The line.
    fn index(&self) -> LineIndex;
}

/// One asynchronous request, during the trait method that received it.
#[must_use = "resolve the request with reject, complete or accept"]
pub struct Request<'call> {
    port: &'call dyn RequestPort,
    reply: &'call ReplySlot,
    issuer: Issuer<'call>,
}

impl<'call> Request<'call> {
    pub(crate) fn new(
        issuer: Issuer<'call>,
        port: &'call dyn RequestPort,
        reply: &'call ReplySlot,
    ) -> Self {
        Self {
            port,
            reply,
            issuer,
        }
    }

    /// TAPI's `dwRequestID`.
    pub fn id(&self) -> u32 {
        self.port.id()
    }

    /// Fails the request synchronously: the export returns `error`, no completion follows.
    pub fn reject(self, error: LineErr) -> Completed<'call> {
        self.reply.store(error_value(error), Ordering::SeqCst);
        // The export's return value tells the host.
        self.issuer.completed(Delivery::Delivered)
    }

    /// Completes the request now: `ASYNC_COMPLETION(dwRequestID, result)` runs before the
    /// export returns `dwRequestID`.
    pub fn complete(self, result: Result<(), LineErr>) -> Completed<'call> {
        let id = self.port.id();
        let delivery = self.port.complete_now(result);
        self.reply.store(id as i32, Ordering::SeqCst);
        self.issuer.completed(delivery)
    }

    /// Accepts the request: the export returns `dwRequestID` and the returned guard completes
    /// it later, from any thread.
    pub fn accept(self) -> (Pending, Completed<'call>) {
        let id = self.port.id();
        let pending = self.port.accept();
        self.reply.store(id as i32, Ordering::SeqCst);
        // The export's return value (the request id) tells the host; `pending` completes it.
        (pending, self.issuer.completed(Delivery::Delivered))
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// An accepted request: complete it exactly once, from any thread. Dropping it completes it
/// with `LINEERR_OPERATIONFAILED`.
#[must_use = "dropping a Pending request fails it with LINEERR_OPERATIONFAILED"]
pub struct Pending {
    pub(crate) guard: winprov_core::Completion<'static, Result<(), LineErr>>,
    pub(crate) id: u32,
    pub(crate) cancel: CancellationToken,
}

impl Pending {
    /// TAPI's `dwRequestID`.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Completes the request (`Ok(())` is 0). When this returns, `ASYNC_COMPLETION` has run —
    /// or the host had already ended the request (the line or call was closed) and nothing was
    /// sent ([`Delivery::AlreadyFinished`]).
    pub fn complete(self, result: Result<(), LineErr>) -> Delivery {
        self.guard.complete(result)
    }

    /// Whether the host ended the request already (its call or line was closed).
    pub fn is_aborted(&self) -> bool {
        self.guard.is_aborted()
    }

    /// Trips when the request's call or line is closed, for work that should stop then.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("id", &self.id)
            .field("aborted", &self.is_aborted())
            .finish_non_exhaustive()
    }
}

/// A new call and its creating request's guard.
pub(crate) type Created = (Arc<dyn CallLink>, Pending);

/// The framework's side of creating a call for [`MakeCall::accept`].
pub(crate) trait CallFactory<C>: Sync {
    /// Registers `call` and accepts its creating request, or `Err` with a guard that delivers
    /// nothing if the line closed meanwhile (the export then returns
    /// `LINEERR_INVALLINEHANDLE`). Called at most once, instead of [`RequestPort::accept`].
    fn create(&self, call: C) -> Result<Created, Created>;
}

/// `TSPI_lineMakeCall`, during [`Line::make_call`].
#[must_use = "resolve the request with reject or accept"]
pub struct MakeCall<'call, C> {
    request: Request<'call>,
    factory: &'call dyn CallFactory<C>,
    destination: Option<DialString>,
    country_code: u32,
}

impl<'call, C> MakeCall<'call, C> {
    pub(crate) fn new(
        request: Request<'call>,
        factory: &'call dyn CallFactory<C>,
        destination: Option<DialString>,
        country_code: u32,
    ) -> Self {
        Self {
            request,
            factory,
            destination,
            country_code,
        }
    }

    /// TAPI's `dwRequestID`.
    pub fn id(&self) -> u32 {
        self.request.id()
    }

    /// The number to dial; `None` when the application dials later.
    pub fn destination(&self) -> Option<&DialString> {
        self.destination.as_ref()
    }

    /// `dwCountryCode` (0: the default).
    pub fn country_code(&self) -> u32 {
        self.country_code
    }

    /// Refuses the call synchronously (no call handle is created, nothing is completed).
    pub fn reject(self, error: LineErr) -> Completed<'call> {
        self.request.reject(error)
    }

    /// Creates the call (its `HDRVCALL` is written to `*lphdCall` before the export returns)
    /// and accepts the request. The call may not report events until
    /// [`PendingCall::succeed`] (R-TSP-6).
    pub fn accept(self, call: C) -> (PendingCall, Completed<'call>) {
        let id = self.request.id();
        let (link, pending) = match self.factory.create(call) {
            Ok(created) => {
                self.request.reply.store(id as i32, Ordering::SeqCst);
                created
            }
            Err(detached) => {
                self.request
                    .reply
                    .store(LineErr::LINEERR_INVALLINEHANDLE.raw(), Ordering::SeqCst);
                detached
            }
        };
        let proof = self.request.issuer.completed(Delivery::Delivered);
        (PendingCall { pending, link }, proof)
    }
}

impl<C> std::fmt::Debug for MakeCall<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MakeCall")
            .field("id", &self.id())
            .field("destination", &self.destination)
            .finish_non_exhaustive()
    }
}

/// The call is gone: the host closed it (or its line) before this could be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

impl std::fmt::Display for Closed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the call or line was closed by the host")
    }
}

impl std::error::Error for Closed {}

/// A call whose creating request (`TSPI_lineMakeCall`) is pending.
#[must_use = "dropping a PendingCall fails its TSPI_lineMakeCall with LINEERR_OPERATIONFAILED"]
pub struct PendingCall {
    pending: Pending,
    link: Arc<dyn CallLink>,
}

impl PendingCall {
    /// The creating request succeeded: completes it with 0 and returns the call's event
    /// sender, or `Err(Closed)` if the host closed the call meanwhile (R-TSP-7) — or dropped
    /// it, in which case the request completes with `LINEERR_OPERATIONFAILED`.
    pub fn succeed(self) -> Result<CallEvents, Closed> {
        match self.pending.complete(Ok(())) {
            Delivery::Delivered if !self.link.is_closed() && self.link.is_created() => {
                Ok(CallEvents { link: self.link })
            }
            _ => Err(Closed),
        }
    }

    /// The call could not be made: completes the request with `error`. The call handle stays
    /// allocated until TAPI closes it.
    pub fn fail(self, error: LineErr) -> Delivery {
        self.pending.complete(Err(error))
    }

    /// Whether the host closed the call already.
    pub fn is_aborted(&self) -> bool {
        self.pending.is_aborted()
    }

    /// Trips when the call or its line is closed.
    pub fn cancellation(&self) -> &CancellationToken {
        self.pending.cancellation()
    }
}

impl std::fmt::Debug for PendingCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingCall")
            .field("id", &self.pending.id)
            .finish_non_exhaustive()
    }
}

/// A call state the author reports (`LINECALLSTATE_*` with its mode). `IDLE` is not one: the
/// framework reports it after a successful drop; `DISCONNECTED` goes through
/// [`CallEvents::disconnected`]; `OFFERING` through [`LineEvents::new_call`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallState {
    /// `DIALTONE` (normal dial tone).
    Dialtone,
    /// `DIALING`.
    Dialing,
    /// `PROCEEDING`.
    Proceeding,
    /// `RINGBACK`.
    Ringback,
    /// `BUSY` (station busy).
    Busy,
    /// `CONNECTED`.
    Connected,
    /// `ONHOLD`.
    OnHold,
    /// `ACCEPTED`.
    Accepted,
    /// `SPECIALINFO` (no circuit, customer irregularity …), with its `LINESPECIALINFO_*` mode.
    SpecialInfo(u32),
    /// `UNKNOWN`.
    Unknown,
}

impl CallState {
    /// `(LINECALLSTATE_*, mode)`.
    pub fn raw(self) -> (u32, u32) {
        match self {
            Self::Dialtone => (tapi::LINECALLSTATE_DIALTONE, tapi::LINEDIALTONEMODE_NORMAL),
            Self::Dialing => (tapi::LINECALLSTATE_DIALING, 0),
            Self::Proceeding => (tapi::LINECALLSTATE_PROCEEDING, 0),
            Self::Ringback => (tapi::LINECALLSTATE_RINGBACK, 0),
            Self::Busy => (tapi::LINECALLSTATE_BUSY, tapi::LINEBUSYMODE_STATION),
            Self::Connected => (tapi::LINECALLSTATE_CONNECTED, 0),
            Self::OnHold => (tapi::LINECALLSTATE_ONHOLD, 0),
            Self::Accepted => (tapi::LINECALLSTATE_ACCEPTED, 0),
            Self::SpecialInfo(mode) => (tapi::LINECALLSTATE_SPECIALINFO, mode),
            Self::Unknown => (tapi::LINECALLSTATE_UNKNOWN, 0),
        }
    }
}

/// Why a call ended on the remote side (`LINEDISCONNECTMODE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisconnectMode {
    /// `NORMAL`: the remote party hung up.
    Normal,
    /// `BUSY`.
    Busy,
    /// `NOANSWER`.
    NoAnswer,
    /// `REJECT`: the remote party rejected the call.
    Reject,
    /// `UNREACHABLE`.
    Unreachable,
    /// `BADADDRESS`.
    BadAddress,
    /// `UNAVAIL`.
    Unavailable,
    /// Another `LINEDISCONNECTMODE_*` value.
    Other(u32),
}

impl DisconnectMode {
    /// The `LINEDISCONNECTMODE_*` value.
    pub fn raw(self) -> u32 {
        match self {
            Self::Normal => tapi::LINEDISCONNECTMODE_NORMAL,
            Self::Busy => tapi::LINEDISCONNECTMODE_BUSY,
            Self::NoAnswer => tapi::LINEDISCONNECTMODE_NOANSWER,
            Self::Reject => tapi::LINEDISCONNECTMODE_REJECT,
            Self::Unreachable => tapi::LINEDISCONNECTMODE_UNREACHABLE,
            Self::BadAddress => tapi::LINEDISCONNECTMODE_BADADDRESS,
            Self::Unavailable => tapi::LINEDISCONNECTMODE_UNAVAIL,
            Self::Other(raw) => raw,
        }
    }
}

/// Why an event was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventError {
    /// The host closed the call or its line (`TSPI_lineCloseCall`, `TSPI_lineClose`): no event
    /// may carry its handle any more (R-TSP-9).
    Closed,
    /// The call is idle (dropped): it has no more states to report.
    Idle,
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed => f.write_str("the call or line was closed by the host"),
            Self::Idle => f.write_str("the call is idle"),
        }
    }
}

impl std::error::Error for EventError {}

/// The event sender of one call that TAPI knows (its creating request succeeded, or it was
/// offered with `LINE_NEWCALL`). Not `Clone`: one owner reports the call's progress.
pub struct CallEvents {
    link: Arc<dyn CallLink>,
}

impl CallEvents {
    pub(crate) fn new(link: Arc<dyn CallLink>) -> Self {
        Self { link }
    }

    /// Reports `LINE_CALLSTATE`. After the host closed the call this sends nothing and
    /// returns `Err(EventError::Closed)`.
    pub fn state(&self, state: CallState) -> Result<(), EventError> {
        let (raw, mode) = state.raw();
        self.link.report_state(raw, mode)
    }

    /// The remote party hung up (or the call failed remotely): reports
    /// `LINECALLSTATE_DISCONNECTED` with `mode` (R-TSP-11) and gives up the sender — the call
    /// has nothing more to report; TAPI drops it and the framework reports `IDLE`.
    pub fn disconnected(self, mode: DisconnectMode) -> Result<(), EventError> {
        self.link
            .report_state(tapi::LINECALLSTATE_DISCONNECTED, mode.raw())
    }

    /// Whether the host closed the call (or its line).
    pub fn is_closed(&self) -> bool {
        self.link.is_closed()
    }

    /// Trips when the call or its line is closed.
    pub fn cancellation(&self) -> &CancellationToken {
        self.link.cancellation()
    }

    /// The call's current state (one bit of [`CallStates`]).
    pub fn current_state(&self) -> CallStates {
        CallStates::from_bits_retain(self.link.current_state())
    }
}

impl std::fmt::Debug for CallEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallEvents")
            .field("state", &self.current_state())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// Who is calling, for an inbound call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallerId {
    /// The caller's number (`dwCallerIDAddress`), if known.
    pub number: Option<String>,
    /// The caller's name (`dwCallerIDName`), if known.
    pub name: Option<String>,
}

impl CallerId {
    /// A caller identified by number.
    pub fn number(number: impl Into<String>) -> Self {
        Self {
            number: Some(number.into()),
            name: None,
        }
    }

    /// Adds the caller's name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// Why an inbound call was not offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NewCallError {
    /// The line was closed.
    LineClosed,
    /// TAPI stored NULL for its call handle (it could not take the call, R-TSP-14): the call
    /// was discarded without any further message.
    Refused,
    /// The line has [`LineCaps::max_calls`] calls already.
    TooManyCalls,
}

impl std::fmt::Display for NewCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LineClosed => f.write_str("the line is closed"),
            Self::Refused => f.write_str("TAPI did not take the call (NULL call handle)"),
            Self::TooManyCalls => f.write_str("the line has no room for another call"),
        }
    }
}

impl std::error::Error for NewCallError {}

/// A line's event sender: offers inbound calls. Cheap to clone; it goes quiet once the line is
/// closed.
pub struct LineEvents<P: ServiceProvider> {
    link: Arc<dyn LineLink<P>>,
}

impl<P: ServiceProvider> Clone for LineEvents<P> {
    fn clone(&self) -> Self {
        Self {
            link: Arc::clone(&self.link),
        }
    }
}

impl<P: ServiceProvider> LineEvents<P> {
    pub(crate) fn new(link: Arc<dyn LineLink<P>>) -> Self {
        Self { link }
    }

    /// Offers an inbound call: `LINE_NEWCALL`, then `LINE_CALLSTATE(OFFERING)` (R-TSP-14).
    /// `call` handles what TAPI asks of it next (answer, drop, close).
    pub fn new_call(
        &self,
        call: <P::Line as Line>::Call,
        caller: CallerId,
    ) -> Result<CallEvents, NewCallError> {
        self.link.offer(call, caller)
    }

    /// Whether the host closed the line.
    pub fn is_closed(&self) -> bool {
        self.link.is_closed()
    }

    /// Trips when the line is closed.
    pub fn cancellation(&self) -> &CancellationToken {
        self.link.cancellation()
    }

    /// The line.
    pub fn line(&self) -> LineIndex {
        self.link.index()
    }
}

impl<P: ServiceProvider> std::fmt::Debug for LineEvents<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineEvents")
            .field("line", &self.line())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}
