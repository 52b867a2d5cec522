//! The `traffic-meter` command: installs the layer into the Winsock catalog, removes it, lists
//! the catalog's layers, and sums the figures the layer wrote.
#![forbid(unsafe_code)]
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool talks to its user on stdout"
)]

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};
use traffic_meter::figures::{Figures, Summary};
use traffic_meter::identity::{DEFAULT_DLL_PATH, DLL_FILE_NAME, ENV_DIR};
use traffic_meter::log::LogConfig;

/// Installs, removes and reads the winprov traffic meter, a layered Winsock provider that counts
/// each process's connections, bytes and connection ends.
#[derive(Debug, Parser)]
#[command(name = "traffic-meter", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Copy traffic_meter.dll (next to this program) into the system directory and install
    /// the layer over TCP/IPv4 and TCP/IPv6 in every Winsock catalog (elevated administrator).
    /// Already installed: nothing changes.
    Install {
        /// The DLL path to register (environment strings such as %SystemRoot% are kept, and
        /// expanded by ws2_32). Given a path, the DLL is not copied: it is the path's business.
        #[arg(long)]
        path: Option<String>,
        #[command(flatten)]
        registration: Registration,
    },
    /// Remove the layer and its chains from every catalog (not installed: not an error) and
    /// delete the DLL from the system directory.
    Uninstall {
        #[command(flatten)]
        registration: Registration,
    },
    /// List every layered provider of every catalog, with its chains.
    List,
    /// Sum the figures the layer wrote, per process and per endpoint.
    Show {
        /// The directory of the logs (default: $TRAFFIC_METER_DIR, else
        /// %ProgramData%\winprov\traffic-meter).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// The options the MSI's custom actions use.
#[derive(Debug, Default, Args)]
struct Registration {
    /// Leave the DLL in the system directory alone (the MSI installs and removes it).
    #[arg(long)]
    registration_only: bool,
    /// Append one line with the outcome to this file (`install: ok`, `uninstall: failed:
    /// <reason>`).
    #[arg(long)]
    log_file: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    if let Err(error) = execute(cli.command) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn execute(command: Command) -> Result<()> {
    match command {
        Command::Install { path, registration } => record_outcome(
            "install",
            registration.log_file.as_deref(),
            platform::install(path, registration.registration_only),
        ),
        Command::Uninstall { registration } => record_outcome(
            "uninstall",
            registration.log_file.as_deref(),
            platform::uninstall(registration.registration_only),
        ),
        Command::List => platform::list(),
        Command::Show { dir } => show(dir),
    }
}

/// Appends `<command>: ok` or `<command>: failed: <reason>` to `log_file` (creating its
/// directory): whoever ran the command unattended can see what happened. Returns the outcome.
fn record_outcome(command: &str, log_file: Option<&Path>, outcome: Result<()>) -> Result<()> {
    let Some(path) = log_file else {
        return outcome;
    };
    let line = match &outcome {
        Ok(()) => format!("{command}: ok\n"),
        Err(error) => format!(
            "{command}: failed: {}\n",
            format!("{error:#}").replace(['\r', '\n'], " ")
        ),
    };
    let appended = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| {
            use std::io::Write as _;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?
                .write_all(line.as_bytes())
        });
    if let Err(error) = appended {
        eprintln!("warning: writing {}: {error}", path.display());
    }
    outcome
}

/// The logs' directory: `dir`, else as the layer finds it.
fn log_directory(dir: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = dir {
        return Ok(dir);
    }
    LogConfig::from_environment()
        .map(|config| config.directory)
        .with_context(|| format!("neither {ENV_DIR} nor %ProgramData% is set: give --dir"))
}

fn show(dir: Option<PathBuf>) -> Result<()> {
    let dir = log_directory(dir)?;
    let summary = read_logs(&dir)?;
    print!("{}", render(&dir, &summary));
    Ok(())
}

/// Every `*.log.1` then `*.log` of `dir`, summed.
fn read_logs(dir: &Path) -> Result<Summary> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path.to_string_lossy();
            name.ends_with(".log") || name.ends_with(".log.1")
        })
        .collect();
    // The rotated file of an executable before its current one.
    files.sort_by_key(|path| (!path.to_string_lossy().ends_with(".1"), path.clone()));
    let mut summary = Summary::default();
    for file in files {
        match std::fs::read(&file) {
            Ok(bytes) => summary.add_text(&String::from_utf8_lossy(&bytes)),
            Err(error) => eprintln!("warning: reading {}: {error}", file.display()),
        }
    }
    Ok(summary)
}

