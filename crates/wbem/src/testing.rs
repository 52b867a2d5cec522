//! The host simulator (feature `testing`): plays WMI against any provider, through the
//! provider's real COM vtables.
//!
//! [`Host::new`] activates the provider as WMI does: it creates the provider's COM object,
//! calls `IWbemProviderInit::Initialize` with a namespace of its own (an `IWbemServices` whose
//! `GetObject` hands out class definitions and the instances a test serves, everything else not
//! supported), a context and an init sink, then queries `IWbemServices` and
//! `IWbemEventProvider`. Every call goes through those vtables: the `*Async` calls each with an
//! `IWbemContext` and a response sink of their own, `CancelAsyncCall` with a client sink's
//! shared identity ([`Host::sink`]; several calls may share one, as WMI clients may). Class
//! objects are the simulator's own `IWbemClassObject`s: a property map, typed by the classes a
//! test declares ([`Host::declare`]) or by their `VARIANT`s.
//!
//! Each call's messages are recorded (its [`CallRecord`]) and checked against what WMI's
//! documents promise the client; a check that fails is recorded where it happens (a COM method
//! must not unwind into the provider) and raised, with the rule's ID, when the call returns:
//!
//! - exactly one final `SetStatus` per call when the `*Async` method returned
//!   `WBEM_S_NO_ERROR`, and nothing after it (R-WMI-3, R-WMI-11);
//! - no `SetStatus` at all when it returned an error (R-WMI-5: the framework never does both);
//! - no progress report unless the call's flags had `WBEM_FLAG_SEND_STATUS` (R-WMI-4);
//! - no `Indicate` of zero or more than [`BATCH_SIZE`] objects, each an object the simulator's
//!   namespace made;
//! - at most one object indicated by a method call, before its final status (R-WMI-8);
//! - the call's sink used only while the provider holds a reference of its own, and released
//!   by the time the call returns (R-WMI-2);
//! - every request the provider makes of the namespace during a call carries the call's
//!   `IWbemContext` (R-WMI-14; [`Host::requests`]).
//!
//! The simulator counts its own COM objects and the provider's module counts the provider's:
//! [`Host::release`] releases everything and returns both counts, which must be 0.
//!
//! For benchmarks: a [counting](ClientSink::counting) client sink records a call of any size in
//! constant memory, [`Host::class_objects_peak`] reads the most class objects alive at once,
//! and [`Host::raw_enumerate`] runs the loop a provider writes without the framework
//! (`SpawnInstance`, `Put`, `Indicate`) on the simulator's own objects, as a baseline.
//!
//! [`Host::client`] is a [`Connection`](crate::client::Connection) to the provider through the
//! simulator's WMI (an `IWbemServices` of its own, `wmi.rs`): class definitions from the
//! declared classes, each call passed on with the client's own sink, inline or on a thread of
//! its own, or followed by a faulty server's extra messages ([`Dispatch`]).

use crate::abi::{self, Decoupled, Module, ProviderObject, Server};
use crate::class::{CimKind, Direction, WmiClass};
use crate::host::{CallFlags, WBEM_STATUS_COMPLETE, WBEM_STATUS_PROGRESS};
use crate::provider::{BATCH_SIZE, Provider};
use crate::runtime::Runtime;
use crate::value::{Instance, Value};
use std::collections::HashMap;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use windows_core::{
    BSTR, GUID, HRESULT, IUnknown, IUnknown_Vtbl, Interface, OutRef, PCWSTR, Ref, implement,
};
use winprov_bindings::automation::VariantClear;
use winprov_bindings::wbem::{
    CIM_BOOLEAN, CIM_DATETIME, CIM_FLAG_ARRAY, CIM_REAL64, CIM_SINT32, CIM_SINT64, CIM_STRING,
    CIM_UINT32, CIM_UINT64, IClassFactory, IEnumWbemClassObject, IWbemCallResult, IWbemClassObject,
    IWbemClassObject_Impl, IWbemContext, IWbemContext_Impl, IWbemDecoupledRegistrar,
    IWbemDecoupledRegistrar_Impl, IWbemEventProvider, IWbemObjectSink, IWbemObjectSink_Impl,
    IWbemObjectSink_Vtbl, IWbemProviderInit, IWbemProviderInitSink, IWbemProviderInitSink_Impl,
    IWbemQualifierSet, IWbemServices, IWbemServices_Impl, SAFEARRAY, VARENUM, VARIANT,
    VARIANT_FALSE, VARIANT_TRUE, VT_ARRAY, VT_BOOL, VT_BSTR, VT_EMPTY, VT_I4, VT_NULL, VT_R8,
    WBEM_COMPARISON_FLAG, WBEM_CONDITION_FLAG_TYPE, WBEM_GENERIC_FLAG_TYPE, WBEM_S_NO_MORE_DATA,
};
use winprov_core::HResult;

mod wmi;
pub use wmi::Dispatch;

// ---------------------------------------------------------------------------------------------
// Values and objects.

/// A CIM type a test declares a property with ([`Host::declare`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cim {
    /// `boolean` (`VT_BOOL`).
    Boolean,
    /// `sint32` (`VT_I4`).
    Sint32,
    /// `uint32` (`VT_I4`, the bits).
    Uint32,
    /// `sint64` (`VT_BSTR`, decimal).
    Sint64,
    /// `uint64` (`VT_BSTR`, decimal).
    Uint64,
    /// `string` (`VT_BSTR`).
    String,
    /// `string[]` (`VT_ARRAY | VT_BSTR`).
    StringArray,
    /// `real64` (`VT_R8`): a type the provider's values do not have.
    Real64,
}

impl Cim {
    /// The `CIMTYPE` value.
    pub fn raw(self) -> i32 {
        match self {
            Cim::Boolean => CIM_BOOLEAN.0,
            Cim::Sint32 => CIM_SINT32.0,
            Cim::Uint32 => CIM_UINT32.0,
            Cim::Sint64 => CIM_SINT64.0,
            Cim::Uint64 => CIM_UINT64.0,
            Cim::String => CIM_STRING.0,
            Cim::StringArray => CIM_STRING.0 | CIM_FLAG_ARRAY.0,
            Cim::Real64 => CIM_REAL64.0,
        }
    }
}

/// A property value as a client holds it: one of the `VARIANT` kinds WMI uses.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Raw {
    /// `VT_NULL`.
    Null,
    /// `VT_BOOL`.
    Bool(bool),
    /// `VT_I4`.
    I4(i32),
    /// `VT_BSTR`.
    Bstr(String),
    /// `VT_ARRAY | VT_BSTR`.
    Strings(Vec<String>),
    /// `VT_R8`.
    R8(f64),
}

/// An object a client builds property by property, with the `CIMTYPE` each property reports
/// (0: none) — to send the provider what an [`Instance`] cannot express (wrong types).
#[derive(Clone, Debug, PartialEq)]
pub struct ClientObject {
    class: String,
    properties: Vec<(String, i32, Raw)>,
}

impl ClientObject {
    /// An object of `class` with no property.
    pub fn new(class: impl Into<String>) -> Self {
        Self {
            class: class.into(),
            properties: Vec::new(),
        }
    }

    /// Adds `name` = `raw`, reported as CIM type `cimtype` (builder style).
    pub fn with(mut self, name: impl Into<String>, cimtype: i32, raw: Raw) -> Self {
        self.properties.push((name.into(), cimtype, raw));
        self
    }

    /// The object WMI would send for `instance` (CIM conventions: `uint32` as `VT_I4`,
    /// 64-bit integers as decimal strings).
    pub fn of(instance: &Instance) -> Self {
        let mut object = Self::new(instance.class());
        for (name, value) in instance.properties() {
            let (cim, raw) = match value {
                Value::Bool(b) => (Cim::Boolean.raw(), Raw::Bool(*b)),
                Value::I32(v) => (Cim::Sint32.raw(), Raw::I4(*v)),
                Value::U32(v) => (Cim::Uint32.raw(), Raw::I4(*v as i32)),
                Value::I64(v) => (Cim::Sint64.raw(), Raw::Bstr(v.to_string())),
                Value::U64(v) => (Cim::Uint64.raw(), Raw::Bstr(v.to_string())),
                Value::Str(s) => (Cim::String.raw(), Raw::Bstr(s.clone())),
                Value::StrArray(s) => (Cim::StringArray.raw(), Raw::Strings(s.clone())),
                _ => (0, Raw::Null),
            };
            object = object.with(name, cim, raw);
        }
        object
    }
}

/// The CIM type a `VARIANT` kind implies when nothing declares one.
fn implied(raw: &Raw) -> i32 {
    match raw {
        Raw::Null => 0,
        Raw::Bool(_) => Cim::Boolean.raw(),
        Raw::I4(_) => Cim::Sint32.raw(),
        Raw::Bstr(_) => Cim::String.raw(),
        Raw::Strings(_) => Cim::StringArray.raw(),
        Raw::R8(_) => Cim::Real64.raw(),
    }
}

/// The `CIMTYPE` of a typed class's property.
fn cim_type(kind: CimKind) -> i32 {
    let scalar = match kind.to_string().trim_end_matches("[]") {
        "boolean" => CIM_BOOLEAN.0,
        "sint32" => CIM_SINT32.0,
        "uint32" => CIM_UINT32.0,
        "sint64" => CIM_SINT64.0,
        "uint64" => CIM_UINT64.0,
        "datetime" => CIM_DATETIME.0,
        _ => CIM_STRING.0,
    };
    match kind.to_string().ends_with("[]") {
        true => scalar | CIM_FLAG_ARRAY.0,
        false => scalar,
    }
}

/// Whether WMI would store `raw` in a property of CIM type `cimtype`.
fn fits(cimtype: i32, raw: &Raw) -> bool {
    match raw {
        Raw::Null => true,
        Raw::Bool(_) => cimtype == CIM_BOOLEAN.0,
        Raw::I4(_) => cimtype == CIM_SINT32.0 || cimtype == CIM_UINT32.0,
        Raw::Bstr(text) if cimtype == CIM_SINT64.0 => text.parse::<i64>().is_ok(),
        Raw::Bstr(text) if cimtype == CIM_UINT64.0 => text.parse::<u64>().is_ok(),
        Raw::Bstr(_) => cimtype == CIM_STRING.0 || cimtype == CIM_DATETIME.0,
        Raw::Strings(_) => cimtype == Cim::StringArray.raw(),
        Raw::R8(_) => cimtype == CIM_REAL64.0,
    }
}

