/*
 * NSPv2 host harness: plays Winsock against a real provider DLL (the email-directory sample,
 * email_directory.dll) through its raw ABI, on real threads, under Wine.
 *
 * The DLL exports
 *     int WINAPI EmailDirectoryNspv2(GUID *provider_id, const NSPV2_ROUTINE **routine);
 * everything else is reached through the NSPV2_ROUTINE table it returns, exactly as Winsock
 * would call it after WSAAdvertiseProvider. Struct layouts (NSPV2_ROUTINE, WSAQUERYSET2W,
 * CSADDR_INFO, SOCKADDR_IN/IN6, BLOB, GUID) and constants come from the mingw-w64 headers, a
 * source independent of the Rust bindings.
 *
 * Prints `ok N - ...` / `not ok N - ...` per check and a closing "N passed, M failed"; exits
 * non-zero on any failure. Usage: nsp_host.exe <provider.dll> [--slow]. `--slow` is the child
 * mode the harness re-launches itself in (see run_slow_child).
 *
 * Built and run by `cargo xtask test` (x86_64-w64-mingw32-gcc, then wine, cwd = target/wine/bin).
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <ws2spi.h>
#include <nsemail.h>
#include <windows.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define EXPORT_NAME "EmailDirectoryNspv2"
#define SLOW_DELAY_MS L"30000"
#define CONCURRENT 16
#define BIG 8192

/* ------------------------------------------------------------------------------------------- */
/* The ABI.                                                                                    */

typedef int(WINAPI *export_fn)(GUID *provider_id, const NSPV2_ROUTINE **routine);

/* mingw-w64's ws2spi.h declares NSPv2LookupServiceNextEx, NSPv2SetServiceEx and
 * NSPv2ClientSessionRundown as returning int. That is wrong: the SDK header and the Windows
 * metadata declare them VOID (results travel through WSAProviderCompleteAsyncCall). Calling a
 * VOID function through an int-returning pointer "works" on x64 but reads garbage from RAX, so
 * the harness calls them through these correct typedefs, casting the table's members. The other
 * four members' mingw typedefs (int/INT returns) are correct and are used as they are. */
typedef VOID(WSAAPI *nextex_fn)(HANDLE hAsyncCall, HANDLE hLookup, DWORD dwControlFlags,
                                LPDWORD lpdwBufferLength, LPWSAQUERYSET2W lpqsResults);
typedef VOID(WSAAPI *setserviceex_fn)(HANDLE hAsyncCall, LPGUID lpProviderId,
                                      LPWSAQUERYSET2W lpqsRegInfo, WSAESETSERVICEOP essOperation,
                                      DWORD dwControlFlags, LPVOID lpvClientSessionArg);
typedef VOID(WSAAPI *rundown_fn)(LPGUID lpProviderId, LPVOID pvClientSessionArg);

static GUID provider_id;
static const NSPV2_ROUTINE *routine;
static LPNSPV2STARTUP nsp_startup;
static LPNSPV2CLEANUP nsp_cleanup;
static LPNSPV2LOOKUPSERVICEBEGIN nsp_begin;
static nextex_fn nsp_next_ex;
static LPNSPV2LOOKUPSERVICEEND nsp_end;
static setserviceex_fn nsp_set_service_ex;
static rundown_fn nsp_rundown;

/* WSAGetLastError / WSASetLastError are taken from the ws2_32.dll the provider itself imports
 * (xtask links the harness against no import library but the defaults, and these must be the
 * very functions the provider's WSASetLastError pairs with). */
typedef int(WSAAPI *get_last_error_fn)(void);
typedef void(WSAAPI *set_last_error_fn)(int);
static get_last_error_fn wsa_get_last_error;
static set_last_error_fn wsa_set_last_error;

/* The last error before a call: a value no path of the provider produces, so "the provider set
 * the last error to X" is distinguishable from "it left it alone". */
#define SENTINEL_ERROR 0x5A5A

/* ------------------------------------------------------------------------------------------- */
/* Checks and output.                                                                          */

static int passed, failed, numbered;
/* The child (--slow) indents its lines so they read as a sub-test of the parent's log and its
 * summary line does not parse as the harness' own "N passed, M failed". */
static const char *indent = "";

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        int ok_ = (cond) ? 1 : 0;                                                                  \
        numbered++;                                                                                \
        if (ok_) {                                                                                 \
            passed++;                                                                              \
            printf("%sok %d - ", indent, numbered);                                                \
        } else {                                                                                   \
            failed++;                                                                              \
            printf("%snot ok %d - ", indent, numbered);                                            \
        }                                                                                          \
        printf(__VA_ARGS__);                                                                       \
        if (!ok_)                                                                                  \
            printf("  [failed: %s, line %d]", #cond, __LINE__);                                    \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
    } while (0)

#define NOTE(...)                                                                                  \
    do {                                                                                           \
        printf("%s# ", indent);                                                                    \
        printf(__VA_ARGS__);                                                                       \
        printf("\n");                                                                              \
        fflush(stdout);                                                                            \
    } while (0)

static int finish(void)
{
    if (*indent)
        printf("%s# slow child: %d passed, %d failed\n", indent, passed, failed);
    else
        printf("%d passed, %d failed\n", passed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}

/* A failure that makes every later check meaningless (or would crash the process). */
static void bail(const char *why)
{
    failed++;
    printf("%snot ok %d - %s (bailing out)\n", indent, ++numbered, why);
    finish();
    ExitProcess(2);
}

/* ------------------------------------------------------------------------------------------- */
/* Observing completions: WSAProviderCompleteAsyncCall, replaced in the provider's IAT.         */
/*
 * Wine's ws2_32 has neither WSAAdvertiseProvider nor WSAProviderCompleteAsyncCall; its loader
 * binds such an import to a stub that aborts the process when called. The provider must not be
 * changed for the test (no hook, no feature flag): it calls exactly what it would call on
 * Windows. So after LoadLibrary the harness rewrites the one thing that differs, the target of
 * the provider's import: the import address table slot of ws2_32.dll!WSAProviderCompleteAsyncCall
 * in the loaded module gets the address of fake_complete below. The provider's code path, its
 * calling convention and its arguments are untouched; fake_complete records what it receives.
 */

/* What the completions of one issued call were: how many, the last one's code and thread. The
 * log is indexed by the call's number (new_call), so recording and looking up are O(1) however
 * many calls the stress case issues. */
typedef struct {
    LONG count;
    INT code;
    DWORD thread;
} completion;

#define CALL_BASE 0xA5C00000u
#define LOG_CAPACITY 131072 /* calls */
static CRITICAL_SECTION log_lock;
static completion log_entries[LOG_CAPACITY];
/* Every completion received; those for no issued call; those for a call past the log's end. */
static LONG log_length, log_strays, log_overflow;

/* hAsyncCall values are opaque to the provider: the harness issues a unique one per call, so
 * every completion can be attributed to exactly one NextEx / SetServiceEx. */
static volatile LONG calls_issued;
static HANDLE new_call(void)
{
    LONG n = InterlockedIncrement(&calls_issued);
    return (HANDLE)(ULONG_PTR)(CALL_BASE + (ULONG_PTR)n * 0x10u);
}

/* The number new_call gave `call`, or 0 for a value it never gives. */
static ULONG_PTR call_number(HANDLE call)
{
    ULONG_PTR v = (ULONG_PTR)call;
    if (v <= CALL_BASE || (v - CALL_BASE) % 0x10u != 0)
        return 0;
    return (v - CALL_BASE) / 0x10u;
}

static int WSAAPI fake_complete(HANDLE hAsyncCall, INT iRetCode)
{
    /* Neither call below touches the thread's last error, which the provider may already have
     * set (or will set) for the host. */
    ULONG_PTR n = call_number(hAsyncCall);
    EnterCriticalSection(&log_lock);
    log_length++;
    if (n == 0 || n > (ULONG_PTR)calls_issued) {
        log_strays++;
    } else if (n >= LOG_CAPACITY) {
        log_overflow++;
    } else {
        log_entries[n].count++;
        log_entries[n].code = iRetCode;
        log_entries[n].thread = GetCurrentThreadId();
    }
    LeaveCriticalSection(&log_lock);
    return 0; /* NO_ERROR, as Winsock answers a valid hAsyncCall */
}

/* How many completions `call` got; the last one's code and thread. */
static int completions_of(HANDLE call, INT *code, DWORD *thread)
{
    ULONG_PTR n = call_number(call);
    if (n == 0 || n >= LOG_CAPACITY)
        return 0;
    EnterCriticalSection(&log_lock);
    completion c = log_entries[n];
    LeaveCriticalSection(&log_lock);
    if (c.count > 0 && code)
        *code = c.code;
    if (c.count > 0 && thread)
        *thread = c.thread;
    return (int)c.count;
}

/* Replaces every IAT slot of `dll_name`!`function` in `module`; returns how many were found. */
static int patch_import(HMODULE module, const char *dll_name, const char *function,
                        ULONG_PTR replacement)
{
    BYTE *base = (BYTE *)module;
    const IMAGE_DOS_HEADER *dos = (const IMAGE_DOS_HEADER *)base;
    if (dos->e_magic != IMAGE_DOS_SIGNATURE)
        return -1;
    const IMAGE_NT_HEADERS *nt = (const IMAGE_NT_HEADERS *)(base + dos->e_lfanew);
    if (nt->Signature != IMAGE_NT_SIGNATURE ||
        nt->OptionalHeader.Magic != IMAGE_NT_OPTIONAL_HDR64_MAGIC)
        return -1;
    const IMAGE_DATA_DIRECTORY *dir =
        &nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT];
    if (dir->VirtualAddress == 0)
        return 0;
    int patched = 0;
    /* Several descriptors may name ws2_32.dll (one per import library the linker merged:
     * Rust's raw-dylib imports and std's libws2_32.a), so all of them are searched. */
    for (const IMAGE_IMPORT_DESCRIPTOR *d =
             (const IMAGE_IMPORT_DESCRIPTOR *)(base + dir->VirtualAddress);
         d->Name != 0; d++) {
        if (lstrcmpiA((const char *)(base + d->Name), dll_name) != 0)
            continue;
        if (d->OriginalFirstThunk == 0) {
            /* Without the name table the bound slots cannot be told apart. */
            NOTE("import descriptor for %s has no OriginalFirstThunk", dll_name);
            continue;
        }
        /* OriginalFirstThunk (the import name table) and FirstThunk (the IAT, now holding the
         * bound addresses) run in parallel: entry i of one names slot i of the other. */
        const IMAGE_THUNK_DATA *names = (const IMAGE_THUNK_DATA *)(base + d->OriginalFirstThunk);
        IMAGE_THUNK_DATA *slots = (IMAGE_THUNK_DATA *)(base + d->FirstThunk);
        for (; names->u1.AddressOfData != 0; names++, slots++) {
            if (IMAGE_SNAP_BY_ORDINAL(names->u1.Ordinal))
                continue;
            const IMAGE_IMPORT_BY_NAME *by_name =
                (const IMAGE_IMPORT_BY_NAME *)(base + names->u1.AddressOfData);
            if (strcmp((const char *)by_name->Name, function) != 0)
                continue;
            DWORD old;
            if (!VirtualProtect(&slots->u1.Function, sizeof slots->u1.Function, PAGE_READWRITE,
                                &old))
                return -1;
            NOTE("IAT slot %p of %s!%s: %p -> fake_complete", (void *)&slots->u1.Function,
                 dll_name, function, (void *)(ULONG_PTR)slots->u1.Function);
            slots->u1.Function = replacement;
            DWORD ignored;
            VirtualProtect(&slots->u1.Function, sizeof slots->u1.Function, old, &ignored);
            patched++;
        }
    }
    return patched;
}

