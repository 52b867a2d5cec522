/*
 * WSP host harness: plays ws2_32 against a real Winsock base provider DLL (winprov_wine_wsp.dll:
 * winprov-wsp's abi::Base over its in-memory loopback transport) through its one export,
 * WSPStartup, and the WSPPROC_TABLE it hands out, on real Windows threads, under Wine.
 *
 * The ABI is taken from mingw-w64's ws2spi.h / winsock2.h, a source independent of the Rust
 * bindings: WSPStartup is called through an LPWSPSTARTUP, every slot through the table's LPWSP*
 * pointers, and ws2_32's side -- the upcall table (WSPUPCALLTABLE): socket handles
 * (WPUCreateSocketHandle / WPUQuerySocketHandleContext / WPUCloseSocketHandle), events
 * (WPUSetEvent / WPUResetEvent -> SetEvent / ResetEvent), completion routines (WPUQueueApc ->
 * QueueUserAPC to the thread named by the WSATHREADID), window messages (WPUPostMessage,
 * recorded) and threads (WPUOpenCurrentThread / WPUCloseThread) -- is implemented here, in C.
 * Wine does not host third-party providers: nothing of Wine's own ws2_32 is in the way, except
 * the one function a provider imports from it directly (below).
 *
 * WPUCompleteOverlappedRequest under Wine -- observed with Wine 8.0 (Debian 8.0~repack-4): its
 * ws2_32 exports it as a stub that returns 0 -- success, by the documented contract -- after
 * writing WSAEINVAL to *lpErrno, and neither completes the WSAOVERLAPPED nor sets its event (the
 * harness probes it at start and prints what it did on a `#` line). Base takes a 0 with *lpErrno
 * written for what it is -- nothing done -- and completes the request itself (InternalHigh, then
 * Internal, then WPUSetEvent), as when the export fails; a scenario puts Wine's stub back to
 * check it. Completion routines do not use the export. Elsewhere the harness plays that export
 * too, as ws2_32 documents it: it replaces the DLL's import of
 * ws2_32!WPUCompleteOverlappedRequest with its own (InternalHigh = bytes, then Internal = the
 * error, then the event, its low bit masked; WSAEINVAL for a handle WPUCreateSocketHandle did
 * not make, R-WSP-18), which logs every call, so the checks can tell who delivered. One scenario
 * makes it fail (SOCKET_ERROR / WSAEINVAL) to prove Base's fallback. `--wine-completion` keeps
 * Wine's stub throughout (the checks that count the harness's own completions then fail).
 *
 * Prints `ok N - ...` / `not ok N - ...` per check, then "N passed, M failed"; exits non-zero on
 * any failure. Usage: wsp_host.exe <provider.dll> [--wine-completion].
 *
 * Built and run by `cargo xtask test` (x86_64-w64-mingw32-gcc, then wine, cwd = target/wine/bin).
 */
#include <winsock2.h>
#include <ws2spi.h>
#include <windows.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The catalog entry ws2_32 would have read from the registry for this provider. */
#define CATALOG 1001
#define PROTOCOL_NAME L"winprov memory stream"
/* The window and message of WSPAsyncSelect: WPUPostMessage only records them. */
#define WINDOW ((HWND)(ULONG_PTR)0x5150)
#define WM_SOCKET (WM_USER + 7)
#define WAIT_MS 5000

_Static_assert(sizeof(WSPPROC_TABLE) == 30 * sizeof(void *), "WSPPROC_TABLE has 30 slots");

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
/* ws2_32's side: the upcall table, and what it saw.                                           */

static CRITICAL_SECTION log_lock;

/* Socket handles made by WPUCreateSocketHandle. */
#define MAX_HANDLES 256
typedef struct {
    SOCKET s;
    DWORD catalog;
    DWORD_PTR context;
    LONG closes;
} ws_handle;
static ws_handle handles[MAX_HANDLES];
static LONG handle_count;

static struct {
    volatile LONG create, close, query, set_event, reset_event, queue_apc, post, open_thread,
        close_thread, modify_ifs, table2_create;
} calls;
static HANDLE last_set_event;
static HANDLE last_apc_thread;

/* WPUPostMessage's log. */
#define MAX_MESSAGES 64
typedef struct {
    HWND hwnd;
    UINT msg;
    WPARAM wparam;
    LPARAM lparam;
} message_t;
static message_t messages[MAX_MESSAGES];
static LONG message_count;

/* The log of WPUCompleteOverlappedRequest (the harness's, see the top of the file). */
#define MAX_COMPLETIONS 64
typedef struct {
    SOCKET s;
    LPWSAOVERLAPPED ov;
    DWORD error, bytes;
    int result;
} completion_t;
static completion_t completions[MAX_COMPLETIONS];
static LONG completion_count;
enum { COMPLETE_WORKS, COMPLETE_FAILS };
/* The provider DLL, and Wine's own ws2_32!WPUCompleteOverlappedRequest it imported. */
static HMODULE provider_dll;
static void *wine_complete;
static volatile LONG complete_mode = COMPLETE_WORKS;
static int playing_complete; /* the DLL's import replaced */

/* The handle entry of a live (not closed) socket; under log_lock. */
static ws_handle *live_handle(SOCKET s)
{
    for (LONG i = 0; i < handle_count; i++)
        if (handles[i].s == s && handles[i].closes == 0)
            return &handles[i];
    return NULL;
}

static ws_handle *handle_of(SOCKET s)
{
    for (LONG i = 0; i < handle_count; i++)
        if (handles[i].s == s)
            return &handles[i];
    return NULL;
}

static SOCKET WSPAPI wpu_create_socket_handle(DWORD catalog, DWORD_PTR context, LPINT err)
{
    InterlockedIncrement(&calls.create);
    EnterCriticalSection(&log_lock);
    SOCKET s = INVALID_SOCKET;
    if (handle_count < MAX_HANDLES) {
        ws_handle *h = &handles[handle_count];
        /* Values that look like kernel handles, none of them a real one. */
        h->s = (SOCKET)(0x40000 + 8 * handle_count);
        h->catalog = catalog;
        h->context = context;
        h->closes = 0;
        handle_count++;
        s = h->s;
    } else {
        *err = WSAENOBUFS;
    }
    LeaveCriticalSection(&log_lock);
    return s;
}

/* The same, through a second upcall table (R-WSP-3: the most recent one is used). */
static SOCKET WSPAPI wpu_create_socket_handle_2(DWORD catalog, DWORD_PTR context, LPINT err)
{
    InterlockedIncrement(&calls.table2_create);
    return wpu_create_socket_handle(catalog, context, err);
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
    ws_handle *h = handle_of(s);
    int ok = h && h->closes == 0;
    if (h)
        h->closes++;
    LeaveCriticalSection(&log_lock);
    if (!ok) {
        *err = WSAENOTSOCK;
        return SOCKET_ERROR;
    }
    return 0;
}

