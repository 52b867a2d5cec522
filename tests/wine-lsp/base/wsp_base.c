/*
 * wsp_base.dll: a Winsock 2.2 base (transport) service provider for the Wine harnesses, serving
 * TCP and UDP over IPv4 and IPv6 with the process's real ws2_32 sockets. Wine's mswsock has no
 * WSPStartup a harness could put a layered provider over; this DLL is that base.
 *
 * The ABI is taken from mingw-w64's ws2spi.h / winsock2.h, a source independent of the Rust
 * bindings: WSPStartup has ws2spi.h's prototype and every slot the LPWSP* type of its
 * WSPPROC_TABLE member.
 *
 * It is an IFS base: the SOCKET it returns from WSPSocket / WSPAccept is the real ws2_32 socket,
 * a file handle of the system's, so completion ports, events and completion routines work on it
 * as on Windows. Every slot is the real ws2_32 function of the same name, called with the
 * caller's arguments (WSAOVERLAPPED, completion routine and all) and `*lpErrno =
 * WSAGetLastError()` when it fails. ws2_32 runs a completion routine as an APC of the thread
 * that started the operation, so lpThreadId is not needed and WPUQueueApc never called.
 *
 * The one upcall it makes is the one every IFS provider must make: WPUModifyIFSHandle, with its
 * own catalog entry id, for each new socket before handing it out, and it hands out the handle
 * that returns (a base given an upcall table without the function skips it).
 *
 * Where Wine's ws2_32 answers otherwise than Windows' base provider, the base answers as Windows
 * does, in two places only:
 * - WSPCloseSocket (and the final WSPCleanup) cancels the socket's pending I/O with CancelIoEx
 *   before closesocket: on Windows the pending operations of a closed socket complete with
 *   WSA_OPERATION_ABORTED (995); Wine 8 completes them with STATUS_HANDLES_CLOSED (0x8000000A),
 *   which its ws2_32 reports as WSAEINVAL and a completion port as ERROR_HANDLES_CLOSED (676).
 * - WSAJoinLeaf and WSAGetQOSByName are stubs in Wine 8 that fail without setting an error; the
 *   base reports WSAEOPNOTSUPP for a failure that leaves the error 0, never SOCKET_ERROR with
 *   *lpErrno 0.
 * base_host.c shows both differences on the harness's own ws2_32 sockets.
 *
 * WSPStartup checks the version (below 2.2: WSAVERNOTSUPPORTED, else wVersion 2.2), counts
 * startups, keeps the most recent upcall table and protocol info, and does a WSAStartup of its
 * own; each WSPCleanup does a WSACleanup, and the final one also closes the sockets the base
 * handed out that are still open (their pending operations then complete as ws2_32 completes
 * them on close). Before the first and after the final cleanup every other slot fails with
 * WSANOTINITIALISED.
 *
 * A socket handed out by WSPDuplicateSocket: ws2_32's WSADuplicateSocketW describes the socket,
 * then the description's dwCatalogEntryId and ProtocolChain are this base's, so the host routes
 * the WSPSocket(FROM_PROTOCOL_INFO, ...) that makes the copy back to it; WSPSocket hands such a
 * description (Wine marks it with dwServiceFlags4 = 0xff00ff00) to WSASocketW and the rest of
 * ws2_32's descriptor fields travel unchanged. Otherwise WSPSocket resolves FROM_PROTOCOL_INFO
 * from the protocol info it is given and passes no protocol info on: the host's catalog entry
 * means nothing to the process's ws2_32.
 *
 * BaseStats (wsp_base.h) reports what it was asked to do.
 */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <ws2spi.h>
#include <windows.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "wsp_base.h"

/* What Wine's WSADuplicateSocketW writes into dwServiceFlags4. */
#define WINE_DUPLICATE_MARK 0xff00ff00u
#define DESCRIPTION L"winprov test base: TCP and UDP over the process's ws2_32 sockets"
/* Pending sends and receives whose bytes WSPGetOverlappedResult may report. */
#define MAX_PENDING 256

