//! [`Value`]s to and from `VARIANT`s, [`Instance`]s to and from `IWbemClassObject`s, with the
//! CIM conventions WMI uses: `boolean` is `VT_BOOL`, `sint32` and `uint32` are `VT_I4` (the
//! bits of the `uint32`), `sint64` and `uint64` are `VT_BSTR` decimal strings, `string` is
//! `VT_BSTR`, `string[]` is a `SAFEARRAY` of `BSTR`s, `NULL` is `VT_NULL`.
//!
//! Strings and arrays are allocated with [`winprov_bindings::automation`] (oleaut32 on Windows,
//! whose memory WMI frees) and every `VARIANT` of this layer is cleared by its owner
//! ([`Variant`]'s drop). What WMI hands in is read, never taken over: a `VARIANT` that does not
//! fit its property's CIM type is `WBEM_E_TYPE_MISMATCH`, a string that is not UTF-16
//! `WBEM_E_INVALID_PARAMETER`.

use super::Shared;
use crate::value::{Instance, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::sync::{Arc, Mutex, PoisonError};
use windows_core::{BSTR, Interface, PCWSTR};
use winprov_bindings::automation::{
    SafeArrayAccessData, SafeArrayCreateVector, SafeArrayDestroy, SafeArrayUnaccessData,
    VariantClear,
};
use winprov_bindings::wbem::{
    CIM_BOOLEAN, CIM_DATETIME, CIM_FLAG_ARRAY, CIM_REFERENCE, CIM_SINT32, CIM_SINT64, CIM_STRING,
    CIM_UINT32, CIM_UINT64, IWbemClassObject, IWbemContext, IWbemServices, SAFEARRAY, VARENUM,
    VARIANT, VARIANT_FALSE, VARIANT_TRUE, VT_ARRAY, VT_BOOL, VT_BSTR, VT_EMPTY, VT_I4, VT_I8,
    VT_NULL, VT_UI4, VT_UI8, WBEM_FLAG_NONSYSTEM_ONLY, WBEM_GENERIC_FLAG_TYPE, WBEM_S_NO_MORE_DATA,
};
use winprov_core::HResult;

/// Most elements read from one array, and most properties read from one object: beyond, the
/// host's object is refused as malformed.
const MAX_ELEMENTS: usize = 1 << 20;

/// A `VARIANT` this layer owns: cleared (its string or array freed) when dropped.
#[derive(Default)]
pub(crate) struct Variant(VARIANT);

impl Drop for Variant {
    fn drop(&mut self) {
        // SAFETY: the VARIANT is valid and owned; what it holds was allocated by the
        // automation functions (or the host's, which allocate the same way).
        if let Err(error) = unsafe { VariantClear(&mut self.0) } {
            tracing::error!(%error, "VariantClear failed");
        }
    }
}

impl Variant {
    fn with(vt: VARENUM, fill: impl FnOnce(&mut winprov_bindings::wbem::VARIANT_0_0_0)) -> Self {
        let mut variant = Self::default();
        // SAFETY: a zeroed VARIANT's first union member is the tagged form, written whole.
        let inner = unsafe { &mut *variant.0.Anonymous.Anonymous };
        inner.vt = vt;
        fill(&mut inner.Anonymous);
        variant
    }

    fn string(text: &str) -> Self {
        Self::with(VT_BSTR, |payload| {
            payload.bstrVal = ManuallyDrop::new(bstr(text));
        })
    }

    /// The `VARIANT` of `value`, by WMI's CIM conventions.
    pub(crate) fn from_value(value: &Value) -> Result<Self, HResult> {
        Ok(match value {
            Value::Null => Self::with(VT_NULL, |_| ()),
            Value::Bool(b) => Self::with(VT_BOOL, |payload| {
                payload.boolVal = if *b { VARIANT_TRUE } else { VARIANT_FALSE };
            }),
            Value::I32(v) => Self::with(VT_I4, |payload| payload.lVal = *v),
            Value::U32(v) => Self::with(VT_I4, |payload| payload.lVal = *v as i32),
            Value::I64(v) => Self::string(&v.to_string()),
            Value::U64(v) => Self::string(&v.to_string()),
            Value::Str(text) => Self::string(text),
            Value::StrArray(items) => {
                let array = string_array(items)?;
                Self::with(VARENUM(VT_ARRAY.0 | VT_BSTR.0), |payload| {
                    payload.parray = array
                })
            }
        })
    }

    /// The raw `VARIANT`, for a call that reads it.
    pub(crate) fn as_ptr(&self) -> *const VARIANT {
        &self.0
    }

    /// The raw `VARIANT`, for a call that fills it (it must be empty: what it held would leak).
    pub(crate) fn as_mut_ptr(&mut self) -> *mut VARIANT {
        &mut self.0
    }

    fn vt(&self) -> VARENUM {
        // SAFETY: every VARIANT starts with its type tag.
        unsafe { self.0.Anonymous.Anonymous.vt }
    }

    /// The value this `VARIANT` holds for a property of CIM type `cimtype` (0: infer it from
    /// the `VARIANT`'s own type).
    pub(crate) fn to_value(&self, cimtype: i32) -> Result<Value, HResult> {
        let vt = self.vt();
        if vt == VT_NULL || vt == VT_EMPTY {
            return Ok(Value::Null);
        }
        // SAFETY: the tagged form, and below only the member `vt` names is read.
        let payload = unsafe { &self.0.Anonymous.Anonymous.Anonymous };
        let mismatch = Err(HResult::WBEM_E_TYPE_MISMATCH);
        let cim = |types: &[i32]| cimtype == 0 || types.contains(&cimtype);
        // SAFETY: (every arm) the union member read is the one `vt` names.
        unsafe {
            match vt {
                VT_BOOL if cim(&[CIM_BOOLEAN.0]) => Ok(Value::Bool(payload.boolVal.0 != 0)),
                VT_I4 if cimtype == CIM_UINT32.0 => Ok(Value::U32(payload.lVal as u32)),
                VT_I4 if cim(&[CIM_SINT32.0]) => Ok(Value::I32(payload.lVal)),
                VT_UI4 if cim(&[CIM_UINT32.0]) => Ok(Value::U32(payload.ulVal)),
                VT_I8 if cim(&[CIM_SINT64.0]) => Ok(Value::I64(payload.llVal)),
                VT_UI8 if cim(&[CIM_UINT64.0]) => Ok(Value::U64(payload.ullVal)),
                VT_BSTR => {
                    let text = bstr_string(&payload.bstrVal)?;
                    match cimtype {
                        t if t == CIM_SINT64.0 => text.parse().map(Value::I64).or(mismatch),
                        t if t == CIM_UINT64.0 => text.parse().map(Value::U64).or(mismatch),
                        0 => Ok(Value::Str(text)),
                        t if [CIM_STRING.0, CIM_REFERENCE.0, CIM_DATETIME.0].contains(&t) => {
                            Ok(Value::Str(text))
                        }
                        _ => mismatch,
                    }
                }
                v if v.0 == VT_ARRAY.0 | VT_BSTR.0 && cim(&[CIM_STRING.0 | CIM_FLAG_ARRAY.0]) => {
                    read_string_array(payload.parray).map(Value::StrArray)
                }
                _ => mismatch,
            }
        }
    }
}

/// A host `BSTR`, read (not taken over) as a string.
fn bstr_string(text: &BSTR) -> Result<String, HResult> {
    String::from_utf16(text).map_err(|_| HResult::WBEM_E_INVALID_PARAMETER)
}

/// A new `SAFEARRAY` of `BSTR`s holding `items` (the `VARIANT` that takes it frees it).
pub(crate) fn string_array(items: &[String]) -> Result<*mut SAFEARRAY, HResult> {
    let count = u32::try_from(items.len()).map_err(|_| HResult::WBEM_E_OUT_OF_MEMORY)?;
    // SAFETY: a plain allocation; checked for null below.
    let array = unsafe { SafeArrayCreateVector(VT_BSTR, 0, count) };
    if array.is_null() {
        return Err(HResult::WBEM_E_OUT_OF_MEMORY);
    }
    let mut data = std::ptr::null_mut();
    // SAFETY: the array was just made; `data` is writable.
    if unsafe { SafeArrayAccessData(array, &mut data) }.is_err() {
        // SAFETY: made above, empty, unlocked.
        let _ = unsafe { SafeArrayDestroy(array) };
        return Err(HResult::WBEM_E_OUT_OF_MEMORY);
    }
    let slots = data.cast::<*const u16>();
    for (index, item) in items.iter().enumerate() {
        // SAFETY: `count` pointer-sized elements, zeroed; each is written once with a string
        // the array then owns (SafeArrayDestroy frees it).
        unsafe { slots.add(index).write(bstr(item).into_raw()) };
    }
    // SAFETY: locked once above.
    let _ = unsafe { SafeArrayUnaccessData(array) };
    Ok(array)
}

/// The strings of a host's one-dimensional `SAFEARRAY` of `BSTR`s (read, not taken over).
pub(crate) fn read_string_array(array: *mut SAFEARRAY) -> Result<Vec<String>, HResult> {
    if array.is_null() {
        return Err(HResult::WBEM_E_INVALID_PARAMETER);
    }
    // SAFETY: a non-null array the host's VARIANT holds, valid while the VARIANT lives (the
    // caller's borrow); its header is read first.
    let header = unsafe { &*array };
    let count = header.rgsabound[0].cElements as usize;
    if header.cDims != 1
        || header.cbElements as usize != size_of::<*const u16>()
        || count > MAX_ELEMENTS
    {
        return Err(HResult::WBEM_E_INVALID_PARAMETER);
    }
    let mut data = std::ptr::null_mut();
    // SAFETY: as above; `data` is writable.
    unsafe { SafeArrayAccessData(array, &mut data) }
        .map_err(|_| HResult::WBEM_E_INVALID_PARAMETER)?;
    let strings = (0..count)
        .map(|index| {
            // SAFETY: `count` BSTR pointers (null or valid strings) at `data`; each is borrowed,
            // never freed here.
            let text = unsafe {
                ManuallyDrop::new(BSTR::from_raw(data.cast::<*const u16>().add(index).read()))
            };
            bstr_string(&text)
        })
        .collect();
    // SAFETY: locked once above.
    let _ = unsafe { SafeArrayUnaccessData(array) };
    strings
}

/// The class part of an object path: `Class` of `\\server\root\ns:Class.Key="v"` or `Class=@`.
pub(crate) fn object_class(path: &str) -> &str {
    let end = path.find(['.', '=']).unwrap_or(path.len());
    let start = path[..end].rfind(':').map_or(0, |colon| colon + 1);
    &path[start..end]
}

/// `text` as a NUL-terminated UTF-16 string, in one allocation (UTF-16 has at most as many
/// units as UTF-8 has bytes).
fn wide(text: &str) -> Vec<u16> {
    let mut units = Vec::with_capacity(text.len() + 1);
    units.extend(text.encode_utf16());
    units.push(0);
    units
}

/// Longest string (NUL included) [`with_utf16`] encodes on the stack.
const STACK_UNITS: usize = 128;

/// Runs `f` with `text` as NUL-terminated UTF-16 (the slice ends with the NUL): encoded on the
/// stack when it is short (property names and most values are), so that a `Put` or a `BSTR`
/// needs no vector of its own; in one exact allocation otherwise.
fn with_utf16<R>(text: &str, f: impl FnOnce(&[u16]) -> R) -> R {
    // UTF-16 has at most as many units as UTF-8 has bytes: `end` ≤ `text.len()`.
    if text.len() < STACK_UNITS {
        let mut units = [0u16; STACK_UNITS];
        let mut end = 0;
        for unit in text.encode_utf16() {
            units[end] = unit;
            end += 1;
        }
        // `units[end]`, below `STACK_UNITS`, is still 0: the NUL.
        return f(&units[..=end]);
    }
    f(&wide(text))
}

/// Runs `f` with `text` as a NUL-terminated `PCWSTR` (a property name for `Put`).
fn with_wide<R>(text: &str, f: impl FnOnce(PCWSTR) -> R) -> R {
    with_utf16(text, |units| f(PCWSTR(units.as_ptr())))
}

/// A new `BSTR` holding `text`: its UTF-16 encoded on the stack when short, then copied into
/// the string, one allocation in all (`BSTR::from(&str)` first collects it into a vector that
/// grows as it goes).
pub(crate) fn bstr(text: &str) -> BSTR {
    with_utf16(text, |units| BSTR::from_wide(&units[..units.len() - 1]))
}

fn code(error: windows_core::Error) -> HResult {
    HResult::from_raw(error.code().0)
}

/// The namespace `Initialize` was given: where class definitions come from.
#[derive(Clone)]
pub(crate) struct Namespace(Arc<Shared<IWbemServices>>);

impl Namespace {
    pub(crate) fn new(services: IWbemServices) -> Self {
        Self(Arc::new(Shared(services)))
    }

    /// `GetObject(path)` with `context`: the class definition or instance `path` names.
    pub(crate) fn get_object(
        &self,
        path: &str,
        context: Option<&IWbemContext>,
    ) -> Result<IWbemClassObject, HResult> {
        let mut object = None;
        // SAFETY: a live namespace; the out-pointer is a local written once by the callee.
        unsafe {
            self.0.0.GetObject(
                &BSTR::from(path),
                WBEM_GENERIC_FLAG_TYPE(0),
                context,
                Some(&mut object),
                None,
            )
        }
        .map_err(code)?;
        object.ok_or(HResult::WBEM_E_NOT_FOUND)
    }
}

/// Makes `IWbemClassObject`s of [`Instance`]s for one call (or one event sink): class
/// definitions come from the namespace, with the call's context, once per class.
pub(crate) struct Converter {
    namespace: Namespace,
    context: Option<Arc<Shared<IWbemContext>>>,
    /// The class and method of an `ExecMethodAsync`: its `__PARAMETERS` objects are instances
    /// of the method's out-parameters signature.
    method: Option<(String, String)>,
    classes: Mutex<HashMap<String, Arc<Shared<IWbemClassObject>>>>,
}

impl Converter {
    pub(crate) fn new(
        namespace: Namespace,
        context: Option<Arc<Shared<IWbemContext>>>,
        method: Option<(String, String)>,
    ) -> Self {
        Self {
            namespace,
            context,
            method,
            classes: Mutex::default(),
        }
    }

    fn definition(&self, class: &str) -> Result<Arc<Shared<IWbemClassObject>>, HResult> {
        let key = match (&self.method, class) {
            (Some((owner, method)), "__PARAMETERS") => Cow::Owned(format!("{owner}.{method}()")),
            _ => Cow::Borrowed(class),
        };
        if let Some(found) = self
            .classes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key.as_ref())
        {
            return Ok(Arc::clone(found));
        }
        let context = self.context.as_deref().map(|c| &c.0);
        let definition = match (&self.method, class) {
            (Some((owner, method)), "__PARAMETERS") => {
                let owner = self.namespace.get_object(owner, context)?;
                let (mut inputs, mut outputs) = (None, None);
                let name = wide(method);
                // SAFETY: a live class object; NUL-terminated name; local out-pointers.
                unsafe { owner.GetMethod(PCWSTR(name.as_ptr()), 0, &mut inputs, &mut outputs) }
                    .map_err(code)?;
                outputs.ok_or(HResult::WBEM_E_INVALID_METHOD)?
            }
            _ => self.namespace.get_object(class, context)?,
        };
        let definition = Arc::new(Shared(definition));
        self.classes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.into_owned(), Arc::clone(&definition));
        Ok(definition)
    }

    /// A new instance of `instance`'s class (`SpawnInstance`) with its properties `Put`.
    pub(crate) fn object(&self, instance: &Instance) -> Result<IWbemClassObject, HResult> {
        spawn(&self.definition(instance.class())?.0, instance)
    }

    /// The objects of `instances`, in order (for one `Indicate`): the class definition is
    /// looked up once for each run of instances of one class, and each instance is dropped as
    /// soon as its object is made (the allocator reuses its memory for the next object's at
    /// once, rather than after the whole batch).
    pub(crate) fn objects(
        &self,
        instances: Vec<Instance>,
    ) -> Result<Vec<Option<IWbemClassObject>>, HResult> {
        let mut objects = Vec::with_capacity(instances.len());
        let mut current: Option<(String, Arc<Shared<IWbemClassObject>>)> = None;
        for instance in instances {
            let class = instance.class();
            let definition = match &current {
                Some((last, definition)) if last == class => definition,
                _ => {
                    &current
                        .insert((class.to_owned(), self.definition(class)?))
                        .1
                }
            };
            objects.push(Some(spawn(&definition.0, &instance)?));
        }
        Ok(objects)
    }
}

