//! Completing a caller's overlapped request, the way a non-IFS provider must: shared by
//! [`Base`](super::Base) and [`Layered`](super::Layered).
//!
//! The provider writes its half of the `WSAOVERLAPPED` (`Offset` = flags, `OffsetHigh` = the
//! error), then,
//!
//! - without a completion routine, calls `WPUCompleteOverlappedRequest` (an export of ws2_32,
//!   not in the upcall table), which writes `InternalHigh` = bytes, then `Internal` ≠
//!   `WSS_OPERATION_IN_PROGRESS`, and signals the event or posts to the completion port the
//!   handle is bound to; where that call fails, or returns 0 with `*lpErrno` written (Wine 8's
//!   stub), the provider writes both fields itself and sets the event;
//! - with a routine, writes `InternalHigh` then `Internal` itself and queues the routine to the
//!   initiating thread with `WPUQueueApc`, through the copy of its `WSATHREADID` (R-WSP-17,
//!   R-WSP-18).

use super::decode::{Overlapped, Socket};
use super::upcalls::Upcalls;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use winprov_bindings::not_in_metadata::WSS_OPERATION_IN_PROGRESS;
use winprov_bindings::ws2spi::{OVERLAPPED, SOCKET};
use winprov_core::boundary;

/// `WPUCompleteOverlappedRequest` (ws2spi.h), an export of ws2_32.
pub type CompleteOverlapped = unsafe extern "system" fn(
    s: SOCKET,
    lpoverlapped: *mut OVERLAPPED,
    dwerror: u32,
    cbtransferred: u32,
    lperrno: *mut i32,
) -> i32;

/// ws2_32's own `WPUCompleteOverlappedRequest`.
#[cfg(windows)]
unsafe extern "system" fn ws2_32_complete(
    s: SOCKET,
    lpoverlapped: *mut OVERLAPPED,
    dwerror: u32,
    cbtransferred: u32,
    lperrno: *mut i32,
) -> i32 {
    // SAFETY: forwarded unchanged, under this function's own contract (ws2_32's).
    unsafe {
        winprov_bindings::ws2spi::WPUCompleteOverlappedRequest(
            s,
            lpoverlapped,
            dwerror,
            cbtransferred,
            lperrno,
        )
    }
}

/// Sets `Internal` to `WSS_OPERATION_IN_PROGRESS` (the convention while a request is pending).
///
/// # Safety
/// `address` is a `WSAOVERLAPPED` the provider may write until the request completes.
pub(crate) unsafe fn mark_pending(address: usize) {
    let overlapped: *mut OVERLAPPED = std::ptr::with_exposed_provenance_mut(address);
    // SAFETY: the caller's contract; `Internal` is an aligned usize of the structure.
    unsafe {
        AtomicUsize::from_ptr(&raw mut (*overlapped).Internal)
            .store(WSS_OPERATION_IN_PROGRESS, Ordering::Release)
    };
}

/// Writes the provider's half of a completed request: `Offset` = flags, `OffsetHigh` = error.
///
/// # Safety
/// As [`mark_pending`].
pub(crate) unsafe fn write_result(address: usize, error: u32, flags: u32) {
    let overlapped: *mut OVERLAPPED = std::ptr::with_exposed_provenance_mut(address);
    // SAFETY: the caller's contract; plain writes of fields of the structure (the union's
    // variant is the offsets pair, which the provider owns while the request is pending).
    unsafe {
        (&raw mut (*overlapped).Anonymous.Anonymous.Offset).write(flags);
        (&raw mut (*overlapped).Anonymous.Anonymous.OffsetHigh).write(error);
    }
}

/// Writes ws2_32's half of a completed request, as `WPUCompleteOverlappedRequest` does:
/// `InternalHigh` = bytes, then `Internal` = the error (never `WSS_OPERATION_IN_PROGRESS`),
/// so the count is visible no later than the completion (R-WSP-18).
///
/// # Safety
/// As [`mark_pending`].
pub(crate) unsafe fn write_completion(address: usize, error: u32, bytes: u32) {
    let overlapped: *mut OVERLAPPED = std::ptr::with_exposed_provenance_mut(address);
    // SAFETY: the caller's contract; both fields are aligned usizes of the structure.
    unsafe {
        (&raw mut (*overlapped).InternalHigh).write(bytes as usize);
        AtomicUsize::from_ptr(&raw mut (*overlapped).Internal)
            .store(error as usize, Ordering::Release);
    }
}

/// A completed request as `WSPGetOverlappedResult` reads it back; `None` while it is pending.
///
/// # Safety
/// `address` is a readable `WSAOVERLAPPED`.
pub(crate) unsafe fn read_result(address: usize) -> Option<(u32, u32, u32)> {
    let overlapped: *mut OVERLAPPED = std::ptr::with_exposed_provenance_mut(address);
    // SAFETY: the caller's contract.
    unsafe {
        let internal =
            AtomicUsize::from_ptr(&raw mut (*overlapped).Internal).load(Ordering::Acquire);
        if internal == WSS_OPERATION_IN_PROGRESS {
            return None;
        }
        let bytes = (&raw const (*overlapped).InternalHigh).read() as u32;
        let flags = (&raw const (*overlapped).Anonymous.Anonymous.Offset).read();
        let error = (&raw const (*overlapped).Anonymous.Anonymous.OffsetHigh).read();
        Some((bytes, flags, error))
    }
}

