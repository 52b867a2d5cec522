//! The `line-simulator` command: installs the `.tsp` into TAPI, removes it, lists TAPI's
//! providers, and validates scenario files.
#![forbid(unsafe_code)]
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool talks to its user on stdout"
)]

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use line_simulator::config::{BUILT_DLL_NAME, ENV_LINES, ENV_LOG, ENV_SCENARIO};
use line_simulator::{Action, Scenario};
use std::path::{Path, PathBuf};

/// Installs and removes the winprov line simulator, a TAPI service provider whose simulated
/// lines follow a scenario file, and checks scenario files.
#[derive(Debug, Parser)]
#[command(
    name = "line-simulator",
    version,
    after_help = "\
Environment (read by the provider inside TAPISRV):
  LINE_SIMULATOR_SCENARIO  the scenario file (default: every number answers, no inbound calls)
  LINE_SIMULATOR_LINES     the number of lines (default 2)
  LINE_SIMULATOR_LOG       a log file the provider appends to"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Copy line_simulator.dll (next to this program) into the system directory as
    /// LineSimulator.tsp and add it to TAPI (lineAddProvider; elevated administrator). Listed
    /// already: nothing changes.
    Install {
        #[command(flatten)]
        registration: Registration,
    },
    /// Remove the provider from TAPI (lineRemoveProvider; not there: not an error) and delete
    /// the file.
    Uninstall {
        #[command(flatten)]
        registration: Registration,
    },
    /// List TAPI's providers (lineGetProviderList).
    List,
    /// Parse a scenario file and print what it configures.
    Scenario {
        /// The scenario file.
        file: PathBuf,
    },
}

/// The options the MSI's custom actions use.
#[derive(Debug, Default, Args)]
struct Registration {
    /// Leave the system directory's LineSimulator.tsp alone (the MSI installs and removes it;
    /// `install` then only needs it to be there).
    #[arg(long)]
    registration_only: bool,
    /// Append one line with the outcome to this file (`install: ok`, `uninstall: failed:
    /// <reason>`).
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = execute(cli.command) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// Appends `<command>: ok` or `<command>: failed: <reason>` to `log_file` (creating its
/// directory): whoever ran the command unattended — the MSI's custom actions, whose output no
/// log keeps — can see what happened. Returns the command's outcome.
fn record_outcome(command: &str, log_file: Option<&Path>, outcome: Result<()>) -> Result<()> {
    let Some(path) = log_file else {
        return outcome;
    };
    let line = match &outcome {
        Ok(()) => format!("{command}: ok\n"),
        Err(error) => format!("{command}: failed: {}\n", one_line(error)),
    };
    if let Err(error) = append(path, &line) {
        eprintln!("warning: writing {}: {error}", path.display());
    }
    outcome
}

fn one_line(error: &anyhow::Error) -> String {
    format!("{error:#}").replace(['\r', '\n'], " ")
}

fn append(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(line.as_bytes())
}

fn execute(command: Command) -> Result<()> {
    match command {
        Command::Scenario { file } => describe_scenario(&file),
        Command::Install { registration } => record_outcome(
            "install",
            registration.log_file.as_deref(),
            platform::install(registration.registration_only),
        ),
        Command::Uninstall { registration } => record_outcome(
            "uninstall",
            registration.log_file.as_deref(),
            platform::uninstall(registration.registration_only),
        ),
        Command::List => platform::list(),
    }
}

fn describe_scenario(path: &std::path::Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let scenario = Scenario::parse(&text).with_context(|| format!("in {}", path.display()))?;
    println!("{}: valid", path.display());
    println!("timing: {:?}", scenario.timing);
    for rule in &scenario.numbers {
        println!("number {}: {}", rule.digits, describe(rule.action));
    }
    println!("any other number: {}", describe(scenario.default_action));
    for call in &scenario.inbound {
        println!(
            "inbound on line {} after {} ms from {}{}",
            call.line,
            call.after.as_millis(),
            call.from,
            call.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        );
    }
    println!("(the provider reads {ENV_SCENARIO}, {ENV_LINES} and {ENV_LOG})");
    Ok(())
}

fn describe(action: Action) -> String {
    match action {
        Action::Answer {
            after,
            hangup: None,
        } => format!("answers after {} ms", after.as_millis()),
        Action::Answer {
            after,
            hangup: Some(hangup),
        } => format!(
            "answers after {} ms, hangs up {} ms later",
            after.as_millis(),
            hangup.as_millis()
        ),
        Action::Busy => "busy".into(),
        Action::NoAnswer { timeout } => format!("no answer ({} ms)", timeout.as_millis()),
        Action::Reject => "rejects the call".into(),
        Action::Panic => "panics in the provider (debugging hook)".into(),
    }
}

/// The DLL next to the running executable.
#[cfg_attr(not(windows), allow(dead_code))]
fn dll_next_to_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this program")?;
    Ok(exe.with_file_name(BUILT_DLL_NAME))
}

