//! The provider: [`LineSimulator`] ([`ServiceProvider`]), its lines and calls, and the worker
//! threads that play the remote parties.
//!
//! Every call has one worker thread that owns its `PendingCall` / [`CallEvents`] and reports its
//! progress; lines with scheduled inbound calls have one more that offers them. A worker waits
//! only on its call's [`Control`], which is stopped by `TSPI_lineDrop`, by `Call::close` /
//! `Line::close`, and — through the framework's cancellation tokens — the moment the host closes
//! the call or its line. Trait methods never wait for a worker: they post to it and return.

use crate::config::{CALLS_PER_LINE, Config, LINE_NAME_PREFIX, SHUTDOWN_JOIN_TIMEOUT, SWITCH_INFO};
use crate::scenario::{Action, Inbound};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use winprov_tspi::{
    Call, CallEvents, CallState, CallerId, Completed, DisconnectMode, InitInfo, Line, LineCaps,
    LineErr, LineEvents, LineIndex, MakeCall, Pending, PendingCall, Request, ServiceProvider,
};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The simulated-line provider.
#[derive(Debug)]
pub struct LineSimulator {
    shared: Arc<Shared>,
    /// Why the environment's configuration was refused (then `TSPI_providerInit` fails).
    config_error: Option<String>,
}

/// What the provider, its lines and its calls share.
#[derive(Debug)]
struct Shared {
    config: Config,
    workers: Workers,
}

