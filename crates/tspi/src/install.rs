//! Adding a TSP to TAPI and removing it, as safe functions over TAPI's provider registry
//! ([`ProviderRegistry`]: `tapi32.dll` on Windows, `System`; a simulated registry with the
//! feature `testing`, `testing::registry::Simulated`).
//!
//! TAPI knows a provider by the permanent provider id `lineAddProvider` hands out; an installer
//! knows it by its file name. Every function here goes by the file name, compared as TAPI's
//! provider list holds it: its last path component, ASCII case-insensitively (the list may hold
//! a bare name or a path).
//!
//! - [`add`] reads the list first: a file already there is [`Added::AlreadyAdded`] and TAPI is
//!   not asked again (a second `lineAddProvider` would make a second instance, or fail in the
//!   provider's `TUISPI_providerInstall`). Where the list cannot be read, the provider is added
//!   and TAPI's own answer says what is wrong. `lineAddProvider` is one call: there is nothing
//!   to undo when it fails.
//! - [`remove`] removes every entry of the file (each instance); a file TAPI does not list is
//!   [`Removed::NotAdded`], not an error: an MSI's uninstall must succeed then. A list that
//!   cannot be read is an error ([`InstallError::ListUnavailable`]), and nothing was removed:
//!   an installer that recorded the id `add` returned may then [`remove_id`] it.
//! - [`list`] and [`find`] read the list: `lineGetProviderListW` into a buffer sized again
//!   until the list fits, decoded in safe code ([`decode_provider_list`]).
//! - Errors keep the function and its raw `LINEERR_*` code ([`InstallError::code`]).

pub use crate::abi::install::{ProviderRegistry, TapiError};
#[cfg(windows)]
pub use crate::abi::install::{System, system_directory};
use std::fmt;
use std::mem::{offset_of, size_of};
use winprov_bindings::tapi::{LINEPROVIDERENTRY as ENTRY, LINEPROVIDERLIST as LIST};
use winprov_core::LineErr;

/// The first size of the provider list's buffer, in bytes (a few dozen providers).
const FIRST_LIST_BYTES: usize = 4096;
/// How many times the list's buffer is sized again (the list growing between two calls)
/// before [`list`] gives up.
const LIST_ATTEMPTS: usize = 4;

/// One `LINEPROVIDERENTRY` of TAPI's provider list.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderEntry {
    /// `dwPermanentProviderID`.
    pub id: u32,
    /// The provider's file name as TAPI holds it (a bare name or a path).
    pub file_name: String,
}

impl ProviderEntry {
    /// Whether this entry is the provider file `file_name` (a bare name such as
    /// `LineSimulator.tsp`): the entry's last path component, compared ASCII
    /// case-insensitively.
    pub fn is_file(&self, file_name: &str) -> bool {
        let own = self
            .file_name
            .rsplit(['\\', '/'])
            .next()
            .unwrap_or_default();
        !own.is_empty() && own.eq_ignore_ascii_case(file_name)
    }
}

/// What [`add`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum Added {
    /// `lineAddProvider` added the provider under this permanent provider id.
    Added {
        /// The permanent provider id.
        id: u32,
    },
    /// TAPI lists the file already, under this id; nothing was changed.
    AlreadyAdded {
        /// The permanent provider id of its (first) entry.
        id: u32,
    },
}

impl Added {
    /// The provider's permanent provider id.
    pub fn id(self) -> u32 {
        match self {
            Self::Added { id } | Self::AlreadyAdded { id } => id,
        }
    }
}

/// What [`remove`] or [`remove_id`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Removed {
    /// `lineRemoveProvider` removed these permanent provider ids.
    Removed {
        /// The ids removed, in list order.
        ids: Vec<u32>,
    },
    /// TAPI does not list the file: nothing to remove.
    NotAdded,
}

/// A `LINEPROVIDERLIST` whose sizes or offsets point outside the bytes TAPI says it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedList {
    what: String,
}

impl fmt::Display for MalformedList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed LINEPROVIDERLIST: {}", self.what)
    }
}

impl std::error::Error for MalformedList {}

