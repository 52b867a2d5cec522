//! Checked access to memory the host hands a provider: one of the two modules of this crate
//! with `unsafe` code (with [`lease`](crate::lease), whose segments and cells are raw).
//!
//! The checks here are those a provider can make: null, alignment, and (for strings) a
//! terminator within the length the interface states. Whether the memory is really readable is
//! the host's contract, which is why reading functions are `unsafe`: their caller states that the
//! interface guarantees it. Each failure is a [`PtrError`], which the interface crates map to
//! their documented code (`WSAEFAULT`, `E_POINTER`, `LINEERR_INVALPOINTER` …) instead of crashing.

use std::ptr::NonNull;

/// Why a pointer from the host cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PtrError {
    /// The pointer is null where a value is required.
    Null,
    /// The pointer is not aligned for its type.
    Misaligned {
        /// The address received.
        address: usize,
        /// The alignment the type needs.
        align: usize,
    },
    /// No terminating NUL within the length the interface allows.
    Unterminated {
        /// The number of units searched.
        searched: usize,
    },
    /// A stated length would overflow the address space.
    TooLong,
}

impl std::fmt::Display for PtrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Null => f.write_str("null pointer"),
            Self::Misaligned { address, align } => {
                write!(f, "pointer {address:#x} is not aligned to {align} bytes")
            }
            Self::Unterminated { searched } => {
                write!(f, "no terminating NUL within {searched} units")
            }
            Self::TooLong => f.write_str("stated length overflows the address space"),
        }
    }
}

impl std::error::Error for PtrError {}

/// Checks that `ptr` is non-null and aligned for `T`. Reads nothing.
pub fn check<T>(ptr: *const T) -> Result<NonNull<T>, PtrError> {
    let Some(nonnull) = NonNull::new(ptr.cast_mut()) else {
        return Err(PtrError::Null);
    };
    if !ptr.is_aligned() {
        return Err(PtrError::Misaligned {
            address: ptr.addr(),
            align: align_of::<T>(),
        });
    }
    Ok(nonnull)
}

/// Reads a `T` the host passed by pointer.
///
/// # Safety
/// If `ptr` is non-null and aligned, it points to a readable, initialised `T` (the interface's
/// contract).
pub unsafe fn read<T: Copy>(ptr: *const T) -> Result<T, PtrError> {
    let ptr = check(ptr)?;
    // SAFETY: non-null and aligned (checked); readable and initialised per the caller.
    Ok(unsafe { ptr.read() })
}

/// Writes a `T` through an out-pointer the host passed.
///
/// # Safety
/// If `ptr` is non-null and aligned, it points to memory writable as a `T`.
pub unsafe fn write<T>(ptr: *mut T, value: T) -> Result<(), PtrError> {
    let ptr = check(ptr)?;
    // SAFETY: non-null and aligned (checked); writable per the caller. `T` may not be `Copy`
    // but the destination holds no value of ours to drop.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Refuses a length whose byte size a slice cannot have (over `isize::MAX`).
fn check_len<T>(len: usize) -> Result<(), PtrError> {
    match len.checked_mul(size_of::<T>()) {
        Some(bytes) if bytes <= isize::MAX as usize => Ok(()),
        _ => Err(PtrError::TooLong),
    }
}

/// Borrows `len` elements the host passed. A zero length accepts a null pointer.
///
/// # Safety
/// If `ptr` is non-null and aligned, `len` initialised `T`s are readable there and not written
/// by anyone for `'a`.
pub unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> Result<&'a [T], PtrError> {
    if len == 0 {
        return Ok(&[]);
    }
    let ptr = check(ptr)?;
    check_len::<T>(len)?;
    // SAFETY: non-null, aligned, size within isize::MAX (checked); readable and unaliased for
    // 'a per the caller.
    Ok(unsafe { std::slice::from_raw_parts(ptr.as_ptr(), len) })
}

/// Borrows `len` writable elements the host passed (a caller's result buffer). A zero length
/// accepts a null pointer.
///
/// # Safety
/// If `ptr` is non-null and aligned, `len` `T`s are writable there, initialised, and not
/// accessed by anyone else for `'a`.
pub unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> Result<&'a mut [T], PtrError> {
    if len == 0 {
        return Ok(&mut []);
    }
    let ptr = check(ptr)?;
    check_len::<T>(len)?;
    // SAFETY: non-null, aligned, size within isize::MAX (checked); exclusively writable for 'a
    // per the caller.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) })
}

