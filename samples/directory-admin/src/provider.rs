//! The provider: WMI's calls answered from the directory file.
//!
//! - enumerate `Winprov_DirectoryEntry`: every entry, stopping as soon as the client cancels;
//! - get by path, and query `… WHERE Name = '…'` (any other query is refused as too complex,
//!   and WMI enumerates and filters instead);
//! - put: create or replace an entry, as the client's flags allow, and answer its path;
//! - delete by path;
//! - the static method `Count()`: the number of entries in `ReturnValue`;
//! - events: `Winprov_DirectoryChanged` when the file changes (see `events`).
//!
//! A file that cannot be read or written fails the call with `WBEM_E_FAILED` (the cause is
//! logged); the file is never left half-written (see `email_directory_file::DirectoryFile`).

use crate::classes::{entry_from_instance, entry_name, entry_path, entry_to_instance};

use crate::classes::{CountIn, CountOut, Winprov_DirectoryEntry};
use crate::events::Watcher;
use email_directory_file::{Directory, DirectoryFile, FileError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use winprov_wbem::class::{MethodParameters, WmiClass};
use winprov_wbem::{
    Completed, DeleteCall, EventProvider, EventSink, GetCall, HResult, Init, Instance,
    InstanceProvider, MethodCall, MethodProvider, ProviderInit, PutCall, PutMode, Response,
};

/// How often the event thread looks at the file when no interval is given.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Environment variable: how often, in milliseconds, the event thread looks at the file.
pub const ENV_POLL_MS: &str = "DIRECTORY_ADMIN_POLL_MS";

/// Environment variable naming a method that panics when called: a fault the host harness
/// injects to see the framework turn a panic into `WBEM_E_FAILED` (unset in production).
pub const ENV_PANIC_ON: &str = "DIRECTORY_ADMIN_PANIC_ON";

/// The directory-admin provider.
#[derive(Debug)]
pub struct DirectoryAdmin {
    file: DirectoryFile,
    poll_interval: Duration,
    panic_on: Option<String>,
    watcher: Mutex<Option<Watcher>>,
}

impl DirectoryAdmin {
    /// A provider of the directory at `file`.
    pub fn new(file: DirectoryFile) -> Self {
        Self {
            file,
            poll_interval: DEFAULT_POLL_INTERVAL,
            panic_on: None,
            watcher: Mutex::new(None),
        }
    }

    /// The provider of the file the `email-directory` service serves (its configuration:
    /// `EMAIL_DIRECTORY_FILE`, else `%ProgramData%\winprov\email-directory.txt`), with the
    /// poll interval of [`ENV_POLL_MS`] and the fault of [`ENV_PANIC_ON`] if set.
    pub fn from_env() -> Self {
        let mut provider = Self::new(DirectoryFile::new(email_directory_file::configured_path()));
        if let Some(ms) = std::env::var(ENV_POLL_MS)
            .ok()
            .and_then(|v| v.trim().parse().ok())
        {
            provider.poll_interval = Duration::from_millis(ms);
        }
        provider.panic_on = std::env::var(ENV_PANIC_ON).ok().filter(|v| !v.is_empty());
        provider
    }

    /// The same provider, looking at the file every `interval` for events.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The directory file.
    pub fn file(&self) -> &DirectoryFile {
        &self.file
    }

    fn read(&self) -> Result<Arc<Directory>, HResult> {
        self.file.read().map_err(unusable)
    }
}

/// The entry class's name.
fn entry_class() -> &'static str {
    Winprov_DirectoryEntry::NAME
}

fn unusable(error: FileError) -> HResult {
    tracing::error!(%error, "the directory file is unusable");
    HResult::WBEM_E_FAILED
}

/// The name `query` selects, for the one query form answered directly:
/// `SELECT … FROM Winprov_DirectoryEntry WHERE Name = '…'` (or `"…"`).
fn selected_name(query: &str) -> Option<String> {
    let lower = query.to_ascii_lowercase();
    let from = lower.find(" from ")?;
    let rest = &query[from + 6..];
    let (class, condition) = rest.trim_start().split_once(char::is_whitespace)?;
    if !class.eq_ignore_ascii_case(entry_class()) {
        return None;
    }
    let condition = condition.trim();
    let (keyword, condition) = condition.split_at_checked(5)?;
    if !keyword.eq_ignore_ascii_case("where") {
        return None;
    }
    let (property, value) = condition.split_once('=')?;
    if !property.trim().eq_ignore_ascii_case("Name") {
        return None;
    }
    let value = value.trim();
    let quote = value.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let inner = value.strip_prefix(quote)?.strip_suffix(quote)?;
    (!inner.contains(quote) && !inner.contains('\\')).then(|| inner.to_string())
}

impl ProviderInit for DirectoryAdmin {
    fn init(&self, init: &Init<'_>) -> Result<(), HResult> {
        tracing::info!(
            namespace = init.namespace,
            path = %self.file.path().display(),
            "directory-admin provider initialized"
        );
        Ok(())
    }
}