impl LineSimulator {
    /// A provider with `config`.
    pub fn new(config: Config) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                workers: Workers::default(),
            }),
            config_error: None,
        }
    }

    /// The provider the DLL's exports use: the log file from
    /// [`ENV_LOG`](crate::config::ENV_LOG), then the settings from the environment
    /// ([`Config::from_env`]). A configuration error is logged and makes `TSPI_providerInit`
    /// fail with `LINEERR_INIFILECORRUPT`, so a broken scenario file never goes unnoticed.
    pub fn from_environment() -> Self {
        crate::logging::init_from_env();
        match Config::from_env() {
            Ok(config) => {
                tracing::info!(lines = config.lines, "line simulator configured");
                Self::new(config)
            }
            Err(error) => {
                let message = error_chain(&error);
                tracing::error!(error = %message, "line simulator configuration refused");
                Self {
                    config_error: Some(message),
                    ..Self::new(Config::default())
                }
            }
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The configuration error `TSPI_providerInit` reports, if any.
    pub fn config_error(&self) -> Option<&str> {
        self.config_error.as_deref()
    }

    /// Worker threads still running (0 once every call and line is closed and its worker
    /// noticed).
    pub fn live_workers(&self) -> usize {
        self.shared.workers.live()
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl ServiceProvider for LineSimulator {
    type Line = SimLine;

    const NAME: &'static str = crate::config::PROVIDER_NAME;

    fn line_count(&self) -> u32 {
        self.shared.config.lines
    }

    fn init(&self, info: &InitInfo) -> Result<(), LineErr> {
        if let Some(error) = &self.config_error {
            tracing::error!(%error, "TSPI_providerInit refused: fix the configuration");
            return Err(LineErr::LINEERR_INIFILECORRUPT);
        }
        tracing::info!(
            version = %info.version,
            provider_id = info.provider_id,
            lines = info.lines,
            "TSPI_providerInit"
        );
        Ok(())
    }

    fn shutdown(&self) {
        // Every line (and so every call) is closed and its worker told to stop.
        let stuck = self.shared.workers.join_all(SHUTDOWN_JOIN_TIMEOUT);
        if stuck > 0 {
            tracing::warn!(
                stuck,
                "worker threads still running at TSPI_providerShutdown"
            );
        }
        tracing::info!("TSPI_providerShutdown");
    }

    fn line_caps(&self, line: LineIndex) -> LineCaps {
        LineCaps::voice(format!("{LINE_NAME_PREFIX} {}", line.0 + 1))
            .with_switch_info(SWITCH_INFO)
            .with_max_calls(CALLS_PER_LINE)
    }

    fn open(&self, line: LineIndex, events: LineEvents<Self>) -> Result<SimLine, LineErr> {
        tracing::info!(line = line.0, "TSPI_lineOpen");
        let control = Arc::new(Control::new(&self.shared));
        let inbound: Vec<Inbound> = (self.shared.config.scenario.inbound.iter())
            .filter(|call| call.line == line.0)
            .cloned()
            .collect();
        if !inbound.is_empty() {
            let shared = Arc::clone(&self.shared);
            let scheduler = Arc::clone(&control);
            let spawned =
                self.shared
                    .workers
                    .spawn(format!("line {} inbound", line.0), move || {
                        offer_inbound(&shared, &scheduler, &events, inbound);
                    });
            if let Err(error) = spawned {
                tracing::error!(%error, "starting the inbound-call thread");
                return Err(LineErr::LINEERR_RESOURCEUNAVAIL);
            }
        }
        Ok(SimLine {
            shared: Arc::clone(&self.shared),
            index: line,
            control,
        })
    }
}

/// One open line.
#[derive(Debug)]
pub struct SimLine {
    shared: Arc<Shared>,
    index: LineIndex,
    /// Stops the line's inbound-call thread.
    control: Arc<Control>,
}

impl Line for SimLine {
    type Call = SimCall;

    fn make_call<'call>(&mut self, request: MakeCall<'call, SimCall>) -> Completed<'call> {
        let Some(destination) = request.destination() else {
            // Dialling later (TSPI_lineDial) is not simulated.
            return request.reject(LineErr::LINEERR_OPERATIONUNAVAIL);
        };
        if destination.is_incomplete() {
            return request.reject(LineErr::LINEERR_OPERATIONUNAVAIL);
        }
        let digits = destination.digits();
        let action = self.shared.config.scenario.action_for(&digits);
        tracing::info!(line = self.index.0, %digits, ?action, "TSPI_lineMakeCall");
        if action == Action::Panic {
            panic!("dialled {digits}, which the scenario maps to `panic` (a debugging hook)");
        }
        let control = Arc::new(Control::new(&self.shared));
        let (pending, reply) = request.accept(SimCall {
            control: Arc::clone(&control),
            inbound: false,
        });
        let mut timing = self.shared.config.scenario.timing;
        timing.setup = self.shared.config.scenario.setup_for(&digits);
        let spawned = self
            .shared
            .workers
            .spawn(format!("call to {digits}"), move || {
                outbound(pending, &control, timing, action);
            });
        if let Err(error) = spawned {
            // The closure (and the PendingCall in it) was dropped: the request failed with
            // LINEERR_OPERATIONFAILED.
            tracing::error!(%error, "starting a call thread");
        }
        reply
    }

    fn close(self) {
        tracing::info!(line = self.index.0, "TSPI_lineClose");
        self.control.stop();
    }
}

/// One call: what the host can ask of it while its worker plays the remote party.
#[derive(Debug)]
pub struct SimCall {
    control: Arc<Control>,
    inbound: bool,
}

impl Call for SimCall {
    fn drop_call<'call>(
        &mut self,
        request: Request<'call>,
        _user_user_info: &[u8],
    ) -> Completed<'call> {
        // No more states from the worker once this returns (it reports under the same lock).
        self.control.stop();
        let delay = self.control.drop_delay();
        tracing::info!(request = request.id(), ?delay, "TSPI_lineDrop");
        if delay.is_zero() {
            return request.complete(Ok(()));
        }
        let (pending, reply) = request.accept();
        let spawned = (self.control.workers())
            .spawn("pending drop".into(), move || finish_drop(pending, delay));
        if let Err(error) = spawned {
            // The Pending was dropped with the closure: the drop failed with OPERATIONFAILED.
            tracing::error!(%error, "starting the drop thread");
        }
        reply
    }

    fn answer<'call>(
        &mut self,
        request: Request<'call>,
        _user_user_info: &[u8],
    ) -> Completed<'call> {
        if !self.inbound {
            return request.reject(LineErr::LINEERR_INVALCALLSTATE);
        }
        tracing::info!(request = request.id(), "TSPI_lineAnswer");
        let (pending, reply) = request.accept();
        // If the worker is gone (the caller hung up), the guard is dropped: OPERATIONFAILED.
        self.control.post_answer(pending);
        reply
    }

    fn close(self) {
        tracing::debug!("TSPI_lineCloseCall");
        self.control.stop();
    }
}

/// Completes a drop that was kept pending for `delay`, unless the host closed the call first
/// (then the framework completed it already and this does nothing).
fn finish_drop(pending: Pending, delay: Duration) {
    let token = pending.cancellation().clone();
    if token.wait_timeout(delay) == winprov_tspi::WaitOutcome::TimedOut {
        let _ = pending.complete(Ok(()));
    }
}

