//! The host's structures, decoded: each function takes what ws2_32 passed (raw pointers, counts,
//! flags) and returns a typed value or the documented error code. None of them reads through a
//! pointer that is NULL where a value is required, misaligned for its type, or described by a
//! count or length that overflows; the rest (the memory really being there) is ws2_32's
//! contract, which is why the readers are `unsafe fn`s.
//!
//! What the caller may reuse as soon as the call returns is copied here, before it does
//! (R-WSP-17): the `WSABUF` array of `WSPSend` / `WSPRecv` (the descriptors, not the bytes they
//! describe, which stay the caller's until the operation completes) and the `WSATHREADID` a
//! completion routine is queued to.
//!
//! The typed values are what [`Dispatch`](super::Dispatch) receives. Buffers the host lends
//! for one call are borrowed for that call ([`SendData<'call>`], [`RecvBuffers<'call>`]); the
//! receive buffers of an overlapped call live as long as the operation, inside
//! [`OverlappedRecv`], whose [`finish`](OverlappedRecv::finish) hands back the [`Overlapped`]
//! to complete only once no byte can be written any more.

pub use crate::values::{How, Linger, ProtocolChain, ProtocolInfo, ServiceFlags, SockOpt};
use smallvec::SmallVec;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::time::Duration;
use winprov_bindings::windows_core::PSTR;
use winprov_bindings::ws2spi::{
    FD_SET, LINGER, LPWSAOVERLAPPED_COMPLETION_ROUTINE, OVERLAPPED, SOCKET, TIMEVAL, WSABUF,
    WSAPROTOCOL_INFOW, WSATHREADID,
};
use winprov_core::{PtrError, WsaError, ffi};

/// Most `WSABUF`s accepted in one call (Linux's `UIO_MAXIOV`); more is `WSAEINVAL`.
pub const MAX_BUFFERS: usize = 1024;
/// Largest socket address accepted (`SOCKADDR_STORAGE`); longer is `WSAEFAULT`.
pub const MAX_SOCKADDR: usize = 128;
/// Sockets in one `fd_set` (`FD_SETSIZE`).
pub const FD_SETSIZE: usize = 64;

/// A pointer the host passed that cannot be used: `WSAEFAULT`, the code every WSP function
/// documents for "not in a valid part of the user address space".
fn fault(error: PtrError) -> WsaError {
    tracing::debug!(%error, "bad pointer from the host");
    WsaError::WSAEFAULT
}

// ---------------------------------------------------------------------------------------------
// lpErrno

/// The `lpErrno` out-pointer of a slot, checked (non-null, aligned) before the call does
/// anything. A slot whose `lpErrno` is unusable does nothing and returns its failure value
/// (`SOCKET_ERROR`, `INVALID_SOCKET` or `FALSE`): there is nowhere to say why.
#[derive(Debug)]
pub(crate) struct Errno(NonNull<i32>);

impl Errno {
    /// Checks the pointer; reads and writes nothing.
    pub(crate) fn new(ptr: *mut i32) -> Result<Self, PtrError> {
        ffi::check(ptr.cast_const()).map(Self)
    }

    /// Stores `code`.
    pub(crate) fn set(&self, code: WsaError) {
        // SAFETY: non-null and aligned (checked in `new`); the host passes an `int` it lets
        // the provider write for the duration of the call, which this value does not outlive
        // (it is made and dropped inside the export).
        unsafe { self.0.as_ptr().write(code.raw()) }
    }
}

// ---------------------------------------------------------------------------------------------
// Sockets, versions, `how`

/// A socket handle as the host sees it (`SOCKET`): the value the provider handed out, checked
/// by whoever looks it up, never dereferenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Socket(usize);

impl Socket {
    /// `INVALID_SOCKET`.
    pub const INVALID: Self = Self(usize::MAX);

    /// The handle of a raw `SOCKET` value.
    pub const fn from_raw(raw: usize) -> Self {
        Self(raw)
    }

    /// The raw `SOCKET` value.
    pub const fn raw(self) -> usize {
        self.0
    }

    pub(crate) const fn from_socket(socket: SOCKET) -> Self {
        Self(socket.0)
    }

    pub(crate) const fn to_socket(self) -> SOCKET {
        SOCKET(self.0)
    }
}