static BOOL WSPAPI wpu_set_event(WSAEVENT event, LPINT err)
{
    InterlockedIncrement(&calls.set_event);
    last_set_event = event;
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

static int WSPAPI wpu_queue_apc(LPWSATHREADID thread, LPWSAUSERAPC apc, DWORD_PTR context,
                                LPINT err)
{
    InterlockedIncrement(&calls.queue_apc);
    last_apc_thread = thread ? thread->ThreadHandle : NULL;
    if (!thread || !apc || !QueueUserAPC((PAPCFUNC)apc, thread->ThreadHandle, context)) {
        *err = WSAEINVAL;
        return SOCKET_ERROR;
    }
    return 0;
}

static BOOL WSPAPI wpu_post_message(HWND hwnd, UINT msg, WPARAM wparam, LPARAM lparam)
{
    InterlockedIncrement(&calls.post);
    EnterCriticalSection(&log_lock);
    int ok = message_count < MAX_MESSAGES;
    if (ok)
        messages[message_count++] = (message_t){hwnd, msg, wparam, lparam};
    LeaveCriticalSection(&log_lock);
    return ok;
}

/* ws2_32 fills a WSATHREADID for the calling thread: a real handle of it. */
static int open_thread(LPWSATHREADID thread)
{
    thread->Reserved = 0;
    return DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(),
                           &thread->ThreadHandle, 0, FALSE, DUPLICATE_SAME_ACCESS);
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
    if (!CloseHandle(thread->ThreadHandle)) {
        *err = WSAEINVAL;
        return SOCKET_ERROR;
    }
    return 0;
}

static WSAEVENT WSPAPI wpu_create_event(LPINT err)
{
    HANDLE event = CreateEventA(NULL, TRUE, FALSE, NULL);
    if (!event)
        *err = WSA_NOT_ENOUGH_MEMORY;
    return event;
}

static BOOL WSPAPI wpu_close_event(WSAEVENT event, LPINT err)
{
    if (!CloseHandle(event)) {
        *err = WSA_INVALID_HANDLE;
        return FALSE;
    }
    return TRUE;
}

static int WSPAPI wpu_fd_is_set(SOCKET s, fd_set *set)
{
    for (u_int i = 0; set && i < set->fd_count; i++)
        if (set->fd_array[i] == s)
            return 1;
    return 0;
}

static int WSPAPI wpu_get_provider_path(LPGUID id, WCHAR *path, LPINT len, LPINT err)
{
    (void)id, (void)path, (void)len;
    *err = WSAEINVAL;
    return SOCKET_ERROR;
}

/* For IFS providers only: a base provider of WPUCreateSocketHandle handles never calls it. */
static SOCKET WSPAPI wpu_modify_ifs_handle(DWORD catalog, SOCKET proposed, LPINT err)
{
    (void)catalog, (void)err;
    InterlockedIncrement(&calls.modify_ifs);
    return proposed;
}

static int WSPAPI wpu_query_blocking_callback(DWORD catalog, LPBLOCKINGCALLBACK *callback,
                                              PDWORD_PTR context, LPINT err)
{
    (void)catalog, (void)err;
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

/* ws2_32!WPUCompleteOverlappedRequest as documented (no completion ports in this harness). */
static int WSPAPI host_complete(SOCKET s, LPWSAOVERLAPPED ov, DWORD error, DWORD bytes, LPINT err)
{
    EnterCriticalSection(&log_lock);
    int result = 0;
    if (complete_mode == COMPLETE_FAILS || !live_handle(s) || !ov) {
        *err = WSAEINVAL;
        result = SOCKET_ERROR;
    }
    if (completion_count < MAX_COMPLETIONS)
        completions[completion_count++] = (completion_t){s, ov, error, bytes, result};
    LeaveCriticalSection(&log_lock);
    if (result == 0) {
        ov->InternalHigh = bytes;
        MemoryBarrier();
        ov->Internal = error;
        HANDLE event = (HANDLE)((ULONG_PTR)ov->hEvent & ~(ULONG_PTR)1);
        if (event)
            SetEvent(event);
    }
    return result;
}

/* The WPUCompleteOverlappedRequest calls for `ov`; the last one in *last. */
static int completions_of(LPWSAOVERLAPPED ov, completion_t *last)
{
    int n = 0;
    EnterCriticalSection(&log_lock);
    for (LONG i = 0; i < completion_count; i++) {
        if (completions[i].ov == ov) {
            n++;
            if (last)
                *last = completions[i];
        }
    }
    LeaveCriticalSection(&log_lock);
    return n;
}

/* Replaces the address `module` imports `name` from `dll` with; returns how many it replaced and
 * the previous address in *previous. */
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
            *previous = (void *)(ULONG_PTR)iat->u1.Function;
            iat->u1.Function = (ULONG_PTR)replacement;
            VirtualProtect(&iat->u1.Function, sizeof iat->u1.Function, protect, &protect);
            patched++;
        }
    }
    return patched;
}

/* ------------------------------------------------------------------------------------------- */
/* The provider.                                                                               */

static LPWSPSTARTUP wsp_startup;
static WSPPROC_TABLE P; /* the proc table of the current startup */
static WSAPROTOCOL_INFOW protocol;

static void make_protocol(WSAPROTOCOL_INFOW *info)
{
    memset(info, 0, sizeof *info);
    info->dwServiceFlags1 = XP1_GUARANTEED_DELIVERY | XP1_GUARANTEED_ORDER | XP1_GRACEFUL_CLOSE;
    info->dwCatalogEntryId = CATALOG;
    info->ProtocolChain.ChainLen = BASE_PROTOCOL;
    info->ProtocolChain.ChainEntries[0] = CATALOG;
    info->iVersion = 2;
    /* The loopback transport's addresses are 2-byte ports: no sockaddr family of its own. */
    info->iAddressFamily = AF_UNSPEC;
    info->iMaxSockAddr = 2;
    info->iMinSockAddr = 2;
    info->iSocketType = SOCK_STREAM;
    info->iProtocol = 0;
    wcscpy(info->szProtocol, PROTOCOL_NAME);
}

static int start(void)
{
    WSPDATA data;
    return wsp_startup(MAKEWORD(2, 2), &data, &protocol, upcalls, &P);
}

static int cleanup(void)
{
    INT err = 0;
    int rc = P.lpWSPCleanup(&err);
    return rc == 0 ? 0 : err;
}

static SOCKET new_socket(INT *err)
{
    return P.lpWSPSocket(AF_UNSPEC, SOCK_STREAM, 0, &protocol, 0, WSA_FLAG_OVERLAPPED, err);
}

static int close_socket(SOCKET s)
{
    INT err = 0;
    return P.lpWSPCloseSocket(s, &err) == 0 ? 0 : err;
}

static int shutdown_socket(SOCKET s, int how)
{
    INT err = 0;
    return P.lpWSPShutdown(s, how, &err) == 0 ? 0 : err;
}

/* Bytes sent, or -1 with the error in *err. */
static int send_text(SOCKET s, const char *text, INT *err)
{
    WSABUF buf = {(ULONG)strlen(text), (char *)text};
    DWORD sent = 0;
    INT e = 0;
    int rc = P.lpWSPSend(s, &buf, 1, &sent, 0, NULL, NULL, NULL, &e);
    if (err)
        *err = e;
    return rc == 0 ? (int)sent : -1;
}

/* A non-overlapped receive: bytes received (NUL-terminated in out), or -1 with *err. */
static int recv_text(SOCKET s, char *out, DWORD capacity, INT *err)
{
    WSABUF buf = {capacity - 1, out};
    DWORD got = 0, flags = 0;
    INT e = 0;
    memset(out, 0, capacity);
    int rc = P.lpWSPRecv(s, &buf, 1, &got, &flags, NULL, NULL, NULL, &e);
    if (err)
        *err = e;
    return rc == 0 ? (int)got : -1;
}

static unsigned short next_port = 7000;

