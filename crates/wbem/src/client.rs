//! Calling WMI from Rust: a [`Connection`] to a namespace and its asynchronous calls, each an
//! [`AsyncCall`] with an `IWbemObjectSink` of its own.
//!
//! ```no_run
//! use winprov_wbem::Value;
//! use winprov_wbem::client::{ClientError, Connection};
//!
//! # fn main() -> Result<(), ClientError> {
//! let wmi = Connection::connect("root\\cimv2")?;
//! let mut call = wmi.enumerate("Win32_OperatingSystem");
//! for instance in call.by_ref() {
//!     println!("{:?}", instance.get("Caption"));
//! }
//! call.finish()?; // the call's one final status
//!
//! let mut count = wmi.exec_method("Winprov_DirectoryEntry", "Count", None);
//! let out = count.next(); // the out-parameters
//! count.finish()?;
//! if let Some(Value::U32(n)) = out.as_ref().and_then(|o| o.get("ReturnValue")) {
//!     println!("{n} entries");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! What holds:
//!
//! - **One sink per call.** Every call is made with a new sink object, so `CancelAsyncCall`,
//!   which cancels every call sharing the sink it is given, names that call only.
//! - **One final status.** [`AsyncCall::finish`] returns the call's final `SetStatus` (its
//!   `hResult` and `strParam`), exactly once: whatever a faulty server sends after it (a second
//!   final status, late objects) is ignored, logged and counted ([`CallStatus::ignored`]).
//!   Progress reports are ignored: the calls are made without `WBEM_FLAG_SEND_STATUS`.
//! - **Refused up front.** A call whose `*Async` method returns an error reports that error
//!   ([`ClientError::Refused`]) and never waits: WMI does not use the sink then.
//! - **Cancel on drop.** Dropping an `AsyncCall` before its final status arrived calls
//!   `CancelAsyncCall` with its sink, and returns without waiting: the final status WMI then
//!   sends (`WBEM_E_CALL_CANCELLED`) reaches a sink nobody reads, which answers any further
//!   `Indicate` with `WBEM_E_CALL_CANCELLED`. The sink is a COM object freed on the server's
//!   last `Release`: nothing leaks, nothing blocks. Dropping a call after its final status (by
//!   `finish`, or an iteration that reached the end) cancels nothing.
//! - **No deadlock in process.** The sink runs on WMI's threads, or, with a server in the same
//!   process, on the caller's own thread inside the `*Async` method: its channel is unbounded,
//!   so it never blocks, and the objects wait there until the iterator reads them. (A call
//!   returns every object it indicated: read them, or drop the call, as they come.)
//!
//! The calls pass no `IWbemContext`: they are requests of their own, not dependent requests of
//! a provider's call (R-WMI-14).

use crate::abi::client::{Pending, Services, SinkEvent};
use crate::value::Instance;
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use winprov_core::HResult;

/// A connection to one WMI namespace, whose calls each have a sink of their own. Clones share
/// the connection; it may be used from any thread.
#[derive(Clone)]
pub struct Connection {
    services: Arc<Services>,
}

impl Connection {
    /// Connects to `namespace` (`root\cimv2`, `root\winprov` …) on this computer, as the
    /// calling user: WMI's locator (`CoCreateInstance(CLSID_WbemLocator)`,
    /// `IWbemLocator::ConnectServer`), then the proxy's security (`CoSetProxyBlanket`: NTLM or
    /// Kerberos, packet-level authentication per call, impersonation).
    ///
    /// The process's multithreaded apartment is kept alive for as long as the connection or
    /// one of its calls lives, and a calling thread with no apartment joins it; a thread in a
    /// single-threaded apartment is refused (`RPC_E_CHANGED_MODE`): the sinks are called back
    /// on WMI's threads. Whether WMI may call the sinks back is the process's COM security,
    /// which this crate does not set: a program sets it once with `CoInitializeSecurity`
    /// before its first COM call, or gets COM's registry defaults, which Microsoft warns may be
    /// lower than WMI needs ("Setting Client Application Process Security").
    ///
    /// Off Windows, and where WMI is absent, the error says WMI is not available
    /// ([`ClientError::wmi_unavailable`]).
    pub fn connect(namespace: &str) -> Result<Self, ClientError> {
        match Services::connect(namespace) {
            Ok(services) => Ok(Self::new(services)),
            Err(hresult) => Err(ClientError::Connect {
                namespace: namespace.to_string(),
                hresult,
            }),
        }
    }

    /// A connection over a namespace the crate already holds (the simulator's WMI).
    pub(crate) fn new(services: Services) -> Self {
        Self {
            services: Arc::new(services),
        }
    }

    /// The sinks of this connection's calls still alive: a sink lives until both its
    /// [`AsyncCall`] and the server released it (a cancelled call's, until WMI is done with it).
    pub fn live_sinks(&self) -> usize {
        self.services.live_sinks()
    }