/// A Winsock version `WORD`: major version in the low byte, minor in the high byte (`0x0202` is
/// 2.2). Ordered by (major, minor).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Version(u16);

impl Version {
    /// Winsock 2.2, the version every current ws2_32 requests.
    pub const V2_2: Self = Self::new(2, 2);

    /// `major.minor`.
    pub const fn new(major: u8, minor: u8) -> Self {
        Self(major as u16 | (minor as u16) << 8)
    }

    /// The version of a raw `WORD`.
    pub const fn from_raw(raw: u16) -> Self {
        Self(raw)
    }

    /// The raw `WORD`.
    pub const fn raw(self) -> u16 {
        self.0
    }

    /// The low byte.
    pub const fn major(self) -> u8 {
        self.0 as u8
    }

    /// The high byte.
    pub const fn minor(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// The order key: (major, minor) as one number.
    pub(crate) const fn key(self) -> u16 {
        (self.major() as u16) << 8 | self.minor() as u16
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

/// `WSPStartup`'s negotiation (R-WSP-1): a request below `lowest` is `WSAVERNOTSUPPORTED`;
/// otherwise the version used is the lower of the request and `highest`.
pub fn negotiate(
    requested: Version,
    lowest: Version,
    highest: Version,
) -> Result<Version, WsaError> {
    if requested < lowest {
        return Err(WsaError::WSAVERNOTSUPPORTED);
    }
    Ok(requested.min(highest))
}

// ---------------------------------------------------------------------------------------------
// Socket options

/// Decodes `WSPSetSockOpt`'s option: a negative `optlen`, a NULL `optval` with a positive
/// `optlen`, or fewer bytes than the option's structure (`LINGER`, `BOOL`) are `WSAEFAULT`
/// ("optval is not in a valid part of the address space or optlen is too small"). `optval` is a
/// `char*`: no alignment is required, the structure is read byte by byte.
///
/// # Safety
/// A non-null `optval` is readable for `optlen` bytes, unchanged for `'call`.
pub(crate) unsafe fn decode_sock_opt<'call>(
    level: i32,
    name: i32,
    optval: *const u8,
    optlen: i32,
) -> Result<SockOpt<'call>, WsaError> {
    use winprov_bindings::ws2spi::{SO_DONTLINGER, SO_LINGER, SOL_SOCKET};
    let len = usize::try_from(optlen).map_err(|_| WsaError::WSAEFAULT)?;
    let value: &'call [u8] = if optval.is_null() {
        if len > 0 {
            return Err(WsaError::WSAEFAULT);
        }
        &[]
    } else {
        // SAFETY: the caller's contract; `u8` needs no alignment, the length is checked against
        // the address space.
        unsafe { ffi::slice(optval, len) }.map_err(fault)?
    };
    Ok(match (level, name) {
        (SOL_SOCKET, SO_LINGER) => {
            let Some(raw) = value.get(..size_of::<LINGER>()) else {
                return Err(WsaError::WSAEFAULT);
            };
            SockOpt::Linger(Linger {
                on: u16::from_ne_bytes([raw[0], raw[1]]) != 0,
                seconds: u16::from_ne_bytes([raw[2], raw[3]]),
            })
        }
        (SOL_SOCKET, SO_DONTLINGER) => {
            let Some(raw) = value.get(..size_of::<i32>()) else {
                return Err(WsaError::WSAEFAULT);
            };
            SockOpt::DontLinger(i32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]) != 0)
        }
        _ => SockOpt::Other { level, name, value },
    })
}

