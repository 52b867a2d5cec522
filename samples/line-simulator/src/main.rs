//! The `line-simulator` command: installs the `.tsp` into TAPI, removes it, checks a built DLL,
//! and validates scenario files.
#![deny(unsafe_code)]
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool talks to its user on stdout"
)]

#[cfg(windows)]
mod sys;

use anyhow::{Context, Result, bail};
use line_simulator::config::{BUILT_DLL_NAME, ENV_LINES, ENV_LOG, ENV_SCENARIO};
use line_simulator::{Action, Scenario};
use std::path::{Path, PathBuf};

const USAGE: &str = "\
usage: line-simulator <command>

commands:
  install [--registration-only] [--log-file PATH]
                     copy line_simulator.dll (next to this program) into the system directory
                     as LineSimulator.tsp and add it to TAPI (lineAddProvider); needs an
                     elevated administrator
  uninstall [--registration-only] [--log-file PATH]
                     remove the provider from TAPI (lineRemoveProvider; a provider that is not
                     there is not an error) and delete the file
  check [DLL]        load the provider DLL (default: line_simulator.dll next to this program,
                     else LineSimulator.tsp in the system directory), list its TSPI exports and
                     negotiate a version, without starting it
  scenario FILE      parse a scenario file and print what it configures
  help               this text

  --registration-only  leave the system directory's LineSimulator.tsp alone (the MSI installs
                       and removes that file; `install` then only needs it to be there)
  --log-file PATH      append one line with the outcome to PATH (`install: ok`,
                       `uninstall: failed: <reason>`); the MSI's custom actions use it

environment (read by the provider inside TAPISRV):
  LINE_SIMULATOR_SCENARIO   the scenario file (default: every number answers, no inbound calls)
  LINE_SIMULATOR_LINES      the number of lines (default 2)
  LINE_SIMULATOR_LOG        a log file the provider appends to
";

/// What the command line asks.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Install(Registration),
    Uninstall(Registration),
    Check(Option<PathBuf>),
    Scenario(PathBuf),
}

/// The options of `install` and `uninstall`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Registration {
    /// Register (or unregister) only: the `.tsp` in the system directory belongs to the MSI.
    registration_only: bool,
    log_file: Option<PathBuf>,
}

fn main() {
    let outcome = parse(
        std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
    )
    .and_then(execute);
    if let Err(error) = outcome {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn parse(args: Vec<String>) -> Result<Command> {
    let mut args = args.into_iter();
    let command = match args.next().as_deref() {
        None | Some("help" | "--help" | "-h") => Command::Help,
        Some("install") => Command::Install(registration(&mut args)?),
        Some("uninstall") => Command::Uninstall(registration(&mut args)?),
        Some("check") => Command::Check(args.next().map(PathBuf::from)),
        Some("scenario") => Command::Scenario(PathBuf::from(
            args.next()
                .with_context(|| format!("scenario needs a file\n\n{USAGE}"))?,
        )),
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}"),
    };
    if let Some(extra) = args.next() {
        bail!("unexpected argument {extra:?}\n\n{USAGE}");
    }
    Ok(command)
}

/// `[--registration-only] [--log-file PATH]`, in any order.
fn registration(args: &mut impl Iterator<Item = String>) -> Result<Registration> {
    let mut options = Registration::default();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--registration-only" => options.registration_only = true,
            "--log-file" => {
                let path = args
                    .next()
                    .with_context(|| format!("--log-file needs a path\n\n{USAGE}"))?;
                options.log_file = Some(PathBuf::from(path));
            }
            other => bail!("unexpected argument {other:?}\n\n{USAGE}"),
        }
    }
    Ok(options)
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
        Command::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Command::Scenario(path) => describe_scenario(&path),
        Command::Install(options) => record_outcome(
            "install",
            options.log_file.as_deref(),
            platform::install(options.registration_only),
        ),
        Command::Uninstall(options) => record_outcome(
            "uninstall",
            options.log_file.as_deref(),
            platform::uninstall(options.registration_only),
        ),
        Command::Check(dll) => platform::check(dll),
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
fn dll_next_to_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this program")?;
    Ok(exe.with_file_name(BUILT_DLL_NAME))
}

#[cfg(windows)]
mod platform {
    use super::*;
    use crate::sys;
    use line_simulator::config::TSP_FILE_NAME;
    use line_simulator::install::{
        Removal, find_provider, format_record, parse_provider_list, parse_record, plan_removal,
        record_path,
    };

