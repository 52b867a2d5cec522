//! Run-time settings: where the directory file is and how slow the backend pretends to be.

use std::path::PathBuf;
use std::time::Duration;

pub use email_directory_file::ENV_DIRECTORY_FILE;

/// Environment variable with a delay, in milliseconds, waited at the start of every
/// `NSPv2LookupServiceNextEx` (a slow backend; cancelled by `NSPv2LookupServiceEnd`).
pub const ENV_LOOKUP_DELAY_MS: &str = "EMAIL_DIRECTORY_DELAY_MS";

/// The provider's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The directory file (see [`Directory`](crate::Directory) for its format). A missing file
    /// is an empty directory; the provider creates it on the first registration.
    pub directory: PathBuf,
    /// Waited (cancellably) at the start of every `next`: the latency of a slow backend.
    pub lookup_delay: Duration,
}

impl Config {
    /// Settings for `directory`, without delay.
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
            lookup_delay: Duration::ZERO,
        }
    }

    /// The same settings with `delay` waited at the start of every `next`.
    pub fn with_lookup_delay(mut self, delay: Duration) -> Self {
        self.lookup_delay = delay;
        self
    }

    /// Settings from the environment: the file from [`ENV_DIRECTORY_FILE`], else
    /// [`Config::default_directory`]; the delay from [`ENV_LOOKUP_DELAY_MS`], else none (an
    /// unparsable value is logged and ignored).
    pub fn from_env() -> Self {
        let directory = email_directory_file::configured_path();
        let lookup_delay = match std::env::var(ENV_LOOKUP_DELAY_MS) {
            Err(std::env::VarError::NotPresent) => Duration::ZERO,
            Ok(value) => match value.trim().parse::<u64>() {
                Ok(ms) => Duration::from_millis(ms),
                Err(error) => {
                    tracing::warn!(
                        %value,
                        %error,
                        "ignoring {ENV_LOOKUP_DELAY_MS}: not a number of milliseconds"
                    );
                    Duration::ZERO
                }
            },
            Err(error) => {
                tracing::warn!(%error, "ignoring {ENV_LOOKUP_DELAY_MS}");
                Duration::ZERO
            }
        };
        Self {
            directory,
            lookup_delay,
        }
    }

    /// The directory file used when [`ENV_DIRECTORY_FILE`] is not set:
    /// `%ProgramData%\winprov\email-directory.txt` on Windows, `./email-directory.txt` elsewhere.
    pub fn default_directory() -> PathBuf {
        email_directory_file::default_path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = Config::new("dir.txt");
        assert_eq!(config.directory, PathBuf::from("dir.txt"));
        assert_eq!(config.lookup_delay, Duration::ZERO);
        let config = config.with_lookup_delay(Duration::from_millis(5));
        assert_eq!(config.lookup_delay, Duration::from_millis(5));
        assert!(Config::default_directory().ends_with("email-directory.txt"));
    }
}