__declspec(dllexport) int WSPAPI WSPStartup(WORD version, LPWSPDATA data,
                                            LPWSAPROTOCOL_INFOW protocol_info,
                                            WSPUPCALLTABLE upcall_table, LPWSPPROC_TABLE table);
__declspec(dllexport) BOOL WINAPI BaseStats(WSP_BASE_STATS *out, DWORD size);

/* ------------------------------------------------------------------------------------------- */
/* State: the startup count, the most recent upcall table and protocol info, the sockets handed
 * out, and the pending operations, under one lock; the counters are interlocked.               */

static SRWLOCK lock = SRWLOCK_INIT;
static volatile LONG started;
static WSPUPCALLTABLE upcalls;
static WSAPROTOCOL_INFOW protocol;

static SOCKET *open_sockets;
static size_t open_count, open_capacity;

enum { SENDING, RECEIVING };
typedef struct {
    SOCKET s;
    LPWSAOVERLAPPED ov; /* NULL: a free entry */
    int direction;
} pending_t;
static pending_t pending[MAX_PENDING];

static WSP_BASE_STATS stats = {.version = WSP_BASE_STATS_VERSION};

#define ENTER(slot) InterlockedIncrement(&stats.calls[WSP_BASE_##slot])

static int is_started(void)
{
    return InterlockedCompareExchange(&started, 0, 0) > 0;
}

/* The failure of a slot that needs a started provider: 1 with *err set when not started. */
static int not_started(LPINT err)
{
    if (is_started())
        return 0;
    *err = WSANOTINITIALISED;
    return 1;
}

/* A failed ws2_32 call: its error into *err (read first: nothing in between touches it). */
static int failed(LPINT err)
{
    *err = WSAGetLastError();
    return SOCKET_ERROR;
}

/* Records a socket handed out; 0, or WSAENOBUFS when it cannot be recorded. */
static int add_open(SOCKET s)
{
    int rc = 0;
    AcquireSRWLockExclusive(&lock);
    if (open_count == open_capacity) {
        size_t capacity = open_capacity ? 2 * open_capacity : 64;
        SOCKET *grown = realloc(open_sockets, capacity * sizeof *grown);
        if (grown) {
            open_sockets = grown;
            open_capacity = capacity;
        } else {
            rc = WSAENOBUFS;
        }
    }
    if (rc == 0)
        open_sockets[open_count++] = s;
    ReleaseSRWLockExclusive(&lock);
    if (rc == 0) {
        InterlockedIncrement(&stats.sockets_made);
        InterlockedIncrement(&stats.sockets_open);
    }
    return rc;
}

/* Forgets a closed socket and its pending operations; 1 if the base had handed it out. */
static int remove_open(SOCKET s)
{
    int found = 0;
    AcquireSRWLockExclusive(&lock);
    for (size_t i = 0; i < open_count; i++) {
        if (open_sockets[i] == s) {
            open_sockets[i] = open_sockets[--open_count];
            found = 1;
            break;
        }
    }
    for (size_t i = 0; i < MAX_PENDING; i++)
        if (pending[i].ov && pending[i].s == s)
            pending[i].ov = NULL;
    ReleaseSRWLockExclusive(&lock);
    if (found)
        InterlockedDecrement(&stats.sockets_open);
    return found;
}

/* closesocket, after cancelling the socket's pending I/O (see the top of the file). */
static int close_real(SOCKET s)
{
    CancelIoEx((HANDLE)s, NULL);
    return closesocket(s);
}

/* A failed ws2_32 stub that may leave the error unset: WSAEOPNOTSUPP then. Call
 * WSASetLastError(0) before the stub. */
static void failed_stub(LPINT err)
{
    int e = WSAGetLastError();
    *err = e ? e : WSAEOPNOTSUPP;
}

/* A new real socket: through WPUModifyIFSHandle, then recorded. INVALID_SOCKET with *err when
 * either refuses it (the socket is closed again). */