fn row(name: &str, f: &Figures) -> String {
    format!(
        "{name:<40} {:>6} {:>12} {:>12} {:>8} {:>8} {:>8} {:>10}\n",
        f.connections, f.sent, f.received, f.graceful, f.abortive, f.peer_fin, f.peer_reset
    )
}

fn render(dir: &Path, summary: &Summary) -> String {
    let header = format!(
        "{:<40} {:>6} {:>12} {:>12} {:>8} {:>8} {:>8} {:>10}\n",
        "", "conns", "sent", "received", "graceful", "abortive", "peer-fin", "peer-reset"
    );
    let mut out = format!("{}\n\nper process\n{header}", dir.display());
    for (process, figures) in &summary.processes {
        out.push_str(&row(&format!("{} ({})", process.exe, process.pid), figures));
    }
    out.push_str(&format!("\nper endpoint\n{header}"));
    for (endpoint, figures) in &summary.endpoints {
        out.push_str(&row(&endpoint.to_string(), figures));
    }
    out.push('\n');
    out.push_str(&row("all", &summary.overall()));
    if summary.unreadable > 0 {
        out.push_str(&format!(
            "({} lines were not the meter's)\n",
            summary.unreadable
        ));
    }
    out
}

/// The DLL next to the running executable.
#[cfg_attr(not(windows), allow(dead_code))]
fn dll_next_to_exe() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this program")?;
    Ok(exe.with_file_name(DLL_FILE_NAME))
}

#[cfg(windows)]
mod platform {
    use super::*;
    use traffic_meter::install::{InstallOutcome, describe, find, install as install_layer};
    use winprov_wsp::abi::System;
    use winprov_wsp::install::Uninstalled;

    /// `%SystemRoot%\System32`, where the default path points.
    fn system_directory() -> Result<PathBuf> {
        let root = std::env::var_os("SystemRoot").context("%SystemRoot% is not set")?;
        Ok(Path::new(&root).join("System32"))
    }

    pub fn install(path: Option<String>, registration_only: bool) -> Result<()> {
        let copied = match (&path, registration_only) {
            (None, false) => {
                let source = dll_next_to_exe()?;
                let target = system_directory()?.join(DLL_FILE_NAME);
                std::fs::copy(&source, &target).with_context(|| {
                    format!("copying {} to {}", source.display(), target.display())
                })?;
                println!("copied {} to {}", source.display(), target.display());
                Some(target)
            }
            _ => None,
        };
        let path = path.as_deref().unwrap_or(DEFAULT_DLL_PATH);
        match install_layer(&System, path) {
            Ok(InstallOutcome::Installed(layers)) => {
                println!("installed the layer ({path}):");
                print!("{}", describe(&layers));
                Ok(())
            }
            Ok(InstallOutcome::AlreadyInstalled(layers)) => {
                println!("already installed; nothing changed:");
                print!("{}", describe(&layers));
                Ok(())
            }
            Err(error) => {
                if let Some(target) = copied {
                    let _ = std::fs::remove_file(target);
                }
                Err(anyhow::Error::new(error).context("installing the layer"))
            }
        }
    }

