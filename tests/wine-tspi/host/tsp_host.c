/*
 * TSPI host harness: plays TAPISRV against a real service provider DLL (the line-simulator
 * sample, line_simulator.dll) through its TSPI_* exports, on real threads, under Wine.
 *
 * The ABI is taken from mingw-w64's tspi.h / tapi.h, a source independent of the Rust bindings:
 * every export is called through a pointer of type __typeof__(&TSPI_xxx), i.e. the prototype
 * tspi.h declares; LINEDEVCAPS and LINECALLSTATUS are mingw's structs; the callbacks have
 * tspi.h's ASYNC_COMPLETION and LINEEVENT types; constants (INITIALIZE_NEGOTIATION,
 * LINETSPIOPTION_NONREENTRANT, LINEERR_*, LINECALLSTATE_*, LINE_NEWCALL) come from the same headers.
 *
 * The provider reads its scenario when it is first used, so the harness writes a scenario file
 * into the temporary directory and sets LINE_SIMULATOR_SCENARIO before LoadLibrary. In it every
 * drop stays pending for seconds (so TSPI_lineCloseCall arrives during the drop), one number
 * keeps TSPI_lineMakeCall pending, and one number makes the provider panic.
 *
 * Prints `ok N - ...` / `not ok N - ...` per check, then "N passed, M failed" and
 * "tsp_host: N/N checks passed"; exits non-zero on any failure. Usage: tsp_host.exe <provider.dll>.
 *
 * Built and run by `cargo xtask test` (x86_64-w64-mingw32-gcc, then wine, cwd = target/wine/bin).
 */
#include <windows.h>
#include <tapi.h>
#include <tspi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define TSPI_2_0 0x00020000u
#define TSPI_2_2 0x00020002u
#define TSPI_3_0 0x00030000u
#define PROVIDER_ID 7u
#define LINE_BASE 10u
#define WAIT_MS 5000
#define DROP_DELAY_MS 3000

#define ERR(x) ((LONG)(x))

/* ------------------------------------------------------------------------------------------- */
/* The exports, typed by mingw-w64's tspi.h prototypes.                                        */

#define EXPORTS(X)                                                                                 \
    X(TSPI_lineNegotiateTSPIVersion)                                                               \
    X(TSPI_providerEnumDevices)                                                                    \
    X(TSPI_providerInit)                                                                           \
    X(TSPI_providerShutdown)                                                                       \
    X(TSPI_providerUIIdentify)                                                                     \
    X(TSPI_lineGetDevCaps)                                                                         \
    X(TSPI_lineOpen)                                                                               \
    X(TSPI_lineClose)                                                                              \
    X(TSPI_lineMakeCall)                                                                           \
    X(TSPI_lineDrop)                                                                               \
    X(TSPI_lineCloseCall)                                                                          \
    X(TSPI_lineGetCallStatus)

#define DECLARE_POINTER(name) static __typeof__(&name) p_##name;
EXPORTS(DECLARE_POINTER)

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
    printf("tsp_host: %d/%d checks passed\n", passed, passed + failed);
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
/* TAPISRV's side: the callbacks, recording everything under a critical section.               */

typedef struct {
    int completion; /* 1: ASYNC_COMPLETION, 0: LINEEVENT */
    DWORD request;
    LONG result;
    HTAPILINE ht_line;
    HTAPICALL ht_call;
    DWORD msg;
    DWORD_PTR params[3];
} record_t;

#define MAX_RECORDS 4096
static record_t records[MAX_RECORDS];
static int record_count;
static CRITICAL_SECTION record_lock;
static volatile LONG inside_callback;
static volatile LONG overlaps;
static volatile LONG lost_records;
static LONG_PTR next_ht_call = 0x7000;

static void add_record(const record_t *record)
{
    EnterCriticalSection(&record_lock);
    if (record_count < MAX_RECORDS)
        records[record_count++] = *record;
    else
        InterlockedIncrement(&lost_records);
    LeaveCriticalSection(&record_lock);
}

static void enter_callback(void)
{
    if (InterlockedIncrement(&inside_callback) > 1)
        InterlockedIncrement(&overlaps);
    /* Widen the window a little so overlapping callbacks would be seen. */
    Sleep(0);
}

static void leave_callback(void) { InterlockedDecrement(&inside_callback); }