static SOCKET adopt(SOCKET s, LPINT err)
{
    AcquireSRWLockShared(&lock);
    LPWPUMODIFYIFSHANDLE modify = upcalls.lpWPUModifyIFSHandle;
    DWORD catalog = protocol.dwCatalogEntryId;
    ReleaseSRWLockShared(&lock);
    SOCKET handle = s;
    if (modify) {
        INT e = 0;
        InterlockedIncrement(&stats.ifs_handles);
        handle = modify(catalog, s, &e);
        if (handle == INVALID_SOCKET) {
            closesocket(s);
            *err = e ? e : WSAENOBUFS;
            return INVALID_SOCKET;
        }
    }
    int rc = add_open(handle);
    if (rc) {
        closesocket(handle);
        *err = rc;
        return INVALID_SOCKET;
    }
    return handle;
}

static void add_bytes(int direction, DWORD bytes)
{
    InterlockedAdd64(direction == SENDING ? &stats.bytes_sent : &stats.bytes_received, bytes);
}

/* A send or receive that went pending: its bytes are known if WSPGetOverlappedResult reports
 * them. An OVERLAPPED used again replaces its old entry; a full table forgets the operation. */
static void track(SOCKET s, LPWSAOVERLAPPED ov, int direction)
{
    AcquireSRWLockExclusive(&lock);
    pending_t *slot = NULL;
    for (size_t i = 0; i < MAX_PENDING; i++) {
        if (pending[i].ov == ov) {
            slot = &pending[i];
            break;
        }
        if (!pending[i].ov && !slot)
            slot = &pending[i];
    }
    if (slot)
        *slot = (pending_t){s, ov, direction};
    ReleaseSRWLockExclusive(&lock);
}

/* The end of a send or receive: counts what completed at once, tracks what went pending. */
static int transferred(int rc, SOCKET s, LPDWORD bytes, LPWSAOVERLAPPED ov, int direction,
                       LPINT err)
{
    if (rc == 0) {
        if (bytes)
            add_bytes(direction, *bytes);
        return 0;
    }
    int e = WSAGetLastError();
    if (e == WSA_IO_PENDING && ov)
        track(s, ov, direction);
    *err = e;
    return SOCKET_ERROR;
}

/* ------------------------------------------------------------------------------------------- */
/* The slots.                                                                                   */

static SOCKET WSPAPI base_accept(SOCKET s, struct sockaddr *addr, LPINT addrlen,
                                 LPCONDITIONPROC condition, DWORD_PTR callback_data, LPINT err)
{
    ENTER(Accept);
    if (not_started(err))
        return INVALID_SOCKET;
    SOCKET accepted = WSAAccept(s, addr, addrlen, condition, callback_data);
    if (accepted == INVALID_SOCKET) {
        failed(err);
        return INVALID_SOCKET;
    }
    return adopt(accepted, err);
}

static INT WSPAPI base_address_to_string(LPSOCKADDR address, DWORD address_length,
                                         LPWSAPROTOCOL_INFOW protocol_info, LPWSTR string,
                                         LPDWORD string_length, LPINT err)
{
    (void)protocol_info; /* the host's catalog entry: nothing to the process's ws2_32 */
    ENTER(AddressToString);
    if (not_started(err))
        return SOCKET_ERROR;
    if (WSAAddressToStringW(address, address_length, NULL, string, string_length))
        return failed(err);
    return 0;
}

static int WSPAPI base_async_select(SOCKET s, HWND window, unsigned int message, __LONG32 events,
                                    LPINT err)
{
    ENTER(AsyncSelect);
    if (not_started(err))
        return SOCKET_ERROR;
    if (WSAAsyncSelect(s, window, message, events))
        return failed(err);
    return 0;
}

static int WSPAPI base_bind(SOCKET s, const struct sockaddr *name, int namelen, LPINT err)
{
    ENTER(Bind);
    if (not_started(err))
        return SOCKET_ERROR;
    if (bind(s, name, namelen))
        return failed(err);
    return 0;
}

