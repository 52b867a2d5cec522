//! The portable half of `line-simulator install` / `uninstall` / `check`: names, the
//! `LINEPROVIDERLIST` reader, the provider lookup, the registration record and what
//! `uninstall` removes. The Windows calls are in the command's `sys` module.

use crate::config::{REGISTRATION_RECORD, TSP_FILE_NAME};
use std::path::{Path, PathBuf};

/// The exports `check` looks up in the DLL, as TAPISRV does (by name).
pub const TSPI_EXPORTS: &[&str] = &[
    "TSPI_lineNegotiateTSPIVersion",
    "TSPI_providerEnumDevices",
    "TSPI_providerInit",
    "TSPI_providerShutdown",
    "TSPI_providerUIIdentify",
    "TSPI_providerGenericDialogData",
    "TSPI_lineGetDevCaps",
    "TSPI_lineGetAddressCaps",
    "TSPI_lineOpen",
    "TSPI_lineClose",
    "TSPI_lineMakeCall",
    "TSPI_lineDrop",
    "TSPI_lineAnswer",
    "TSPI_lineDevSpecific",
    "TSPI_lineCloseCall",
    "TSPI_lineGetCallStatus",
    "TSPI_lineGetCallInfo",
    "TSPI_lineGetNumAddressIDs",
    "TSPI_lineSetDefaultMediaDetection",
    "TUISPI_providerInstall",
    "TUISPI_providerRemove",
    "TUISPI_providerConfig",
];

/// One `LINEPROVIDERENTRY` of a `LINEPROVIDERLIST`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderEntry {
    /// `dwPermanentProviderID`.
    pub id: u32,
    /// The provider's file name as TAPI stores it.
    pub file_name: String,
}

/// Why a `LINEPROVIDERLIST` could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderListError(pub String);

impl std::fmt::Display for ProviderListError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed LINEPROVIDERLIST: {}", self.0)
    }
}

impl std::error::Error for ProviderListError {}

/// `sizeof(LINEPROVIDERLIST)` (tapi.h: six DWORDs).
pub const PROVIDER_LIST_HEADER: usize = 24;
/// `sizeof(LINEPROVIDERENTRY)` (tapi.h: three DWORDs).
const PROVIDER_ENTRY_SIZE: usize = 12;

fn dword(bytes: &[u8], offset: usize) -> Result<u32, ProviderListError> {
    bytes
        .get(offset..offset + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| ProviderListError(format!("DWORD at {offset} past the end")))
}

/// `dwNeededSize` of a `LINEPROVIDERLIST` that `lineGetProviderListW` filled.
pub fn provider_list_needed(bytes: &[u8]) -> Result<usize, ProviderListError> {
    dword(bytes, 4).map(|needed| needed as usize)
}

/// Reads the entries of a `LINEPROVIDERLIST` filled by `lineGetProviderListW` (file names in
/// UTF-16). Fails when an offset or size points outside `dwUsedSize`.
pub fn parse_provider_list(bytes: &[u8]) -> Result<Vec<ProviderEntry>, ProviderListError> {
    let used = (dword(bytes, 8)? as usize).min(bytes.len());
    let bytes = &bytes[..used];
    let count = dword(bytes, 12)? as usize;
    let list_size = dword(bytes, 16)? as usize;
    let list_offset = dword(bytes, 20)? as usize;
    if count.checked_mul(PROVIDER_ENTRY_SIZE) != Some(list_size)
        || list_offset
            .checked_add(list_size)
            .is_none_or(|end| end > used)
    {
        return Err(ProviderListError(format!(
            "{count} entries in {list_size} bytes at {list_offset} (of {used} used)"
        )));
    }
    (0..count)
        .map(|n| {
            let entry = list_offset + n * PROVIDER_ENTRY_SIZE;
            let id = dword(bytes, entry)?;
            let size = dword(bytes, entry + 4)? as usize;
            let offset = dword(bytes, entry + 8)? as usize;
            let name = offset
                .checked_add(size)
                .and_then(|end| bytes.get(offset..end))
                .ok_or_else(|| ProviderListError(format!("file name of entry {n} past the end")))?;
            let units: Vec<u16> = name
                .chunks_exact(2)
                .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
                .take_while(|&unit| unit != 0)
                .collect();
            Ok(ProviderEntry {
                id,
                file_name: String::from_utf16_lossy(&units),
            })
        })
        .collect()
}

/// The permanent id of the provider installed from [`TSP_FILE_NAME`] (compared by file name,
/// ASCII case-insensitively, whether TAPI stored a bare name or a path).
pub fn find_provider(entries: &[ProviderEntry]) -> Option<u32> {
    entries
        .iter()
        .find(|entry| {
            let name = entry.file_name.rsplit(['\\', '/']).next().unwrap_or("");
            name.eq_ignore_ascii_case(TSP_FILE_NAME)
        })
        .map(|entry| entry.id)
}