static void CALLBACK completion_proc(DRV_REQUESTID request, LONG result)
{
    enter_callback();
    record_t record = {0};
    record.completion = 1;
    record.request = request;
    record.result = result;
    add_record(&record);
    leave_callback();
}

static void CALLBACK line_event(HTAPILINE ht_line, HTAPICALL ht_call, DWORD msg, DWORD_PTR param1,
                                DWORD_PTR param2, DWORD_PTR param3)
{
    enter_callback();
    record_t record = {0};
    record.ht_line = ht_line;
    record.ht_call = ht_call;
    record.msg = msg;
    record.params[0] = param1;
    record.params[1] = param2;
    record.params[2] = param3;
    if (msg == (DWORD)LINE_NEWCALL && param2) {
        /* TAPI stores its handle for the new call into the LPHTAPICALL of dwParam2. */
        HTAPICALL fresh = (HTAPICALL)(uintptr_t)InterlockedIncrement64((LONG64 *)&next_ht_call);
        *(LPHTAPICALL)param2 = fresh;
        record.params[1] = (DWORD_PTR)fresh;
    }
    add_record(&record);
    leave_callback();
}

static void CALLBACK line_create_proc(HTAPILINE ht_line, HTAPICALL ht_call, DWORD msg,
                                      DWORD_PTR param1, DWORD_PTR param2, DWORD_PTR param3)
{
    line_event(ht_line, ht_call, msg, param1, param2, param3);
}

static void CALLBACK phone_create_proc(HTAPIPHONE ht_phone, DWORD msg, DWORD_PTR param1,
                                       DWORD_PTR param2, DWORD_PTR param3)
{
    (void)ht_phone;
    (void)msg;
    (void)param1;
    (void)param2;
    (void)param3;
}

static int snapshot_count(void)
{
    EnterCriticalSection(&record_lock);
    int count = record_count;
    LeaveCriticalSection(&record_lock);
    return count;
}

/* Completions of `request` from record `from` on: how many, and the first result. */
static int completions_of(DWORD request, LONG *first)
{
    int count = 0;
    EnterCriticalSection(&record_lock);
    for (int i = 0; i < record_count; i++) {
        if (records[i].completion && records[i].request == request) {
            if (count == 0 && first)
                *first = records[i].result;
            count++;
        }
    }
    LeaveCriticalSection(&record_lock);
    return count;
}

/* Index of the first completion of `request`, or -1. */
static int completion_index(DWORD request)
{
    int index = -1;
    EnterCriticalSection(&record_lock);
    for (int i = 0; i < record_count && index < 0; i++)
        if (records[i].completion && records[i].request == request)
            index = i;
    LeaveCriticalSection(&record_lock);
    return index;
}

static int wait_completion(DWORD request, int timeout_ms, LONG *result)
{
    for (int waited = 0;; waited += 5) {
        if (completions_of(request, result) > 0)
            return 1;
        if (waited >= timeout_ms)
            return 0;
        Sleep(5);
    }
}

/* Events carrying `ht_call`, from record index `from` on. */
static int events_of_call(HTAPICALL ht_call, int from)
{
    int count = 0;
    EnterCriticalSection(&record_lock);
    for (int i = from; i < record_count; i++)
        if (!records[i].completion && records[i].ht_call == ht_call)
            count++;
    LeaveCriticalSection(&record_lock);
    return count;
}

/* Events for `ht_line` (any call), from record index `from` on. */
static int events_of_line(HTAPILINE ht_line, int from)
{
    int count = 0;
    EnterCriticalSection(&record_lock);
    for (int i = from; i < record_count; i++)
        if (!records[i].completion && records[i].ht_line == ht_line)
            count++;
    LeaveCriticalSection(&record_lock);
    return count;
}

/* The LINE_CALLSTATE values of `ht_call`, in order; returns how many (at most `max`). Also the
 * record index of the first one. */
static int states_of(HTAPICALL ht_call, DWORD *states, DWORD *modes, int max, int *first_index)
{
    int count = 0;
    if (first_index)
        *first_index = -1;
    EnterCriticalSection(&record_lock);
    for (int i = 0; i < record_count; i++) {
        if (!records[i].completion && records[i].ht_call == ht_call &&
            records[i].msg == (DWORD)LINE_CALLSTATE) {
            if (count == 0 && first_index)
                *first_index = i;
            if (count < max) {
                states[count] = (DWORD)records[i].params[0];
                if (modes)
                    modes[count] = (DWORD)records[i].params[1];
            }
            count++;
        }
    }
    LeaveCriticalSection(&record_lock);
    return count;
}

