/*
 * Host harness for the Wine rig: loads winprov_wine_rig.dll with LoadLibrary, resolves its
 * exports with GetProcAddress and plays the host on real Windows threads. The prototypes below
 * are declared here, independently of the Rust source. Prints one line per check and a closing
 * "N passed, M failed"; exits non-zero on any failure.
 *
 * Built and run by `cargo xtask test` (x86_64-w64-mingw32-gcc, then wine).
 */
/* Error codes (WSA_INVALID_HANDLE, WSAEFAULT, WSA_E_CANCELLED, WSASYSCALLFAILURE) come from
 * mingw-w64's headers, not from the Rust side. */
#include <winsock2.h>
#include <windows.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void(WINAPI *rig_callback)(ULONG_PTR context, INT code);
typedef INT(WINAPI *rig_open_fn)(UINT32 value, ULONG_PTR *handle);
typedef INT(WINAPI *rig_wait_fn)(ULONG_PTR handle, UINT32 timeout_ms, rig_callback callback,
                                 ULONG_PTR context);
typedef INT(WINAPI *rig_close_fn)(ULONG_PTR handle);
typedef INT(WINAPI *rig_describe_fn)(ULONG_PTR handle, WCHAR *buffer, UINT32 *length);
typedef INT(WINAPI *rig_panic_fn)(UINT32 kind);
typedef UINT64(WINAPI *rig_panics_caught_fn)(void);
typedef UINT32(WINAPI *rig_live_objects_fn)(void);

static rig_open_fn rig_open;
static rig_wait_fn rig_wait;
static rig_close_fn rig_close;
static rig_describe_fn rig_describe;
static rig_panic_fn rig_panic;
static rig_panics_caught_fn rig_panics_caught;
static rig_live_objects_fn rig_live_objects;

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
            printf("ok - %s\n", #cond);                                                            \
        } else {                                                                                   \
            failed++;                                                                              \
            printf("not ok - %s (line %d): ", #cond, __LINE__);                                    \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
        fflush(stdout);                                                                            \
    } while (0)

/* A record of the completion callbacks one rig_wait call produced. */
typedef struct {
    volatile LONG calls;
    volatile LONG code;
} record;

static void WINAPI on_complete(ULONG_PTR context, INT code)
{
    record *r = (record *)context;
    InterlockedIncrement(&r->calls);
    InterlockedExchange(&r->code, code);
}

typedef struct {
    ULONG_PTR handle;
    UINT32 timeout_ms;
    record rec;
    INT result;
    DWORD elapsed_ms;
    HANDLE started;
} wait_job;

static DWORD WINAPI wait_thread(LPVOID arg)
{
    wait_job *job = (wait_job *)arg;
    SetEvent(job->started);
    DWORD start = GetTickCount();
    job->result = rig_wait(job->handle, job->timeout_ms, on_complete, (ULONG_PTR)&job->rec);
    job->elapsed_ms = GetTickCount() - start;
    return 0;
}

static FARPROC need(HMODULE dll, const char *name)
{
    FARPROC proc = GetProcAddress(dll, name);
    if (!proc) {
        printf("not ok - export %s missing\n1 passed, 1 failed\n", name);
        ExitProcess(2);
    }
    return proc;
}

static void test_open_close_stale(void)
{
    ULONG_PTR h = 0;
    CHECK(rig_open(7, &h) == 0 && h != 0, "open failed, handle %llu", (unsigned long long)h);
    CHECK(rig_close(h) == 0, "first close");
    CHECK(rig_close(h) == WSA_INVALID_HANDLE, "double close must be WSA_INVALID_HANDLE");
    record rec = {0, 0};
    INT rc = rig_wait(h, 0, on_complete, (ULONG_PTR)&rec);
    CHECK(rc == WSA_INVALID_HANDLE && rec.calls == 1 && rec.code == WSA_INVALID_HANDLE,
          "wait on a stale handle: rc %d, %ld callbacks, code %ld", rc, rec.calls, rec.code);
}

static void test_forged_handles(void)
{
    ULONG_PTR forged[] = {0, 1, 0x12345, (ULONG_PTR)-1, (ULONG_PTR)&forged};
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        record rec = {0, 0};
        INT rc = rig_wait(forged[i], 0, on_complete, (ULONG_PTR)&rec);
        CHECK(rc == WSA_INVALID_HANDLE && rec.calls == 1, "forged %llx: rc %d, %ld callbacks",
              (unsigned long long)forged[i], rc, rec.calls);
        CHECK(rig_close(forged[i]) == WSA_INVALID_HANDLE, "close of forged %llx",
              (unsigned long long)forged[i]);
    }
}

static void test_timeout_completes_once(void)
{
    ULONG_PTR h = 0;
    rig_open(1, &h);
    record rec = {0, -1};
    INT rc = rig_wait(h, 10, on_complete, (ULONG_PTR)&rec);
    CHECK(rc == 0 && rec.calls == 1 && rec.code == 0, "timeout: rc %d, %ld callbacks, code %ld",
          rc, rec.calls, rec.code);
    rig_close(h);
}