#[cfg(windows)]
mod platform {
    use super::*;
    use anyhow::bail;
    use line_simulator::config::TSP_FILE_NAME;
    use line_simulator::install::{
        Unregistered, format_record, parse_record, record_path, register, unregister,
    };
    use winprov_tspi::install::{Added, System, system_directory};

    fn tsp_path() -> Result<PathBuf> {
        Ok(system_directory()
            .context("GetSystemDirectoryW")?
            .join(TSP_FILE_NAME))
    }

    pub fn install(registration_only: bool) -> Result<()> {
        let target = tsp_path()?;
        if registration_only {
            if !target.is_file() {
                bail!(
                    "{} not found (--registration-only adds a provider file that is already \
                     in the system directory)",
                    target.display()
                );
            }
        } else {
            let source = dll_next_to_exe()?;
            if !source.is_file() {
                bail!(
                    "{} not found (build it next to this program)",
                    source.display()
                );
            }
            std::fs::copy(&source, &target)
                .with_context(|| format!("copying {} to {}", source.display(), target.display()))?;
            println!("copied {} to {}", source.display(), target.display());
        }
        match register(&System) {
            Ok(added) => {
                let id = added.id();
                match added {
                    Added::Added { .. } => {
                        println!("added {TSP_FILE_NAME} to TAPI: permanent provider id {id}")
                    }
                    Added::AlreadyAdded { .. } => println!(
                        "{TSP_FILE_NAME} is in TAPI already (provider id {id}); nothing changed"
                    ),
                }
                if let Err(error) = save_record(id) {
                    eprintln!("warning: recording provider id {id}: {error:#}");
                }
                Ok(())
            }
            Err(error) if registration_only => Err(anyhow::Error::new(error).context(format!(
                "adding {TSP_FILE_NAME} to TAPI (is the Telephony service available?)"
            ))),
            Err(error) => {
                // Leave nothing half-installed.
                let _ = std::fs::remove_file(&target);
                Err(anyhow::Error::new(error).context(format!(
                    "adding {TSP_FILE_NAME} to TAPI (is the Telephony service available? the \
                     copy was removed again)"
                )))
            }
        }
    }

    fn record_file() -> Result<PathBuf> {
        let program_data = std::env::var_os("ProgramData").context("%ProgramData% is not set")?;
        Ok(record_path(Path::new(&program_data)))
    }

