//! The process's side of `WSPStartup` / `WSPCleanup`: version negotiation (R-WSP-1), the
//! startup count (R-WSP-2), the most recent upcall table (R-WSP-3), and the proc table handed
//! out.
//!
//! A provider DLL has one [`Process`] (a `static` made by
//! [`export_provider!`](crate::export_provider)); its [`Dispatch`] is made on the first
//! `WSPStartup` and lives as long as the DLL, its resources released by
//! [`Dispatch::final_cleanup`] when the last `WSPCleanup` brings the count back to 0. The count
//! and the hooks run under one lifecycle lock, so a startup never overlaps the final cleanup;
//! the slots read the count without it (one atomic load) and answer `WSANOTINITIALISED` while
//! it is 0.

use super::decode::{Errno, ProtocolInfo, Version, decode_protocol_info, negotiate};
use super::dispatch::Dispatch;
use super::table::proc_table;
use super::upcalls::Host;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use winprov_bindings::ws2spi::{
    SOCKET_ERROR, WSAPROTOCOL_INFOW, WSPDATA, WSPPROC_TABLE, WSPUPCALLTABLE,
};
use winprov_core::{PtrError, WsaError, boundary, boundary_with, ffi};

/// A provider DLL's process-wide state. See the [module documentation](self).
#[derive(Debug)]
pub struct Process<D: Dispatch> {
    make: fn() -> D,
    dispatch: OnceLock<D>,
    /// The startup count; held while it changes and while the lifecycle hooks run.
    lifecycle: Mutex<u32>,
    /// The count, for the slots' lock-free check.
    started: AtomicU32,
    /// The upcall table of the most recent successful `WSPStartup` (R-WSP-3).
    upcalls: RwLock<Option<WSPUPCALLTABLE>>,
}

/// The type [`export_provider!`](crate::export_provider) generates to name a DLL's
/// [`Process`]: the proc table's slots are generic over it, so each slot reaches the process's
/// static without a global of the crate's own.
pub trait Export: 'static {
    /// The dispatch the slots call.
    type Dispatch: Dispatch;
    /// The process's state.
    fn process() -> &'static Process<Self::Dispatch>;
}

impl<D: Dispatch> Process<D> {
    /// The state of a process that has not started; `make` makes the dispatch on the first
    /// `WSPStartup`. Fails to compile (in a `static`) when `D::LOWEST_VERSION` is above
    /// `D::HIGHEST_VERSION`.
    pub const fn new(make: fn() -> D) -> Self {
        assert!(
            D::LOWEST_VERSION.key() <= D::HIGHEST_VERSION.key(),
            "Dispatch::LOWEST_VERSION is above HIGHEST_VERSION"
        );
        Self {
            make,
            dispatch: OnceLock::new(),
            lifecycle: Mutex::new(0),
            started: AtomicU32::new(0),
            upcalls: RwLock::new(None),
        }
    }

    /// The startup count: successful `WSPStartup`s not yet paired with a `WSPCleanup`.
    pub fn startups(&self) -> u32 {
        self.started.load(Ordering::Acquire)
    }

    /// The dispatch, once the first `WSPStartup` made it (it then lives as long as the
    /// process, across cleanups).
    pub fn dispatch(&self) -> Option<&D> {
        self.dispatch.get()
    }

    /// The host as the dispatch sees it (the current upcall table).
    pub fn host(&self) -> Host<'_> {
        Host::new(&self.upcalls)
    }

    /// The dispatch, if the process is started.
    pub(crate) fn started(&self) -> Option<&D> {
        if self.started.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.dispatch.get()
    }

    fn set_upcalls(&self, table: Option<WSPUPCALLTABLE>) {
        *self.upcalls.write().unwrap_or_else(|p| p.into_inner()) = table;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u32> {
        // The count is written only after everything that can panic: a poisoned lock holds a
        // consistent value.
        self.lifecycle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `WSPStartup` once its pointers were checked: negotiation, the count, the hooks, the
    /// upcall table. Returns the negotiated version.
    fn start(
        &'static self,
        requested: Version,
        protocol: &ProtocolInfo,
        upcalls: WSPUPCALLTABLE,
    ) -> Result<Version, WsaError> {
        let version = negotiate(requested, D::LOWEST_VERSION, D::HIGHEST_VERSION)?;
        let mut count = self.lock();
        let next = count.checked_add(1).ok_or(WsaError::WSAEPROCLIM)?;
        let previous = *self.upcalls.read().unwrap_or_else(|p| p.into_inner());
        self.set_upcalls(Some(upcalls));
        if *count == 0 {
            // The table goes back to what it was if the first startup fails or panics.
            let restore = Restore {
                process: self,
                table: previous,
                armed: true,
            };
            let dispatch = self.dispatch.get_or_init(self.make);
            let host = Host::new(&self.upcalls);
            dispatch.first_startup(&host, protocol)?;
            if let Err(error) = dispatch.each_startup(&host, protocol, version) {
                dispatch.final_cleanup(&host);
                return Err(error);
            }
            std::mem::forget(restore);
        } else if let Some(dispatch) = self.dispatch.get()
            && let Err(error) = dispatch.each_startup(&Host::new(&self.upcalls), protocol, version)
        {
            self.set_upcalls(previous);
            return Err(error);
        }
        *count = next;
        self.started.store(next, Ordering::Release);
        Ok(version)
    }

    /// `WSPCleanup`: `WSANOTINITIALISED` without a startup to pair with; the last one runs
    /// the final cleanup, then forgets the upcall table.
    fn clean(&self) -> Result<(), WsaError> {
        let mut count = self.lock();
        match *count {
            0 => Err(WsaError::WSANOTINITIALISED),
            1 => {
                *count = 0;
                self.started.store(0, Ordering::Release);
                let _forget = Restore {
                    process: self,
                    table: None,
                    armed: true,
                };
                if let Some(dispatch) = self.dispatch.get() {
                    dispatch.final_cleanup(&self.host());
                }
                Ok(())
            }
            n => {
                *count = n - 1;
                self.started.store(n - 1, Ordering::Release);
                Ok(())
            }
        }
    }
}

/// Sets the upcall table to `table` when dropped (on every path, panics included).
struct Restore<'a, D: Dispatch> {
    process: &'a Process<D>,
    table: Option<WSPUPCALLTABLE>,
    armed: bool,
}