    pub fn uninstall(registration_only: bool) -> Result<()> {
        match traffic_meter::install::uninstall(&System).context("removing the layer")? {
            Uninstalled::Removed { entries } => {
                println!("removed {} catalog entries", entries.len())
            }
            Uninstalled::NotInstalled => println!("the layer is not installed"),
        }
        if !registration_only {
            let target = system_directory()?.join(DLL_FILE_NAME);
            match std::fs::remove_file(&target) {
                Ok(()) => println!("deleted {}", target.display()),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                // Running processes keep the DLL loaded until they exit.
                Err(error) => eprintln!("warning: deleting {}: {error}", target.display()),
            }
        }
        Ok(())
    }

    pub fn list() -> Result<()> {
        let layers = winprov_wsp::install::list(&System).context("reading the catalogs")?;
        print!("{}", describe(&layers));
        if find(&System).context("reading the catalogs")?.is_empty() {
            println!("(this layer is not installed)");
        }
        Ok(())
    }
}

#[cfg(not(windows))]
mod platform {
    use super::*;
    use anyhow::bail;

    fn windows_only(what: &str) -> Result<()> {
        bail!(
            "`{what}` writes or reads the Winsock catalog and runs only on Windows \
             (the default DLL path would be {DEFAULT_DLL_PATH})"
        );
    }

    pub fn install(_: Option<String>, _: bool) -> Result<()> {
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
        Cli::try_parse_from(std::iter::once("traffic-meter").chain(line.split_whitespace()))
            .map(|cli| cli.command)
    }

    #[test]
    fn command_lines() {
        assert!(matches!(
            parse("install").unwrap(),
            Command::Install {
                path: None,
                registration: Registration {
                    registration_only: false,
                    log_file: None
                }
            }
        ));
        match parse("install --log-file r.log --registration-only --path C:\\x.dll").unwrap() {
            Command::Install { path, registration } => {
                assert_eq!(path.as_deref(), Some("C:\\x.dll"));
                assert!(registration.registration_only);
                assert_eq!(registration.log_file, Some(PathBuf::from("r.log")));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("uninstall --registration-only").unwrap(),
            Command::Uninstall {
                registration: Registration {
                    registration_only: true,
                    log_file: None
                }
            }
        ));
        assert!(matches!(parse("list").unwrap(), Command::List));
        assert!(matches!(
            parse("show --dir d").unwrap(),
            Command::Show { dir: Some(d) } if d == Path::new("d")
        ));
        assert!(parse("uninstall --log-file").is_err());
        assert!(
            parse("install --ifs").is_err(),
            "the handles come from the layer's type"
        );
        assert!(parse("frobnicate").is_err());
    }

    #[test]
    fn outcomes_are_appended_to_the_log_file() {
        let dir =
            std::env::temp_dir().join(format!("traffic-meter-outcome-{}", std::process::id()));
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
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn show_sums_the_rotated_and_current_logs() {
        let dir = std::env::temp_dir().join(format!("traffic-meter-show-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("a.exe.log.1"),
            "connection pid=1 endpoint=192.0.2.1:80 sent=3 received=4 local=close peer=fin time=1 exe=a.exe\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("a.exe.log"),
            "connection pid=1 endpoint=192.0.2.1:80 sent=5 received=6 local=abortive peer=unseen time=2 exe=a.exe\n\
             totals pid=1 connections=2 sent=8 received=10 graceful=1 abortive=1 peer-fin=1 peer-reset=0 time=3 exe=a.exe\n\
             not a line of the meter\n",
        )
        .unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored\n").unwrap();
        let summary = read_logs(&dir).unwrap();
        let expected = Figures {
            connections: 2,
            sent: 8,
            received: 10,
            graceful: 1,
            abortive: 1,
            peer_fin: 1,
            peer_reset: 0,
        };
        assert_eq!(summary.overall(), expected);
        assert_eq!(
            summary.totals.values().copied().collect::<Vec<_>>(),
            [expected]
        );
        assert_eq!(summary.unreadable, 1);
        let text = render(&dir, &summary);
        assert!(text.contains("a.exe (1)"), "{text}");
        assert!(text.contains("192.0.2.1:80"), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