    fn save_record(id: u32) -> Result<()> {
        let path = record_file()?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, format_record(id))
            .with_context(|| format!("writing {}", path.display()))
    }

    fn load_record() -> Option<u32> {
        let text = std::fs::read_to_string(record_file().ok()?).ok()?;
        parse_record(&text)
    }

    pub fn uninstall(registration_only: bool) -> Result<()> {
        let recorded = load_record();
        match unregister(&System, recorded)
            .with_context(|| format!("removing {TSP_FILE_NAME} from TAPI"))?
        {
            Unregistered::Removed { ids, listed: true } => {
                println!("removed {TSP_FILE_NAME} (provider ids {ids:?}) from TAPI")
            }
            Unregistered::Removed { ids, listed: false } => println!(
                "removed provider {ids:?} ({TSP_FILE_NAME}, as recorded by install) from TAPI, \
                 whose provider list cannot be read"
            ),
            Unregistered::NotAdded => println!("{TSP_FILE_NAME} is not in TAPI's provider list"),
            Unregistered::NothingRecorded { why } => {
                println!("{why}; no registration was recorded here, so there is nothing to remove")
            }
        }
        if let Ok(path) = record_file() {
            let _ = std::fs::remove_file(path);
        }
        if registration_only {
            return Ok(());
        }
        let target = tsp_path()?;
        match std::fs::remove_file(&target) {
            Ok(()) => println!("deleted {}", target.display()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("deleting {}", target.display()));
            }
        }
        Ok(())
    }

    pub fn list() -> Result<()> {
        let providers = winprov_tspi::install::list(&System).context("reading TAPI's providers")?;
        for provider in &providers {
            println!("{:>6}  {}", provider.id, provider.file_name);
        }
        if !providers.iter().any(|p| p.is_file(TSP_FILE_NAME)) {
            println!("({TSP_FILE_NAME} is not installed)");
        }
        Ok(())
    }
}

#[cfg(not(windows))]
mod platform {
    use super::*;
    use anyhow::bail;

    fn windows_only(what: &str) -> Result<()> {
        bail!("`{what}` talks to TAPI and runs only on Windows");
    }

    pub fn install(_: bool) -> Result<()> {
        windows_only("install")
    }

    pub fn uninstall(_: bool) -> Result<()> {
        windows_only("uninstall")
    }

    pub fn list() -> Result<()> {
        windows_only("list")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("line-simulator").chain(line.split_whitespace()))
            .map(|cli| cli.command)
    }

    fn registration(command: Command) -> (bool, Option<PathBuf>) {
        match command {
            Command::Install { registration } | Command::Uninstall { registration } => {
                (registration.registration_only, registration.log_file)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn command_lines() {
        assert!(matches!(parse("install").unwrap(), Command::Install { .. }));
        assert_eq!(registration(parse("install").unwrap()), (false, None));
        assert_eq!(
            registration(parse("install --log-file r.log --registration-only").unwrap()),
            (true, Some(PathBuf::from("r.log")))
        );
        assert!(matches!(
            parse("uninstall --registration-only").unwrap(),
            Command::Uninstall { .. }
        ));
        assert_eq!(
            registration(parse("uninstall --registration-only").unwrap()),
            (true, None)
        );
        assert!(matches!(parse("list").unwrap(), Command::List));
        assert!(matches!(
            parse("scenario s.txt").unwrap(),
            Command::Scenario { file } if file == Path::new("s.txt")
        ));
        assert!(parse("uninstall --log-file").is_err());
        assert!(parse("scenario").is_err());
        assert!(parse("install --now").is_err());
        assert!(parse("frobnicate").is_err());
        assert!(parse("").is_err(), "a command is required");
        assert_eq!(
            parse("--help").unwrap_err().kind(),
            clap::error::ErrorKind::DisplayHelp
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }

    #[test]
    fn outcomes_are_appended_to_the_log_file() {
        let dir = std::env::temp_dir().join(format!("line-simulator-log-{}", std::process::id()));
        let path = dir.join("nested").join("registration.log");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(record_outcome("install", Some(&path), Ok(())).is_ok());
        let failed = record_outcome(
            "uninstall",
            Some(&path),
            Err(anyhow::anyhow!("second line\nof it").context("first")),
        );
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "install: ok\nuninstall: failed: first: second line of it\n"
        );
        assert!(record_outcome("install", None, Ok(())).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