impl<D: Dispatch> Drop for Restore<'_, D> {
    fn drop(&mut self) {
        if self.armed {
            self.process.set_upcalls(self.table);
        }
    }
}

/// `WSPDATA` for a negotiated version.
fn wsp_data<D: Dispatch>(version: Version) -> WSPDATA {
    let mut data = WSPDATA {
        wVersion: version.raw(),
        wHighVersion: D::HIGHEST_VERSION.raw(),
        ..WSPDATA::default()
    };
    let room = data.szDescription.len() - 1;
    for (unit, out) in D::DESCRIPTION
        .encode_utf16()
        .take(room)
        .zip(data.szDescription.iter_mut())
    {
        *out = unit;
    }
    data
}

fn pointer(error: PtrError) -> WsaError {
    tracing::debug!(%error, "WSPStartup: bad pointer");
    WsaError::WSAEFAULT
}

/// The body of the generated `WSPStartup`: the error code is *returned* (0 on success), not
/// stored anywhere; a panic returns `WSASYSCALLFAILURE`. `lpWSPData` and `lpProcTable` must be
/// usable (else `WSAEFAULT`, nothing counted); `lpProtocolInfo` is decoded
/// (`decode::decode_protocol_info`); a request below the lowest version is `WSAVERNOTSUPPORTED`.
/// On success the negotiated `WSPDATA` and the full proc table are written.
///
/// The metadata types `lpWSPData` as `const WSPDATA*`; it is the provider's out-parameter.
///
/// # Safety
/// ws2_32's contract: `lpwspdata` and `lpproctable` writable, `lpprotocolinfo` readable, each
/// when non-null and aligned; the upcall table's functions valid until the matching
/// `WSPCleanup`.
pub unsafe fn startup<E: Export>(
    requested: u16,
    lpwspdata: *const WSPDATA,
    lpprotocolinfo: *const WSAPROTOCOL_INFOW,
    upcalls: WSPUPCALLTABLE,
    lpproctable: *mut WSPPROC_TABLE,
) -> i32 {
    boundary("WSPStartup", WsaError::WSASYSCALLFAILURE.raw(), || {
        let started = (|| {
            let data_out = ffi::check(lpwspdata).map_err(pointer)?;
            let table_out = ffi::check(lpproctable.cast_const()).map_err(pointer)?;
            // SAFETY: ws2_32's contract for lpProtocolInfo; checked before reading.
            let protocol = unsafe { decode_protocol_info(lpprotocolinfo) }?;
            let version = E::process().start(Version::from_raw(requested), &protocol, upcalls)?;
            // SAFETY: checked non-null and aligned; writable per ws2_32's contract.
            unsafe { data_out.as_ptr().write(wsp_data::<E::Dispatch>(version)) };
            // SAFETY: as above.
            unsafe { table_out.as_ptr().write(proc_table::<E>()) };
            Ok::<(), WsaError>(())
        })();
        match started {
            Ok(()) => 0,
            Err(error) => error.raw(),
        }
    })
}

/// The body of the `WSPCleanup` slot (R-WSP-2).
///
/// # Safety
/// `lperrno` is NULL (the call is refused) or writable.
pub(crate) unsafe fn cleanup<D: Dispatch>(process: &Process<D>, lperrno: *mut i32) -> i32 {
    let Ok(errno) = Errno::new(lperrno) else {
        tracing::warn!("WSPCleanup: lpErrno unusable, call refused");
        return SOCKET_ERROR;
    };
    boundary_with(
        "WSPCleanup",
        |_| {
            errno.set(WsaError::WSASYSCALLFAILURE);
            SOCKET_ERROR
        },
        || match process.clean() {
            Ok(()) => 0,
            Err(error) => {
                errno.set(error);
                SOCKET_ERROR
            }
        },
    )
}