/* Two connected sockets through a listener on a fresh port (closed again); 0 or an error. */
static int pair(SOCKET *client, SOCKET *server)
{
    unsigned short port = next_port++;
    unsigned char name[2] = {(unsigned char)(port >> 8), (unsigned char)port};
    INT err = 0;
    SOCKET listener = new_socket(&err);
    if (listener == INVALID_SOCKET)
        return err;
    if (P.lpWSPBind(listener, (const struct sockaddr *)name, 2, &err) ||
        P.lpWSPListen(listener, 1, &err))
        return err;
    *client = new_socket(&err);
    if (*client == INVALID_SOCKET)
        return err;
    if (P.lpWSPConnect(*client, (const struct sockaddr *)name, 2, NULL, NULL, NULL, NULL, &err))
        return err;
    *server = P.lpWSPAccept(listener, NULL, NULL, NULL, 0, &err);
    if (*server == INVALID_SOCKET)
        return err;
    return close_socket(listener);
}

/* An overlapped operation: the WSAOVERLAPPED first, so a completion routine finds its record. */
typedef struct {
    WSAOVERLAPPED ov;
    HANDLE event;
    char data[64];
    WSATHREADID thread; /* the real handle, kept to be closed */
    int rc;
    INT err;
    DWORD bytes, flags;
    /* What the completion routine saw. */
    volatile LONG routine_calls;
    DWORD routine_error, routine_bytes, routine_flags, routine_thread;
    ULONG_PTR seen_internal, seen_internal_high;
} op_t;

static void op_init(op_t *op)
{
    memset(op, 0, sizeof *op);
    op->event = CreateEventA(NULL, TRUE, FALSE, NULL);
    op->ov.hEvent = op->event;
    memset(op->data, '.', sizeof op->data);
    op->bytes = 0xFFFFFFFF;
}

static void op_free(op_t *op)
{
    CloseHandle(op->event);
    if (op->thread.ThreadHandle)
        CloseHandle(op->thread.ThreadHandle);
}

static void CALLBACK on_routine(DWORD error, DWORD bytes, LPWSAOVERLAPPED ov, DWORD flags)
{
    op_t *op = CONTAINING_RECORD(ov, op_t, ov);
    op->seen_internal = ov->Internal;
    op->seen_internal_high = ov->InternalHigh;
    op->routine_error = error;
    op->routine_bytes = bytes;
    op->routine_flags = flags;
    op->routine_thread = GetCurrentThreadId();
    InterlockedIncrement(&op->routine_calls);
}

/* An overlapped WSPRecv of up to `capacity` bytes into op->data, completed by its event. */
static int recv_by_event(SOCKET s, op_t *op, DWORD capacity)
{
    WSABUF buf = {capacity, op->data};
    op->rc = P.lpWSPRecv(s, &buf, 1, &op->bytes, &op->flags, &op->ov, NULL, NULL, &op->err);
    memset(&buf, 0xEE, sizeof buf); /* the caller reuses it at once (R-WSP-17) */
    return op->rc;
}

/* The same with a completion routine, queued to the calling thread. */
static int recv_by_routine(SOCKET s, op_t *op, DWORD capacity)
{
    WSABUF buf = {capacity, op->data};
    open_thread(&op->thread);
    WSATHREADID thread = op->thread;
    op->rc = P.lpWSPRecv(s, &buf, 1, &op->bytes, &op->flags, &op->ov, on_routine, &thread,
                         &op->err);
    memset(&buf, 0xEE, sizeof buf);
    memset(&thread, 0xEE, sizeof thread);
    return op->rc;
}

static int pending(const op_t *op)
{
    return op->rc == SOCKET_ERROR && op->err == WSA_IO_PENDING;
}

/* Messages posted for `s`; the last one in *last. */
static int messages_for(SOCKET s, message_t *last)
{
    int n = 0;
    EnterCriticalSection(&log_lock);
    for (LONG i = 0; i < message_count; i++) {
        if (messages[i].wparam == (WPARAM)s) {
            n++;
            if (last)
                *last = messages[i];
        }
    }
    LeaveCriticalSection(&log_lock);
    return n;
}

static int all_bytes(const void *p, int value, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)value)
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------------------------- */
/* R-WSP-1, 2, 3, 19: startup and cleanup.                                                     */

static void test_startup(void)
{
    WSPDATA data;
    WSPPROC_TABLE table;

    memset(&data, 0xAA, sizeof data);
    memset(&table, 0xAA, sizeof table);
    int rc = wsp_startup(MAKEWORD(1, 1), &data, &protocol, upcalls, &table);
    CHECK(rc == WSAVERNOTSUPPORTED, "R-WSP-1: WSPStartup(1.1) returns WSAVERNOTSUPPORTED (%d)", rc);
    rc = wsp_startup(MAKEWORD(2, 0), &data, &protocol, upcalls, &table);
    CHECK(rc == WSAVERNOTSUPPORTED, "R-WSP-1: WSPStartup(2.0), below the minimum 2.2, returns "
                                    "WSAVERNOTSUPPORTED (%d)", rc);
    CHECK(all_bytes(&data, 0xAA, sizeof data) && all_bytes(&table, 0xAA, sizeof table),
          "R-WSP-1: a refused version writes neither WSPDATA nor the proc table");

    WSAPROTOCOL_INFOW ifs = protocol;
    ifs.dwServiceFlags1 |= XP1_IFS_HANDLES;
    rc = wsp_startup(MAKEWORD(2, 2), &data, &ifs, upcalls, &table);
    CHECK(rc == WSAEPROVIDERFAILEDINIT,
          "R-WSP-19: a catalog entry with XP1_IFS_HANDLES is refused: WSAEPROVIDERFAILEDINIT (%d)",
          rc);
    CHECK(calls.create == 0 && calls.modify_ifs == 0 && all_bytes(&table, 0xAA, sizeof table),
          "R-WSP-19: refused before any WPUCreateSocketHandle (%ld calls), no proc table",
          calls.create);

    rc = wsp_startup(MAKEWORD(2, 2), &data, &protocol, upcalls, &table);
    CHECK(rc == 0 && data.wVersion == 0x0202 && data.wHighVersion == 0x0202,
          "R-WSP-1: WSPStartup(2.2) returns 0 with wVersion 0x%04x, wHighVersion 0x%04x",
          data.wVersion, data.wHighVersion);
    CHECK(data.szDescription[0] != 0 && data.szDescription[WSPDESCRIPTION_LEN] == 0,
          "WSPDATA.szDescription is a NUL-terminated name (%ls)", data.szDescription);
    void *const *slots = (void *const *)&table;
    int filled = 0;
    for (int i = 0; i < 30; i++)
        filled += slots[i] != NULL && slots[i] != (void *)(ULONG_PTR)0xAAAAAAAAAAAAAAAAull;
    CHECK(filled == 30, "all 30 slots of the WSPPROC_TABLE are filled (%d)", filled);
    P = table;

    /* A second startup through another upcall table: counted, and that table is used. */
    WSPUPCALLTABLE second = upcalls;
    second.lpWPUCreateSocketHandle = wpu_create_socket_handle_2;
    memset(&data, 0, sizeof data);
    rc = wsp_startup(MAKEWORD(3, 0), &data, &protocol, second, &table);
    CHECK(rc == 0 && data.wVersion == 0x0202,
          "R-WSP-1: WSPStartup(3.0) negotiates down to wVersion 0x%04x", data.wVersion);
    INT err = 0;
    SOCKET s = new_socket(&err);
    CHECK(s != INVALID_SOCKET && calls.table2_create == 1,
          "R-WSP-3: the socket handle comes from the most recent startup's upcall table (%ld)",
          calls.table2_create);
    close_socket(s);

    CHECK(cleanup() == 0, "R-WSP-2: the first of two WSPCleanups returns 0");
    s = new_socket(&err);
    CHECK(s != INVALID_SOCKET, "R-WSP-2: after one cleanup of two startups the provider serves "
                               "(WSPSocket: %d)", s == INVALID_SOCKET ? err : 0);
    close_socket(s);
    CHECK(cleanup() == 0, "R-WSP-2: the second WSPCleanup returns 0 (the final one)");
    err = 0;
    s = new_socket(&err);
    CHECK(s == INVALID_SOCKET && err == WSANOTINITIALISED,
          "R-WSP-2: after the final cleanup a slot answers WSANOTINITIALISED (%d): the refused "
          "startups were not counted", err);
    rc = cleanup();
    CHECK(rc == WSANOTINITIALISED, "R-WSP-2: a WSPCleanup too many is WSANOTINITIALISED (%d)", rc);
}

