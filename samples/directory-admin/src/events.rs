//! The event half of the provider: a thread that watches the directory file and fires
//! `Winprov_DirectoryChanged` when it changes.
//!
//! WMI's event sink is kept for as long as the provider lives (it can only indicate: the
//! framework's `EventSink` has no `SetStatus`, R-WMI-10). An event WMI refuses with
//! `WBEM_E_SERVER_TOO_BUSY` is fired again at the next tick (R-WMI-15); one refused otherwise
//! is dropped with a log line.

use crate::classes::changed_event;
use email_directory_file::DirectoryFile;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;
use winprov_wbem::{EventSink, HResult};

/// The watching thread; dropping it stops the thread and waits for it.
#[derive(Debug)]
pub(crate) struct Watcher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Watches `file` every `interval`, firing on `sink`.
    pub(crate) fn start(file: DirectoryFile, sink: EventSink, interval: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("directory-watcher".into())
            .spawn(move || watch(&file, &sink, interval, &stopped))
            .map_err(|error| tracing::error!(%error, "cannot start the directory watcher"))
            .ok();
        Self {
            stop: Some(stop),
            thread,
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // The thread sees the channel close at its next wait.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(file: &DirectoryFile, sink: &EventSink, interval: Duration, stopped: &mpsc::Receiver<()>) {
    let mut seen = file.version().ok();
    let mut pending = None;
    loop {
        match stopped.recv_timeout(interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = file.version().ok();
        if now != seen {
            seen = now;
            match file.read() {
                Ok(directory) => pending = Some(changed_event(directory.entries().len())),
                Err(error) => tracing::warn!(%error, "the changed directory file is unreadable"),
            }
        }
        if let Some(event) = pending.take() {
            match sink.indicate(vec![event.clone()]) {
                Ok(()) => {}
                // R-WMI-15: WMI may take it later.
                Err(HResult::WBEM_E_SERVER_TOO_BUSY) => pending = Some(event),
                Err(error) => tracing::warn!(%error, "WMI refused a directory event"),
            }
        }
    }
}