// ---------------------------------------------------------------------------------------------
// Workers

/// The remote party of an outbound call.
fn outbound(
    pending: PendingCall,
    control: &Arc<Control>,
    timing: crate::config::Timing,
    action: Action,
) {
    let stop = Arc::clone(control);
    let _registration = pending.cancellation().on_cancel(move || stop.stop());
    if !matches!(control.wait(timing.setup), Wake::Elapsed) {
        // Dropping the PendingCall fails the request (a no-op if the host ended it).
        return;
    }
    let Some(Ok(events)) = control.report(|| pending.succeed()) else {
        return;
    };
    let steps = [
        (CallState::Dialing, timing.dialing),
        (CallState::Proceeding, timing.proceeding),
    ];
    for (state, delay) in steps {
        if !control.state(&events, state) || !matches!(control.wait(delay), Wake::Elapsed) {
            return;
        }
    }
    match action {
        Action::Answer { after, hangup } => {
            if !control.state(&events, CallState::Ringback)
                || !matches!(control.wait(after), Wake::Elapsed)
                || !control.state(&events, CallState::Connected)
            {
                return;
            }
            if let Some(hangup) = hangup
                && matches!(control.wait(hangup), Wake::Elapsed)
            {
                control.disconnect(events, DisconnectMode::Normal);
            }
        }
        Action::Busy => {
            if control.state(&events, CallState::Busy) {
                control.disconnect(events, DisconnectMode::Busy);
            }
        }
        Action::NoAnswer { timeout } => {
            if control.state(&events, CallState::Ringback)
                && matches!(control.wait(timeout), Wake::Elapsed)
            {
                control.disconnect(events, DisconnectMode::NoAnswer);
            }
        }
        Action::Reject => control.disconnect(events, DisconnectMode::Reject),
        Action::Panic => unreachable!("make_call panics before accepting"),
    }
}

/// Offers a line's scheduled inbound calls when they are due.
fn offer_inbound(
    shared: &Arc<Shared>,
    control: &Arc<Control>,
    events: &LineEvents<LineSimulator>,
    mut calls: Vec<Inbound>,
) {
    let stop = Arc::clone(control);
    let _registration = events.cancellation().on_cancel(move || stop.stop());
    let opened = Instant::now();
    calls.sort_by_key(|call| call.after);
    for inbound in calls {
        let due = opened + inbound.after;
        if !matches!(
            control.wait(due.saturating_duration_since(Instant::now())),
            Wake::Elapsed
        ) {
            return;
        }
        let call_control = Arc::new(Control::new(shared));
        let call = SimCall {
            control: Arc::clone(&call_control),
            inbound: true,
        };
        let mut caller = CallerId::number(&inbound.from);
        if let Some(name) = &inbound.name {
            caller = caller.with_name(name);
        }
        tracing::info!(line = events.line().0, from = %inbound.from, "offering an inbound call");
        match events.new_call(call, caller) {
            Ok(call_events) => {
                let timing = shared.config.scenario.timing;
                let spawned =
                    shared
                        .workers
                        .spawn(format!("call from {}", inbound.from), move || {
                            answered_inbound(call_events, &call_control, timing.answer, &inbound);
                        });
                if let Err(error) = spawned {
                    tracing::error!(%error, "starting a call thread");
                }
            }
            Err(error) => tracing::warn!(%error, from = %inbound.from, "inbound call not offered"),
        }
    }
}

/// The remote party of an offered inbound call: waits for `TSPI_lineAnswer` (or gives up),
/// connects, maybe hangs up.
fn answered_inbound(
    events: CallEvents,
    control: &Arc<Control>,
    answer_delay: Duration,
    inbound: &Inbound,
) {
    let stop = Arc::clone(control);
    let _registration = events.cancellation().on_cancel(move || stop.stop());
    let pending = match control.wait_answer(inbound.abandon) {
        Wake::Answer(pending) => pending,
        Wake::Elapsed => {
            control.disconnect(events, DisconnectMode::Normal);
            return;
        }
        Wake::Stopped => return,
    };
    if !matches!(control.wait(answer_delay), Wake::Elapsed) {
        return;
    }
    let connected = control.report(|| {
        let _ = pending.complete(Ok(()));
        events.state(CallState::Connected).is_ok()
    });
    if connected != Some(true) {
        return;
    }
    if let Some(hangup) = inbound.hangup
        && matches!(control.wait(hangup), Wake::Elapsed)
    {
        control.disconnect(events, DisconnectMode::Normal);
    }
}

