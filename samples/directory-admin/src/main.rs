//! The `directory-admin` command: installs the provider's classes and registrations into WMI
//! (the MOF, compiled by WMI's own compiler), removes them, or prints the MOF; and, as any WMI
//! client would, lists the directory's entries or counts them through WMI
//! (`winprov_wbem::client`), which runs the provider.
//!
//! The COM registration of `directory_admin.dll` is the installer's (registry rows), or
//! `regsvr32 directory_admin.dll` by hand.
#![forbid(unsafe_code)]
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool talks to its user on stdout"
)]

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use directory_admin::classes::{CountOut, Winprov_DirectoryEntry, mof};
use directory_admin::identity::NAMESPACE;
use std::path::{Path, PathBuf};
use winprov_wbem::class::{MethodParameters, WmiClass};
use winprov_wbem::client::Connection;
use winprov_wbem::compile_mof;

/// Manage the WMI registration of the e-mail directory admin provider, and read the directory
/// through WMI.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compile the provider's MOF into WMI: the `root\winprov` namespace, the classes and the
    /// provider's registrations (needs an elevated administrator). On failure what was
    /// compiled is removed again.
    Install {
        /// Append one line with the outcome (`install: ok`, `install: failed: <reason>`).
        #[arg(long)]
        log_file: Option<PathBuf>,
    },
    /// Remove the classes and registrations from WMI (nothing there is not an error).
    Uninstall {
        /// Append one line with the outcome.
        #[arg(long)]
        log_file: Option<PathBuf>,
    },
    /// Print the MOF (to compile with `mofcomp` yourself).
    Mof {
        /// The MOF that removes the classes and registrations instead.
        #[arg(long)]
        uninstall: bool,
    },
    /// List the directory's entries through WMI: each name with its addresses (enumerates
    /// `Winprov_DirectoryEntry` in `root\winprov`; needs WMI and the installed provider).
    List,
    /// Print the number of entries, from WMI: the static method
    /// `Winprov_DirectoryEntry.Count()`.
    Count,
}

fn main() {
    let outcome = match Cli::parse().command {
        Command::Install { log_file } => record("install", log_file.as_deref(), install()),
        Command::Uninstall { log_file } => record("uninstall", log_file.as_deref(), uninstall()),
        Command::Mof { uninstall } => print_mof(uninstall),
        Command::List => connect().and_then(|wmi| {
            for line in list(&wmi)? {
                println!("{line}");
            }
            Ok(())
        }),
        Command::Count => connect().and_then(|wmi| {
            println!("{}", count(&wmi)?);
            Ok(())
        }),
    };
    if let Err(error) = outcome {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn print_mof(uninstall: bool) -> Result<()> {
    let mof = mof();
    let text = match uninstall {
        true => mof.uninstall(),
        false => mof.install(),
    };
    print!("{}", text.context("writing the MOF")?);
    Ok(())
}

/// The provider's namespace in WMI (off Windows, and where there is no WMI, the error says
/// so).
fn connect() -> Result<Connection> {
    Connection::connect(NAMESPACE).context("connecting to WMI")
}

/// One line per entry: its name, a tab, its addresses separated by spaces.
fn list(wmi: &Connection) -> Result<Vec<String>> {
    let mut call = wmi.enumerate(Winprov_DirectoryEntry::NAME);
    let lines = call
        .by_ref()
        .map(|instance| {
            let entry = Winprov_DirectoryEntry::from_instance(&instance)?;
            Ok(format!("{}\t{}", entry.Name, entry.Addresses.join(" ")))
        })
        .collect::<Result<Vec<String>>>();
    // A conversion failure drops the call unfinished: it is cancelled.
    let lines = lines.context("reading an entry from WMI")?;
    call.finish()
        .with_context(|| format!("enumerating {}", Winprov_DirectoryEntry::NAME))?;
    Ok(lines)
}

/// The `ReturnValue` of the static method `Count`, from its out-parameters.
fn count(wmi: &Connection) -> Result<u32> {
    let mut call = wmi.exec_method(CountOut::CLASS, CountOut::METHOD, None);
    let out = call.next();
    call.finish()
        .with_context(|| format!("calling {}.{}", CountOut::CLASS, CountOut::METHOD))?;
    let out = out.context("the method returned no out-parameters")?;
    Ok(CountOut::from_instance(&out)?.ReturnValue)
}

fn install() -> Result<()> {
    let mof = mof();
    let compiled = compile_mof(&mof.install().context("writing the MOF")?);
    if let Err(error) = compiled {
        // Leave nothing half-registered (a no-op when the compiler itself is missing).
        if let Ok(text) = mof.uninstall() {
            let _ = compile_mof(&text);
        }
        return Err(error).context("compiling the provider's MOF into WMI");
    }
    println!("installed: the provider's classes are in WMI");
    Ok(())
}

fn uninstall() -> Result<()> {
    let text = mof().uninstall().context("writing the MOF")?;
    match compile_mof(&text) {
        Ok(()) => println!("uninstalled: the provider's classes are gone from WMI"),
        // No WMI, so nothing of the provider's can be in it.
        Err(error) if error.compiler_unavailable() => println!("nothing to uninstall: {error}"),
        Err(error) => return Err(error).context("removing the provider's classes from WMI"),
    }
    Ok(())
}

/// Appends `<command>: ok` or `<command>: failed: <reason>` to `log_file` (the installer's
/// evidence: an MSI log does not keep a custom action's output), and passes `outcome` on.
fn record(command: &str, log_file: Option<&Path>, outcome: Result<()>) -> Result<()> {
    let Some(path) = log_file else {
        return outcome;
    };
    let line = match &outcome {
        Ok(()) => format!("{command}: ok\n"),
        Err(error) => {
            let reason = format!("{error:#}").replace(['\r', '\n'], " ");
            format!("{command}: failed: {reason}\n")
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use directory_admin::DirectoryAdmin;
    use email_directory_file::DirectoryFile;
    use winprov_wbem::testing::Host;

    /// The provider over a directory file of `names` (one address each), with WMI's view of
    /// it through the simulator: the commands' functions see what they would see on Windows.
    fn with_directory(names: &[&str], check: impl FnOnce(&Connection)) {
        // A folder per process and directory size: the tests run at once.
        let dir = std::env::temp_dir().join(format!(
            "directory-admin-cmd-{}-{}",
            std::process::id(),
            names.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = DirectoryFile::new(dir.join("directory.txt"));
        file.update(|directory| {
            for (i, name) in names.iter().enumerate() {
                directory.get_or_insert(name).addresses =
                    vec![format!("192.0.2.{}:25", i + 1).parse().unwrap()];
            }
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
        let host = Host::new(DirectoryAdmin::new(file));
        host.declare_class::<Winprov_DirectoryEntry>();
        let wmi = host.client();
        check(&wmi);
        drop(wmi);
        let left = host.release();
        assert_eq!((left.provider, left.simulator), (0, 0));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn list_prints_each_entry_with_its_addresses() {
        with_directory(&["a@x.org", "b@x.org"], |wmi| {
            assert_eq!(
                list(wmi).unwrap(),
                ["a@x.org\t192.0.2.1:25", "b@x.org\t192.0.2.2:25"]
            );
        });
    }

    #[test]
    fn count_calls_the_static_method() {
        with_directory(&["a@x.org", "b@x.org", "c@x.org"], |wmi| {
            assert_eq!(count(wmi).unwrap(), 3);
        });
    }

    #[test]
    fn without_wmi_the_commands_say_so() {
        if cfg!(windows) {
            return;
        }
        let error = connect().unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("WMI is not available"), "{text}");
    }
}