static int WSPAPI base_cancel_blocking_call(LPINT err)
{
    ENTER(CancelBlockingCall);
    if (not_started(err))
        return SOCKET_ERROR;
    if (WSACancelBlockingCall())
        return failed(err);
    return 0;
}

static int WSPAPI base_cleanup(LPINT err)
{
    ENTER(Cleanup);
    SOCKET *left = NULL;
    size_t left_count = 0;
    AcquireSRWLockExclusive(&lock);
    if (started == 0) {
        ReleaseSRWLockExclusive(&lock);
        *err = WSANOTINITIALISED;
        return SOCKET_ERROR;
    }
    InterlockedDecrement(&started);
    if (started == 0) {
        left = open_sockets;
        left_count = open_count;
        open_sockets = NULL;
        open_count = open_capacity = 0;
        memset(pending, 0, sizeof pending);
    }
    ReleaseSRWLockExclusive(&lock);
    for (size_t i = 0; i < left_count; i++) {
        close_real(left[i]);
        InterlockedIncrement(&stats.closed_by_cleanup);
        InterlockedDecrement(&stats.sockets_open);
    }
    free(left);
    WSACleanup();
    InterlockedIncrement(&stats.cleanups);
    return 0;
}

static int WSPAPI base_close_socket(SOCKET s, LPINT err)
{
    ENTER(CloseSocket);
    if (not_started(err))
        return SOCKET_ERROR;
    if (close_real(s))
        return failed(err);
    remove_open(s);
    return 0;
}

static int WSPAPI base_connect(SOCKET s, const struct sockaddr *name, int namelen,
                               LPWSABUF caller_data, LPWSABUF callee_data, LPQOS sqos, LPQOS gqos,
                               LPINT err)
{
    ENTER(Connect);
    if (not_started(err))
        return SOCKET_ERROR;
    if (WSAConnect(s, name, namelen, caller_data, callee_data, sqos, gqos))
        return failed(err);
    return 0;
}

static int WSPAPI base_duplicate_socket(SOCKET s, DWORD process_id,
                                        LPWSAPROTOCOL_INFOW protocol_info, LPINT err)
{
    ENTER(DuplicateSocket);
    if (not_started(err))
        return SOCKET_ERROR;
    if (!protocol_info) {
        *err = WSAEFAULT;
        return SOCKET_ERROR;
    }
    WSAPROTOCOL_INFOW described;
    if (WSADuplicateSocketW(s, process_id, &described))
        return failed(err);
    AcquireSRWLockShared(&lock);
    described.dwCatalogEntryId = protocol.dwCatalogEntryId;
    described.ProtocolChain = protocol.ProtocolChain;
    ReleaseSRWLockShared(&lock);
    *protocol_info = described;
    return 0;
}

static int WSPAPI base_enum_network_events(SOCKET s, WSAEVENT event, LPWSANETWORKEVENTS events,
                                           LPINT err)
{
    ENTER(EnumNetworkEvents);
    if (not_started(err))
        return SOCKET_ERROR;
    if (WSAEnumNetworkEvents(s, event, events))
        return failed(err);
    return 0;
}

static int WSPAPI base_event_select(SOCKET s, WSAEVENT event, __LONG32 events, LPINT err)
{
    ENTER(EventSelect);
    if (not_started(err))
        return SOCKET_ERROR;
    if (WSAEventSelect(s, event, events))
        return failed(err);
    return 0;
}

static BOOL WSPAPI base_get_overlapped_result(SOCKET s, LPWSAOVERLAPPED ov, LPDWORD bytes,
                                              BOOL wait, LPDWORD flags, LPINT err)
{
    ENTER(GetOverlappedResult);
    if (not_started(err))
        return FALSE;
    if (!WSAGetOverlappedResult(s, ov, bytes, wait, flags)) {
        *err = WSAGetLastError();
        return FALSE;
    }
    int direction = -1;
    AcquireSRWLockExclusive(&lock);
    for (size_t i = 0; i < MAX_PENDING; i++) {
        if (pending[i].ov && pending[i].ov == ov) {
            direction = pending[i].direction;
            pending[i].ov = NULL;
            break;
        }
    }
    ReleaseSRWLockExclusive(&lock);
    if (direction >= 0 && bytes)
        add_bytes(direction, *bytes);
    return TRUE;
}