/* ------------------------------------------------------------------------------------------- */
/* R-WSP-5, 7, 8: a connected pair, send / recv, shutdown and FD_CLOSE.                        */

static void test_stream_and_shutdown(void)
{
    INT err = 0;
    SOCKET lone = new_socket(&err);
    int rc = shutdown_socket(lone, SD_SEND);
    CHECK(rc == WSAENOTCONN, "R-WSP-5: WSPShutdown of an unconnected socket is WSAENOTCONN (%d)",
          rc);
    close_socket(lone);

    SOCKET client = INVALID_SOCKET, server = INVALID_SOCKET;
    rc = pair(&client, &server);
    CHECK(rc == 0, "a pair: WSPSocket, WSPBind, WSPListen, WSPConnect, WSPAccept (%d)", rc);
    EnterCriticalSection(&log_lock);
    ws_handle *hc = handle_of(client), *hs = handle_of(server);
    int handles_ok = hc && hs && hc->catalog == CATALOG && hs->catalog == CATALOG &&
                     hc->context != 0 && hs->context != 0 && hc->context != hs->context;
    LeaveCriticalSection(&log_lock);
    CHECK(handles_ok, "both sockets are WPUCreateSocketHandle handles of catalog entry %d, each "
                      "with a context of its own", CATALOG);

    char got[64];
    int sent = send_text(client, "hello", &err);
    int read = recv_text(server, got, sizeof got, &err);
    CHECK(sent == 5 && read == 5 && strcmp(got, "hello") == 0, "WSPSend 5 bytes, WSPRecv reads "
                                                               "\"%s\" (%d)", got, read);

    int bad_low = shutdown_socket(client, -1), bad_high = shutdown_socket(client, 3);
    CHECK(bad_low == WSAEINVAL && bad_high == WSAEINVAL,
          "R-WSP-5: WSPShutdown with how -1 or 3 is WSAEINVAL (%d, %d)", bad_low, bad_high);

    rc = P.lpWSPAsyncSelect(server, WINDOW, WM_SOCKET, FD_READ | FD_CLOSE, &err);
    CHECK(rc == 0, "WSPAsyncSelect(FD_READ | FD_CLOSE) on the server (%d)", rc ? err : 0);
    sent = send_text(client, "last words", &err);
    rc = shutdown_socket(client, SD_SEND);
    CHECK(sent == 10 && rc == 0, "the client sends 10 bytes and shuts its sending side (%d)", rc);
    rc = send_text(client, "more", &err);
    CHECK(rc == -1 && err == WSAESHUTDOWN, "R-WSP-7: a send after SD_SEND is WSAESHUTDOWN (%d)",
          err);

    message_t last = {0};
    DWORD start = GetTickCount();
    while (GetTickCount() - start < WAIT_MS &&
           !(messages_for(server, &last) && WSAGETSELECTEVENT(last.lparam) == FD_CLOSE))
        Sleep(1);
    CHECK(last.hwnd == WINDOW && last.msg == WM_SOCKET && last.wparam == (WPARAM)server &&
              last.lparam == WSAMAKESELECTREPLY(FD_CLOSE, 0),
          "R-WSP-8: WPUPostMessage(window, msg, the server's handle, WSAMAKESELECTREPLY(FD_CLOSE, "
          "0)) (wParam 0x%llx, lParam 0x%llx)", (unsigned long long)last.wparam,
          (unsigned long long)last.lparam);
    message_t first = {0};
    EnterCriticalSection(&log_lock);
    for (LONG i = 0; i < message_count; i++)
        if (messages[i].wparam == (WPARAM)server) {
            first = messages[i];
            break;
        }
    LeaveCriticalSection(&log_lock);
    CHECK(first.lparam == WSAMAKESELECTREPLY(FD_READ, 0) && messages_for(server, NULL) == 2,
          "FD_READ came first, then FD_CLOSE: %d messages", messages_for(server, NULL));
    read = recv_text(server, got, sizeof got, &err);
    CHECK(read == 10 && strcmp(got, "last words") == 0, "R-WSP-8: the peer reads the data "
                                                         "(\"%s\")", got);
    read = recv_text(server, got, sizeof got, &err);
    CHECK(read == 0, "R-WSP-8: then 0 bytes (%d, error %d)", read, read < 0 ? err : 0);

    /* The other way, by event: WSPEventSelect, WPUSetEvent, WSPEnumNetworkEvents. */
    HANDLE event = CreateEventA(NULL, TRUE, FALSE, NULL);
    rc = P.lpWSPEventSelect(client, event, FD_CLOSE, &err);
    LONG set_events = calls.set_event;
    int shut = shutdown_socket(server, SD_SEND);
    DWORD waited = WaitForSingleObject(event, WAIT_MS);
    CHECK(rc == 0 && shut == 0 && waited == WAIT_OBJECT_0 && calls.set_event > set_events &&
              last_set_event == event,
          "R-WSP-8: WSPEventSelect(FD_CLOSE) on the client: the server's SD_SEND sets its event "
          "with WPUSetEvent (wait %lu)", waited);
    WSANETWORKEVENTS events;
    memset(&events, 0xAA, sizeof events);
    LONG resets = calls.reset_event;
    rc = P.lpWSPEnumNetworkEvents(client, event, &events, &err);
    CHECK(rc == 0 && (events.lNetworkEvents & FD_CLOSE) && events.iErrorCode[FD_CLOSE_BIT] == 0,
          "R-WSP-8: WSPEnumNetworkEvents reports FD_CLOSE with error %d (events 0x%lx)",
          events.iErrorCode[FD_CLOSE_BIT], events.lNetworkEvents);
    CHECK(calls.reset_event == resets + 1 && WaitForSingleObject(event, 0) == WAIT_TIMEOUT,
          "and resets the event with WPUResetEvent");
    read = recv_text(client, got, sizeof got, &err);
    CHECK(read == 0, "R-WSP-8: the client's WSPRecv returns 0 bytes (%d, error %d)", read,
          read < 0 ? err : 0);
    CloseHandle(event);

    int closed_client = close_socket(client), closed_server = close_socket(server);
    CHECK(closed_client == 0 && closed_server == 0 && hc->closes == 1 && hs->closes == 1,
          "WSPCloseSocket releases each handle with one WPUCloseSocketHandle (%ld, %ld)",
          hc->closes, hs->closes);
}

/* ------------------------------------------------------------------------------------------- */
/* R-WSP-16, 18: overlapped receives completed by an event.                                    */

