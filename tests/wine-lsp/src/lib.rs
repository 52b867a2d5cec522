//! A layered Winsock provider for the Wine tests of layered providers, written with the author's
//! API only (`winprov_wsp::Layer`, no `unsafe`): a metering layer of non-IFS handles over the
//! provider below it in its protocol chain. Its one export, `WSPStartup`, comes from
//! `export_provider!(layer: …)`; `tests/wine-lsp/host/lsp_host.c` drives it under Wine, over the
//! C base provider `base/wsp_base.dll` (`tests/README.md`).
//!
//! What it does in its hooks, from each call's [`Passed::outcome`]:
//!
//! - counts the sockets it opened and closed, the connects and accepts that succeeded, the bytes
//!   of the sends and receives that completed at once, the overlapped ones the provider below
//!   accepted as pending, the shutdowns and the abortive lingers (`SO_LINGER {1, 0}`) passed
//!   down;
//! - in [`Layer::completed`] (a relayed request finished below, before its caller is told):
//!   counts the completion, adds its bytes to those sent or received, or counts its error;
//! - panics in the send hook for a send of [`PANIC_BEFORE`] bytes (before passing it down) or of
//!   [`PANIC_AFTER`] bytes (after passing it down): the panic boundary's test.
//!
//! The harness reads the counters from a file: when the environment variable
//! [`COUNTERS_ENV`] names a path, every change of the counters rewrites that file, under the
//! counters' lock, with one line of `name=value` pairs (the order of [`Counters`]' fields);
//! write errors are ignored (the layer serves the same without its file). A hook that changed
//! nothing writes nothing. The file is complete once the call whose hook wrote it returns.
#![forbid(unsafe_code)]

use std::sync::Mutex;
use winprov_bindings::windows_core::GUID;
use winprov_wsp::Layer;
use winprov_wsp::abi::{Linger, SockOpt, Transfer};
use winprov_wsp::layer::{
    Accepting, Call, Closing, Completion, Connecting, NonIfs, Opened, Passed, Receiving, Sending,
    SettingOption, ShuttingDown,
};

/// The environment variable naming the counters' file.
pub const COUNTERS_ENV: &str = "WINPROV_LSP_COUNTERS";
/// A send of this many bytes panics in the hook before it is passed down.
pub const PANIC_BEFORE: u64 = 4241;
/// A send of this many bytes panics in the hook after it was passed down.
pub const PANIC_AFTER: u64 = 4243;

/// What the layer counted. See the [crate documentation](crate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Sockets the layer opened (`Layer::open`).
    pub opened: u64,
    /// Sockets whose close passed down and succeeded.
    pub closed: u64,
    /// Connects that succeeded.
    pub connects: u64,
    /// Accepts that succeeded.
    pub accepts: u64,
    /// Bytes of the sends that completed at once or whose completion the layer relayed.
    pub sent: u64,
    /// Bytes of the receives that completed at once or whose completion the layer relayed.
    pub received: u64,
    /// Sends and receives that went pending below.
    pub pending: u64,
    /// Shutdowns that succeeded.
    pub shutdowns: u64,
    /// `SO_LINGER {1, 0}` options that succeeded.
    pub resets: u64,
    /// Sends whose hook panicked.
    pub panics: u64,
    /// Pending sends and receives whose completion `Layer::completed` saw.
    pub completed: u64,
    /// Of them, those that failed (aborted by a close, reset, ...).
    pub completion_errors: u64,
}

impl Counters {
    /// The file's line.
    pub fn line(&self) -> String {
        format!(
            "opened={} closed={} connects={} accepts={} sent={} received={} pending={} \
             shutdowns={} resets={} panics={} completed={} completion_errors={}\n",
            self.opened,
            self.closed,
            self.connects,
            self.accepts,
            self.sent,
            self.received,
            self.pending,
            self.shutdowns,
            self.resets,
            self.panics,
            self.completed,
            self.completion_errors
        )
    }
}

/// The metering layer. See the [crate documentation](crate).
#[derive(Debug, Default)]
pub struct Meter {
    counters: Mutex<Counters>,
}