/// The [`Value`] a client reads from a property of CIM type `cimtype` holding `raw`.
fn value_of(cimtype: i32, raw: &Raw) -> Value {
    match raw {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(*b),
        Raw::I4(v) if cimtype == CIM_UINT32.0 => Value::U32(*v as u32),
        Raw::I4(v) => Value::I32(*v),
        Raw::Bstr(text) if cimtype == CIM_SINT64.0 => {
            text.parse().map_or(Value::Str(text.clone()), Value::I64)
        }
        Raw::Bstr(text) if cimtype == CIM_UINT64.0 => {
            text.parse().map_or(Value::Str(text.clone()), Value::U64)
        }
        Raw::Bstr(text) => Value::Str(text.clone()),
        Raw::Strings(items) => Value::StrArray(items.clone()),
        Raw::R8(v) => Value::Str(v.to_string()),
    }
}

fn failure(code: HResult) -> windows_core::Error {
    windows_core::Error::from_hresult(HRESULT(code.raw()))
}

fn not_supported<T>() -> windows_core::Result<T> {
    Err(failure(HResult::WBEM_E_NOT_SUPPORTED))
}

fn hresult(result: windows_core::Result<()>) -> HResult {
    match result {
        Ok(()) => HResult::S_OK,
        Err(error) => HResult::from_raw(error.code().0),
    }
}

/// Reads a `VARIANT` the provider passes (never taking it over).
///
/// # Safety
/// `variant` is null or a valid `VARIANT`.
unsafe fn read_variant(variant: *const VARIANT) -> Result<Raw, HResult> {
    if variant.is_null() {
        return Ok(Raw::Null);
    }
    // SAFETY: a valid VARIANT (the caller's contract); only the member `vt` names is read.
    unsafe {
        let inner = &(*variant).Anonymous.Anonymous;
        let payload = &inner.Anonymous;
        let text = |b: &BSTR| String::from_utf16(b).map_err(|_| HResult::WBEM_E_INVALID_PARAMETER);
        match inner.vt {
            VT_NULL | VT_EMPTY => Ok(Raw::Null),
            VT_BOOL => Ok(Raw::Bool(payload.boolVal.0 != 0)),
            VT_I4 => Ok(Raw::I4(payload.lVal)),
            VT_BSTR => text(&payload.bstrVal).map(Raw::Bstr),
            VT_R8 => Ok(Raw::R8(payload.dblVal)),
            vt if vt.0 == VT_ARRAY.0 | VT_BSTR.0 => {
                abi::read_string_array(payload.parray).map(Raw::Strings)
            }
            _ => Err(HResult::WBEM_E_TYPE_MISMATCH),
        }
    }
}

/// Writes `raw` into the provider's (empty) out-`VARIANT`, which the provider then owns.
///
/// # Safety
/// `out` is null or a writable, empty `VARIANT`.
unsafe fn write_variant(out: *mut VARIANT, raw: &Raw) -> Result<(), HResult> {
    if out.is_null() {
        return Ok(());
    }
    let mut variant = VARIANT::default();
    {
        // SAFETY: a zeroed VARIANT's tagged form, written whole.
        let inner = unsafe { &mut *variant.Anonymous.Anonymous };
        let (vt, payload) = (&mut inner.vt, &mut inner.Anonymous);
        match raw {
            Raw::Null => *vt = VT_NULL,
            Raw::Bool(b) => {
                *vt = VT_BOOL;
                payload.boolVal = if *b { VARIANT_TRUE } else { VARIANT_FALSE };
            }
            Raw::I4(v) => {
                *vt = VT_I4;
                payload.lVal = *v;
            }
            Raw::Bstr(text) => {
                *vt = VT_BSTR;
                payload.bstrVal = std::mem::ManuallyDrop::new(BSTR::from(text.as_str()));
            }
            Raw::Strings(items) => {
                let array: *mut SAFEARRAY = abi::string_array(items)?;
                *vt = VARENUM(VT_ARRAY.0 | VT_BSTR.0);
                payload.parray = array;
            }
            Raw::R8(v) => {
                *vt = VT_R8;
                payload.dblVal = *v;
            }
        }
    }
    // SAFETY: writable (the caller's contract); ownership of the payload moves to the caller.
    unsafe { out.write(variant) };
    Ok(())
}

/// One simulated object's state: a class definition or an instance.
struct ObjectState {
    class: String,
    is_class: bool,
    /// The declared properties (name, CIM type); empty: untyped.
    schema: Vec<(String, i32)>,
    properties: Mutex<Vec<(String, i32, Raw)>>,
    cursor: Mutex<Option<usize>>,
    key: OnceLock<usize>,
}

impl ObjectState {
    fn declared(&self, name: &str) -> Option<i32> {
        self.schema.iter().find(|(n, _)| n == name).map(|(_, t)| *t)
    }

    fn instance(&self) -> Instance {
        let mut instance = Instance::new(&self.class);
        for (name, cimtype, raw) in lock(&self.properties).iter() {
            instance.set(name, value_of(*cimtype, raw));
        }
        instance
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A namespace GetObject the provider made: the path and the identity of the `IWbemContext`
/// it passed (`None`: no context).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The object path asked for.
    pub path: String,
    /// The `IUnknown` pointer of the context passed with it.
    pub context: Option<usize>,
}

/// What the simulator's objects share: their count, the declared classes, the objects made
/// (to recognise them when they come back), the namespace's log, and checks failed outside a
/// call.
#[derive(Default)]
struct World {
    live: AtomicUsize,
    schemas: Mutex<HashMap<String, Vec<(String, i32)>>>,
    /// The out-parameters of declared methods, by lower-case `class.method`.
    signatures: Mutex<HashMap<String, Vec<(String, i32)>>>,
    /// The in-parameters of declared methods, by lower-case `class.method`.
    in_signatures: Mutex<HashMap<String, Vec<(String, i32)>>>,
    objects: Mutex<HashMap<usize, Weak<ObjectState>>>,
    /// The most entries `objects` had at once since the last reset
    /// ([`Host::reset_class_objects_peak`]).
    objects_peak: AtomicUsize,
    instances: Mutex<HashMap<String, Instance>>,
    requests: Mutex<Vec<Request>>,
    violations: Mutex<Vec<String>>,
    /// The threads of the client calls the simulator's WMI runs apart ([`Dispatch::Threaded`]).
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// The `CancelAsyncCall`s clients made of the simulator's WMI.
    client_cancels: AtomicUsize,
}

impl World {
    fn violation(&self, what: String) {
        lock(&self.violations).push(what);
    }

    fn schema(&self, class: &str) -> Vec<(String, i32)> {
        match lock(&self.schemas).get(class) {
            Some(schema) => schema.clone(),
            None if class == "__PARAMETERS" => vec![("ReturnValue".into(), Cim::Uint32.raw())],
            None => Vec::new(),
        }
    }

    fn object(
        self: &Arc<Self>,
        class: &str,
        is_class: bool,
        properties: Vec<(String, i32, Raw)>,
    ) -> IWbemClassObject {
        self.object_of_schema(class, is_class, properties, self.schema(class))
    }

    /// The out-parameters signature of `class.method`: as declared, else `ReturnValue: uint32`.
    fn out_signature(self: &Arc<Self>, class: &str, method: &str) -> IWbemClassObject {
        let key = format!("{class}.{method}").to_ascii_lowercase();
        match lock(&self.signatures).get(&key).cloned() {
            Some(schema) => self.object_of_schema("__PARAMETERS", true, Vec::new(), schema),
            None => self.object("__PARAMETERS", true, Vec::new()),
        }
    }

    /// The in-parameters signature of `class.method`: as declared (none for a method declared
    /// without in-parameters), else an untyped `__PARAMETERS` class.
    fn in_signature(self: &Arc<Self>, class: &str, method: &str) -> Option<IWbemClassObject> {
        let key = format!("{class}.{method}").to_ascii_lowercase();
        match lock(&self.in_signatures).get(&key).cloned() {
            Some(schema) if schema.is_empty() => None,
            Some(schema) => Some(self.object_of_schema("__PARAMETERS", true, Vec::new(), schema)),
            None => Some(self.object_of_schema("__PARAMETERS", true, Vec::new(), Vec::new())),
        }
    }

    fn object_of_schema(
        self: &Arc<Self>,
        class: &str,
        is_class: bool,
        properties: Vec<(String, i32, Raw)>,
        schema: Vec<(String, i32)>,
    ) -> IWbemClassObject {
        let state = Arc::new(ObjectState {
            class: class.to_string(),
            is_class,
            schema,
            properties: Mutex::new(properties),
            cursor: Mutex::new(None),
            key: OnceLock::new(),
        });
        let object: IWbemClassObject = SimObject {
            world: Arc::clone(self),
            state: Arc::clone(&state),
            _live: Counted::new(self),
        }
        .into();
        let key = identity_of(&object);
        let _ = state.key.set(key);
        let mut objects = lock(&self.objects);
        objects.insert(key, Arc::downgrade(&state));
        self.objects_peak
            .fetch_max(objects.len(), Ordering::Relaxed);
        drop(objects);
        object
    }

    fn client_object(self: &Arc<Self>, object: &ClientObject) -> IWbemClassObject {
        if object.class == "__PARAMETERS" {
            // In-parameters: the client's own object, typed by its values.
            return self.object_of_schema(
                &object.class,
                false,
                object.properties.clone(),
                Vec::new(),
            );
        }
        self.object(&object.class, false, object.properties.clone())
    }

    /// The state of an object the provider hands back, if it is one of ours.
    fn state_of(&self, object: &IWbemClassObject) -> Option<Arc<ObjectState>> {
        lock(&self.objects)
            .get(&identity_of(object))
            .and_then(Weak::upgrade)
    }

