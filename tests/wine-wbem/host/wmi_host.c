/*
 * WMI host harness: plays WMI (wmiprvse) against a real in-proc WMI provider DLL (the
 * directory-admin sample, directory_admin.dll) through COM, on real threads, under Wine.
 *
 * The ABI is taken from mingw-w64's wbemcli.h / wbemprov.h / objbase.h, a source independent of
 * the Rust bindings: the DLL's exports are called through pointers of type
 * __typeof__(&DllGetClassObject) etc.; the provider is reached through the IWbemProviderInit,
 * IWbemServices and IWbemEventProvider vtables those headers declare; and WMI's side -- the
 * namespace (IWbemServices), class objects and instances (IWbemClassObject), the init sink
 * (IWbemProviderInitSink) and the response and event sinks (IWbemObjectSink) -- is implemented
 * here, in C, against the same vtables. Wine's own wbemprox holds no values and has no IWbem*
 * proxies, so everything stays in-proc, in the MTA (CoInitializeEx on every thread).
 * ole32 and oleaut32 are loaded with LoadLibrary and their functions typed by their prototypes.
 *
 * The provider serves the directory file named by EMAIL_DIRECTORY_FILE, which the harness
 * writes into the temporary directory; DIRECTORY_ADMIN_POLL_MS makes its event thread quick and
 * DIRECTORY_ADMIN_PANIC_ON names a method that panics (the panic-boundary check).
 *
 * Prints `ok N - ...` / `not ok N - ...` per check, then "N passed, M failed" and
 * "wmi_host: N/N checks passed"; exits non-zero on any failure.
 * Usage: wmi_host.exe <provider.dll>.
 *
 * Built and run by `cargo xtask test` (x86_64-w64-mingw32-gcc, then wine, cwd = target/wine/bin).
 */
#define COBJMACROS
#include <initguid.h>
#include <windows.h>
#include <objbase.h>
#include <olectl.h>
#include <oleauto.h>
#include <wbemcli.h>
#include <wbemprov.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* The provider's identity (samples/directory-admin/src/identity.rs). */
static const CLSID CLSID_Provider = {
    0x715d6d12, 0x24e0, 0x4836, {0xb6, 0xf6, 0x0f, 0xba, 0x71, 0xb0, 0x4a, 0x73}};
#define CLSID_TEXT L"{715D6D12-24E0-4836-B6F6-0FBA71B04A73}"
#define ENTRY_CLASS L"Winprov_DirectoryEntry"
#define EVENT_CLASS L"Winprov_DirectoryChanged"
#define ENTRIES 300

/* WBEMSTATUS is an unsigned enum: compare codes as the HRESULTs they are. */
#define ST(code) ((HRESULT)(code))
#define WAIT_MS 10000

/* ------------------------------------------------------------------------------------------- */
/* Checks and output.                                                                          */