    /// `CreateInstanceEnumAsync(class)`: the instances of `class` (and its subclasses).
    pub fn enumerate(&self, class: &str) -> AsyncCall {
        AsyncCall::new(self.services.enumerate(class))
    }

    /// `ExecQueryAsync("WQL", wql)`: the instances a WQL query selects.
    pub fn query(&self, wql: &str) -> AsyncCall {
        AsyncCall::new(self.services.query(wql))
    }

    /// `GetObjectAsync(path)`: the instance (or class) `path` names, as the call's one object
    /// (`WBEM_E_NOT_FOUND` when there is none).
    pub fn get(&self, path: &str) -> AsyncCall {
        AsyncCall::new(self.services.get(path))
    }

    /// `ExecMethodAsync(path, method, in_parameters)`: `path` is the class for a static method,
    /// an instance's path otherwise; `in_parameters` (a `__PARAMETERS` instance, as a
    /// [`MethodParameters`](crate::MethodParameters) struct's `to_instance` gives) is made an
    /// instance of the method's in-parameters signature. The call's one object is the
    /// out-parameters (`ReturnValue` and the `[out]` parameters).
    pub fn exec_method(
        &self,
        path: &str,
        method: &str,
        in_parameters: Option<&Instance>,
    ) -> AsyncCall {
        AsyncCall::new(self.services.exec_method(path, method, in_parameters))
    }

    /// `PutInstanceAsync(instance)`, created or updated, made from the class definition of
    /// `instance.class()`. The final status's `strParam` ([`CallStatus::param`]) is the
    /// instance's object path.
    pub fn put(&self, instance: &Instance) -> AsyncCall {
        AsyncCall::new(self.services.put(instance))
    }

    /// `DeleteInstanceAsync(path)`.
    pub fn delete(&self, path: &str) -> AsyncCall {
        AsyncCall::new(self.services.delete(path))
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

/// A call's final status: the `SetStatus(WBEM_STATUS_COMPLETE, …)` it ended with, a success.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallStatus {
    /// `hResult`: `WBEM_S_NO_ERROR`, or another success code (`WBEM_S_FALSE` …).
    pub hresult: HResult,
    /// `strParam`: the object path of a put (R-WMI-9); `None` when empty.
    pub param: Option<String>,
    /// Messages the call's sink received after its final status and ignored, by the time
    /// `finish` returned (a faulty server: each is also logged).
    pub ignored: usize,
}

/// Why a connection or a call failed; every case keeps its `HRESULT` ([`hresult`](Self::hresult)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// [`Connection::connect`] failed: `REGDB_E_CLASSNOTREG` when there is no WMI (always off
    /// Windows), `WBEM_E_INVALID_NAMESPACE`, `WBEM_E_ACCESS_DENIED`, `RPC_E_CHANGED_MODE` (a
    /// thread in a single-threaded apartment) …
    Connect {
        /// The namespace asked for.
        namespace: String,
        /// Why.
        hresult: HResult,
    },
    /// The call was refused before it started: its `*Async` method returned `hresult` (WMI
    /// does not use the sink then), or its instance or in-parameters could not be made from
    /// their class (`WBEM_E_INVALID_CLASS`, `WBEM_E_TYPE_MISMATCH`,
    /// `WBEM_E_INVALID_METHOD_PARAMETERS` …). Reported at once.
    Refused {
        /// Why.
        hresult: HResult,
    },
    /// The call's final status is an error: `WBEM_E_NOT_FOUND`, `WBEM_E_CALL_CANCELLED` …
    Failed {
        /// The final status's `hResult`.
        hresult: HResult,
        /// Its `strParam`, when not empty.
        param: Option<String>,
    },
    /// The call succeeded, but `objects` of the objects it indicated could not be read (the
    /// first one's reason: `hresult`); the others were passed on.
    Unreadable {
        /// Why the first one could not be read.
        hresult: HResult,
        /// How many could not.
        objects: usize,
    },
    /// The server released the call's sink without a final status (`WBEM_E_FAILED`): a
    /// server that broke WMI's protocol.
    NoStatus,
}

impl ClientError {
    /// The `HRESULT` of the failure.
    pub fn hresult(&self) -> HResult {
        match self {
            Self::Connect { hresult, .. }
            | Self::Refused { hresult }
            | Self::Failed { hresult, .. }
            | Self::Unreadable { hresult, .. } => *hresult,
            Self::NoStatus => HResult::WBEM_E_FAILED,
        }
    }

