//! The host's upcall table (`WSPUPCALLTABLE`): ws2_32's functions a provider calls back
//! (`WPUCreateSocketHandle`, `WPUQueueApc` …), behind safe methods.
//!
//! The table is the one of the most recent successful `WSPStartup` of the process (R-WSP-3):
//! [`Process`](super::Process) replaces it on every startup, and a [`Host`] reads the current
//! one each time an upcall is made, so a call that outlives a newer startup still calls the
//! newest table.

use super::decode::{Socket, ThreadId};
use std::sync::RwLock;
use winprov_bindings::ws2spi::{INVALID_SOCKET, LPWSAUSERAPC, WSPUPCALLTABLE};
use winprov_core::WsaError;

/// What a [`Dispatch`](super::Dispatch) method gets to reach the host: the current upcall
/// table.
#[derive(Clone, Copy, Debug)]
pub struct Host<'a> {
    table: &'a RwLock<Option<WSPUPCALLTABLE>>,
}

impl<'a> Host<'a> {
    pub(crate) fn new(table: &'a RwLock<Option<WSPUPCALLTABLE>>) -> Self {
        Self { table }
    }

    /// The upcall table of the most recent `WSPStartup` (R-WSP-3), copied now;
    /// `WSANOTINITIALISED` when the process has none (before the first startup, after the final
    /// cleanup).
    pub fn upcalls(&self) -> Result<Upcalls, WsaError> {
        let table = *self.table.read().unwrap_or_else(|p| p.into_inner());
        table
            .map(|table| Upcalls { table })
            .ok_or(WsaError::WSANOTINITIALISED)
    }
}

/// A copy of an upcall table. Its functions are ws2_32's and valid while the process is
/// started; a slot ws2_32 left NULL answers `WSASYSCALLFAILURE`.
#[derive(Clone, Copy, Debug)]
pub struct Upcalls {
    table: WSPUPCALLTABLE,
}

/// An upcall's `lpErrno` value, for a failure.
fn failed(errno: i32) -> WsaError {
    if errno == 0 {
        WsaError::WSASYSCALLFAILURE
    } else {
        WsaError::from_raw(errno)
    }
}

impl Upcalls {
    /// The upcall table `table`, as a simulator playing ws2_32 passes it.
    ///
    /// # Safety
    /// Every non-NULL function of `table` honours its ws2spi.h prototype and contract for as
    /// long as the copy, and the copies made of it, are used — by this crate, and by a lower
    /// provider it is handed to ([`Lowers`](super::Lowers)).
    pub unsafe fn from_raw(table: WSPUPCALLTABLE) -> Self {
        Self { table }
    }

    /// The table, as ws2_32 passed it (for identity checks in host simulators).
    pub fn raw(&self) -> &WSPUPCALLTABLE {
        &self.table
    }

    /// `WPUCreateSocketHandle`: a handle ws2_32 makes for a non-IFS provider's socket, with
    /// `context` kept for `WPUQuerySocketHandleContext`.
    pub fn create_socket_handle(
        &self,
        catalog_entry_id: u32,
        context: usize,
    ) -> Result<Socket, WsaError> {
        let f = self
            .table
            .lpWPUCreateSocketHandle
            .ok_or(WsaError::WSASYSCALLFAILURE)?;
        let mut errno = 0;
        // SAFETY: ws2_32's function from the upcall table, valid while the process is started;
        // the arguments are values and a live local for lpErrno.
        let socket = unsafe { f(catalog_entry_id, context, &mut errno) };
        if socket == INVALID_SOCKET {
            return Err(failed(errno));
        }
        Ok(Socket::from_socket(socket))
    }

    /// `WPUCloseSocketHandle`.
    pub fn close_socket_handle(&self, socket: Socket) -> Result<(), WsaError> {
        let f = self
            .table
            .lpWPUCloseSocketHandle
            .ok_or(WsaError::WSASYSCALLFAILURE)?;
        let mut errno = 0;
        // SAFETY: as for `create_socket_handle`.
        match unsafe { f(socket.to_socket(), &mut errno) } {
            0 => Ok(()),
            _ => Err(failed(errno)),
        }
    }

