//! The `email-directory` command: advertises the provider in a console (`run`) or as the
//! Windows service (`service`), and installs or removes the namespace and the service.
#![forbid(unsafe_code)]
#![allow(
    clippy::print_stdout,
    reason = "a command-line tool talks to its user on stdout"
)]

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use email_directory::{Config, EmailDirectory, identity};
use std::path::PathBuf;
use winprov_nspv2::{Domain, NamespaceInstall, NspError, ProviderLevel, ProviderType, Uninstalled};

/// Answers Winsock NS_EMAIL name lookups from the e-mail directory file: advertises the
/// provider in a console or as the Windows service, and installs or removes the namespace and
/// the service.
#[derive(Debug, Parser)]
#[command(
    name = "email-directory",
    version,
    after_help = "\
Environment:
  EMAIL_DIRECTORY_FILE      the directory file; --directory wins (default on Windows:
                            %ProgramData%\\winprov\\email-directory.txt, elsewhere:
                            ./email-directory.txt)
  EMAIL_DIRECTORY_DELAY_MS  a delay waited at the start of every lookup result (a slow backend)
  EMAIL_DIRECTORY_LOG       log level on stderr: error, warn, info (default), debug or trace"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Advertise the provider from this console until Enter is pressed.
    Run {
        #[command(flatten)]
        file: DirectoryFileArg,
    },
    /// The entry point the Windows Service Control Manager starts.
    Service {
        #[command(flatten)]
        file: DirectoryFileArg,
    },
    /// Register the NS_EMAIL namespace in the Winsock catalog and create the auto-start service
    /// running `email-directory service` (or use the one the installer created), then start it
    /// (elevated administrator).
    Install {
        #[command(flatten)]
        file: DirectoryFileArg,
        /// A domain the provider answers for (repeat for more; default example.org).
        #[arg(long = "domain", value_name = "NAME")]
        domains: Vec<String>,
        #[command(flatten)]
        outcome: OutcomeLog,
    },
    /// Stop and delete the service and remove the namespace (a namespace or service that is not
    /// there is not an error).
    Uninstall {
        #[command(flatten)]
        outcome: OutcomeLog,
    },
}

/// `--directory`.
#[derive(Debug, Default, Args)]
struct DirectoryFileArg {
    /// The directory file (default: $EMAIL_DIRECTORY_FILE, else the platform's default).
    #[arg(long, value_name = "PATH")]
    directory: Option<PathBuf>,
}

/// `--log-file`, which the MSI's custom actions use.
#[derive(Debug, Default, Args)]
struct OutcomeLog {
    /// Append one line with the outcome to this file (`install: ok`, `uninstall: failed:
    /// <reason>`).
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
}

