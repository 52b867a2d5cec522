//! The directory file as other programs of a provider's installation use it: a management tool
//! or another provider (the WMI sample `directory-admin`) reads and changes the very file the
//! namespace provider serves, with the same guarantees (see the `store` module): a reader sees
//! a whole version of the file, writers of one process are serialized, a replace another
//! process holds up is tried again.

use crate::directory::{Directory, ParseError};
use crate::store::{Stamp, Store, StoreError};
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// The directory file, shared by clones (one copy in memory, one writer at a time).
#[derive(Clone, Debug)]
pub struct DirectoryFile {
    store: Arc<Store>,
}

impl DirectoryFile {
    /// The file at `path` (a missing file is an empty directory, created by the first update).
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            store: Arc::new(Store::new(path.into())),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        self.store.path()
    }

    /// The current directory, read again only if the file changed.
    pub fn read(&self) -> Result<Arc<Directory>, FileError> {
        self.store.current().map_err(FileError)
    }

    /// Applies `change` to the current directory and replaces the file with the result.
    /// `Ok(Err(e))`: `change` refused with `e` and nothing was written.
    pub fn update<E>(
        &self,
        change: impl FnOnce(&mut Directory) -> Result<(), E>,
    ) -> Result<Result<(), E>, FileError> {
        self.store.update(change).map_err(FileError)
    }

    /// The file's current version (its modification time and length, or its absence), to
    /// notice changes cheaply, without reading it.
    pub fn version(&self) -> io::Result<FileVersion> {
        self.store.stamp().map(FileVersion)
    }
}

/// One version of the directory file: two reads of [`DirectoryFile::version`] compare equal
/// when the file did not change in between (within the file system's timestamp resolution).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileVersion(Stamp);

/// Why the directory file cannot be used.
#[derive(Debug)]
pub struct FileError(StoreError);

impl FileError {
    /// The I/O error, when reading or writing failed.
    pub fn io(&self) -> Option<&io::Error> {
        match &self.0 {
            StoreError::Io(error) => Some(error),
            StoreError::Parse(_) => None,
        }
    }

    /// The syntax error, when the file is not a valid directory.
    pub fn parse(&self) -> Option<&ParseError> {
        match &self.0 {
            StoreError::Parse(error) => Some(error),
            StoreError::Io(_) => None,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.0)
    }
}