    /// `WPUQuerySocketHandleContext`: the context given to `WPUCreateSocketHandle`.
    pub fn query_socket_handle_context(&self, socket: Socket) -> Result<usize, WsaError> {
        let f = self
            .table
            .lpWPUQuerySocketHandleContext
            .ok_or(WsaError::WSASYSCALLFAILURE)?;
        let (mut context, mut errno) = (0usize, 0);
        // SAFETY: as for `create_socket_handle`; `context` is a live local.
        match unsafe { f(socket.to_socket(), &mut context, &mut errno) } {
            0 => Ok(context),
            _ => Err(failed(errno)),
        }
    }

    /// `WPUModifyIFSHandle`: an IFS provider's handle, as ws2_32 wants it.
    pub fn modify_ifs_handle(
        &self,
        catalog_entry_id: u32,
        proposed: Socket,
    ) -> Result<Socket, WsaError> {
        let f = self
            .table
            .lpWPUModifyIFSHandle
            .ok_or(WsaError::WSASYSCALLFAILURE)?;
        let mut errno = 0;
        // SAFETY: as for `create_socket_handle`.
        let socket = unsafe { f(catalog_entry_id, proposed.to_socket(), &mut errno) };
        if socket == INVALID_SOCKET {
            return Err(failed(errno));
        }
        Ok(Socket::from_socket(socket))
    }

    /// `WPUQueueApc`: queues `apc(context)` to the thread a completion routine belongs to
    /// (the copied `WSATHREADID`, R-WSP-17).
    pub fn queue_apc(
        &self,
        thread: ThreadId,
        apc: LPWSAUSERAPC,
        context: usize,
    ) -> Result<(), WsaError> {
        let f = self
            .table
            .lpWPUQueueApc
            .ok_or(WsaError::WSASYSCALLFAILURE)?;
        let raw = thread.to_raw();
        let mut errno = 0;
        // SAFETY: as for `create_socket_handle`; `raw` is a live local copy of the structure.
        match unsafe { f(&raw, apc, context, &mut errno) } {
            0 => Ok(()),
            _ => Err(failed(errno)),
        }
    }

    /// `WPUSetEvent`.
    pub fn set_event(&self, event: isize) -> Result<(), WsaError> {
        let f = self
            .table
            .lpWPUSetEvent
            .ok_or(WsaError::WSASYSCALLFAILURE)?;
        let mut errno = 0;
        // SAFETY: as for `create_socket_handle`; the event is the caller's value.
        let ok = unsafe { f(winprov_bindings::ws2spi::WSAEVENT(event), &mut errno) };
        if ok.as_bool() {
            Ok(())
        } else {
            Err(failed(errno))
        }
    }

    /// `WPUResetEvent`.
    pub fn reset_event(&self, event: isize) -> Result<(), WsaError> {
        let f = self
            .table
            .lpWPUResetEvent
            .ok_or(WsaError::WSASYSCALLFAILURE)?;
        let mut errno = 0;
        // SAFETY: as for `create_socket_handle`; the event is the caller's value.
        let ok = unsafe { f(winprov_bindings::ws2spi::WSAEVENT(event), &mut errno) };
        if ok.as_bool() {
            Ok(())
        } else {
            Err(failed(errno))
        }
    }

    /// `WPUPostMessage` (`WSPAsyncSelect` notifications): whether it was posted.
    pub fn post_message(&self, hwnd: usize, msg: u32, wparam: usize, lparam: isize) -> bool {
        use winprov_bindings::ws2spi::{HWND, LPARAM, WPARAM};
        let Some(f) = self.table.lpWPUPostMessage else {
            return false;
        };
        // SAFETY: as for `create_socket_handle`; the window is the caller's value.
        unsafe {
            f(
                HWND(std::ptr::with_exposed_provenance_mut(hwnd)),
                msg,
                WPARAM(wparam),
                LPARAM(lparam),
            )
        }
        .as_bool()
    }
}
