/*
 * What the harnesses of tests/wine-lsp share: each plays ws2_32 for the provider it drives -- a
 * layer DLL written with winprov-wsp's Layer API stacked on the C base provider wsp_base.dll
 * (../base) for lsp_host.c and meter_host.c, the base alone for base_host.c -- on real Windows
 * threads, under Wine. Included once by each harness (a header of static definitions, not a
 * library: each harness is one translation unit).
 *
 * - checks and output: CHECK / NOTE print `ok N - ...` / `not ok N - ...`; finish() prints
 *   "N passed, M failed" and gives the exit code;
 * - Wine's ws2_32 for the peers (p_socket, p_send, ...), loaded with LoadLibrary;
 * - the upcall table (`upcalls`; every upcall counted in `calls`): socket handles (WPUCreateSocketHandle / ...Query... /
 *   ...Close..., a handle table of the harness's; each handle is a real kernel file handle -- an
 *   overlapped named pipe -- so that a completion port can be associated with it), events,
 *   threads (WPUOpenCurrentThread fills a WSATHREADID with a real handle of the thread, kept in
 *   a thread table) and WPUQueueApc (QueueUserAPC on that handle); WPUModifyIFSHandle records
 *   the handle, its catalog entry and the table it came through (1, or 2 for
 *   wpu_modify_ifs_handle_2: base_host's second startup), and refuses one handle when asked
 *   (`refuse_ifs`);
 * - ws2_32!WPUCompleteOverlappedRequest (`ws2_complete`, which the layer's import is replaced
 *   with), as ws2_32 completes a request on a handle it made: InternalHigh = bytes, then
 *   Internal = the error; the event (low bit cleared) set if there is one; a packet queued to
 *   the completion port the application associated with the handle, unless the event's low bit
 *   is set. The association is the harness's own record (`host_associate`, which also associates
 *   the pipe with the port for real): ws2_32 learns it from the kernel, which Win32 does not
 *   expose. The packet is NtSetIoCompletion's, with the request's status (0, or the NTSTATUS of
 *   the Winsock error: STATUS_CANCELLED for WSA_OPERATION_ABORTED, ...), so that
 *   GetQueuedCompletionStatus reports a failed request as it does a kernel's;
 * - the catalog: three entries -- the layer's hidden entry (HIDDEN, ChainLen 0, the layer's
 *   provider GUID), the base's (BASE: Wine's TCP/IPv4 entry with the harness's catalog id and
 *   provider GUID, ChainLen 1) and the chain [HIDDEN, BASE] (CHAIN, without XP1_IFS_HANDLES: a
 *   non-IFS layer) -- answered by the harness's WSCEnumProtocols / WSCGetProviderPath, which
 *   replace the layer DLL's imports of ws2_32's (patching its import address table); the base's
 *   path is `%WINPROV_LSP_BASE_DIR%\<base file>`; the layer's kernel32 LoadLibraryExW and
 *   FreeLibrary are wrapped (the real ones, logged);
 * - the calls through the provider the harness drives (wsp_startup: its WSPStartup, L: its proc
 *   table; lsock -- a TCP/IPv4 socket of `socket_entry` --, lsend, ...): the layer, or
 *   base_host's base; the peers (the harness's own ws2_32 sockets), overlapped requests through
 *   the provider (op_t), 64 threads through it (run_threads), the process's thread count.
 */
#ifndef WS2_HOST_H
#define WS2_HOST_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <ws2spi.h>
#include <windows.h>
#include <tlhelp32.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "../base/wsp_base.h"

/* Each harness uses most, not all, of what follows. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-variable"

/* The harness's catalog. */
#define HIDDEN 4001
#define BASE 4002
#define CHAIN 4003
/* The base's provider GUID in the harness's catalog. */
static const GUID BASE_ID = {0x77696e70, 0x726f, 0x7600,
                             {0xba, 0x5e, 0x57, 0x49, 0x4e, 0x45, 0x00, 0x02}};
#define BASE_DIR_ENV "WINPROV_LSP_BASE_DIR"
#define BASE_DIR_ENV_W L"WINPROV_LSP_BASE_DIR"

#define WAIT_MS 5000
#define QUIET_MS 300
#define KEY 0x15F
#define NT_STATUS_CANCELLED 0xC0000120u
#define NT_STATUS_CONNECTION_RESET 0xC000020Du
#define NT_STATUS_CONNECTION_ABORTED 0xC0000241u
#define NT_STATUS_UNSUCCESSFUL 0xC0000001u

_Static_assert(sizeof(WSPPROC_TABLE) == WSP_BASE_SLOT_COUNT * sizeof(void *),
               "WSPPROC_TABLE has the 30 slots wsp_base.h names");

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
/* Wine's ws2_32 (the peers), typed by the prototypes.                                         */

#define WS2_32(X)                                                                                  \
    X(WSAStartup)                                                                                  \
    X(WSACleanup)                                                                                  \
    X(WSAGetLastError)                                                                             \
    X(WSAEnumProtocolsW)                                                                           \
    X(WSASocketW)                                                                                  \
    X(WSARecv)                                                                                     \
    X(WSAGetOverlappedResult)                                                                      \
    X(WSAIoctl)                                                                                    \
    X(socket)                                                                                      \
    X(bind)                                                                                        \
    X(listen)                                                                                      \
    X(accept)                                                                                      \
    X(connect)                                                                                     \
    X(send)                                                                                        \
    X(recv)                                                                                        \
    X(sendto)                                                                                      \
    X(recvfrom)                                                                                    \
    X(shutdown)                                                                                    \
    X(closesocket)                                                                                 \
    X(setsockopt)                                                                                  \
    X(getsockname)                                                                                 \
    X(select)                                                                                      \
    X(ioctlsocket)

#define DECLARE_POINTER(name) static __typeof__(&name) p_##name;
WS2_32(DECLARE_POINTER)

typedef LONG(NTAPI *nt_set_io_completion_t)(HANDLE port, ULONG_PTR key, ULONG_PTR context,
                                            LONG status, ULONG_PTR information);
static nt_set_io_completion_t p_NtSetIoCompletion;

static LPWSPSTARTUP wsp_startup; /* the driven provider's: the layer's, or base_host's base */
static LPWSP_BASE_STATS base_stats;
static HMODULE base_module;

/* ------------------------------------------------------------------------------------------- */
/* ws2_32's side: the upcall table.                                                            */