static int WSPAPI base_get_peer_name(SOCKET s, struct sockaddr *name, LPINT namelen, LPINT err)
{
    ENTER(GetPeerName);
    if (not_started(err))
        return SOCKET_ERROR;
    if (getpeername(s, name, namelen))
        return failed(err);
    return 0;
}

static int WSPAPI base_get_sock_name(SOCKET s, struct sockaddr *name, LPINT namelen, LPINT err)
{
    ENTER(GetSockName);
    if (not_started(err))
        return SOCKET_ERROR;
    if (getsockname(s, name, namelen))
        return failed(err);
    return 0;
}

static int WSPAPI base_get_sock_opt(SOCKET s, int level, int name, char *value, LPINT length,
                                    LPINT err)
{
    ENTER(GetSockOpt);
    if (not_started(err))
        return SOCKET_ERROR;
    if (getsockopt(s, level, name, value, length))
        return failed(err);
    return 0;
}

static BOOL WSPAPI base_get_qos_by_name(SOCKET s, LPWSABUF name, LPQOS qos, LPINT err)
{
    ENTER(GetQOSByName);
    if (not_started(err))
        return FALSE;
    WSASetLastError(0);
    if (!WSAGetQOSByName(s, name, qos)) {
        failed_stub(err);
        return FALSE;
    }
    return TRUE;
}

static int WSPAPI base_ioctl(SOCKET s, DWORD code, LPVOID in, DWORD in_size, LPVOID out,
                             DWORD out_size, LPDWORD returned, LPWSAOVERLAPPED ov,
                             LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread,
                             LPINT err)
{
    (void)thread; /* ws2_32 queues the routine to the calling thread itself */
    ENTER(Ioctl);
    if (not_started(err))
        return SOCKET_ERROR;
    if (WSAIoctl(s, code, in, in_size, out, out_size, returned, ov, routine))
        return failed(err);
    return 0;
}

static SOCKET WSPAPI base_join_leaf(SOCKET s, const struct sockaddr *name, int namelen,
                                    LPWSABUF caller_data, LPWSABUF callee_data, LPQOS sqos,
                                    LPQOS gqos, DWORD flags, LPINT err)
{
    ENTER(JoinLeaf);
    if (not_started(err))
        return INVALID_SOCKET;
    WSASetLastError(0);
    SOCKET leaf = WSAJoinLeaf(s, name, namelen, caller_data, callee_data, sqos, gqos, flags);
    if (leaf == INVALID_SOCKET) {
        failed_stub(err);
        return INVALID_SOCKET;
    }
    return leaf == s ? s : adopt(leaf, err);
}

static int WSPAPI base_listen(SOCKET s, int backlog, LPINT err)
{
    ENTER(Listen);
    if (not_started(err))
        return SOCKET_ERROR;
    if (listen(s, backlog))
        return failed(err);
    return 0;
}

static int WSPAPI base_recv(SOCKET s, LPWSABUF buffers, DWORD count, LPDWORD received,
                            LPDWORD flags, LPWSAOVERLAPPED ov,
                            LPWSAOVERLAPPED_COMPLETION_ROUTINE routine, LPWSATHREADID thread,
                            LPINT err)
{
    (void)thread;
    ENTER(Recv);
    if (not_started(err))
        return SOCKET_ERROR;
    InterlockedIncrement(&stats.recvs);
    int rc = WSARecv(s, buffers, count, received, flags, ov, routine);
    return transferred(rc, s, received, ov, RECEIVING, err);
}

static int WSPAPI base_recv_disconnect(SOCKET s, LPWSABUF data, LPINT err)
{
    ENTER(RecvDisconnect);
    if (not_started(err))
        return SOCKET_ERROR;
    if (WSARecvDisconnect(s, data))
        return failed(err);
    return 0;
}