/* ------------------------------------------------------------------------------------------- */
/* Calling the provider.                                                                       */

/* One asynchronous call's observed outcome. */
typedef struct {
    int completions; /* how many times hAsyncCall was completed */
    INT code;        /* the (last) completion code */
    DWORD thread;    /* the thread that completed it */
    int last_error;  /* WSAGetLastError() right after the call returned, on the calling thread */
} outcome;

static outcome next_ex(HANDLE lookup, DWORD flags, DWORD *length, void *buffer)
{
    outcome o = {0, -1, 0, 0};
    HANDLE call = new_call();
    wsa_set_last_error(SENTINEL_ERROR);
    nsp_next_ex(call, lookup, flags, length, (LPWSAQUERYSET2W)buffer);
    o.last_error = wsa_get_last_error();
    o.completions = completions_of(call, &o.code, &o.thread);
    return o;
}

static outcome set_service(WSAQUERYSET2W *info, WSAESETSERVICEOP op, DWORD flags, void *session)
{
    outcome o = {0, -1, 0, 0};
    HANDLE call = new_call();
    GUID id = provider_id;
    wsa_set_last_error(SENTINEL_ERROR);
    nsp_set_service_ex(call, &id, info, op, flags, session);
    o.last_error = wsa_get_last_error();
    o.completions = completions_of(call, &o.code, &o.thread);
    return o;
}

/* An INT entry's result: the return value and, for SOCKET_ERROR, the last error. */
typedef struct {
    int rc;
    int last_error;
} int_result;

static void restriction(WSAQUERYSET2W *qs, const WCHAR *name)
{
    memset(qs, 0, sizeof *qs);
    qs->dwSize = sizeof *qs;
    qs->lpszServiceInstanceName = (LPWSTR)name;
    qs->dwNameSpace = NS_EMAIL;
}

static int_result begin_qs(WSAQUERYSET2W *qs, DWORD flags, void *session, HANDLE *lookup)
{
    GUID id = provider_id;
    wsa_set_last_error(SENTINEL_ERROR);
    int_result r;
    r.rc = nsp_begin(&id, qs, flags, session, lookup);
    r.last_error = wsa_get_last_error();
    return r;
}

static int_result begin(const WCHAR *name, DWORD flags, void *session, HANDLE *lookup)
{
    WSAQUERYSET2W qs;
    restriction(&qs, name);
    return begin_qs(&qs, flags, session, lookup);
}

static int_result end(HANDLE lookup)
{
    wsa_set_last_error(SENTINEL_ERROR);
    int_result r;
    r.rc = nsp_end(lookup);
    r.last_error = wsa_get_last_error();
    return r;
}

/* A buffer aligned for WSAQUERYSET2W (8 bytes), as Winsock's would be. */
typedef union {
    WSAQUERYSET2W qs;
    ULONGLONG align;
    unsigned char bytes[BIG];
} result_buffer;

/* ------------------------------------------------------------------------------------------- */
/* Reading a result with the mingw-w64 structures.                                             */

typedef struct {
    const unsigned char *base;
    size_t len;
} span;

static int inside(span b, const void *p, size_t size)
{
    uintptr_t at = (uintptr_t)p, lo = (uintptr_t)b.base;
    return p != NULL && at >= lo && size <= b.len && at - lo <= b.len - size;
}

/* A NUL-terminated UTF-16 string wholly inside the buffer. */
static int string_inside(span b, const WCHAR *s)
{
    if (!inside(b, s, sizeof(WCHAR)))
        return 0;
    size_t units = (b.len - ((uintptr_t)s - (uintptr_t)b.base)) / sizeof(WCHAR);
    for (size_t i = 0; i < units; i++)
        if (s[i] == 0)
            return 1;
    return 0;
}

/* Counts the non-NULL pointers of a result that are not inside [base, base+len) (R-NSP-8);
 * `first` names the first offender. Nothing is dereferenced unless its container is inside. */
static int stray_pointers(span b, const WSAQUERYSET2W *q, const char **first, int *total)
{
    int bad = 0;
    *first = "none";
    *total = 0;
#define POINTER(p, ok, what)                                                                       \
    do {                                                                                           \
        if ((p) != NULL) {                                                                         \
            ++*total;                                                                              \
            if (!(ok)) {                                                                           \
                if (!bad++)                                                                        \
                    *first = what;                                                                 \
            }                                                                                      \
        }                                                                                          \
    } while (0)
    POINTER(q->lpszServiceInstanceName, string_inside(b, q->lpszServiceInstanceName),
            "lpszServiceInstanceName");
    POINTER(q->lpszComment, string_inside(b, q->lpszComment), "lpszComment");
    /* mingw-w64 types lpszContext as LPTSTR (LPSTR here, no UNICODE); it is LPWSTR. */
    POINTER(q->lpszContext, string_inside(b, (const WCHAR *)q->lpszContext), "lpszContext");
    POINTER(q->lpszQueryString, string_inside(b, q->lpszQueryString), "lpszQueryString");
    POINTER(q->lpVersion, inside(b, q->lpVersion, sizeof *q->lpVersion), "lpVersion");
    POINTER(q->lpNSProviderId, inside(b, q->lpNSProviderId, sizeof(GUID)), "lpNSProviderId");
    POINTER(q->lpafpProtocols,
            inside(b, q->lpafpProtocols, q->dwNumberOfProtocols * sizeof(AFPROTOCOLS)),
            "lpafpProtocols");
    int csaddrs_ok = inside(b, q->lpcsaBuffer, q->dwNumberOfCsAddrs * sizeof(CSADDR_INFO));
    POINTER(q->lpcsaBuffer, csaddrs_ok, "lpcsaBuffer");
    if (q->lpcsaBuffer != NULL && csaddrs_ok) {
        for (DWORD i = 0; i < q->dwNumberOfCsAddrs; i++) {
            const CSADDR_INFO *c = &q->lpcsaBuffer[i];
            POINTER(c->LocalAddr.lpSockaddr,
                    c->LocalAddr.iSockaddrLength > 0 &&
                        inside(b, c->LocalAddr.lpSockaddr, (size_t)c->LocalAddr.iSockaddrLength),
                    "LocalAddr.lpSockaddr");
            POINTER(c->RemoteAddr.lpSockaddr,
                    c->RemoteAddr.iSockaddrLength > 0 &&
                        inside(b, c->RemoteAddr.lpSockaddr, (size_t)c->RemoteAddr.iSockaddrLength),
                    "RemoteAddr.lpSockaddr");
        }
    }
    int blob_ok = inside(b, q->lpBlob, sizeof(BLOB));
    POINTER(q->lpBlob, blob_ok, "lpBlob");
    if (q->lpBlob != NULL && blob_ok)
        POINTER(q->lpBlob->pBlobData, inside(b, q->lpBlob->pBlobData, q->lpBlob->cbSize),
                "lpBlob->pBlobData");
#undef POINTER
    return bad;
}

static unsigned port_of(const void *sin_port)
{
    const unsigned char *p = (const unsigned char *)sin_port; /* network byte order */
    return (unsigned)p[0] << 8 | p[1];
}