/// Why adding, removing or listing a provider failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallError {
    /// TAPI's provider list could not be read (`lineGetProviderListW` failed or is missing):
    /// nothing was changed.
    ListUnavailable(TapiError),
    /// TAPI's provider list was read but does not hold together: nothing was changed.
    MalformedList(MalformedList),
    /// `lineAddProviderW` or `lineRemoveProvider` failed (or is missing).
    Failed(TapiError),
    /// The file name is not one TAPI can take: empty, a path, or with a NUL.
    InvalidFileName {
        /// The name given.
        file_name: String,
    },
}

impl InstallError {
    /// The code TAPI returned, when a function was called and failed.
    pub fn code(&self) -> Option<LineErr> {
        match self {
            Self::ListUnavailable(error) | Self::Failed(error) => error.code(),
            Self::MalformedList(_) | Self::InvalidFileName { .. } => None,
        }
    }
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ListUnavailable(error) => {
                write!(f, "TAPI's provider list cannot be read: {error}")
            }
            Self::MalformedList(error) => error.fmt(f),
            Self::Failed(error) => error.fmt(f),
            Self::InvalidFileName { file_name } => write!(
                f,
                "{file_name:?} is not a provider file name (a non-empty name in the system \
                 directory, without a path)"
            ),
        }
    }
}

impl std::error::Error for InstallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::MalformedList(error) => Some(error),
            // The system's error is the message; a source would say it twice.
            Self::ListUnavailable(_) | Self::Failed(_) | Self::InvalidFileName { .. } => None,
        }
    }
}

fn check_file_name(file_name: &str) -> Result<(), InstallError> {
    if file_name.is_empty() || file_name.contains(['\\', '/', ':', '\0']) {
        return Err(InstallError::InvalidFileName {
            file_name: file_name.to_string(),
        });
    }
    Ok(())
}

/// Every provider TAPI lists, in its order (`lineGetProviderListW`, its buffer sized again
/// while `dwNeededSize` exceeds it).
pub fn list(registry: &impl ProviderRegistry) -> Result<Vec<ProviderEntry>, InstallError> {
    let mut bytes = FIRST_LIST_BYTES;
    for _ in 0..LIST_ATTEMPTS {
        let mut words = vec![0u32; bytes.div_ceil(4)];
        registry
            .get_provider_list(&mut words)
            .map_err(InstallError::ListUnavailable)?;
        let memory: Vec<u8> = words.iter().flat_map(|word| word.to_ne_bytes()).collect();
        let needed = dword(&memory, offset_of!(LIST, dwNeededSize))
            .map_err(InstallError::MalformedList)? as usize;
        if needed <= memory.len() {
            return decode_provider_list(&memory).map_err(InstallError::MalformedList);
        }
        bytes = needed;
    }
    Err(InstallError::MalformedList(MalformedList {
        what: format!(
            "still larger than the {bytes} bytes it asked for after {LIST_ATTEMPTS} calls"
        ),
    }))
}

/// The entries of the provider file `file_name` (usually none or one).
pub fn find(
    registry: &impl ProviderRegistry,
    file_name: &str,
) -> Result<Vec<ProviderEntry>, InstallError> {
    check_file_name(file_name)?;
    Ok(list(registry)?
        .into_iter()
        .filter(|entry| entry.is_file(file_name))
        .collect())
}

/// Adds the provider file `file_name`, which must be in the system directory, to TAPI, unless
/// TAPI lists it already. See the [module documentation](self).
pub fn add(registry: &impl ProviderRegistry, file_name: &str) -> Result<Added, InstallError> {
    match find(registry, file_name) {
        Ok(found) => {
            if let Some(entry) = found.first() {
                return Ok(Added::AlreadyAdded { id: entry.id });
            }
        }
        Err(error @ InstallError::InvalidFileName { .. }) => return Err(error),
        // TAPI answers the add itself.
        Err(error) => tracing::warn!(%error, "adding a provider without reading the list"),
    }
    let id = registry
        .add_provider(file_name)
        .map_err(InstallError::Failed)?;
    Ok(Added::Added { id })
}