static CRITICAL_SECTION log_lock;

/* Socket handles made by WPUCreateSocketHandle: real overlapped named pipes; the completion
 * port the application associated with each (host_associate). */
#define MAX_HANDLES 1024
typedef struct {
    SOCKET s;
    DWORD catalog;
    DWORD_PTR context;
    LONG closes;
    HANDLE port;
    ULONG_PTR key;
} ws_handle;
static ws_handle handles[MAX_HANDLES];
static LONG handle_count;

/* WPUModifyIFSHandle calls (the base's). */
#define MAX_IFS 1024
typedef struct {
    DWORD catalog;
    SOCKET s;
    int table; /* 1: wpu_modify_ifs_handle (`upcalls`), 2: wpu_modify_ifs_handle_2 */
} ifs_call_t;
static ifs_call_t ifs_calls[MAX_IFS];
static LONG ifs_count;
/* Makes WPUModifyIFSHandle refuse the next handle with this error. */
static volatile LONG refuse_ifs;

/* Threads WPUOpenCurrentThread opened: the handle and the thread's id. */
#define MAX_THREADS 256
typedef struct {
    HANDLE handle;
    DWORD id;
} thread_entry;
static thread_entry thread_table[MAX_THREADS];
static LONG thread_count;

static struct {
    volatile LONG create, close, query, modify_ifs, queue_apc, apc_unknown_thread, set_event,
        reset_event, create_event, close_event, fd_is_set, blocking_callback, open_thread,
        close_thread, post, other;
    /* WPUCompleteOverlappedRequest: calls, packets queued, events set, refused (a handle the
     * harness did not make, or closed). */
    volatile LONG complete, complete_packets, complete_events, complete_refused;
    /* The thread of the last APC WPUQueueApc queued. */
    volatile DWORD apc_thread;
} calls;

static ws_handle *live_handle(SOCKET s)
{
    for (LONG i = handle_count - 1; i >= 0; i--)
        if (handles[i].s == s && handles[i].closes == 0)
            return &handles[i];
    return NULL;
}

static LONG live_handles(void)
{
    LONG n = 0;
    EnterCriticalSection(&log_lock);
    for (LONG i = 0; i < handle_count; i++)
        n += handles[i].closes == 0;
    LeaveCriticalSection(&log_lock);
    return n;
}

/* The catalog entry of the handle `s` was made with, or 0. */
static DWORD handle_catalog(SOCKET s)
{
    EnterCriticalSection(&log_lock);
    ws_handle *h = live_handle(s);
    DWORD catalog = h ? h->catalog : 0;
    LeaveCriticalSection(&log_lock);
    return catalog;
}

/* The application associates the layer's handle `s` with a completion port (new if `port` is
 * NULL), as CreateIoCompletionPort does; ws2_32 (the harness) remembers it. */
static HANDLE host_associate(SOCKET s, HANDLE port, ULONG_PTR key)
{
    HANDLE made = CreateIoCompletionPort((HANDLE)s, port, key, 0);
    if (!made)
        return NULL;
    EnterCriticalSection(&log_lock);
    ws_handle *h = live_handle(s);
    if (h) {
        h->port = made;
        h->key = key;
    }
    LeaveCriticalSection(&log_lock);
    return h ? made : NULL;
}

static SOCKET WSPAPI wpu_create_socket_handle(DWORD catalog, DWORD_PTR context, LPINT err)
{
    static volatile LONG serial;
    InterlockedIncrement(&calls.create);
    char name[96];
    snprintf(name, sizeof name, "\\\\.\\pipe\\winprov-lsp-%lu-%ld", GetCurrentProcessId(),
             InterlockedIncrement(&serial));
    HANDLE pipe = CreateNamedPipeA(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                                   PIPE_TYPE_BYTE, 1, 0, 0, 0, NULL);
    if (pipe == INVALID_HANDLE_VALUE) {
        *err = WSAENOBUFS;
        return INVALID_SOCKET;
    }
    EnterCriticalSection(&log_lock);
    SOCKET s = INVALID_SOCKET;
    if (handle_count < MAX_HANDLES) {
        handles[handle_count++] = (ws_handle){(SOCKET)pipe, catalog, context, 0, NULL, 0};
        s = (SOCKET)pipe;
    }
    LeaveCriticalSection(&log_lock);
    if (s == INVALID_SOCKET) {
        CloseHandle(pipe);
        *err = WSAENOBUFS;
    }
    return s;
}

static int WSPAPI wpu_query_socket_handle_context(SOCKET s, PDWORD_PTR context, LPINT err)
{
    InterlockedIncrement(&calls.query);
    EnterCriticalSection(&log_lock);
    ws_handle *h = live_handle(s);
    if (h)
        *context = h->context;
    LeaveCriticalSection(&log_lock);
    if (!h) {
        *err = WSAENOTSOCK;
        return SOCKET_ERROR;
    }
    return 0;
}

static int WSPAPI wpu_close_socket_handle(SOCKET s, LPINT err)
{
    InterlockedIncrement(&calls.close);
    EnterCriticalSection(&log_lock);
    ws_handle *h = live_handle(s);
    if (h)
        h->closes++;
    LeaveCriticalSection(&log_lock);
    if (!h) {
        *err = WSAENOTSOCK;
        return SOCKET_ERROR;
    }
    CloseHandle((HANDLE)s);
    return 0;
}

static SOCKET record_ifs(DWORD catalog, SOCKET proposed, LPINT err, int table)
{
    InterlockedIncrement(&calls.modify_ifs);
    LONG refuse = InterlockedExchange(&refuse_ifs, 0);
    EnterCriticalSection(&log_lock);
    if (ifs_count < MAX_IFS)
        ifs_calls[ifs_count++] = (ifs_call_t){catalog, proposed, table};
    LeaveCriticalSection(&log_lock);
    if (refuse) {
        *err = refuse;
        return INVALID_SOCKET;
    }
    return proposed;
}

static SOCKET WSPAPI wpu_modify_ifs_handle(DWORD catalog, SOCKET proposed, LPINT err)
{
    return record_ifs(catalog, proposed, err, 1);
}

static SOCKET WSPAPI wpu_modify_ifs_handle_2(DWORD catalog, SOCKET proposed, LPINT err)
{
    return record_ifs(catalog, proposed, err, 2);
}