static const unsigned char ALICE_V4[4] = {192, 0, 2, 10};
static const unsigned char ALICE_V6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                           0,    0,    0,    0,    0, 0, 0, 1};
static const unsigned char BOB_V4[4] = {198, 51, 100, 7};

/* The CSADDR_INFO whose remote address is an `family` sockaddr inside the buffer, or NULL. */
static const CSADDR_INFO *find_remote(span b, const WSAQUERYSET2W *q, int family)
{
    if (!inside(b, q->lpcsaBuffer, q->dwNumberOfCsAddrs * sizeof(CSADDR_INFO)))
        return NULL;
    for (DWORD i = 0; i < q->dwNumberOfCsAddrs; i++) {
        const CSADDR_INFO *c = &q->lpcsaBuffer[i];
        const SOCKET_ADDRESS *r = &c->RemoteAddr;
        if (r->iSockaddrLength >= (INT)sizeof(USHORT) &&
            inside(b, r->lpSockaddr, (size_t)r->iSockaddrLength) &&
            r->lpSockaddr->sa_family == family)
            return c;
    }
    return NULL;
}

static int has_v4(span b, const WSAQUERYSET2W *q, const unsigned char addr[4], unsigned port)
{
    const CSADDR_INFO *c = find_remote(b, q, AF_INET);
    if (c == NULL || c->RemoteAddr.iSockaddrLength != (INT)sizeof(SOCKADDR_IN))
        return 0;
    const SOCKADDR_IN *sin = (const SOCKADDR_IN *)c->RemoteAddr.lpSockaddr;
    return memcmp(&sin->sin_addr, addr, 4) == 0 && port_of(&sin->sin_port) == port;
}

static int has_v6(span b, const WSAQUERYSET2W *q, const unsigned char addr[16], unsigned port)
{
    const CSADDR_INFO *c = find_remote(b, q, AF_INET6);
    if (c == NULL || c->RemoteAddr.iSockaddrLength != (INT)sizeof(SOCKADDR_IN6))
        return 0;
    const SOCKADDR_IN6 *sin6 = (const SOCKADDR_IN6 *)c->RemoteAddr.lpSockaddr;
    return memcmp(&sin6->sin6_addr, addr, 16) == 0 && port_of(&sin6->sin6_port) == port;
}

static int string_is(span b, const WCHAR *s, const WCHAR *expected)
{
    return string_inside(b, s) && wcscmp(s, expected) == 0;
}

static const char *narrow(span b, const WCHAR *s)
{
    static char text[4][256];
    static int next;
    char *out = text[next++ % 4];
    if (s == NULL)
        return "(null)";
    if (!string_inside(b, s))
        return "(outside the buffer)";
    WideCharToMultiByte(CP_UTF8, 0, s, -1, out, (int)sizeof text[0], NULL, NULL);
    out[sizeof text[0] - 1] = 0;
    return out;
}

/* ------------------------------------------------------------------------------------------- */
/* Setup shared by the parent and the --slow child.                                            */

static void write_directory(const char *file, const WCHAR *env_name)
{
    FILE *f = fopen(file, "wb");
    if (f == NULL)
        bail("cannot write the directory file");
    fputs("# nsp_host test directory (written by the harness)\n"
          "[alice@example.org]\n"
          "address = 192.0.2.10:25\n"
          "address = [2001:db8::1]:587\n"
          "comment = Alice Example\n"
          "data = some text\n"
          "\n"
          "[carol@example.org]\n"
          "address = 192.0.2.20:25\n"
          "comment = Carol Example\n"
          "data = carol's data\n",
          f);
    fclose(f);
    WCHAR wide[MAX_PATH], full[MAX_PATH];
    MultiByteToWideChar(CP_ACP, 0, file, -1, wide, MAX_PATH);
    if (GetFullPathNameW(wide, MAX_PATH, full, NULL) == 0)
        bail("GetFullPathNameW failed");
    SetEnvironmentVariableW(env_name, full);
}

static export_fn load_provider(const char *path)
{
    HMODULE dll = LoadLibraryA(path);
    if (dll == NULL) {
        printf("%s# LoadLibrary(%s) failed: %lu\n", indent, path, GetLastError());
        bail("LoadLibrary of the provider");
    }
    /* Patch before any export runs: nothing may reach Wine's aborting stub. */
    int patched = patch_import(dll, "ws2_32.dll", "WSAProviderCompleteAsyncCall",
                               (ULONG_PTR)fake_complete);
    if (patched <= 0)
        bail("the provider does not import ws2_32.dll!WSAProviderCompleteAsyncCall by name "
             "(it must complete NextEx/SetServiceEx through it)");
    CHECK(patched >= 1, "WSAProviderCompleteAsyncCall imported and redirected (%d IAT slot%s)",
          patched, patched == 1 ? "" : "s");

    HMODULE ws2 = GetModuleHandleA("ws2_32.dll");
    if (ws2 == NULL)
        bail("ws2_32.dll not loaded with the provider");
    wsa_get_last_error = (get_last_error_fn)(void (*)(void))GetProcAddress(ws2, "WSAGetLastError");
    wsa_set_last_error = (set_last_error_fn)(void (*)(void))GetProcAddress(ws2, "WSASetLastError");
    if (wsa_get_last_error == NULL || wsa_set_last_error == NULL)
        bail("ws2_32.dll lacks WSAGetLastError/WSASetLastError");

    export_fn entry = (export_fn)(void (*)(void))GetProcAddress(dll, EXPORT_NAME);
    CHECK(entry != NULL, "export %s present", EXPORT_NAME);
    if (entry == NULL)
        bail("no export");
    return entry;
}

static void get_routine(export_fn entry)
{
    const NSPV2_ROUTINE *table = NULL;
    int rc = entry(&provider_id, &table);
    CHECK(rc == 0 && table != NULL, "%s returns 0 and a routine table (rc %d, table %p)",
          EXPORT_NAME, rc, (const void *)table);
    if (table == NULL)
        bail("no routine table");
    routine = table;
    NOTE("provider id {%08lx-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x}, table v%lu.%lu",
         provider_id.Data1, provider_id.Data2, provider_id.Data3, provider_id.Data4[0],
         provider_id.Data4[1], provider_id.Data4[2], provider_id.Data4[3], provider_id.Data4[4],
         provider_id.Data4[5], provider_id.Data4[6], provider_id.Data4[7], table->dwMajorVersion,
         table->dwMinorVersion);
    static const GUID zero;
    CHECK(memcmp(&provider_id, &zero, sizeof zero) != 0, "provider id is not the nil GUID");
    CHECK(table->cbSize == sizeof(NSPV2_ROUTINE), "cbSize %lu == sizeof(NSPV2_ROUTINE) %u",
          table->cbSize, (unsigned)sizeof(NSPV2_ROUTINE));
    int members = (table->NSPv2Startup != NULL) + (table->NSPv2Cleanup != NULL) +
                  (table->NSPv2LookupServiceBegin != NULL) +
                  (table->NSPv2LookupServiceNextEx != NULL) +
                  (table->NSPv2LookupServiceEnd != NULL) + (table->NSPv2SetServiceEx != NULL) +
                  (table->NSPv2ClientSessionRundown != NULL);
    CHECK(members == 7, "all seven routine members non-NULL (%d)", members);
    if (members != 7)
        bail("incomplete routine table");
    nsp_startup = table->NSPv2Startup;
    nsp_cleanup = table->NSPv2Cleanup;
    nsp_begin = table->NSPv2LookupServiceBegin;
    nsp_end = table->NSPv2LookupServiceEnd;
    /* The three VOID members, through the corrected typedefs (see above). */
    nsp_next_ex = (nextex_fn)(void (*)(void))table->NSPv2LookupServiceNextEx;
    nsp_set_service_ex = (setserviceex_fn)(void (*)(void))table->NSPv2SetServiceEx;
    nsp_rundown = (rundown_fn)(void (*)(void))table->NSPv2ClientSessionRundown;
}

static void *startup_session(const char *what)
{
    GUID id = provider_id;
    LPVOID session = NULL;
    int rc = nsp_startup(&id, &session);
    CHECK(rc == 0 && session != NULL, "NSPv2Startup (%s) -> 0 with a non-NULL session (rc %d, %p)",
          what, rc, session);
    return session;
}

/* ------------------------------------------------------------------------------------------- */
/* Parent checks.                                                                              */

static void test_export(export_fn entry)
{
    const NSPV2_ROUTINE *table = NULL;
    GUID id;
    CHECK(entry(NULL, &table) == WSAEFAULT, "export with NULL provider_id -> WSAEFAULT");
    CHECK(entry(&id, NULL) == WSAEFAULT, "export with NULL routine -> WSAEFAULT");
    get_routine(entry);
    /* A second call answers with the same provider (registered once per process). */
    table = NULL;
    int rc = entry(&id, &table);
    CHECK(rc == 0 && table == routine && memcmp(&id, &provider_id, sizeof id) == 0,
          "second export call returns the same id and table (rc %d)", rc);
}