/// A new instance of `definition` (`SpawnInstance`) with the properties of `instance` `Put`.
fn spawn(definition: &IWbemClassObject, instance: &Instance) -> Result<IWbemClassObject, HResult> {
    // SAFETY: a live class object.
    let object = unsafe { definition.SpawnInstance(0) }.map_err(code)?;
    for (name, value) in instance.properties() {
        let variant = Variant::from_value(value)?;
        // SAFETY: a live object, a NUL-terminated name and a valid VARIANT, which Put copies;
        // `Type` is 0 for an instance (the class fixes it).
        with_wide(name, |name| unsafe {
            object.Put(name, 0, variant.as_ptr(), 0)
        })
        .map_err(code)?;
    }
    Ok(object)
}

/// The [`Instance`] a host's `IWbemClassObject` holds: its class (`__CLASS`) and its
/// non-system properties.
pub(crate) fn instance_of(object: &IWbemClassObject) -> Result<Instance, HResult> {
    let mut class = Variant::default();
    let name = wide("__CLASS");
    // SAFETY: a live object; a NUL-terminated name; an empty VARIANT to fill.
    unsafe { object.Get(PCWSTR(name.as_ptr()), 0, class.as_mut_ptr(), None, None) }
        .map_err(code)?;
    let Value::Str(class) = class.to_value(CIM_STRING.0)? else {
        return Err(HResult::WBEM_E_INVALID_PARAMETER);
    };
    let mut instance = Instance::new(class);
    // SAFETY: a live object.
    unsafe { object.BeginEnumeration(WBEM_FLAG_NONSYSTEM_ONLY.0) }.map_err(code)?;
    let read = (|| {
        for _ in 0..MAX_ELEMENTS {
            let mut name = BSTR::new();
            let mut value = Variant::default();
            let mut cimtype = 0i32;
            // The wrapper would turn WBEM_S_NO_MORE_DATA into Ok: call the slot itself.
            // SAFETY: a live object; out-pointers to an empty BSTR, an empty VARIANT and an
            // i32 (BSTR is one pointer), each written at most once by the callee.
            let status = unsafe {
                (object.vtable().Next)(
                    object.as_raw(),
                    0,
                    (&mut name as *mut BSTR).cast(),
                    value.as_mut_ptr(),
                    &mut cimtype,
                    std::ptr::null_mut(),
                )
            };
            if status.0 == WBEM_S_NO_MORE_DATA.0 {
                return Ok(());
            }
            if status.is_err() {
                return Err(HResult::from_raw(status.0));
            }
            instance.set(bstr_string(&name)?, value.to_value(cimtype)?);
        }
        Err(HResult::WBEM_E_INVALID_PARAMETER)
    })();
    // SAFETY: a live object whose enumeration began above.
    let _ = unsafe { object.EndEnumeration() };
    read.map(|()| instance)
}