static void test_close_during_wait_on_another_thread(void)
{
    UINT32 live_before = rig_live_objects();
    wait_job job = {0};
    job.timeout_ms = 20000;
    job.started = CreateEventA(NULL, TRUE, FALSE, NULL);
    CHECK(rig_open(42, &job.handle) == 0, "open");
    CHECK(rig_live_objects() == live_before + 1, "one more live object");
    HANDLE thread = CreateThread(NULL, 0, wait_thread, &job, 0, NULL);
    WaitForSingleObject(job.started, INFINITE);
    Sleep(100); /* let the wait block */
    CHECK(job.rec.calls == 0, "no completion while blocked (%ld)", job.rec.calls);
    CHECK(rig_close(job.handle) == 0, "close from the main thread");
    CHECK(WaitForSingleObject(thread, 10000) == WAIT_OBJECT_0, "the waiter must wake");
    CHECK(job.result == WSA_E_CANCELLED, "waiter returned %d, not WSA_E_CANCELLED", job.result);
    CHECK(job.rec.calls == 1 && job.rec.code == WSA_E_CANCELLED,
          "%ld callbacks, code %ld", job.rec.calls, job.rec.code);
    CHECK(job.elapsed_ms < 10000, "cancel latency %lu ms", job.elapsed_ms);
    CHECK(rig_live_objects() == live_before, "object freed after both calls: %u live",
          rig_live_objects());
    CHECK(rig_close(job.handle) == WSA_INVALID_HANDLE, "handle stale after close");
    CloseHandle(thread);
    CloseHandle(job.started);
}

#define MANY 32
static void test_many_concurrent_waits_all_cancelled(void)
{
    UINT32 live_before = rig_live_objects();
    static wait_job jobs[MANY];
    HANDLE threads[MANY];
    for (int i = 0; i < MANY; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].timeout_ms = 20000;
        jobs[i].started = CreateEventA(NULL, TRUE, FALSE, NULL);
        rig_open((UINT32)i, &jobs[i].handle);
        threads[i] = CreateThread(NULL, 0, wait_thread, &jobs[i], 0, NULL);
        WaitForSingleObject(jobs[i].started, INFINITE);
    }
    Sleep(50);
    int closes_ok = 0;
    for (int i = 0; i < MANY; i++) {
        closes_ok += rig_close(jobs[i].handle) == 0;
    }
    CHECK(closes_ok == MANY, "%d of %d closes succeeded", closes_ok, MANY);
    CHECK(WaitForMultipleObjects(MANY, threads, TRUE, 20000) == WAIT_OBJECT_0, "all wake");
    int once = 0, cancelled = 0;
    for (int i = 0; i < MANY; i++) {
        once += jobs[i].rec.calls == 1;
        cancelled += jobs[i].result == WSA_E_CANCELLED && jobs[i].rec.code == WSA_E_CANCELLED;
        CloseHandle(threads[i]);
        CloseHandle(jobs[i].started);
    }
    CHECK(once == MANY && cancelled == MANY, "%d completed once, %d cancelled", once, cancelled);
    CHECK(rig_live_objects() == live_before, "%u live objects", rig_live_objects());
}

static void test_panics_become_error_codes(void)
{
    UINT64 before = rig_panics_caught();
    CHECK(rig_panic(0) == WSASYSCALLFAILURE, "string panic");
    CHECK(rig_panic(1) == WSASYSCALLFAILURE, "formatted panic");
    CHECK(rig_panic(2) == WSASYSCALLFAILURE, "non-string panic payload");
    CHECK(rig_panics_caught() == before + 3, "%llu panics counted",
          (unsigned long long)(rig_panics_caught() - before));
    /* The process is alive and the DLL still works. */
    ULONG_PTR h = 0;
    CHECK(rig_open(9, &h) == 0 && rig_close(h) == 0, "exports work after panics");
}

static void test_bad_pointers_are_refused(void)
{
    CHECK(rig_open(1, NULL) == WSAEFAULT, "null out pointer");
    ULONG_PTR words[2] = {0, 0};
    ULONG_PTR *misaligned = (ULONG_PTR *)((char *)words + 1);
    CHECK(rig_open(1, misaligned) == WSAEFAULT, "misaligned out pointer");
    CHECK(words[0] == 0 && words[1] == 0, "nothing written through a refused pointer");
    CHECK(rig_describe(1, NULL, NULL) == WSAEFAULT, "null length pointer");
}

static void test_short_buffer_reports_needed_size(void)
{
    ULONG_PTR h = 0;
    rig_open(7, &h);
    WCHAR small[3];
    UINT32 length = 3;
    CHECK(rig_describe(h, small, &length) == WSAEFAULT, "short buffer refused");
    CHECK(length == 13, "needed length %u (\"rig object 7\" + NUL)", length);
    WCHAR exact[13];
    CHECK(rig_describe(h, exact, &length) == 0, "retry with the needed size");
    CHECK(wcscmp(exact, L"rig object 7") == 0, "text round-trips");
    rig_close(h);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "winprov_wine_rig.dll";
    HMODULE dll = LoadLibraryA(path);
    if (!dll) {
        printf("not ok - LoadLibrary(%s) failed: %lu\n0 passed, 1 failed\n", path, GetLastError());
        return 2;
    }
    rig_open = (rig_open_fn)(void (*)(void))need(dll, "rig_open");
    rig_wait = (rig_wait_fn)(void (*)(void))need(dll, "rig_wait");
    rig_close = (rig_close_fn)(void (*)(void))need(dll, "rig_close");
    rig_describe = (rig_describe_fn)(void (*)(void))need(dll, "rig_describe");
    rig_panic = (rig_panic_fn)(void (*)(void))need(dll, "rig_panic");
    rig_panics_caught = (rig_panics_caught_fn)(void (*)(void))need(dll, "rig_panics_caught");
    rig_live_objects = (rig_live_objects_fn)(void (*)(void))need(dll, "rig_live_objects");

    test_open_close_stale();
    test_forged_handles();
    test_timeout_completes_once();
    test_close_during_wait_on_another_thread();
    test_many_concurrent_waits_all_cancelled();
    test_panics_become_error_codes();
    test_bad_pointers_are_refused();
    test_short_buffer_reports_needed_size();

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