static void test_lookup_alice(void *session)
{
    HANDLE h = NULL;
    int_result r = begin(L"alice@example.org", LUP_RETURN_ALL, session, &h);
    CHECK(r.rc == 0 && h != NULL, "Begin(alice, LUP_RETURN_ALL) -> 0 with a handle (rc %d, err %d)",
          r.rc, r.last_error);

    /* Size probe: no buffer at all. */
    DWORD len = 0;
    outcome o = next_ex(h, LUP_RETURN_ALL, &len, NULL);
    CHECK(o.completions == 1 && o.code == WSAEFAULT,
          "size probe (len 0, NULL buffer) completes once with WSAEFAULT (%d completions, code %d)",
          o.completions, o.code);
    CHECK(o.last_error == o.code, "WSAGetLastError after NextEx == completion code (%d vs %d)",
          o.last_error, o.code);
    CHECK(len > sizeof(WSAQUERYSET2W), "needed size reported: %lu bytes", len);
    DWORD needed = len;

    /* A short, non-NULL buffer: same answer, same size; the result is not consumed (R-NSP-5). */
    result_buffer *small = malloc(sizeof *small);
    len = sizeof(WSAQUERYSET2W);
    o = next_ex(h, LUP_RETURN_ALL, &len, small);
    CHECK(o.completions == 1 && o.code == WSAEFAULT && len == needed && o.last_error == o.code,
          "short buffer: WSAEFAULT once, same needed size (%d completions, code %d, len %lu, "
          "last error %d)",
          o.completions, o.code, len, o.last_error);
    free(small);

    /* Retry with exactly the needed size, in a heap block of exactly that size. */
    len = needed;
    unsigned char *buf = malloc(needed);
    o = next_ex(h, LUP_RETURN_ALL, &len, buf);
    CHECK(o.completions == 1 && o.code == 0 && o.last_error == 0,
          "retry with %lu bytes completes once with 0 (%d completions, code %d, last error %d)",
          needed, o.completions, o.code, o.last_error);
    if (o.code == 0) {
        span b = {buf, needed};
        const WSAQUERYSET2W *q = (const WSAQUERYSET2W *)buf;
        const char *first;
        int total;
        int bad = stray_pointers(b, q, &first, &total);
        CHECK(bad == 0, "all %d pointers of the result inside [buffer, buffer+%lu) (%d outside, "
                        "first: %s)",
              total, needed, bad, first);
        CHECK(q->dwSize == sizeof(WSAQUERYSET2W), "dwSize %lu == sizeof(WSAQUERYSET2W)",
              q->dwSize);
        CHECK(q->dwNameSpace == NS_EMAIL, "dwNameSpace %lu == NS_EMAIL", q->dwNameSpace);
        CHECK(string_is(b, q->lpszServiceInstanceName, L"alice@example.org"), "name \"%s\"",
              narrow(b, q->lpszServiceInstanceName));
        CHECK(string_is(b, q->lpszComment, L"Alice Example"), "comment \"%s\"",
              narrow(b, q->lpszComment));
        CHECK(string_is(b, (const WCHAR *)q->lpszContext, L"example.org"), "context \"%s\"",
              narrow(b, (const WCHAR *)q->lpszContext));
        CHECK(inside(b, q->lpNSProviderId, sizeof(GUID)) &&
                  memcmp(q->lpNSProviderId, &provider_id, sizeof(GUID)) == 0,
              "lpNSProviderId is the provider's id");
        CHECK(q->dwNumberOfCsAddrs == 2, "2 CSADDR_INFO (%lu)", q->dwNumberOfCsAddrs);
        CHECK(has_v4(b, q, ALICE_V4, 25), "SOCKADDR_IN 192.0.2.10 port 25 among the remote "
                                          "addresses");
        CHECK(has_v6(b, q, ALICE_V6, 587), "SOCKADDR_IN6 2001:db8::1 port 587 among the remote "
                                           "addresses");
        const CSADDR_INFO *c = find_remote(b, q, AF_INET);
        if (c != NULL)
            NOTE("AF_INET entry: iSocketType %d, iProtocol %d, local %p/%d", c->iSocketType,
                 c->iProtocol, (void *)c->LocalAddr.lpSockaddr, c->LocalAddr.iSockaddrLength);
        int blob_ok = inside(b, q->lpBlob, sizeof(BLOB)) && q->lpBlob->cbSize == 9 &&
                      inside(b, q->lpBlob->pBlobData, 9) &&
                      memcmp(q->lpBlob->pBlobData, "some text", 9) == 0;
        CHECK(blob_ok, "blob holds the 9 UTF-8 bytes \"some text\" (cbSize %lu)",
              inside(b, q->lpBlob, sizeof(BLOB)) ? q->lpBlob->cbSize : 0);
    }
    free(buf);

    result_buffer *big = malloc(sizeof *big);
    len = sizeof *big;
    o = next_ex(h, LUP_RETURN_ALL, &len, big);
    CHECK(o.completions == 1 && o.code == WSA_E_NO_MORE && o.last_error == o.code,
          "then NextEx completes once with WSA_E_NO_MORE (%d completions, code %d, last error %d)",
          o.completions, o.code, o.last_error);
    len = sizeof *big;
    o = next_ex(h, LUP_RETURN_ALL, &len, big);
    CHECK(o.completions == 1 && o.code == WSA_E_NO_MORE,
          "and again WSA_E_NO_MORE (%d completions, code %d)", o.completions, o.code);
    free(big);

    r = end(h);
    CHECK(r.rc == 0, "End -> 0 (rc %d)", r.rc);
}

/* R-NSP-7: NextEx flags only narrow Begin's. */
static void test_narrowing(void *session, DWORD begin_flags, DWORD next_flags, const char *what)
{
    HANDLE h = NULL;
    int_result r = begin(L"alice@example.org", begin_flags, session, &h);
    result_buffer *buf = malloc(sizeof *buf);
    DWORD len = sizeof *buf;
    outcome o = next_ex(h, next_flags, &len, buf);
    span b = {buf->bytes, sizeof *buf};
    const WSAQUERYSET2W *q = &buf->qs;
    CHECK(r.rc == 0 && o.completions == 1 && o.code == 0,
          "%s: Begin %d, NextEx completes once with 0 (%d, code %d)", what, r.rc, o.completions,
          o.code);
    if (o.code == 0) {
        CHECK(string_is(b, q->lpszServiceInstanceName, L"alice@example.org") &&
                  q->lpszComment == NULL && q->dwNumberOfCsAddrs == 0 && q->lpcsaBuffer == NULL &&
                  q->lpBlob == NULL,
              "%s: name only (name \"%s\", comment %p, %lu addresses, blob %p)", what,
              narrow(b, q->lpszServiceInstanceName), (void *)q->lpszComment,
              q->dwNumberOfCsAddrs, (void *)q->lpBlob);
    }
    free(buf);
    end(h);
}

/* Every result of a lookup until its end; returns the final code. */
static int collect_names(HANDLE h, char *names, size_t size, int *results, int *once)
{
    result_buffer *buf = malloc(sizeof *buf);
    names[0] = 0;
    *results = 0;
    *once = 1;
    int code = -1;
    for (int i = 0; i < 16; i++) {
        DWORD len = sizeof *buf;
        outcome o = next_ex(h, LUP_RETURN_ALL, &len, buf);
        *once &= o.completions == 1 && o.last_error == o.code;
        code = o.code;
        if (o.code != 0)
            break;
        ++*results;
        span b = {buf->bytes, sizeof *buf};
        strncat(names, narrow(b, buf->qs.lpszServiceInstanceName), size - strlen(names) - 2);
        strcat(names, " ");
    }
    free(buf);
    return code;
}

static void test_wildcard(void *session)
{
    HANDLE h = NULL;
    int_result r = begin(L"*@example.org", LUP_RETURN_ALL, session, &h);
    char names[512] = "";
    int results = 0, once = 0;
    int code = r.rc == 0 ? collect_names(h, names, sizeof names, &results, &once) : -1;
    CHECK(r.rc == 0 && code == WSA_E_NO_MORE && once,
          "*@example.org: results then WSA_E_NO_MORE, each NextEx completed once (code %d)",
          code);
    CHECK(results == 2 && strstr(names, "alice@example.org") && strstr(names, "carol@example.org"),
          "*@example.org returns the domain's 2 entries (%d: %s)", results, names);
    end(h);
}

/* Begin only records the query (it must not block, R-NSP-9); the first NextEx reports the
 * unknown name. */
static void test_unknown_name(void *session)
{
    HANDLE h = NULL;
    int_result r = begin(L"nobody@example.org", LUP_RETURN_ALL, session, &h);
    CHECK(r.rc == 0, "Begin(nobody) -> 0 (rc %d, err %d)", r.rc, r.last_error);
    result_buffer *buf = malloc(sizeof *buf);
    DWORD len = sizeof *buf;
    outcome o = next_ex(h, LUP_RETURN_ALL, &len, buf);
    CHECK(o.completions == 1 && o.code == WSASERVICE_NOT_FOUND && o.last_error == o.code,
          "unknown name: NextEx completes once with WSASERVICE_NOT_FOUND (%d, code %d, last "
          "error %d)",
          o.completions, o.code, o.last_error);
    len = sizeof *buf;
    o = next_ex(h, LUP_RETURN_ALL, &len, buf);
    CHECK(o.completions == 1 && o.code == WSA_E_NO_MORE,
          "then WSA_E_NO_MORE (%d, code %d)", o.completions, o.code);
    free(buf);
    r = end(h);
    CHECK(r.rc == 0, "End -> 0 (rc %d)", r.rc);
}

