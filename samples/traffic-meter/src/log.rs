//! The figures' files: one per executable (`<exe>.log`, every process of that executable
//! appending its lines), in one directory, rotated at a size limit.
//!
//! The layer runs inside every Winsock process, on the application's thread: writing never
//! fails a call nor panics (an error is one `tracing` warning, and the line is lost), never
//! waits for the disk (no flush, no sync: the system writes the cache back), and costs one
//! open-append-close per finished connection.

#![forbid(unsafe_code)]

use crate::identity::{DEFAULT_LIMIT, ENV_DIR, ENV_LIMIT, LOG_SUBDIRECTORY};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Where and how the figures are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// The directory (made when the first line is written).
    pub directory: PathBuf,
    /// The size in bytes past which a file is renamed to `.1` before a line is appended.
    pub limit: u64,
}

impl LogConfig {
    /// From the environment: [`ENV_DIR`], else `%ProgramData%\winprov\traffic-meter`;
    /// [`ENV_LIMIT`], else [`DEFAULT_LIMIT`]. `None` when neither directory variable is set
    /// (no log, the figures stay in memory).
    pub fn from_environment() -> Option<Self> {
        let directory = match std::env::var_os(ENV_DIR).filter(|v| !v.is_empty()) {
            Some(directory) => PathBuf::from(directory),
            None => {
                let mut directory =
                    PathBuf::from(std::env::var_os("ProgramData").filter(|v| !v.is_empty())?);
                directory.extend(LOG_SUBDIRECTORY);
                directory
            }
        };
        let limit = std::env::var(ENV_LIMIT)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_LIMIT);
        Some(Self { directory, limit })
    }

    /// The default directory under `program_data` (what `show` reads when given none).
    pub fn default_directory(program_data: &Path) -> PathBuf {
        let mut directory = program_data.to_path_buf();
        directory.extend(LOG_SUBDIRECTORY);
        directory
    }
}

/// One executable's file.
#[derive(Clone, Debug)]
pub struct Log {
    config: LogConfig,
    file: PathBuf,
    rotated: PathBuf,
}

impl Log {
    /// The file of the executable `exe` (its file name) under `config`.
    pub fn new(config: LogConfig, exe: &str) -> Self {
        let name: String = exe
            .chars()
            .map(|c| match c {
                '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
                c if c.is_control() => '_',
                c => c,
            })
            .collect();
        let file = config.directory.join(format!("{name}.log"));
        let rotated = config.directory.join(format!("{name}.log.1"));
        Self {
            config,
            file,
            rotated,
        }
    }

    /// The file lines go to.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// The file it is rotated to.
    pub fn rotated_path(&self) -> &Path {
        &self.rotated
    }

    /// Appends `line` (with its `\n`): renames the file to `.1` first when the line would take
    /// it past the limit. An error is logged and otherwise ignored.
    pub fn append(&self, line: &str) {
        if let Err(error) = self.try_append(line) {
            tracing::warn!(%error, file = %self.file.display(), "traffic meter: a line was lost");
        }
    }

    fn try_append(&self, line: &str) -> std::io::Result<()> {
        match std::fs::metadata(&self.file) {
            Ok(meta) if meta.len() > 0 && meta.len() + line.len() as u64 > self.config.limit => {
                // Another process of the executable may rotate at the same time: whichever
                // rename comes second fails or moves a young file; a line is never lost
                // because of it, at worst a `.1` is short.
                let _ = std::fs::rename(&self.file, &self.rotated);
            }
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.config.directory)?;
            }
            Err(error) => return Err(error),
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)?
            .write_all(line.as_bytes())
    }
}
