//! Who the provider is and every tunable it has: the one file to edit when you copy the sample
//! (or bridge it to a real PBX).
//!
//! Identity ([`PROVIDER_NAME`], [`TSP_FILE_NAME`], [`LINE_NAME_PREFIX`]), the environment
//! variables the DLL reads, and the default timing of a simulated call live here; nothing else
//! in the crate repeats them.

use crate::scenario::{Scenario, ScenarioError};
use std::path::PathBuf;
use std::time::Duration;

/// The provider's name (`LINEDEVCAPS.dwProviderInfo`, shown by TAPI applications).
pub const PROVIDER_NAME: &str = "winprov Line Simulator";

/// The file name the installer gives the DLL in the system directory (`lineAddProvider` is
/// called with this name).
pub const TSP_FILE_NAME: &str = "LineSimulator.tsp";

/// The DLL's file name as cargo builds it (what `install` copies from next to the executable).
pub const BUILT_DLL_NAME: &str = "line_simulator.dll";

/// Where `install` records the permanent provider id, under `%ProgramData%` (see
/// [`record_path`](crate::install::record_path)).
pub const REGISTRATION_RECORD: &[&str] = &["winprov", "line-simulator", "provider-id"];

/// Each line is called `"{LINE_NAME_PREFIX} {n}"`, counted from 1.
pub const LINE_NAME_PREFIX: &str = "Simulated line";

/// `LINEDEVCAPS.dwSwitchInfo`: what is behind the lines.
pub const SWITCH_INFO: &str = "simulated switch (scenario file)";

/// Environment variable naming the scenario file (see [`Scenario`] for its format). Unset: every
/// number answers after [`DEFAULT_ANSWER_AFTER`], no inbound calls.
pub const ENV_SCENARIO: &str = "LINE_SIMULATOR_SCENARIO";

/// Environment variable with the number of lines (default [`DEFAULT_LINES`], at most
/// [`MAX_LINES`]).
pub const ENV_LINES: &str = "LINE_SIMULATOR_LINES";

/// Environment variable naming a log file the DLL appends to (no log without it).
pub const ENV_LOG: &str = "LINE_SIMULATOR_LOG";

/// Lines when [`ENV_LINES`] is not set.
pub const DEFAULT_LINES: u32 = 2;

/// The most lines [`ENV_LINES`] may ask for.
pub const MAX_LINES: u32 = 64;

/// Concurrent calls per line (`dwMaxNumActiveCalls`): one outbound and one inbound at once.
pub const CALLS_PER_LINE: u32 = 2;

/// Default timing of a simulated call; a scenario file's `timing` line overrides it.
pub const DEFAULT_TIMING: Timing = Timing {
    setup: Duration::ZERO,
    dialing: Duration::from_millis(50),
    proceeding: Duration::from_millis(50),
    drop: Duration::ZERO,
    answer: Duration::ZERO,
};

/// Ringback to `CONNECTED` for `answer` when the rule gives no `after=`.
pub const DEFAULT_ANSWER_AFTER: Duration = Duration::from_millis(200);

/// Ringback to `DISCONNECTED(NOANSWER)` for `no-answer` when the rule gives no `timeout=`.
pub const DEFAULT_NO_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the final `TSPI_providerShutdown` waits for the worker threads to end (they were
/// all told to stop; this only bounds a misbehaving one).
pub const SHUTDOWN_JOIN_TIMEOUT: Duration = Duration::from_secs(2);

/// The delays of a simulated call, all waited cancellably.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// `TSPI_lineMakeCall` accepted → its completion (0) and `DIALING`.
    pub setup: Duration,
    /// `DIALING` → `PROCEEDING`.
    pub dialing: Duration,
    /// `PROCEEDING` → the remote party's reaction (`RINGBACK`, `BUSY`, `DISCONNECTED`).
    pub proceeding: Duration,
    /// `TSPI_lineDrop` accepted → its completion. 0 completes drops before the export returns;
    /// more keeps them pending (to exercise `TSPI_lineCloseCall` during a drop).
    pub drop: Duration,
    /// `TSPI_lineAnswer` accepted → its completion and `CONNECTED`.
    pub answer: Duration,
}

/// The provider's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How many lines the provider has.
    pub lines: u32,
    /// The remote behaviour.
    pub scenario: Scenario,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            lines: DEFAULT_LINES,
            scenario: Scenario::default(),
        }
    }
}

/// Why the environment's settings could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// [`ENV_LINES`] is not a number from 1 to [`MAX_LINES`].
    Lines(String),
    /// The scenario file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The scenario file is malformed.
    Scenario {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its line.
        source: ScenarioError,
    },
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lines(value) => write!(
                f,
                "{ENV_LINES}={value:?} is not a number of lines from 1 to {MAX_LINES}"
            ),
            Self::Read { path, .. } => write!(f, "reading {}", path.display()),
            Self::Scenario { path, .. } => write!(f, "in {}", path.display()),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Lines(_) => None,
            Self::Read { source, .. } => Some(source),
            Self::Scenario { source, .. } => Some(source),
        }
    }
}

impl Config {
    /// Settings with `scenario` and the default number of lines.
    pub fn new(scenario: Scenario) -> Self {
        Self {
            lines: DEFAULT_LINES,
            scenario,
        }
    }

    /// The same settings with `lines` lines.
    pub fn with_lines(mut self, lines: u32) -> Self {
        self.lines = lines;
        self
    }

    /// Settings from the environment: [`ENV_LINES`] and the scenario file named by
    /// [`ENV_SCENARIO`] (unset or empty: the default scenario).
    pub fn from_env() -> Result<Self, ConfigError> {
        let lines = match std::env::var(ENV_LINES) {
            Err(_) => DEFAULT_LINES,
            Ok(value) => parse_lines(&value)?,
        };
        let scenario = match std::env::var_os(ENV_SCENARIO).filter(|value| !value.is_empty()) {
            None => Scenario::default(),
            Some(path) => {
                let path = PathBuf::from(path);
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Scenario::parse(&text).map_err(|source| ConfigError::Scenario { path, source })?
            }
        };
        Ok(Self { lines, scenario })
    }
}

fn parse_lines(value: &str) -> Result<u32, ConfigError> {
    match value.trim().parse::<u32>() {
        Ok(lines) if (1..=MAX_LINES).contains(&lines) => Ok(lines),
        _ => Err(ConfigError::Lines(value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_counts() {
        assert_eq!(parse_lines("3").unwrap(), 3);
        assert_eq!(parse_lines(" 1 ").unwrap(), 1);
        for bad in ["0", "65", "two", ""] {
            let error = parse_lines(bad).unwrap_err();
            assert!(error.to_string().contains(ENV_LINES), "{error}");
        }
    }

    #[test]
    fn defaults() {
        let config = Config::default();
        assert_eq!(config.lines, DEFAULT_LINES);
        assert_eq!(config.scenario, Scenario::default());
        assert_eq!(Config::new(Scenario::default()).with_lines(5).lines, 5);
    }
}