/// Writes a value into a caller's buffer with an in/out `int` length (`WSPGetSockOpt`'s
/// `optval`/`optlen`, the `sockaddr`/`namelen` pairs): the length pointer must be usable, its
/// value non-negative and at least the value's length (else `WSAEFAULT`; with `report_needed`
/// the length needed is written first, as `WSPStringToAddress` documents); then the bytes and
/// their length are written.
///
/// # Safety
/// A non-null, aligned `len` is readable and writable; a non-null `out` is writable for `*len`
/// bytes.
pub(crate) unsafe fn write_sized(
    out: *mut u8,
    len: *mut i32,
    value: &[u8],
    report_needed: bool,
) -> Result<(), WsaError> {
    let len = ffi::check(len.cast_const()).map_err(fault)?;
    // SAFETY: checked non-null and aligned; readable per the caller.
    let capacity = usize::try_from(unsafe { len.read() }).map_err(|_| WsaError::WSAEFAULT)?;
    let needed = i32::try_from(value.len()).map_err(|_| WsaError::WSAEFAULT)?;
    if value.len() > capacity || (out.is_null() && !value.is_empty()) {
        if report_needed {
            // SAFETY: as above, writable per the caller.
            unsafe { len.as_ptr().write(needed) };
        }
        return Err(WsaError::WSAEFAULT);
    }
    if !value.is_empty() {
        // SAFETY: `out` is non-null and writable for `capacity >= value.len()` bytes per the
        // caller; `value` is ours, so the two do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(value.as_ptr(), out, value.len()) };
    }
    // SAFETY: as above.
    unsafe { len.as_ptr().write(needed) };
    Ok(())
}

/// A socket address the caller passes in (`name`, `namelen`): a negative length, a NULL
/// pointer with a positive length, or more than [`MAX_SOCKADDR`] bytes are `WSAEFAULT`.
///
/// # Safety
/// A non-null `name` is readable for `len` bytes, unchanged for `'call`.
pub(crate) unsafe fn decode_sockaddr<'call>(
    name: *const u8,
    len: i32,
) -> Result<&'call [u8], WsaError> {
    let len = usize::try_from(len).map_err(|_| WsaError::WSAEFAULT)?;
    if len > MAX_SOCKADDR || (name.is_null() && len > 0) {
        return Err(WsaError::WSAEFAULT);
    }
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: the caller's contract; bytes need no alignment.
    unsafe { ffi::slice(name, len) }.map_err(fault)
}

// ---------------------------------------------------------------------------------------------
// WSABUF arrays

/// One `WSABUF` as the caller described it: an address and a length, copied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Descriptor {
    address: usize,
    len: u32,
}

/// A copy of the caller's `WSABUF` array (R-WSP-17: the caller may reuse the array as soon as
/// the call returns). Every descriptor was checked: a non-zero length has a non-null buffer
/// whose range fits the address space; zero-length buffers are kept (their pointer is never
/// used).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BufferArray {
    descriptors: SmallVec<[Descriptor; INLINE_BUFFERS]>,
}

impl BufferArray {
    /// Number of buffers.
    pub fn len(&self) -> usize {
        self.descriptors.len()
    }

    /// Whether there are no buffers.
    pub fn is_empty(&self) -> bool {
        self.descriptors.is_empty()
    }

    /// The lengths, in order.
    pub fn lens(&self) -> impl Iterator<Item = u32> + '_ {
        self.descriptors.iter().map(|d| d.len)
    }

    /// The total length.
    pub fn capacity(&self) -> u64 {
        self.descriptors.iter().map(|d| u64::from(d.len)).sum()
    }

    /// The array again, as `WSABUF`s pointing at the caller's buffers: what a layer passes to
    /// the provider below.
    pub(crate) fn to_wsabufs(&self) -> SmallVec<[WSABUF; INLINE_BUFFERS]> {
        self.descriptors
            .iter()
            .map(|d| WSABUF {
                len: d.len,
                buf: PSTR(std::ptr::with_exposed_provenance_mut(d.address)),
            })
            .collect()
    }
}

/// `WSABUF` arrays up to this many buffers are decoded without a heap allocation.
pub(crate) const INLINE_BUFFERS: usize = 8;

