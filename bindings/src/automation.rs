//! OLE Automation memory on every host: the `SAFEARRAY` and `VARIANT` functions a WMI provider
//! allocates and frees with.
//!
//! WMI frees what a provider hands it (a `VARIANT` put into a class object is copied, the one
//! the provider gets back is its to clear) with oleaut32, so on Windows these are oleaut32's own
//! functions, re-exported from the generated [`wbem`](crate::wbem) module. On other hosts, where
//! the provider logic and the host simulators run, they are stand-ins with the same signatures
//! and the same `SAFEARRAY` layout, allocating with the Rust allocator — as for the portable
//! `BSTR` of `windows_core` there, what one side allocates is only freed by the same side.
//!
//! The stand-ins cover what the WMI layer uses: one-dimensional arrays made by
//! `SafeArrayCreateVector` (of strings, integers, booleans, interfaces or `VARIANT`s), their
//! data (`SafeArrayAccessData` / `SafeArrayUnaccessData`), `SafeArrayDestroy` (which frees the
//! elements as oleaut32 does: strings, interfaces, nested `VARIANT`s) and `VariantClear`.

#[cfg(windows)]
pub use crate::wbem::{
    SafeArrayAccessData, SafeArrayCreateVector, SafeArrayDestroy, SafeArrayUnaccessData,
    VariantClear,
};

#[cfg(not(windows))]
pub use portable::*;

#[cfg(not(windows))]
#[allow(non_snake_case)]
mod portable {
    use crate::wbem::{
        ADVANCED_FEATURE_FLAGS, DISP_E_ARRAYISLOCKED, FADF_BSTR, FADF_DISPATCH, FADF_HAVEVARTYPE,
        FADF_UNKNOWN, FADF_VARIANT, SAFEARRAY, SAFEARRAYBOUND, VARENUM, VARIANT, VT_ARRAY, VT_BOOL,
        VT_BSTR, VT_BYREF, VT_DISPATCH, VT_I1, VT_I2, VT_I4, VT_I8, VT_INT, VT_R4, VT_R8, VT_UI1,
        VT_UI2, VT_UI4, VT_UI8, VT_UINT, VT_UNKNOWN, VT_VARIANT,
    };
    use core::ffi::c_void;
    use std::alloc::{Layout, alloc_zeroed, dealloc};
    use std::mem::ManuallyDrop;
    use windows_core::{BSTR, Error, HRESULT, IUnknown, Result};

    const E_INVALIDARG: HRESULT = HRESULT(0x8007_0057_u32 as i32);
    const E_UNEXPECTED: HRESULT = HRESULT(0x8000_FFFF_u32 as i32);

    /// The size of one element of type `vt`, and the feature flag that says how to free it.
    fn element(vt: VARENUM) -> Option<(usize, ADVANCED_FEATURE_FLAGS)> {
        let none = ADVANCED_FEATURE_FLAGS(0);
        Some(match vt {
            VT_BSTR => (size_of::<*const u16>(), FADF_BSTR),
            VT_UNKNOWN => (size_of::<*mut c_void>(), FADF_UNKNOWN),
            VT_DISPATCH => (size_of::<*mut c_void>(), FADF_DISPATCH),
            VT_VARIANT => (size_of::<VARIANT>(), FADF_VARIANT),
            VT_I1 | VT_UI1 => (1, none),
            VT_I2 | VT_UI2 | VT_BOOL => (2, none),
            VT_I4 | VT_UI4 | VT_INT | VT_UINT | VT_R4 => (4, none),
            VT_I8 | VT_UI8 | VT_R8 => (8, none),
            _ => return None,
        })
    }

    fn data_layout(size: usize, count: usize) -> Option<Layout> {
        Layout::from_size_align(size.checked_mul(count)?, 8).ok()
    }

    /// `SafeArrayCreateVector`: a zeroed one-dimensional array of `celements` elements of type
    /// `vt`; null for an element type the stand-in does not know or an impossible size.
    ///
    /// # Safety
    /// None beyond oleaut32's: the array is freed with [`SafeArrayDestroy`] of this module.
    pub unsafe fn SafeArrayCreateVector(
        vt: VARENUM,
        llbound: i32,
        celements: u32,
    ) -> *mut SAFEARRAY {
        let Some((size, kind)) = element(vt) else {
            return std::ptr::null_mut();
        };
        let Some(layout) = data_layout(size, celements as usize) else {
            return std::ptr::null_mut();
        };
        let data = if layout.size() == 0 {
            std::ptr::null_mut()
        } else {
            // SAFETY: a non-zero size.
            let data = unsafe { alloc_zeroed(layout) };
            if data.is_null() {
                return std::ptr::null_mut();
            }
            data.cast::<c_void>()
        };
        Box::into_raw(Box::new(SAFEARRAY {
            cDims: 1,
            fFeatures: ADVANCED_FEATURE_FLAGS(FADF_HAVEVARTYPE.0 | kind.0),
            cbElements: size as u32,
            cLocks: 0,
            pvData: data,
            rgsabound: [SAFEARRAYBOUND {
                cElements: celements,
                lLbound: llbound,
            }],
        }))
    }

    /// `SafeArrayAccessData`: locks the array and writes the address of its first element.
    ///
    /// # Safety
    /// `psa` is null or an array of [`SafeArrayCreateVector`] not yet destroyed; `ppvdata` is
    /// writable.
    pub unsafe fn SafeArrayAccessData(
        psa: *const SAFEARRAY,
        ppvdata: *mut *mut c_void,
    ) -> Result<()> {
        if psa.is_null() || ppvdata.is_null() {
            return Err(Error::from_hresult(E_INVALIDARG));
        }
        let array = psa.cast_mut();
        // SAFETY: a live array of this module (the caller's contract); `ppvdata` is writable.
        unsafe {
            (*array).cLocks += 1;
            ppvdata.write((*array).pvData);
        }
        Ok(())
    }