/* The WPUModifyIFSHandle call that made `s` (the last), or NULL; under log_lock. */
static const ifs_call_t *ifs_call_of(SOCKET s)
{
    for (LONG i = ifs_count - 1; i >= 0; i--)
        if (ifs_calls[i].s == s)
            return &ifs_calls[i];
    return NULL;
}

/* Whether `s` went through WPUModifyIFSHandle with `catalog`, by the upcall table `table`. */
static int ifs_of(SOCKET s, DWORD catalog, int table)
{
    EnterCriticalSection(&log_lock);
    const ifs_call_t *c = ifs_call_of(s);
    int ok = c && c->catalog == catalog && c->table == table;
    LeaveCriticalSection(&log_lock);
    return ok;
}

/* WPUModifyIFSHandle calls since `from` with a catalog id other than `catalog`. */
static LONG ifs_calls_not_of(LONG from, DWORD catalog)
{
    LONG n = 0;
    EnterCriticalSection(&log_lock);
    for (LONG i = from; i < ifs_count; i++)
        n += ifs_calls[i].catalog != catalog;
    LeaveCriticalSection(&log_lock);
    return n;
}

static BOOL WSPAPI wpu_set_event(WSAEVENT event, LPINT err)
{
    InterlockedIncrement(&calls.set_event);
    if (!SetEvent(event)) {
        *err = WSA_INVALID_HANDLE;
        return FALSE;
    }
    return TRUE;
}

static BOOL WSPAPI wpu_reset_event(WSAEVENT event, LPINT err)
{
    InterlockedIncrement(&calls.reset_event);
    if (!ResetEvent(event)) {
        *err = WSA_INVALID_HANDLE;
        return FALSE;
    }
    return TRUE;
}

/* The thread id WPUOpenCurrentThread gave `handle` to, or 0. */
static DWORD known_thread(HANDLE handle)
{
    DWORD id = 0;
    EnterCriticalSection(&log_lock);
    for (LONG i = 0; i < thread_count && !id; i++)
        if (thread_table[i].handle == handle)
            id = thread_table[i].id;
    LeaveCriticalSection(&log_lock);
    return id;
}

static int WSPAPI wpu_queue_apc(LPWSATHREADID thread, LPWSAUSERAPC apc, DWORD_PTR context,
                                LPINT err)
{
    InterlockedIncrement(&calls.queue_apc);
    DWORD id = thread ? known_thread(thread->ThreadHandle) : 0;
    if (!id)
        InterlockedIncrement(&calls.apc_unknown_thread);
    calls.apc_thread = id;
    if (!thread || !apc || !QueueUserAPC((PAPCFUNC)apc, thread->ThreadHandle, context)) {
        *err = WSAEINVAL;
        return SOCKET_ERROR;
    }
    return 0;
}

/* ws2_32 fills a WSATHREADID for the calling thread: a real handle of it, in the table. */
static int open_thread(LPWSATHREADID thread)
{
    thread->Reserved = 0;
    if (!DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(),
                         &thread->ThreadHandle, 0, FALSE, DUPLICATE_SAME_ACCESS))
        return 0;
    EnterCriticalSection(&log_lock);
    if (thread_count < MAX_THREADS)
        thread_table[thread_count++] = (thread_entry){thread->ThreadHandle, GetCurrentThreadId()};
    LeaveCriticalSection(&log_lock);
    return 1;
}

static int WSPAPI wpu_open_current_thread(LPWSATHREADID thread, LPINT err)
{
    InterlockedIncrement(&calls.open_thread);
    if (!open_thread(thread)) {
        *err = WSASYSCALLFAILURE;
        return SOCKET_ERROR;
    }
    return 0;
}

static int WSPAPI wpu_close_thread(LPWSATHREADID thread, LPINT err)
{
    InterlockedIncrement(&calls.close_thread);
    EnterCriticalSection(&log_lock);
    for (LONG i = 0; i < thread_count; i++)
        if (thread_table[i].handle == thread->ThreadHandle)
            thread_table[i] = thread_table[--thread_count];
    LeaveCriticalSection(&log_lock);
    if (!CloseHandle(thread->ThreadHandle)) {
        *err = WSAEINVAL;
        return SOCKET_ERROR;
    }
    return 0;
}

static WSAEVENT WSPAPI wpu_create_event(LPINT err)
{
    InterlockedIncrement(&calls.create_event);
    HANDLE event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (!event)
        *err = WSA_NOT_ENOUGH_MEMORY;
    return event;
}

static BOOL WSPAPI wpu_close_event(WSAEVENT event, LPINT err)
{
    InterlockedIncrement(&calls.close_event);
    if (!CloseHandle(event)) {
        *err = WSA_INVALID_HANDLE;
        return FALSE;
    }
    return TRUE;
}

static int WSPAPI wpu_fd_is_set(SOCKET s, fd_set *set)
{
    InterlockedIncrement(&calls.fd_is_set);
    for (u_int i = 0; set && i < set->fd_count; i++)
        if (set->fd_array[i] == s)
            return 1;
    return 0;
}

static BOOL WSPAPI wpu_post_message(HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam)
{
    (void)hwnd, (void)msg, (void)wparam, (void)lparam;
    InterlockedIncrement(&calls.post);
    return FALSE;
}

static int WSPAPI wpu_get_provider_path(LPGUID id, WCHAR *path, LPINT len, LPINT err)
{
    (void)id, (void)path, (void)len;
    InterlockedIncrement(&calls.other);
    *err = WSAEINVAL;
    return SOCKET_ERROR;
}

static int WSPAPI wpu_query_blocking_callback(DWORD catalog, LPBLOCKINGCALLBACK *callback,
                                              PDWORD_PTR context, LPINT err)
{
    (void)catalog, (void)err;
    InterlockedIncrement(&calls.blocking_callback);
    *callback = NULL;
    *context = 0;
    return 0;
}

static const WSPUPCALLTABLE upcalls = {
    .lpWPUCloseEvent = wpu_close_event,
    .lpWPUCloseSocketHandle = wpu_close_socket_handle,
    .lpWPUCreateEvent = wpu_create_event,
    .lpWPUCreateSocketHandle = wpu_create_socket_handle,
    .lpWPUFDIsSet = wpu_fd_is_set,
    .lpWPUGetProviderPath = wpu_get_provider_path,
    .lpWPUModifyIFSHandle = wpu_modify_ifs_handle,
    .lpWPUPostMessage = wpu_post_message,
    .lpWPUQueryBlockingCallback = wpu_query_blocking_callback,
    .lpWPUQuerySocketHandleContext = wpu_query_socket_handle_context,
    .lpWPUQueueApc = wpu_queue_apc,
    .lpWPUResetEvent = wpu_reset_event,
    .lpWPUSetEvent = wpu_set_event,
    .lpWPUOpenCurrentThread = wpu_open_current_thread,
    .lpWPUCloseThread = wpu_close_thread,
};