static void test_overlapped_event(void)
{
    SOCKET client, server;
    pair(&client, &server);
    op_t op;
    op_init(&op);
    recv_by_event(server, &op, 32);
    CHECK(pending(&op), "R-WSP-16: an overlapped WSPRecv with nothing to read is SOCKET_ERROR / "
                        "WSA_IO_PENDING (%d / %d)", op.rc, op.err);
    CHECK(op.ov.Internal == WSS_OPERATION_IN_PROGRESS &&
              WaitForSingleObject(op.event, 0) == WAIT_TIMEOUT,
          "while pending: Internal is WSS_OPERATION_IN_PROGRESS (0x%llx), the event not set",
          (unsigned long long)op.ov.Internal);
    DWORD bytes = 0, flags = 0;
    INT err = 0;
    BOOL done = P.lpWSPGetOverlappedResult(server, &op.ov, &bytes, FALSE, &flags, &err);
    CHECK(!done && err == WSA_IO_INCOMPLETE,
          "R-WSP-16: WSPGetOverlappedResult(fWait FALSE) while pending is WSA_IO_INCOMPLETE (%d)",
          err);

    LONG set_events = calls.set_event;
    send_text(client, "overlapped", &err);
    DWORD waited = WaitForSingleObject(op.event, WAIT_MS);
    CHECK(waited == WAIT_OBJECT_0, "a send on the peer sets the event (wait: %lu)", waited);
    CHECK(op.ov.InternalHigh == 10 && op.ov.Internal != WSS_OPERATION_IN_PROGRESS &&
              op.ov.Internal == 0,
          "R-WSP-18: InternalHigh = %llu bytes, Internal = 0x%llx",
          (unsigned long long)op.ov.InternalHigh, (unsigned long long)op.ov.Internal);
    CHECK(op.ov.Offset == 0 && op.ov.OffsetHigh == 0,
          "the provider's half: Offset (flags) %lu, OffsetHigh (error) %lu", op.ov.Offset,
          op.ov.OffsetHigh);
    CHECK(memcmp(op.data, "overlapped", 10) == 0 && op.data[10] == '.',
          "the data is in the buffer: \"%.10s\"", op.data);
    completion_t c = {0};
    int n = completions_of(&op.ov, &c);
    if (playing_complete)
        CHECK(n == 1 && c.result == 0 && c.s == server && c.error == 0 && c.bytes == 10 &&
                  calls.set_event == set_events,
              "R-WSP-18: completed once by ws2_32's WPUCompleteOverlappedRequest(the server's "
              "handle, &ov, 0, 10) (%d calls), not by WPUSetEvent", n);
    done = P.lpWSPGetOverlappedResult(server, &op.ov, &bytes, TRUE, &flags, &err);
    CHECK(done && bytes == 10 && flags == 0,
          "WSPGetOverlappedResult gives the count: %lu bytes, flags %lu (%d)", bytes, flags,
          done ? 0 : err);

    /* Data already there: 0 at once, the event set before the call returned. */
    op_t now;
    op_init(&now);
    send_text(client, "now", &err);
    recv_by_event(server, &now, 32);
    DWORD at_once = WaitForSingleObject(now.event, 0);
    CHECK(now.rc == 0 && now.bytes == 3 && at_once == WAIT_OBJECT_0 && now.ov.InternalHigh == 3 &&
              memcmp(now.data, "now", 3) == 0,
          "R-WSP-16: with data there an overlapped WSPRecv returns 0 with %lu bytes, its event "
          "already set", now.bytes);
    Sleep(20);
    int expected = playing_complete ? 1 : 0;
    CHECK(completions_of(&op.ov, NULL) == n && completions_of(&now.ov, NULL) == expected,
          "R-WSP-16: each completed once");
    op_free(&op);
    op_free(&now);
    close_socket(client);
    close_socket(server);
}

/* Base's fallback when ws2_32's WPUCompleteOverlappedRequest fails. */
static void test_completion_fallback(void)
{
    if (!playing_complete) {
        NOTE("--wine-completion: the fallback is not exercised");
        return;
    }
    SOCKET client, server;
    pair(&client, &server);
    op_t op;
    op_init(&op);
    /* The low bit of hEvent only keeps the completion off a completion port. */
    op.ov.hEvent = (HANDLE)((ULONG_PTR)op.event | 1);
    recv_by_event(server, &op, 32);
    complete_mode = COMPLETE_FAILS;
    LONG set_events = calls.set_event;
    INT err = 0;
    send_text(client, "fallback", &err);
    DWORD waited = WaitForSingleObject(op.event, WAIT_MS);
    complete_mode = COMPLETE_WORKS;
    completion_t c = {0};
    int n = completions_of(&op.ov, &c);
    CHECK(pending(&op) && n == 1 && c.result == SOCKET_ERROR,
          "a failing WPUCompleteOverlappedRequest was tried once (%d)", n);
    CHECK(waited == WAIT_OBJECT_0 && calls.set_event == set_events + 1 &&
              last_set_event == op.event,
          "then Base set the event itself with WPUSetEvent, the low bit of hEvent masked "
          "(%ld calls, %p for %p)", calls.set_event - set_events, (void *)last_set_event,
          (void *)op.event);
    CHECK(op.ov.InternalHigh == 8 && op.ov.Internal == 0 && memcmp(op.data, "fallback", 8) == 0,
          "and wrote InternalHigh = %llu, Internal = 0x%llx itself, the data in the buffer",
          (unsigned long long)op.ov.InternalHigh, (unsigned long long)op.ov.Internal);
    DWORD bytes = 0, flags = 0;
    BOOL done = P.lpWSPGetOverlappedResult(server, &op.ov, &bytes, FALSE, &flags, &err);
    CHECK(done && bytes == 8, "WSPGetOverlappedResult reads it back: %lu bytes", bytes);
    op_free(&op);

    /* Wine's own export: 0 returned with *lpErrno set, and nothing done. A "success" that wrote
     * *lpErrno completed nothing: Base completes the request itself. */
    void *ours = NULL;
    patch_import(provider_dll, "ws2_32.dll", "WPUCompleteOverlappedRequest", wine_complete, &ours);
    op_init(&op);
    recv_by_event(server, &op, 32);
    set_events = calls.set_event;
    send_text(client, "wine8", &err);
    waited = WaitForSingleObject(op.event, WAIT_MS);
    patch_import(provider_dll, "ws2_32.dll", "WPUCompleteOverlappedRequest", ours, &wine_complete);
    CHECK(waited == WAIT_OBJECT_0 && calls.set_event == set_events + 1 && op.ov.Internal == 0 &&
              op.ov.InternalHigh == 5 && memcmp(op.data, "wine8", 5) == 0,
          "with Wine's own WPUCompleteOverlappedRequest (0 returned, *lpErrno set, nothing done) "
          "Base completes the request itself: event set (%lu), Internal 0x%llx, InternalHigh %llu",
          waited, (unsigned long long)op.ov.Internal, (unsigned long long)op.ov.InternalHigh);
    bytes = 0;
    done = P.lpWSPGetOverlappedResult(server, &op.ov, &bytes, TRUE, &flags, &err);
    CHECK(done && bytes == 5, "WSPGetOverlappedResult reads it back: %lu bytes", bytes);
    op_free(&op);
    close_socket(client);
    close_socket(server);
}

/* ------------------------------------------------------------------------------------------- */
/* R-WSP-16, 17: completion routines.                                                          */

typedef struct {
    SOCKET server;
    op_t op;
    WSABUF bufs[2];
    char decoy[64];
    HANDLE main_thread; /* a handle of the main thread, scribbled into the WSATHREADID */
    HANDLE issued, go;
    LONG calls_before_wait;
    DWORD slept, thread;
} routine_job;

/* The initiating thread: two buffers (3 + 5 bytes), its own WSATHREADID, both overwritten as
 * soon as the call returns (R-WSP-17); then a plain wait, then an alertable one. */
