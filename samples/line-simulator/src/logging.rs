//! The DLL's optional log file ([`ENV_LOG`](crate::config::ENV_LOG)): TAPISRV has no console, so
//! the provider's `tracing` events are appended to a file when one is named.

use crate::config::ENV_LOG;
use std::sync::Mutex;

/// Installs a `tracing` subscriber appending to the file named by [`ENV_LOG`], if set. Does
/// nothing when the variable is unset, the file cannot be opened, or the process already has a
/// global subscriber.
pub fn init_from_env() {
    let Some(path) = std::env::var_os(ENV_LOG).filter(|value| !value.is_empty()) else {
        return;
    };
    let Ok(file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    else {
        return;
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .try_init();
}