    /// `SafeArrayUnaccessData`: releases a lock taken by [`SafeArrayAccessData`].
    ///
    /// # Safety
    /// As for [`SafeArrayAccessData`].
    pub unsafe fn SafeArrayUnaccessData(psa: *const SAFEARRAY) -> Result<()> {
        if psa.is_null() {
            return Err(Error::from_hresult(E_INVALIDARG));
        }
        let array = psa.cast_mut();
        // SAFETY: a live array of this module (the caller's contract).
        unsafe {
            if (*array).cLocks == 0 {
                return Err(Error::from_hresult(E_UNEXPECTED));
            }
            (*array).cLocks -= 1;
        }
        Ok(())
    }

    /// `SafeArrayDestroy`: frees the elements (strings, interfaces, `VARIANT`s) and the array.
    /// A null array is accepted; a locked one is refused (`DISP_E_ARRAYISLOCKED`).
    ///
    /// # Safety
    /// `psa` is null or an array of [`SafeArrayCreateVector`] not yet destroyed, whose elements
    /// are null or owned values of its type.
    pub unsafe fn SafeArrayDestroy(psa: *const SAFEARRAY) -> Result<()> {
        if psa.is_null() {
            return Ok(());
        }
        // SAFETY: a live array of this module (the caller's contract), made by `Box::new`.
        let array = unsafe { Box::from_raw(psa.cast_mut()) };
        if array.cLocks != 0 {
            let _ = Box::into_raw(array);
            return Err(Error::from_hresult(DISP_E_ARRAYISLOCKED));
        }
        let count = array.rgsabound[0].cElements as usize;
        let size = array.cbElements as usize;
        let features = array.fFeatures;
        let data = array.pvData.cast::<u8>();
        if !data.is_null() {
            for index in 0..count {
                // SAFETY: `index < count` elements of `size` bytes were allocated.
                let at = unsafe { data.add(index * size) };
                // SAFETY: each element is null or an owned value of the array's type (the
                // caller's contract); it is freed once and not read again.
                unsafe {
                    if features.contains(FADF_BSTR) {
                        drop(BSTR::from_raw(at.cast::<*const u16>().read()));
                    } else if features.contains(FADF_UNKNOWN) || features.contains(FADF_DISPATCH) {
                        drop(at.cast::<Option<IUnknown>>().read());
                    } else if features.contains(FADF_VARIANT) {
                        let _ = VariantClear(at.cast::<VARIANT>());
                    }
                }
            }
            let layout = data_layout(size, count).expect("the layout it was made with");
            // SAFETY: allocated in `SafeArrayCreateVector` with this layout (non-zero size,
            // since the pointer is not null).
            unsafe { dealloc(data, layout) };
        }
        Ok(())
    }

    /// `VariantClear`: frees what the `VARIANT` owns (a string, an interface, an array) and
    /// leaves it `VT_EMPTY`. A by-reference `VARIANT` owns nothing.
    ///
    /// # Safety
    /// `pvarg` is null or a valid `VARIANT` whose owned payload was made on this host (its
    /// `BSTR` by the portable `BSTR`, its array by [`SafeArrayCreateVector`]).
    pub unsafe fn VariantClear(pvarg: *mut VARIANT) -> Result<()> {
        if pvarg.is_null() {
            return Err(Error::from_hresult(E_INVALIDARG));
        }
        // SAFETY: a valid VARIANT (the caller's contract); the union member read is the one its
        // `vt` names, taken out once before the VARIANT is reset.
        unsafe {
            let inner = &mut (*pvarg).Anonymous.Anonymous;
            let vt = inner.vt;
            if vt.0 & VT_BYREF.0 == 0 {
                if vt.0 & VT_ARRAY.0 != 0 {
                    SafeArrayDestroy(inner.Anonymous.parray)?;
                } else if vt == VT_BSTR {
                    drop(ManuallyDrop::take(&mut inner.Anonymous.bstrVal));
                } else if vt == VT_UNKNOWN {
                    drop(ManuallyDrop::take(&mut inner.Anonymous.punkVal));
                } else if vt == VT_DISPATCH {
                    drop(ManuallyDrop::take(&mut inner.Anonymous.pdispVal));
                }
            }
            pvarg.write(VARIANT::default());
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn a_string_array_frees_its_strings_and_a_variant_its_array() {
            // SAFETY: the array is made, filled, read and destroyed here, by this module.
            unsafe {
                let array = SafeArrayCreateVector(VT_BSTR, 0, 2);
                assert!(!array.is_null());
                let mut data = std::ptr::null_mut();
                SafeArrayAccessData(array, &mut data).unwrap();
                let strings = data.cast::<*const u16>();
                strings.write(BSTR::from("a").into_raw());
                strings.add(1).write(BSTR::from("bc").into_raw());
                assert!(SafeArrayDestroy(array).is_err(), "locked");
                SafeArrayUnaccessData(array).unwrap();
                let mut variant = VARIANT::default();
                let inner = &mut *variant.Anonymous.Anonymous;
                inner.vt = VARENUM(VT_ARRAY.0 | VT_BSTR.0);
                inner.Anonymous.parray = array;
                VariantClear(&mut variant).unwrap();
                assert_eq!(variant.Anonymous.Anonymous.vt, VARENUM(0));
                assert!(SafeArrayCreateVector(VARENUM(0x48), 0, 1).is_null());
            }
        }
    }
}