static int passed, failed, numbered;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        int ok_ = (cond) ? 1 : 0;                                                                  \
        numbered++;                                                                                \
        if (ok_) {                                                                                 \
            passed++;                                                                              \
            printf("ok %d - ", numbered);                                                          \
        } else {                                                                                   \
            failed++;                                                                              \
            printf("not ok %d - ", numbered);                                                      \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        if (!ok_)                                                                                  \
            printf("  [failed: %s, line %d]", #cond, __LINE__);                                    \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
    } while (0)

#define NOTE(...)                                                                                  \
    do {                                                                                           \
        printf("# ");                                                                              \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
    } while (0)

static int finish(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    printf("wmi_host: %d/%d checks passed\n", passed, passed + failed);
    fflush(stdout);
    return failed ? 1 : 0;
}

static void bail(const char *why)
{
    failed++;
    printf("not ok %d - %s (bailing out)\n", ++numbered, why);
    finish();
    ExitProcess(2);
}

/* ------------------------------------------------------------------------------------------- */
/* The DLL's exports and the COM runtime, typed by mingw-w64's prototypes.                     */

#define DLL_EXPORTS(X)                                                                             \
    X(DllGetClassObject)                                                                           \
    X(DllCanUnloadNow)                                                                             \
    X(DllRegisterServer)                                                                           \
    X(DllUnregisterServer)

#define OLE32(X)                                                                                   \
    X(CoInitializeEx)                                                                              \
    X(CoUninitialize)                                                                              \
    X(CoCreateInstance)

#define OLEAUT32(X)                                                                                \
    X(SysAllocString)                                                                              \
    X(SysFreeString)                                                                               \
    X(VariantInit)                                                                                 \
    X(VariantClear)                                                                                \
    X(VariantCopy)                                                                                 \
    X(SafeArrayCreateVector)                                                                       \
    X(SafeArrayPutElement)                                                                         \
    X(SafeArrayGetElement)                                                                         \
    X(SafeArrayGetLBound)                                                                          \
    X(SafeArrayGetUBound)

#define DECLARE_POINTER(name) static __typeof__(&name) p_##name;
DLL_EXPORTS(DECLARE_POINTER)
OLE32(DECLARE_POINTER)
OLEAUT32(DECLARE_POINTER)

static int resolve_from(HMODULE module, const char *module_name, const char *name, FARPROC *out)
{
    *out = module ? GetProcAddress(module, name) : NULL;
    if (!*out)
        NOTE("missing %s!%s", module_name, name);
    return *out != NULL;
}

#define RESOLVE(module, module_name, name)                                                         \
    do {                                                                                           \
        FARPROC f_;                                                                                \
        resolved &= resolve_from(module, module_name, #name, &f_);                                 \
        p_##name = (__typeof__(&name))(void (*)(void))f_;                                          \
    } while (0)

/* ------------------------------------------------------------------------------------------- */
/* WMI's class objects: a class definition or an instance, as a property bag.                  */

#define MAX_PROPS 8

typedef struct {
    const WCHAR *name;
    CIMTYPE type;
} prop_def_t;

typedef struct {
    const WCHAR *name;
    const prop_def_t *props;
    int prop_count;
} class_def_t;

static const prop_def_t entry_props[] = {
    {L"Name", CIM_STRING},
    {L"Addresses", CIM_STRING | CIM_FLAG_ARRAY},
    {L"Comment", CIM_STRING},
    {L"Data", CIM_STRING},
};
static const prop_def_t event_props[] = {{L"Entries", CIM_UINT32}};
static const prop_def_t count_out_props[] = {{L"ReturnValue", CIM_UINT32}};
static const class_def_t entry_class = {ENTRY_CLASS, entry_props, 4};
static const class_def_t event_class = {EVENT_CLASS, event_props, 1};
static const class_def_t count_out_class = {L"__PARAMETERS", count_out_props, 1};

typedef struct {
    IWbemClassObject iface;
    LONG refs;
    const class_def_t *def;
    int is_instance;
    VARIANT values[MAX_PROPS];
    int cursor; /* BeginEnumeration/Next; -1 when not enumerating */
} object_t;

static volatile LONG live_objects;

static object_t *impl_object(IWbemClassObject *iface) { return (object_t *)iface; }

static int prop_index(const class_def_t *def, LPCWSTR name)
{
    for (int i = 0; i < def->prop_count; i++)
        if (name && _wcsicmp(def->props[i].name, name) == 0)
            return i;
    return -1;
}

static IWbemClassObject *new_object(const class_def_t *def, int is_instance);

static HRESULT STDMETHODCALLTYPE obj_QueryInterface(IWbemClassObject *This, REFIID riid, void **out)
{
    if (!out)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IWbemClassObject)) {
        *out = This;
        IWbemClassObject_AddRef(This);
        return S_OK;
    }
    *out = NULL;
    return E_NOINTERFACE;
}
static ULONG STDMETHODCALLTYPE obj_AddRef(IWbemClassObject *This)
{
    return InterlockedIncrement(&impl_object(This)->refs);
}
static ULONG STDMETHODCALLTYPE obj_Release(IWbemClassObject *This)
{
    object_t *o = impl_object(This);
    LONG left = InterlockedDecrement(&o->refs);
    if (left == 0) {
        for (int i = 0; i < o->def->prop_count; i++)
            p_VariantClear(&o->values[i]);
        free(o);
        InterlockedDecrement(&live_objects);
    }
    return left;
}
static HRESULT STDMETHODCALLTYPE obj_GetQualifierSet(IWbemClassObject *This, IWbemQualifierSet **q)
{
    (void)This;
    (void)q;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_Get(IWbemClassObject *This, LPCWSTR name, LONG flags,
                                         VARIANT *value, CIMTYPE *type, LONG *flavor)
{
    object_t *o = impl_object(This);
    (void)flags;
    if (!name)
        return WBEM_E_INVALID_PARAMETER;
    if (flavor)
        *flavor = 0;
    if (_wcsicmp(name, L"__CLASS") == 0) {
        if (type)
            *type = CIM_STRING;
        if (value) {
            p_VariantInit(value);
            V_VT(value) = VT_BSTR;
            V_BSTR(value) = p_SysAllocString(o->def->name);
        }
        return WBEM_S_NO_ERROR;
    }
    int i = prop_index(o->def, name);
    if (i < 0)
        return WBEM_E_NOT_FOUND;
    if (type)
        *type = o->def->props[i].type;
    if (value) {
        p_VariantInit(value);
        return p_VariantCopy(value, &o->values[i]);
    }
    return WBEM_S_NO_ERROR;
}

/* What WMI accepts for a property of CIM type `type` (the VARIANT conventions of IWbemClassObject::Put). */
static int variant_fits(CIMTYPE type, VARTYPE vt)
{
    if (vt == VT_NULL || vt == VT_EMPTY)
        return 1;
    switch (type) {
    case CIM_STRING:
        return vt == VT_BSTR;
    case CIM_STRING | CIM_FLAG_ARRAY:
        return vt == (VT_ARRAY | VT_BSTR);
    case CIM_UINT32:
    case CIM_SINT32:
        return vt == VT_I4;
    case CIM_BOOLEAN:
        return vt == VT_BOOL;
    case CIM_UINT64:
    case CIM_SINT64:
        return vt == VT_BSTR;
    default:
        return 0;
    }
}

static volatile LONG put_type_mismatches;

static HRESULT STDMETHODCALLTYPE obj_Put(IWbemClassObject *This, LPCWSTR name, LONG flags,
                                         VARIANT *value, CIMTYPE type)
{
    object_t *o = impl_object(This);
    (void)flags;
    (void)type;
    int i = prop_index(o->def, name);
    if (i < 0)
        return WBEM_E_NOT_FOUND;
    if (value && !variant_fits(o->def->props[i].type, V_VT(value))) {
        InterlockedIncrement(&put_type_mismatches);
        return WBEM_E_TYPE_MISMATCH;
    }
    p_VariantClear(&o->values[i]);
    if (value)
        return p_VariantCopy(&o->values[i], value);
    V_VT(&o->values[i]) = VT_NULL;
    return WBEM_S_NO_ERROR;
}
static HRESULT STDMETHODCALLTYPE obj_Delete(IWbemClassObject *This, LPCWSTR name)
{
    (void)This;
    (void)name;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_GetNames(IWbemClassObject *This, LPCWSTR qualifier, LONG flags,
                                              VARIANT *qualifier_value, SAFEARRAY **names)
{
    object_t *o = impl_object(This);
    (void)qualifier;
    (void)flags;
    (void)qualifier_value;
    if (!names)
        return WBEM_E_INVALID_PARAMETER;
    SAFEARRAY *array = p_SafeArrayCreateVector(VT_BSTR, 0, (ULONG)o->def->prop_count);
    for (LONG i = 0; i < o->def->prop_count; i++) {
        BSTR name = p_SysAllocString(o->def->props[i].name);
        p_SafeArrayPutElement(array, &i, name);
        p_SysFreeString(name);
    }
    *names = array;
    return WBEM_S_NO_ERROR;
}
static HRESULT STDMETHODCALLTYPE obj_BeginEnumeration(IWbemClassObject *This, LONG flags)
{
    (void)flags;
    impl_object(This)->cursor = 0;
    return WBEM_S_NO_ERROR;
}
static HRESULT STDMETHODCALLTYPE obj_Next(IWbemClassObject *This, LONG flags, BSTR *name,
                                          VARIANT *value, CIMTYPE *type, LONG *flavor)
{
    object_t *o = impl_object(This);
    (void)flags;
    if (o->cursor < 0)
        return WBEM_E_UNEXPECTED;
    if (o->cursor >= o->def->prop_count)
        return WBEM_S_NO_MORE_DATA;
    int i = o->cursor++;
    if (name)
        *name = p_SysAllocString(o->def->props[i].name);
    if (type)
        *type = o->def->props[i].type;
    if (flavor)
        *flavor = 0;
    if (value) {
        p_VariantInit(value);
        return p_VariantCopy(value, &o->values[i]);
    }
    return WBEM_S_NO_ERROR;
}
static HRESULT STDMETHODCALLTYPE obj_EndEnumeration(IWbemClassObject *This)
{
    impl_object(This)->cursor = -1;
    return WBEM_S_NO_ERROR;
}
static HRESULT STDMETHODCALLTYPE obj_GetPropertyQualifierSet(IWbemClassObject *This, LPCWSTR p,
                                                             IWbemQualifierSet **q)
{
    (void)This;
    (void)p;
    (void)q;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_Clone(IWbemClassObject *This, IWbemClassObject **copy)
{
    object_t *o = impl_object(This);
    if (!copy)
        return WBEM_E_INVALID_PARAMETER;
    IWbemClassObject *c = new_object(o->def, o->is_instance);
    for (int i = 0; i < o->def->prop_count; i++)
        p_VariantCopy(&impl_object(c)->values[i], &o->values[i]);
    *copy = c;
    return WBEM_S_NO_ERROR;
}
static HRESULT STDMETHODCALLTYPE obj_GetObjectText(IWbemClassObject *This, LONG f, BSTR *t)
{
    (void)This;
    (void)f;
    (void)t;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_SpawnDerivedClass(IWbemClassObject *This, LONG f,
                                                       IWbemClassObject **c)
{
    (void)This;
    (void)f;
    (void)c;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_SpawnInstance(IWbemClassObject *This, LONG flags,
                                                   IWbemClassObject **instance)
{
    object_t *o = impl_object(This);
    (void)flags;
    if (!instance)
        return WBEM_E_INVALID_PARAMETER;
    if (o->is_instance)
        return WBEM_E_INVALID_OPERATION;
    *instance = new_object(o->def, 1);
    return WBEM_S_NO_ERROR;
}
static HRESULT STDMETHODCALLTYPE obj_CompareTo(IWbemClassObject *This, LONG f, IWbemClassObject *c)
{
    (void)This;
    (void)f;
    (void)c;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_GetPropertyOrigin(IWbemClassObject *This, LPCWSTR n, BSTR *c)
{
    (void)This;
    (void)n;
    (void)c;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_InheritsFrom(IWbemClassObject *This, LPCWSTR a)
{
    (void)This;
    (void)a;
    return WBEM_S_FALSE;
}
static HRESULT STDMETHODCALLTYPE obj_GetMethod(IWbemClassObject *This, LPCWSTR name, LONG flags,
                                               IWbemClassObject **in_signature,
                                               IWbemClassObject **out_signature)
{
    object_t *o = impl_object(This);
    (void)flags;
    if (o->def != &entry_class || !name || _wcsicmp(name, L"Count") != 0)
        return WBEM_E_NOT_FOUND;
    if (in_signature)
        *in_signature = NULL; /* Count() has no in-parameters */
    if (out_signature)
        *out_signature = new_object(&count_out_class, 0);
    return WBEM_S_NO_ERROR;
}
static HRESULT STDMETHODCALLTYPE obj_PutMethod(IWbemClassObject *This, LPCWSTR n, LONG f,
                                               IWbemClassObject *i, IWbemClassObject *o)
{
    (void)This;
    (void)n;
    (void)f;
    (void)i;
    (void)o;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_DeleteMethod(IWbemClassObject *This, LPCWSTR n)
{
    (void)This;
    (void)n;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_BeginMethodEnumeration(IWbemClassObject *This, LONG f)
{
    (void)This;
    (void)f;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_NextMethod(IWbemClassObject *This, LONG f, BSTR *n,
                                                IWbemClassObject **i, IWbemClassObject **o)
{
    (void)This;
    (void)f;
    (void)n;
    (void)i;
    (void)o;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_EndMethodEnumeration(IWbemClassObject *This)
{
    (void)This;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_GetMethodQualifierSet(IWbemClassObject *This, LPCWSTR m,
                                                           IWbemQualifierSet **q)
{
    (void)This;
    (void)m;
    (void)q;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE obj_GetMethodOrigin(IWbemClassObject *This, LPCWSTR m, BSTR *c)
{
    (void)This;
    (void)m;
    (void)c;
    return WBEM_E_NOT_SUPPORTED;
}

static const IWbemClassObjectVtbl object_vtbl = {
    obj_QueryInterface,       obj_AddRef,
    obj_Release,              obj_GetQualifierSet,
    obj_Get,                  obj_Put,
    obj_Delete,               obj_GetNames,
    obj_BeginEnumeration,     obj_Next,
    obj_EndEnumeration,       obj_GetPropertyQualifierSet,
    obj_Clone,                obj_GetObjectText,
    obj_SpawnDerivedClass,    obj_SpawnInstance,
    obj_CompareTo,            obj_GetPropertyOrigin,
    obj_InheritsFrom,         obj_GetMethod,
    obj_PutMethod,            obj_DeleteMethod,
    obj_BeginMethodEnumeration, obj_NextMethod,
    obj_EndMethodEnumeration, obj_GetMethodQualifierSet,
    obj_GetMethodOrigin,
};

static IWbemClassObject *new_object(const class_def_t *def, int is_instance)
{
    object_t *o = calloc(1, sizeof *o);
    if (!o)
        bail("out of memory");
    o->iface.lpVtbl = (IWbemClassObjectVtbl *)&object_vtbl;
    o->refs = 1;
    o->def = def;
    o->is_instance = is_instance;
    o->cursor = -1;
    for (int i = 0; i < MAX_PROPS; i++) {
        p_VariantInit(&o->values[i]);
        V_VT(&o->values[i]) = VT_NULL;
    }
    InterlockedIncrement(&live_objects);
    return &o->iface;
}

/* The BSTR value of a string property of `object` (a static buffer's copy), "" if absent. */
static void get_string(IWbemClassObject *object, LPCWSTR name, WCHAR *out, size_t size)
{
    VARIANT v;
    out[0] = 0;
    if (SUCCEEDED(IWbemClassObject_Get(object, name, 0, &v, NULL, NULL))) {
        if (V_VT(&v) == VT_BSTR && V_BSTR(&v))
            wcsncpy(out, V_BSTR(&v), size - 1), out[size - 1] = 0;
        p_VariantClear(&v);
    }
}

static LONG get_i4(IWbemClassObject *object, LPCWSTR name, VARTYPE *vt)
{
    VARIANT v;
    LONG result = -1;
    *vt = VT_EMPTY;
    if (SUCCEEDED(IWbemClassObject_Get(object, name, 0, &v, NULL, NULL))) {
        *vt = V_VT(&v);
        if (V_VT(&v) == VT_I4)
            result = V_I4(&v);
        p_VariantClear(&v);
    }
    return result;
}

/* ------------------------------------------------------------------------------------------- */
/* A call context (IWbemContext): only its identity matters to the checks.                     */

typedef struct {
    IWbemContext iface;
    LONG refs;
} context_t;

static volatile LONG live_contexts;

static HRESULT STDMETHODCALLTYPE ctx_QueryInterface(IWbemContext *This, REFIID riid, void **out)
{
    if (!out)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IWbemContext)) {
        *out = This;
        IWbemContext_AddRef(This);
        return S_OK;
    }
    *out = NULL;
    return E_NOINTERFACE;
}
static ULONG STDMETHODCALLTYPE ctx_AddRef(IWbemContext *This)
{
    return InterlockedIncrement(&((context_t *)This)->refs);
}
static ULONG STDMETHODCALLTYPE ctx_Release(IWbemContext *This)
{
    LONG left = InterlockedDecrement(&((context_t *)This)->refs);
    if (left == 0) {
        free(This);
        InterlockedDecrement(&live_contexts);
    }
    return left;
}
static HRESULT STDMETHODCALLTYPE ctx_Clone(IWbemContext *This, IWbemContext **c)
{
    (void)This;
    (void)c;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE ctx_GetNames(IWbemContext *This, LONG f, SAFEARRAY **n)
{
    (void)This;
    (void)f;
    (void)n;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE ctx_BeginEnumeration(IWbemContext *This, LONG f)
{
    (void)This;
    (void)f;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE ctx_Next(IWbemContext *This, LONG f, BSTR *n, VARIANT *v)
{
    (void)This;
    (void)f;
    (void)n;
    (void)v;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE ctx_EndEnumeration(IWbemContext *This)
{
    (void)This;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE ctx_SetValue(IWbemContext *This, LPCWSTR n, LONG f, VARIANT *v)
{
    (void)This;
    (void)n;
    (void)f;
    (void)v;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE ctx_GetValue(IWbemContext *This, LPCWSTR n, LONG f, VARIANT *v)
{
    (void)This;
    (void)n;
    (void)f;
    (void)v;
    return WBEM_E_NOT_FOUND;
}
static HRESULT STDMETHODCALLTYPE ctx_DeleteValue(IWbemContext *This, LPCWSTR n, LONG f)
{
    (void)This;
    (void)n;
    (void)f;
    return WBEM_E_NOT_SUPPORTED;
}
static HRESULT STDMETHODCALLTYPE ctx_DeleteAll(IWbemContext *This)
{
    (void)This;
    return WBEM_E_NOT_SUPPORTED;
}
static const IWbemContextVtbl context_vtbl = {
    ctx_QueryInterface, ctx_AddRef,       ctx_Release,     ctx_Clone,
    ctx_GetNames,       ctx_BeginEnumeration, ctx_Next,    ctx_EndEnumeration,
    ctx_SetValue,       ctx_GetValue,     ctx_DeleteValue, ctx_DeleteAll,
};

static IWbemContext *new_context(void)
{
    context_t *c = calloc(1, sizeof *c);
    if (!c)
        bail("out of memory");
    c->iface.lpVtbl = (IWbemContextVtbl *)&context_vtbl;
    c->refs = 1;
    InterlockedIncrement(&live_contexts);
    return &c->iface;
}

/* ------------------------------------------------------------------------------------------- */
/* The namespace WMI gives the provider (IWbemServices): GetObject of the provider's classes;  */
/* everything else is not supported. It records the context of each GetObject.                 */

typedef struct {
    IWbemServices iface;
    LONG refs;
} namespace_t;

#define MAX_SEEN_CONTEXTS 64
static IWbemContext *volatile seen_contexts[MAX_SEEN_CONTEXTS];
static volatile LONG seen_context_count;
static volatile LONG get_object_calls;

static HRESULT STDMETHODCALLTYPE ns_QueryInterface(IWbemServices *This, REFIID riid, void **out)
{
    if (!out)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IWbemServices)) {
        *out = This;
        IWbemServices_AddRef(This);
        return S_OK;
    }
    *out = NULL;
    return E_NOINTERFACE;
}
static ULONG STDMETHODCALLTYPE ns_AddRef(IWbemServices *This)
{
    return InterlockedIncrement(&((namespace_t *)This)->refs);
}
static ULONG STDMETHODCALLTYPE ns_Release(IWbemServices *This)
{
    return InterlockedDecrement(&((namespace_t *)This)->refs);
}
static HRESULT STDMETHODCALLTYPE ns_GetObject(IWbemServices *This, const BSTR path, LONG flags,
                                              IWbemContext *ctx, IWbemClassObject **object,
                                              IWbemCallResult **result)
{
    (void)This;
    (void)flags;
    InterlockedIncrement(&get_object_calls);
    LONG n = InterlockedIncrement(&seen_context_count) - 1;
    if (n < MAX_SEEN_CONTEXTS)
        seen_contexts[n] = ctx;
    if (result)
        *result = NULL;
    if (!object || !path)
        return WBEM_E_INVALID_PARAMETER;
    const class_def_t *def = NULL;
    if (_wcsicmp(path, ENTRY_CLASS) == 0)
        def = &entry_class;
    else if (_wcsicmp(path, EVENT_CLASS) == 0)
        def = &event_class;
    if (!def)
        return WBEM_E_NOT_FOUND; /* as WMI answers for __PARAMETERS' properties: use GetMethod */
    *object = new_object(def, 0);
    return WBEM_S_NO_ERROR;
}

/* Every other slot, with its own prototype. */
#define NS_UNSUPPORTED(name, ...)                                                                  \
    static HRESULT STDMETHODCALLTYPE ns_##name(IWbemServices *This, __VA_ARGS__)                   \
    {                                                                                              \
        (void)This;                                                                                \
        return WBEM_E_NOT_SUPPORTED;                                                               \
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
NS_UNSUPPORTED(OpenNamespace, const BSTR a, LONG b, IWbemContext *c, IWbemServices **d,
               IWbemCallResult **e)
NS_UNSUPPORTED(CancelAsyncCall, IWbemObjectSink *a)
NS_UNSUPPORTED(QueryObjectSink, LONG a, IWbemObjectSink **b)
NS_UNSUPPORTED(GetObjectAsync, const BSTR a, LONG b, IWbemContext *c, IWbemObjectSink *d)
NS_UNSUPPORTED(PutClass, IWbemClassObject *a, LONG b, IWbemContext *c, IWbemCallResult **d)
NS_UNSUPPORTED(PutClassAsync, IWbemClassObject *a, LONG b, IWbemContext *c, IWbemObjectSink *d)
NS_UNSUPPORTED(DeleteClass, const BSTR a, LONG b, IWbemContext *c, IWbemCallResult **d)
NS_UNSUPPORTED(DeleteClassAsync, const BSTR a, LONG b, IWbemContext *c, IWbemObjectSink *d)
NS_UNSUPPORTED(CreateClassEnum, const BSTR a, LONG b, IWbemContext *c, IEnumWbemClassObject **d)
NS_UNSUPPORTED(CreateClassEnumAsync, const BSTR a, LONG b, IWbemContext *c, IWbemObjectSink *d)
NS_UNSUPPORTED(PutInstance, IWbemClassObject *a, LONG b, IWbemContext *c, IWbemCallResult **d)
NS_UNSUPPORTED(PutInstanceAsync, IWbemClassObject *a, LONG b, IWbemContext *c,
               IWbemObjectSink *d)
NS_UNSUPPORTED(DeleteInstance, const BSTR a, LONG b, IWbemContext *c, IWbemCallResult **d)
NS_UNSUPPORTED(DeleteInstanceAsync, const BSTR a, LONG b, IWbemContext *c, IWbemObjectSink *d)
NS_UNSUPPORTED(CreateInstanceEnum, const BSTR a, LONG b, IWbemContext *c,
               IEnumWbemClassObject **d)
NS_UNSUPPORTED(CreateInstanceEnumAsync, const BSTR a, LONG b, IWbemContext *c,
               IWbemObjectSink *d)
NS_UNSUPPORTED(ExecQuery, const BSTR a, const BSTR b, LONG c, IWbemContext *d,
               IEnumWbemClassObject **e)
NS_UNSUPPORTED(ExecQueryAsync, const BSTR a, const BSTR b, LONG c, IWbemContext *d,
               IWbemObjectSink *e)
NS_UNSUPPORTED(ExecNotificationQuery, const BSTR a, const BSTR b, LONG c, IWbemContext *d,
               IEnumWbemClassObject **e)
NS_UNSUPPORTED(ExecNotificationQueryAsync, const BSTR a, const BSTR b, LONG c, IWbemContext *d,
               IWbemObjectSink *e)
NS_UNSUPPORTED(ExecMethod, const BSTR a, const BSTR b, LONG c, IWbemContext *d,
               IWbemClassObject *e, IWbemClassObject **f, IWbemCallResult **g)
NS_UNSUPPORTED(ExecMethodAsync, const BSTR a, const BSTR b, LONG c, IWbemContext *d,
               IWbemClassObject *e, IWbemObjectSink *f)
#pragma GCC diagnostic pop

static const IWbemServicesVtbl namespace_vtbl = {
    ns_QueryInterface,         ns_AddRef,
    ns_Release,                ns_OpenNamespace,
    ns_CancelAsyncCall,        ns_QueryObjectSink,
    ns_GetObject,              ns_GetObjectAsync,
    ns_PutClass,               ns_PutClassAsync,
    ns_DeleteClass,            ns_DeleteClassAsync,
    ns_CreateClassEnum,        ns_CreateClassEnumAsync,
    ns_PutInstance,            ns_PutInstanceAsync,
    ns_DeleteInstance,         ns_DeleteInstanceAsync,
    ns_CreateInstanceEnum,     ns_CreateInstanceEnumAsync,
    ns_ExecQuery,              ns_ExecQueryAsync,
    ns_ExecNotificationQuery,  ns_ExecNotificationQueryAsync,
    ns_ExecMethod,             ns_ExecMethodAsync,
};

static namespace_t the_namespace = {{(IWbemServicesVtbl *)&namespace_vtbl}, 1};

/* ------------------------------------------------------------------------------------------- */
/* The init sink (IWbemProviderInitSink).                                                      */

typedef struct {
    IWbemProviderInitSink iface;
    LONG refs;
    volatile LONG calls;
    LONG status;
    LONG flags;
} init_sink_t;

static HRESULT STDMETHODCALLTYPE init_QueryInterface(IWbemProviderInitSink *This, REFIID riid,
                                                     void **out)
{
    if (!out)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IWbemProviderInitSink)) {
        *out = This;
        IWbemProviderInitSink_AddRef(This);
        return S_OK;
    }
    *out = NULL;
    return E_NOINTERFACE;
}
static ULONG STDMETHODCALLTYPE init_AddRef(IWbemProviderInitSink *This)
{
    return InterlockedIncrement(&((init_sink_t *)This)->refs);
}
static ULONG STDMETHODCALLTYPE init_Release(IWbemProviderInitSink *This)
{
    return InterlockedDecrement(&((init_sink_t *)This)->refs);
}
static HRESULT STDMETHODCALLTYPE init_SetStatus(IWbemProviderInitSink *This, LONG status,
                                                LONG flags)
{
    init_sink_t *s = (init_sink_t *)This;
    s->status = status;
    s->flags = flags;
    InterlockedIncrement(&s->calls);
    return WBEM_S_NO_ERROR;
}
static const IWbemProviderInitSinkVtbl init_sink_vtbl = {
    init_QueryInterface, init_AddRef, init_Release, init_SetStatus};

/* ------------------------------------------------------------------------------------------- */
/* A client's response sink (IWbemObjectSink), shared by any number of calls: it counts what   */
/* reaches it, checks the order (nothing after a call's final status is only checkable per    */
/* sink, so the tests give each check's calls a sink of their own), and can hold the first     */
/* Indicates until released (a cancel then arrives while they are with the client).           */

#define MAX_NAMES (ENTRIES + 16)

typedef struct {
    IWbemObjectSink iface;
    LONG refs;
    CRITICAL_SECTION lock;
    int objects;
    int indicates;
    int finals;
    int progress;
    HRESULT last_status;
    WCHAR last_param[256];
    int param_was_null;
    int indicate_after_final;
    LONG out_return_value;
    VARTYPE out_return_vt;
    LONG last_entries;
    int cancelled_finals;
    WCHAR names[MAX_NAMES][64];
    int name_count;
    /* Holding: the first `hold` Indicates wait for `release`; `held` counts them. */
    LONG hold;
    volatile LONG held;
    HANDLE release;
    HRESULT answer; /* what Indicate and SetStatus return */
} sink_t;

static HRESULT STDMETHODCALLTYPE sink_QueryInterface(IWbemObjectSink *This, REFIID riid, void **out)
{
    if (!out)
        return E_POINTER;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IWbemObjectSink)) {
        *out = This;
        IWbemObjectSink_AddRef(This);
        return S_OK;
    }
    *out = NULL;
    return E_NOINTERFACE;
}
static ULONG STDMETHODCALLTYPE sink_AddRef(IWbemObjectSink *This)
{
    return InterlockedIncrement(&((sink_t *)This)->refs);
}
static ULONG STDMETHODCALLTYPE sink_Release(IWbemObjectSink *This)
{
    return InterlockedDecrement(&((sink_t *)This)->refs);
}
static HRESULT STDMETHODCALLTYPE sink_Indicate(IWbemObjectSink *This, LONG count,
                                               IWbemClassObject **objects)
{
    sink_t *s = (sink_t *)This;
    if (s->hold > 0 && InterlockedIncrement(&s->held) <= s->hold)
        WaitForSingleObject(s->release, WAIT_MS);
    EnterCriticalSection(&s->lock);
    if (s->finals > 0)
        s->indicate_after_final++;
    s->indicates++;
    for (LONG i = 0; i < count && objects; i++) {
        s->objects++;
        if (s->name_count < MAX_NAMES)
            get_string(objects[i], L"Name", s->names[s->name_count++], 64);
        VARTYPE vt;
        LONG value = get_i4(objects[i], L"ReturnValue", &vt);
        if (vt != VT_EMPTY) {
            s->out_return_value = value;
            s->out_return_vt = vt;
        }
        value = get_i4(objects[i], L"Entries", &vt);
        if (vt == VT_I4)
            s->last_entries = value;
    }
    LeaveCriticalSection(&s->lock);
    return s->answer;
}
static HRESULT STDMETHODCALLTYPE sink_SetStatus(IWbemObjectSink *This, LONG flags, HRESULT hr,
                                                BSTR param, IWbemClassObject *object)
{
    sink_t *s = (sink_t *)This;
    (void)object;
    EnterCriticalSection(&s->lock);
    if (flags == WBEM_STATUS_PROGRESS) {
        s->progress++;
    } else {
        s->finals++;
        s->last_status = hr;
        if (hr == ST(WBEM_E_CALL_CANCELLED))
            s->cancelled_finals++;
        s->param_was_null = param == NULL;
        s->last_param[0] = 0;
        if (param)
            wcsncpy(s->last_param, param, 255), s->last_param[255] = 0;
    }
    LeaveCriticalSection(&s->lock);
    return s->answer;
}
static const IWbemObjectSinkVtbl sink_vtbl = {sink_QueryInterface, sink_AddRef, sink_Release,
                                              sink_Indicate, sink_SetStatus};

static void sink_init(sink_t *s)
{
    memset(s, 0, sizeof *s);
    s->iface.lpVtbl = (IWbemObjectSinkVtbl *)&sink_vtbl;
    s->refs = 1;
    InitializeCriticalSection(&s->lock);
    s->release = CreateEventW(NULL, TRUE, FALSE, NULL);
    s->answer = WBEM_S_NO_ERROR;
}

static int sink_has_name(sink_t *s, const WCHAR *name)
{
    for (int i = 0; i < s->name_count; i++)
        if (wcscmp(s->names[i], name) == 0)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* The directory file the provider serves.                                                     */

static WCHAR directory_path[MAX_PATH];

static void write_directory(int entries)
{
    FILE *f = _wfopen(directory_path, L"wb");
    if (!f)
        bail("cannot write the directory file");
    for (int i = 0; i < entries; i++)
        fprintf(f, "[user%d@example.org]\naddress = 192.0.2.%d:25\n\n", i, i % 250 + 1);
    fclose(f);
}

static int directory_contains(const char *text)
{
    FILE *f = _wfopen(directory_path, L"rb");
    if (!f)
        return 0;
    static char buffer[1 << 16];
    size_t n = fread(buffer, 1, sizeof buffer - 1, f);
    fclose(f);
    buffer[n] = 0;
    return strstr(buffer, text) != NULL;
}

/* ------------------------------------------------------------------------------------------- */
/* Calls made on threads of their own (each joins the MTA, as WMI's threads are).              */

typedef struct {
    IWbemServices *services;
    sink_t *sink;
    int method; /* 0: CreateInstanceEnumAsync, 1: ExecMethodAsync Count */
    HRESULT returned;
} call_t;

static DWORD WINAPI call_thread(void *arg)
{
    call_t *call = arg;
    p_CoInitializeEx(NULL, COINIT_MULTITHREADED);
    BSTR class_name = p_SysAllocString(ENTRY_CLASS);
    if (call->method) {
        BSTR method = p_SysAllocString(L"Count");
        call->returned = IWbemServices_ExecMethodAsync(call->services, class_name, method, 0, NULL,
                                                       NULL, &call->sink->iface);
        p_SysFreeString(method);
    } else {
        call->returned = IWbemServices_CreateInstanceEnumAsync(call->services, class_name, 0, NULL,
                                                               &call->sink->iface);
    }
    p_SysFreeString(class_name);
    p_CoUninitialize();
    return 0;
}

static int wait_until(volatile LONG *value, LONG at_least)
{
    for (int waited = 0; waited < WAIT_MS; waited += 5) {
        if (*value >= at_least)
            return 1;
        Sleep(5);
    }
    return *value >= at_least;
}

static BSTR entry_path(const WCHAR *name)
{
    WCHAR path[256];
    swprintf(path, 256, L"%ls.Name=\"%ls\"", ENTRY_CLASS, name);
    return p_SysAllocString(path);
}

/* ------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: wmi_host.exe <provider.dll>\n");
        return 2;
    }

    WCHAR temp[MAX_PATH];
    GetTempPathW(MAX_PATH, temp);
    swprintf(directory_path, MAX_PATH, L"%lswmi-host-%lu.txt", temp, GetCurrentProcessId());
    write_directory(ENTRIES);
    SetEnvironmentVariableW(L"EMAIL_DIRECTORY_FILE", directory_path);
    SetEnvironmentVariableW(L"DIRECTORY_ADMIN_POLL_MS", L"50");
    SetEnvironmentVariableW(L"DIRECTORY_ADMIN_PANIC_ON", L"Crash");
    NOTE("directory file %ls (%d entries)", directory_path, ENTRIES);

    int resolved = 1;
    HMODULE ole32 = LoadLibraryA("ole32.dll"), oleaut32 = LoadLibraryA("oleaut32.dll");
#define RESOLVE_OLE32(name) RESOLVE(ole32, "ole32", name);
#define RESOLVE_OLEAUT32(name) RESOLVE(oleaut32, "oleaut32", name);
    OLE32(RESOLVE_OLE32)
    OLEAUT32(RESOLVE_OLEAUT32)
    if (!resolved)
        bail("ole32 / oleaut32 functions");

    char full[MAX_PATH];
    if (!GetFullPathNameA(argv[1], MAX_PATH, full, NULL))
        bail("GetFullPathNameA failed");
    HMODULE dll = LoadLibraryA(full);
    if (!dll) {
        NOTE("LoadLibrary(%s) failed: %lu", full, GetLastError());
        bail("LoadLibrary of the provider");
    }
#define RESOLVE_EXPORT(name) RESOLVE(dll, "provider", name);
    DLL_EXPORTS(RESOLVE_EXPORT)
    CHECK(resolved, "LoadLibrary(%s): DllGetClassObject, DllCanUnloadNow, DllRegisterServer and "
                    "DllUnregisterServer resolve by name", argv[1]);
    if (!resolved)
        bail("missing exports");
    CHECK(p_DllCanUnloadNow() == S_OK, "DllCanUnloadNow is S_OK before any object exists");

    /* --- registration ------------------------------------------------------------------- */
    HRESULT hr = p_DllRegisterServer();
    CHECK(hr == S_OK, "DllRegisterServer returns S_OK (0x%08lx)", (unsigned long)hr);
    WCHAR module_path[MAX_PATH], registered[MAX_PATH], threading[32];
    GetModuleFileNameW(dll, module_path, MAX_PATH);
    DWORD size = sizeof registered;
    LONG status = RegGetValueW(HKEY_CLASSES_ROOT, L"CLSID\\" CLSID_TEXT L"\\InprocServer32", NULL,
                               RRF_RT_REG_SZ, NULL, registered, &size);
    CHECK(status == ERROR_SUCCESS && _wcsicmp(registered, module_path) == 0,
          "HKCR\\CLSID\\{clsid}\\InprocServer32 is the DLL's full path (%ls)",
          status == ERROR_SUCCESS ? registered : L"<missing>");
    size = sizeof threading;
    status = RegGetValueW(HKEY_CLASSES_ROOT, L"CLSID\\" CLSID_TEXT L"\\InprocServer32",
                          L"ThreadingModel", RRF_RT_REG_SZ, NULL, threading, &size);
    CHECK(status == ERROR_SUCCESS && wcscmp(threading, L"Both") == 0, "ThreadingModel is Both");

    hr = p_CoInitializeEx(NULL, COINIT_MULTITHREADED);
    CHECK(SUCCEEDED(hr), "CoInitializeEx(MTA)");

    /* --- the class factory ---------------------------------------------------------------- */
    IClassFactory *factory = NULL;
    hr = p_DllGetClassObject(&IID_IWbemServices, &IID_IClassFactory, (void **)&factory);
    CHECK(hr == CLASS_E_CLASSNOTAVAILABLE && !factory,
          "DllGetClassObject of another CLSID is CLASS_E_CLASSNOTAVAILABLE");
    hr = p_DllGetClassObject(&CLSID_Provider, &IID_IClassFactory, (void **)&factory);
    CHECK(hr == S_OK && factory, "DllGetClassObject of the provider's CLSID gives a class factory");
    if (!factory)
        bail("no class factory");
    IUnknown *made = NULL;
    hr = IClassFactory_CreateInstance(factory, (IUnknown *)&the_namespace, &IID_IUnknown,
                                      (void **)&made);
    CHECK(hr == CLASS_E_NOAGGREGATION && !made, "CreateInstance with an outer object is "
                                                "CLASS_E_NOAGGREGATION");
    IClassFactory_LockServer(factory, TRUE);
    IClassFactory_Release(factory);
    CHECK(p_DllCanUnloadNow() == S_FALSE, "DllCanUnloadNow is S_FALSE while the server is locked");
    /* The lock, not the released factory, keeps the module: unlock through a new factory. */
    factory = NULL;
    p_DllGetClassObject(&CLSID_Provider, &IID_IClassFactory, (void **)&factory);
    if (!factory)
        bail("no class factory");
    IClassFactory_LockServer(factory, FALSE);
    IClassFactory_Release(factory);
    CHECK(p_DllCanUnloadNow() == S_OK, "DllCanUnloadNow is S_OK once the lock is gone");

    /* --- activation and Initialize (R-WMI-1) --------------------------------------------- */
    IWbemProviderInit *init = NULL;
    hr = p_CoCreateInstance(&CLSID_Provider, NULL, CLSCTX_INPROC_SERVER, &IID_IWbemProviderInit,
                            (void **)&init);
    CHECK(hr == S_OK && init, "CoCreateInstance(CLSID) activates the provider in-proc (0x%08lx)",
          (unsigned long)hr);
    if (!init)
        bail("no provider object");
    IWbemServices *services = NULL;
    IWbemEventProvider *events = NULL;
    IWbemProviderInit_QueryInterface(init, &IID_IWbemServices, (void **)&services);
    IWbemProviderInit_QueryInterface(init, &IID_IWbemEventProvider, (void **)&events);
    CHECK(services && events, "the object answers IWbemServices and IWbemEventProvider");
    if (!services || !events)
        bail("missing interfaces");
    CHECK(p_DllCanUnloadNow() == S_FALSE, "DllCanUnloadNow is S_FALSE while an object lives");

    BSTR entry_class_name = p_SysAllocString(ENTRY_CLASS);
    sink_t early;
    sink_init(&early);
    hr = IWbemServices_CreateInstanceEnumAsync(services, entry_class_name, 0, NULL, &early.iface);
    CHECK(FAILED(hr) && early.finals == 0 && early.objects == 0 && early.refs == 1,
          "a call before Initialize fails (0x%08lx) without touching its sink", (unsigned long)hr);

    WCHAR namespace_name[] = L"root\\winprov";
    hr = IWbemProviderInit_Initialize(init, NULL, 0, namespace_name, NULL, &the_namespace.iface,
                                      NULL, NULL);
    CHECK(hr == ST(WBEM_E_INVALID_PARAMETER), "Initialize without an init sink is "
                                          "WBEM_E_INVALID_PARAMETER (0x%08lx)", (unsigned long)hr);
    init_sink_t init_sink = {{(IWbemProviderInitSinkVtbl *)&init_sink_vtbl}, 1, 0, -1, -1};
    hr = IWbemProviderInit_Initialize(init, NULL, 0, namespace_name, NULL, &the_namespace.iface,
                                      NULL, &init_sink.iface);
    CHECK(hr == ST(WBEM_S_NO_ERROR) && init_sink.calls == 1 && init_sink.status == ST(WBEM_S_INITIALIZED) &&
              init_sink.flags == 0,
          "R-WMI-1: Initialize returns WBEM_S_NO_ERROR after one SetStatus(WBEM_S_INITIALIZED, 0) "
          "(%ld calls, status 0x%08lx)", init_sink.calls, (unsigned long)init_sink.status);
    CHECK(init_sink.refs == 1, "R-WMI-2: the init sink's references are back to the caller's");

    /* --- enumeration, batched, with the call's context (R-WMI-3, R-WMI-14) -------------- */
    sink_t all;
    sink_init(&all);
    IWbemContext *ctx = new_context();
    LONG contexts_before = seen_context_count;
    hr = IWbemServices_CreateInstanceEnumAsync(services, entry_class_name, 0, ctx, &all.iface);
    CHECK(hr == ST(WBEM_S_NO_ERROR) && all.objects == ENTRIES && all.finals == 1 &&
              all.last_status == ST(WBEM_S_NO_ERROR) && !all.indicate_after_final,
          "R-WMI-3: CreateInstanceEnumAsync indicates the %d entries (%d), then one final "
          "SetStatus(WBEM_S_NO_ERROR)", ENTRIES, all.objects);
    CHECK(all.indicates > 1 && all.indicates < all.objects,
          "the instances arrive in batches (%d Indicate calls)", all.indicates);
    CHECK(sink_has_name(&all, L"user0@example.org") && sink_has_name(&all, L"user299@example.org"),
          "the instances carry their Name property");
    LONG contexts_after = seen_context_count;
    int same_context = contexts_after > contexts_before;
    for (LONG i = contexts_before; i < contexts_after && i < MAX_SEEN_CONTEXTS; i++)
        same_context &= seen_contexts[i] == ctx;
    CHECK(same_context, "R-WMI-14: the provider's requests back into WMI during the call carry the "
                        "call's IWbemContext (%ld GetObject calls)",
          contexts_after - contexts_before);
    CHECK(all.refs == 1, "R-WMI-2: the response sink's references are back to the caller's");

    /* --- get, query (R-WMI-7) ---------------------------------------------------------- */
    sink_t got, missing, queried;
    sink_init(&got);
    sink_init(&missing);
    sink_init(&queried);
    BSTR path7 = entry_path(L"user7@example.org"), path_missing = entry_path(L"nobody@example.org");
    hr = IWbemServices_GetObjectAsync(services, path7, 0, NULL, &got.iface);
    CHECK(hr == ST(WBEM_S_NO_ERROR) && got.objects == 1 && sink_has_name(&got, L"user7@example.org") &&
              got.finals == 1 && got.last_status == ST(WBEM_S_NO_ERROR),
          "GetObjectAsync of a known path indicates that entry");
    hr = IWbemServices_GetObjectAsync(services, path_missing, 0, NULL, &missing.iface);
    CHECK(hr == ST(WBEM_S_NO_ERROR) && missing.objects == 0 && missing.finals == 1 &&
              missing.last_status == ST(WBEM_E_NOT_FOUND),
          "R-WMI-7: an unknown path ends with WBEM_E_NOT_FOUND and no Indicate");
    hr = IWbemServices_GetObjectAsync(services, NULL, 0, NULL, &missing.iface);
    CHECK(FAILED(hr) && missing.finals == 1, "a NULL path is refused (0x%08lx) without a status",
          (unsigned long)hr);
    hr = IWbemServices_GetObjectAsync(services, path7, 0, NULL, NULL);
    CHECK(hr == ST(WBEM_E_INVALID_PARAMETER), "a NULL sink is WBEM_E_INVALID_PARAMETER");
    BSTR wql = p_SysAllocString(L"WQL");
    BSTR query =
        p_SysAllocString(L"SELECT * FROM Winprov_DirectoryEntry WHERE Name = 'user3@example.org'");
    hr = IWbemServices_ExecQueryAsync(services, wql, query, 0, NULL, &queried.iface);
    CHECK(hr == ST(WBEM_S_NO_ERROR) && queried.objects == 1 &&
              sink_has_name(&queried, L"user3@example.org") && queried.finals == 1,
          "ExecQueryAsync by name indicates the one entry");

    /* --- put, delete (R-WMI-9) --------------------------------------------------------- */
    sink_t put, bad_put, deleted;
    sink_init(&put);
    sink_init(&bad_put);
    sink_init(&deleted);
    IWbemClassObject *instance = new_object(&entry_class, 1);
    VARIANT v;
    p_VariantInit(&v);
    V_VT(&v) = VT_BSTR;
    V_BSTR(&v) = p_SysAllocString(L"new@example.org");
    IWbemClassObject_Put(instance, L"Name", 0, &v, 0);
    p_VariantClear(&v);
    SAFEARRAY *addresses = p_SafeArrayCreateVector(VT_BSTR, 0, 1);
    LONG index = 0;
    BSTR address = p_SysAllocString(L"198.51.100.1:25");
    p_SafeArrayPutElement(addresses, &index, address);
    p_SysFreeString(address);
    V_VT(&v) = VT_ARRAY | VT_BSTR;
    V_ARRAY(&v) = addresses;
    IWbemClassObject_Put(instance, L"Addresses", 0, &v, 0);
    p_VariantClear(&v);
    hr = IWbemServices_PutInstanceAsync(services, instance, 0, NULL, &put.iface);
    CHECK(hr == ST(WBEM_S_NO_ERROR) && put.finals == 1 && put.last_status == ST(WBEM_S_NO_ERROR) &&
              wcscmp(put.last_param, L"Winprov_DirectoryEntry.Name=\"new@example.org\"") == 0,
          "R-WMI-9: PutInstanceAsync's final status carries the object path (%ls)",
          put.last_param);
    CHECK(directory_contains("[new@example.org]") && directory_contains("198.51.100.1:25"),
          "the new entry is in the directory file the NSPv2 provider serves");
    IWbemClassObject_Release(instance);

    IWbemClassObject *mistyped = new_object(&entry_class, 1);
    object_t *raw = impl_object(mistyped);
    V_VT(&raw->values[0]) = VT_I4; /* Name as a number: what a client's mistake looks like */
    V_I4(&raw->values[0]) = 42;
    hr = IWbemServices_PutInstanceAsync(services, mistyped, 0, NULL, &bad_put.iface);
    /* Refused up front (the error returned, the sink untouched) or through the sink: never both
     * (R-WMI-5). */
    HRESULT refusal = hr == ST(WBEM_S_NO_ERROR) && bad_put.finals == 1 ? bad_put.last_status
                      : FAILED(hr) && bad_put.finals == 0          ? hr
                                                                   : ST(WBEM_S_NO_ERROR);
    CHECK(refusal == ST(WBEM_E_TYPE_MISMATCH) || refusal == ST(WBEM_E_INVALID_PARAMETER),
          "a property of the wrong VARIANT type is refused with WBEM_E_TYPE_MISMATCH (returned "
          "0x%08lx, %d final status 0x%08lx)",
          (unsigned long)hr, bad_put.finals, (unsigned long)bad_put.last_status);
    IWbemClassObject_Release(mistyped);

    BSTR new_path = entry_path(L"new@example.org");
    hr = IWbemServices_DeleteInstanceAsync(services, new_path, 0, NULL, &deleted.iface);
    CHECK(hr == ST(WBEM_S_NO_ERROR) && deleted.finals == 1 && deleted.last_status == ST(WBEM_S_NO_ERROR) &&
              !directory_contains("[new@example.org]"),
          "DeleteInstanceAsync removes the entry from the file");

    /* --- the static method, a panic (R-WMI-8) ------------------------------------------- */
    sink_t counted, crashed;
    sink_init(&counted);
    sink_init(&crashed);
    BSTR count = p_SysAllocString(L"Count"), crash = p_SysAllocString(L"Crash");
    hr = IWbemServices_ExecMethodAsync(services, entry_class_name, count, 0, NULL, NULL,
                                       &counted.iface);
    CHECK(hr == ST(WBEM_S_NO_ERROR) && counted.indicates == 1 && counted.objects == 1 &&
              counted.out_return_vt == VT_I4 && counted.out_return_value == ENTRIES &&
              counted.finals == 1 && counted.last_status == ST(WBEM_S_NO_ERROR) &&
              !counted.indicate_after_final,
          "R-WMI-8: ExecMethodAsync(Count) indicates one __PARAMETERS with ReturnValue = %d (%ld), "
          "then the final status", ENTRIES, counted.out_return_value);
    hr = IWbemServices_ExecMethodAsync(services, entry_class_name, crash, 0, NULL, NULL,
                                       &crashed.iface);
    CHECK(hr == ST(WBEM_S_NO_ERROR) && crashed.finals == 1 && crashed.last_status == ST(WBEM_E_FAILED),
          "a panic in the provider's method is one final WBEM_E_FAILED (0x%08lx), and the host "
          "lives", (unsigned long)crashed.last_status);

    /* --- CancelAsyncCall on a shared sink, mid-enumeration (R-WMI-11, R-WMI-12) --------- */
    sink_t shared;
    sink_init(&shared);
    shared.hold = 2;
    call_t calls[2] = {{services, &shared, 0, E_FAIL}, {services, &shared, 0, E_FAIL}};
    HANDLE threads[2];
    for (int i = 0; i < 2; i++)
        threads[i] = CreateThread(NULL, 0, call_thread, &calls[i], 0, NULL);
    int both_inside = wait_until(&shared.held, 2);
    CHECK(both_inside, "two enumerations sharing one sink are both inside Indicate");
    hr = IWbemServices_CancelAsyncCall(services, &shared.iface);
    CHECK(hr == ST(WBEM_S_NO_ERROR), "CancelAsyncCall(shared sink) returns WBEM_S_NO_ERROR from "
                                 "another thread (0x%08lx)", (unsigned long)hr);
    SetEvent(shared.release);
    WaitForMultipleObjects(2, threads, TRUE, WAIT_MS);
    CHECK(calls[0].returned == ST(WBEM_S_NO_ERROR) && calls[1].returned == ST(WBEM_S_NO_ERROR) &&
              shared.finals == 2 && shared.cancelled_finals == 2,
          "R-WMI-11/12: both calls end with exactly one final WBEM_E_CALL_CANCELLED each (%d "
          "finals, %d cancelled)", shared.finals, shared.cancelled_finals);
    CHECK(shared.objects < 2 * ENTRIES, "nothing more reached the sink after the cancel (%d of %d "
                                        "objects)", shared.objects, 2 * ENTRIES);
    CHECK(shared.refs == 1, "R-WMI-2: the shared sink's references are back to the caller's");

    /* --- a method call is not cancelled (R-WMI-13) ------------------------------------- */
    sink_t method_sink;
    sink_init(&method_sink);
    method_sink.hold = 1;
    call_t method_call = {services, &method_sink, 1, E_FAIL};
    HANDLE method_thread = CreateThread(NULL, 0, call_thread, &method_call, 0, NULL);
    int inside = wait_until(&method_sink.held, 1);
    hr = IWbemServices_CancelAsyncCall(services, &method_sink.iface);
    SetEvent(method_sink.release);
    WaitForSingleObject(method_thread, WAIT_MS);
    CHECK(inside && method_call.returned == ST(WBEM_S_NO_ERROR) && method_sink.finals == 1 &&
              method_sink.last_status == ST(WBEM_S_NO_ERROR) && method_sink.cancelled_finals == 0,
          "R-WMI-13: CancelAsyncCall during ExecMethodAsync leaves it to complete with its own "
          "status (0x%08lx)", (unsigned long)method_sink.last_status);

    /* --- events (R-WMI-10) ------------------------------------------------------------- */
    sink_t event_sink;
    sink_init(&event_sink);
    hr = IWbemEventProvider_ProvideEvents(events, &event_sink.iface, 0);
    CHECK(hr == ST(WBEM_S_NO_ERROR) && event_sink.refs > 1,
          "R-WMI-10: ProvideEvents returns at once and keeps a reference to the sink");
    Sleep(200);
    write_directory(ENTRIES + 1);
    volatile LONG *entries_seen = &event_sink.last_entries;
    int fired = wait_until(entries_seen, ENTRIES + 1);
    CHECK(fired && event_sink.objects >= 1, "a change of the file fires Winprov_DirectoryChanged "
                                            "with Entries = %d (%ld)", ENTRIES + 1,
          event_sink.last_entries);
    CHECK(event_sink.finals == 0, "R-WMI-10: the event sink never gets SetStatus");

    /* --- release: the module can unload, nothing leaked ------------------------------ */
    IWbemEventProvider_Release(events);
    IWbemServices_Release(services);
    ULONG left = IWbemProviderInit_Release(init);
    CHECK(left == 0, "the provider object's last reference is released (%lu left)", left);
    IWbemContext_Release(ctx);
    int unloadable = 0;
    for (int waited = 0; waited < WAIT_MS && !unloadable; waited += 10) {
        unloadable = p_DllCanUnloadNow() == S_OK;
        if (!unloadable)
            Sleep(10);
    }
    CHECK(unloadable, "DllCanUnloadNow is S_OK after the last Release");
    CHECK(event_sink.refs == 1, "the event sink is released with the provider");
    CHECK(the_namespace.refs == 1, "the namespace is released with the provider");
    CHECK(live_objects == 0 && live_contexts == 0,
          "every class object and context given to the provider was released (%ld, %ld left)",
          live_objects, live_contexts);

    /* --- unregistration ---------------------------------------------------------------- */
    hr = p_DllUnregisterServer();
    HKEY key;
    status = RegOpenKeyExW(HKEY_CLASSES_ROOT, L"CLSID\\" CLSID_TEXT, 0, KEY_READ, &key);
    if (status == ERROR_SUCCESS)
        RegCloseKey(key);
    CHECK(hr == S_OK && status == ERROR_FILE_NOT_FOUND,
          "DllUnregisterServer removes HKCR\\CLSID\\{clsid}");
    hr = p_DllUnregisterServer();
    CHECK(hr == S_OK, "DllUnregisterServer succeeds when nothing is registered");

    p_SysFreeString(entry_class_name);
    p_SysFreeString(path7);
    p_SysFreeString(path_missing);
    p_SysFreeString(new_path);
    p_SysFreeString(wql);
    p_SysFreeString(query);
    p_SysFreeString(count);
    p_SysFreeString(crash);
    p_CoUninitialize();
    DeleteFileW(directory_path);
    return finish();
}