fn main() {
    init_logging();
    let cli = Cli::parse();
    if let Err(error) = execute(cli.command) {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

fn init_logging() {
    let level = match std::env::var("EMAIL_DIRECTORY_LOG")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "error" => tracing::Level::ERROR,
        "warn" => tracing::Level::WARN,
        "debug" => tracing::Level::DEBUG,
        "trace" => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
}

fn execute(command: Command) -> Result<()> {
    match command {
        Command::Run { file } => run(config(file.directory)),
        Command::Service { file } => platform::run_service(config(file.directory)),
        Command::Install {
            file,
            domains,
            outcome,
        } => record(
            "install",
            outcome.log_file,
            install(file.directory, domains),
        ),
        Command::Uninstall { outcome } => record("uninstall", outcome.log_file, uninstall()),
    }
}

/// Appends `<command>: ok` or `<command>: failed: <reason>` to `log_file` (creating its
/// directory), so that whoever ran the command unattended — the MSI's custom actions, whose
/// output no log keeps — can see what happened. Returns the command's outcome.
fn record(command: &str, log_file: Option<PathBuf>, outcome: Result<()>) -> Result<()> {
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
    let written = (|| -> std::io::Result<()> {
        use std::io::Write as _;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?
            .write_all(line.as_bytes())
    })();
    if let Err(error) = written {
        eprintln!("warning: writing {}: {error}", path.display());
    }
    outcome
}

/// The environment's settings, with the file from the command line if given.
fn config(directory: Option<PathBuf>) -> Config {
    let mut config = Config::from_env();
    if let Some(directory) = directory {
        config.directory = directory;
    }
    config
}

/// Advertises the provider; on failure the error names the Winsock function that failed
/// (`WSAAdvertiseProvider` when the system has none).
fn advertise(config: Config) -> Result<winprov_nspv2::Advertisement> {
    let provider = EmailDirectory::new(config);
    winprov_nspv2::Advertisement::new(identity::PROVIDER_ID, provider).map_err(|error| {
        let hint = match error {
            NspError::Unavailable { .. } => {
                " (NSPv2 needs Windows Vista or later; Wine has no NSPv2 host functions)"
            }
            _ => "",
        };
        anyhow::Error::new(error).context(format!("advertising the provider{hint}"))
    })
}

fn run(config: Config) -> Result<()> {
    let path = config.directory.clone();
    let advertisement = advertise(config)?;
    println!(
        "advertising \"{}\" ({:?}), directory file {}",
        identity::NAMESPACE_IDENTIFIER,
        identity::PROVIDER_ID,
        path.display()
    );
    println!("press Enter (or Ctrl-C) to stop");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the console")?;
    drop(advertisement);
    println!("provider withdrawn");
    Ok(())
}

fn install(directory: Option<PathBuf>, domains: Vec<String>) -> Result<()> {
    let directory = directory
        .map(|path| std::path::absolute(&path).with_context(|| format!("{}", path.display())))
        .transpose()?;
    let domains = if domains.is_empty() {
        identity::DEFAULT_DOMAINS
            .iter()
            .map(|d| d.to_string())
            .collect()
    } else {
        domains
    };
    let description = NamespaceInstall {
        id: identity::PROVIDER_ID,
        identifier: identity::NAMESPACE_IDENTIFIER.to_string(),
        version: 1,
        provider_type: ProviderType::Service,
        supports_wildcard: false,
        domains: domains
            .iter()
            .map(|name| Domain {
                name: name.clone(),
                level: ProviderLevel::Primary,
            })
            .collect(),
    };
    winprov_nspv2::install(&description)
        .context("registering the namespace in the Winsock catalog")?;
    println!(
        "namespace \"{}\" ({:?}) installed for {}",
        identity::NAMESPACE_IDENTIFIER,
        identity::PROVIDER_ID,
        domains.join(", ")
    );
    if let Err(error) = platform::create_service(directory.as_deref()) {
        match winprov_nspv2::uninstall(identity::PROVIDER_ID) {
            Ok(_) => eprintln!("the namespace installation was rolled back"),
            Err(rollback) => eprintln!(
                "rolling back the namespace installation failed too: {rollback}; \
                 run `email-directory uninstall`"
            ),
        }
        return Err(error.context(format!("creating the service {}", identity::SERVICE_NAME)));
    }
    Ok(())
}

fn uninstall() -> Result<()> {
    let service = platform::delete_service();
    match &service {
        Ok(true) => println!("service {} deleted", identity::SERVICE_NAME),
        Ok(false) => println!("service {} was not installed", identity::SERVICE_NAME),
        Err(error) => eprintln!("error: deleting the service: {error:#}"),
    }
    // Nothing registered (the MSI's SKIPREGISTRATION, or an install rolled back) is not an
    // error: the catalog answers WSAEINVAL, which the framework reports as NotInstalled.
    let namespace = winprov_nspv2::uninstall(identity::PROVIDER_ID);
    match &namespace {
        Ok(Uninstalled::Removed) => println!("namespace {:?} removed", identity::PROVIDER_ID),
        Ok(Uninstalled::NotInstalled) => {
            println!("namespace {:?} was not registered", identity::PROVIDER_ID)
        }
        Err(_) => {}
    }
    if let Err(error) = &namespace {
        eprintln!("error: removing the namespace from the Winsock catalog: {error}");
    }
    if service.is_err() || namespace.is_err() {
        bail!("uninstall incomplete");
    }
    Ok(())
}

/// The Windows service: the Service Control Manager side.
#[cfg(windows)]
mod platform {
    use super::{advertise, identity};
    use anyhow::{Context, Result, bail};
    use email_directory::Config;
    use std::ffi::OsString;
    use std::path::Path;
    use std::sync::{OnceLock, mpsc};
    use std::time::{Duration, Instant};
    use windows_service::service::{
        ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
        ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
    };
    use windows_service::service_control_handler::{self, ServiceControlHandlerResult};
    use windows_service::service_manager::{ServiceManager, ServiceManagerAccess};
    use windows_service::{define_windows_service, service_dispatcher};

    /// `ERROR_SERVICE_DOES_NOT_EXIST`.
    const SERVICE_DOES_NOT_EXIST: i32 = 1060;
    /// `ERROR_SERVICE_EXISTS`.
    const SERVICE_EXISTS: i32 = 1073;
    /// How long `uninstall` waits for the service to stop.
    const STOP_TIMEOUT: Duration = Duration::from_secs(30);

    /// The settings `service_main` runs with (the dispatcher passes no state).
    static CONFIG: OnceLock<Config> = OnceLock::new();

    pub(super) fn run_service(config: Config) -> Result<()> {
        let _ = CONFIG.set(config);
        service_dispatcher::start(identity::SERVICE_NAME, ffi_service_main).context(
            "connecting to the Service Control Manager (this command is started by it: \
             use `sc start` for the service, or `run` in a console)",
        )
    }

    define_windows_service!(ffi_service_main, service_main);

    fn service_main(_arguments: Vec<OsString>) {
        if let Err(error) = serve() {
            tracing::error!(error = format!("{error:#}"), "service failed");
        }
    }

    fn status(state: ServiceState, exit_code: ServiceExitCode) -> ServiceStatus {
        let (controls_accepted, wait_hint) = match state {
            ServiceState::Running => (
                ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN,
                Duration::ZERO,
            ),
            ServiceState::StartPending | ServiceState::StopPending => {
                (ServiceControlAccept::empty(), Duration::from_secs(10))
            }
            _ => (ServiceControlAccept::empty(), Duration::ZERO),
        };
        ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted,
            exit_code,
            checkpoint: 0,
            wait_hint,
            process_id: None,
        }
    }

    /// Registers the control handler, advertises until Stop, and reports Stopped in every case
    /// once the handler is registered.
    fn serve() -> Result<()> {
        let (stop, stopped) = mpsc::channel();
        let handler = move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                let _ = stop.send(());
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        };
        let handle = service_control_handler::register(identity::SERVICE_NAME, handler)
            .context("registering the service control handler")?;
        let report = |state| {
            handle
                .set_service_status(status(state, ServiceExitCode::NO_ERROR))
                .with_context(|| format!("reporting {state:?}"))
        };
        let outcome: Result<()> = (|| {
            report(ServiceState::StartPending)?;
            let config = CONFIG.get().cloned().unwrap_or_else(Config::from_env);
            let advertisement = advertise(config)?;
            report(ServiceState::Running)?;
            tracing::info!("service running");
            // A closed channel (the handler is gone) stops too.
            let _ = stopped.recv();
            report(ServiceState::StopPending)?;
            drop(advertisement);
            Ok(())
        })();
        let exit_code = match &outcome {
            Ok(()) => ServiceExitCode::NO_ERROR,
            Err(error) => ServiceExitCode::ServiceSpecific(
                error
                    .downcast_ref::<winprov_nspv2::NspError>()
                    .and_then(winprov_nspv2::NspError::code)
                    .map_or(1, |code| code.raw().unsigned_abs()),
            ),
        };
        let reported = handle
            .set_service_status(status(ServiceState::Stopped, exit_code))
            .context("reporting Stopped");
        outcome.and(reported)
    }

    pub(super) fn create_service(directory: Option<&Path>) -> Result<()> {
        let manager = ServiceManager::local_computer(
            None::<&str>,
            ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
        )
        .context("opening the Service Control Manager (needs an elevated administrator)")?;
        let mut launch_arguments = vec![OsString::from("service")];
        if let Some(directory) = directory {
            launch_arguments.push("--directory".into());
            launch_arguments.push(directory.into());
        }
        let info = ServiceInfo {
            name: identity::SERVICE_NAME.into(),
            display_name: identity::SERVICE_DISPLAY_NAME.into(),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: std::env::current_exe().context("locating this executable")?,
            launch_arguments,
            dependencies: Vec::new(),
            account_name: None,
            account_password: None,
        };
        let access = ServiceAccess::CHANGE_CONFIG | ServiceAccess::START;
        let service = match manager.create_service(&info, access) {
            Ok(service) => {
                if let Err(error) = service.set_description(identity::SERVICE_DESCRIPTION) {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "setting the service description"
                    );
                }
                println!(
                    "service {} created (automatic start)",
                    identity::SERVICE_NAME
                );
                service
            }
            // The MSI creates the service itself (ServiceInstall) and then runs `install`.
            Err(windows_service::Error::Winapi(error))
                if error.raw_os_error() == Some(SERVICE_EXISTS) =>
            {
                println!(
                    "service {} exists (created by the installer)",
                    identity::SERVICE_NAME
                );
                manager
                    .open_service(identity::SERVICE_NAME, access)
                    .context("opening the existing service")?
            }
            Err(error) => return Err(anyhow::Error::new(error).context("CreateService")),
        };
        match service.start::<&str>(&[]) {
            Ok(()) => println!("service {} started", identity::SERVICE_NAME),
            Err(error) => eprintln!(
                "warning: the service is installed but did not start: {:#}",
                anyhow::Error::new(error)
            ),
        }
        Ok(())
    }

    /// Stops (if running) and deletes the service; `false` when it does not exist.
    pub(super) fn delete_service() -> Result<bool> {
        let manager = ServiceManager::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
            .context("opening the Service Control Manager")?;
        let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
        let service = match manager.open_service(identity::SERVICE_NAME, access) {
            Ok(service) => service,
            Err(windows_service::Error::Winapi(error))
                if error.raw_os_error() == Some(SERVICE_DOES_NOT_EXIST) =>
            {
                return Ok(false);
            }
            Err(error) => {
                return Err(anyhow::Error::new(error)
                    .context("opening the service (needs an elevated administrator)"));
            }
        };
        if service.query_status()?.current_state != ServiceState::Stopped {
            service.stop().context("stopping the service")?;
            let deadline = Instant::now() + STOP_TIMEOUT;
            while service.query_status()?.current_state != ServiceState::Stopped {
                if Instant::now() > deadline {
                    bail!("the service did not stop within {STOP_TIMEOUT:?}");
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
        service.delete().context("deleting the service")?;
        Ok(true)
    }
}

/// Elsewhere there is no Service Control Manager.
#[cfg(not(windows))]
mod platform {
    use anyhow::{Result, bail};
    use email_directory::Config;
    use std::path::Path;

    pub(super) fn run_service(_: Config) -> Result<()> {
        bail!(
            "the `service` command exists only on Windows, where the Service Control Manager \
             starts it; use `run` to advertise from a console"
        )
    }

    pub(super) fn create_service(_: Option<&Path>) -> Result<()> {
        bail!("Windows services exist only on Windows")
    }

    pub(super) fn delete_service() -> Result<bool> {
        bail!("Windows services exist only on Windows")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("email-directory").chain(line.split_whitespace()))
            .map(|cli| cli.command)
    }

    #[test]
    fn command_lines() {
        match parse("install --log-file r.log --domain a.org --domain b.org --directory d.txt")
            .unwrap()
        {
            Command::Install {
                file,
                domains,
                outcome,
            } => {
                assert_eq!(outcome.log_file, Some(PathBuf::from("r.log")));
                assert_eq!(domains, ["a.org", "b.org"]);
                assert_eq!(file.directory, Some(PathBuf::from("d.txt")));
            }
            other => panic!("{other:?}"),
        }
        match parse("uninstall --log-file r.log").unwrap() {
            Command::Uninstall { outcome } => {
                assert_eq!(outcome.log_file, Some(PathBuf::from("r.log")))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("service").unwrap(),
            Command::Service {
                file: DirectoryFileArg { directory: None }
            }
        ));
        assert!(matches!(
            parse("run --directory x").unwrap(),
            Command::Run { file } if file.directory == Some(PathBuf::from("x"))
        ));
        // What each command does not take is refused.
        assert!(parse("run --log-file r.log").is_err());
        assert!(parse("uninstall --domain a.org").is_err());
        assert!(parse("uninstall --log-file").is_err());
        assert!(parse("frobnicate").is_err());
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
        let dir =
            std::env::temp_dir().join(format!("email-directory-record-{}", std::process::id()));
        let path = dir.join("nested/registration.log");
        record("install", Some(path.clone()), Ok(())).unwrap();
        let failure = Err(anyhow::anyhow!("second line\nof it").context("first"));
        assert!(record("uninstall", Some(path.clone()), failure).is_err());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "install: ok\nuninstall: failed: first: second line of it\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(record("install", None, Ok(())).is_ok());
    }
}