    pub fn install(registration_only: bool) -> Result<()> {
        let target = sys::system_directory()?.join(TSP_FILE_NAME);
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
        match sys::line_add_provider(TSP_FILE_NAME) {
            Ok(id) => {
                println!("added {TSP_FILE_NAME} to TAPI: permanent provider id {id}");
                if let Err(error) = save_record(id) {
                    eprintln!("warning: recording provider id {id}: {error:#}");
                }
                Ok(())
            }
            Err(error) if registration_only => Err(error.context(format!(
                "adding {TSP_FILE_NAME} to TAPI (is the Telephony service available?)"
            ))),
            Err(error) => {
                // Leave nothing half-installed.
                let _ = std::fs::remove_file(&target);
                Err(error.context(format!(
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
        let listed = sys::line_get_provider_list()
            .and_then(|list| Ok(find_provider(&parse_provider_list(&list)?)))
            .map_err(|error| format!("{error:#}"));
        match plan_removal(listed, load_record()) {
            Removal::Remove { id, listed } => {
                sys::line_remove_provider(id).with_context(|| {
                    if listed {
                        format!("removing provider {id} ({TSP_FILE_NAME}) from TAPI")
                    } else {
                        format!(
                            "removing provider {id} ({TSP_FILE_NAME}, as recorded by install) \
                             from TAPI, whose provider list cannot be read"
                        )
                    }
                })?;
                println!("removed provider {id} ({TSP_FILE_NAME}) from TAPI");
            }
            Removal::NotListed => println!("{TSP_FILE_NAME} is not in TAPI's provider list"),
            Removal::NothingRecorded { why } => println!(
                "TAPI's provider list cannot be read ({why}); no registration was recorded \
                 here, so there is nothing to remove"
            ),
        }
        if let Ok(path) = record_file() {
            let _ = std::fs::remove_file(path);
        }
        if registration_only {
            return Ok(());
        }
        let target = sys::system_directory()?.join(TSP_FILE_NAME);
        match std::fs::remove_file(&target) {
            Ok(()) => println!("deleted {}", target.display()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(error).with_context(|| format!("deleting {}", target.display()));
            }
        }
        Ok(())
    }

    pub fn check(dll: Option<PathBuf>) -> Result<()> {
        let dll = match dll {
            Some(dll) => std::path::absolute(dll)?,
            None => match dll_next_to_exe()? {
                built if built.is_file() => built,
                // The MSI's layout: the command in Program Files, the provider in System32.
                _ => sys::system_directory()?.join(TSP_FILE_NAME),
            },
        };
        let report = sys::check(&dll)?;
        println!("{}", dll.display());
        let mut missing = 0;
        for (name, present) in &report.exports {
            println!("  {} {name}", if *present { "export " } else { "MISSING" });
            missing += usize::from(!present);
        }
        match report.negotiated {
            Ok(version) => println!(
                "TSPI_lineNegotiateTSPIVersion(INITIALIZE_NEGOTIATION): {}.{}",
                version >> 16,
                version & 0xFFFF
            ),
            Err(error) => {
                println!("TSPI_lineNegotiateTSPIVersion(INITIALIZE_NEGOTIATION): {error}")
            }
        }
        match report.lines {
            Ok(lines) => println!("TSPI_providerEnumDevices: {lines} lines"),
            Err(error) => println!("TSPI_providerEnumDevices: {error}"),
        }
        match &report.ui_dll {
            Ok(path) => println!("TSPI_providerUIIdentify: {path}"),
            Err(error) => println!("TSPI_providerUIIdentify: {error}"),
        }
        if missing > 0
            || report.negotiated.is_err()
            || report.lines.is_err()
            || report.ui_dll.is_err()
        {
            bail!("{} is not a complete TSPI provider", dll.display());
        }
        Ok(())
    }
}

#[cfg(not(windows))]
mod platform {
    use super::*;

    fn windows_only(what: &str) -> Result<()> {
        bail!("`{what}` talks to TAPI and runs only on Windows");
    }

    pub fn install(_: bool) -> Result<()> {
        windows_only("install")
    }

    pub fn uninstall(_: bool) -> Result<()> {
        windows_only("uninstall")
    }

    pub fn check(_: Option<PathBuf>) -> Result<()> {
        let _ = dll_next_to_exe()?;
        windows_only("check")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn command_lines() {
        assert_eq!(parse(args("")).unwrap(), Command::Help);
        assert_eq!(
            parse(args("install")).unwrap(),
            Command::Install(Registration::default())
        );
        assert_eq!(
            parse(args("uninstall")).unwrap(),
            Command::Uninstall(Registration::default())
        );
        assert_eq!(
            parse(args("install --log-file r.log --registration-only")).unwrap(),
            Command::Install(Registration {
                registration_only: true,
                log_file: Some(PathBuf::from("r.log")),
            })
        );
        assert_eq!(
            parse(args("uninstall --registration-only")).unwrap(),
            Command::Uninstall(Registration {
                registration_only: true,
                log_file: None,
            })
        );
        assert!(parse(args("uninstall --log-file")).is_err());
        assert_eq!(parse(args("check")).unwrap(), Command::Check(None));
        assert_eq!(
            parse(args("check x.dll")).unwrap(),
            Command::Check(Some(PathBuf::from("x.dll")))
        );
        assert_eq!(
            parse(args("scenario s.txt")).unwrap(),
            Command::Scenario(PathBuf::from("s.txt"))
        );
        assert!(
            parse(args("scenario"))
                .unwrap_err()
                .to_string()
                .contains("needs a file")
        );
        assert!(
            parse(args("install --now"))
                .unwrap_err()
                .to_string()
                .contains("unexpected")
        );
        assert!(
            parse(args("frobnicate"))
                .unwrap_err()
                .to_string()
                .contains("unknown command")
        );
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