impl InstanceProvider for DirectoryAdmin {
    fn get_object<'call>(&self, path: &str, call: GetCall<'call>) -> Completed<'call> {
        let outcome = entry_name(path).and_then(|name| {
            let directory = self.read()?;
            Ok(directory.get(&name).map(entry_to_instance))
        });
        call.complete(outcome)
    }

    fn enumerate<'call>(&self, class: &str, mut call: Response<'call>) -> Completed<'call> {
        if !class.eq_ignore_ascii_case(entry_class()) {
            return call.finish(Err(HResult::WBEM_E_INVALID_CLASS));
        }
        let directory = match self.read() {
            Ok(directory) => directory,
            Err(error) => return call.finish(Err(error)),
        };
        for entry in directory.entries() {
            if call.indicate(entry_to_instance(entry)).is_err() {
                // Cancelled: the client has its WBEM_E_CALL_CANCELLED already.
                break;
            }
        }
        call.finish(Ok(()))
    }

    fn query<'call>(
        &self,
        _language: &str,
        query: &str,
        mut call: Response<'call>,
    ) -> Completed<'call> {
        let Some(name) = selected_name(query) else {
            // WMI enumerates and filters itself.
            return call.finish(Err(HResult::WBEM_E_PROVIDER_NOT_CAPABLE));
        };
        let directory = match self.read() {
            Ok(directory) => directory,
            Err(error) => return call.finish(Err(error)),
        };
        if let Some(entry) = directory.get(&name) {
            let _ = call.indicate(entry_to_instance(entry));
        }
        call.finish(Ok(()))
    }

    fn put<'call>(&self, instance: Instance, call: PutCall<'call>) -> Completed<'call> {
        let mode = call.mode();
        let outcome = entry_from_instance(&instance).and_then(|entry| {
            let path = entry_path(&entry.name);
            let changed = self.file.update(|directory| {
                let exists = directory.get(&entry.name).is_some();
                match (mode, exists) {
                    (PutMode::CreateOnly, true) => return Err(HResult::WBEM_E_ALREADY_EXISTS),
                    (PutMode::UpdateOnly, false) => return Err(HResult::WBEM_E_NOT_FOUND),
                    _ => {}
                }
                let name = entry.name.clone();
                *directory.get_or_insert(&name) = entry;
                Ok(())
            });
            changed.map_err(unusable)?.map(|()| path)
        });
        call.complete(outcome)
    }

    fn delete<'call>(&self, path: &str, call: DeleteCall<'call>) -> Completed<'call> {
        let outcome = entry_name(path).and_then(|name| {
            let changed = self.file.update(|directory| match directory.remove(&name) {
                Some(_) => Ok(()),
                None => Err(HResult::WBEM_E_NOT_FOUND),
            });
            changed.map_err(unusable)?
        });
        call.complete(outcome)
    }
}

impl MethodProvider for DirectoryAdmin {
    fn exec_method<'call>(
        &self,
        path: &str,
        method: &str,
        in_parameters: Option<&Instance>,
        call: MethodCall<'call>,
    ) -> Completed<'call> {
        if self.panic_on.as_deref() == Some(method) {
            panic!("{ENV_PANIC_ON}: {method}");
        }
        // `Count` is static: it is called on the class, not on an instance.
        if !path.eq_ignore_ascii_case(entry_class()) {
            return call.complete(Err(HResult::WBEM_E_INVALID_METHOD));
        }
        if !method.eq_ignore_ascii_case(CountIn::METHOD) {
            return call.complete(Err(HResult::WBEM_E_INVALID_METHOD));
        }
        if let Err(error) = CountIn::from_parameters(in_parameters) {
            return call.complete(Err(error.hresult()));
        }
        let outcome = self.read().map(|directory| {
            let count = u32::try_from(directory.entries().len()).unwrap_or(u32::MAX);
            Some(CountOut { ReturnValue: count }.to_instance())
        });
        call.complete(outcome)
    }
}

impl EventProvider for DirectoryAdmin {
    fn provide_events(&self, sink: EventSink, _flags: i32) -> Result<(), HResult> {
        let watcher = Watcher::start(self.file.clone(), sink, self.poll_interval);
        // A second ProvideEvents replaces the first sink (the old thread stops).
        let old = self
            .watcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(watcher);
        drop(old);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::selected_name;

    #[test]
    fn only_the_name_query_is_answered_directly() {
        let q = |text: &str| selected_name(text);
        assert_eq!(
            q("SELECT * FROM Winprov_DirectoryEntry WHERE Name = 'a@b'").as_deref(),
            Some("a@b")
        );
        assert_eq!(
            q(r#"select Name from winprov_directoryentry where name="a@b""#).as_deref(),
            Some("a@b")
        );
        for other in [
            "SELECT * FROM Winprov_DirectoryEntry",
            "SELECT * FROM Winprov_DirectoryEntry WHERE Comment = 'x'",
            "SELECT * FROM Winprov_DirectoryEntry WHERE Name = 'a' OR Name = 'b'",
            "SELECT * FROM Other WHERE Name = 'a@b'",
            "SELECT * FROM Winprov_DirectoryEntry WHERE Name > 'a'",
        ] {
            assert_eq!(q(other), None, "{other}");
        }
    }
}