/* Upcalls made but WPUModifyIFSHandle. */
static LONG upcalls_but_ifs(void)
{
    return calls.create + calls.close + calls.query + calls.queue_apc + calls.set_event +
           calls.reset_event + calls.create_event + calls.close_event + calls.fd_is_set +
           calls.blocking_callback + calls.open_thread + calls.close_thread + calls.post +
           calls.other;
}

/* The NTSTATUS a packet of a request failed with `error` carries. */
static LONG completion_status(DWORD error)
{
    switch (error) {
    case 0:
        return 0;
    case WSA_OPERATION_ABORTED:
        return (LONG)NT_STATUS_CANCELLED;
    case WSAECONNRESET:
        return (LONG)NT_STATUS_CONNECTION_RESET;
    case WSAECONNABORTED:
        return (LONG)NT_STATUS_CONNECTION_ABORTED;
    default:
        return (LONG)NT_STATUS_UNSUCCESSFUL;
    }
}

/* ws2_32!WPUCompleteOverlappedRequest for the handles the harness made. See the header. */
static int WSPAPI ws2_complete(SOCKET s, LPWSAOVERLAPPED ov, DWORD error, DWORD bytes, LPINT err)
{
    InterlockedIncrement(&calls.complete);
    EnterCriticalSection(&log_lock);
    ws_handle *h = live_handle(s);
    HANDLE port = h ? h->port : NULL;
    ULONG_PTR key = h ? h->key : 0;
    LeaveCriticalSection(&log_lock);
    if (!h || !ov) {
        InterlockedIncrement(&calls.complete_refused);
        *err = WSAEINVAL;
        return SOCKET_ERROR;
    }
    /* Read before the request is complete: once it is, the application may reuse it. */
    ULONG_PTR event = (ULONG_PTR)ov->hEvent;
    ov->InternalHigh = bytes;
    MemoryBarrier();
    *(volatile ULONG_PTR *)&ov->Internal = error;
    if (event & ~(ULONG_PTR)1) {
        SetEvent((HANDLE)(event & ~(ULONG_PTR)1));
        InterlockedIncrement(&calls.complete_events);
    }
    if (port && !(event & 1)) {
        BOOL queued = p_NtSetIoCompletion
                          ? p_NtSetIoCompletion(port, key, (ULONG_PTR)ov,
                                                completion_status(error), bytes) == 0
                          : PostQueuedCompletionStatus(port, bytes, key, ov);
        if (queued)
            InterlockedIncrement(&calls.complete_packets);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------- */
/* ws2_32's catalog, and the loader, as the layer sees them (its imports replaced).            */

static WSAPROTOCOL_INFOW catalog[3]; /* HIDDEN, BASE, CHAIN */
static WCHAR catalog_path[MAX_PATH]; /* the base's path as the catalog keeps it */
static WCHAR base_full_path[MAX_PATH];

static volatile LONG enum_calls, path_calls, refuse_path;

static int WSPAPI fake_wsc_enum_protocols(LPINT protocols, LPWSAPROTOCOL_INFOW buffer,
                                          LPDWORD length, LPINT err)
{
    InterlockedIncrement(&enum_calls);
    if (protocols) {
        *err = WSAEINVAL; /* the layer asks for every entry */
        return SOCKET_ERROR;
    }
    if (!length) {
        *err = WSAEFAULT;
        return SOCKET_ERROR;
    }
    DWORD needed = sizeof catalog;
    if (!buffer || *length < needed) {
        *length = needed;
        *err = WSAENOBUFS;
        return SOCKET_ERROR;
    }
    memcpy(buffer, catalog, sizeof catalog);
    return 3;
}

static int WSPAPI fake_wsc_get_provider_path(LPGUID id, WCHAR *path, LPINT length, LPINT err)
{
    InterlockedIncrement(&path_calls);
    if (InterlockedExchange(&refuse_path, 0) || !id || memcmp(id, &BASE_ID, sizeof *id) != 0) {
        *err = WSAEINVAL;
        return SOCKET_ERROR;
    }
    int needed = (int)wcslen(catalog_path) + 1;
    if (!path || !length || *length < needed) {
        if (length)
            *length = needed;
        *err = WSAEFAULT;
        return SOCKET_ERROR;
    }
    memcpy(path, catalog_path, needed * sizeof(WCHAR));
    *length = needed;
    return 0;
}

/* The loader, logged. */
static volatile LONG loads, frees, base_frees;
static WCHAR last_load[MAX_PATH];
static HMODULE last_loaded;

static HMODULE WINAPI logged_load_library_ex_w(LPCWSTR name, HANDLE file, DWORD flags)
{
    HMODULE module = LoadLibraryExW(name, file, flags);
    InterlockedIncrement(&loads);
    EnterCriticalSection(&log_lock);
    wcsncpy(last_load, name ? name : L"", MAX_PATH - 1);
    last_loaded = module;
    LeaveCriticalSection(&log_lock);
    return module;
}

static BOOL WINAPI logged_free_library(HMODULE module)
{
    InterlockedIncrement(&frees);
    if (module == base_module)
        InterlockedIncrement(&base_frees);
    return FreeLibrary(module);
}

/* Replaces the address `module` imports `name` from `dll` with (every import descriptor of that
 * DLL, by name); returns how many it replaced and the previous address in *previous. */
static int patch_import(HMODULE module, const char *dll, const char *name, void *replacement,
                        void **previous)
{
    BYTE *base = (BYTE *)module;
    IMAGE_NT_HEADERS *nt = (IMAGE_NT_HEADERS *)(base + ((IMAGE_DOS_HEADER *)base)->e_lfanew);
    IMAGE_DATA_DIRECTORY dir = nt->OptionalHeader.DataDirectory[IMAGE_DIRECTORY_ENTRY_IMPORT];
    int patched = 0;
    if (!dir.VirtualAddress)
        return 0;
    for (IMAGE_IMPORT_DESCRIPTOR *imp = (IMAGE_IMPORT_DESCRIPTOR *)(base + dir.VirtualAddress);
         imp->Name; imp++) {
        if (_stricmp((const char *)(base + imp->Name), dll) != 0)
            continue;
        DWORD lookup = imp->OriginalFirstThunk ? imp->OriginalFirstThunk : imp->FirstThunk;
        IMAGE_THUNK_DATA *names = (IMAGE_THUNK_DATA *)(base + lookup);
        IMAGE_THUNK_DATA *iat = (IMAGE_THUNK_DATA *)(base + imp->FirstThunk);
        for (; names->u1.AddressOfData; names++, iat++) {
            if (IMAGE_SNAP_BY_ORDINAL(names->u1.Ordinal))
                continue;
            IMAGE_IMPORT_BY_NAME *by_name =
                (IMAGE_IMPORT_BY_NAME *)(base + names->u1.AddressOfData);
            if (strcmp((const char *)by_name->Name, name) != 0)
                continue;
            DWORD protect;
            if (!VirtualProtect(&iat->u1.Function, sizeof iat->u1.Function, PAGE_READWRITE,
                                &protect))
                continue;
            if (previous)
                *previous = (void *)(ULONG_PTR)iat->u1.Function;
            iat->u1.Function = (ULONG_PTR)replacement;
            VirtualProtect(&iat->u1.Function, sizeof iat->u1.Function, protect, &protect);
            patched++;
        }
    }
    return patched;
}

/* The imports of the layer the harness replaces, and how many of each it replaced. */
typedef struct {
    int enum_protocols, provider_path, load_library, free_library, complete;
} patched_t;

static patched_t patch_layer(HMODULE layer)
{
    void *previous = NULL;
    patched_t p;
    p.enum_protocols = patch_import(layer, "ws2_32.dll", "WSCEnumProtocols",
                                    (void *)fake_wsc_enum_protocols, &previous);
    p.provider_path = patch_import(layer, "ws2_32.dll", "WSCGetProviderPath",
                                   (void *)fake_wsc_get_provider_path, &previous);
    p.load_library = patch_import(layer, "kernel32.dll", "LoadLibraryExW",
                                  (void *)logged_load_library_ex_w, &previous);
    p.free_library =
        patch_import(layer, "kernel32.dll", "FreeLibrary", (void *)logged_free_library, &previous);
    p.complete = patch_import(layer, "ws2_32.dll", "WPUCompleteOverlappedRequest",
                              (void *)ws2_complete, &previous);
    return p;
}

/* ------------------------------------------------------------------------------------------- */
/* The calls through the provider the harness drives: the layer, or base_host's base.         */

static WSPPROC_TABLE L; /* its proc table */
/* The catalog entry lsock names: the chain (host_setup), or base_host's TCP/IPv4 entry. */
static WSAPROTOCOL_INFOW *socket_entry;
static WSATHREADID main_thread;

static WSP_BASE_STATS stats_now(void)
{
    WSP_BASE_STATS s;
    memset(&s, 0, sizeof s);
    if (!base_stats(&s, sizeof s))
        bail("BaseStats refused a WSP_BASE_STATS");
    return s;
}

static int start_provider(WSAPROTOCOL_INFOW *entry, WSPDATA *data)
{
    WSPDATA local;
    return wsp_startup(MAKEWORD(2, 2), data ? data : &local, entry, upcalls, &L);
}

static int cleanup(void)
{
    INT err = 0;
    return L.lpWSPCleanup(&err) == 0 ? 0 : err;
}

static SOCKET lsock(INT *err)
{
    *err = 0;
    return L.lpWSPSocket(AF_INET, SOCK_STREAM, IPPROTO_TCP, socket_entry, 0, WSA_FLAG_OVERLAPPED,
                         err);
}

static int lclose(SOCKET s)
{
    INT err = 0;
    return L.lpWSPCloseSocket(s, &err) == 0 ? 0 : err;
}

static int lshutdown(SOCKET s, int how)
{
    INT err = 0;
    return L.lpWSPShutdown(s, how, &err) == 0 ? 0 : err;
}

/* Bytes sent, or -1 with *err. */
static int lsend(SOCKET s, const char *data, DWORD n, INT *err)
{
    WSABUF buf = {n, (char *)data};
    DWORD sent = 0;
    *err = 0;
    return L.lpWSPSend(s, &buf, 1, &sent, 0, NULL, NULL, NULL, err) == 0 ? (int)sent : -1;
}

static int lsend_text(SOCKET s, const char *text, INT *err)
{
    return lsend(s, text, (DWORD)strlen(text), err);
}

/* A blocking receive: bytes (NUL-terminated in out), or -1 with *err. */
static int lrecv_text(SOCKET s, char *out, DWORD capacity, INT *err)
{
    WSABUF buf = {capacity - 1, out};
    DWORD got = 0, flags = 0;
    memset(out, 0, capacity);
    *err = 0;
    return L.lpWSPRecv(s, &buf, 1, &got, &flags, NULL, NULL, NULL, err) == 0 ? (int)got : -1;
}

static void set_timeouts(SOCKET s, int layer)
{
    DWORD ms = WAIT_MS;
    INT err;
    if (layer) {
        L.lpWSPSetSockOpt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof ms, &err);
        L.lpWSPSetSockOpt(s, SOL_SOCKET, SO_SNDTIMEO, (const char *)&ms, sizeof ms, &err);
    } else {
        p_setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, (const char *)&ms, sizeof ms);
        p_setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, (const char *)&ms, sizeof ms);
    }
}