static void test_handles(void *session)
{
    HANDLE h = NULL, live = NULL;
    begin(L"alice@example.org", LUP_RETURN_ALL, session, &h);
    int_result r = end(h);
    CHECK(r.rc == 0, "End -> 0 (rc %d)", r.rc);
    result_buffer *buf = malloc(sizeof *buf);
    DWORD len = sizeof *buf;
    outcome o = next_ex(h, LUP_RETURN_ALL, &len, buf);
    CHECK(o.completions == 1 && o.code == WSA_INVALID_HANDLE && o.last_error == o.code,
          "NextEx on the ended handle completes once with WSA_INVALID_HANDLE (%d, code %d, "
          "last error %d)",
          o.completions, o.code, o.last_error);
    r = end(h);
    CHECK(r.rc == SOCKET_ERROR && r.last_error == WSA_INVALID_HANDLE,
          "End again -> SOCKET_ERROR / WSA_INVALID_HANDLE (rc %d, err %d)", r.rc, r.last_error);

    /* Forged handles next to a live one. */
    begin(L"alice@example.org", LUP_RETURN_ALL, session, &live);
    HANDLE forged[] = {(HANDLE)((ULONG_PTR)live ^ 0x10000), NULL, (HANDLE)(ULONG_PTR)-1};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        len = sizeof *buf;
        o = next_ex(forged[i], LUP_RETURN_ALL, &len, buf);
        CHECK(o.completions == 1 && o.code == WSA_INVALID_HANDLE && o.last_error == o.code,
              "NextEx on forged handle %p completes once with WSA_INVALID_HANDLE (%d, code %d)",
              forged[i], o.completions, o.code);
        r = end(forged[i]);
        CHECK(r.rc == SOCKET_ERROR && r.last_error == WSA_INVALID_HANDLE,
              "End of forged handle %p -> SOCKET_ERROR / WSA_INVALID_HANDLE (rc %d, err %d)",
              forged[i], r.rc, r.last_error);
    }
    /* The live lookup was not disturbed. */
    len = sizeof *buf;
    o = next_ex(live, LUP_RETURN_ALL, &len, buf);
    CHECK(o.completions == 1 && o.code == 0, "the live lookup still answers (code %d)", o.code);
    CHECK(end(live).rc == 0, "and ends");
    free(buf);
}

static void test_bad_input(void *session)
{
    HANDLE h = NULL;
    int_result r = begin(L"alice@example.org", LUP_RETURN_ALL, session, NULL);
    CHECK(r.rc == SOCKET_ERROR && r.last_error == WSAEFAULT,
          "Begin with lphLookup NULL -> SOCKET_ERROR / WSAEFAULT (rc %d, err %d)", r.rc,
          r.last_error);
    r = begin_qs(NULL, LUP_RETURN_ALL, session, &h);
    CHECK(r.rc == SOCKET_ERROR && r.last_error == WSAEINVAL,
          "Begin with lpqsRestrictions NULL -> SOCKET_ERROR / WSAEINVAL (rc %d, err %d)", r.rc,
          r.last_error);
    WSAQUERYSET2W qs;
    restriction(&qs, L"alice@example.org");
    qs.dwSize = sizeof qs - 8;
    r = begin_qs(&qs, LUP_RETURN_ALL, session, &h);
    CHECK(r.rc == SOCKET_ERROR && r.last_error == WSAEINVAL,
          "restriction dwSize %lu (too small) -> SOCKET_ERROR / WSAEINVAL (rc %d, err %d)",
          qs.dwSize, r.rc, r.last_error);
    /* A correctly filled restriction at an odd address. */
    static union {
        ULONGLONG align;
        unsigned char bytes[sizeof(WSAQUERYSET2W) + 8];
    } odd;
    restriction(&qs, L"alice@example.org");
    memcpy(odd.bytes + 1, &qs, sizeof qs);
    r = begin_qs((WSAQUERYSET2W *)(odd.bytes + 1), LUP_RETURN_ALL, session, &h);
    CHECK(r.rc == SOCKET_ERROR && r.last_error == WSAEFAULT,
          "misaligned lpqsRestrictions -> SOCKET_ERROR / WSAEFAULT (rc %d, err %d)", r.rc,
          r.last_error);
    /* A session value Startup never returned. */
    r = begin(L"alice@example.org", LUP_RETURN_ALL, (char *)session + 0x100000, &h);
    CHECK(r.rc == SOCKET_ERROR && r.last_error != 0 && r.last_error != SENTINEL_ERROR,
          "Begin with a forged session -> SOCKET_ERROR with an error code (rc %d, err %d)", r.rc,
          r.last_error);

    h = NULL;
    r = begin(L"alice@example.org", LUP_RETURN_ALL, session, &h);
    result_buffer *buf = malloc(sizeof *buf);
    outcome o = next_ex(h, LUP_RETURN_ALL, NULL, buf);
    CHECK(o.completions == 1 && o.code == WSAEFAULT && o.last_error == o.code,
          "NextEx with lpdwBufferLength NULL completes once with WSAEFAULT (%d, code %d)",
          o.completions, o.code);
    DWORD len = 1024;
    o = next_ex(h, LUP_RETURN_ALL, &len, buf->bytes + 1);
    CHECK(o.completions == 1 && o.code == WSAEFAULT && o.last_error == o.code,
          "NextEx with a misaligned buffer completes once with WSAEFAULT (%d, code %d)",
          o.completions, o.code);
    len = 1024;
    o = next_ex(h, LUP_RETURN_ALL, &len, NULL);
    CHECK(o.completions == 1 && o.code == WSAEFAULT && o.last_error == o.code,
          "NextEx with a NULL buffer but length 1024 completes once with WSAEFAULT (%d, code %d)",
          o.completions, o.code);
    len = sizeof *buf;
    o = next_ex(h, LUP_RETURN_ALL, &len, buf);
    span b = {buf->bytes, sizeof *buf};
    CHECK(o.completions == 1 && o.code == 0 &&
              string_is(b, buf->qs.lpszServiceInstanceName, L"alice@example.org"),
          "the lookup still returns alice after the refused calls (code %d)", o.code);
    free(buf);
    end(h);
}

