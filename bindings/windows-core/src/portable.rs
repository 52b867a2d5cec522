//! Stand-ins for windows-core's Windows-only items, for hosts other than Windows.
//!
//! The raw string pointers are `#[repr(transparent)]` wrappers, as on Windows. `BSTR` keeps the
//! Windows layout (a 32-bit byte length before the first UTF-16 unit, a terminating NUL after the
//! last) but is allocated by the Rust allocator instead of `SysAllocString`; a `BSTR` made here
//! is only ever freed here.

use std::alloc::{Layout, alloc, dealloc};
use windows_core::{CloneType, CopyType, Param, ParamValue, TypeKind};

macro_rules! raw_string {
    ($(#[$doc:meta])* $name:ident, $ptr:ty, $unit:ty) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub struct $name(pub $ptr);

        impl $name {
            /// Wraps a raw pointer.
            pub const fn from_raw(ptr: $ptr) -> Self {
                Self(ptr)
            }
            /// A null pointer.
            pub const fn null() -> Self {
                Self(std::ptr::null_mut())
            }
            /// The raw pointer.
            pub const fn as_ptr(&self) -> $ptr {
                self.0
            }
            /// Whether the pointer is null.
            pub fn is_null(&self) -> bool {
                self.0.is_null()
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::null()
            }
        }

        impl TypeKind for $name {
            type TypeKind = CopyType;
        }
    };
}

raw_string!(
    /// A pointer to a constant NUL-terminated UTF-16 string.
    PCWSTR, *const u16, u16
);
raw_string!(
    /// A pointer to a NUL-terminated UTF-16 string.
    PWSTR, *mut u16, u16
);
raw_string!(
    /// A pointer to a constant NUL-terminated 8-bit string.
    PCSTR, *const u8, u8
);
raw_string!(
    /// A pointer to a NUL-terminated 8-bit string.
    PSTR, *mut u8, u8
);

impl Param<PCWSTR> for PWSTR {
    unsafe fn param(self) -> ParamValue<PCWSTR> {
        ParamValue::Owned(PCWSTR(self.0))
    }
}

impl Param<PCSTR> for PSTR {
    unsafe fn param(self) -> ParamValue<PCSTR> {
        ParamValue::Owned(PCSTR(self.0))
    }
}

impl Param<PCWSTR> for &BSTR {
    unsafe fn param(self) -> ParamValue<PCWSTR> {
        ParamValue::Owned(PCWSTR(self.as_ptr()))
    }
}

/// Custom code to free a handle (windows-core's `Free`, which the generated handle types
/// implement).
pub trait Free {
    /// Calls the handle's free function.
    ///
    /// # Safety
    /// The handle must be owned by the caller and safe to free.
    unsafe fn free(&mut self);
}

/// An owned, length-prefixed UTF-16 string with the memory layout of a Windows `BSTR`.
#[repr(transparent)]
pub struct BSTR(*const u16);

// SAFETY: a BSTR owns its allocation exclusively and is immutable, like windows-strings' BSTR,
// which is Send + Sync too.
unsafe impl Send for BSTR {}
// SAFETY: as above; shared references only read.
unsafe impl Sync for BSTR {}

const PREFIX: usize = std::mem::size_of::<u32>();

impl BSTR {
    /// The empty (null) string.
    pub const fn new() -> Self {
        Self(std::ptr::null())
    }

    /// Copies UTF-16 units into a new string.
    ///
    /// # Panics
    /// When `value` is longer than a `BSTR` can describe (2^31 units).
    pub fn from_wide(value: &[u16]) -> Self {
        if value.is_empty() {
            return Self::new();
        }
        let bytes = u32::try_from(value.len() * 2).expect("BSTR longer than 4 GiB");
        let layout = Self::layout(value.len());
        // SAFETY: the layout has a non-zero size (prefix + at least one unit + NUL).
        let base = unsafe { alloc(layout) };
        if base.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: `base` is a fresh allocation of `layout.size()` bytes, aligned for u32: the
        // prefix, `value.len()` units and the NUL all lie within it and do not overlap `value`.
        unsafe {
            base.cast::<u32>().write(bytes);
            let text = base.add(PREFIX).cast::<u16>();
            std::ptr::copy_nonoverlapping(value.as_ptr(), text, value.len());
            text.add(value.len()).write(0);
            Self(text)
        }
    }

    fn layout(units: usize) -> Layout {
        Layout::from_size_align(PREFIX + (units + 1) * 2, PREFIX).expect("BSTR layout")
    }

    /// The number of UTF-16 units, without the terminating NUL.
    pub fn len(&self) -> usize {
        if self.0.is_null() {
            return 0;
        }
        // SAFETY: a non-null BSTR made by `from_wide` has its byte length in the u32 before it.
        let bytes = unsafe { self.0.cast::<u8>().sub(PREFIX).cast::<u32>().read() };
        bytes as usize / 2
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The UTF-16 units, without the terminating NUL.
    pub fn as_wide(&self) -> &[u16] {
        if self.0.is_null() {
            return &[];
        }
        // SAFETY: `len()` units follow the prefix and live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.0, self.len()) }
    }

    /// The pointer to the first unit (null for the empty string).
    pub fn as_ptr(&self) -> *const u16 {
        self.0
    }

    /// Takes ownership of a pointer previously returned by [`BSTR::into_raw`].
    ///
    /// # Safety
    /// `raw` is null or came from `into_raw` of a `BSTR` of this crate, and is not used again.
    pub unsafe fn from_raw(raw: *const u16) -> Self {
        Self(raw)
    }

    /// Gives up ownership; see [`BSTR::from_raw`].
    pub fn into_raw(self) -> *const u16 {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }
}

impl Drop for BSTR {
    fn drop(&mut self) {
        if self.0.is_null() {
            return;
        }
        let layout = Self::layout(self.len());
        // SAFETY: the allocation starts `PREFIX` bytes before the text and was made with the
        // layout recomputed here from the stored length.
        unsafe { dealloc(self.0.cast::<u8>().cast_mut().sub(PREFIX), layout) };
    }
}

/// The UTF-16 units, as windows-strings' `BSTR` derefs on Windows.
impl std::ops::Deref for BSTR {
    type Target = [u16];

    fn deref(&self) -> &[u16] {
        self.as_wide()
    }
}

impl Clone for BSTR {
    fn clone(&self) -> Self {
        Self::from_wide(self.as_wide())
    }
}

impl Default for BSTR {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for BSTR {
    fn eq(&self, other: &Self) -> bool {
        self.as_wide() == other.as_wide()
    }
}

impl Eq for BSTR {}

impl From<&str> for BSTR {
    fn from(value: &str) -> Self {
        Self::from_wide(&value.encode_utf16().collect::<Vec<_>>())
    }
}

impl std::fmt::Display for BSTR {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf16_lossy(self.as_wide()))
    }
}

impl std::fmt::Debug for BSTR {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf16_lossy(self.as_wide()))
    }
}

impl TypeKind for BSTR {
    type TypeKind = CloneType;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bstr_keeps_the_windows_layout() {
        let text = BSTR::from("root\\cimv2");
        assert_eq!(text.len(), 10);
        assert_eq!(text.to_string(), "root\\cimv2");
        let wide = text.as_wide();
        // SAFETY: a BSTR is NUL-terminated one unit past its length and prefixed by its size.
        let (nul, prefix) = unsafe {
            (
                text.as_ptr().add(wide.len()).read(),
                text.as_ptr().cast::<u32>().sub(1).read(),
            )
        };
        assert_eq!(nul, 0);
        assert_eq!(prefix, 20);
        assert_eq!(text.clone(), text);
        assert!(BSTR::new().is_empty() && BSTR::new().as_ptr().is_null());
        let raw = text.into_raw();
        // SAFETY: `raw` came from `into_raw` just above.
        let back = unsafe { BSTR::from_raw(raw) };
        assert_eq!(back.to_string(), "root\\cimv2");
    }
}