/* ------------------------------------------------------------------------------------------- */
/* The peers.                                                                                  */

static unsigned short swap16(unsigned short v)
{
    return (unsigned short)((v >> 8) | (v << 8));
}

static struct sockaddr_in loopback4(unsigned short port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = swap16(port);
    a.sin_addr.s_addr = 0x0100007F; /* 127.0.0.1, network order */
    return a;
}

static struct sockaddr_in6 loopback6(unsigned short port)
{
    struct sockaddr_in6 a;
    memset(&a, 0, sizeof a);
    a.sin6_family = AF_INET6;
    a.sin6_port = swap16(port);
    a.sin6_addr.s6_addr[15] = 1; /* ::1 */
    return a;
}

/* A listening peer on the loopback address of `af`, its port in *port. */
static SOCKET peer_listener(int af, unsigned short *port)
{
    SOCKET l = p_socket(af, SOCK_STREAM, IPPROTO_TCP);
    if (l == INVALID_SOCKET)
        return l;
    struct sockaddr_storage name;
    int len;
    if (af == AF_INET6) {
        *(struct sockaddr_in6 *)&name = loopback6(0);
        len = sizeof(struct sockaddr_in6);
    } else {
        *(struct sockaddr_in *)&name = loopback4(0);
        len = sizeof(struct sockaddr_in);
    }
    if (p_bind(l, (struct sockaddr *)&name, len) || p_listen(l, SOMAXCONN) ||
        p_getsockname(l, (struct sockaddr *)&name, &len)) {
        p_closesocket(l);
        return INVALID_SOCKET;
    }
    *port = swap16(((struct sockaddr_in *)&name)->sin_port); /* same offset in both */
    return l;
}