static void set_sockaddr_in(SOCKADDR_IN *sin, const unsigned char addr[4], unsigned port)
{
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    unsigned char *p = (unsigned char *)&sin->sin_port;
    p[0] = (unsigned char)(port >> 8);
    p[1] = (unsigned char)port;
    memcpy(&sin->sin_addr, addr, 4);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *text = calloc(1, 1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    text[n] = 0;
    fclose(f);
    return text;
}

static void test_set_service(void *session, const char *directory_file)
{
    SOCKADDR_IN sin;
    set_sockaddr_in(&sin, BOB_V4, 25);
    CSADDR_INFO csaddr;
    memset(&csaddr, 0, sizeof csaddr);
    csaddr.RemoteAddr.lpSockaddr = (LPSOCKADDR)&sin;
    csaddr.RemoteAddr.iSockaddrLength = sizeof sin;
    csaddr.iSocketType = SOCK_STREAM;
    csaddr.iProtocol = IPPROTO_TCP;
    static char data[] = "bob's data";
    BLOB blob = {sizeof data - 1, (BYTE *)data};
    WSAQUERYSET2W reg;
    memset(&reg, 0, sizeof reg);
    reg.dwSize = sizeof reg;
    reg.lpszServiceInstanceName = (LPWSTR)L"bob@example.org";
    reg.lpszComment = (LPWSTR)L"Bob Example";
    reg.dwNameSpace = NS_EMAIL;
    reg.dwNumberOfCsAddrs = 1;
    reg.lpcsaBuffer = &csaddr;
    reg.lpBlob = &blob;

    outcome o = set_service(&reg, RNRSERVICE_REGISTER, 0, session);
    CHECK(o.completions == 1 && o.code == 0 && o.last_error == 0,
          "SetServiceEx REGISTER bob completes once with 0 (%d completions, code %d, last error "
          "%d)",
          o.completions, o.code, o.last_error);

    HANDLE h = NULL;
    int_result r = begin(L"bob@example.org", LUP_RETURN_ALL, session, &h);
    result_buffer *buf = malloc(sizeof *buf);
    DWORD len = sizeof *buf;
    outcome n = r.rc == 0 ? next_ex(h, LUP_RETURN_ALL, &len, buf) : (outcome){0, -1, 0, 0};
    span b = {buf->bytes, sizeof *buf};
    int found = n.completions == 1 && n.code == 0 &&
                string_is(b, buf->qs.lpszServiceInstanceName, L"bob@example.org") &&
                has_v4(b, &buf->qs, BOB_V4, 25);
    CHECK(found, "lookup of bob finds 198.51.100.7:25 (Begin %d/%d, NextEx code %d)", r.rc,
          r.last_error, n.code);
    if (n.code == 0) {
        CHECK(inside(b, buf->qs.lpBlob, sizeof(BLOB)) &&
                  buf->qs.lpBlob->cbSize == sizeof data - 1 &&
                  inside(b, buf->qs.lpBlob->pBlobData, sizeof data - 1) &&
                  memcmp(buf->qs.lpBlob->pBlobData, data, sizeof data - 1) == 0,
              "bob's blob round-trips");
    }
    if (r.rc == 0)
        end(h);

    char *text = read_file(directory_file);
    CHECK(text != NULL && strstr(text, "bob@example.org") && strstr(text, "198.51.100.7:25") &&
              strstr(text, "alice@example.org"),
          "the directory file now holds bob (198.51.100.7:25) and still alice");
    free(text);

    WSAQUERYSET2W unknown = reg;
    unknown.lpszServiceInstanceName = (LPWSTR)L"zed@example.org";
    o = set_service(&unknown, RNRSERVICE_DEREGISTER, 0, session);
    CHECK(o.completions == 1 && o.code == WSASERVICE_NOT_FOUND && o.last_error == o.code,
          "DEREGISTER of an unknown name completes once with WSASERVICE_NOT_FOUND (%d, code %d)",
          o.completions, o.code);
    o = set_service(&unknown, RNRSERVICE_DELETE, 0, session);
    CHECK(o.completions == 1 && o.code == WSASERVICE_NOT_FOUND && o.last_error == o.code,
          "DELETE of an unknown name completes once with WSASERVICE_NOT_FOUND (%d, code %d)",
          o.completions, o.code);

    WSAQUERYSET2W no_blob = reg;
    no_blob.lpszServiceInstanceName = (LPWSTR)L"dave@example.org";
    no_blob.lpBlob = NULL;
    o = set_service(&no_blob, RNRSERVICE_REGISTER, 0, session);
    CHECK(o.completions == 1 && o.code == WSAEINVAL && o.last_error == o.code,
          "REGISTER without lpBlob completes once with WSAEINVAL (%d, code %d)", o.completions,
          o.code);

    o = set_service(NULL, RNRSERVICE_REGISTER, 0, session);
    CHECK(o.completions == 1 && o.code == WSAEINVAL && o.last_error == o.code,
          "SetServiceEx with lpqsRegInfo NULL completes once with WSAEINVAL (%d, code %d)",
          o.completions, o.code);
    o = set_service(&reg, RNRSERVICE_REGISTER, 0, (char *)session + 0x100000);
    CHECK(o.completions == 1 && o.code != 0 && o.last_error == o.code,
          "SetServiceEx with a forged session completes once with an error (%d, code %d)",
          o.completions, o.code);

    /* DELETE removes bob again: gone from lookups and from the file. */
    o = set_service(&reg, RNRSERVICE_DELETE, 0, session);
    CHECK(o.completions == 1 && o.code == 0 && o.last_error == 0,
          "DELETE bob completes once with 0 (%d, code %d)", o.completions, o.code);
    h = NULL;
    r = begin(L"bob@example.org", LUP_RETURN_ALL, session, &h);
    int code = r.rc == SOCKET_ERROR ? r.last_error : -1;
    if (r.rc == 0) {
        len = sizeof *buf;
        n = next_ex(h, LUP_RETURN_ALL, &len, buf);
        code = n.completions == 1 ? n.code : -1;
        end(h);
    }
    CHECK(code == WSASERVICE_NOT_FOUND, "bob is no longer found (%d)", code);
    text = read_file(directory_file);
    CHECK(text != NULL && !strstr(text, "bob@example.org") && strstr(text, "alice@example.org"),
          "the directory file no longer holds bob");
    free(text);
    free(buf);
}

/* Registrations while lookups run: a writer must not fail because readers of the same process
 * have the directory file open (the store replaces the file by renaming a new copy over it,
 * which classic Windows rename semantics refuse while any handle is open), and no lookup may
 * see a partly written file. STRESS_LOOKUP_THREADS threads run Begin / NextEx / NextEx / End
 * for alice in a loop while this thread registers erin STRESS_REGISTRATIONS times, each time
 * with another port. */
#define STRESS_LOOKUP_THREADS 3
#define STRESS_REGISTRATIONS 120
#define STRESS_LOOKUP_CAP 10000 /* per thread: keeps the calls within the completion log */

typedef struct {
    void *session;
    volatile LONG *stop;
    HANDLE started;
    LONG lookups;     /* complete lookups (Begin, NextEx answer, NextEx WSA_E_NO_MORE, End) */
    LONG bad;         /* lookups with any other outcome */
    int first_bad[3]; /* Begin rc / first NextEx code / second NextEx code of the first bad */
} stress_job;

static DWORD WINAPI stress_lookups(LPVOID arg)
{
    stress_job *job = arg;
    result_buffer *buf = malloc(sizeof *buf);
    span b = {buf->bytes, sizeof *buf};
    while (!InterlockedCompareExchange(job->stop, 0, 0) && job->lookups + job->bad < STRESS_LOOKUP_CAP) {
        HANDLE h = NULL;
        int_result r = begin(L"alice@example.org", LUP_RETURN_ALL, job->session, &h);
        outcome first = {0, -1, 0, 0}, second = {0, -1, 0, 0};
        int good = r.rc == 0;
        if (good) {
            DWORD len = sizeof *buf;
            first = next_ex(h, LUP_RETURN_ALL, &len, buf);
            good = first.completions == 1 && first.code == 0 &&
                   string_is(b, buf->qs.lpszServiceInstanceName, L"alice@example.org") &&
                   has_v4(b, &buf->qs, ALICE_V4, 25);
            len = sizeof *buf;
            second = next_ex(h, LUP_RETURN_ALL, &len, buf);
            good = good && second.completions == 1 && second.code == WSA_E_NO_MORE;
            good = end(h).rc == 0 && good;
        }
        if (good) {
            InterlockedIncrement(&job->lookups);
        } else if (InterlockedIncrement(&job->bad) == 1) {
            job->first_bad[0] = r.rc == 0 ? 0 : r.last_error;
            job->first_bad[1] = first.code;
            job->first_bad[2] = second.code;
        }
        if (job->lookups + job->bad == 1)
            SetEvent(job->started);
    }
    SetEvent(job->started);
    free(buf);
    return 0;
}

static void test_set_service_during_lookups(void *session, const char *directory_file)
{
    volatile LONG stop = 0;
    stress_job jobs[STRESS_LOOKUP_THREADS];
    HANDLE threads[STRESS_LOOKUP_THREADS];
    for (int i = 0; i < STRESS_LOOKUP_THREADS; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].session = session;
        jobs[i].stop = &stop;
        jobs[i].started = CreateEventW(NULL, TRUE, FALSE, NULL);
        threads[i] = CreateThread(NULL, 0, stress_lookups, &jobs[i], 0, NULL);
        if (threads[i] == NULL)
            bail("CreateThread for the lookup loop");
    }
    /* Every lookup thread is looking up before the first registration. */
    for (int i = 0; i < STRESS_LOOKUP_THREADS; i++)
        WaitForSingleObject(jobs[i].started, INFINITE);

    SOCKADDR_IN sin;
    CSADDR_INFO csaddr;
    memset(&csaddr, 0, sizeof csaddr);
    csaddr.RemoteAddr.lpSockaddr = (LPSOCKADDR)&sin;
    csaddr.RemoteAddr.iSockaddrLength = sizeof sin;
    csaddr.iSocketType = SOCK_STREAM;
    csaddr.iProtocol = IPPROTO_TCP;
    static char data[] = "erin's data";
    BLOB blob = {sizeof data - 1, (BYTE *)data};
    WSAQUERYSET2W reg;
    memset(&reg, 0, sizeof reg);
    reg.dwSize = sizeof reg;
    reg.lpszServiceInstanceName = (LPWSTR)L"erin@example.org";
    reg.dwNameSpace = NS_EMAIL;
    reg.dwNumberOfCsAddrs = 1;
    reg.lpcsaBuffer = &csaddr;
    reg.lpBlob = &blob;

    int failures = 0, first_failure = 0, no_recovery = 0;
    unsigned last_port = 0;
    DWORD started = GetTickCount();
    for (int i = 0; i < STRESS_REGISTRATIONS; i++) {
        last_port = 10000u + (unsigned)i;
        set_sockaddr_in(&sin, BOB_V4, last_port);
        outcome o = set_service(&reg, RNRSERVICE_REGISTER, 0, session);
        if (o.completions != 1 || o.code != 0 || o.last_error != 0) {
            if (failures++ == 0)
                first_failure = o.completions == 1 ? o.code : -1;
            no_recovery += o.code == WSANO_RECOVERY;
        }
    }
    DWORD elapsed = GetTickCount() - started;
    LONG during = 0;
    int capped = 0;
    for (int i = 0; i < STRESS_LOOKUP_THREADS; i++) {
        LONG done = InterlockedCompareExchange(&jobs[i].lookups, 0, 0) +
                    InterlockedCompareExchange(&jobs[i].bad, 0, 0);
        during += InterlockedCompareExchange(&jobs[i].lookups, 0, 0);
        capped += done >= STRESS_LOOKUP_CAP;
    }
    InterlockedExchange(&stop, 1);
    WaitForMultipleObjects(STRESS_LOOKUP_THREADS, threads, TRUE, INFINITE);
    LONG lookups = 0, bad = 0;
    int first_bad[3] = {0, 0, 0};
    for (int i = 0; i < STRESS_LOOKUP_THREADS; i++) {
        lookups += jobs[i].lookups;
        if (jobs[i].bad && !bad)
            memcpy(first_bad, jobs[i].first_bad, sizeof first_bad);
        bad += jobs[i].bad;
        CloseHandle(threads[i]);
        CloseHandle(jobs[i].started);
    }
    NOTE("%d registrations in %lu ms while %d threads looked up alice: %d failed (%d with "
         "WSANO_RECOVERY), %ld lookups completed during the registrations, %ld in all, %ld bad",
         STRESS_REGISTRATIONS, (unsigned long)elapsed, STRESS_LOOKUP_THREADS, failures,
         no_recovery, (long)during, (long)lookups, (long)bad);
    CHECK(failures == 0,
          "%d SetServiceEx REGISTER calls during lookups on %d threads all complete once with 0 "
          "(%d failed, first code %d)",
          STRESS_REGISTRATIONS, STRESS_LOOKUP_THREADS, failures, first_failure);
    CHECK(capped == 0,
          "the lookup threads were still looking up when the last registration completed (%d "
          "of %d had stopped at %d lookups)",
          capped, STRESS_LOOKUP_THREADS, STRESS_LOOKUP_CAP);
    CHECK(bad == 0 && lookups > 0,
          "every lookup during the registrations finds alice, then WSA_E_NO_MORE (%ld good, %ld "
          "bad; first bad: Begin %d, NextEx %d, %d)",
          (long)lookups, (long)bad, first_bad[0], first_bad[1], first_bad[2]);

    char port[32];
    snprintf(port, sizeof port, "198.51.100.7:%u", last_port);
    char *text = read_file(directory_file);
    CHECK(text != NULL && strstr(text, "erin@example.org") && strstr(text, port) &&
              strstr(text, "alice@example.org"),
          "the directory file holds the last registration of erin (%s) and still alice", port);
    free(text);
    outcome o = set_service(&reg, RNRSERVICE_DELETE, 0, session);
    CHECK(o.completions == 1 && o.code == 0, "DELETE erin afterwards completes once with 0 (%d, "
          "code %d)", o.completions, o.code);
}