/// Removes every entry of the provider file `file_name` from TAPI; [`Removed::NotAdded`]
/// when TAPI does not list it. See the [module documentation](self).
pub fn remove(registry: &impl ProviderRegistry, file_name: &str) -> Result<Removed, InstallError> {
    let found = find(registry, file_name)?;
    if found.is_empty() {
        return Ok(Removed::NotAdded);
    }
    let mut ids = Vec::with_capacity(found.len());
    for entry in found {
        registry
            .remove_provider(entry.id)
            .map_err(InstallError::Failed)?;
        ids.push(entry.id);
    }
    Ok(Removed::Removed { ids })
}

/// Removes the provider `id` (an id [`add`] returned and the installer recorded), for when
/// TAPI's list cannot be read: when it can and does not hold `id`, [`Removed::NotAdded`].
pub fn remove_id(registry: &impl ProviderRegistry, id: u32) -> Result<Removed, InstallError> {
    match list(registry) {
        Ok(entries) if !entries.iter().any(|entry| entry.id == id) => Ok(Removed::NotAdded),
        _ => {
            registry.remove_provider(id).map_err(InstallError::Failed)?;
            Ok(Removed::Removed { ids: vec![id] })
        }
    }
}

fn dword(memory: &[u8], offset: usize) -> Result<u32, MalformedList> {
    offset
        .checked_add(4)
        .and_then(|end| memory.get(offset..end))
        .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| MalformedList {
            what: format!("DWORD at {offset} past the end of {} bytes", memory.len()),
        })
}

/// The entries of a `LINEPROVIDERLIST` that `lineGetProviderListW` filled, as the structure's
/// memory (`dwTotalSize` bytes, in the machine's byte order): `dwNumProviders` entries at
/// `dwProviderListOffset`, each file name UTF-16 at its own offset and size, up to its first
/// NUL. Everything read must lie within `dwUsedSize`, itself within `memory`; anything else
/// is [`MalformedList`], never a read outside it.
pub fn decode_provider_list(memory: &[u8]) -> Result<Vec<ProviderEntry>, MalformedList> {
    let malformed = |what: String| MalformedList { what };
    let used = dword(memory, offset_of!(LIST, dwUsedSize))? as usize;
    if used < size_of::<LIST>() || used > memory.len() {
        return Err(malformed(format!(
            "dwUsedSize {used} outside {}..={} bytes",
            size_of::<LIST>(),
            memory.len()
        )));
    }
    let memory = &memory[..used];
    let count = dword(memory, offset_of!(LIST, dwNumProviders))? as usize;
    let list_size = dword(memory, offset_of!(LIST, dwProviderListSize))? as usize;
    let list_offset = dword(memory, offset_of!(LIST, dwProviderListOffset))? as usize;
    let entries_fit = count
        .checked_mul(size_of::<ENTRY>())
        .is_some_and(|bytes| bytes <= list_size)
        && list_offset
            .checked_add(list_size)
            .is_some_and(|end| end <= used);
    if !entries_fit {
        return Err(malformed(format!(
            "{count} entries in {list_size} bytes at {list_offset} (of {used} used)"
        )));
    }
    (0..count)
        .map(|n| {
            let entry = list_offset + n * size_of::<ENTRY>();
            let id = dword(memory, entry + offset_of!(ENTRY, dwPermanentProviderID))?;
            let size = dword(memory, entry + offset_of!(ENTRY, dwProviderFilenameSize))? as usize;
            let offset =
                dword(memory, entry + offset_of!(ENTRY, dwProviderFilenameOffset))? as usize;
            let name = offset
                .checked_add(size)
                .and_then(|end| memory.get(offset..end))
                .ok_or_else(|| {
                    malformed(format!(
                        "file name of entry {n} ({size} bytes at {offset}) past dwUsedSize {used}"
                    ))
                })?;
            let units: Vec<u16> = name
                .chunks_exact(2)
                .map(|pair| u16::from_ne_bytes([pair[0], pair[1]]))
                .take_while(|&unit| unit != 0)
                .collect();
            Ok(ProviderEntry {
                id,
                file_name: String::from_utf16_lossy(&units),
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "install_props.rs"]
mod props;