/// Decodes (and copies) `lpBuffers` / `dwBufferCount`: a count of 0 is an empty array whatever
/// the pointer; otherwise a NULL or misaligned array is `WSAEFAULT`, more than [`MAX_BUFFERS`]
/// is `WSAEINVAL`, and a buffer with a non-zero length and a NULL pointer, or whose range
/// overflows the address space, is `WSAEFAULT`.
///
/// # Safety
/// A non-null, aligned `array` is readable for `count` `WSABUF`s when `count` is at most
/// [`MAX_BUFFERS`].
pub(crate) unsafe fn decode_buffers(
    array: *const WSABUF,
    count: u32,
) -> Result<BufferArray, WsaError> {
    let count = count as usize;
    if count == 0 {
        return Ok(BufferArray {
            descriptors: SmallVec::new(),
        });
    }
    ffi::check(array).map_err(fault)?;
    if count > MAX_BUFFERS {
        return Err(WsaError::WSAEINVAL);
    }
    // SAFETY: checked non-null and aligned; `count` entries readable per the caller. Only read
    // here, copied at once.
    let raw = unsafe { ffi::slice(array, count) }.map_err(fault)?;
    let descriptors = raw
        .iter()
        .map(|buf| {
            let address = buf.buf.0.expose_provenance();
            let len = buf.len;
            if len > 0 {
                let fits = address != 0
                    && address.checked_add(len as usize).is_some()
                    && (len as usize) <= isize::MAX as usize;
                if !fits {
                    return Err(WsaError::WSAEFAULT);
                }
            }
            Ok(Descriptor { address, len })
        })
        .collect::<Result<_, _>>()?;
    Ok(BufferArray { descriptors })
}

/// The caller's `WSABUF` array as it is, not copied, for a call that hands it on within the
/// call (a layer passing a call down: the provider below copies what it keeps, R-WSP-17).
/// The array is checked; its buffers are only measured here. A [`SendView`] checks them as
/// the decoder of a copied array does, for the bytes it lends.
#[derive(Clone, Copy, Debug)]
pub struct BufferView<'call> {
    raw: &'call [WSABUF],
}

impl<'call> BufferView<'call> {
    /// Number of buffers.
    pub fn count(&self) -> usize {
        self.raw.len()
    }

    /// The total length.
    pub fn capacity(&self) -> u64 {
        self.raw.iter().map(|b| u64::from(b.len)).sum()
    }
}

/// A send's [`BufferView`]: the caller lends the bytes unchanged for the call.
#[derive(Clone, Copy, Debug)]
pub struct SendView<'call>(BufferView<'call>);

impl<'call> SendView<'call> {
    /// The array as it is.
    pub fn view(&self) -> BufferView<'call> {
        self.0
    }

    /// The bytes of each buffer, in order.
    pub fn slices(&self) -> impl Iterator<Item = &'call [u8]> + use<'call> {
        self.0.raw.iter().map(Self::bytes)
    }

    /// The bytes of one buffer of the array. A buffer whose pointer cannot be valid (null
    /// with a length, or a range past the address space) reads as empty: the provider below,
    /// which checks what it reads, fails the call with `WSAEFAULT`.
    fn bytes(b: &'call WSABUF) -> &'call [u8] {
        let (address, len) = (b.buf.0.expose_provenance(), b.len as usize);
        if len == 0
            || address == 0
            || address.checked_add(len).is_none()
            || len > isize::MAX as usize
        {
            return &[];
        }
        // SAFETY: non-null, the range inside the address space and at most isize::MAX
        // (checked), readable and unchanged for 'call (`SendView::new`'s contract).
        unsafe { std::slice::from_raw_parts(b.buf.0.cast_const(), len) }
    }

    /// `view`'s bytes, checked as each is read ([`LentBuffers`](crate::layer::LentBuffers)),
    /// not before: a layer that does not look at them does not pay for them.
    ///
    /// # Safety
    /// Every buffer of `view` with a non-null pointer is readable for its length and
    /// unchanged for `'call`.
    pub(crate) unsafe fn new(view: BufferView<'call>) -> Self {
        Self(view)
    }
}

impl<'call> crate::layer::LentBuffers<'call> for SendView<'call> {
    fn count(&self) -> usize {
        self.0.raw.len()
    }

    fn buffer(&self, index: usize) -> &'call [u8] {
        self.0.raw.get(index).map_or(&[], Self::bytes)
    }

    fn total(&self) -> u64 {
        self.0.capacity()
    }
}