static DWORD WINAPI routine_thread(LPVOID arg)
{
    routine_job *job = arg;
    job->thread = GetCurrentThreadId();
    job->bufs[0] = (WSABUF){3, job->op.data};
    job->bufs[1] = (WSABUF){5, job->op.data + 3};
    open_thread(&job->op.thread);
    WSATHREADID thread = job->op.thread;
    job->op.rc = P.lpWSPRecv(job->server, job->bufs, 2, &job->op.bytes, &job->op.flags,
                             &job->op.ov, on_routine, &thread, &job->op.err);
    job->bufs[0] = (WSABUF){sizeof job->decoy, job->decoy};
    job->bufs[1] = (WSABUF){sizeof job->decoy, job->decoy};
    thread.ThreadHandle = job->main_thread;
    thread.Reserved = 0xDEAD;
    SetEvent(job->issued);
    WaitForSingleObject(job->go, INFINITE);
    job->calls_before_wait = job->op.routine_calls;
    job->slept = SleepEx(WAIT_MS, TRUE);
    return 0;
}

static void test_completion_routines(void)
{
    SOCKET client, server;
    pair(&client, &server);
    static routine_job job;
    memset(&job, 0, sizeof job);
    op_init(&job.op);
    memset(job.decoy, 'd', sizeof job.decoy);
    job.server = server;
    job.issued = CreateEventA(NULL, TRUE, FALSE, NULL);
    job.go = CreateEventA(NULL, TRUE, FALSE, NULL);
    DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(), &job.main_thread,
                    0, FALSE, DUPLICATE_SAME_ACCESS);
    HANDLE worker = CreateThread(NULL, 0, routine_thread, &job, 0, NULL);
    WaitForSingleObject(job.issued, INFINITE);
    CHECK(pending(&job.op), "R-WSP-16: a WSPRecv with a completion routine and nothing to read is "
                            "WSA_IO_PENDING (%d / %d)", job.op.rc, job.op.err);

    LONG queued = calls.queue_apc;
    INT err = 0;
    send_text(client, "abcdefgh", &err); /* from the main thread */
    CHECK(calls.queue_apc == queued + 1 && last_apc_thread == job.op.thread.ThreadHandle,
          "R-WSP-17: WPUQueueApc got the WSATHREADID passed (%p), not the one written over it "
          "after the call (the main thread's %p)", (void *)last_apc_thread,
          (void *)job.main_thread);
    Sleep(50);
    DWORD main_slept = SleepEx(0, TRUE);
    CHECK(main_slept == 0 && job.op.routine_calls == 0,
          "the routine does not run in another thread's alertable wait, nor outside one (%lu, %ld)",
          main_slept, job.op.routine_calls);
    SetEvent(job.go);
    WaitForSingleObject(worker, WAIT_MS * 2);
    CHECK(job.calls_before_wait == 0 && job.slept == WAIT_IO_COMPLETION &&
              job.op.routine_calls == 1 && job.op.routine_thread == job.thread,
          "R-WSP-16: the routine runs once, in the initiating thread's SleepEx(..., TRUE) "
          "(%lu, %ld calls)", job.slept, job.op.routine_calls);
    CHECK(job.op.routine_error == 0 && job.op.routine_bytes == 8 && job.op.routine_flags == 0,
          "with error %lu, %lu bytes, flags %lu", job.op.routine_error, job.op.routine_bytes,
          job.op.routine_flags);
    CHECK(memcmp(job.op.data, "abcdefgh", 8) == 0 && job.op.data[8] == '.' &&
              all_bytes(job.decoy, 'd', sizeof job.decoy),
          "R-WSP-17: the data landed in the buffers first described (\"%.8s\"), not in the ones "
          "written over them", job.op.data);
    CHECK(job.op.seen_internal == 0 && job.op.seen_internal_high == 8 &&
              WaitForSingleObject(job.op.event, 0) == WAIT_TIMEOUT &&
              completions_of(&job.op.ov, NULL) == 0,
          "R-WSP-18: the routine saw InternalHigh %llu and Internal 0x%llx; its hEvent is left "
          "alone and WPUCompleteOverlappedRequest not called",
          (unsigned long long)job.op.seen_internal_high,
          (unsigned long long)job.op.seen_internal);
    CloseHandle(worker);
    CloseHandle(job.issued);
    CloseHandle(job.go);
    CloseHandle(job.main_thread);
    op_free(&job.op);

    /* Data already there: 0 at once, the routine already queued. */
    op_t now;
    op_init(&now);
    send_text(client, "now", &err);
    queued = calls.queue_apc;
    recv_by_routine(server, &now, 32);
    LONG queued_by_return = calls.queue_apc - queued;
    CHECK(now.rc == 0 && now.bytes == 3 && queued_by_return == 1 && now.routine_calls == 0,
          "R-WSP-16: with data there it returns 0 with %lu bytes, the routine queued (%ld) and "
          "not run yet", now.bytes, queued_by_return);
    DWORD slept = SleepEx(0, TRUE);
    CHECK(slept == WAIT_IO_COMPLETION && now.routine_calls == 1 && now.routine_bytes == 3 &&
              memcmp(now.data, "now", 3) == 0,
          "the routine runs in the next alertable wait with 3 bytes (%lu, %ld calls)", slept,
          now.routine_calls);
    slept = SleepEx(0, TRUE);
    CHECK(slept == 0 && now.routine_calls == 1, "once (%lu, %ld calls)", slept,
          now.routine_calls);
    op_free(&now);
    close_socket(client);
    close_socket(server);
}

/* ------------------------------------------------------------------------------------------- */
/* R-WSP-14: close with pending operations; R-WSP-11: linger {1, 0}.                           */

static void test_close_with_pending(void)
{
    SOCKET client, server;
    pair(&client, &server);
    INT err = 0;
    P.lpWSPAsyncSelect(server, WINDOW, WM_SOCKET, FD_READ | FD_CLOSE, &err);
    op_t by_event, by_routine;
    op_init(&by_event);
    op_init(&by_routine);
    recv_by_event(server, &by_event, 16);
    recv_by_routine(server, &by_routine, 16);
    CHECK(pending(&by_event) && pending(&by_routine), "two receives pending, by event and by "
                                                      "routine");
    int messages_before = messages_for(server, NULL);

    int rc = close_socket(server);
    CHECK(rc == 0, "WSPCloseSocket with both pending returns 0 (%d)", rc);
    completion_t c = {0};
    int n = completions_of(&by_event.ov, &c);
    CHECK(WaitForSingleObject(by_event.event, 0) == WAIT_OBJECT_0 &&
              by_event.ov.OffsetHigh == WSA_OPERATION_ABORTED,
          "R-WSP-14: the event's operation completed with WSA_OPERATION_ABORTED before the close "
          "returned (OffsetHigh %lu)", by_event.ov.OffsetHigh);
    if (playing_complete)
        CHECK(n == 1 && c.result == 0 && c.s == server && c.error == WSA_OPERATION_ABORTED &&
                  c.bytes == 0,
              "R-WSP-14: through WPUCompleteOverlappedRequest(the server's handle, &ov, 995, 0), "
              "while the handle was still ws2_32's (%d calls)", n);
    DWORD slept = SleepEx(0, TRUE);
    CHECK(slept == WAIT_IO_COMPLETION && by_routine.routine_calls == 1 &&
              by_routine.routine_error == WSA_OPERATION_ABORTED && by_routine.routine_bytes == 0,
          "R-WSP-14: the routine's operation completed with its routine: error %lu, %lu bytes",
          by_routine.routine_error, by_routine.routine_bytes);
    CHECK(messages_for(server, NULL) == messages_before,
          "R-WSP-14: no FD_CLOSE (no message at all) posted for the closed socket");
    char got[16];
    int read = recv_text(server, got, sizeof got, &err);
    CHECK(read == -1 && err == WSAENOTSOCK, "R-WSP-14: WSPRecv on the closed handle is "
                                            "WSAENOTSOCK (%d)", err);
    DWORD bytes = 0, flags = 0;
    err = 0;
    BOOL done = P.lpWSPGetOverlappedResult(server, &by_event.ov, &bytes, FALSE, &flags, &err);
    CHECK(!done && err == WSAENOTSOCK, "R-WSP-14: so is WSPGetOverlappedResult (%d)", err);
    rc = close_socket(server);
    CHECK(rc == WSAENOTSOCK && handle_of(server)->closes == 1,
          "R-WSP-14: a second WSPCloseSocket is WSAENOTSOCK (%d); WPUCloseSocketHandle was called "
          "once (%ld)", rc, handle_of(server)->closes);
    Sleep(20);
    slept = SleepEx(0, TRUE);
    CHECK(slept == 0 && by_routine.routine_calls == 1 &&
              completions_of(&by_event.ov, NULL) == (playing_complete ? 1 : 0),
          "R-WSP-14: each completed once");
    op_free(&by_event);
    op_free(&by_routine);
    close_socket(client);
}

