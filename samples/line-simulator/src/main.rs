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
use std::path::PathBuf;

const USAGE: &str = "\
usage: line-simulator <command>

commands:
  install            copy line_simulator.dll (next to this program) into the system directory
                     as LineSimulator.tsp and add it to TAPI (lineAddProvider); needs an
                     elevated administrator
  uninstall          remove the provider from TAPI (lineRemoveProvider) and delete the file
  check [DLL]        load the provider DLL (default: line_simulator.dll next to this program),
                     list its TSPI exports and negotiate a version, without starting it
  scenario FILE      parse a scenario file and print what it configures
  help               this text

environment (read by the provider inside TAPISRV):
  LINE_SIMULATOR_SCENARIO   the scenario file (default: every number answers, no inbound calls)
  LINE_SIMULATOR_LINES      the number of lines (default 2)
  LINE_SIMULATOR_LOG        a log file the provider appends to
";

/// What the command line asks.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Help,
    Install,
    Uninstall,
    Check(Option<PathBuf>),
    Scenario(PathBuf),
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
        Some("install") => Command::Install,
        Some("uninstall") => Command::Uninstall,
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

fn execute(command: Command) -> Result<()> {
    match command {
        Command::Help => {
            print!("{USAGE}");
            Ok(())
        }
        Command::Scenario(path) => describe_scenario(&path),
        Command::Install => platform::install(),
        Command::Uninstall => platform::uninstall(),
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
    use line_simulator::install::{find_provider, parse_provider_list};

    pub fn install() -> Result<()> {
        let source = dll_next_to_exe()?;
        if !source.is_file() {
            bail!(
                "{} not found (build it next to this program)",
                source.display()
            );
        }
        let target = sys::system_directory()?.join(TSP_FILE_NAME);
        std::fs::copy(&source, &target)
            .with_context(|| format!("copying {} to {}", source.display(), target.display()))?;
        println!("copied {} to {}", source.display(), target.display());
        match sys::line_add_provider(TSP_FILE_NAME) {
            Ok(id) => {
                println!("added {TSP_FILE_NAME} to TAPI: permanent provider id {id}");
                Ok(())
            }
            Err(error) => {
                // Leave nothing half-installed.
                let _ = std::fs::remove_file(&target);
                Err(error.context(format!(
                    "adding {TSP_FILE_NAME} to TAPI (the copy was removed again)"
                )))
            }
        }
    }

    pub fn uninstall() -> Result<()> {
        let list = sys::line_get_provider_list()?;
        let entries = parse_provider_list(&list)?;
        match find_provider(&entries) {
            Some(id) => {
                sys::line_remove_provider(id)?;
                println!("removed provider {id} ({TSP_FILE_NAME}) from TAPI");
            }
            None => println!("{TSP_FILE_NAME} is not in TAPI's provider list"),
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
            None => dll_next_to_exe()?,
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

    pub fn install() -> Result<()> {
        windows_only("install")
    }

    pub fn uninstall() -> Result<()> {
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
        assert_eq!(parse(args("install")).unwrap(), Command::Install);
        assert_eq!(parse(args("uninstall")).unwrap(), Command::Uninstall);
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
            parse(args("install now"))
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
}