/// The caller's `lpBuffers` / `dwBufferCount` as a [`BufferView`] for a layer to look at while
/// it hands the array itself down: nothing copied, nothing refused. An array the provider below
/// will refuse (NULL or misaligned with a count, more than [`MAX_BUFFERS`]) is seen as empty;
/// the provider below answers for it. Nothing is checked, or read, unless the view is used.
///
/// # Safety
/// A non-null, aligned `array` is readable for `count` `WSABUF`s, unchanged for `'call`, when
/// `count` is at most [`MAX_BUFFERS`].
#[inline(always)]
pub(crate) unsafe fn view_buffers<'call>(array: *const WSABUF, count: u32) -> BufferView<'call> {
    if count as usize > MAX_BUFFERS {
        return BufferView { raw: &[] };
    }
    // SAFETY: `slice` checks null and alignment (an empty count needs neither); `count`
    // entries readable per the caller.
    let raw: &'call [WSABUF] = unsafe { ffi::slice(array, count as usize) }.unwrap_or(&[]);
    BufferView { raw }
}

/// The bytes a send call passes, borrowed for the call: a runtime that keeps them (an
/// overlapped send, a send queue) copies them.
#[derive(Debug)]
pub struct SendData<'call> {
    slices: SmallVec<[&'call [u8]; INLINE_BUFFERS]>,
}

impl<'call> SendData<'call> {
    /// The caller's buffers, in order (zero-length ones included).
    pub fn slices(&self) -> &[&'call [u8]] {
        &self.slices
    }

    /// The total length.
    pub fn len(&self) -> u64 {
        self.slices.iter().map(|s| s.len() as u64).sum()
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, gathered.
    pub fn to_vec(&self) -> Vec<u8> {
        self.slices.concat()
    }

    /// Bytes of the test's own (simulators and tests of a runtime).
    pub fn from_slices(slices: Vec<&'call [u8]>) -> Self {
        Self {
            slices: SmallVec::from_vec(slices),
        }
    }

    /// The buffers as `WSABUF`s: what a layer passes to the provider below.
    pub(crate) fn to_wsabufs(&self) -> SmallVec<[WSABUF; INLINE_BUFFERS]> {
        self.slices
            .iter()
            .map(|s| WSABUF {
                len: s.len() as u32,
                buf: PSTR(s.as_ptr().cast_mut()),
            })
            .collect()
    }
}

/// The send buffers of a checked array.
///
/// # Safety
/// Every descriptor's bytes are readable and unchanged for `'call`.
pub(crate) unsafe fn send_data<'call>(array: &BufferArray) -> SendData<'call> {
    let slices = array
        .descriptors
        .iter()
        .map(|d| {
            if d.len == 0 {
                return &[][..];
            }
            // SAFETY: non-null, in the address space (checked by `decode_buffers`), readable
            // for 'call per the caller; bytes need no alignment.
            unsafe {
                std::slice::from_raw_parts(
                    std::ptr::with_exposed_provenance(d.address),
                    d.len as usize,
                )
            }
        })
        .collect();
    SendData { slices }
}

/// The caller's receive buffers, filled in order (scatter): bytes written by [`fill`] land in
/// the first buffer until it is full, then the next. Writes go through the copied descriptors
/// byte range by byte range (no `&mut` slice is made, so buffers the caller made overlap are
/// written, not aliased).
///
/// `'call` is the call for a blocking receive; the buffers of an overlapped one live inside
/// [`OverlappedRecv`].
///
/// [`fill`]: RecvBuffers::fill
#[derive(Debug)]
pub struct RecvBuffers<'call> {
    array: BufferArray,
    /// The buffer being filled and the bytes already in it.
    at: (usize, usize),
    filled: u64,
    _buffers: PhantomData<&'call mut [u8]>,
}

