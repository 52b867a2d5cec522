//! The panic boundary every export runs inside.
//!
//! A panic must never unwind into the host (for an `extern "system"` function Rust aborts the
//! whole host process instead). Each interface crate wraps every export body in [`boundary`] (or
//! [`boundary_with`]): a panic becomes the interface's documented failure value
//! (`LINEERR_OPERATIONFAILED`, `WBEM_E_PROVIDER_FAILURE`, `SOCKET_ERROR` with an error code …)
//! and is reported through `tracing` with the export's name and the panic message.
//!
//! Provider DLLs must not be built with `panic = "abort"`, which would defeat this: every
//! interface crate refuses to compile under it, at its root and in the crate its
//! `export_provider!` expands in ([`refuse_panic_abort!`](crate::refuse_panic_abort)).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

/// A `compile_error!` under `cfg(panic = "abort")`, naming the crate and the host its panic
/// would kill. Invoked at the root of every interface crate and in the expansion of its
/// `export_provider!`, so it fires in whichever crate the profile builds with `abort` (a
/// `[profile] panic = "abort"` builds every crate with it; `cargo rustc -- -C panic=abort` only
/// the author's).
#[doc(hidden)]
#[macro_export]
macro_rules! refuse_panic_abort {
    ($krate:literal, $host:literal) => {
        #[cfg(panic = "abort")]
        ::core::compile_error!(::core::concat!(
            $krate,
            " cannot be built with `panic = \"abort\"`: each export's panic boundary is ",
            "`catch_unwind`, which turns a provider's panic into that call's error code; with ",
            "`panic = \"abort\"` a panic in the provider kills the host process (",
            $host,
            ") instead. Remove `panic = \"abort\"` from the profile that builds the provider ",
            "(`panic = \"unwind\"` is the default)."
        ));
    };
}

static CAUGHT: AtomicU64 = AtomicU64::new(0);

/// A panic caught at the boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panic {
    /// The export whose body panicked.
    pub export: &'static str,
    /// The panic message, when it was a string.
    pub message: String,
}

impl std::fmt::Display for Panic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} panicked: {}", self.export, self.message)
    }
}

/// Runs an export's body; a panic returns `on_panic` instead.
pub fn boundary<R>(export: &'static str, on_panic: R, body: impl FnOnce() -> R) -> R {
    boundary_with(export, |_| on_panic, body)
}

/// Runs an export's body; a panic is turned into a return value by `on_panic`, which also runs
/// inside the boundary's protection (a panic there returns nothing to the host: see below).
///
/// If `on_panic` itself panics, that panic is caught too and the process aborts, since no value
/// of type `R` is available; `on_panic` should only build an error value.
pub fn boundary_with<R>(
    export: &'static str,
    on_panic: impl FnOnce(&Panic) -> R,
    body: impl FnOnce() -> R,
) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            let panic = Panic {
                export,
                message: message(&*payload),
            };
            drop_payload(payload);
            CAUGHT.fetch_add(1, Ordering::Relaxed);
            tracing::error!(export, message = %panic.message, "panic caught at the FFI boundary");
            match catch_unwind(AssertUnwindSafe(|| on_panic(&panic))) {
                Ok(value) => value,
                Err(second) => {
                    drop_payload(second);
                    tracing::error!(export, "the panic handler panicked; aborting");
                    std::process::abort()
                }
            }
        }
    }
}

/// How many panics the boundary has caught in this process.
pub fn caught_panics() -> u64 {
    CAUGHT.load(Ordering::Relaxed)
}

fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Dropping a payload can itself panic (a payload type with a panicking `Drop`): catch that too,
/// and leak the second payload rather than unwind.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn values_pass_through() {
        assert_eq!(boundary("TSPI_lineClose", -1, || 0), 0);
    }

    #[test]
    fn a_panic_becomes_the_error_value_and_is_counted() {
        let before = caught_panics();
        let code = boundary("TSPI_lineDrop", -0x7FFF_FFB8, || -> i32 {
            panic!("author bug")
        });
        assert_eq!(code, -0x7FFF_FFB8);
        assert!(caught_panics() > before);
    }

    #[test]
    fn the_handler_sees_export_and_message() {
        let seen = boundary_with(
            "NSPv2LookupServiceBegin",
            |panic| panic.to_string(),
            || -> String { panic!("index {} out of range", 3) },
        );
        assert_eq!(
            seen,
            "NSPv2LookupServiceBegin panicked: index 3 out of range"
        );
    }

    #[test]
    fn a_payload_whose_drop_panics_does_not_escape() {
        struct Nasty;
        impl Drop for Nasty {
            fn drop(&mut self) {
                panic!("drop of the payload panicked");
            }
        }
        let code = boundary("WSPCloseSocket", -1, || -> i32 {
            std::panic::panic_any(Nasty);
        });
        assert_eq!(code, -1);
    }
}