    /// The instances of `count` objects at `array`, or a violation.
    ///
    /// # Safety
    /// `array` is null or points to `count` interface pointers (each null or live).
    unsafe fn instances(
        &self,
        count: i32,
        array: *const *mut c_void,
    ) -> Result<Vec<Instance>, String> {
        let count = usize::try_from(count).map_err(|_| format!("Indicate of {count} objects"))?;
        if count == 0 || count > BATCH_SIZE || array.is_null() {
            return Err(format!(
                "Indicate of {count} objects (1 to {BATCH_SIZE} allowed)"
            ));
        }
        (0..count)
            .map(|index| {
                // SAFETY: `count` pointers at `array` (the caller's contract).
                let raw = unsafe { array.add(index).read() };
                // SAFETY: null or a live interface pointer, borrowed for this call.
                let object = unsafe { IWbemClassObject::from_raw_borrowed(&raw) }
                    .ok_or_else(|| "Indicate of a NULL object".to_string())?;
                self.state_of(object)
                    .map(|state| state.instance())
                    .ok_or_else(|| "Indicate of an object the namespace did not make".to_string())
            })
            .collect()
    }
}

/// How many objects a counting sink's `Indicate` got: `count`, checked as
/// [`World::instances`] checks it, and every pointer non-null (the objects are not read).
///
/// # Safety
/// `array` is null or points to `count` pointers.
unsafe fn counted(count: i32, array: *const *mut c_void) -> Result<usize, String> {
    let count = usize::try_from(count).map_err(|_| format!("Indicate of {count} objects"))?;
    if count == 0 || count > BATCH_SIZE || array.is_null() {
        return Err(format!(
            "Indicate of {count} objects (1 to {BATCH_SIZE} allowed)"
        ));
    }
    // SAFETY: `count` pointers at `array` (the caller's contract), only read.
    let pointers = unsafe { std::slice::from_raw_parts(array, count) };
    match pointers.iter().any(|pointer| pointer.is_null()) {
        true => Err("Indicate of a NULL object".to_string()),
        false => Ok(count),
    }
}

fn identity_of<I: Interface>(object: &I) -> usize {
    object
        .cast::<IUnknown>()
        .map(|unknown| unknown.as_raw().addr())
        .unwrap_or_default()
}

/// The reference count of `object` (with the caller's own reference).
fn refs<I: Interface>(object: &I) -> u32 {
    let raw = object.as_raw();
    // SAFETY: a live interface pointer: its vtable starts with IUnknown's; one AddRef and one
    // Release leave the count as it was.
    unsafe {
        let vtable = &**(raw as *const *const IUnknown_Vtbl);
        let count = (vtable.AddRef)(raw);
        (vtable.Release)(raw);
        count - 1
    }
}

/// One live simulator object.
struct Counted(Arc<World>);

impl Counted {
    fn new(world: &Arc<World>) -> Self {
        world.live.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(world))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An interface shared by the simulator's threads.
struct Free<I>(I);

// SAFETY: the simulator's objects and the provider's are free-threaded (every method takes
// `&self` and synchronizes itself), as in WMI's multithreaded apartment.
unsafe impl<I> Send for Free<I> {}
// SAFETY: as above.
unsafe impl<I> Sync for Free<I> {}

impl<I: Clone> Clone for Free<I> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

// ---------------------------------------------------------------------------------------------
// The simulator's COM objects.

/// The simulator's `IWbemClassObject`: a property map.
#[implement(IWbemClassObject)]
struct SimObject {
    world: Arc<World>,
    state: Arc<ObjectState>,
    _live: Counted,
}

impl Drop for SimObject {
    fn drop(&mut self) {
        if let Some(key) = self.state.key.get() {
            lock(&self.world.objects).remove(key);
        }
    }
}

impl SimObject {
    fn name(name: &PCWSTR) -> Result<String, HResult> {
        if name.is_null() {
            return Err(HResult::WBEM_E_INVALID_PARAMETER);
        }
        // SAFETY: a non-null name the provider passes NUL-terminated.
        let units = unsafe { winprov_core::ffi::wide_str(name.0, 4096) }
            .map_err(|_| HResult::WBEM_E_INVALID_PARAMETER)?;
        String::from_utf16(units).map_err(|_| HResult::WBEM_E_INVALID_PARAMETER)
    }
}

impl IWbemClassObject_Impl for SimObject_Impl {
    fn GetQualifierSet(&self) -> windows_core::Result<IWbemQualifierSet> {
        not_supported()
    }

    fn Get(
        &self,
        wszname: &PCWSTR,
        _lflags: i32,
        pval: *mut VARIANT,
        ptype: *mut i32,
        _plflavor: *mut i32,
    ) -> windows_core::Result<()> {
        let name = SimObject::name(wszname).map_err(failure)?;
        let (cimtype, raw) = if name == "__CLASS" {
            (Cim::String.raw(), Raw::Bstr(self.state.class.clone()))
        } else {
            let properties = lock(&self.state.properties);
            match properties.iter().find(|(n, _, _)| *n == name) {
                Some((_, cimtype, raw)) => (*cimtype, raw.clone()),
                None => match self.state.declared(&name) {
                    Some(cimtype) => (cimtype, Raw::Null),
                    None => return Err(failure(HResult::WBEM_E_NOT_FOUND)),
                },
            }
        };
        // SAFETY: the provider's out-pointers, null or writable (and an empty VARIANT).
        unsafe {
            write_variant(pval, &raw).map_err(failure)?;
            if !ptype.is_null() {
                ptype.write(cimtype);
            }
        }
        Ok(())
    }

    fn Put(
        &self,
        wszname: &PCWSTR,
        _lflags: i32,
        pval: *const VARIANT,
        r#type: i32,
    ) -> windows_core::Result<()> {
        let name = SimObject::name(wszname).map_err(failure)?;
        if self.state.is_class {
            return not_supported();
        }
        if r#type != 0 || name.starts_with("__") {
            // Put on an instance takes Type 0: the class fixes the type.
            return Err(failure(HResult::WBEM_E_INVALID_PARAMETER));
        }
        // SAFETY: null or a valid VARIANT the provider passes.
        let raw = unsafe { read_variant(pval) }.map_err(failure)?;
        let cimtype = match self.state.declared(&name) {
            Some(cimtype) if fits(cimtype, &raw) => cimtype,
            Some(_) => return Err(failure(HResult::WBEM_E_TYPE_MISMATCH)),
            None if !self.state.schema.is_empty() => {
                return Err(failure(HResult::WBEM_E_NOT_FOUND));
            }
            None => implied(&raw),
        };
        let mut properties = lock(&self.state.properties);
        match properties.iter_mut().find(|(n, _, _)| *n == name) {
            Some(slot) => *slot = (name, cimtype, raw),
            None => properties.push((name, cimtype, raw)),
        }
        Ok(())
    }

    fn Delete(&self, _: &PCWSTR) -> windows_core::Result<()> {
        not_supported()
    }

    fn GetNames(
        &self,
        _: &PCWSTR,
        _: WBEM_CONDITION_FLAG_TYPE,
        _: *const VARIANT,
    ) -> windows_core::Result<*mut SAFEARRAY> {
        not_supported()
    }

    fn BeginEnumeration(&self, _lenumflags: i32) -> windows_core::Result<()> {
        *lock(&self.state.cursor) = Some(0);
        Ok(())
    }

    fn Next(
        &self,
        _lflags: i32,
        strname: *mut BSTR,
        pval: *mut VARIANT,
        ptype: *mut i32,
        _plflavor: *mut i32,
    ) -> windows_core::Result<()> {
        let mut cursor = lock(&self.state.cursor);
        let Some(at) = *cursor else {
            return Err(failure(HResult::WBEM_E_FAILED));
        };
        let properties = lock(&self.state.properties);
        let Some((name, cimtype, raw)) = properties.get(at) else {
            return Err(windows_core::Error::from_hresult(HRESULT(
                WBEM_S_NO_MORE_DATA.0,
            )));
        };
        *cursor = Some(at + 1);
        // SAFETY: the provider's out-pointers, null or writable (an empty BSTR and VARIANT).
        unsafe {
            if !strname.is_null() {
                strname.write(BSTR::from(name.as_str()));
            }
            write_variant(pval, raw).map_err(failure)?;
            if !ptype.is_null() {
                ptype.write(*cimtype);
            }
        }
        Ok(())
    }

    fn EndEnumeration(&self) -> windows_core::Result<()> {
        *lock(&self.state.cursor) = None;
        Ok(())
    }

    fn GetPropertyQualifierSet(&self, _: &PCWSTR) -> windows_core::Result<IWbemQualifierSet> {
        not_supported()
    }

    fn Clone(&self) -> windows_core::Result<IWbemClassObject> {
        not_supported()
    }

    fn GetObjectText(&self, _: i32) -> windows_core::Result<BSTR> {
        not_supported()
    }

    fn SpawnDerivedClass(&self, _: i32) -> windows_core::Result<IWbemClassObject> {
        not_supported()
    }

    fn SpawnInstance(&self, _lflags: i32) -> windows_core::Result<IWbemClassObject> {
        if !self.state.is_class {
            return not_supported();
        }
        // The instance has its class's schema (a method's signature included).
        Ok(self.world.object_of_schema(
            &self.state.class,
            false,
            Vec::new(),
            self.state.schema.clone(),
        ))
    }

    fn CompareTo(
        &self,
        _: WBEM_COMPARISON_FLAG,
        _: Ref<'_, IWbemClassObject>,
    ) -> windows_core::Result<()> {
        not_supported()
    }

    fn GetPropertyOrigin(&self, _: &PCWSTR) -> windows_core::Result<BSTR> {
        not_supported()
    }

    fn InheritsFrom(&self, _: &PCWSTR) -> windows_core::Result<()> {
        not_supported()
    }

    fn GetMethod(
        &self,
        wszname: &PCWSTR,
        _lflags: i32,
        ppinsignature: OutRef<'_, IWbemClassObject>,
        ppoutsignature: OutRef<'_, IWbemClassObject>,
    ) -> windows_core::Result<()> {
        let method = SimObject::name(wszname).map_err(failure)?;
        if !self.state.is_class {
            return not_supported();
        }
        if !ppinsignature.is_null() {
            ppinsignature.write(self.world.in_signature(&self.state.class, &method))?;
        }
        let signature = self.world.out_signature(&self.state.class, &method);
        ppoutsignature.write(Some(signature))
    }

    fn PutMethod(
        &self,
        _: &PCWSTR,
        _: i32,
        _: Ref<'_, IWbemClassObject>,
        _: Ref<'_, IWbemClassObject>,
    ) -> windows_core::Result<()> {
        not_supported()
    }

    fn DeleteMethod(&self, _: &PCWSTR) -> windows_core::Result<()> {
        not_supported()
    }

    fn BeginMethodEnumeration(&self, _: i32) -> windows_core::Result<()> {
        not_supported()
    }

    fn NextMethod(
        &self,
        _: i32,
        _: *mut BSTR,
        _: OutRef<'_, IWbemClassObject>,
        _: OutRef<'_, IWbemClassObject>,
    ) -> windows_core::Result<()> {
        not_supported()
    }

    fn EndMethodEnumeration(&self) -> windows_core::Result<()> {
        not_supported()
    }

    fn GetMethodQualifierSet(&self, _: &PCWSTR) -> windows_core::Result<IWbemQualifierSet> {
        not_supported()
    }