impl RecvBuffers<'_> {
    /// # Safety
    /// Every descriptor's bytes are writable, and written by nobody else, for the lifetime
    /// chosen.
    pub(crate) unsafe fn new(array: BufferArray) -> Self {
        Self {
            array,
            at: (0, 0),
            filled: 0,
            _buffers: PhantomData,
        }
    }

    /// The total length of the buffers.
    pub fn capacity(&self) -> u64 {
        self.array.capacity()
    }

    /// Bytes written so far.
    pub fn filled(&self) -> u64 {
        self.filled
    }

    /// Room left.
    pub fn remaining(&self) -> u64 {
        self.capacity() - self.filled
    }

    /// The buffers' lengths, in order.
    pub fn lens(&self) -> impl Iterator<Item = u32> + '_ {
        self.array.lens()
    }

    /// The buffers, as the caller described them.
    pub(crate) fn array(&self) -> &BufferArray {
        &self.array
    }

    /// Copies as much of `data` as fits after what is already there; returns how much.
    pub fn fill(&mut self, data: &[u8]) -> usize {
        let mut copied = 0;
        while copied < data.len() {
            let Some(descriptor) = self.array.descriptors.get(self.at.0) else {
                break;
            };
            let room = descriptor.len as usize - self.at.1;
            if room == 0 {
                self.at = (self.at.0 + 1, 0);
                continue;
            }
            let n = room.min(data.len() - copied);
            let target: *mut u8 =
                std::ptr::with_exposed_provenance_mut(descriptor.address + self.at.1);
            // SAFETY: `address + at.1 .. + n` lies within the descriptor's range (n <= room),
            // which is writable and ours for the buffers' lifetime (`new`'s contract); `data`
            // is the caller's own slice, never host memory of this call.
            unsafe { std::ptr::copy(data[copied..].as_ptr(), target, n) };
            copied += n;
            self.at.1 += n;
        }
        self.filled += copied as u64;
        copied
    }
}

// ---------------------------------------------------------------------------------------------
// Overlapped requests

/// A copy of the caller's `WSATHREADID` (R-WSP-17: the structure, not the pointer, is kept for
/// the later `WPUQueueApc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ThreadId {
    /// `ThreadHandle`.
    pub handle: usize,
    /// `Reserved`.
    pub reserved: usize,
}

impl ThreadId {
    /// The structure to pass to `WPUQueueApc`.
    pub fn to_raw(self) -> WSATHREADID {
        WSATHREADID {
            ThreadHandle: winprov_bindings::ws2spi::HANDLE(std::ptr::with_exposed_provenance_mut(
                self.handle,
            )),
            Reserved: self.reserved,
        }
    }
}

/// An overlapped request: the caller's `WSAOVERLAPPED` (its address, where the completion is
/// reported; the caller keeps it valid until then), its event as it was at the call, the
/// completion routine and a copy of the `WSATHREADID` to queue that routine to.
#[derive(Clone, Copy, Debug)]
pub struct Overlapped {
    address: usize,
    event: usize,
    routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    thread: Option<ThreadId>,
}

impl Overlapped {
    /// The `WSAOVERLAPPED`'s address: the operation's identity for
    /// `WSPGetOverlappedResult` and `WPUCompleteOverlappedRequest`.
    pub fn address(&self) -> usize {
        self.address
    }

    /// `hEvent` as it was when the call was made.
    pub fn event(&self) -> usize {
        self.event
    }

    /// The completion routine, if any (then completion is an APC to [`thread`](Self::thread)).
    pub fn routine(&self) -> LPWSAOVERLAPPED_COMPLETION_ROUTINE {
        self.routine
    }

    /// The copied `WSATHREADID` (always present with a routine).
    pub fn thread(&self) -> Option<ThreadId> {
        self.thread
    }
}

/// Decodes `lpOverlapped` / `lpCompletionRoutine` / `lpThreadId`: a NULL `lpOverlapped` is a
/// non-overlapped call (the routine is then ignored, as documented); a misaligned one is
/// `WSAEFAULT`; a non-null `lpThreadId` must be aligned and is copied; a routine without a
/// `lpThreadId` is `WSAEFAULT` (there would be no thread to queue it to).
///
/// # Safety
/// A non-null, aligned `overlapped` points to a readable `WSAOVERLAPPED`; a non-null, aligned
/// `thread` to a readable `WSATHREADID`.
pub(crate) unsafe fn decode_overlapped(
    overlapped: *const OVERLAPPED,
    routine: LPWSAOVERLAPPED_COMPLETION_ROUTINE,
    thread: *const WSATHREADID,
) -> Result<Option<Overlapped>, WsaError> {
    if overlapped.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract; checked for null and alignment first.
    let raw = unsafe { ffi::read(overlapped) }.map_err(fault)?;
    let thread = if thread.is_null() {
        None
    } else {
        // SAFETY: the caller's contract; checked for alignment first.
        let raw = unsafe { ffi::read(thread) }.map_err(fault)?;
        Some(ThreadId {
            handle: raw.ThreadHandle.0.expose_provenance(),
            reserved: raw.Reserved,
        })
    };
    if routine.is_some() && thread.is_none() {
        return Err(WsaError::WSAEFAULT);
    }
    Ok(Some(Overlapped {
        address: overlapped.expose_provenance(),
        event: raw.hEvent.0.expose_provenance(),
        routine,
        thread,
    }))
}