static void test_linger_reset(void)
{
    SOCKET client, server;
    pair(&client, &server);
    INT err = 0;
    LINGER linger = {1, 0};
    int rc = P.lpWSPSetSockOpt(client, SOL_SOCKET, SO_LINGER, (const char *)&linger,
                               sizeof linger, &err);
    LINGER read_back = {9, 9};
    int len = sizeof read_back;
    int rc2 = P.lpWSPGetSockOpt(client, SOL_SOCKET, SO_LINGER, (char *)&read_back, &len, &err);
    CHECK(rc == 0 && rc2 == 0 && read_back.l_onoff == 1 && read_back.l_linger == 0,
          "SO_LINGER {1, 0} is set and read back ({%u, %u})", read_back.l_onoff,
          read_back.l_linger);
    send_text(client, "lost", &err);
    DWORD start = GetTickCount();
    rc = close_socket(client);
    DWORD took = GetTickCount() - start;
    CHECK(rc == 0 && took < 1000, "R-WSP-11: WSPCloseSocket returns at once (%lu ms)", took);
    char got[16];
    int read = recv_text(server, got, sizeof got, &err);
    CHECK(read == -1 && err == WSAECONNRESET,
          "R-WSP-11: the peer's WSPRecv fails with WSAECONNRESET (%d, %d)", read, err);
    close_socket(server);
}

/* ------------------------------------------------------------------------------------------- */
/* Bad input.                                                                                  */

static void test_bad_input(void)
{
    SOCKET client, server;
    pair(&client, &server);
    char data[16] = "xxxx";
    WSABUF buf = {4, data};
    DWORD count = 0x5A5A5A5A, flags = 0;
    INT err = 0;

    LONG created = calls.create;
    SOCKET s = P.lpWSPSocket(AF_UNSPEC, SOCK_STREAM, 0, &protocol, 0, 0, NULL);
    CHECK(s == INVALID_SOCKET && calls.create == created,
          "WSPSocket with a NULL lpErrno returns INVALID_SOCKET and makes no handle");
    int rc = P.lpWSPSend(client, &buf, 1, &count, 0, NULL, NULL, NULL, NULL);
    CHECK(rc == SOCKET_ERROR && count == 0x5A5A5A5A,
          "WSPSend with a NULL lpErrno returns SOCKET_ERROR and writes nothing");
    rc = P.lpWSPRecv(server, &buf, 1, &count, &flags, NULL, NULL, NULL, NULL);
    CHECK(rc == SOCKET_ERROR && count == 0x5A5A5A5A,
          "WSPRecv with a NULL lpErrno returns SOCKET_ERROR and writes nothing");
    INT errs[2] = {0x11111111, 0x11111111};
    INT *misaligned_errno = (INT *)((char *)errs + 1);
    rc = P.lpWSPSend(client, &buf, 1, &count, 0, NULL, NULL, NULL, misaligned_errno);
    CHECK(rc == SOCKET_ERROR && errs[0] == 0x11111111 && errs[1] == 0x11111111 &&
              count == 0x5A5A5A5A,
          "WSPSend with a misaligned lpErrno returns SOCKET_ERROR and writes nothing");
    rc = P.lpWSPCleanup(NULL);
    CHECK(rc == SOCKET_ERROR, "WSPCleanup with a NULL lpErrno returns SOCKET_ERROR");
    char got[16];
    int sent = send_text(client, "ok", &err);
    int read = recv_text(server, got, sizeof got, &err);
    CHECK(sent == 2 && read == 2 && strcmp(got, "ok") == 0,
          "none of them did anything: the provider still serves, the peer reads only \"%s\"", got);

    SOCKET forged[] = {(SOCKET)0xBAD0, INVALID_SOCKET, 0, (SOCKET)&forged};
    int refused = 0;
    for (size_t i = 0; i < sizeof forged / sizeof forged[0]; i++) {
        err = 0;
        refused += send_text(forged[i], "x", &err) == -1 && err == WSAENOTSOCK;
        refused += recv_text(forged[i], got, sizeof got, &err) == -1 && err == WSAENOTSOCK;
        refused += shutdown_socket(forged[i], SD_BOTH) == WSAENOTSOCK;
        refused += close_socket(forged[i]) == WSAENOTSOCK;
    }
    CHECK(refused == 16, "WSPSend, WSPRecv, WSPShutdown, WSPCloseSocket on 4 unknown sockets: "
                         "WSAENOTSOCK (%d of 16)", refused);

    WSABUF bufs[2] = {{4, data}, {4, data}};
    WSABUF *misaligned = (WSABUF *)((char *)bufs + 1);
    int faults = 0;
    err = 0;
    faults += P.lpWSPSend(client, NULL, 1, &count, 0, NULL, NULL, NULL, &err) == SOCKET_ERROR &&
              err == WSAEFAULT;
    err = 0;
    faults += P.lpWSPSend(client, misaligned, 1, &count, 0, NULL, NULL, NULL, &err) ==
                  SOCKET_ERROR &&
              err == WSAEFAULT;
    err = 0;
    faults += P.lpWSPRecv(server, NULL, 1, &count, &flags, NULL, NULL, NULL, &err) ==
                  SOCKET_ERROR &&
              err == WSAEFAULT;
    err = 0;
    faults += P.lpWSPRecv(server, misaligned, 1, &count, &flags, NULL, NULL, NULL, &err) ==
                  SOCKET_ERROR &&
              err == WSAEFAULT;
    WSABUF null_buffer = {4, NULL};
    err = 0;
    faults += P.lpWSPSend(client, &null_buffer, 1, &count, 0, NULL, NULL, NULL, &err) ==
                  SOCKET_ERROR &&
              err == WSAEFAULT;
    CHECK(faults == 5, "a NULL or misaligned WSABUF array, or a NULL buffer of 4 bytes: "
                       "WSAEFAULT (%d of 5)", faults);

    op_t op;
    op_init(&op);
    char raw[sizeof(WSAOVERLAPPED) + 16] __attribute__((aligned(16)));
    memset(raw, 0, sizeof raw);
    LPWSAOVERLAPPED misaligned_ov = (LPWSAOVERLAPPED)(raw + 1);
    err = 0;
    rc = P.lpWSPRecv(server, &buf, 1, &count, &flags, misaligned_ov, NULL, NULL, &err);
    CHECK(rc == SOCKET_ERROR && err == WSAEFAULT, "a misaligned WSAOVERLAPPED: WSAEFAULT (%d)",
          err);
    LONG queued = calls.queue_apc;
    err = 0;
    rc = P.lpWSPRecv(server, &buf, 1, &count, &flags, &op.ov, on_routine, NULL, &err);
    CHECK(rc == SOCKET_ERROR && err == WSAEFAULT && calls.queue_apc == queued,
          "a completion routine without lpThreadId: WSAEFAULT (%d), nothing queued", err);
    op_free(&op);

    sent = send_text(client, "alive", &err);
    read = recv_text(server, got, sizeof got, &err);
    CHECK(sent == 5 && read == 5 && strcmp(got, "alive") == 0,
          "the process lives and the pair still works (\"%s\")", got);
    close_socket(client);
    close_socket(server);
}