    /// Whether WMI is not there at all (its locator's class is not registered, as off Windows).
    pub fn wmi_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Connect { hresult, .. } if *hresult == HResult::REGDB_E_CLASSNOTREG
        )
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connect { hresult, .. } if self.wmi_unavailable() => write!(
                f,
                "WMI is not available on this system (CLSID_WbemLocator cannot be created: \
                 {hresult})"
            ),
            Self::Connect { namespace, hresult } => {
                write!(f, "WMI namespace {namespace}: {hresult}")
            }
            Self::Refused { hresult } => write!(f, "the WMI call was refused: {hresult}"),
            Self::Failed {
                hresult,
                param: Some(param),
            } => write!(f, "the WMI call failed: {hresult} ({param})"),
            Self::Failed { hresult, .. } => write!(f, "the WMI call failed: {hresult}"),
            Self::Unreadable { hresult, objects } => write!(
                f,
                "{objects} object(s) the WMI call returned could not be read: {hresult}"
            ),
            Self::NoStatus => write!(f, "the WMI call ended without a final status"),
        }
    }
}

impl std::error::Error for ClientError {}

/// One asynchronous call: an iterator of the objects its sink receives (each `next` waits for
/// the next one, `None` after the final status), then [`finish`](Self::finish), its final
/// status. Dropped before the final status arrived, it cancels the call (see the
/// [module documentation](self)).
#[must_use = "dropping a call before its final status cancels it"]
pub struct AsyncCall {
    state: State,
}

enum State {
    /// The `*Async` method (or the making of its arguments) failed: the sink is not used.
    Refused(HResult),
    Running(Running),
    /// Finished: nothing left to do on drop.
    Done,
}

struct Running {
    pending: Pending,
    /// Objects received and not read yet.
    objects: VecDeque<Instance>,
    /// The final status, once received.
    status: Option<(HResult, Option<String>)>,
    /// The first unreadable object's reason, and how many there were.
    unreadable: Option<(HResult, usize)>,
}

impl Running {
    /// Takes in one of the sink's messages.
    fn take(&mut self, event: SinkEvent) {
        match event {
            SinkEvent::Objects(objects) => self.objects.extend(objects),
            SinkEvent::Unreadable(error) => {
                let (_, count) = self.unreadable.get_or_insert((error, 0));
                *count += 1;
            }
            SinkEvent::Status { hresult, param } => self.status = Some((hresult, param)),
        }
    }

    /// Waits for the next object; `None` after the final status (or a sink gone without one).
    fn next(&mut self) -> Option<Instance> {
        loop {
            if let Some(instance) = self.objects.pop_front() {
                return Some(instance);
            }
            if self.status.is_some() {
                return None;
            }
            self.take(self.pending.next()?);
        }
    }

    /// The messages already there, without waiting.
    fn poll(&mut self) {
        while self.status.is_none() {
            match self.pending.try_next() {
                Some(event) => self.take(event),
                None => return,
            }
        }
    }
}

impl AsyncCall {
    fn new(started: Result<Pending, HResult>) -> Self {
        let state = match started {
            Ok(pending) => State::Running(Running {
                pending,
                objects: VecDeque::new(),
                status: None,
                unreadable: None,
            }),
            Err(hresult) => State::Refused(hresult),
        };
        Self { state }
    }

    /// Waits for the call's final status and returns it: `Ok` for a success, the error
    /// otherwise. Objects not read yet are dropped. Returns at once for a refused call.
    pub fn finish(mut self) -> Result<CallStatus, ClientError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Refused(hresult) => Err(ClientError::Refused { hresult }),
            State::Done => Err(ClientError::NoStatus),
            State::Running(mut running) => {
                // No cancel from here on: the sink is the server's to release, and a server
                // that releases it without a final status closes the channel.
                running.pending.release_sink();
                while running.next().is_some() {}
                let ignored = running.pending.ignored();
                match (running.status, running.unreadable) {
                    (None, _) => Err(ClientError::NoStatus),
                    (Some((hresult, param)), _) if !hresult.is_ok() => {
                        Err(ClientError::Failed { hresult, param })
                    }
                    (Some(_), Some((hresult, objects))) => {
                        Err(ClientError::Unreadable { hresult, objects })
                    }
                    (Some((hresult, param)), None) => Ok(CallStatus {
                        hresult,
                        param,
                        ignored,
                    }),
                }
            }
        }
    }
}

impl Iterator for AsyncCall {
    type Item = Instance;

    fn next(&mut self) -> Option<Instance> {
        match &mut self.state {
            State::Running(running) => running.next(),
            State::Refused(_) | State::Done => None,
        }
    }
}

/// After `None` (the final status), `None` again.
impl std::iter::FusedIterator for AsyncCall {}

impl Drop for AsyncCall {
    fn drop(&mut self) {
        let State::Running(running) = &mut self.state else {
            return;
        };
        running.poll();
        if running.status.is_some() {
            return;
        }
        let cancelled = running.pending.cancel();
        tracing::debug!(%cancelled, "an unfinished WMI call dropped: CancelAsyncCall");
    }
}

impl fmt::Debug for AsyncCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Refused(hresult) => format!("refused: {hresult}"),
            State::Running(running) => match &running.status {
                Some((hresult, _)) => format!("finished: {hresult}"),
                None => "running".to_string(),
            },
            State::Done => "done".to_string(),
        };
        f.debug_struct("AsyncCall")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