/// A completion routine queued with `WPUQueueApc`: what the APC passes it.
struct Apc {
    routine: unsafe extern "system" fn(u32, u32, *mut OVERLAPPED, u32),
    error: u32,
    bytes: u32,
    overlapped: usize,
    flags: u32,
}

/// The APC `WPUQueueApc` runs on the initiating thread: calls the caller's completion routine.
unsafe extern "system" fn run_completion_routine(context: usize) {
    boundary("completion routine", (), || {
        // SAFETY: `context` is the `Box<Apc>` leaked by `Completer::deliver` for this one APC.
        let apc = unsafe { Box::from_raw(std::ptr::with_exposed_provenance_mut::<Apc>(context)) };
        let overlapped: *mut OVERLAPPED = std::ptr::with_exposed_provenance_mut(apc.overlapped);
        // SAFETY: the caller's routine and `WSAOVERLAPPED`, as it gave them to the request,
        // called on the initiating thread as LPWSAOVERLAPPED_COMPLETION_ROUTINE documents.
        unsafe { (apc.routine)(apc.error, apc.bytes, overlapped, apc.flags) };
    })
}

/// How a provider completes its callers' requests: ws2_32's `WPUCompleteOverlappedRequest`,
/// or the function a host simulator gives instead.
#[derive(Debug, Default)]
pub(crate) struct Completer {
    complete: OnceLock<CompleteOverlapped>,
}

impl Completer {
    pub(crate) fn set(&self, complete: CompleteOverlapped) {
        if self.complete.set(complete).is_err() {
            tracing::warn!("the completion function is already set: kept");
        }
    }

    /// The function completing requests: the one given, else ws2_32's on Windows.
    fn function(&self) -> Option<CompleteOverlapped> {
        #[cfg(windows)]
        let default: Option<CompleteOverlapped> = Some(ws2_32_complete);
        #[cfg(not(windows))]
        let default: Option<CompleteOverlapped> = None;
        self.complete.get().copied().or(default)
    }

    /// Completes `request`, made on `socket`, with `code` (0: success), `count` bytes and
    /// `flags`. See the [module documentation](self).
    ///
    /// # Safety
    /// The request's `WSAOVERLAPPED` is the provider's to write until this completion, and is
    /// completed once.
    pub(crate) unsafe fn deliver(
        &self,
        upcalls: Result<Upcalls, winprov_core::WsaError>,
        socket: Socket,
        request: &Overlapped,
        code: u32,
        count: u32,
        flags: u32,
    ) {
        let address = request.address();
        // SAFETY: the caller's contract.
        unsafe { write_result(address, code, flags) };
        match (request.routine(), request.thread()) {
            (Some(routine), Some(thread)) => {
                // SAFETY: as above.
                unsafe { write_completion(address, code, count) };
                let apc = Box::new(Apc {
                    routine,
                    error: code,
                    bytes: count,
                    overlapped: address,
                    flags,
                });
                let context = Box::into_raw(apc).expose_provenance();
                let queued = upcalls
                    .and_then(|u| u.queue_apc(thread, Some(run_completion_routine), context));
                if let Err(error) = queued {
                    tracing::error!(%error, "WPUQueueApc failed: the completion routine is lost");
                    // SAFETY: not queued: the box is still ours.
                    drop(unsafe {
                        Box::from_raw(std::ptr::with_exposed_provenance_mut::<Apc>(context))
                    });
                }
            }
            // SAFETY: the caller's contract.
            _ => unsafe { self.signal(upcalls, socket, address, code, count, request.event()) },
        }
    }

    /// A completion without routine: `WPUCompleteOverlappedRequest`, or the provider's own
    /// completion and event when it is missing or fails.
    ///
    /// # Safety
    /// As [`deliver`](Self::deliver).
    unsafe fn signal(
        &self,
        upcalls: Result<Upcalls, winprov_core::WsaError>,
        socket: Socket,
        address: usize,
        code: u32,
        count: u32,
        event: usize,
    ) {
        if let Some(complete) = self.function() {
            let mut errno = 0;
            let overlapped: *mut OVERLAPPED = std::ptr::with_exposed_provenance_mut(address);
            // SAFETY: ws2_32's export (or the simulator's), with the socket it made and the
            // caller's `WSAOVERLAPPED`, valid until this completion; `errno` is a live local.
            let result =
                unsafe { complete(SOCKET(socket.raw()), overlapped, code, count, &mut errno) };
            // Success leaves `lpErrno` alone; a "success" that set it completed nothing (Wine
            // 8's stub returns 0 with WSAEINVAL and touches neither the structure nor the
            // event).
            if result == 0 && errno == 0 {
                return;
            }
            tracing::warn!(
                result,
                errno,
                "WPUCompleteOverlappedRequest did not complete the request: completing directly"
            );
        }
        // SAFETY: the caller's contract.
        unsafe { write_completion(address, code, count) };
        // The low bit of `hEvent` only keeps the completion off a port.
        let event = (event & !1) as isize;
        if event != 0
            && let Err(error) = upcalls.and_then(|u| u.set_event(event))
        {
            tracing::warn!(%error, "WPUSetEvent failed");
        }
    }
}
