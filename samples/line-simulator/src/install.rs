//! What `line-simulator install` / `uninstall` do with TAPI, over any
//! [`ProviderRegistry`] (`winprov_tspi::install::System` on Windows, the simulated registry in
//! the tests): the provider is added and removed by its file name, [`TSP_FILE_NAME`], through
//! `winprov_tspi::install`; this module adds the registration record.
//!
//! `install` records the permanent provider id TAPI gave it in
//! `<ProgramData>\winprov\line-simulator\provider-id` ([`record_path`]). `uninstall` finds the
//! provider in TAPI's provider list by file name (so it also removes a registration made by
//! hand); the record is what it goes by when that list cannot be read: with no record there is
//! nothing this computer's installation registered, so there is nothing to remove (that is how
//! an MSI uninstall succeeds where TAPI cannot list its providers, as under Wine).

use crate::config::{REGISTRATION_RECORD, TSP_FILE_NAME};
use std::path::{Path, PathBuf};
use winprov_tspi::install::{self, Added, InstallError, ProviderRegistry, Removed};

/// Where `install` records the permanent provider id TAPI gave it, under `program_data`
/// ([`REGISTRATION_RECORD`]).
pub fn record_path(program_data: &Path) -> PathBuf {
    REGISTRATION_RECORD
        .iter()
        .fold(program_data.to_path_buf(), |path, part| path.join(part))
}

/// The text of a registration record.
pub fn format_record(id: u32) -> String {
    format!("{id}\n")
}

/// The provider id of a registration record, if it holds one.
pub fn parse_record(text: &str) -> Option<u32> {
    text.trim().parse().ok()
}

/// Adds [`TSP_FILE_NAME`] (in the system directory) to TAPI, unless TAPI lists it already.
pub fn register(registry: &impl ProviderRegistry) -> Result<Added, InstallError> {
    install::add(registry, TSP_FILE_NAME)
}

/// What [`unregister`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unregistered {
    /// These provider ids were removed: found in TAPI's list (`listed`), or taken from the
    /// record because the list cannot be read.
    Removed {
        /// The permanent provider ids removed.
        ids: Vec<u32>,
        /// Found in the provider list (`false`: the record's id).
        listed: bool,
    },
    /// TAPI does not list [`TSP_FILE_NAME`] (nor, when its list cannot be read, the recorded id).
    NotAdded,
    /// TAPI's list cannot be read and no registration was recorded: nothing to remove.
    NothingRecorded {
        /// Why the list could not be read.
        why: InstallError,
    },
}

/// Removes [`TSP_FILE_NAME`] from TAPI: by the provider list, else by the `recorded` id.
pub fn unregister(
    registry: &impl ProviderRegistry,
    recorded: Option<u32>,
) -> Result<Unregistered, InstallError> {
    match install::remove(registry, TSP_FILE_NAME) {
        Ok(Removed::Removed { ids }) => Ok(Unregistered::Removed { ids, listed: true }),
        Ok(Removed::NotAdded) => Ok(Unregistered::NotAdded),
        Err(why @ (InstallError::ListUnavailable(_) | InstallError::MalformedList(_))) => {
            match recorded {
                None => Ok(Unregistered::NothingRecorded { why }),
                Some(id) => Ok(match install::remove_id(registry, id)? {
                    Removed::Removed { ids } => Unregistered::Removed { ids, listed: false },
                    Removed::NotAdded => Unregistered::NotAdded,
                }),
            }
        }
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_lives_under_program_data() {
        let path = record_path(Path::new("C:/ProgramData"));
        assert_eq!(
            path,
            Path::new("C:/ProgramData")
                .join("winprov")
                .join("line-simulator")
                .join("provider-id")
        );
        assert_eq!(parse_record(&format_record(42)), Some(42));
        assert_eq!(parse_record(" 7\r\n"), Some(7));
        assert_eq!(parse_record(""), None);
        assert_eq!(parse_record("x"), None);
    }
}