/// An overlapped receive: the caller's buffers (valid until the operation completes, per the
/// overlapped contract) with the request they belong to. Only [`finish`](Self::finish) gives
/// the [`Overlapped`] back, consuming the buffers: nothing can be written once the completion
/// is on its way.
#[derive(Debug)]
pub struct OverlappedRecv {
    buffers: RecvBuffers<'static>,
    overlapped: Overlapped,
}

impl OverlappedRecv {
    /// # Safety
    /// `buffers` stay writable, and written by nobody else, until `overlapped` is completed.
    pub(crate) unsafe fn new(buffers: RecvBuffers<'_>, overlapped: Overlapped) -> Self {
        let RecvBuffers {
            array, at, filled, ..
        } = buffers;
        Self {
            buffers: RecvBuffers {
                array,
                at,
                filled,
                _buffers: PhantomData,
            },
            overlapped,
        }
    }

    /// The request.
    pub fn overlapped(&self) -> &Overlapped {
        &self.overlapped
    }

    /// See [`RecvBuffers::fill`].
    pub fn fill(&mut self, data: &[u8]) -> usize {
        self.buffers.fill(data)
    }

    /// See [`RecvBuffers::capacity`].
    pub fn capacity(&self) -> u64 {
        self.buffers.capacity()
    }

    /// The buffers, as the caller described them.
    pub(crate) fn array(&self) -> &BufferArray {
        self.buffers.array()
    }

    /// See [`RecvBuffers::filled`].
    pub fn filled(&self) -> u64 {
        self.buffers.filled()
    }

    /// Ends the writing: the request to complete and the bytes written.
    pub fn finish(self) -> (Overlapped, u64) {
        (self.overlapped, self.buffers.filled)
    }
}

/// A single `WSABUF` the caller passes in (connect data, outbound disconnect data): NULL is
/// none; a misaligned structure, or a NULL buffer with a non-zero length, is `WSAEFAULT`.
///
/// # Safety
/// A non-null, aligned `ptr` is a readable `WSABUF` whose buffer is readable for its length,
/// unchanged for `'call`.
pub(crate) unsafe fn decode_wsabuf<'call>(
    ptr: *const WSABUF,
) -> Result<Option<&'call [u8]>, WsaError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract; checked for alignment first.
    let raw = unsafe { ffi::read(ptr) }.map_err(fault)?;
    if raw.len == 0 {
        return Ok(Some(&[]));
    }
    // SAFETY: the caller's contract: `len` bytes at `buf`; the pointer is checked for null.
    unsafe { ffi::slice(raw.buf.0.cast_const(), raw.len as usize) }
        .map(Some)
        .map_err(fault)
}

/// The capacity of a `WSABUF` the provider fills (callee data, inbound disconnect data): `None`
/// for NULL; a misaligned structure or a NULL buffer with a non-zero length is `WSAEFAULT`.
///
/// # Safety
/// A non-null, aligned `ptr` is a readable `WSABUF`.
pub(crate) unsafe fn wsabuf_capacity(ptr: *const WSABUF) -> Result<Option<u32>, WsaError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract; checked for alignment first.
    let raw = unsafe { ffi::read(ptr) }.map_err(fault)?;
    if raw.len > 0 && raw.buf.0.is_null() {
        return Err(WsaError::WSAEFAULT);
    }
    Ok(Some(raw.len))
}

/// Writes `data` into the `WSABUF` the provider fills and sets its `len`: more than its length
/// is `WSAEFAULT` (documented for a short inbound disconnect buffer), nothing written.
///
/// # Safety
/// `ptr` passed [`wsabuf_capacity`]; the structure is writable and its buffer writable for its
/// length.
pub(crate) unsafe fn write_wsabuf(ptr: *mut WSABUF, data: &[u8]) -> Result<(), WsaError> {
    // SAFETY: the caller's contract; checked for null and alignment first.
    let mut raw = unsafe { ffi::read(ptr.cast_const()) }.map_err(fault)?;
    if data.len() > raw.len as usize || (raw.buf.0.is_null() && !data.is_empty()) {
        return Err(WsaError::WSAEFAULT);
    }
    if !data.is_empty() {
        // SAFETY: `buf` is non-null and writable for `len >= data.len()` bytes per the caller.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), raw.buf.0, data.len()) };
    }
    raw.len = data.len() as u32;
    // SAFETY: as above.
    unsafe { ffi::write(ptr, raw) }.map_err(fault)
}

