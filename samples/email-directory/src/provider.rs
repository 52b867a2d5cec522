//! The namespace provider: lookups answered from the directory file, registrations written to
//! it.
//!
//! - `NSPv2LookupServiceBegin` ([`EmailDirectory::lookup_begin`]) only records the query: no
//!   file access, nothing that blocks (R-NSP-9).
//! - `NSPv2LookupServiceNextEx` ([`EmailLookup::next`]) waits the configured backend delay
//!   (cancellably: `NSPv2LookupServiceEnd` ends the wait and the call reports
//!   `WSA_E_CANCELLED`), reads the file if it changed, and returns one result per match:
//!   `alice@example.org` gives one result or `WSASERVICE_NOT_FOUND`; `*@example.org` gives
//!   every entry of the domain, one per call. Then `WSA_E_NO_MORE`.
//! - `NSPv2SetServiceEx` ([`EmailDirectory::set_service`]) changes the entry and rewrites the
//!   file atomically (R-NSP-14 semantics, see the method).

use crate::config::Config;
use email_directory_file::{DirectoryFile, Entry, NamePattern, validate_name, validate_value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use winprov_nspv2::{
    Completed, ControlFlags, CsAddr, Lookup, NamespaceProvider, NextCall, Query, QueryResult,
    RegInfo, SetServiceCall, SetServiceOp, WaitOutcome, WsaError,
};

/// The code a lookup or registration fails with when the directory file is unusable.
const UNUSABLE: WsaError = WsaError::WSANO_RECOVERY;

/// The e-mail directory provider.
#[derive(Debug)]
pub struct EmailDirectory {
    store: DirectoryFile,
    lookup_delay: Duration,
}

impl EmailDirectory {
    /// A provider serving `config.directory`.
    pub fn new(config: Config) -> Self {
        tracing::info!(
            path = %config.directory.display(),
            delay_ms = config.lookup_delay.as_millis(),
            "e-mail directory provider created"
        );
        Self {
            store: DirectoryFile::new(config.directory),
            lookup_delay: config.lookup_delay,
        }
    }

    /// The directory file.
    pub fn path(&self) -> &Path {
        self.store.path()
    }
}

impl NamespaceProvider for EmailDirectory {
    type Session = ();
    type Lookup = EmailLookup;

    fn startup(&self) -> Result<(), WsaError> {
        Ok(())
    }

    /// Records the query; fails with `WSAEINVAL` when it names no service instance.
    fn lookup_begin(
        &self,
        _session: &(),
        query: &Query,
        _flags: ControlFlags,
    ) -> Result<EmailLookup, WsaError> {
        let Some(name) = query.service_instance_name.as_deref() else {
            return Err(WsaError::WSAEINVAL);
        };
        Ok(EmailLookup {
            store: self.store.clone(),
            delay: self.lookup_delay,
            pattern: NamePattern::parse(name),
            query: query.clone(),
            results: None,
        })
    }

    /// - `Register { multiple: false }`: the entry (created if new) gets exactly the given
    ///   addresses; `Register { multiple: true }`: the given addresses are added to its own.
    ///   Both set the data from the blob (UTF-8 text; an empty blob clears it — an `NS_EMAIL`
    ///   registration always has one, the framework refuses it otherwise) and the comment when
    ///   the registration carries one.
    /// - `Deregister`: removes the given addresses, or all when none is given; the entry stays.
    /// - `Delete`: removes the entry.
    ///
    /// Deregister and Delete of an unknown name fail with `WSASERVICE_NOT_FOUND` (R-NSP-14); a
    /// registration without a valid name, with an address lacking its remote part, or with a
    /// comment or blob the file cannot hold (not UTF-8, several lines) with `WSAEINVAL`; an
    /// unreadable or unwritable file with `WSANO_RECOVERY`.
    fn set_service<'call>(&self, _session: &(), call: SetServiceCall<'call>) -> Completed<'call> {
        let outcome = register(&self.store, call.operation(), call.registration());
        if let Err(error) = outcome {
            tracing::debug!(operation = ?call.operation(), %error, "SetServiceEx refused");
        }
        call.complete(outcome)
    }
}