/// Why a worker's wait ended.
#[derive(Debug)]
enum Wake {
    /// The delay passed.
    Elapsed,
    /// The call was dropped or closed (or the line closed): stop.
    Stopped,
    /// `TSPI_lineAnswer` arrived.
    Answer(Pending),
}

/// How the host's side (trait methods, cancellation) tells one worker what happened.
#[derive(Debug)]
struct Control {
    state: Mutex<ControlState>,
    changed: Condvar,
    /// The drop delay and the worker registry, for a pending drop's thread.
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct ControlState {
    stopped: bool,
    answer: Option<Pending>,
}

impl Control {
    fn new(shared: &Arc<Shared>) -> Self {
        Self {
            state: Mutex::default(),
            changed: Condvar::new(),
            shared: Arc::clone(shared),
        }
    }

    fn stop(&self) {
        lock(&self.state).stopped = true;
        self.changed.notify_all();
    }

    fn post_answer(&self, pending: Pending) {
        let mut state = lock(&self.state);
        if !state.stopped && state.answer.is_none() {
            state.answer = Some(pending);
            self.changed.notify_all();
        }
    }

    fn workers(&self) -> &Workers {
        &self.shared.workers
    }

    fn drop_delay(&self) -> Duration {
        self.shared.config.scenario.timing.drop
    }

    /// Waits `delay` unless stopped first.
    fn wait(&self, delay: Duration) -> Wake {
        let deadline = Instant::now() + delay;
        let mut state = lock(&self.state);
        loop {
            if state.stopped {
                return Wake::Stopped;
            }
            let now = Instant::now();
            if now >= deadline {
                return Wake::Elapsed;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }

    /// Waits for `TSPI_lineAnswer`, at most `limit` (forever if `None`), unless stopped.
    fn wait_answer(&self, limit: Option<Duration>) -> Wake {
        let deadline = limit.map(|limit| Instant::now() + limit);
        let mut state = lock(&self.state);
        loop {
            if state.stopped {
                return Wake::Stopped;
            }
            if let Some(pending) = state.answer.take() {
                return Wake::Answer(pending);
            }
            state = match deadline {
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Wake::Elapsed;
                    }
                    self.changed
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .0
                }
            };
        }
    }

    /// Runs `report` unless stopped, holding the lock `stop` takes: once `stop` returned, no
    /// report of this worker runs any more.
    fn report<R>(&self, report: impl FnOnce() -> R) -> Option<R> {
        let state = lock(&self.state);
        if state.stopped {
            return None;
        }
        let result = report();
        drop(state);
        Some(result)
    }

    /// Reports `state`; `false` when the worker should stop.
    fn state(&self, events: &CallEvents, state: CallState) -> bool {
        matches!(self.report(|| events.state(state)), Some(Ok(())))
    }

    /// Reports the remote hang-up (the worker is done either way).
    fn disconnect(&self, events: CallEvents, mode: DisconnectMode) {
        let _ = self.report(|| events.disconnected(mode));
    }
}

// ---------------------------------------------------------------------------------------------

/// The provider's worker threads, joined by the final `TSPI_providerShutdown`.
#[derive(Debug, Default)]
struct Workers {
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Workers {
    fn spawn(&self, name: String, work: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let handle = std::thread::Builder::new()
            .name(format!("line-simulator: {name}"))
            .spawn(work)?;
        let mut threads = lock(&self.threads);
        threads.retain(|thread| !thread.is_finished());
        threads.push(handle);
        Ok(())
    }

    fn live(&self) -> usize {
        let mut threads = lock(&self.threads);
        threads.retain(|thread| !thread.is_finished());
        threads.len()
    }

    /// Joins every thread that ends within `timeout`; returns how many did not.
    fn join_all(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let threads = std::mem::take(&mut *lock(&self.threads));
        let mut stuck = Vec::new();
        for thread in threads {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if thread.is_finished() {
                if thread.join().is_err() {
                    tracing::error!("a worker thread panicked");
                }
            } else {
                stuck.push(thread);
            }
        }
        let count = stuck.len();
        lock(&self.threads).extend(stuck);
        count
    }
}