/// Borrows a NUL-terminated UTF-16 string (without its NUL), reading at most `max_units` units
/// looking for the terminator.
///
/// # Safety
/// If `ptr` is non-null and aligned, the units up to the first NUL, or the first `max_units`
/// units if there is none among them, are readable and unchanging for `'a`.
pub unsafe fn wide_str<'a>(ptr: *const u16, max_units: usize) -> Result<&'a [u16], PtrError> {
    let start = check(ptr)?;
    let mut len = 0;
    while len < max_units {
        // SAFETY: `len < max_units` and no NUL was found before `len`, so unit `len` is
        // readable per the caller.
        if unsafe { start.add(len).read() } == 0 {
            // SAFETY: the `len` units before the NUL are readable and unchanging for 'a.
            return Ok(unsafe { std::slice::from_raw_parts(start.as_ptr(), len) });
        }
        len += 1;
    }
    Err(PtrError::Unterminated {
        searched: max_units,
    })
}

/// Like [`wide_str`], but a null pointer is `Ok(None)` (an optional string argument).
///
/// # Safety
/// As for [`wide_str`].
pub unsafe fn wide_str_opt<'a>(
    ptr: *const u16,
    max_units: usize,
) -> Result<Option<&'a [u16]>, PtrError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: forwarded; the caller upholds wide_str's contract.
    unsafe { wide_str(ptr, max_units) }.map(Some)
}

/// Encodes `text` as NUL-terminated UTF-16, for strings a provider hands to the host.
pub fn to_wide_nul(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(std::iter::once(0)).collect()
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn null_and_misaligned_pointers_are_refused() {
        assert_eq!(check::<u32>(std::ptr::null()), Err(PtrError::Null));
        let words = [0u32; 2];
        let odd = words.as_ptr().cast::<u8>().wrapping_add(1).cast::<u32>();
        assert!(matches!(
            check(odd),
            Err(PtrError::Misaligned { align: 4, .. })
        ));
        // SAFETY: both pointers are refused before any read.
        unsafe {
            assert_eq!(
                read(odd),
                Err(PtrError::Misaligned {
                    address: odd.addr(),
                    align: 4
                })
            );
            assert_eq!(write(std::ptr::null_mut::<u64>(), 1), Err(PtrError::Null));
        }
    }

    #[test]
    fn reads_and_writes_go_through_valid_pointers() {
        let mut out = 0u32;
        // SAFETY: `out` is a live, aligned u32.
        unsafe {
            write(&mut out, 42).unwrap();
            assert_eq!(read(&out), Ok(42));
        }
    }

    #[test]
    fn strings_must_end_within_their_stated_length() {
        let text = to_wide_nul("alice@example.org");
        // SAFETY: `text` is readable for its whole length.
        unsafe {
            assert_eq!(wide_str(text.as_ptr(), text.len()).unwrap().len(), 17);
            assert_eq!(
                wide_str(text.as_ptr(), 5),
                Err(PtrError::Unterminated { searched: 5 })
            );
            assert_eq!(wide_str_opt(std::ptr::null(), 10), Ok(None));
            assert_eq!(wide_str(std::ptr::null(), 10), Err(PtrError::Null));
        }
    }

    #[test]
    fn slices_accept_empty_nulls_and_refuse_overflowing_lengths() {
        // SAFETY: zero-length and rejected cases read nothing; `data` is readable.
        unsafe {
            assert_eq!(slice::<u64>(std::ptr::null(), 0), Ok(&[][..]));
            assert_eq!(slice::<u64>(std::ptr::null(), 1), Err(PtrError::Null));
            let data = [1u64, 2, 3];
            assert_eq!(slice(data.as_ptr(), 3), Ok(&data[..]));
            assert_eq!(slice(data.as_ptr(), usize::MAX / 4), Err(PtrError::TooLong));
            let mut buf = [0u8; 4];
            slice_mut(buf.as_mut_ptr(), 4).unwrap()[1] = 9;
            assert_eq!(buf, [0, 9, 0, 0]);
        }
    }
}