/* A client of the provider's connected to a peer the harness accepted: 0, or the error; the peer's port
 * in *port if asked. */
static int connect_pair_port(SOCKET *layer, SOCKET *peer, unsigned short *peer_port)
{
    unsigned short port = 0;
    SOCKET l = peer_listener(AF_INET, &port);
    if (l == INVALID_SOCKET)
        return p_WSAGetLastError();
    if (peer_port)
        *peer_port = port;
    INT err = 0;
    *layer = lsock(&err);
    if (*layer == INVALID_SOCKET) {
        p_closesocket(l);
        return err;
    }
    struct sockaddr_in to = loopback4(port);
    if (L.lpWSPConnect(*layer, (struct sockaddr *)&to, sizeof to, NULL, NULL, NULL, NULL, &err)) {
        p_closesocket(l);
        return err;
    }
    *peer = p_accept(l, NULL, NULL);
    int rc = *peer == INVALID_SOCKET ? p_WSAGetLastError() : 0;
    p_closesocket(l);
    if (rc == 0) {
        set_timeouts(*layer, 1);
        set_timeouts(*peer, 0);
    }
    return rc;
}

static int connect_pair(SOCKET *layer, SOCKET *peer)
{
    return connect_pair_port(layer, peer, NULL);
}

/* connect_pair, or the harness gives up. */
static void pair_or_bail(SOCKET *s, SOCKET *peer)
{
    if (connect_pair(s, peer))
        bail("no pair");
}

/* A listener of the provider's on 127.0.0.1 (its address in *name, `backlog` its queue) and a
 * ws2_32 client connecting to it: 1 if both did. */
static int listen_and_connect(SOCKET *listener, SOCKET *client, struct sockaddr_in *name,
                              int backlog, INT *err)
{
    *listener = lsock(err);
    *name = loopback4(0);
    INT len = sizeof *name;
    int bound = *listener != INVALID_SOCKET &&
                L.lpWSPBind(*listener, (struct sockaddr *)name, sizeof *name, err) == 0 &&
                L.lpWSPListen(*listener, backlog, err) == 0 &&
                L.lpWSPGetSockName(*listener, (struct sockaddr *)name, &len, err) == 0;
    *client = p_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    int connected = p_connect(*client, (struct sockaddr *)name, sizeof *name) == 0;
    return bound && connected;
}

static int peer_send(SOCKET s, const char *data, int n)
{
    int sent = p_send(s, data, n, 0);
    return sent == SOCKET_ERROR ? -p_WSAGetLastError() : sent;
}

static int peer_send_text(SOCKET s, const char *text)
{
    return peer_send(s, text, (int)strlen(text));
}

/* What a peer's receive sees within `ms`: bytes (> 0), 0 at the end of the stream, -error, or
 * PEER_QUIET when nothing arrives. */
#define PEER_QUIET (-1)
static int peer_outcome(SOCKET s, char *out, int capacity, DWORD ms)
{
    fd_set readable, failed_set;
    FD_ZERO(&readable);
    FD_ZERO(&failed_set);
    FD_SET(s, &readable);
    FD_SET(s, &failed_set);
    struct timeval tv = {(long)(ms / 1000), (long)(ms % 1000) * 1000};
    int ready = p_select(0, &readable, NULL, &failed_set, &tv);
    if (ready == 0)
        return PEER_QUIET;
    if (ready == SOCKET_ERROR)
        return -p_WSAGetLastError();
    memset(out, 0, (size_t)capacity);
    int n = p_recv(s, out, capacity - 1, 0);
    return n == SOCKET_ERROR ? -p_WSAGetLastError() : n;
}

/* Reads exactly `n` bytes (or what comes within WAIT_MS each); returns the count. */
static int peer_read_all(SOCKET s, char *out, int n)
{
    int got = 0;
    while (got < n) {
        int r = p_recv(s, out + got, n - got, 0);
        if (r <= 0)
            break;
        got += r;
    }
    return got;
}

/* ------------------------------------------------------------------------------------------- */
/* Overlapped operations through the provider.                                                 */

typedef struct {
    WSAOVERLAPPED ov; /* first: a completion routine finds its record */
    HANDLE event;
    char data[128];
    int rc;
    INT err;
    DWORD bytes, flags;
    volatile LONG routine_calls;
    DWORD routine_error, routine_bytes, routine_thread;
} op_t;

/* with_event: 0 none, 1 an event, 2 an event with the low bit set (no packet to a port). */
static void op_init(op_t *op, int with_event)
{
    memset(op, 0, sizeof *op);
    if (with_event) {
        op->event = CreateEventA(NULL, TRUE, FALSE, NULL);
        op->ov.hEvent = with_event == 2 ? (HANDLE)((ULONG_PTR)op->event | 1) : op->event;
    }
    op->bytes = 0xFFFFFFFF;
}

static void op_free(op_t *op)
{
    if (op->event)
        CloseHandle(op->event);
}

static int is_pending(const op_t *op)
{
    return op->rc == SOCKET_ERROR && op->err == WSA_IO_PENDING;
}

static int is_set(const op_t *op)
{
    return op->event && WaitForSingleObject(op->event, 0) == WAIT_OBJECT_0;
}

/* An overlapped receive of the peer `s`'s, by Wine's ws2_32 (op->err its error). */
static int peer_op_recv(SOCKET s, op_t *op)
{
    WSABUF buf = {sizeof op->data, op->data};
    op->rc = p_WSARecv(s, &buf, 1, &op->bytes, &op->flags, &op->ov, NULL);
    op->err = op->rc ? p_WSAGetLastError() : 0;
    return op->rc;
}