    fn GetMethodOrigin(&self, _: &PCWSTR) -> windows_core::Result<BSTR> {
        not_supported()
    }
}

/// The simulator's `IWbemContext`: an identity the provider must pass back (R-WMI-14).
#[implement(IWbemContext)]
struct SimContext {
    _live: Counted,
}

impl IWbemContext_Impl for SimContext_Impl {
    fn Clone(&self) -> windows_core::Result<IWbemContext> {
        not_supported()
    }
    fn GetNames(&self, _: i32) -> windows_core::Result<*mut SAFEARRAY> {
        not_supported()
    }
    fn BeginEnumeration(&self, _: i32) -> windows_core::Result<()> {
        not_supported()
    }
    fn Next(&self, _: i32, _: *mut BSTR, _: *mut VARIANT) -> windows_core::Result<()> {
        not_supported()
    }
    fn EndEnumeration(&self) -> windows_core::Result<()> {
        not_supported()
    }
    fn SetValue(&self, _: &PCWSTR, _: i32, _: *const VARIANT) -> windows_core::Result<()> {
        not_supported()
    }
    fn GetValue(&self, _: &PCWSTR, _: i32) -> windows_core::Result<VARIANT> {
        not_supported()
    }
    fn DeleteValue(&self, _: &PCWSTR, _: i32) -> windows_core::Result<()> {
        not_supported()
    }
    fn DeleteAll(&self) -> windows_core::Result<()> {
        not_supported()
    }
}

/// The simulator's namespace: `GetObject` of classes and served instances, nothing else.
#[implement(IWbemServices)]
struct SimNamespace {
    world: Arc<World>,
    _live: Counted,
}

impl IWbemServices_Impl for SimNamespace_Impl {
    fn OpenNamespace(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemServices>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn CancelAsyncCall(&self, _: Ref<'_, IWbemObjectSink>) -> windows_core::Result<()> {
        not_supported()
    }
    fn QueryObjectSink(&self, _: WBEM_GENERIC_FLAG_TYPE) -> windows_core::Result<IWbemObjectSink> {
        not_supported()
    }
    fn GetObject(
        &self,
        strobjectpath: &BSTR,
        _lflags: WBEM_GENERIC_FLAG_TYPE,
        pctx: Ref<'_, IWbemContext>,
        ppobject: OutRef<'_, IWbemClassObject>,
        _ppcallresult: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        let path = String::from_utf16(strobjectpath)
            .map_err(|_| failure(HResult::WBEM_E_INVALID_PARAMETER))?;
        lock(&self.world.requests).push(Request {
            path: path.clone(),
            context: pctx.as_ref().map(identity_of),
        });
        let object = if path.contains(['.', '=']) {
            let instance = lock(&self.world.instances).get(&path).cloned();
            match instance {
                Some(instance) => self.world.client_object(&ClientObject::of(&instance)),
                None => return Err(failure(HResult::WBEM_E_NOT_FOUND)),
            }
        } else if path.is_empty() {
            return Err(failure(HResult::WBEM_E_INVALID_OBJECT_PATH));
        } else {
            self.world.object(&path, true, Vec::new())
        };
        ppobject.write(Some(object))
    }
    fn GetObjectAsync(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn PutClass(
        &self,
        _: Ref<'_, IWbemClassObject>,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn PutClassAsync(
        &self,
        _: Ref<'_, IWbemClassObject>,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn DeleteClass(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn DeleteClassAsync(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn CreateClassEnum(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_supported()
    }
    fn CreateClassEnumAsync(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn PutInstance(
        &self,
        _: Ref<'_, IWbemClassObject>,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn PutInstanceAsync(
        &self,
        _: Ref<'_, IWbemClassObject>,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn DeleteInstance(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn DeleteInstanceAsync(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn CreateInstanceEnum(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_supported()
    }
    fn CreateInstanceEnumAsync(
        &self,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn ExecQuery(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_supported()
    }
    fn ExecQueryAsync(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn ExecNotificationQuery(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
    ) -> windows_core::Result<IEnumWbemClassObject> {
        not_supported()
    }
    fn ExecNotificationQueryAsync(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn ExecMethod(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemClassObject>,
        _: OutRef<'_, IWbemClassObject>,
        _: OutRef<'_, IWbemCallResult>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
    fn ExecMethodAsync(
        &self,
        _: &BSTR,
        _: &BSTR,
        _: WBEM_GENERIC_FLAG_TYPE,
        _: Ref<'_, IWbemContext>,
        _: Ref<'_, IWbemClassObject>,
        _: Ref<'_, IWbemObjectSink>,
    ) -> windows_core::Result<()> {
        not_supported()
    }
}

/// WMI's init sink: records each `SetStatus(lStatus, lFlags)`.
#[implement(IWbemProviderInitSink)]
struct SimInitSink {
    statuses: Arc<Mutex<Vec<(i32, i32)>>>,
    _live: Counted,
}

impl IWbemProviderInitSink_Impl for SimInitSink_Impl {
    fn SetStatus(&self, lstatus: i32, lflags: i32) -> windows_core::Result<()> {
        lock(&self.statuses).push((lstatus, lflags));
        Ok(())
    }
}

/// A client sink's shared identity: what `CancelAsyncCall` is given. Each call gets a sink of
/// its own whose identity this is; nothing should be sent here.
#[implement(IWbemObjectSink)]
struct SharedSink {
    world: Arc<World>,
    _live: Counted,
}

impl IWbemObjectSink_Impl for SharedSink_Impl {
    fn Indicate(&self, _: i32, _: *const Option<IWbemClassObject>) -> windows_core::Result<()> {
        self.world
            .violation("Indicate reached a sink that only CancelAsyncCall was given".into());
        Ok(())
    }
    fn SetStatus(
        &self,
        _: i32,
        _: HRESULT,
        _: &BSTR,
        _: Ref<'_, IWbemClassObject>,
    ) -> windows_core::Result<()> {
        self.world
            .violation("SetStatus reached a sink that only CancelAsyncCall was given".into());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Client sinks and their calls.

/// What one call's sink received, in order.
#[derive(Clone, Debug, Default)]
pub struct CallRecord {
    /// What the `*Async` method returned.
    pub returned: Option<HResult>,
    /// Every object indicated, in order (empty for a [counting](ClientSink::counting) sink).
    pub indicated: Vec<Instance>,
    /// The size of each `Indicate` (empty for a [counting](ClientSink::counting) sink).
    pub batches: Vec<usize>,
    /// How many objects were indicated, in all (whatever the sink keeps).
    pub indicated_count: usize,
    /// How many `Indicate` calls delivered them.
    pub indicate_calls: usize,
    /// Progress reports (`MAKELONG(done, total)` each).
    pub progress: Vec<HResult>,
    /// The final status and its `strParam`.
    pub status: Option<(HResult, Option<String>)>,
    /// Final statuses received (the checks fail past one).
    pub finals: usize,
    /// The identity (`IUnknown` pointer) of the `IWbemContext` the call was made with.
    pub context: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Instance,
    Method,
}

/// One call's end of a client sink: records and checks what the call sends.
struct CallLog {
    record: Mutex<CallRecord>,
    violations: Mutex<Vec<String>>,
    flags: CallFlags,
    kind: Kind,
    client: ClientSink,
    world: Arc<World>,
    over: AtomicBool,
}

impl CallLog {
    fn violation(&self, what: String) {
        match self.over.load(Ordering::SeqCst) {
            true => self
                .world
                .violation(format!("after the call returned: {what}")),
            false => lock(&self.violations).push(what),
        }
    }

    fn returned(&self, hresult: HResult) -> CallRecord {
        let mut record = lock(&self.record);
        self.over.store(true, Ordering::SeqCst);
        record.returned = Some(hresult);
        let violations = lock(&self.violations);
        assert!(violations.is_empty(), "{}", violations.join("; "));
        match hresult.is_ok() {
            true => assert_eq!(
                record.finals, 1,
                "R-WMI-3: the call returned WBEM_S_NO_ERROR with {} final SetStatus",
                record.finals
            ),
            false => assert!(
                record.finals == 0 && record.batches.is_empty() && record.progress.is_empty(),
                "R-WMI-5: the call returned {hresult} and also used the sink"
            ),
        }
        record.clone()
    }

    fn indicate(&self, objects: Result<Vec<Instance>, String>) {
        let objects = match objects {
            Ok(objects) => objects,
            Err(what) => return self.violation(what),
        };
        let mut record = lock(&self.record);
        if record.finals != 0 {
            return self.violation("R-WMI-3: Indicate after the final SetStatus".into());
        }
        if self.kind == Kind::Method && (!record.indicated.is_empty() || objects.len() != 1) {
            return self.violation(
                "R-WMI-8: a method call indicated more than one out-parameters object".into(),
            );
        }
        record.indicated_count += objects.len();
        record.indicate_calls += 1;
        record.batches.push(objects.len());
        record.indicated.extend(objects);
    }

    /// A counting sink's `Indicate` of `count` objects: the checks of [`indicate`](Self::indicate)
    /// that need no object read, and the counts.
    fn count(&self, count: Result<usize, String>) {
        let count = match count {
            Ok(count) => count,
            Err(what) => return self.violation(what),
        };
        let mut record = lock(&self.record);
        if record.finals != 0 {
            return self.violation("R-WMI-3: Indicate after the final SetStatus".into());
        }
        if self.kind == Kind::Method && (record.indicated_count != 0 || count != 1) {
            return self.violation(
                "R-WMI-8: a method call indicated more than one out-parameters object".into(),
            );
        }
        record.indicated_count += count;
        record.indicate_calls += 1;
    }

    fn set_status(&self, flags: i32, hresult: HResult, param: Option<String>) {
        let mut record = lock(&self.record);
        match flags {
            WBEM_STATUS_PROGRESS => {
                if record.finals != 0 {
                    return self.violation("R-WMI-3: progress after the final SetStatus".into());
                }
                if !self.flags.contains(CallFlags::SEND_STATUS) {
                    return self.violation(
                        "R-WMI-4: a progress report without WBEM_FLAG_SEND_STATUS".into(),
                    );
                }
                record.progress.push(hresult);
            }
            WBEM_STATUS_COMPLETE => {
                if record.finals != 0 {
                    let first = record.status.clone();
                    return self.violation(format!(
                        "R-WMI-11: a second final SetStatus (first {first:?}, now {hresult})"
                    ));
                }
                record.finals += 1;
                record.status = Some((hresult, param));
            }
            other => self.violation(format!("SetStatus with flags {other}")),
        }
    }
}

/// One call's response sink: a COM object of its own (its record), whose `IUnknown` is the
/// client sink's shared identity — so calls made with one client sink are one sink to the
/// provider's `CancelAsyncCall`, and still recorded apart. Written by hand: a tear-off's
/// `QueryInterface` answers another object's `IUnknown`, which `#[implement]` does not do.
#[repr(C)]
struct CallSinkObject {
    vtable: &'static IWbemObjectSink_Vtbl,
    refs: AtomicU32,
    log: Arc<CallLog>,
    identity: IUnknown,
    _live: Counted,
}

static CALL_SINK_VTABLE: IWbemObjectSink_Vtbl = IWbemObjectSink_Vtbl {
    base__: IUnknown_Vtbl {
        QueryInterface: call_sink_query_interface,
        AddRef: call_sink_add_ref,
        Release: call_sink_release,
    },
    Indicate: call_sink_indicate,
    SetStatus: call_sink_set_status,
};

impl CallSinkObject {
    fn create(log: Arc<CallLog>, identity: IUnknown, world: &Arc<World>) -> IWbemObjectSink {
        let object = Box::new(CallSinkObject {
            vtable: &CALL_SINK_VTABLE,
            refs: AtomicU32::new(1),
            log,
            identity,
            _live: Counted::new(world),
        });
        let raw = Box::into_raw(object).cast::<c_void>();
        // SAFETY: a fresh object whose first field is an IWbemObjectSink vtable, with the one
        // reference handed over here.
        unsafe { IWbemObjectSink::from_raw(raw) }
    }

    /// # Safety
    /// `this` is a live `CallSinkObject` (a pointer this module made).
    unsafe fn from_this<'a>(this: *mut c_void) -> &'a CallSinkObject {
        // SAFETY: forwarded to the caller's contract.
        unsafe { &*this.cast::<CallSinkObject>() }
    }

    /// Checks the provider holds a reference of its own while it uses the sink (R-WMI-2).
    fn check_held(&self, what: &str) {
        let refs = self.refs.load(Ordering::SeqCst);
        if refs < 2 {
            self.log.violation(format!(
                "R-WMI-2: {what} on a sink the provider holds no reference to ({refs} in all)"
            ));
        }
    }
}

unsafe extern "system" fn call_sink_query_interface(
    this: *mut c_void,
    iid: *const GUID,
    out: *mut *mut c_void,
) -> HRESULT {
    if out.is_null() || iid.is_null() {
        return HRESULT(HResult::E_POINTER.raw());
    }
    // SAFETY: COM calls this on a live object of ours with a valid IID and out-pointer.
    unsafe {
        let object = CallSinkObject::from_this(this);
        let iid = *iid;
        if iid == IUnknown::IID {
            out.write(object.identity.clone().into_raw());
            return HRESULT(0);
        }
        if iid == IWbemObjectSink::IID {
            object.refs.fetch_add(1, Ordering::SeqCst);
            out.write(this);
            return HRESULT(0);
        }
        out.write(std::ptr::null_mut());
    }
    HRESULT(HResult::E_NOINTERFACE.raw())
}

unsafe extern "system" fn call_sink_add_ref(this: *mut c_void) -> u32 {
    // SAFETY: COM calls this on a live object of ours.
    unsafe { CallSinkObject::from_this(this) }
        .refs
        .fetch_add(1, Ordering::SeqCst)
        + 1
}

unsafe extern "system" fn call_sink_release(this: *mut c_void) -> u32 {
    // SAFETY: COM calls this on a live object of ours.
    let left = unsafe { CallSinkObject::from_this(this) }
        .refs
        .fetch_sub(1, Ordering::SeqCst)
        - 1;
    if left == 0 {
        // SAFETY: the last reference: the box made in `create` is freed once.
        drop(unsafe { Box::from_raw(this.cast::<CallSinkObject>()) });
    }
    left
}

unsafe extern "system" fn call_sink_indicate(
    this: *mut c_void,
    count: i32,
    objects: *const *mut c_void,
) -> HRESULT {
    // SAFETY: the provider calls this on a live sink it holds.
    let object = unsafe { CallSinkObject::from_this(this) };
    object.check_held("Indicate");
    if let Some(hook) = &object.log.client.hook
        && catch_unwind(AssertUnwindSafe(|| hook())).is_err()
    {
        object
            .log
            .violation("the test's on_indicate hook panicked".into());
    }
    if object.log.client.counting {
        // SAFETY: the provider passes `count` object pointers.
        let counted = unsafe { counted(count, objects) };
        object.log.count(counted);
    } else {
        // SAFETY: the provider passes `count` object pointers.
        let instances = unsafe { object.log.world.instances(count, objects) };
        object.log.indicate(instances);
    }
    HRESULT(object.log.client.fail_with.unwrap_or(HResult::S_OK).raw())
}

unsafe extern "system" fn call_sink_set_status(
    this: *mut c_void,
    flags: i32,
    hresult: HRESULT,
    param: *mut c_void,
    _object: *mut c_void,
) -> HRESULT {
    // SAFETY: the provider calls this on a live sink it holds.
    let object = unsafe { CallSinkObject::from_this(this) };
    object.check_held("SetStatus");
    let param = match param.is_null() {
        true => None,
        false => {
            // SAFETY: a non-null BSTR the provider owns, borrowed for this call.
            let text = std::mem::ManuallyDrop::new(unsafe { BSTR::from_raw(param.cast()) });
            Some(text.to_string())
        }
    };
    object
        .log
        .set_status(flags, HResult::from_raw(hresult.0), param);
    HRESULT(object.log.client.fail_with.unwrap_or(HResult::S_OK).raw())
}

/// A client's `IWbemObjectSink`: its identity is what `CancelAsyncCall` names. Clones are the
/// same sink.
#[derive(Clone)]
pub struct ClientSink {
    shared: Free<IWbemObjectSink>,
    fail_with: Option<HResult>,
    hook: Option<Arc<dyn Fn() + Send + Sync>>,
    counting: bool,
}

impl ClientSink {
    /// This sink, whose `Indicate` and `SetStatus` answer `error` (the framework must tolerate
    /// it).
    pub fn failing(mut self, error: HResult) -> Self {
        self.fail_with = Some(error);
        self
    }

    /// This sink, whose `Indicate` first runs `hook` (a test cancels from there, or blocks to
    /// let another thread cancel while an `Indicate` is with the client).
    pub fn on_indicate(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// This sink, which counts the objects indicated instead of keeping them: its calls'
    /// records have [`CallRecord::indicated_count`] and [`CallRecord::indicate_calls`], but no
    /// [`indicated`](CallRecord::indicated) instances and no
    /// [`batches`](CallRecord::batches), so a call of any size records in constant memory and
    /// the objects are released as soon as the provider releases them. Its `Indicate` checks
    /// the batch size (1 to [`BATCH_SIZE`]), that no pointer is NULL and the order against the
    /// final status, but reads no object (not whether the namespace made it, nor its
    /// properties): for benchmarks, where reading every object would be most of what is timed.
    pub fn counting(mut self) -> Self {
        self.counting = true;
        self
    }

    /// The sink's identity: its `IUnknown` pointer.
    pub fn identity(&self) -> usize {
        identity_of(&self.shared.0)
    }
}

impl std::fmt::Debug for ClientSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSink")
            .field("identity", &self.identity())
            .finish_non_exhaustive()
    }
}

/// An event provider's sink as WMI implements it: records the events, answers each `Indicate`
/// with the next reply of its script (then `WBEM_S_NO_ERROR`).
#[derive(Debug, Default)]
pub struct EventLog {
    events: Mutex<Vec<Instance>>,
    arrived: std::sync::Condvar,
    replies: Mutex<std::collections::VecDeque<HResult>>,
    statuses: AtomicUsize,
}

impl EventLog {
    /// A sink whose first `Indicate`s answer `replies`, in order.
    pub fn answering(replies: impl IntoIterator<Item = HResult>) -> Arc<Self> {
        Arc::new(Self {
            events: Mutex::default(),
            arrived: std::sync::Condvar::new(),
            replies: Mutex::new(replies.into_iter().collect()),
            statuses: AtomicUsize::new(0),
        })
    }

    /// The events accepted (answered with success) so far.
    pub fn events(&self) -> Vec<Instance> {
        lock(&self.events).clone()
    }

    /// Waits up to `timeout` until `n` events were accepted; whether they were.
    pub fn wait_events(&self, n: usize, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        let mut events = lock(&self.events);
        while events.len() < n {
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            events = self
                .arrived
                .wait_timeout(events, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// The `SetStatus` calls the event sink received (R-WMI-10: there must be none).
    pub fn statuses(&self) -> usize {
        self.statuses.load(Ordering::SeqCst)
    }
}

/// The event sink's COM object.
#[implement(IWbemObjectSink)]
struct EventSinkObject {
    log: Arc<EventLog>,
    world: Arc<World>,
    _live: Counted,
}

impl IWbemObjectSink_Impl for EventSinkObject_Impl {
    fn Indicate(
        &self,
        lobjectcount: i32,
        apobjarray: *const Option<IWbemClassObject>,
    ) -> windows_core::Result<()> {
        // SAFETY: the provider passes `lobjectcount` object pointers.
        let instances = unsafe { self.world.instances(lobjectcount, apobjarray.cast()) };
        let instances = match instances {
            Ok(instances) => instances,
            Err(what) => {
                self.world.violation(format!("event sink: {what}"));
                return Err(failure(HResult::WBEM_E_INVALID_PARAMETER));
            }
        };
        let reply = lock(&self.log.replies).pop_front().unwrap_or(HResult::S_OK);
        if reply.is_ok() {
            lock(&self.log.events).extend(instances);
            self.log.arrived.notify_all();
            return Ok(());
        }
        Err(failure(reply))
    }

    fn SetStatus(
        &self,
        _: i32,
        _: HRESULT,
        _: &BSTR,
        _: Ref<'_, IWbemClassObject>,
    ) -> windows_core::Result<()> {
        self.log.statuses.fetch_add(1, Ordering::SeqCst);
        self.world
            .violation("R-WMI-10: SetStatus on an event provider's sink".into());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The benchmarks' baseline: a provider's loop without the framework.

/// A property name as a provider without the framework hands it to `Put`: UTF-16 and
/// NUL-terminated, made once (as a `L"Name"` literal is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawName(Vec<u16>);

impl RawName {
    /// The name `name`.
    pub fn new(name: &str) -> Self {
        Self(winprov_core::ffi::to_wide_nul(name))
    }
}

/// A property value [`RawInstance::put`] hands to `Put`, in the `VARIANT` the framework's
/// conversion makes of the same [`Value`], its string or array made by the same functions (so
/// that a comparison with the framework is of everything else).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum RawValue<'a> {
    /// `string`: a `VT_BSTR`.
    Str(&'a str),
    /// `uint32`: a `VT_I4` of its bits.
    U32(u32),
    /// `string[]`: a `VT_ARRAY | VT_BSTR` (a `SAFEARRAY` of `BSTR`s).
    Strings(&'a [String]),
}

/// One instance of [`Host::raw_enumerate`]'s loop: an object `SpawnInstance` made.
pub struct RawInstance(IWbemClassObject);

impl RawInstance {
    /// `Put(name, 0, value, 0)`: the `VARIANT` is made (its string or array allocated), passed
    /// and cleared, as a provider without the framework does.
    pub fn put(&mut self, name: &RawName, value: RawValue<'_>) -> Result<(), HResult> {
        let mut variant = VARIANT::default();
        {
            // SAFETY: a zeroed VARIANT's tagged form, written whole.
            let inner = unsafe { &mut *variant.Anonymous.Anonymous };
            match value {
                RawValue::Str(text) => {
                    inner.vt = VT_BSTR;
                    inner.Anonymous.bstrVal = std::mem::ManuallyDrop::new(abi::bstr(text));
                }
                RawValue::U32(number) => {
                    inner.vt = VT_I4;
                    inner.Anonymous.lVal = number as i32;
                }
                RawValue::Strings(items) => {
                    inner.Anonymous.parray = abi::string_array(items)?;
                    inner.vt = VARENUM(VT_ARRAY.0 | VT_BSTR.0);
                }
            }
        }
        // SAFETY: a live object, a NUL-terminated name and a valid VARIANT, which Put copies.
        let put = unsafe { self.0.Put(PCWSTR(name.0.as_ptr()), 0, &variant, 0) }.map_err(code);
        // SAFETY: the VARIANT made above, owned here; its payload was allocated as the
        // automation functions expect.
        let _ = unsafe { VariantClear(&mut variant) };
        put
    }
}

impl std::fmt::Debug for RawInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawInstance").finish_non_exhaustive()
    }
}

/// The `HResult` of a failed COM call.
fn code(error: windows_core::Error) -> HResult {
    HResult::from_raw(error.code().0)
}

// ---------------------------------------------------------------------------------------------
// The host.

/// What `Initialize` did: its return value and the init sink's `SetStatus` calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitRecord {
    /// What `Initialize` returned.
    pub returned: HResult,
    /// Each `SetStatus(lStatus, lFlags)` of the init sink, in order.
    pub statuses: Vec<(i32, i32)>,
}

/// The COM objects left alive after [`Host::release`]: both must be 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leftovers {
    /// The provider's objects (its module's count).
    pub provider: usize,
    /// The simulator's objects (namespace, contexts, sinks, class objects).
    pub simulator: usize,
}

/// WMI, driving one provider object: see the [module documentation](self).
pub struct Host<P: Provider> {
    runtime: Arc<Runtime<P>>,
    module: &'static Module,
    world: Arc<World>,
    init: Free<IWbemProviderInit>,
    services: Free<IWbemServices>,
    events: Free<IWbemEventProvider>,
}

impl<P: Provider> Host<P> {
    /// A host serving `provider`: its COM object created and initialized for `root\cimv2`.
    /// Panics if the initialization does not report `WBEM_S_INITIALIZED` exactly once.
    pub fn new(provider: P) -> Self {
        let host = Self::uninitialized(provider);
        let init = host.initialize("root\\cimv2");
        assert_eq!(
            init,
            InitRecord {
                returned: HResult::S_OK,
                statuses: vec![(0, 0)]
            },
            "R-WMI-1: the provider's initialization"
        );
        host
    }

    /// A host whose provider object is created but not yet initialized
    /// ([`initialize`](Self::initialize)).
    pub fn uninitialized(provider: P) -> Self {
        // One module per host, so hosts in one process count apart (a DLL has one static).
        let module: &'static Module = Box::leak(Box::new(Module::new()));
        let runtime = Arc::new(Runtime::new(provider));
        let init = ProviderObject::create(Arc::clone(&runtime), module);
        let services = init
            .cast()
            .expect("the provider object is an IWbemServices");
        let events = init
            .cast()
            .expect("the provider object is an IWbemEventProvider");
        Self {
            runtime,
            module,
            world: Arc::default(),
            init: Free(init),
            services: Free(services),
            events: Free(events),
        }
    }

    /// A host that activates `server`'s class as COM does for WMI: `DllGetClassObject` for its
    /// CLSID, `IClassFactory::CreateInstance` for `IWbemProviderInit`, then `Initialize`
    /// (which must succeed). The objects count in the server's module.
    pub fn activate(server: &'static Server<P>) -> Self {
        let factory = Dll::new(server)
            .get_class_object(server.clsid())
            .expect("DllGetClassObject for the server's CLSID");
        let init = factory
            .create_instance(false)
            .expect("IClassFactory::CreateInstance");
        drop(factory);
        // SAFETY: the server's factory made this object for `P`.
        let runtime = unsafe { ProviderObject::<P>::runtime_of(&init) };
        let services = init
            .cast()
            .expect("the provider object is an IWbemServices");
        let events = init
            .cast()
            .expect("the provider object is an IWbemEventProvider");
        let host = Self {
            runtime,
            module: server.module_static(),
            world: Arc::default(),
            init: Free(init),
            services: Free(services),
            events: Free(events),
        };
        let init = host.initialize("root\\cimv2");
        assert_eq!(
            init.statuses,
            [(0, 0)],
            "R-WMI-1: the provider's initialization"
        );
        host
    }

    /// `IWbemProviderInit::Initialize` for `namespace`, with a namespace object, a context and
    /// an init sink of the simulator's.
    pub fn initialize(&self, namespace: &str) -> InitRecord {
        let statuses = Arc::new(Mutex::new(Vec::new()));
        let sink: IWbemProviderInitSink = SimInitSink {
            statuses: Arc::clone(&statuses),
            _live: Counted::new(&self.world),
        }
        .into();
        let returned = self.initialize_with(namespace, Some(&sink));
        let statuses = lock(&statuses).clone();
        InitRecord { returned, statuses }
    }

    /// `Initialize` with a NULL init sink: what it returns.
    pub fn initialize_without_sink(&self) -> HResult {
        self.initialize_with("root\\cimv2", None)
    }

    fn initialize_with(&self, namespace: &str, sink: Option<&IWbemProviderInitSink>) -> HResult {
        let services: IWbemServices = SimNamespace {
            world: Arc::clone(&self.world),
            _live: Counted::new(&self.world),
        }
        .into();
        let context = self.context();
        let name = winprov_core::ffi::to_wide_nul(namespace);
        let locale = winprov_core::ffi::to_wide_nul("MS_409");
        // SAFETY: NUL-terminated strings and live objects, all alive for the call.
        hresult(unsafe {
            self.init.0.Initialize(
                PCWSTR::null(),
                0,
                PCWSTR(name.as_ptr()),
                PCWSTR(locale.as_ptr()),
                &services,
                &context,
                sink,
            )
        })
    }

    fn context(&self) -> IWbemContext {
        SimContext {
            _live: Counted::new(&self.world),
        }
        .into()
    }

    /// The runtime under test.
    pub fn runtime(&self) -> &Runtime<P> {
        &self.runtime
    }

    /// Waits up to `timeout` until `n` cancellable calls are in flight (each registered under
    /// its sink from before the provider's method runs until after its final status); whether
    /// they were. The barrier of a `CancelAsyncCall` race: a [`cancel`](Self::cancel) of their
    /// sink now reaches every one of them.
    pub fn wait_in_flight(&self, n: usize, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while self.runtime.in_flight() < n {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        }
        true
    }

    /// The provider's module: its live objects and locks.
    pub fn module(&self) -> &'static Module {
        self.module
    }

    /// Declares `class` with its properties' CIM types: its objects then take only values of
    /// those types (`WBEM_E_TYPE_MISMATCH` otherwise) and report them. `__PARAMETERS` (every
    /// method's out-parameters) defaults to `ReturnValue: uint32`.
    pub fn declare(&self, class: &str, properties: &[(&str, Cim)]) {
        let schema = properties
            .iter()
            .map(|(name, cim)| (name.to_string(), cim.raw()))
            .collect();
        lock(&self.world.schemas).insert(class.to_string(), schema);
    }

    /// Declares the typed class `C` as its description says: its properties with their CIM
    /// types (as [`declare`](Self::declare)) and the in- and out-parameters of each of its
    /// methods, which the class's `GetMethod` answers (no in-parameters signature for a method
    /// without any, as WMI's; an undeclared method's is untyped).
    pub fn declare_class<C: WmiClass>(&self) {
        let definition = C::definition();
        let properties = definition
            .properties()
            .iter()
            .map(|property| (property.name().to_string(), cim_type(property.cim())))
            .collect();
        lock(&self.world.schemas).insert(definition.name().to_string(), properties);
        for method in definition.methods() {
            let mut out = vec![("ReturnValue".to_string(), cim_type(method.return_type()))];
            out.extend(
                method
                    .parameters()
                    .iter()
                    .filter(|parameter| parameter.direction() == Direction::Out)
                    .map(|parameter| (parameter.name().to_string(), cim_type(parameter.cim()))),
            );
            let inputs = method
                .parameters()
                .iter()
                .filter(|parameter| parameter.direction() == Direction::In)
                .map(|parameter| (parameter.name().to_string(), cim_type(parameter.cim())))
                .collect();
            let key = format!("{}.{}", definition.name(), method.name()).to_ascii_lowercase();
            lock(&self.world.in_signatures).insert(key.clone(), inputs);
            lock(&self.world.signatures).insert(key, out);
        }
    }

    /// Makes the namespace's `GetObject(path)` answer `instance` (for a provider's dependent
    /// requests).
    pub fn serve_instance(&self, path: &str, instance: Instance) {
        lock(&self.world.instances).insert(path.to_string(), instance);
    }

    /// Every `GetObject` the provider made of the namespace so far.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.world.requests).clone()
    }

    /// A new client sink (a new identity).
    pub fn sink(&self) -> ClientSink {
        let shared: IWbemObjectSink = SharedSink {
            world: Arc::clone(&self.world),
            _live: Counted::new(&self.world),
        }
        .into();
        ClientSink {
            shared: Free(shared),
            fail_with: None,
            hook: None,
            counting: false,
        }
    }

    fn call(
        &self,
        client: &ClientSink,
        flags: CallFlags,
        kind: Kind,
        start: impl FnOnce(&IWbemServices, &IWbemContext, &IWbemObjectSink) -> windows_core::Result<()>,
    ) -> CallRecord {
        let log = Arc::new(CallLog {
            record: Mutex::default(),
            violations: Mutex::default(),
            flags,
            kind,
            client: client.clone(),
            world: Arc::clone(&self.world),
            over: AtomicBool::new(false),
        });
        let context = self.context();
        lock(&log.record).context = identity_of(&context);
        let identity = client
            .shared
            .0
            .cast::<IUnknown>()
            .expect("a sink is an IUnknown");
        let sink = CallSinkObject::create(Arc::clone(&log), identity, &self.world);
        let returned = hresult(start(&self.services.0, &context, &sink));
        let held = refs(&sink);
        if held != 1 {
            log.violation(format!(
                "R-WMI-2: the provider holds {} reference(s) to the call's sink after the call",
                held - 1
            ));
        }
        drop(sink);
        log.returned(returned)
    }

    /// `GetObjectAsync(path)` with `sink`; returns when the call does.
    pub fn get_object(&self, sink: &ClientSink, path: &str, flags: CallFlags) -> CallRecord {
        self.call(sink, flags, Kind::Instance, |services, context, sink| {
            // SAFETY: live objects and a string, alive for the call.
            unsafe {
                services.GetObjectAsync(
                    &BSTR::from(path),
                    WBEM_GENERIC_FLAG_TYPE(flags.bits()),
                    context,
                    sink,
                )
            }
        })
    }

    /// `GetObjectAsync(path)` with a NULL sink: what it returns.
    pub fn get_object_without_sink(&self, path: &str) -> HResult {
        // SAFETY: a live object and a string; the NULL sink is what is tested.
        hresult(unsafe {
            self.services.0.GetObjectAsync(
                &BSTR::from(path),
                WBEM_GENERIC_FLAG_TYPE(0),
                &self.context(),
                None::<&IWbemObjectSink>,
            )
        })
    }

    /// `CreateInstanceEnumAsync(class)`.
    pub fn enumerate(&self, sink: &ClientSink, class: &str, flags: CallFlags) -> CallRecord {
        self.call(sink, flags, Kind::Instance, |services, context, sink| {
            // SAFETY: as for `get_object`.
            unsafe {
                services.CreateInstanceEnumAsync(
                    &BSTR::from(class),
                    WBEM_GENERIC_FLAG_TYPE(flags.bits()),
                    context,
                    sink,
                )
            }
        })
    }

    /// The baseline of the enumeration benchmarks (`benches/wbem.rs`): what a provider written
    /// without the framework does for `CreateInstanceEnumAsync(class)` of `count` instances,
    /// on the simulator's own objects and a call sink of `sink` (as [`enumerate`](Self::enumerate)
    /// makes it; a [counting](ClientSink::counting) one for large counts). No provider object,
    /// runtime or guard is involved: the call's sink is AddRef'd, the class definition fetched
    /// once with `GetObject(class)` through an `IWbemServices` vtable of the simulator's
    /// namespace (with the call's context), then for each instance `SpawnInstance`, `fill` (which
    /// `Put`s the properties, [`RawInstance::put`]) and, every [`BATCH_SIZE`] instances and at
    /// the end, one `Indicate` of the batch, whose objects are then released; the final
    /// `SetStatus` is `S_OK`, or the first error of a COM call or of `fill` (the loop stops
    /// there). The call is recorded and checked as any other.
    pub fn raw_enumerate(
        &self,
        sink: &ClientSink,
        class: &str,
        count: usize,
        mut fill: impl FnMut(usize, &mut RawInstance) -> Result<(), HResult>,
    ) -> CallRecord {
        let namespace: IWbemServices = SimNamespace {
            world: Arc::clone(&self.world),
            _live: Counted::new(&self.world),
        }
        .into();
        self.call(
            sink,
            CallFlags::empty(),
            Kind::Instance,
            |_provider, context, sink| {
                // The provider's own reference to the call's sink, for the call (R-WMI-2).
                let sink = sink.clone();
                let mut run = || -> Result<(), HResult> {
                    let mut definition = None;
                    // SAFETY: a live namespace and context, a string alive for the call; the
                    // out-pointer is a local written once by the callee.
                    unsafe {
                        namespace.GetObject(
                            &BSTR::from(class),
                            WBEM_GENERIC_FLAG_TYPE(0),
                            context,
                            Some(&mut definition),
                            None,
                        )
                    }
                    .map_err(code)?;
                    let definition = definition.ok_or(HResult::WBEM_E_NOT_FOUND)?;
                    let mut batch: Vec<Option<IWbemClassObject>> = Vec::with_capacity(BATCH_SIZE);
                    for index in 0..count {
                        // SAFETY: a live class object.
                        let object = unsafe { definition.SpawnInstance(0) }.map_err(code)?;
                        let mut instance = RawInstance(object);
                        fill(index, &mut instance)?;
                        batch.push(Some(instance.0));
                        if batch.len() == BATCH_SIZE {
                            // SAFETY: a live sink and live objects, borrowed for the call.
                            unsafe { sink.Indicate(&batch) }.map_err(code)?;
                            batch.clear();
                        }
                    }
                    if !batch.is_empty() {
                        // SAFETY: as above.
                        unsafe { sink.Indicate(&batch) }.map_err(code)?;
                    }
                    Ok(())
                };
                let status = run().err().unwrap_or(HResult::S_OK);
                // SAFETY: a live sink; an empty string and no object.
                let _ = unsafe {
                    sink.SetStatus(
                        WBEM_STATUS_COMPLETE,
                        HRESULT(status.raw()),
                        &BSTR::new(),
                        None::<&IWbemClassObject>,
                    )
                };
                Ok(())
            },
        )
    }

    /// How many of the simulator's class objects (`IWbemClassObject`s: class definitions,
    /// instances, parameters) are alive.
    pub fn class_objects_alive(&self) -> usize {
        lock(&self.world.objects).len()
    }

    /// The most class objects alive at once since the host was made or the last
    /// [`reset_class_objects_peak`](Self::reset_class_objects_peak).
    pub fn class_objects_peak(&self) -> usize {
        self.world.objects_peak.load(Ordering::Relaxed)
    }

    /// Starts a new [`class_objects_peak`](Self::class_objects_peak) from the objects alive now.
    pub fn reset_class_objects_peak(&self) {
        let objects = lock(&self.world.objects);
        self.world
            .objects_peak
            .store(objects.len(), Ordering::Relaxed);
    }

    /// `ExecQueryAsync("WQL", query)`.
    pub fn query(&self, sink: &ClientSink, query: &str, flags: CallFlags) -> CallRecord {
        self.call(sink, flags, Kind::Instance, |services, context, sink| {
            // SAFETY: as for `get_object`.
            unsafe {
                services.ExecQueryAsync(
                    &BSTR::from("WQL"),
                    &BSTR::from(query),
                    WBEM_GENERIC_FLAG_TYPE(flags.bits()),
                    context,
                    sink,
                )
            }
        })
    }

    /// `PutInstanceAsync(instance)`, the instance sent as WMI would ([`ClientObject::of`]).
    pub fn put(&self, sink: &ClientSink, instance: Instance, flags: CallFlags) -> CallRecord {
        self.put_object(sink, Some(&ClientObject::of(&instance)), flags)
    }

    /// `PutInstanceAsync` of an object built property by property (`None`: a NULL object).
    pub fn put_object(
        &self,
        sink: &ClientSink,
        object: Option<&ClientObject>,
        flags: CallFlags,
    ) -> CallRecord {
        let object = object.map(|object| self.world.client_object(object));
        self.call(sink, flags, Kind::Instance, |services, context, sink| {
            // SAFETY: as for `get_object`.
            unsafe {
                services.PutInstanceAsync(
                    object.as_ref(),
                    WBEM_GENERIC_FLAG_TYPE(flags.bits()),
                    context,
                    sink,
                )
            }
        })
    }

    /// `DeleteInstanceAsync(path)`.
    pub fn delete(&self, sink: &ClientSink, path: &str, flags: CallFlags) -> CallRecord {
        self.call(sink, flags, Kind::Instance, |services, context, sink| {
            // SAFETY: as for `get_object`.
            unsafe {
                services.DeleteInstanceAsync(
                    &BSTR::from(path),
                    WBEM_GENERIC_FLAG_TYPE(flags.bits()),
                    context,
                    sink,
                )
            }
        })
    }

    /// `ExecMethodAsync(path, method, in_parameters)`.
    pub fn exec_method(
        &self,
        sink: &ClientSink,
        path: &str,
        method: &str,
        in_parameters: Option<&Instance>,
        flags: CallFlags,
    ) -> CallRecord {
        let in_parameters = in_parameters.map(|p| self.world.client_object(&ClientObject::of(p)));
        self.call(sink, flags, Kind::Method, |services, context, sink| {
            // SAFETY: as for `get_object`.
            unsafe {
                services.ExecMethodAsync(
                    &BSTR::from(path),
                    &BSTR::from(method),
                    WBEM_GENERIC_FLAG_TYPE(flags.bits()),
                    context,
                    in_parameters.as_ref(),
                    sink,
                )
            }
        })
    }

    /// `CancelAsyncCall(sink)`: how many calls the cancel won.
    pub fn cancel(&self, sink: &ClientSink) -> usize {
        // SAFETY: a live sink.
        let returned = hresult(unsafe { self.services.0.CancelAsyncCall(&sink.shared.0) });
        assert_eq!(returned, HResult::S_OK, "CancelAsyncCall");
        abi::cancels_won()
    }

    /// `CancelAsyncCall(NULL)`: what it returns.
    pub fn cancel_without_sink(&self) -> HResult {
        // SAFETY: the NULL sink is what is tested.
        hresult(unsafe { self.services.0.CancelAsyncCall(None::<&IWbemObjectSink>) })
    }

    /// `ProvideEvents(events)`: the simulator's reference to the sink is released when this
    /// returns, so the provider's own keeps it alive (R-WMI-10).
    pub fn provide_events(&self, events: &Arc<EventLog>, flags: i32) -> HResult {
        let sink: IWbemObjectSink = EventSinkObject {
            log: Arc::clone(events),
            world: Arc::clone(&self.world),
            _live: Counted::new(&self.world),
        }
        .into();
        // SAFETY: a live sink.
        hresult(unsafe { self.events.0.ProvideEvents(&sink, flags) })
    }

    /// A synchronous or class method of `IWbemServices` (`ExecQuery`, `GetObject`, `PutClass`,
    /// `ExecNotificationQueryAsync`, `QueryObjectSink`, `OpenNamespace`): what each returns, in
    /// that order (R-WMI-6: not capable).
    pub fn unserved_methods(&self) -> [HResult; 6] {
        let services = &self.services.0;
        let context = self.context();
        let (wql, query) = (BSTR::from("WQL"), BSTR::from("SELECT * FROM Entry"));
        let flags = WBEM_GENERIC_FLAG_TYPE(0);
        let object = self.world.object("Entry", false, Vec::new());
        let sink = self.sink();
        // SAFETY: live objects and strings; the out-pointers are locals.
        unsafe {
            [
                services.ExecQuery(&wql, &query, flags, &context).map(drop),
                services.GetObject(&BSTR::from("Entry"), flags, &context, None, None),
                services.PutClass(&object, flags, &context, None),
                services.ExecNotificationQueryAsync(&wql, &query, flags, &context, &sink.shared.0),
                services.QueryObjectSink(flags).map(drop),
                services.OpenNamespace(&BSTR::from("x"), flags, &context, None, None),
            ]
            .map(hresult)
        }
    }

    /// Releases every reference the host holds (the provider object's last, so its provider is
    /// dropped) and returns the objects still alive on each side.
    pub fn release(self) -> Leftovers {
        let Self {
            runtime,
            module,
            world,
            init,
            services,
            events,
        } = self;
        // Client calls still running on threads of the simulator's WMI end first.
        let threads = std::mem::take(&mut *lock(&world.threads));
        for thread in threads {
            thread.join().expect("a client call's thread panicked");
        }
        // The object's reference to the runtime is the last: the provider drops in its Release.
        drop(runtime);
        drop((init, services, events));
        let violations = lock(&world.violations).clone();
        assert!(violations.is_empty(), "{}", violations.join("; "));
        Leftovers {
            provider: module.objects(),
            simulator: world.live.load(Ordering::SeqCst),
        }
    }
}

impl<P: Provider> Host<P> {
    /// WMI serving the object `registration` registered with `registrar` (a decoupled
    /// provider, R-WMI-16): the object WMI was handed, initialized for the registration's
    /// namespace (which must succeed). Panics if `registrar` holds no object, or another one.
    pub fn serving(registrar: &Registrar, registration: &Decoupled<P>) -> Self {
        let held = lock(&registrar.state.object)
            .clone()
            .expect("the registrar holds no registered object")
            .0;
        assert_eq!(
            identity_of(&held),
            identity_of(registration.object()),
            "the registrar holds another object than the registration's"
        );
        let init: IWbemProviderInit = held.cast().expect("the object is an IWbemProviderInit");
        let services = init
            .cast()
            .expect("the provider object is an IWbemServices");
        let events = init
            .cast()
            .expect("the provider object is an IWbemEventProvider");
        let host = Self {
            runtime: Arc::clone(registration.runtime()),
            module: abi::decoupled_module(),
            world: Arc::default(),
            init: Free(init),
            services: Free(services),
            events: Free(events),
        };
        let namespace = lock(&registrar.state.registrations)
            .last()
            .and_then(|r| r.scope.clone())
            .unwrap_or_default();
        let init = host.initialize(&namespace);
        assert_eq!(
            init.statuses,
            [(0, 0)],
            "R-WMI-1: the provider's initialization"
        );
        host
    }
}

/// One `IWbemDecoupledRegistrar::Register` call, as WMI's registrar received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// `a_Flags`.
    pub flags: i32,
    /// Whether `a_Context` was given.
    pub context: bool,
    /// `a_User`.
    pub user: Option<String>,
    /// `a_Locale`.
    pub locale: Option<String>,
    /// `a_Scope`: the namespace.
    pub scope: Option<String>,
    /// `a_Registration`: the provider's name.
    pub name: Option<String>,
    /// Whether the object answered `IWbemProviderInit` and `IWbemServices`.
    pub serves: bool,
}

#[derive(Default)]
struct RegistrarState {
    registrations: Mutex<Vec<Registered>>,
    unregistrations: AtomicUsize,
    object: Mutex<Option<Free<IUnknown>>>,
}

/// WMI's `IWbemDecoupledRegistrar`, as a decoupled provider's process meets it (R-WMI-16):
/// records what `Register` and `UnRegister` are given and holds the registered object from one
/// to the other, as WMI does; [`Host::serving`] then plays WMI against that object.
pub struct Registrar {
    state: Arc<RegistrarState>,
    com: IWbemDecoupledRegistrar,
}

#[implement(IWbemDecoupledRegistrar)]
struct SimRegistrar {
    state: Arc<RegistrarState>,
}

fn optional_text(text: &PCWSTR) -> Option<String> {
    (!text.is_null()).then(|| SimObject::name(text).unwrap_or_default())
}

impl IWbemDecoupledRegistrar_Impl for SimRegistrar_Impl {
    fn Register(
        &self,
        a_flags: i32,
        a_context: Ref<'_, IWbemContext>,
        a_user: &PCWSTR,
        a_locale: &PCWSTR,
        a_scope: &PCWSTR,
        a_registration: &PCWSTR,
        piunknown: Ref<'_, IUnknown>,
    ) -> windows_core::Result<()> {
        let object = piunknown
            .as_ref()
            .cloned()
            .ok_or_else(|| failure(HResult::WBEM_E_INVALID_PARAMETER))?;
        let mut held = lock(&self.state.object);
        if held.is_some() {
            return Err(failure(HResult::WBEM_E_ALREADY_EXISTS));
        }
        let serves =
            object.cast::<IWbemProviderInit>().is_ok() && object.cast::<IWbemServices>().is_ok();
        lock(&self.state.registrations).push(Registered {
            flags: a_flags,
            context: a_context.is_some(),
            user: optional_text(a_user),
            locale: optional_text(a_locale),
            scope: optional_text(a_scope),
            name: optional_text(a_registration),
            serves,
        });
        *held = Some(Free(object));
        Ok(())
    }

    fn UnRegister(&self) -> windows_core::Result<()> {
        self.state.unregistrations.fetch_add(1, Ordering::SeqCst);
        match lock(&self.state.object).take() {
            Some(_released) => Ok(()),
            None => Err(failure(HResult::WBEM_E_NOT_FOUND)),
        }
    }
}

impl Registrar {
    /// A registrar holding nothing.
    pub fn new() -> Self {
        let state = Arc::new(RegistrarState::default());
        let com = SimRegistrar {
            state: Arc::clone(&state),
        }
        .into();
        Self { state, com }
    }

    /// [`Decoupled::register`] with this registrar instead of WMI's.
    pub fn register<P: Provider>(
        &self,
        provider: P,
        namespace: &str,
        name: &str,
    ) -> Result<Decoupled<P>, HResult> {
        Decoupled::register_with(self.com.clone(), provider, namespace, name)
    }

    /// Every `Register` call, in order.
    pub fn registrations(&self) -> Vec<Registered> {
        lock(&self.state.registrations).clone()
    }

    /// How many times `UnRegister` was called.
    pub fn unregistrations(&self) -> usize {
        self.state.unregistrations.load(Ordering::SeqCst)
    }

    /// Whether the registrar holds a registered object (between `Register` and `UnRegister`).
    pub fn holds_object(&self) -> bool {
        lock(&self.state.object).is_some()
    }
}

impl Default for Registrar {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("registrations", &self.registrations())
            .field("unregistrations", &self.unregistrations())
            .finish()
    }
}

impl<P: Provider> std::fmt::Debug for Host<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("runtime", &self.runtime)
            .field("module", &self.module)
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------------------------
// The DLL's exports, as COM calls them.

/// A provider DLL's exports over `server`, called as COM calls them (the bodies
/// [`export_provider!`](crate::export_provider) forwards to).
pub struct Dll<P: Provider> {
    server: &'static Server<P>,
}

impl<P: Provider> Dll<P> {
    /// The exports of `server`.
    pub fn new(server: &'static Server<P>) -> Self {
        Self { server }
    }

    /// `DllGetClassObject(clsid, IID_IClassFactory)`.
    pub fn get_class_object(&self, clsid: GUID) -> Result<Factory, HResult> {
        let mut out = std::ptr::null_mut();
        // SAFETY: GUIDs and an out-pointer on our stack.
        let code = unsafe {
            abi::exports::get_class_object(self.server, &clsid, &IClassFactory::IID, &mut out)
        };
        if code.is_err() {
            assert!(out.is_null(), "a failed DllGetClassObject wrote an object");
            return Err(HResult::from_raw(code.0));
        }
        // SAFETY: a successful call wrote an AddRef'd IClassFactory.
        Ok(Factory(unsafe { IClassFactory::from_raw(out) }))
    }

    /// `DllGetClassObject` with a NULL out-pointer.
    pub fn get_class_object_without_out(&self) -> HResult {
        // SAFETY: the NULL out-pointer is what is tested.
        let code = unsafe {
            abi::exports::get_class_object(
                self.server,
                &self.server.clsid(),
                &IClassFactory::IID,
                std::ptr::null_mut(),
            )
        };
        HResult::from_raw(code.0)
    }

    /// `DllCanUnloadNow`.
    pub fn can_unload_now(&self) -> HResult {
        HResult::from_raw(abi::exports::can_unload_now(self.server).0)
    }

    /// `DllUnregisterServer`.
    pub fn unregister_server(&self) -> HResult {
        HResult::from_raw(abi::exports::unregister_server(self.server).0)
    }
}

impl<P: Provider> std::fmt::Debug for Dll<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dll").field("server", &self.server).finish()
    }
}

/// A class factory `DllGetClassObject` handed out.
pub struct Factory(IClassFactory);

impl Factory {
    /// `CreateInstance(outer, IID_IWbemProviderInit)`; `aggregated` passes an outer object.
    pub fn create_instance(&self, aggregated: bool) -> Result<IWbemProviderInit, HResult> {
        let outer: Option<IUnknown> = aggregated.then(|| self.0.cast().expect("an IUnknown"));
        let mut out = std::ptr::null_mut();
        // SAFETY: a live factory, an IID and an out-pointer on our stack.
        let code = unsafe {
            (self.0.vtable().CreateInstance)(
                self.0.as_raw(),
                outer.as_ref().map_or(std::ptr::null_mut(), |o| o.as_raw()),
                &IWbemProviderInit::IID,
                &mut out,
            )
        };
        if code.is_err() {
            assert!(out.is_null(), "a failed CreateInstance wrote an object");
            return Err(HResult::from_raw(code.0));
        }
        // SAFETY: a successful call wrote an AddRef'd IWbemProviderInit.
        Ok(unsafe { IWbemProviderInit::from_raw(out) })
    }

    /// `LockServer(lock)`.
    pub fn lock_server(&self, lock: bool) -> HResult {
        // SAFETY: a live factory.
        hresult(unsafe { self.0.LockServer(lock) })
    }
}

impl std::fmt::Debug for Factory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factory").finish_non_exhaustive()
    }
}