/* ------------------------------------------------------------------------------------------- */
/* R-WSP-15: the final cleanup with pending operations.                                        */

static void test_final_cleanup(void)
{
    SOCKET client, server;
    pair(&client, &server);
    op_t by_event, by_routine;
    op_init(&by_event);
    op_init(&by_routine);
    recv_by_event(server, &by_event, 16);
    recv_by_routine(client, &by_routine, 16);
    CHECK(pending(&by_event) && pending(&by_routine), "two receives pending, by event and by "
                                                      "routine");
    LONG set_events = calls.set_event, queued = calls.queue_apc, posted = calls.post;
    LONG completed = completion_count;

    int rc = cleanup();
    CHECK(rc == 0, "R-WSP-15: the final WSPCleanup returns 0 (%d)", rc);
    DWORD waited = WaitForSingleObject(by_event.event, 0);
    CHECK(waited == WAIT_TIMEOUT && by_event.ov.Internal == WSS_OPERATION_IN_PROGRESS,
          "R-WSP-15: the event is not set (%lu), Internal still WSS_OPERATION_IN_PROGRESS", waited);
    DWORD slept = SleepEx(0, TRUE);
    CHECK(slept == 0 && by_routine.routine_calls == 0 &&
              by_routine.ov.Internal == WSS_OPERATION_IN_PROGRESS,
          "R-WSP-15: no completion routine runs (SleepEx(0, TRUE): %lu)", slept);
    CHECK(calls.set_event == set_events && calls.queue_apc == queued && calls.post == posted &&
              completion_count == completed,
          "R-WSP-15: no WPUSetEvent, WPUQueueApc, WPUPostMessage or WPUCompleteOverlappedRequest "
          "during the cleanup");
    CHECK(memcmp(by_event.data, "................", 16) == 0,
          "R-WSP-15: the buffers are left unwritten");
    int open = 0;
    EnterCriticalSection(&log_lock);
    for (LONG i = 0; i < handle_count; i++)
        open += handles[i].closes != 1;
    LeaveCriticalSection(&log_lock);
    CHECK(open == 0, "every handle ws2_32 made (%ld) was released once; %d not", handle_count,
          open);
    INT err = 0;
    SOCKET s = new_socket(&err);
    CHECK(s == INVALID_SOCKET && err == WSANOTINITIALISED,
          "after it the slots answer WSANOTINITIALISED (%d)", err);

    rc = start();
    CHECK(rc == 0, "R-WSP-15: a new WSPStartup succeeds (%d)", rc);
    SOCKET client2 = INVALID_SOCKET, server2 = INVALID_SOCKET;
    rc = pair(&client2, &server2);
    char got[16];
    int sent = send_text(client2, "again", &err);
    int read = recv_text(server2, got, sizeof got, &err);
    CHECK(rc == 0 && sent == 5 && read == 5 && strcmp(got, "again") == 0,
          "and the provider serves again (\"%s\")", got);
    close_socket(client2);
    close_socket(server2);
    slept = SleepEx(0, TRUE);
    CHECK(slept == 0 && by_routine.routine_calls == 0 &&
              WaitForSingleObject(by_event.event, 0) == WAIT_TIMEOUT,
          "R-WSP-15: the cancelled operations stay silent after the restart");
    op_free(&by_event);
    op_free(&by_routine);
}

/* ------------------------------------------------------------------------------------------- */

/* What Wine's own ws2_32!WPUCompleteOverlappedRequest does with a pending request. */
static void probe_wine_completion(LPWPUCOMPLETEOVERLAPPEDREQUEST wine)
{
    WSAOVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.Internal = WSS_OPERATION_IN_PROGRESS;
    ov.hEvent = CreateEventA(NULL, TRUE, FALSE, NULL);
    INT err = 0;
    int rc = wine((SOCKET)0x40000, &ov, 0, 7, &err);
    DWORD set = WaitForSingleObject(ov.hEvent, 0);
    NOTE("Wine's ws2_32!WPUCompleteOverlappedRequest(s, &ov, 0, 7) returned %d with *lpErrno %d; "
         "Internal 0x%llx, InternalHigh %llu, event %s",
         rc, err, (unsigned long long)ov.Internal, (unsigned long long)ov.InternalHigh,
         set == WAIT_OBJECT_0 ? "set" : "not set");
    CloseHandle(ov.hEvent);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: wsp_host.exe <provider.dll> [--wine-completion]\n");
        return 2;
    }
    int wine_completion = argc > 2 && strcmp(argv[2], "--wine-completion") == 0;
    DWORD began = GetTickCount();
    InitializeCriticalSection(&log_lock);
    make_protocol(&protocol);

    char full[MAX_PATH];
    if (!GetFullPathNameA(argv[1], MAX_PATH, full, NULL))
        bail("GetFullPathNameA failed");
    HMODULE dll = LoadLibraryA(full);
    if (!dll) {
        NOTE("LoadLibrary(%s) failed: %lu", full, GetLastError());
        bail("LoadLibrary of the provider");
    }
    wsp_startup = (LPWSPSTARTUP)(void (*)(void))GetProcAddress(dll, "WSPStartup");
    CHECK(wsp_startup != NULL, "LoadLibrary(%s): WSPStartup resolves by name", argv[1]);
    if (!wsp_startup)
        bail("no WSPStartup export");

    void *wine = NULL;
    provider_dll = dll;
    if (!patch_import(dll, "ws2_32.dll", "WPUCompleteOverlappedRequest", (void *)host_complete,
                      &wine))
        bail("the DLL does not import ws2_32!WPUCompleteOverlappedRequest");
    wine_complete = wine;
    probe_wine_completion((LPWPUCOMPLETEOVERLAPPEDREQUEST)(void (*)(void))wine);
    if (wine_completion) {
        void *ours = NULL;
        patch_import(dll, "ws2_32.dll", "WPUCompleteOverlappedRequest", wine, &ours);
        NOTE("--wine-completion: Wine's WPUCompleteOverlappedRequest is kept");
    } else {
        playing_complete = 1;
        NOTE("the harness plays ws2_32!WPUCompleteOverlappedRequest (the DLL's import replaced)");
    }

    test_startup();
    int rc = start();
    CHECK(rc == 0, "WSPStartup(2.2) for the scenarios (%d)", rc);
    if (rc)
        bail("no startup");
    test_stream_and_shutdown();
    test_overlapped_event();
    test_completion_fallback();
    test_completion_routines();
    test_close_with_pending();
    test_linger_reset();
    test_bad_input();
    test_final_cleanup();
    rc = cleanup();
    CHECK(rc == 0, "the last WSPCleanup returns 0 (%d)", rc);

    NOTE("run time %lu ms", GetTickCount() - began);
    return finish();
}