/// Where `install` records the permanent provider id TAPI gave it:
/// `<ProgramData>\\winprov\\line-simulator\\provider-id` ([`REGISTRATION_RECORD`]).
///
/// `uninstall` finds the provider in TAPI's provider list by file name; the record is what it
/// goes by when that list cannot be read (TAPI unavailable): with no record there is nothing
/// this computer's installation registered, so there is nothing to remove.
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

/// What `uninstall` does with TAPI, from what it could learn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Removal {
    /// `lineRemoveProvider(id)`: found in TAPI's provider list, or recorded by `install` when
    /// the list cannot be read.
    Remove {
        /// The permanent provider id.
        id: u32,
        /// Found in the provider list (`false`: taken from the record).
        listed: bool,
    },
    /// TAPI's list has no provider with our file name.
    NotListed,
    /// The list cannot be read and no registration was recorded: nothing to remove.
    NothingRecorded {
        /// Why the list could not be read.
        why: String,
    },
}

/// Decides what `uninstall` removes: the provider list wins (it also finds a registration made
/// by hand); the record covers a TAPI that cannot list its providers.
pub fn plan_removal(listed: Result<Option<u32>, String>, recorded: Option<u32>) -> Removal {
    match listed {
        Ok(Some(id)) => Removal::Remove { id, listed: true },
        Ok(None) => Removal::NotListed,
        Err(why) => match recorded {
            Some(id) => Removal::Remove { id, listed: false },
            None => Removal::NothingRecorded { why },
        },
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

    #[test]
    fn uninstall_goes_by_the_list_then_by_the_record() {
        assert_eq!(
            plan_removal(Ok(Some(3)), Some(9)),
            Removal::Remove {
                id: 3,
                listed: true
            }
        );
        assert_eq!(plan_removal(Ok(None), Some(9)), Removal::NotListed);
        assert_eq!(
            plan_removal(Err("no TAPI".into()), Some(9)),
            Removal::Remove {
                id: 9,
                listed: false
            }
        );
        assert_eq!(
            plan_removal(Err("no TAPI".into()), None),
            Removal::NothingRecorded {
                why: "no TAPI".into()
            }
        );
    }

    /// A LINEPROVIDERLIST as lineGetProviderListW lays it out.
    fn list(entries: &[(u32, &str)]) -> Vec<u8> {
        let mut bytes = vec![0u8; PROVIDER_LIST_HEADER + entries.len() * PROVIDER_ENTRY_SIZE];
        let mut strings = Vec::new();
        for (n, (id, name)) in entries.iter().enumerate() {
            let units: Vec<u8> = name
                .encode_utf16()
                .chain([0])
                .flat_map(u16::to_le_bytes)
                .collect();
            let offset = bytes.len() + strings.len();
            let at = PROVIDER_LIST_HEADER + n * PROVIDER_ENTRY_SIZE;
            bytes[at..at + 4].copy_from_slice(&id.to_le_bytes());
            bytes[at + 4..at + 8].copy_from_slice(&(units.len() as u32).to_le_bytes());
            bytes[at + 8..at + 12].copy_from_slice(&(offset as u32).to_le_bytes());
            strings.extend(units);
        }
        bytes.extend(strings);
        let total = bytes.len() as u32;
        for (at, value) in [
            (0, total),
            (4, total),
            (8, total),
            (12, entries.len() as u32),
            (16, (entries.len() * PROVIDER_ENTRY_SIZE) as u32),
            (20, PROVIDER_LIST_HEADER as u32),
        ] {
            bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn reads_entries_and_finds_the_provider() {
        let bytes = list(&[
            (1, "unimdm.tsp"),
            (7, r"C:\Windows\system32\linesimulator.TSP"),
        ]);
        let entries = parse_provider_list(&bytes).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0],
            ProviderEntry {
                id: 1,
                file_name: "unimdm.tsp".into()
            }
        );
        assert_eq!(find_provider(&entries), Some(7));
        assert_eq!(provider_list_needed(&bytes).unwrap(), bytes.len());
        let entries = parse_provider_list(&list(&[(1, "unimdm.tsp")])).unwrap();
        assert_eq!(find_provider(&entries), None);
        assert_eq!(parse_provider_list(&list(&[])).unwrap(), vec![]);
    }

    #[test]
    fn malformed_lists_are_errors() {
        let mut bytes = list(&[(1, "a.tsp")]);
        // The entry's name offset points past dwUsedSize.
        bytes[PROVIDER_LIST_HEADER + 8..PROVIDER_LIST_HEADER + 12]
            .copy_from_slice(&1000u32.to_le_bytes());
        assert!(parse_provider_list(&bytes).is_err());
        let mut bytes = list(&[(1, "a.tsp")]);
        bytes[12..16].copy_from_slice(&5u32.to_le_bytes());
        assert!(
            parse_provider_list(&bytes)
                .unwrap_err()
                .to_string()
                .contains("5 entries")
        );
        assert!(parse_provider_list(&[0; 10]).is_err());
    }
}