static int WSPAPI base_recv_from(SOCKET s, LPWSABUF buffers, DWORD count, LPDWORD received,
                                 LPDWORD flags, struct sockaddr *from, LPINT fromlen,
                                 LPWSAOVERLAPPED ov, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine,
                                 LPWSATHREADID thread, LPINT err)
{
    (void)thread;
    ENTER(RecvFrom);
    if (not_started(err))
        return SOCKET_ERROR;
    InterlockedIncrement(&stats.recvs);
    int rc = WSARecvFrom(s, buffers, count, received, flags, from, fromlen, ov, routine);
    return transferred(rc, s, received, ov, RECEIVING, err);
}

static int WSPAPI base_select(int nfds, fd_set *readfds, fd_set *writefds, fd_set *exceptfds,
                              const PTIMEVAL timeout, LPINT err)
{
    ENTER(Select);
    if (not_started(err))
        return SOCKET_ERROR;
    int ready = select(nfds, readfds, writefds, exceptfds, timeout);
    if (ready == SOCKET_ERROR)
        return failed(err);
    return ready;
}

static int WSPAPI base_send(SOCKET s, LPWSABUF buffers, DWORD count, LPDWORD sent, DWORD flags,
                            LPWSAOVERLAPPED ov, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine,
                            LPWSATHREADID thread, LPINT err)
{
    (void)thread;
    ENTER(Send);
    if (not_started(err))
        return SOCKET_ERROR;
    InterlockedIncrement(&stats.sends);
    int rc = WSASend(s, buffers, count, sent, flags, ov, routine);
    return transferred(rc, s, sent, ov, SENDING, err);
}

static int WSPAPI base_send_disconnect(SOCKET s, LPWSABUF data, LPINT err)
{
    ENTER(SendDisconnect);
    if (not_started(err))
        return SOCKET_ERROR;
    if (WSASendDisconnect(s, data))
        return failed(err);
    return 0;
}

static int WSPAPI base_send_to(SOCKET s, LPWSABUF buffers, DWORD count, LPDWORD sent,
                               DWORD flags, const struct sockaddr *to, int tolen,
                               LPWSAOVERLAPPED ov, LPWSAOVERLAPPED_COMPLETION_ROUTINE routine,
                               LPWSATHREADID thread, LPINT err)
{
    (void)thread;
    ENTER(SendTo);
    if (not_started(err))
        return SOCKET_ERROR;
    InterlockedIncrement(&stats.sends);
    int rc = WSASendTo(s, buffers, count, sent, flags, to, tolen, ov, routine);
    return transferred(rc, s, sent, ov, SENDING, err);
}

static int WSPAPI base_set_sock_opt(SOCKET s, int level, int name, const char *value, int length,
                                    LPINT err)
{
    ENTER(SetSockOpt);
    if (not_started(err))
        return SOCKET_ERROR;
    if (setsockopt(s, level, name, value, length))
        return failed(err);
    return 0;
}

static int WSPAPI base_shutdown(SOCKET s, int how, LPINT err)
{
    ENTER(Shutdown);
    if (not_started(err))
        return SOCKET_ERROR;
    if (shutdown(s, how))
        return failed(err);
    return 0;
}

static SOCKET WSPAPI base_socket(int af, int type, int proto, LPWSAPROTOCOL_INFOW protocol_info,
                                 GROUP group, DWORD flags, LPINT err)
{
    ENTER(Socket);
    if (not_started(err))
        return INVALID_SOCKET;
    LPWSAPROTOCOL_INFOW duplicate = NULL;
    if (protocol_info) {
        if (af == FROM_PROTOCOL_INFO)
            af = protocol_info->iAddressFamily;
        if (type == FROM_PROTOCOL_INFO)
            type = protocol_info->iSocketType;
        if (proto == FROM_PROTOCOL_INFO)
            proto = protocol_info->iProtocol;
        if (protocol_info->dwServiceFlags4 == WINE_DUPLICATE_MARK)
            duplicate = protocol_info;
    }
    SOCKET s = WSASocketW(af, type, proto, duplicate, group, flags);
    if (s == INVALID_SOCKET) {
        failed(err);
        return INVALID_SOCKET;
    }
    return adopt(s, err);
}