static void CALLBACK on_routine(DWORD error, DWORD bytes, LPWSAOVERLAPPED ov, DWORD flags)
{
    (void)flags;
    op_t *op = CONTAINING_RECORD(ov, op_t, ov);
    op->routine_error = error;
    op->routine_bytes = bytes;
    op->routine_thread = GetCurrentThreadId();
    InterlockedIncrement(&op->routine_calls);
}

/* An overlapped WSPRecv through the provider, with the calling thread's WSATHREADID as ws2_32
 * passes it. */
static int op_recv(SOCKET s, op_t *op, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine)
{
    WSABUF buf = {sizeof op->data, op->data};
    op->rc = L.lpWSPRecv(s, &buf, 1, &op->bytes, &op->flags, &op->ov, routine, &main_thread,
                         &op->err);
    return op->rc;
}

/* An overlapped WSPSend of `n` bytes of `data` through the provider. */
static int op_send(SOCKET s, op_t *op, const char *data, DWORD n,
                   LPWSAOVERLAPPED_COMPLETION_ROUTINE routine)
{
    WSABUF buf = {n, (char *)data};
    op->rc = L.lpWSPSend(s, &buf, 1, &op->bytes, 0, &op->ov, routine, &main_thread, &op->err);
    return op->rc;
}

static BOOL op_result(SOCKET s, op_t *op, DWORD *bytes, INT *err)
{
    DWORD flags = 0;
    *bytes = 0xFFFFFFFF;
    *err = 0;
    return L.lpWSPGetOverlappedResult(s, &op->ov, bytes, FALSE, &flags, err);
}

/* A packet of `port` within `ms`: 1 (TRUE), 0 (a failed request's packet: *error set), -1 none. */
static int port_packet(HANDLE port, DWORD ms, LPOVERLAPPED *ov, DWORD *bytes, ULONG_PTR *key,
                       DWORD *error)
{
    *ov = NULL;
    *bytes = 0;
    *key = 0;
    *error = 0;
    BOOL got = GetQueuedCompletionStatus(port, bytes, key, ov, ms);
    if (got)
        return 1;
    *error = GetLastError();
    return *ov ? 0 : -1;
}

/* ------------------------------------------------------------------------------------------- */
/* 64 threads through the provider.                                                            */

#define THREADS 64
#define THREAD_BYTES 100

static HANDLE go;
static unsigned short thread_port;
static volatile LONG thread_failures, thread_errors[8];

static DWORD WINAPI client_thread(void *arg)
{
    int index = (int)(intptr_t)arg;
    WaitForSingleObject(go, INFINITE);
    INT err = 0;
    SOCKET s = lsock(&err);
    struct sockaddr_in to = loopback4(thread_port);
    char data[THREAD_BYTES];
    memset(data, 'a' + index % 26, sizeof data);
    WSABUF buf = {sizeof data, data};
    DWORD sent = 0;
    int ok = s != INVALID_SOCKET &&
             L.lpWSPConnect(s, (struct sockaddr *)&to, sizeof to, NULL, NULL, NULL, NULL, &err) ==
                 0 &&
             L.lpWSPSend(s, &buf, 1, &sent, 0, NULL, NULL, NULL, &err) == 0 &&
             sent == THREAD_BYTES && L.lpWSPShutdown(s, SD_SEND, &err) == 0;
    if (s != INVALID_SOCKET && L.lpWSPCloseSocket(s, &err) != 0)
        ok = 0;
    if (!ok) {
        LONG n = InterlockedIncrement(&thread_failures);
        if (n <= 8)
            thread_errors[n - 1] = err;
    }
    return 0;
}

typedef struct {
    SOCKET listener;
    LONG connections;
    LONG64 bytes;
} server_t;

static DWORD WINAPI server_thread(void *arg)
{
    server_t *server = arg;
    for (int i = 0; i < THREADS; i++) {
        SOCKET c = p_accept(server->listener, NULL, NULL);
        if (c == INVALID_SOCKET)
            break;
        set_timeouts(c, 0);
        server->connections++;
        char buf[256];
        int n;
        while ((n = p_recv(c, buf, sizeof buf, 0)) > 0)
            server->bytes += n;
        p_closesocket(c);
    }
    return 0;
}

/* THREADS threads each WSPSocket, WSPConnect, WSPSend THREAD_BYTES bytes, WSPShutdown(SD_SEND)
 * and WSPCloseSocket through the provider to a peer that reads all (within `wait_ms`); checks
 * that all did and the peer read all (`through` ends the first check's text). */
static void run_threads(DWORD wait_ms, const char *through)
{
    server_t server = {0};
    server.listener = peer_listener(AF_INET, &thread_port);
    if (server.listener == INVALID_SOCKET)
        bail("no listener");
    go = CreateEventA(NULL, TRUE, FALSE, NULL);
    HANDLE threads[THREADS];
    for (int i = 0; i < THREADS; i++)
        threads[i] = CreateThread(NULL, 0, client_thread, (void *)(intptr_t)i, 0, NULL);
    HANDLE serving = CreateThread(NULL, 0, server_thread, &server, 0, NULL);
    DWORD began = GetTickCount();
    SetEvent(go);
    DWORD waited = WaitForMultipleObjects(THREADS, threads, TRUE, wait_ms);
    DWORD served = WaitForSingleObject(serving, wait_ms);
    DWORD took = GetTickCount() - began;
    CHECK(waited == WAIT_OBJECT_0 && served == WAIT_OBJECT_0 && thread_failures == 0,
          "%d threads each WSPSocket, WSPConnect, WSPSend %d bytes, WSPShutdown, WSPCloseSocket"
          "%s (%ld failed, first error %ld; %lu ms)", THREADS, THREAD_BYTES, through,
          thread_failures, thread_errors[0], took);
    CHECK(server.connections == THREADS && server.bytes == (LONG64)THREADS * THREAD_BYTES,
          "the peer accepted %ld connections and read %lld bytes", server.connections,
          (long long)server.bytes);
    for (int i = 0; i < THREADS; i++)
        CloseHandle(threads[i]);
    CloseHandle(serving);
    CloseHandle(go);
    p_closesocket(server.listener);
}