fn register(store: &DirectoryFile, operation: SetServiceOp, reg: &RegInfo) -> Result<(), WsaError> {
    let name = reg
        .service_instance_name
        .as_deref()
        .ok_or(WsaError::WSAEINVAL)?;
    validate_name(name).map_err(|_| WsaError::WSAEINVAL)?;
    let addresses = reg
        .addresses
        .iter()
        .map(|address| address.remote.ok_or(WsaError::WSAEINVAL))
        .collect::<Result<Vec<SocketAddr>, _>>()?;
    // Comment and data matter to a Register only: checked there, ignored otherwise.
    let registers = matches!(operation, SetServiceOp::Register { .. });
    let comment = match &reg.comment {
        Some(comment) if registers => {
            validate_value(comment).map_err(|_| WsaError::WSAEINVAL)?;
            Some(comment.clone())
        }
        _ => None,
    };
    let data = match &reg.blob {
        Some(bytes) if registers => {
            let text = std::str::from_utf8(bytes).map_err(|_| WsaError::WSAEINVAL)?;
            validate_value(text).map_err(|_| WsaError::WSAEINVAL)?;
            Some(text.to_string())
        }
        _ => None,
    };
    let changed = store.update(|directory| match operation {
        SetServiceOp::Register { multiple } => {
            let entry = directory.get_or_insert(name);
            if !multiple {
                entry.addresses.clear();
            }
            for address in addresses {
                if !entry.addresses.contains(&address) {
                    entry.addresses.push(address);
                }
            }
            if comment.is_some() {
                entry.comment = comment;
            }
            if let Some(data) = data {
                entry.data = Some(data).filter(|text| !text.is_empty());
            }
            Ok(())
        }
        SetServiceOp::Deregister => {
            let entry = directory
                .get_mut(name)
                .ok_or(WsaError::WSASERVICE_NOT_FOUND)?;
            if addresses.is_empty() {
                entry.addresses.clear();
            } else {
                entry
                    .addresses
                    .retain(|address| !addresses.contains(address));
            }
            Ok(())
        }
        SetServiceOp::Delete => directory
            .remove(name)
            .map(drop)
            .ok_or(WsaError::WSASERVICE_NOT_FOUND),
        _ => Err(WsaError::WSAEOPNOTSUPP),
    });
    match changed {
        Ok(outcome) => {
            if outcome.is_ok() {
                tracing::info!(name, ?operation, "directory updated");
            }
            outcome
        }
        // The store has logged why.
        Err(_) => Err(UNUSABLE),
    }
}

/// One lookup: the query, then the results still to return.
#[derive(Debug)]
pub struct EmailLookup {
    store: DirectoryFile,
    delay: Duration,
    pattern: NamePattern,
    query: Query,
    /// `None` until the first `next` reads the directory.
    results: Option<VecDeque<QueryResult>>,
}

impl EmailLookup {
    /// The results for the query against the current file; `WSASERVICE_NOT_FOUND` when a
    /// single name is asked and unknown.
    fn resolve(&self) -> Result<VecDeque<QueryResult>, WsaError> {
        // On failure the store has logged why.
        let directory = self.store.read().map_err(|_| UNUSABLE)?;
        let results: VecDeque<QueryResult> = directory
            .matching(&self.pattern)
            .map(|entry| self.result(entry))
            .collect();
        if results.is_empty() && matches!(self.pattern, NamePattern::Exact(_)) {
            return Err(WsaError::WSASERVICE_NOT_FOUND);
        }
        Ok(results)
    }

    fn result(&self, entry: &Entry) -> QueryResult {
        let mut result = QueryResult::named(&entry.name).with_context(entry.domain());
        if let Some(comment) = &entry.comment {
            result = result.with_comment(comment);
        }
        for address in &entry.addresses {
            if self.query.accepts_address(address) {
                result = result.with_address(CsAddr::tcp(*address));
            }
        }
        if let Some(data) = &entry.data {
            result = result.with_blob(data.as_bytes());
        }
        result
    }
}

impl Lookup for EmailLookup {
    fn next<'call>(&mut self, call: NextCall<'call>) -> Completed<'call> {
        // The slow backend: NSPv2LookupServiceEnd on another thread ends this wait at once.
        if !self.delay.is_zero() && call.wait_timeout(self.delay) == WaitOutcome::Cancelled {
            return call.cancelled();
        }
        let results = match &mut self.results {
            Some(results) => results,
            None => match self.resolve() {
                Ok(results) => self.results.insert(results),
                Err(error) => {
                    // Reported once; later calls of this lookup find nothing more.
                    self.results = Some(VecDeque::new());
                    return call.fail(error);
                }
            },
        };
        match results.pop_front() {
            Some(result) => call.found(result),
            None => call.no_more(),
        }
    }
}
