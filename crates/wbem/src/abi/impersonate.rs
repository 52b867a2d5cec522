//! Acting as the client a call serves: `CoImpersonateClient` and its `CoRevertToSelf`, tied to
//! a value so the revert happens on every path (an early return, an error, a panic).
//!
//! A provider hosted as LocalSystem or NetworkService does what the client may do, not what
//! the host may, by impersonating the client around the work of a call (a file it changes for
//! the client, an access check). Impersonation belongs to the thread: the guard is not `Send`.

use scopeguard::ScopeGuard;
use std::marker::PhantomData;
use winprov_core::HResult;

/// The two calls, replaceable for tests.
#[derive(Clone, Copy)]
pub(crate) struct Api {
    pub(crate) impersonate: fn() -> Result<(), HResult>,
    pub(crate) revert: fn() -> Result<(), HResult>,
}

const COM: Api = Api {
    impersonate: imp::impersonate,
    revert: imp::revert,
};

fn revert(api: Api) {
    if let Err(error) = (api.revert)() {
        tracing::error!(%error, "CoRevertToSelf failed: the thread may still impersonate");
    }
}

/// This thread acts as the calling client for as long as the value lives
/// (`CoImpersonateClient`); dropping it reverts to the provider's own identity
/// (`CoRevertToSelf`). Made by [`impersonate_client`].
#[must_use = "the impersonation ends when the guard is dropped"]
pub struct Impersonation {
    _revert: ScopeGuard<Api, fn(Api)>,
    /// Impersonation is the thread's: the guard stays on it.
    _thread: PhantomData<*const ()>,
}

impl std::fmt::Debug for Impersonation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Impersonation").finish_non_exhaustive()
    }
}

pub(crate) fn impersonate_with(api: Api) -> Result<Impersonation, HResult> {
    (api.impersonate)()?;
    Ok(Impersonation {
        _revert: scopeguard::guard(api, revert as fn(Api)),
        _thread: PhantomData,
    })
}

/// Impersonates the client of the WMI call this thread serves (call it from inside a
/// provider method, on WMI's thread). Off Windows: `WBEM_E_NOT_AVAILABLE`.
pub fn impersonate_client() -> Result<Impersonation, HResult> {
    impersonate_with(COM)
}

/// Runs `work` as the calling client, reverting afterwards whatever happens; the
/// impersonation's failure is returned without running `work`.
pub fn as_client<R>(work: impl FnOnce() -> R) -> Result<R, HResult> {
    let _client = impersonate_client()?;
    Ok(work())
}

#[cfg(windows)]
mod imp {
    use winprov_bindings::wbem::{CoImpersonateClient, CoRevertToSelf};
    use winprov_core::HResult;

    pub(super) fn impersonate() -> Result<(), HResult> {
        // SAFETY: no arguments; COM answers an error outside a call.
        unsafe { CoImpersonateClient() }.map_err(|e| HResult::from_raw(e.code().0))
    }

    pub(super) fn revert() -> Result<(), HResult> {
        // SAFETY: no arguments; ends this thread's impersonation.
        unsafe { CoRevertToSelf() }.map_err(|e| HResult::from_raw(e.code().0))
    }
}

#[cfg(not(windows))]
mod imp {
    use winprov_core::HResult;

    pub(super) fn impersonate() -> Result<(), HResult> {
        Err(HResult::WBEM_E_NOT_AVAILABLE)
    }

    pub(super) fn revert() -> Result<(), HResult> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static DEPTH: Cell<i32> = const { Cell::new(0) };
        static REFUSE: Cell<bool> = const { Cell::new(false) };
    }

    fn fake() -> Api {
        Api {
            impersonate: || match REFUSE.get() {
                true => Err(HResult::E_FAIL),
                false => {
                    DEPTH.set(DEPTH.get() + 1);
                    Ok(())
                }
            },
            revert: || {
                DEPTH.set(DEPTH.get() - 1);
                Ok(())
            },
        }
    }

    #[test]
    fn the_guard_reverts_on_every_path() {
        {
            let _client = impersonate_with(fake()).unwrap();
            assert_eq!(DEPTH.get(), 1);
        }
        assert_eq!(DEPTH.get(), 0, "dropped: reverted");
        let unwound = std::panic::catch_unwind(|| {
            let _client = impersonate_with(fake()).unwrap();
            panic!("the work failed");
        });
        assert!(unwound.is_err());
        assert_eq!(DEPTH.get(), 0, "a panic reverts too");
        REFUSE.set(true);
        assert_eq!(impersonate_with(fake()).err(), Some(HResult::E_FAIL));
        assert_eq!(
            DEPTH.get(),
            0,
            "a refused impersonation has nothing to revert"
        );
        REFUSE.set(false);
    }

    #[test]
    fn off_windows_there_is_no_client_to_be() {
        if !cfg!(windows) {
            assert_eq!(as_client(|| ()).err(), Some(HResult::WBEM_E_NOT_AVAILABLE));
        }
    }
}