/* Threads of this process now. */
static int process_threads(void)
{
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
    if (snap == INVALID_HANDLE_VALUE)
        return -1;
    THREADENTRY32 entry;
    entry.dwSize = sizeof entry;
    int n = 0;
    DWORD me = GetCurrentProcessId();
    for (BOOL more = Thread32First(snap, &entry); more; more = Thread32Next(snap, &entry))
        n += entry.th32OwnerProcessID == me;
    CloseHandle(snap);
    return n;
}

/* ------------------------------------------------------------------------------------------- */
/* The setup.                                                                                  */

/* Wine's catalog entry of the protocol. */
static int find_protocol(int af, int type, int proto, WSAPROTOCOL_INFOW *out)
{
    static WSAPROTOCOL_INFOW all[64];
    DWORD size = sizeof all;
    int n = p_WSAEnumProtocolsW(NULL, all, &size);
    for (int i = 0; i < n; i++) {
        if (all[i].iAddressFamily == af && all[i].iSocketType == type &&
            all[i].iProtocol == proto) {
            *out = all[i];
            return 1;
        }
    }
    return 0;
}

/* Wine's ws2_32 for the peers, and the main thread's WSATHREADID. */
static void host_ws2_setup(void)
{
    InitializeCriticalSection(&log_lock);
    HMODULE ws2 = LoadLibraryA("ws2_32.dll");
    int resolved = ws2 != NULL;
#define RESOLVE_WS2(name)                                                                          \
    resolved &= (p_##name = (__typeof__(&name))(void (*)(void))GetProcAddress(ws2, #name)) != NULL;
    if (resolved) {
        WS2_32(RESOLVE_WS2)
    }
#undef RESOLVE_WS2
    if (!resolved)
        bail("ws2_32 functions");
    p_NtSetIoCompletion = (nt_set_io_completion_t)(void (*)(void))GetProcAddress(
        GetModuleHandleA("ntdll.dll"), "NtSetIoCompletion");
    WSADATA wsa;
    if (p_WSAStartup(MAKEWORD(2, 2), &wsa))
        bail("the harness's own WSAStartup");
    if (!open_thread(&main_thread))
        bail("a WSATHREADID for the main thread");
}

/* host_ws2_setup, then the catalog for the layer `layer_id` named `name`, the base's path
 * (argv[2]) in it and the base loaded for BaseStats. */
static void host_setup(char **argv, const GUID *layer_id, const WCHAR *name,
                       const WCHAR *chain_name)
{
    host_ws2_setup();

    /* The catalog: the layer's hidden entry, the base's (Wine's TCP/IPv4), the chain. */
    WSAPROTOCOL_INFOW tcp;
    if (!find_protocol(AF_INET, SOCK_STREAM, IPPROTO_TCP, &tcp))
        bail("Wine's TCP/IPv4 catalog entry");
    catalog[1] = tcp;
    catalog[1].dwCatalogEntryId = BASE;
    catalog[1].ProviderId = BASE_ID;
    catalog[1].ProtocolChain.ChainLen = BASE_PROTOCOL;
    catalog[1].ProtocolChain.ChainEntries[0] = BASE;
    catalog[0] = tcp;
    catalog[0].dwCatalogEntryId = HIDDEN;
    catalog[0].ProviderId = *layer_id;
    catalog[0].ProtocolChain.ChainLen = LAYERED_PROTOCOL;
    catalog[0].ProtocolChain.ChainEntries[0] = 0;
    wcsncpy(catalog[0].szProtocol, name, WSAPROTOCOL_LEN);
    catalog[2] = tcp;
    catalog[2].dwCatalogEntryId = CHAIN;
    catalog[2].ProviderId = *layer_id;
    catalog[2].dwServiceFlags1 &= ~XP1_IFS_HANDLES;
    catalog[2].ProtocolChain.ChainLen = 2;
    catalog[2].ProtocolChain.ChainEntries[0] = HIDDEN;
    catalog[2].ProtocolChain.ChainEntries[1] = BASE;
    wcsncpy(catalog[2].szProtocol, chain_name, WSAPROTOCOL_LEN);
    socket_entry = &catalog[2];

    /* The base: its path as the catalog keeps it, and loaded for BaseStats. */
    char full[MAX_PATH];
    char *file_part = NULL;
    if (!GetFullPathNameA(argv[2], MAX_PATH, full, &file_part) || !file_part)
        bail("GetFullPathNameA of the base");
    MultiByteToWideChar(CP_ACP, 0, full, -1, base_full_path, MAX_PATH);
    WCHAR file_w[MAX_PATH];
    MultiByteToWideChar(CP_ACP, 0, file_part, -1, file_w, MAX_PATH);
    wcscpy(catalog_path, L"%" BASE_DIR_ENV_W L"%\\");
    wcscat(catalog_path, file_w);
    file_part[-1] = 0;
    SetEnvironmentVariableA(BASE_DIR_ENV, full);
    base_module = LoadLibraryW(base_full_path);
    base_stats = base_module ? (LPWSP_BASE_STATS)(void (*)(void))GetProcAddress(base_module,
                                                                                "BaseStats")
                             : NULL;
    CHECK(base_stats != NULL, "LoadLibrary(%s): BaseStats resolves", argv[2]);
    if (!base_stats)
        bail("the base");
}

/* A layer harness's start: unbuffered output, the arguments (`exe` <layer.dll> <wsp_base.dll>)
 * and host_setup; returns the tick count it began at. */
static DWORD host_begin(int argc, char **argv, const char *exe, const GUID *layer_id,
                        const WCHAR *name, const WCHAR *chain_name)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: %s <layer.dll> <wsp_base.dll>\n", exe);
        ExitProcess(2);
    }
    DWORD began = GetTickCount();
    host_setup(argv, layer_id, name, chain_name);
    return began;
}

/* The layer DLL (argv[1]): loaded, its WSPStartup resolved. */
static HMODULE host_load_layer(const char *path)
{
    HMODULE layer = LoadLibraryA(path);
    wsp_startup = layer ? (LPWSPSTARTUP)(void (*)(void))GetProcAddress(layer, "WSPStartup")
                          : NULL;
    CHECK(wsp_startup != NULL, "LoadLibrary(%s): WSPStartup resolves (%lu)", path,
          layer ? 0 : GetLastError());
    if (!wsp_startup)
        bail("the layer");
    return layer;
}

#pragma GCC diagnostic pop

#endif