static int wait_state(HTAPICALL ht_call, DWORD state, int timeout_ms)
{
    DWORD states[64];
    for (int waited = 0;; waited += 5) {
        int n = states_of(ht_call, states, NULL, 64, NULL);
        for (int i = 0; i < n && i < 64; i++)
            if (states[i] == state)
                return 1;
        if (waited >= timeout_ms)
            return 0;
        Sleep(5);
    }
}

/* ------------------------------------------------------------------------------------------- */

static const wchar_t *utf16_at(const BYTE *base, DWORD total, DWORD size, DWORD offset)
{
    if (size < 2 || offset + size > total || offset % 2)
        return NULL;
    const wchar_t *text = (const wchar_t *)(base + offset);
    if (text[size / 2 - 1] != 0)
        return NULL;
    return text;
}

static int ends_with_ci(const wchar_t *text, const wchar_t *suffix)
{
    size_t t = wcslen(text), s = wcslen(suffix);
    return t >= s && _wcsicmp(text + t - s, suffix) == 0;
}

static void write_scenario(wchar_t *path)
{
    wchar_t dir[MAX_PATH];
    DWORD len = GetTempPathW(MAX_PATH, dir);
    if (len == 0 || len > MAX_PATH - 40)
        bail("GetTempPathW failed");
    swprintf(path, MAX_PATH, L"%lstsp_host_scenario_%lu.txt", dir, GetCurrentProcessId());
    const char *text = "# written by tsp_host.exe\n"
                       "timing dialing=20 proceeding=20 drop=3000\n"
                       "default answer after=20\n"
                       "number 5552222 answer setup=30000\n"
                       "number 5550000 panic\n";
    HANDLE file = CreateFileW(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    if (file == INVALID_HANDLE_VALUE)
        bail("cannot create the scenario file");
    DWORD written = 0;
    WriteFile(file, text, (DWORD)strlen(text), &written, NULL);
    CloseHandle(file);
    if (written != strlen(text))
        bail("cannot write the scenario file");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: tsp_host.exe <provider.dll>\n");
        return 2;
    }
    InitializeCriticalSection(&record_lock);

    wchar_t scenario[MAX_PATH];
    write_scenario(scenario);
    SetEnvironmentVariableW(L"LINE_SIMULATOR_SCENARIO", scenario);
    SetEnvironmentVariableW(L"LINE_SIMULATOR_LINES", L"2");
    NOTE("scenario file %ls", scenario);

    char full[MAX_PATH];
    if (!GetFullPathNameA(argv[1], MAX_PATH, full, NULL))
        bail("GetFullPathNameA failed");
    HMODULE dll = LoadLibraryA(full);
    if (!dll) {
        NOTE("LoadLibrary(%s) failed: %lu", full, GetLastError());
        bail("LoadLibrary of the provider");
    }
    CHECK(1, "LoadLibrary(%s)", argv[1]);

    int resolved = 1;
#define RESOLVE(name)                                                                              \
    p_##name = (__typeof__(&name))(void (*)(void))GetProcAddress(dll, #name);                      \
    if (!p_##name) {                                                                               \
        NOTE("missing export %s", #name);                                                          \
        resolved = 0;                                                                              \
    }
    EXPORTS(RESOLVE)
    CHECK(resolved, "every TSPI_* export the harness uses resolves by name");
    if (!resolved)
        bail("missing exports");

    /* --- negotiation, enumeration, init ---------------------------------------------------- */
    DWORD version = 0;
    LONG ret = p_TSPI_lineNegotiateTSPIVersion(INITIALIZE_NEGOTIATION, TSPI_2_0, TSPI_3_0, &version);
    CHECK(ret == 0 && version == TSPI_2_2,
          "lineNegotiateTSPIVersion(INITIALIZE_NEGOTIATION, 2.0, 3.0) = %ld, version %#lx", ret,
          version);
    DWORD other = 0;
    ret = p_TSPI_lineNegotiateTSPIVersion(INITIALIZE_NEGOTIATION, 0x00040000, 0x00050000, &other);
    CHECK(ret == ERR(LINEERR_INCOMPATIBLEAPIVERSION),
          "no overlap: LINEERR_INCOMPATIBLEAPIVERSION (got %#lx)", (unsigned long)ret);

    DWORD lines = 0, phones = 0;
    ret = p_TSPI_providerEnumDevices(PROVIDER_ID, &lines, &phones, (HPROVIDER)(uintptr_t)0x5150,
                                     line_create_proc, phone_create_proc);
    CHECK(ret == 0 && lines == 2 && phones == 0, "providerEnumDevices = %ld: %lu lines, %lu phones",
          ret, lines, phones);

    DWORD options = 0;
    ret = p_TSPI_providerInit(version, PROVIDER_ID, LINE_BASE, 0, lines, 0, completion_proc,
                              &options);
    CHECK(ret == 0, "providerInit = %ld", ret);
    CHECK((options & LINETSPIOPTION_NONREENTRANT) == 0, "reentrant (options %#lx)", options);

    DWORD device_version = 0;
    ret = p_TSPI_lineNegotiateTSPIVersion(LINE_BASE, TSPI_2_0, TSPI_3_0, &device_version);
    CHECK(ret == 0 && device_version == TSPI_2_2, "lineNegotiateTSPIVersion(device %u) = %ld, %#lx",
          LINE_BASE, ret, device_version);
    ret = p_TSPI_lineNegotiateTSPIVersion(LINE_BASE + 2, TSPI_2_0, TSPI_3_0, &device_version);
    CHECK(ret == ERR(LINEERR_BADDEVICEID), "device %u does not exist: %#lx", LINE_BASE + 2,
          (unsigned long)ret);

    /* --- lineGetDevCaps: sizes --------------------------------------------------------------- */
    {
        static DWORD big[1024]; /* DWORD-aligned */
        memset(big, 0xCC, sizeof big);
        LPLINEDEVCAPS caps = (LPLINEDEVCAPS)big;
        caps->dwTotalSize = sizeof big;
        ret = p_TSPI_lineGetDevCaps(LINE_BASE, TSPI_2_2, 0, caps);
        CHECK(ret == 0 && caps->dwNeededSize == caps->dwUsedSize &&
                  caps->dwUsedSize <= caps->dwTotalSize && caps->dwUsedSize > sizeof(LINEDEVCAPS) / 2,
              "lineGetDevCaps(large buffer) = %ld: needed %lu, used %lu of %lu", ret,
              caps->dwNeededSize, caps->dwUsedSize, caps->dwTotalSize);
        const wchar_t *name = utf16_at((const BYTE *)big, caps->dwUsedSize, caps->dwLineNameSize,
                                       caps->dwLineNameOffset);
        CHECK(name && wcscmp(name, L"Simulated line 1") == 0, "line name \"%ls\"",
              name ? name : L"(invalid)");
        const wchar_t *provider = utf16_at((const BYTE *)big, caps->dwUsedSize,
                                           caps->dwProviderInfoSize, caps->dwProviderInfoOffset);
        CHECK(provider && wcsstr(provider, L"Line Simulator"), "provider info \"%ls\"",
              provider ? provider : L"(invalid)");
        CHECK(caps->dwMaxNumActiveCalls >= 1 && (caps->dwDevCapFlags & LINEDEVCAPFLAGS_CLOSEDROP),
              "dwMaxNumActiveCalls %lu, dwDevCapFlags %#lx", caps->dwMaxNumActiveCalls,
              caps->dwDevCapFlags);

        DWORD needed = caps->dwNeededSize;
        static DWORD fixed[(sizeof(LINEDEVCAPS) + 3) / 4];
        LPLINEDEVCAPS small = (LPLINEDEVCAPS)fixed;
        memset(fixed, 0, sizeof fixed);
        small->dwTotalSize = sizeof(LINEDEVCAPS);
        ret = p_TSPI_lineGetDevCaps(LINE_BASE, TSPI_2_2, 0, small);
        CHECK(ret == 0 && small->dwNeededSize == needed && small->dwUsedSize <= sizeof(LINEDEVCAPS) &&
                  small->dwNeededSize > small->dwTotalSize && small->dwTotalSize == sizeof(LINEDEVCAPS),
              "lineGetDevCaps(fixed part only, %u bytes) = %ld: needed %lu, used %lu",
              (unsigned)sizeof(LINEDEVCAPS), ret, small->dwNeededSize, small->dwUsedSize);

        DWORD tiny[4] = {sizeof tiny, 0xA5A5A5A5, 0xA5A5A5A5, 0xA5A5A5A5};
        ret = p_TSPI_lineGetDevCaps(LINE_BASE, TSPI_2_2, 0, (LPLINEDEVCAPS)tiny);
        CHECK(ret == ERR(LINEERR_STRUCTURETOOSMALL) && tiny[1] == 0xA5A5A5A5,
              "lineGetDevCaps(16 bytes) = %#lx, buffer untouched", (unsigned long)ret);
    }

    /* --- lineOpen ---------------------------------------------------------------------------- */
    HTAPILINE ht_line = (HTAPILINE)(uintptr_t)0x1001;
    HDRVLINE hd_line = NULL;
    ret = p_TSPI_lineOpen(LINE_BASE, ht_line, &hd_line, TSPI_2_2, line_event);
    CHECK(ret == 0 && hd_line != NULL, "lineOpen = %ld, hdLine %p", ret, (void *)hd_line);
    if (ret != 0)
        bail("lineOpen failed");

    /* --- the seed scenario: make call → CONNECTED → lineDrop (pending) → lineCloseCall ---- */
    HTAPICALL ht_call1 = (HTAPICALL)(uintptr_t)0x2001;
    HDRVCALL hd_call1 = (HDRVCALL)(uintptr_t)0xBADBAD;
    DWORD req_make = 0x101;
    ret = p_TSPI_lineMakeCall(req_make, hd_line, ht_call1, &hd_call1, L"5551234", 0, NULL);
    CHECK(ret == (LONG)req_make, "lineMakeCall returns exactly its request id (%#lx)",
          (unsigned long)ret);
    CHECK(hd_call1 != NULL && hd_call1 != (HDRVCALL)(uintptr_t)0xBADBAD, "*lphdCall written (%p)",
          (void *)hd_call1);
    CHECK(wait_state(ht_call1, LINECALLSTATE_CONNECTED, WAIT_MS), "the call reaches CONNECTED");
    LONG result = -1;
    CHECK(completions_of(req_make, &result) == 1 && result == 0,
          "lineMakeCall completed exactly once, with 0 (%#lx)", (unsigned long)result);
    {
        DWORD states[16], modes[16];
        int first = -1;
        int n = states_of(ht_call1, states, modes, 16, &first);
        CHECK(n == 4 && states[0] == LINECALLSTATE_DIALING && states[1] == LINECALLSTATE_PROCEEDING &&
                  states[2] == LINECALLSTATE_RINGBACK && states[3] == LINECALLSTATE_CONNECTED,
              "states DIALING, PROCEEDING, RINGBACK, CONNECTED (%d states)", n);
        CHECK(first > completion_index(req_make),
              "no LINE_CALLSTATE before the lineMakeCall completion (R-TSP-6)");
    }
    {
        static DWORD buffer[(sizeof(LINECALLSTATUS) + 3) / 4];
        LPLINECALLSTATUS status = (LPLINECALLSTATUS)buffer;
        memset(buffer, 0, sizeof buffer);
        status->dwTotalSize = sizeof(LINECALLSTATUS);
        status->dwCallPrivilege = 0x5A5A;
        ret = p_TSPI_lineGetCallStatus(hd_call1, status);
        CHECK(ret == 0 && status->dwCallState == LINECALLSTATE_CONNECTED &&
                  status->dwCallPrivilege == 0x5A5A && status->dwTotalSize == sizeof(LINECALLSTATUS),
              "lineGetCallStatus = %ld: CONNECTED, dwTotalSize and dwCallPrivilege untouched", ret);
    }

    DWORD req_drop = 0x102;
    ret = p_TSPI_lineDrop(req_drop, hd_call1, NULL, 0);
    CHECK(ret == (LONG)req_drop, "lineDrop returns exactly its request id (%#lx)",
          (unsigned long)ret);
    CHECK(completions_of(req_drop, NULL) == 0, "the drop is pending (scenario drop=%d ms)",
          DROP_DELAY_MS);
    DWORD started = GetTickCount();
    ret = p_TSPI_lineCloseCall(hd_call1);
    DWORD took = GetTickCount() - started;
    int after_close = snapshot_count();
    CHECK(ret == 0 && took < 1000, "lineCloseCall right after lineDrop = %ld (%lu ms)", ret, took);
    result = 0;
    CHECK(completions_of(req_drop, &result) == 1 && result == ERR(LINEERR_OPERATIONFAILED),
          "the drop completed once with LINEERR_OPERATIONFAILED before lineCloseCall returned "
          "(%#lx)",
          (unsigned long)result);
    CHECK(completions_of(req_make, NULL) == 1, "lineMakeCall still completed exactly once");
    CHECK(!wait_completion(req_drop + 0x1000, 10, NULL), "no completion for a request never issued");
    Sleep(300);
    CHECK(events_of_call(ht_call1, after_close) == 0, "no LINEEVENT for the call after lineCloseCall");

    /* --- lineCloseCall while lineMakeCall is pending (R-TSP-7) ------------------------------ */
    HTAPICALL ht_call2 = (HTAPICALL)(uintptr_t)0x2002;
    HDRVCALL hd_call2 = NULL;
    DWORD req_pending = 0x103;
    ret = p_TSPI_lineMakeCall(req_pending, hd_line, ht_call2, &hd_call2, L"5552222", 0, NULL);
    CHECK(ret == (LONG)req_pending && hd_call2 != NULL, "lineMakeCall (setup 30 s) = %#lx",
          (unsigned long)ret);
    Sleep(50);
    CHECK(completions_of(req_pending, NULL) == 0, "the make-call request is pending");
    ret = p_TSPI_lineCloseCall(hd_call2);
    result = 0;
    CHECK(ret == 0 && completions_of(req_pending, &result) == 1 &&
              result == ERR(LINEERR_OPERATIONFAILED),
          "lineCloseCall during it completes it once with LINEERR_OPERATIONFAILED (%#lx)",
          (unsigned long)result);
    Sleep(100);
    CHECK(events_of_call(ht_call2, 0) == 0, "no LINEEVENT ever for that call");

    /* --- forged and stale handles --------------------------------------------------------- */
    ret = p_TSPI_lineDrop(0x104, hd_call1, NULL, 0);
    CHECK(ret == ERR(LINEERR_INVALCALLHANDLE), "lineDrop(closed HDRVCALL) = %#lx",
          (unsigned long)ret);
    ret = p_TSPI_lineDrop(0x105, (HDRVCALL)(uintptr_t)0xDEADBEE0, NULL, 0);
    CHECK(ret == ERR(LINEERR_INVALCALLHANDLE), "lineDrop(forged HDRVCALL) = %#lx",
          (unsigned long)ret);
    HDRVCALL unused = NULL;
    ret = p_TSPI_lineMakeCall(0x106, (HDRVLINE)(uintptr_t)0x12345670, (HTAPICALL)(uintptr_t)0x2009,
                              &unused, L"5551234", 0, NULL);
    CHECK(ret == ERR(LINEERR_INVALLINEHANDLE), "lineMakeCall(forged HDRVLINE) = %#lx",
          (unsigned long)ret);
    ret = p_TSPI_lineClose((HDRVLINE)(uintptr_t)0x12345670);
    CHECK(ret == ERR(LINEERR_INVALLINEHANDLE), "lineClose(forged HDRVLINE) = %#lx",
          (unsigned long)ret);
    Sleep(50);
    CHECK(completions_of(0x104, NULL) + completions_of(0x105, NULL) + completions_of(0x106, NULL) == 0,
          "no completion for requests refused synchronously");

    /* --- a panicking provider ------------------------------------------------------------- */
    HDRVCALL hd_panic = NULL;
    DWORD req_panic = 0x107;
    NOTE("dialling the scenario's `panic` number: a panic message on stderr is expected");
    ret = p_TSPI_lineMakeCall(req_panic, hd_line, (HTAPICALL)(uintptr_t)0x2003, &hd_panic,
                              L"5550000", 0, NULL);
    CHECK(ret == ERR(LINEERR_OPERATIONFAILED),
          "a panic inside the provider: lineMakeCall = LINEERR_OPERATIONFAILED (%#lx)",
          (unsigned long)ret);
    Sleep(50);
    CHECK(completions_of(req_panic, NULL) == 0, "and no completion for it");
    HTAPICALL ht_call3 = (HTAPICALL)(uintptr_t)0x2004;
    HDRVCALL hd_call3 = NULL;
    DWORD req_after = 0x108;
    ret = p_TSPI_lineMakeCall(req_after, hd_line, ht_call3, &hd_call3, L"5551234", 0, NULL);
    CHECK(ret == (LONG)req_after && wait_state(ht_call3, LINECALLSTATE_CONNECTED, WAIT_MS),
          "the harness and the provider live on: the next call connects");

    /* --- a second providerInit is absorbed --------------------------------------------------- */
    DWORD options2 = 0;
    ret = p_TSPI_providerInit(version, PROVIDER_ID, LINE_BASE, 0, lines, 0, completion_proc,
                              &options2);
    CHECK(ret == 0, "a second providerInit is absorbed (= %ld)", ret);
    ret = p_TSPI_providerShutdown(version, PROVIDER_ID);
    CHECK(ret == 0, "its providerShutdown = %ld", ret);
    ret = p_TSPI_lineNegotiateTSPIVersion(LINE_BASE, TSPI_2_0, TSPI_3_0, &device_version);
    CHECK(ret == 0, "still initialized: lineNegotiateTSPIVersion(device) = %ld", ret);

    /* --- lineClose with a connected call, then the final providerShutdown -------------------- */
    DWORD req_drop3 = 0x109;
    ret = p_TSPI_lineDrop(req_drop3, hd_call3, NULL, 0);
    CHECK(ret == (LONG)req_drop3, "lineDrop of the connected call (pending) = %#lx",
          (unsigned long)ret);
    ret = p_TSPI_lineClose(hd_line);
    int after_line_close = snapshot_count();
    result = 0;
    CHECK(ret == 0 && completions_of(req_drop3, &result) == 1 &&
              result == ERR(LINEERR_OPERATIONFAILED),
          "lineClose = %ld completed the pending drop with LINEERR_OPERATIONFAILED (%#lx)", ret,
          (unsigned long)result);
    Sleep(300);
    CHECK(events_of_line(ht_line, after_line_close) == 0, "no LINEEVENT for the line after lineClose");
    ret = p_TSPI_lineClose(hd_line);
    CHECK(ret == ERR(LINEERR_INVALLINEHANDLE), "lineClose(closed HDRVLINE) = %#lx",
          (unsigned long)ret);

    ret = p_TSPI_providerShutdown(version, PROVIDER_ID);
    CHECK(ret == 0, "final providerShutdown = %ld", ret);
    ret = p_TSPI_lineNegotiateTSPIVersion(LINE_BASE, TSPI_2_0, TSPI_3_0, &device_version);
    CHECK(ret != 0, "after it, device negotiation fails (%#lx)", (unsigned long)ret);

    /* --- providerUIIdentify ------------------------------------------------------------------ */
    {
        wchar_t ui[MAX_PATH];
        wmemset(ui, L'?', MAX_PATH);
        ret = p_TSPI_providerUIIdentify(ui);
        wchar_t dll_name[MAX_PATH];
        const char *base = strrchr(full, '\\');
        swprintf(dll_name, MAX_PATH, L"\\%hs", base ? base + 1 : full);
        CHECK(ret == 0 && wmemchr(ui, 0, MAX_PATH) && ends_with_ci(ui, dll_name),
              "providerUIIdentify = %ld: \"%ls\"", ret, wmemchr(ui, 0, MAX_PATH) ? ui : L"(unterminated)");
    }

    /* --- global callback rules ----------------------------------------------------------------- */
    const DWORD accepted[] = {req_make, req_drop, req_pending, req_after, req_drop3};
    int once = 1;
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
        if (completions_of(accepted[i], NULL) != 1) {
            NOTE("request %#lx completed %d times", accepted[i], completions_of(accepted[i], NULL));
            once = 0;
        }
    CHECK(once, "every accepted request completed exactly once (R-TSP-4)");
    CHECK(overlaps == 0, "callbacks never overlapped (R-TSP-5; %ld overlaps)", overlaps);
    CHECK(lost_records == 0, "every callback recorded");

    DeleteFileW(scenario);
    return finish();
}