/* A handle on the directory file the provider does not know of, as another process's would be
 * (an editor, a management tool): under classic Windows rename semantics the provider's replace
 * of the file is refused while it is open, and is tried again for about 150 ms. */
typedef struct {
    const WCHAR *path;
    DWORD hold_ms;
    HANDLE opened;
    int ok;
} holder_job;

static DWORD WINAPI hold_file(LPVOID arg)
{
    holder_job *job = arg;
    HANDLE file = CreateFileW(job->path, GENERIC_READ,
                              FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                              OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    job->ok = file != INVALID_HANDLE_VALUE;
    SetEvent(job->opened);
    if (job->ok) {
        Sleep(job->hold_ms);
        CloseHandle(file);
    }
    return 0;
}

/* Registers frank at `port` while another handle holds the directory file open for `hold_ms`;
 * returns the outcome and, in *elapsed_ms, how long SetServiceEx took. */
static outcome register_while_held(void *session, const WCHAR *path, DWORD hold_ms, unsigned port,
                                   DWORD *elapsed_ms)
{
    holder_job job = {path, hold_ms, CreateEventW(NULL, TRUE, FALSE, NULL), 0};
    HANDLE thread = CreateThread(NULL, 0, hold_file, &job, 0, NULL);
    if (thread == NULL)
        bail("CreateThread for the file holder");
    WaitForSingleObject(job.opened, INFINITE);
    if (!job.ok)
        bail("cannot open the directory file from the harness");

    SOCKADDR_IN sin;
    set_sockaddr_in(&sin, BOB_V4, port);
    CSADDR_INFO csaddr;
    memset(&csaddr, 0, sizeof csaddr);
    csaddr.RemoteAddr.lpSockaddr = (LPSOCKADDR)&sin;
    csaddr.RemoteAddr.iSockaddrLength = sizeof sin;
    static char data[] = "frank's data";
    BLOB blob = {sizeof data - 1, (BYTE *)data};
    WSAQUERYSET2W reg;
    memset(&reg, 0, sizeof reg);
    reg.dwSize = sizeof reg;
    reg.lpszServiceInstanceName = (LPWSTR)L"frank@example.org";
    reg.dwNameSpace = NS_EMAIL;
    reg.dwNumberOfCsAddrs = 1;
    reg.lpcsaBuffer = &csaddr;
    reg.lpBlob = &blob;
    DWORD started = GetTickCount();
    outcome o = set_service(&reg, RNRSERVICE_REGISTER, 0, session);
    *elapsed_ms = GetTickCount() - started;
    WaitForSingleObject(thread, INFINITE);
    CloseHandle(thread);
    CloseHandle(job.opened);
    return o;
}

static void test_set_service_while_file_held(void *session, const char *directory_file)
{
    WCHAR wide[MAX_PATH], path[MAX_PATH];
    MultiByteToWideChar(CP_ACP, 0, directory_file, -1, wide, MAX_PATH);
    if (GetFullPathNameW(wide, MAX_PATH, path, NULL) == 0)
        bail("GetFullPathNameW failed");

    DWORD elapsed = 0;
    outcome o = register_while_held(session, path, 60, 2501, &elapsed);
    CHECK(o.completions == 1 && o.code == 0 && o.last_error == 0 && elapsed >= 40,
          "REGISTER while another handle holds the file for 60 ms waits for it and completes "
          "once with 0 (%d, code %d, %lu ms)",
          o.completions, o.code, (unsigned long)elapsed);

    o = register_while_held(session, path, 2000, 2502, &elapsed);
    CHECK(o.completions == 1 && o.code == WSANO_RECOVERY && o.last_error == o.code &&
              elapsed >= 100 && elapsed < 1000,
          "REGISTER while another handle holds the file for 2 s gives up within 1 s: "
          "WSANO_RECOVERY (%d, code %d, %lu ms)",
          o.completions, o.code, (unsigned long)elapsed);

    char *text = read_file(directory_file);
    CHECK(text != NULL && strstr(text, "198.51.100.7:2501") && !strstr(text, "198.51.100.7:2502") &&
              strstr(text, "alice@example.org"),
          "the directory file holds the registration that succeeded, not the refused one");
    free(text);
    WSAQUERYSET2W reg;
    memset(&reg, 0, sizeof reg);
    reg.dwSize = sizeof reg;
    reg.lpszServiceInstanceName = (LPWSTR)L"frank@example.org";
    reg.dwNameSpace = NS_EMAIL;
    o = set_service(&reg, RNRSERVICE_DELETE, 0, session);
    CHECK(o.completions == 1 && o.code == 0, "DELETE frank afterwards completes once with 0 (%d, "
          "code %d)", o.completions, o.code);
}

static void test_rundown(void)
{
    void *session = startup_session("second session");
    HANDLE h = NULL;
    int_result r = begin(L"alice@example.org", LUP_RETURN_ALL, session, &h);
    CHECK(r.rc == 0, "Begin on the second session -> 0 (rc %d)", r.rc);
    GUID id = provider_id;
    nsp_rundown(&id, session);
    CHECK(1, "NSPv2ClientSessionRundown returned");
    result_buffer *buf = malloc(sizeof *buf);
    DWORD len = sizeof *buf;
    outcome o = next_ex(h, LUP_RETURN_ALL, &len, buf);
    free(buf);
    CHECK(o.completions == 1 && o.code == WSA_INVALID_HANDLE,
          "the run-down session's lookup is closed: NextEx -> WSA_INVALID_HANDLE (%d, code %d)",
          o.completions, o.code);
    id = provider_id;
    int rc = nsp_cleanup(&id, session);
    CHECK(rc == 0, "Cleanup of the run-down session -> 0 (rc %d, err %d)", rc,
          rc ? wsa_get_last_error() : 0);
}

static void test_cleanup(void *session)
{
    GUID id = provider_id;
    int rc = nsp_cleanup(&id, session);
    CHECK(rc == 0, "NSPv2Cleanup -> 0 (rc %d)", rc);
    id = provider_id;
    wsa_set_last_error(SENTINEL_ERROR);
    rc = nsp_cleanup(&id, session);
    int err = wsa_get_last_error();
    CHECK(rc == SOCKET_ERROR && err == WSAEINVAL,
          "second Cleanup of the session -> SOCKET_ERROR / WSAEINVAL (rc %d, err %d)", rc, err);
}

/* Each issued call completed exactly once, counted again at the end: a late or duplicate
 * completion (after the call returned) shows up here. */
static void test_completion_accounting(void)
{
    LONG duplicates = 0;
    EnterCriticalSection(&log_lock);
    LONG entries = log_length, strays = log_strays, overflow = log_overflow;
    for (LONG i = 1; i < LOG_CAPACITY; i++)
        if (log_entries[i].count > 1)
            duplicates += log_entries[i].count - 1;
    LeaveCriticalSection(&log_lock);
    CHECK(entries == calls_issued && strays == 0 && duplicates == 0 && overflow == 0,
          "%ld calls issued, %ld completions: none stray, none repeated (%ld strays, %ld "
          "duplicates, %ld past the log)",
          (long)calls_issued, (long)entries, (long)strays, (long)duplicates, (long)overflow);
}

/* ------------------------------------------------------------------------------------------- */
/* End during NextEx, against the slow backend (child process).                                */

typedef struct {
    HANDLE lookup;
    HANDLE call;
    HANDLE started;
    DWORD thread;
    DWORD elapsed_ms;
    int last_error;
    DWORD len;
    result_buffer buf;
} next_job;

static DWORD WINAPI next_thread(LPVOID arg)
{
    next_job *job = (next_job *)arg;
    job->thread = GetCurrentThreadId();
    job->len = sizeof job->buf;
    SetEvent(job->started);
    DWORD start = GetTickCount();
    wsa_set_last_error(SENTINEL_ERROR);
    nsp_next_ex(job->call, job->lookup, LUP_RETURN_ALL, &job->len, &job->buf.qs);
    job->last_error = wsa_get_last_error();
    job->elapsed_ms = GetTickCount() - start;
    return 0;
}

static HANDLE start_next(next_job *job, HANDLE lookup)
{
    memset(job, 0, sizeof *job);
    job->lookup = lookup;
    job->call = new_call();
    job->started = CreateEventA(NULL, TRUE, FALSE, NULL);
    HANDLE thread = CreateThread(NULL, 0, next_thread, job, 0, NULL);
    WaitForSingleObject(job->started, INFINITE);
    return thread;
}

static void slow_single(void *session)
{
    HANDLE h = NULL;
    int_result r = begin(L"alice@example.org", LUP_RETURN_ALL, session, &h);
    CHECK(r.rc == 0, "Begin(alice) -> 0 (rc %d)", r.rc);
    static next_job job;
    HANDLE thread = start_next(&job, h);
    Sleep(200);
    CHECK(completions_of(job.call, NULL, NULL) == 0,
          "NextEx is blocked in the slow backend (no completion after 200 ms)");
    DWORD start = GetTickCount();
    r = end(h);
    DWORD end_ms = GetTickCount() - start;
    CHECK(r.rc == 0, "End on the main thread during NextEx -> 0 (rc %d, %lu ms)", r.rc, end_ms);
    DWORD wait = WaitForSingleObject(thread, 10000);
    CHECK(wait == WAIT_OBJECT_0, "the NextEx thread returns within 10 s");
    if (wait != WAIT_OBJECT_0)
        bail("NextEx thread hung (the provider's wait was not cancelled)");
    CHECK(job.elapsed_ms < 10000, "NextEx returned after %lu ms, well before the 30 s delay",
          job.elapsed_ms);
    INT code = -1;
    DWORD by = 0;
    int n = completions_of(job.call, &code, &by);
    CHECK(n == 1 && code == WSA_E_CANCELLED,
          "exactly one completion, WSA_E_CANCELLED (10111, never 10103) (%d, code %d)", n, code);
    NOTE("the cancellation was completed on thread %lu (%s; End's thread %lu, NextEx thread %lu)",
         by,
         by == GetCurrentThreadId() ? "End's"
         : by == job.thread         ? "NextEx's"
                                    : "another",
         GetCurrentThreadId(), job.thread);
    CHECK(job.last_error == WSA_E_CANCELLED,
          "WSAGetLastError on the NextEx thread == WSA_E_CANCELLED (%d)", job.last_error);
    CloseHandle(thread);
    CloseHandle(job.started);

    DWORD len = sizeof job.buf;
    outcome o = next_ex(h, LUP_RETURN_ALL, &len, &job.buf);
    CHECK(o.completions == 1 && o.code == WSA_INVALID_HANDLE,
          "NextEx on the ended handle afterwards -> WSA_INVALID_HANDLE (%d, code %d)",
          o.completions, o.code);
    r = end(h);
    CHECK(r.rc == SOCKET_ERROR && r.last_error == WSA_INVALID_HANDLE,
          "End again -> SOCKET_ERROR / WSA_INVALID_HANDLE (rc %d, err %d)", r.rc, r.last_error);
}

static void slow_concurrent(void *session)
{
    static next_job jobs[CONCURRENT];
    HANDLE threads[CONCURRENT], lookups[CONCURRENT];
    int begun = 0;
    for (int i = 0; i < CONCURRENT; i++) {
        lookups[i] = NULL;
        begun += begin(L"alice@example.org", LUP_RETURN_ALL, session, &lookups[i]).rc == 0;
        threads[i] = start_next(&jobs[i], lookups[i]);
    }
    CHECK(begun == CONCURRENT, "%d of %d lookups begun", begun, CONCURRENT);
    Sleep(500); /* every thread is past its `started` event and inside the provider's wait */
    int early = 0;
    for (int i = 0; i < CONCURRENT; i++)
        early += completions_of(jobs[i].call, NULL, NULL);
    CHECK(early == 0, "all %d NextEx calls blocked (%d completions so far)", CONCURRENT, early);
    int ends = 0;
    for (int i = 0; i < CONCURRENT; i++)
        ends += end(lookups[i]).rc == 0;
    CHECK(ends == CONCURRENT, "%d of %d Ends -> 0", ends, CONCURRENT);
    DWORD wait = WaitForMultipleObjects(CONCURRENT, threads, TRUE, 10000);
    CHECK(wait == WAIT_OBJECT_0, "all %d NextEx threads returned within 10 s", CONCURRENT);
    if (wait != WAIT_OBJECT_0)
        bail("NextEx threads hung");
    int once = 0, cancelled = 0, last_errors = 0, by_end = 0;
    DWORD slowest = 0;
    for (int i = 0; i < CONCURRENT; i++) {
        INT code = -1;
        DWORD by = 0;
        once += completions_of(jobs[i].call, &code, &by) == 1;
        cancelled += code == WSA_E_CANCELLED;
        last_errors += jobs[i].last_error == WSA_E_CANCELLED;
        by_end += by == GetCurrentThreadId();
        if (jobs[i].elapsed_ms > slowest)
            slowest = jobs[i].elapsed_ms;
        CloseHandle(threads[i]);
        CloseHandle(jobs[i].started);
    }
    CHECK(once == CONCURRENT && cancelled == CONCURRENT,
          "%d x exactly one completion, %d x WSA_E_CANCELLED", once, cancelled);
    CHECK(last_errors == CONCURRENT, "%d NextEx threads saw WSAGetLastError == WSA_E_CANCELLED",
          last_errors);
    CHECK(slowest < 10000, "slowest NextEx returned after %lu ms", slowest);
    NOTE("%d of %d cancellations completed on End's thread", by_end, CONCURRENT);
}

static int slow_child(const char *dll_path)
{
    indent = "    ";
    write_directory("nsp_directory_slow.txt", L"EMAIL_DIRECTORY_FILE");
    WCHAR delay[32];
    if (GetEnvironmentVariableW(L"EMAIL_DIRECTORY_DELAY_MS", delay, 32) == 0)
        bail("--slow without EMAIL_DIRECTORY_DELAY_MS");
    export_fn entry = load_provider(dll_path);
    get_routine(entry);
    void *session = startup_session("slow child");
    slow_single(session);
    slow_concurrent(session);
    GUID id = provider_id;
    int rc = nsp_cleanup(&id, session);
    CHECK(rc == 0, "Cleanup -> 0 (rc %d)", rc);
    test_completion_accounting();
    return finish();
}

/* EMAIL_DIRECTORY_DELAY_MS is read once per process, at the first export call, so the slow
 * backend needs a process of its own: the harness runs itself with --slow and that variable
 * set. The child inherits stdout/stderr, so its (indented) lines appear in this log. */
static void run_slow_child(const char *dll_path)
{
    WCHAR exe[MAX_PATH], dll[MAX_PATH], cmd[3 * MAX_PATH];
    GetModuleFileNameW(NULL, exe, MAX_PATH);
    MultiByteToWideChar(CP_ACP, 0, dll_path, -1, dll, MAX_PATH);
    wcscpy(cmd, L"\"");
    wcscat(cmd, exe);
    wcscat(cmd, L"\" \"");
    wcscat(cmd, dll);
    wcscat(cmd, L"\" --slow");

    SetEnvironmentVariableW(L"EMAIL_DIRECTORY_DELAY_MS", SLOW_DELAY_MS);
    STARTUPINFOW si;
    memset(&si, 0, sizeof si);
    si.cb = sizeof si;
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    PROCESS_INFORMATION pi;
    NOTE("running the slow-backend child (EMAIL_DIRECTORY_DELAY_MS=%ls)", SLOW_DELAY_MS);
    fflush(stdout);
    BOOL created = CreateProcessW(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
    SetEnvironmentVariableW(L"EMAIL_DIRECTORY_DELAY_MS", NULL);
    if (!created) {
        CHECK(0, "slow-backend child (CreateProcessW failed: %lu)", GetLastError());
        return;
    }
    DWORD wait = WaitForSingleObject(pi.hProcess, 60000);
    DWORD exit_code = 1;
    if (wait == WAIT_OBJECT_0) {
        GetExitCodeProcess(pi.hProcess, &exit_code);
    } else {
        TerminateProcess(pi.hProcess, 3);
        WaitForSingleObject(pi.hProcess, 5000);
    }
    CHECK(wait == WAIT_OBJECT_0 && exit_code == 0, "slow-backend child (%s, exit code %lu)",
          wait == WAIT_OBJECT_0 ? "exited" : "timed out after 60 s, terminated", exit_code);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
}

/* ------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "email_directory.dll";
    InitializeCriticalSection(&log_lock);
    if (argc > 2 && strcmp(argv[2], "--slow") == 0)
        return slow_child(path);

    /* Configuration is read at the first export call: set it before. No delay here. */
    write_directory("nsp_directory.txt", L"EMAIL_DIRECTORY_FILE");
    SetEnvironmentVariableW(L"EMAIL_DIRECTORY_DELAY_MS", NULL);

    export_fn entry = load_provider(path);
    test_export(entry);
    void *session = startup_session("main session");
    if (session == NULL)
        bail("no session");
    test_lookup_alice(session);
    test_narrowing(session, LUP_RETURN_NAME, LUP_RETURN_ALL, "Begin NAME, NextEx ALL");
    test_narrowing(session, LUP_RETURN_ALL, LUP_RETURN_NAME, "Begin ALL, NextEx NAME");
    test_wildcard(session);
    test_unknown_name(session);
    test_handles(session);
    test_bad_input(session);
    test_set_service(session, "nsp_directory.txt");
    test_set_service_during_lookups(session, "nsp_directory.txt");
    test_set_service_while_file_held(session, "nsp_directory.txt");
    test_rundown();
    test_cleanup(session);
    test_completion_accounting();
    run_slow_child(path);
    return finish();
}