// ---------------------------------------------------------------------------------------------
// WSAPROTOCOL_INFOW

/// Decodes a `LPWSAPROTOCOL_INFOW` argument: NULL or misaligned is `WSAEFAULT`, then
/// [`ProtocolInfo::from_raw`].
///
/// # Safety
/// A non-null, aligned `ptr` points to a readable `WSAPROTOCOL_INFOW`.
pub(crate) unsafe fn decode_protocol_info(
    ptr: *const WSAPROTOCOL_INFOW,
) -> Result<ProtocolInfo, WsaError> {
    // SAFETY: the caller's contract; checked for null and alignment first.
    let raw = unsafe { ffi::read(ptr) }.map_err(fault)?;
    ProtocolInfo::from_raw(raw)
}

/// Like [`decode_protocol_info`], NULL being `None` (optional in `WSPSocket`, the address
/// conversions).
///
/// # Safety
/// As for [`decode_protocol_info`].
pub(crate) unsafe fn decode_protocol_info_opt(
    ptr: *const WSAPROTOCOL_INFOW,
) -> Result<Option<ProtocolInfo>, WsaError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded.
    unsafe { decode_protocol_info(ptr) }.map(Some)
}

// ---------------------------------------------------------------------------------------------
// WSPSelect

/// Decodes an optional `fd_set`: NULL is `None`; misaligned is `WSAEFAULT`; an `fd_count`
/// above [`FD_SETSIZE`] is `WSAEINVAL`.
///
/// # Safety
/// A non-null, aligned `ptr` points to a readable `fd_set`.
pub(crate) unsafe fn decode_fd_set(ptr: *const FD_SET) -> Result<Option<Vec<Socket>>, WsaError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract; checked for alignment first.
    let raw = unsafe { ffi::read(ptr) }.map_err(fault)?;
    let count = raw.fd_count as usize;
    if count > FD_SETSIZE {
        return Err(WsaError::WSAEINVAL);
    }
    Ok(Some(
        raw.fd_array[..count]
            .iter()
            .map(|s| Socket::from_socket(*s))
            .collect(),
    ))
}

/// Writes the ready subset back into an `fd_set` decoded by [`decode_fd_set`]: only the sockets
/// that were in it, in its order.
///
/// # Safety
/// `ptr` is NULL or was decoded by [`decode_fd_set`] and is writable.
pub(crate) unsafe fn write_fd_set(ptr: *mut FD_SET, asked: &[Socket], ready: &[Socket]) {
    if ptr.is_null() {
        return;
    }
    let mut raw = FD_SET::default();
    for socket in asked.iter().filter(|s| ready.contains(s)) {
        raw.fd_array[raw.fd_count as usize] = socket.to_socket();
        raw.fd_count += 1;
    }
    // SAFETY: the caller's contract; the pointer passed the checks of `decode_fd_set`.
    let _ = unsafe { ffi::write(ptr, raw) };
}

/// Decodes `WSPSelect`'s timeout: NULL is `None` (wait without end); negative fields are
/// `WSAEINVAL`; misaligned is `WSAEFAULT`.
///
/// # Safety
/// A non-null, aligned `ptr` points to a readable `TIMEVAL`.
pub(crate) unsafe fn decode_timeout(ptr: *const TIMEVAL) -> Result<Option<Duration>, WsaError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller's contract; checked for alignment first.
    let raw = unsafe { ffi::read(ptr) }.map_err(fault)?;
    let (Ok(seconds), Ok(micros)) = (u64::try_from(raw.tv_sec), u64::try_from(raw.tv_usec)) else {
        return Err(WsaError::WSAEINVAL);
    };
    Ok(Some(
        Duration::from_secs(seconds) + Duration::from_micros(micros),
    ))
}

#[cfg(test)]
#[path = "decode_props.rs"]
mod props;
