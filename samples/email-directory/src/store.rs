//! The directory file: read when it changed (a metadata check per lookup), written atomically.
//!
//! Reading compares the file's modification time and length with those of the copy in memory
//! and parses the file again only when either differs (an edit that keeps both, within the
//! file system's timestamp resolution, is seen at the next change). Writing goes to a temporary
//! file in the same directory, which is flushed to disk and renamed over the original, so a
//! reader sees the old or the new file and never a part of one. Writers in this process are
//! serialized; the file is not locked against other processes.

use crate::directory::{Directory, ParseError};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// Why the directory cannot be used.
#[derive(Debug)]
pub(crate) enum StoreError {
    /// Reading or writing the file failed.
    Io(io::Error),
    /// The file is not a valid directory.
    Parse(ParseError),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(error) => write!(f, "{error}"),
            Self::Parse(error) => write!(f, "{error}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(error) => Some(error),
            Self::Parse(error) => Some(error),
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(error: io::Error) -> Self {
        Self::Io(error)
    }
}

/// What identifies one version of the file, cheaply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stamp {
    Missing,
    Present {
        modified: Option<SystemTime>,
        len: u64,
    },
}

impl Stamp {
    fn of(metadata: &fs::Metadata) -> Self {
        Self::Present {
            modified: metadata.modified().ok(),
            len: metadata.len(),
        }
    }

    fn of_path(path: &Path) -> io::Result<Self> {
        match fs::metadata(path) {
            Ok(metadata) => Ok(Self::of(&metadata)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Self::Missing),
            Err(error) => Err(error),
        }
    }
}

/// One version of the file: its stamp and what it parsed to.
#[derive(Debug)]
struct Loaded {
    stamp: Stamp,
    directory: Result<Arc<Directory>, ParseError>,
}

/// The directory file and the copy of it in memory.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    cache: Mutex<Option<Loaded>>,
    writer: Mutex<()>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store {
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            cache: Mutex::new(None),
            writer: Mutex::new(()),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The current directory, read again if the file changed since the last call. A missing
    /// file is an empty directory. A broken file stays an error until it changes again (logged
    /// once per version); a failed read is tried again by the next call.
    pub(crate) fn current(&self) -> Result<Arc<Directory>, StoreError> {
        let stamp = Stamp::of_path(&self.path).inspect_err(|error| self.log_io(error))?;
        let mut cache = lock(&self.cache);
        if let Some(loaded) = cache.as_ref().filter(|loaded| loaded.stamp == stamp) {
            return loaded.directory.clone().map_err(StoreError::Parse);
        }
        let loaded = self.read().inspect_err(|error| self.log_io(error))?;
        match &loaded.directory {
            Ok(directory) => tracing::info!(
                path = %self.path.display(),
                entries = directory.entries().len(),
                "directory loaded"
            ),
            Err(error) => tracing::error!(
                path = %self.path.display(),
                %error,
                "directory file is invalid; lookups fail until it is fixed"
            ),
        }
        let directory = loaded.directory.clone().map_err(StoreError::Parse);
        *cache = Some(loaded);
        directory
    }

    fn log_io(&self, error: &io::Error) {
        tracing::error!(path = %self.path.display(), %error, "reading the directory file");
    }

    fn read(&self) -> io::Result<Loaded> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Loaded {
                    stamp: Stamp::Missing,
                    directory: Ok(Arc::new(Directory::new())),
                });
            }
            Err(error) => return Err(error),
        };
        // The stamp and the text of the same open file, so a concurrent rename cannot pair
        // the new stamp with the old text.
        let stamp = Stamp::of(&file.metadata()?);
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        Ok(Loaded {
            stamp,
            directory: Directory::parse(&text).map(Arc::new),
        })
    }

    /// Applies `change` to the current directory and writes the result, atomically, with
    /// writers serialized. Nothing is written when `change` fails (or the current file cannot
    /// be read: a broken file is never overwritten).
    pub(crate) fn update<E>(
        &self,
        change: impl FnOnce(&mut Directory) -> Result<(), E>,
    ) -> Result<Result<(), E>, StoreError> {
        let _writer = lock(&self.writer);
        let mut directory = Directory::clone(&*self.current()?);
        if let Err(error) = change(&mut directory) {
            return Ok(Err(error));
        }
        write_atomically(&self.path, directory.to_string().as_bytes()).inspect_err(|error| {
            tracing::error!(path = %self.path.display(), %error, "writing the directory file");
        })?;
        // Remember what was written, so the next lookup need not read it back (if the stamp
        // is unavailable, it will).
        *lock(&self.cache) = Stamp::of_path(&self.path).ok().map(|stamp| Loaded {
            stamp,
            directory: Ok(Arc::new(directory)),
        });
        tracing::debug!(path = %self.path.display(), "directory written");
        Ok(Ok(()))
    }
}

/// Replaces the file at `path` with `contents` so that readers see either the old or the new
/// file: a temporary file next to it, written, flushed and synced, then renamed over it.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    fs::create_dir_all(parent)?;
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the directory path names no file",
        )
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let temp = parent.join(temp_name);
    let written = (|| {
        let mut file = File::options().write(true).create_new(true).open(&temp)?;
        file.write_all(contents)?;
        file.flush()?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp, path)
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    // Make the rename itself durable where the file system allows syncing a directory.
    #[cfg(unix)]
    if let Err(error) = File::open(parent).and_then(|dir| dir.sync_all()) {
        tracing::debug!(%error, "syncing the directory of the directory file");
    }
    Ok(())
}