impl Meter {
    /// A layer with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        *self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies `change` to the counters and rewrites the file, under the lock.
    fn count(&self, change: impl FnOnce(&mut Counters)) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut counters);
        if let Some(path) = std::env::var_os(COUNTERS_ENV) {
            let _ = std::fs::write(path, counters.line());
        }
    }

    /// Counts the outcome of a send (`sent`) or a receive: its bytes when it completed at once,
    /// one pending request when it went pending below.
    fn transferred(&self, outcome: Result<&Transfer, winprov_wsp::WsaError>, sent: bool) {
        match outcome {
            Ok(Transfer::Done { bytes, .. }) => self.count(|c| {
                let field = if sent { &mut c.sent } else { &mut c.received };
                *field += u64::from(*bytes);
            }),
            Ok(Transfer::Pending) => self.count(|c| c.pending += 1),
            _ => {}
        }
    }
}

/// The layer's hidden catalog entry's provider GUID (`lsp_host.c` has the same).
const PROVIDER_ID: GUID = GUID::from_u128(0x7769_6e70_726f_7600_1a7e_5749_4e45_0001);

impl Layer for Meter {
    type Handles = NonIfs;
    type Socket = ();
    const PROVIDER_ID: GUID = PROVIDER_ID;
    const DESCRIPTION: &'static str = "winprov Wine test layer: a meter";

    fn open(&self, _: &Opened<'_>) {
        self.count(|c| c.opened += 1);
    }

    fn connect<'c>(&self, _: &(), call: Call<'c, Connecting<'c>, ()>) -> Passed<'c, ()> {
        let passed = call.pass();
        if passed.outcome().is_ok() {
            self.count(|c| c.connects += 1);
        }
        passed
    }

    fn accept<'c>(&self, _: &(), call: Call<'c, Accepting, Vec<u8>>) -> Passed<'c, Vec<u8>> {
        let passed = call.pass();
        if passed.outcome().is_ok() {
            self.count(|c| c.accepts += 1);
        }
        passed
    }

    fn send<'c>(&self, _: &(), call: Call<'c, Sending<'c>, Transfer>) -> Passed<'c, Transfer> {
        let len = call.args().len();
        if len == PANIC_BEFORE {
            self.count(|c| c.panics += 1);
            panic!("the test layer's send hook panics before passing {len} bytes down");
        }
        let passed = call.pass();
        if len == PANIC_AFTER {
            self.count(|c| c.panics += 1);
            panic!("the test layer's send hook panics after passing {len} bytes down");
        }
        self.transferred(passed.outcome(), true);
        passed
    }

    fn recv<'c>(&self, _: &(), call: Call<'c, Receiving, Transfer>) -> Passed<'c, Transfer> {
        let passed = call.pass();
        self.transferred(passed.outcome(), false);
        passed
    }

    fn completed(&self, _: &(), completion: Completion) {
        self.count(|c| {
            c.completed += 1;
            match completion {
                Completion::Sent { outcome: Ok(bytes) } => c.sent += u64::from(bytes),
                Completion::Received {
                    outcome: Ok((bytes, _)),
                } => c.received += u64::from(bytes),
                Completion::Sent { outcome: Err(_) } | Completion::Received { outcome: Err(_) } => {
                    c.completion_errors += 1;
                }
                _ => {}
            }
        });
    }

    fn shutdown<'c>(&self, _: &(), call: Call<'c, ShuttingDown, ()>) -> Passed<'c, ()> {
        let passed = call.pass();
        if passed.outcome().is_ok() {
            self.count(|c| c.shutdowns += 1);
        }
        passed
    }

    fn set_sock_opt<'c>(&self, _: &(), call: Call<'c, SettingOption<'c>, ()>) -> Passed<'c, ()> {
        let abortive = matches!(
            call.args().option(),
            SockOpt::Linger(Linger {
                on: true,
                seconds: 0
            })
        );
        let passed = call.pass();
        if abortive && passed.outcome().is_ok() {
            self.count(|c| c.resets += 1);
        }
        passed
    }

    fn close<'c>(&self, _: &(), call: Call<'c, Closing, ()>) -> Passed<'c, ()> {
        let passed = call.pass();
        if passed.outcome().is_ok() {
            self.count(|c| c.closed += 1);
        }
        passed
    }
}

winprov_wsp::export_provider!(layer: Meter, Meter::new);