static INT WSPAPI base_string_to_address(LPWSTR string, INT family,
                                         LPWSAPROTOCOL_INFOW protocol_info, LPSOCKADDR address,
                                         LPINT address_length, LPINT err)
{
    (void)protocol_info;
    ENTER(StringToAddress);
    if (not_started(err))
        return SOCKET_ERROR;
    if (WSAStringToAddressW(string, family, NULL, address, address_length))
        return failed(err);
    return 0;
}

static const WSPPROC_TABLE procs = {
    .lpWSPAccept = base_accept,
    .lpWSPAddressToString = base_address_to_string,
    .lpWSPAsyncSelect = base_async_select,
    .lpWSPBind = base_bind,
    .lpWSPCancelBlockingCall = base_cancel_blocking_call,
    .lpWSPCleanup = base_cleanup,
    .lpWSPCloseSocket = base_close_socket,
    .lpWSPConnect = base_connect,
    .lpWSPDuplicateSocket = base_duplicate_socket,
    .lpWSPEnumNetworkEvents = base_enum_network_events,
    .lpWSPEventSelect = base_event_select,
    .lpWSPGetOverlappedResult = base_get_overlapped_result,
    .lpWSPGetPeerName = base_get_peer_name,
    .lpWSPGetSockName = base_get_sock_name,
    .lpWSPGetSockOpt = base_get_sock_opt,
    .lpWSPGetQOSByName = base_get_qos_by_name,
    .lpWSPIoctl = base_ioctl,
    .lpWSPJoinLeaf = base_join_leaf,
    .lpWSPListen = base_listen,
    .lpWSPRecv = base_recv,
    .lpWSPRecvDisconnect = base_recv_disconnect,
    .lpWSPRecvFrom = base_recv_from,
    .lpWSPSelect = base_select,
    .lpWSPSend = base_send,
    .lpWSPSendDisconnect = base_send_disconnect,
    .lpWSPSendTo = base_send_to,
    .lpWSPSetSockOpt = base_set_sock_opt,
    .lpWSPShutdown = base_shutdown,
    .lpWSPSocket = base_socket,
    .lpWSPStringToAddress = base_string_to_address,
};

/* ------------------------------------------------------------------------------------------- */
/* The exports.                                                                                 */

int WSPAPI WSPStartup(WORD version, LPWSPDATA data, LPWSAPROTOCOL_INFOW protocol_info,
                      WSPUPCALLTABLE upcall_table, LPWSPPROC_TABLE table)
{
    if (LOBYTE(version) < 2 || (LOBYTE(version) == 2 && HIBYTE(version) < 2))
        return WSAVERNOTSUPPORTED;
    if (!data || !protocol_info || !table)
        return WSAEFAULT;
    WSADATA wsa;
    int rc = WSAStartup(MAKEWORD(2, 2), &wsa);
    if (rc)
        return rc;
    AcquireSRWLockExclusive(&lock);
    upcalls = upcall_table;
    protocol = *protocol_info;
    InterlockedIncrement(&started);
    ReleaseSRWLockExclusive(&lock);
    InterlockedIncrement(&stats.startups);
    data->wVersion = MAKEWORD(2, 2);
    data->wHighVersion = MAKEWORD(2, 2);
    wcsncpy(data->szDescription, DESCRIPTION, WSPDESCRIPTION_LEN);
    data->szDescription[WSPDESCRIPTION_LEN] = 0;
    *table = procs;
    return 0;
}

BOOL WINAPI BaseStats(WSP_BASE_STATS *out, DWORD size)
{
    if (!out || size != sizeof *out)
        return FALSE;
    AcquireSRWLockShared(&lock);
    *out = stats;
    out->started = started;
    ReleaseSRWLockShared(&lock);
    return TRUE;
}
