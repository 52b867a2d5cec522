//! The directory file of the `email-directory` sample, in a library of its own so that every
//! program of the installation uses the same code for it: the NSPv2 provider (`email-directory`)
//! answers lookups from it, the WMI provider (`directory-admin`) lets administrators change it.
//! (A separate package, so that neither provider's DLL carries the other's exports.)
//!
//! - [`Directory`], [`Entry`]: the format (see [`Directory`]);
//! - [`DirectoryFile`]: reads that always see a whole version of the file, replaces that are
//!   atomic and retried while another process holds the file.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod directory;
mod file;
mod store;

pub use directory::{
    Directory, Entry, Invalid, NamePattern, ParseError, validate_name, validate_value,
};
pub use file::{DirectoryFile, FileError, FileVersion};

use std::path::PathBuf;

/// Environment variable naming the directory file.
pub const ENV_DIRECTORY_FILE: &str = "EMAIL_DIRECTORY_FILE";

/// The file name of the default directory file.
const DEFAULT_FILE_NAME: &str = "email-directory.txt";

/// The directory file of an installation: [`ENV_DIRECTORY_FILE`] if set, else
/// [`default_path`].
pub fn configured_path() -> PathBuf {
    std::env::var_os(ENV_DIRECTORY_FILE)
        .filter(|value| !value.is_empty())
        .map_or_else(default_path, PathBuf::from)
}

/// The directory file used when [`ENV_DIRECTORY_FILE`] is not set:
/// `%ProgramData%\winprov\email-directory.txt` on Windows, `./email-directory.txt` elsewhere.
pub fn default_path() -> PathBuf {
    if cfg!(windows) {
        let program_data = std::env::var_os("ProgramData")
            .filter(|value| !value.is_empty())
            .map_or_else(|| PathBuf::from(r"C:\ProgramData"), PathBuf::from);
        program_data.join("winprov").join(DEFAULT_FILE_NAME)
    } else {
        PathBuf::from(".").join(DEFAULT_FILE_NAME)
    }
}
