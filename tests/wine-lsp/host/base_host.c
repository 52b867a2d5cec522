/*
 * Base provider harness: plays ws2_32 against wsp_base.dll (tests/wine-lsp/base), the C base
 * provider over the process's real ws2_32 sockets that a layered provider's harness stacks a
 * layer on, through its one provider export, WSPStartup, and the WSPPROC_TABLE it hands out, on
 * real Windows threads, under Wine. It proves the base alone, as a layer's harness will use it:
 * real socket handles (completion ports and events work on them), real TCP behaviour, its
 * startup counting and its counters (BaseStats, wsp_base.h).
 *
 * The ABI is taken from mingw-w64's ws2spi.h / winsock2.h: WSPStartup is called
 * through an LPWSPSTARTUP, every slot through the table's LPWSP* pointers, and the host's side
 * of the provider -- the upcall table -- is ws2_host.h's, shared with the layers' harnesses:
 * WPUModifyIFSHandle, which an IFS provider calls for each new socket, records the handle, its
 * catalog entry and the upcall table it came through; every upcall is counted, and the base
 * makes none but that one. The peers the base talks to are the harness's own sockets, of Wine's
 * ws2_32, loaded with LoadLibrary and its functions typed by their winsock2.h prototypes. The
 * base's catalog entries are Wine's own TCP/IPv4 and UDP/IPv4 entries (WSAEnumProtocolsW) with
 * the harness's catalog ids.
 *
 * What Wine 8.0 (Debian 8.0~repack-4) does where it matters, asserted below (what Windows
 * documents in brackets where Wine differs; the SCENARIO NOTES at each test say more):
 * - completion ports: CreateIoCompletionPort takes a base socket; an overlapped WSPSend / WSPRecv
 *   with hEvent NULL posts its packet (key and OVERLAPPED as given), also a send that completed
 *   at once (rc 0); an hEvent with its low bit set posts none; a receive pending at
 *   WSPCloseSocket posts ERROR_OPERATION_ABORTED;
 * - SO_LINGER {1, 0} then WSPCloseSocket: returns at once and resets; the peer's receive that
 *   is waiting fails with WSAECONNRESET, but one started after the reset returns 0 and FD_CLOSE
 *   carries error 0 [both WSAECONNRESET]; later sends fail with WSAECONNRESET;
 * - WSPShutdown(SD_RECEIVE): later WSPRecvs are WSAESHUTDOWN; data that arrives afterwards, or
 *   was queued, resets nothing: the peer's sends succeed and it sees no error [WSAECONNRESET,
 *   R-WSP-9]; a receive already waiting stays pending;
 * - closesocket with overlapped receives pending completes them with STATUS_HANDLES_CLOSED,
 *   i.e. WSAEINVAL / ERROR_HANDLES_CLOSED [WSA_OPERATION_ABORTED]; the base cancels the I/O
 *   first, so through WSPCloseSocket they complete with 995, as on Windows;
 * - WSPSendDisconnect / WSPRecvDisconnect without data on TCP act as shutdown(SD_SEND) /
 *   shutdown(SD_RECEIVE); WSACancelBlockingCall returns 0 [WSAEOPNOTSUPP]; WSAJoinLeaf and
 *   WSAGetQOSByName fail without an error code (the base says WSAEOPNOTSUPP).
 *
 * Prints `ok N - ...` / `not ok N - ...` per check, then "N passed, M failed"; exits non-zero on
 * any failure. Usage: base_host.exe [other.dll ...] <wsp_base.dll>: the base is the last
 * argument (xtask passes a package's cdylib, if any, then its C DLLs).
 *
 * Built and run by `cargo xtask test` (x86_64-w64-mingw32-gcc, then wine, cwd = target/wine/bin);
 * the base DLL is built from its `wine-c-dlls` declaration.
 */
#include "ws2_host.h"

/* The catalog entry id the harness gives the base. */
#define CATALOG 3001
#define WM_BASE_SOCKET (WM_USER + 9)
/* Status codes the OVERLAPPED's Internal holds, and one Win32 error, that the headers the
 * harness includes leave out. */
#define NT_STATUS_HANDLES_CLOSED 0x8000000Au
#define WIN32_ERROR_HANDLES_CLOSED 676u

/* ------------------------------------------------------------------------------------------- */
/* user32 (WSPAsyncSelect's window), typed by the prototypes.                                 */

#define USER32(X)                                                                                  \
    X(CreateWindowExA)                                                                             \
    X(DestroyWindow)                                                                               \
    X(PeekMessageA)

USER32(DECLARE_POINTER)

/* ------------------------------------------------------------------------------------------- */
/* The base's catalog entries, and its sockets.                                                */

static WSAPROTOCOL_INFOW protocol, protocol_udp;

/* A base socket of the given family and type (overlapped-capable), or INVALID_SOCKET / *err. */
static SOCKET base_socket(int af, int type, INT *err)
{
    WSAPROTOCOL_INFOW *info = type == SOCK_DGRAM ? &protocol_udp : &protocol;
    return L.lpWSPSocket(af, type, type == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP, info, 0,
                         WSA_FLAG_OVERLAPPED, err);
}

/* ------------------------------------------------------------------------------------------- */
/* Startup and cleanup.                                                                        */

static int all_bytes(const void *p, int value, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)value)
            return 0;
    return 1;
}

static void test_startup(void)
{
    WSP_BASE_STATS before = stats_now();
    CHECK(before.version == WSP_BASE_STATS_VERSION && before.startups == 0 && before.started == 0,
          "BaseStats: version %lu, no startup yet", before.version);
    WSP_BASE_STATS small;
    CHECK(!base_stats(&small, sizeof small - 1) && !base_stats(NULL, sizeof small),
          "BaseStats refuses another size or a NULL buffer");

    WSPDATA data;
    WSPPROC_TABLE table;
    memset(&data, 0xAA, sizeof data);
    memset(&table, 0xAA, sizeof table);
    int refused = 0;
    WORD versions[] = {MAKEWORD(1, 1), MAKEWORD(2, 0), MAKEWORD(2, 1)};
    for (int i = 0; i < 3; i++)
        refused += wsp_startup(versions[i], &data, &protocol, upcalls, &table) ==
                   WSAVERNOTSUPPORTED;
    CHECK(refused == 3,
          "R-WSP-1: WSPStartup(1.1), (2.0), (2.1) return WSAVERNOTSUPPORTED (%d of 3)", refused);
    CHECK(all_bytes(&data, 0xAA, sizeof data) && all_bytes(&table, 0xAA, sizeof table) &&
              stats_now().startups == 0,
          "R-WSP-1: a refused version writes neither WSPDATA nor the table and is not counted");

    int rc = wsp_startup(MAKEWORD(2, 2), &data, &protocol, upcalls, &table);
    CHECK(rc == 0 && data.wVersion == 0x0202 && data.wHighVersion == 0x0202,
          "R-WSP-1: WSPStartup(2.2) returns 0 with wVersion 0x%04x, wHighVersion 0x%04x",
          data.wVersion, data.wHighVersion);
    CHECK(data.szDescription[0] != 0 && data.szDescription[WSPDESCRIPTION_LEN] == 0,
          "WSPDATA.szDescription is a NUL-terminated name (%ls)", data.szDescription);
    void *const *slots = (void *const *)&table;
    int filled = 0;
    for (int i = 0; i < WSP_BASE_SLOT_COUNT; i++)
        filled += slots[i] != NULL && !all_bytes(&slots[i], 0xAA, sizeof slots[i]);
    CHECK(filled == WSP_BASE_SLOT_COUNT, "all 30 slots of the WSPPROC_TABLE are filled (%d)",
          filled);
    L = table;

    /* A second startup through another upcall table: counted, and that table is used. */
    WSPUPCALLTABLE second = upcalls;
    second.lpWPUModifyIFSHandle = wpu_modify_ifs_handle_2;
    memset(&data, 0, sizeof data);
    rc = wsp_startup(MAKEWORD(3, 0), &data, &protocol, second, &table);
    CHECK(rc == 0 && data.wVersion == 0x0202,
          "R-WSP-1: WSPStartup(3.0) negotiates down to wVersion 0x%04x", data.wVersion);
    WSP_BASE_STATS now = stats_now();
    CHECK(now.startups == 2 && now.started == 2, "BaseStats: 2 startups, started %ld",
          now.started);
    INT err = 0;
    SOCKET s = base_socket(AF_INET, SOCK_STREAM, &err);
    CHECK(s != INVALID_SOCKET && ifs_of(s, CATALOG, 2),
          "R-WSP-3: WSPSocket's WPUModifyIFSHandle goes to the most recent startup's upcall "
          "table, with catalog entry %d", CATALOG);
    lclose(s);

    CHECK(cleanup() == 0, "R-WSP-2: the first of two WSPCleanups returns 0");
    s = base_socket(AF_INET, SOCK_STREAM, &err);
    CHECK(s != INVALID_SOCKET, "R-WSP-2: after one cleanup of two startups the base serves "
                               "(WSPSocket: %d)", s == INVALID_SOCKET ? err : 0);
    lclose(s);
    CHECK(cleanup() == 0, "R-WSP-2: the second WSPCleanup returns 0 (the final one)");
    err = 0;
    s = base_socket(AF_INET, SOCK_STREAM, &err);
    CHECK(s == INVALID_SOCKET && err == WSANOTINITIALISED,
          "R-WSP-2: after the final cleanup a slot answers WSANOTINITIALISED (%d)", err);
    rc = cleanup();
    CHECK(rc == WSANOTINITIALISED, "R-WSP-2: a WSPCleanup too many is WSANOTINITIALISED (%d)", rc);
    now = stats_now();
    CHECK(now.startups == 2 && now.cleanups == 2 && now.started == 0 && now.sockets_open == 0,
          "BaseStats: 2 startups, 2 cleanups, nothing open (%ld)", now.sockets_open);

    /* The final cleanup closes what is left open. */
    rc = start_provider(&protocol, NULL);
    s = base_socket(AF_INET, SOCK_STREAM, &err);
    CHECK(rc == 0 && s != INVALID_SOCKET && stats_now().sockets_open == 1,
          "a socket left open across the final cleanup");
    rc = cleanup();
    now = stats_now();
    int closed = p_closesocket(s) == SOCKET_ERROR ? p_WSAGetLastError() : 0;
    CHECK(rc == 0 && now.closed_by_cleanup == 1 && now.sockets_open == 0 && closed == WSAENOTSOCK,
          "the final WSPCleanup closed it: BaseStats closed_by_cleanup %ld, and ws2_32's "
          "closesocket of it is WSAENOTSOCK (%d)", now.closed_by_cleanup, closed);
}

/* ------------------------------------------------------------------------------------------- */
/* TCP both ways, names, addresses; the IFS handle.                                            */

static void test_stream(void)
{
    WSP_BASE_STATS before = stats_now();
    SOCKET base = INVALID_SOCKET, peer = INVALID_SOCKET;
    int rc = connect_pair(&base, &peer);
    CHECK(rc == 0, "WSPSocket + WSPConnect to a ws2_32 listener on 127.0.0.1, accepted (%d)", rc);
    if (rc)
        return;
    CHECK(ifs_of(base, CATALOG, 1), "WSPSocket called WPUModifyIFSHandle(%d, the socket) and "
                                   "handed out the handle it returned", CATALOG);
    u_long pending_bytes = 0;
    CHECK(p_ioctlsocket(base, FIONREAD, &pending_bytes) == 0,
          "the handle is a real ws2_32 socket: ws2_32's own ioctlsocket takes it");

    INT err = 0;
    char got[128];
    int sent = lsend_text(base, "from the base", &err);
    int read = peer_outcome(peer, got, sizeof got, WAIT_MS);
    CHECK(sent == 13 && read == 13 && strcmp(got, "from the base") == 0,
          "WSPSend 13 bytes, the peer receives \"%s\"", got);
    sent = peer_send_text(peer, "from the peer");
    read = lrecv_text(base, got, sizeof got, &err);
    CHECK(sent == 13 && read == 13 && strcmp(got, "from the peer") == 0,
          "the peer sends 13 bytes, WSPRecv reads \"%s\" (%d)", got, read < 0 ? err : 0);
    WSP_BASE_STATS now = stats_now();
    CHECK(now.bytes_sent - before.bytes_sent == 13 &&
              now.bytes_received - before.bytes_received == 13 && now.sends - before.sends == 1 &&
              now.recvs - before.recvs == 1,
          "BaseStats: 13 bytes each way, one send, one receive");

    struct sockaddr_in mine, theirs;
    INT len_mine = sizeof mine, len_theirs = sizeof theirs;
    int a = L.lpWSPGetSockName(base, (struct sockaddr *)&mine, &len_mine, &err);
    int b = L.lpWSPGetPeerName(base, (struct sockaddr *)&theirs, &len_theirs, &err);
    CHECK(a == 0 && b == 0 && mine.sin_addr.s_addr == 0x0100007F &&
              theirs.sin_addr.s_addr == 0x0100007F && mine.sin_port != 0 && theirs.sin_port != 0,
          "WSPGetSockName / WSPGetPeerName: 127.0.0.1:%u -> 127.0.0.1:%u", swap16(mine.sin_port),
          swap16(theirs.sin_port));

    WCHAR text[64];
    DWORD text_len = 64;
    rc = L.lpWSPAddressToString((LPSOCKADDR)&theirs, sizeof theirs, &protocol, text, &text_len,
                                &err);
    WCHAR expected[64];
    swprintf(expected, 64, L"127.0.0.1:%u", swap16(theirs.sin_port));
    CHECK(rc == 0 && wcscmp(text, expected) == 0, "WSPAddressToString: %ls", text);
    struct sockaddr_in6 parsed;
    INT parsed_len = sizeof parsed;
    memset(&parsed, 0, sizeof parsed);
    rc = L.lpWSPStringToAddress(L"[::1]:8080", AF_INET6, &protocol, (LPSOCKADDR)&parsed,
                                &parsed_len, &err);
    CHECK(rc == 0 && parsed.sin6_family == AF_INET6 && swap16(parsed.sin6_port) == 8080 &&
              parsed.sin6_addr.s6_addr[15] == 1,
          "WSPStringToAddress(\"[::1]:8080\", AF_INET6) (%d)", rc ? err : 0);
    rc = L.lpWSPStringToAddress(L"not an address", AF_INET, &protocol, (LPSOCKADDR)&parsed,
                                &parsed_len, &err);
    CHECK(rc == SOCKET_ERROR && err == WSAEINVAL,
          "WSPStringToAddress of garbage fails with ws2_32's error in *lpErrno: WSAEINVAL (%d)",
          err);

    /* The base as the accepting side. */
    SOCKET listener, client;
    struct sockaddr_in any;
    int connected = listen_and_connect(&listener, &client, &any, 4, &err);
    struct sockaddr_in from;
    INT from_len = sizeof from;
    SOCKET accepted = L.lpWSPAccept(listener, (struct sockaddr *)&from, &from_len, NULL, 0, &err);
    CHECK(connected && accepted != INVALID_SOCKET && ifs_of(accepted, CATALOG, 1) &&
              from.sin_addr.s_addr == 0x0100007F,
          "WSPBind + WSPListen + WSPAccept of a ws2_32 client; the accepted socket went through "
          "WPUModifyIFSHandle too (%d)", accepted == INVALID_SOCKET ? err : 0);
    sent = peer_send_text(client, "ping");
    set_timeouts(accepted, 1);
    read = lrecv_text(accepted, got, sizeof got, &err);
    CHECK(sent == 4 && read == 4 && strcmp(got, "ping") == 0, "the accepted socket reads \"%s\"",
          got);
    lclose(accepted);
    lclose(listener);
    p_closesocket(client);

    /* A refused handle: the base closes the socket and fails with the upcall's error. */
    now = stats_now();
    refuse_ifs = WSAENOBUFS;
    SOCKET refused = base_socket(AF_INET, SOCK_STREAM, &err);
    WSP_BASE_STATS after = stats_now();
    CHECK(refused == INVALID_SOCKET && err == WSAENOBUFS && after.sockets_open == now.sockets_open,
          "WPUModifyIFSHandle failing with WSAENOBUFS: WSPSocket fails with it, nothing open (%d)",
          err);

    lclose(base);
    p_closesocket(peer);
}

/* IPv6, when the loopback has it. */
static void test_ipv6(void)
{
    unsigned short port = 0;
    SOCKET l = peer_listener(AF_INET6, &port);
    if (l == INVALID_SOCKET) {
        NOTE("no IPv6 loopback here (ws2_32: %d): the IPv6 scenario is skipped",
             p_WSAGetLastError());
        return;
    }
    INT err = 0;
    SOCKET base = base_socket(AF_INET6, SOCK_STREAM, &err);
    struct sockaddr_in6 to = loopback6(port);
    int rc = base == INVALID_SOCKET
                 ? err
                 : L.lpWSPConnect(base, (struct sockaddr *)&to, sizeof to, NULL, NULL, NULL, NULL,
                                  &err)
                       ? err
                       : 0;
    SOCKET peer = rc ? INVALID_SOCKET : p_accept(l, NULL, NULL);
    char got[32];
    int sent = rc ? -1 : lsend_text(base, "six", &err);
    int read = peer == INVALID_SOCKET ? -1 : peer_outcome(peer, got, sizeof got, WAIT_MS);
    CHECK(rc == 0 && sent == 3 && read == 3 && strcmp(got, "six") == 0,
          "IPv6: WSPSocket(AF_INET6) + WSPConnect to [::1]:%u, 3 bytes through (%d)", port, rc);
    if (base != INVALID_SOCKET)
        lclose(base);
    if (peer != INVALID_SOCKET)
        p_closesocket(peer);
    p_closesocket(l);
}

/* UDP: WSPSendTo / WSPRecvFrom. */
static void test_udp(void)
{
    INT err = 0;
    SOCKET base = base_socket(AF_INET, SOCK_DGRAM, &err);
    SOCKET peer = p_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
    struct sockaddr_in a = loopback4(0), b = loopback4(0);
    INT alen = sizeof a, blen = sizeof b;
    int ready = base != INVALID_SOCKET && peer != INVALID_SOCKET &&
                L.lpWSPBind(base, (struct sockaddr *)&a, sizeof a, &err) == 0 &&
                L.lpWSPGetSockName(base, (struct sockaddr *)&a, &alen, &err) == 0 &&
                p_bind(peer, (struct sockaddr *)&b, sizeof b) == 0 &&
                p_getsockname(peer, (struct sockaddr *)&b, &blen) == 0;
    CHECK(ready, "UDP: a base socket and a ws2_32 socket bound on 127.0.0.1 (%d)", err);
    if (!ready)
        return;
    set_timeouts(base, 1);
    set_timeouts(peer, 0);
    WSABUF buf = {5, "gram!"};
    DWORD sent = 0;
    int rc = L.lpWSPSendTo(base, &buf, 1, &sent, 0, (struct sockaddr *)&b, sizeof b, NULL, NULL,
                           NULL, &err);
    char got[32] = {0};
    struct sockaddr_in from;
    INT from_len = sizeof from;
    int n = p_recvfrom(peer, got, sizeof got, 0, (struct sockaddr *)&from, &from_len);
    CHECK(rc == 0 && sent == 5 && n == 5 && memcmp(got, "gram!", 5) == 0 &&
              from.sin_port == a.sin_port,
          "WSPSendTo: the peer's recvfrom gets \"%.5s\" from the base's port", got);
    n = p_sendto(peer, "back", 4, 0, (struct sockaddr *)&a, sizeof a);
    char back[32] = {0};
    WSABUF in = {sizeof back, back};
    DWORD received = 0, flags = 0;
    from_len = sizeof from;
    rc = L.lpWSPRecvFrom(base, &in, 1, &received, &flags, (struct sockaddr *)&from, &from_len,
                         NULL, NULL, NULL, &err);
    CHECK(n == 4 && rc == 0 && received == 4 && memcmp(back, "back", 4) == 0 &&
              from.sin_port == b.sin_port,
          "WSPRecvFrom gets \"%.4s\" from the peer's port", back);
    lclose(base);
    p_closesocket(peer);
}

/* ------------------------------------------------------------------------------------------- */
/* Graceful shutdown, disconnect, events.                                                      */

static void test_graceful(void)
{
    SOCKET base, peer;
    pair_or_bail(&base, &peer);
    INT err = 0;
    HANDLE event = CreateEventA(NULL, TRUE, FALSE, NULL);
    int rc = L.lpWSPEventSelect(base, event, FD_READ | FD_CLOSE, &err);
    CHECK(rc == 0, "WSPEventSelect(FD_READ | FD_CLOSE) (%d)", rc ? err : 0);

    int sent = lsend_text(base, "bye", &err);
    rc = lshutdown(base, SD_SEND);
    char got[64];
    int first = peer_outcome(peer, got, sizeof got, WAIT_MS);
    int second = peer_outcome(peer, got, sizeof got, WAIT_MS);
    CHECK(sent == 3 && rc == 0 && first == 3 && second == 0,
          "R-WSP-8: WSPShutdown(SD_SEND): the peer reads the 3 bytes, then its recv returns 0 "
          "(%d, %d)", first, second);
    int again = lsend_text(base, "more", &err);
    CHECK(again == -1 && err == WSAESHUTDOWN, "R-WSP-7: WSPSend after SD_SEND is WSAESHUTDOWN (%d)",
          err);

    /* The other way round: the base still receives, sees FD_READ, then FD_CLOSE and 0. */
    sent = peer_send_text(peer, "still open");
    DWORD waited = WaitForSingleObject(event, WAIT_MS);
    WSANETWORKEVENTS events;
    memset(&events, 0, sizeof events);
    rc = L.lpWSPEnumNetworkEvents(base, event, &events, &err);
    CHECK(sent == 10 && waited == WAIT_OBJECT_0 && rc == 0 && (events.lNetworkEvents & FD_READ) &&
              events.iErrorCode[FD_READ_BIT] == 0,
          "the peer's data: the event is set, WSPEnumNetworkEvents reports FD_READ (0x%lx)",
          events.lNetworkEvents);
    u_long queued = 0;
    rc = L.lpWSPIoctl(base, FIONREAD, NULL, 0, &queued, sizeof queued, (LPDWORD)&(DWORD){0}, NULL,
                      NULL, NULL, &err);
    CHECK(rc == 0 && queued == 10, "WSPIoctl(FIONREAD): %lu bytes queued", queued);
    fd_set readable;
    FD_ZERO(&readable);
    FD_SET(base, &readable);
    struct timeval tv = {0, 0};
    int ready = L.lpWSPSelect(0, &readable, NULL, NULL, &tv, &err);
    CHECK(ready == 1 && readable.fd_count == 1 && readable.fd_array[0] == base,
          "WSPSelect: the base socket is readable (%d)", ready);
    int read = lrecv_text(base, got, sizeof got, &err);
    CHECK(read == 10 && strcmp(got, "still open") == 0, "WSPRecv after SD_SEND reads \"%s\"", got);

    p_shutdown(peer, SD_SEND);
    DWORD start = GetTickCount();
    LONG seen = 0;
    int close_error = -1;
    while (GetTickCount() - start < WAIT_MS && !(seen & FD_CLOSE)) {
        if (WaitForSingleObject(event, 100) != WAIT_OBJECT_0)
            continue;
        memset(&events, 0, sizeof events);
        if (L.lpWSPEnumNetworkEvents(base, event, &events, &err) == 0) {
            seen |= events.lNetworkEvents;
            if (events.lNetworkEvents & FD_CLOSE)
                close_error = events.iErrorCode[FD_CLOSE_BIT];
        }
    }
    CHECK((seen & FD_CLOSE) && close_error == 0,
          "R-WSP-8: the peer's SD_SEND: FD_CLOSE with error 0 (%d)", close_error);
    read = lrecv_text(base, got, sizeof got, &err);
    CHECK(read == 0, "R-WSP-10: then WSPRecv returns 0 (%d)", read < 0 ? err : read);
    L.lpWSPEventSelect(base, NULL, 0, &err);
    CloseHandle(event);
    lclose(base);
    p_closesocket(peer);
}

/*
 * SCENARIO NOTES: WSPSendDisconnect / WSPRecvDisconnect on TCP, without disconnect data. Wine's
 * WSASendDisconnect and WSARecvDisconnect act as shutdown(SD_SEND) and shutdown(SD_RECEIVE), as
 * Windows documents for TCP; the base passes them on, so the peer's receive returns 0 after
 * WSPSendDisconnect.
 */
static void test_disconnect(void)
{
    SOCKET base, peer;
    pair_or_bail(&base, &peer);
    INT err = 0;
    int rc = L.lpWSPSendDisconnect(base, NULL, &err);
    char got[16];
    int seen = peer_outcome(peer, got, sizeof got, WAIT_MS);
    CHECK(rc == 0 && seen == 0,
          "WSPSendDisconnect(NULL) on TCP: 0, and the peer's recv returns 0 (%d, %d)",
          rc ? err : 0, seen);
    int again = lsend_text(base, "x", &err);
    CHECK(again == -1 && err == WSAESHUTDOWN, "then WSPSend is WSAESHUTDOWN (%d)", err);
    rc = L.lpWSPRecvDisconnect(base, NULL, &err);
    int read = lrecv_text(base, got, sizeof got, &err);
    CHECK(rc == 0 && read == -1 && err == WSAESHUTDOWN,
          "WSPRecvDisconnect(NULL): 0, then WSPRecv is WSAESHUTDOWN (%d)", err);
    lclose(base);
    p_closesocket(peer);
}

/* ------------------------------------------------------------------------------------------- */
/* Abortive close, SD_RECEIVE.                                                                 */

/*
 * SCENARIO NOTES: abortive close. Wine 8 resets the connection on a close with SO_LINGER {1, 0}
 * (the host's socket gets the same option). A receive waiting when the reset arrives fails with
 * WSAECONNRESET, as on Windows. But Wine's server takes the reset in as it happens: a receive
 * started afterwards returns 0, as at a graceful end, and FD_CLOSE carries error 0 -- Windows
 * reports WSAECONNRESET for both; sends then fail with WSAECONNRESET. A layer's test that wants
 * the reset from a receive keeps one waiting.
 */
static void test_linger_reset(void)
{
    SOCKET base, peer;
    pair_or_bail(&base, &peer);
    INT err = 0;
    struct linger hard = {1, 0}, read_back = {0, 7};
    INT len = sizeof read_back;
    int set = L.lpWSPSetSockOpt(base, SOL_SOCKET, SO_LINGER, (const char *)&hard, sizeof hard,
                                &err);
    int got_opt = L.lpWSPGetSockOpt(base, SOL_SOCKET, SO_LINGER, (char *)&read_back, &len, &err);
    CHECK(set == 0 && got_opt == 0 && read_back.l_onoff && read_back.l_linger == 0,
          "WSPSetSockOpt(SO_LINGER {1, 0}); WSPGetSockOpt reads {%u, %u}", read_back.l_onoff,
          read_back.l_linger);
    /* The peer's receive waits (overlapped, so it is surely waiting) when the reset comes. */
    op_t waiting;
    op_init(&waiting, 1);
    peer_op_recv(peer, &waiting);
    DWORD began = GetTickCount();
    int rc = lclose(base);
    DWORD took = GetTickCount() - began;
    DWORD waited = WaitForSingleObject(waiting.event, WAIT_MS);
    DWORD bytes = 0, flags = 0;
    BOOL done = p_WSAGetOverlappedResult(peer, &waiting.ov, &bytes, FALSE, &flags);
    int why = done ? 0 : p_WSAGetLastError();
    CHECK(is_pending(&waiting) && rc == 0 && took < 1000 && waited == WAIT_OBJECT_0 && !done &&
              why == WSAECONNRESET,
          "R-WSP-11: WSPCloseSocket with SO_LINGER {1, 0} returns at once (%lu ms) and resets: "
          "the peer's waiting receive fails with WSAECONNRESET (%d)", took, why);
    char got[16];
    int late = peer_outcome(peer, got, sizeof got, WAIT_MS);
    int sent = peer_send_text(peer, "x");
    CHECK(late == 0 && sent == -WSAECONNRESET,
          "Wine: a receive the peer starts after the reset returns 0 (%d) [Windows: "
          "WSAECONNRESET]; its send fails with WSAECONNRESET (%d)", late, sent);
    op_free(&waiting);
    p_closesocket(peer);

    /* The peer resets: the base's waiting WSPRecv fails with WSAECONNRESET. */
    pair_or_bail(&base, &peer);
    HANDLE event = CreateEventA(NULL, TRUE, FALSE, NULL);
    L.lpWSPEventSelect(base, event, FD_CLOSE, &err);
    op_init(&waiting, 1);
    op_recv(base, &waiting, NULL);
    p_setsockopt(peer, SOL_SOCKET, SO_LINGER, (const char *)&hard, sizeof hard);
    p_closesocket(peer);
    waited = WaitForSingleObject(waiting.event, WAIT_MS);
    done = op_result(base, &waiting, &bytes, &err);
    CHECK(is_pending(&waiting) && waited == WAIT_OBJECT_0 && !done && err == WSAECONNRESET,
          "R-WSP-10: the peer's abortive close: the base's waiting WSPRecv fails with "
          "WSAECONNRESET (%d)", err);
    WSANETWORKEVENTS events;
    memset(&events, 0, sizeof events);
    waited = WaitForSingleObject(event, WAIT_MS);
    rc = L.lpWSPEnumNetworkEvents(base, event, &events, &err);
    CHECK(waited == WAIT_OBJECT_0 && rc == 0 && (events.lNetworkEvents & FD_CLOSE) &&
              events.iErrorCode[FD_CLOSE_BIT] == 0,
          "Wine: FD_CLOSE after the reset carries error %d [Windows: WSAECONNRESET]",
          events.iErrorCode[FD_CLOSE_BIT]);
    int read = lrecv_text(base, got, sizeof got, &err);
    int read_err = read < 0 ? err : 0;
    sent = lsend_text(base, "x", &err);
    CHECK(read == 0 && sent == -1 && err == WSAECONNRESET,
          "Wine: a WSPRecv after the reset returns 0 (%d, %d) [Windows: WSAECONNRESET]; WSPSend "
          "fails with WSAECONNRESET (%d)", read, read_err, err);
    L.lpWSPEventSelect(base, NULL, 0, &err);
    CloseHandle(event);
    op_free(&waiting);
    lclose(base);
}

/*
 * SCENARIO NOTES: WSPShutdown(SD_RECEIVE). Windows documents (R-WSP-9) that TCP resets the
 * connection when data is queued at SD_RECEIVE or arrives later. Wine 8 does not: the peer's
 * sends keep succeeding and it sees neither a reset nor an end of stream. The base's own
 * receives are WSAESHUTDOWN, as documented (R-WSP-7).
 */
static void test_shutdown_receive(void)
{
    SOCKET base, peer;
    pair_or_bail(&base, &peer);
    INT err = 0;
    int rc = lshutdown(base, SD_RECEIVE);
    char got[16];
    int read = lrecv_text(base, got, sizeof got, &err);
    CHECK(rc == 0 && read == -1 && err == WSAESHUTDOWN,
          "R-WSP-7: after WSPShutdown(SD_RECEIVE) WSPRecv is WSAESHUTDOWN (%d)", err);
    int first = peer_send_text(peer, "late data");
    Sleep(QUIET_MS);
    int second = peer_send_text(peer, "more");
    int seen = peer_outcome(peer, got, sizeof got, QUIET_MS);
    CHECK(first == 9 && second == 4 && seen == PEER_QUIET,
          "Wine: data arriving after SD_RECEIVE does not reset: the peer's sends succeed (%d, %d) "
          "and its receive sees nothing (%d) [Windows: WSAECONNRESET, R-WSP-9]", first, second,
          seen);
    int sent = lsend_text(base, "sending side", &err);
    seen = peer_outcome(peer, got, sizeof got, WAIT_MS);
    CHECK(sent == 12 && seen == 12, "the base's sending side still works (%d)", seen);
    lclose(base);
    p_closesocket(peer);

    /* A receive waiting when SD_RECEIVE comes. */
    pair_or_bail(&base, &peer);
    op_t waiting;
    op_init(&waiting, 1);
    op_recv(base, &waiting, NULL);
    rc = lshutdown(base, SD_RECEIVE);
    DWORD waited = WaitForSingleObject(waiting.event, QUIET_MS);
    CHECK(is_pending(&waiting) && rc == 0 && waited == WAIT_TIMEOUT &&
              waiting.ov.Internal == WSS_OPERATION_IN_PROGRESS,
          "Wine: a receive waiting at SD_RECEIVE stays pending (%lu) [Windows documents nothing "
          "here]", waited);
    lclose(base);
    waited = WaitForSingleObject(waiting.event, WAIT_MS);
    CHECK(waited == WAIT_OBJECT_0 && waiting.ov.Internal == NT_STATUS_CANCELLED,
          "until WSPCloseSocket cancels it (Internal 0x%llx)",
          (unsigned long long)waiting.ov.Internal);
    op_free(&waiting);
    p_closesocket(peer);

    /* Data already queued when SD_RECEIVE comes. */
    pair_or_bail(&base, &peer);
    peer_send_text(peer, "queued");
    Sleep(50);
    rc = lshutdown(base, SD_RECEIVE);
    Sleep(QUIET_MS);
    second = peer_send_text(peer, "after");
    seen = peer_outcome(peer, got, sizeof got, QUIET_MS);
    CHECK(rc == 0 && second == 5 && seen == PEER_QUIET,
          "Wine: SD_RECEIVE with data queued does not reset either (%d, %d) [Windows: "
          "WSAECONNRESET, R-WSP-9]", second, seen);
    lclose(base);
    p_closesocket(peer);
}

/* ------------------------------------------------------------------------------------------- */
/* Overlapped: by event, by routine, aborted by close.                                         */

static void test_overlapped(void)
{
    SOCKET base, peer;
    pair_or_bail(&base, &peer);
    WSP_BASE_STATS before = stats_now();
    op_t op;
    op_init(&op, 1);
    op_recv(base, &op, NULL);
    CHECK(is_pending(&op) && op.ov.Internal == WSS_OPERATION_IN_PROGRESS,
          "R-WSP-16: an overlapped WSPRecv with nothing queued is WSA_IO_PENDING (%d), Internal "
          "STATUS_PENDING", op.err);
    DWORD bytes;
    INT err;
    BOOL done = op_result(base, &op, &bytes, &err);
    CHECK(!done && err == WSA_IO_INCOMPLETE,
          "WSPGetOverlappedResult(fWait FALSE) meanwhile: WSA_IO_INCOMPLETE (%d)", err);
    peer_send_text(peer, "overlapped");
    DWORD waited = WaitForSingleObject(op.event, WAIT_MS);
    done = op_result(base, &op, &bytes, &err);
    CHECK(waited == WAIT_OBJECT_0 && done && bytes == 10 &&
              memcmp(op.data, "overlapped", 10) == 0 && op.ov.Internal == 0 &&
              op.ov.InternalHigh == 10,
          "the peer sends 10 bytes: the event is set, WSPGetOverlappedResult TRUE with %lu bytes",
          bytes);
    WSP_BASE_STATS now = stats_now();
    CHECK(now.bytes_received - before.bytes_received == 10,
          "BaseStats counts the 10 bytes WSPGetOverlappedResult reported (%lld)",
          (long long)(now.bytes_received - before.bytes_received));
    op_free(&op);

    /* A completion routine, run by ws2_32 as an APC of this thread. */
    op_init(&op, 0);
    op_recv(base, &op, on_routine);
    CHECK(is_pending(&op), "an overlapped WSPRecv with a completion routine is pending (%d)",
          op.err);
    peer_send_text(peer, "routine");
    DWORD slept = SleepEx(WAIT_MS, TRUE);
    CHECK(slept == WAIT_IO_COMPLETION && op.routine_calls == 1 && op.routine_error == 0 &&
              op.routine_bytes == 7 && op.routine_thread == GetCurrentThreadId() &&
              memcmp(op.data, "routine", 7) == 0,
          "the routine runs once on the calling thread at its alertable wait, 7 bytes (%lu "
          "calls)", op.routine_calls);
    op_free(&op);
    lclose(base);
    p_closesocket(peer);
}

/*
 * SCENARIO NOTES: a socket closed with overlapped receives pending. Windows completes them with
 * WSA_OPERATION_ABORTED (995). Wine 8's closesocket completes them with STATUS_HANDLES_CLOSED
 * (0x8000000A), which its ws2_32 reports as WSAEINVAL (10022, also to a completion routine) and
 * GetOverlappedResult as ERROR_HANDLES_CLOSED (676) -- shown here on a socket of the harness's
 * own. The base's WSPCloseSocket cancels the socket's I/O first (CancelIoEx), so its pending
 * operations complete as on Windows: Internal STATUS_CANCELLED, 995. WSPGetOverlappedResult
 * with the closed handle is WSAENOTSOCK under Wine (its WSAGetOverlappedResult checks the handle,
 * as Windows' ws2_32 refuses a closed socket before any provider): the OVERLAPPED holds the
 * answer.
 */
static void test_abort_on_close(void)
{
    /* Wine's own closesocket. */
    unsigned short port = 0;
    SOCKET l = peer_listener(AF_INET, &port);
    SOCKET own = p_WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
    struct sockaddr_in to = loopback4(port);
    p_connect(own, (struct sockaddr *)&to, sizeof to);
    SOCKET other = p_accept(l, NULL, NULL);
    p_closesocket(l);
    op_t raw;
    op_init(&raw, 1);
    peer_op_recv(own, &raw);
    p_closesocket(own);
    DWORD waited = WaitForSingleObject(raw.event, WAIT_MS);
    DWORD bytes = 0, flags = 0;
    BOOL done = GetOverlappedResult((HANDLE)own, &raw.ov, &bytes, FALSE);
    DWORD why = done ? 0 : GetLastError();
    CHECK(is_pending(&raw) && waited == WAIT_OBJECT_0 &&
              raw.ov.Internal == NT_STATUS_HANDLES_CLOSED && !done &&
              why == WIN32_ERROR_HANDLES_CLOSED,
          "Wine: ws2_32's closesocket completes a pending WSARecv with STATUS_HANDLES_CLOSED "
          "(Internal 0x%llx, GetOverlappedResult %lu) [Windows: WSA_OPERATION_ABORTED]",
          (unsigned long long)raw.ov.Internal, why);
    op_free(&raw);
    p_closesocket(other);

    SOCKET base, peer;
    pair_or_bail(&base, &peer);
    op_t by_event, by_routine;
    op_init(&by_event, 1);
    op_init(&by_routine, 0);
    op_recv(base, &by_event, NULL);
    op_recv(base, &by_routine, on_routine);
    CHECK(is_pending(&by_event) && is_pending(&by_routine), "two overlapped WSPRecvs pending");
    int rc = lclose(base);
    waited = WaitForSingleObject(by_event.event, WAIT_MS);
    INT err;
    done = op_result(base, &by_event, &bytes, &err);
    CHECK(rc == 0 && waited == WAIT_OBJECT_0 && by_event.ov.Internal == NT_STATUS_CANCELLED &&
              by_event.ov.InternalHigh == 0,
          "WSPCloseSocket completes the receive: event set, Internal 0x%llx (STATUS_CANCELLED), "
          "no bytes", (unsigned long long)by_event.ov.Internal);
    CHECK(!done && err == WSAENOTSOCK,
          "WSPGetOverlappedResult with the closed handle: WSAENOTSOCK (%d)", err);
    done = p_WSAGetOverlappedResult(peer, &by_event.ov, &bytes, FALSE, &flags);
    int wsa = done ? 0 : p_WSAGetLastError();
    CHECK(!done && wsa == WSA_OPERATION_ABORTED,
          "ws2_32 reads that OVERLAPPED as WSA_OPERATION_ABORTED (%d)", wsa);
    DWORD slept = SleepEx(WAIT_MS, TRUE);
    CHECK(slept == WAIT_IO_COMPLETION && by_routine.routine_calls == 1 &&
              by_routine.routine_error == WSA_OPERATION_ABORTED && by_routine.routine_bytes == 0,
          "and the completion routine runs once with error %lu (WSA_OPERATION_ABORTED)",
          by_routine.routine_error);
    op_free(&by_event);
    op_free(&by_routine);
    p_closesocket(peer);
}

/* ------------------------------------------------------------------------------------------- */
/* A completion port on a base socket.                                                         */

/*
 * SCENARIO NOTES: completion ports. The base's socket is Wine's socket handle, so
 * CreateIoCompletionPort takes it, and overlapped WSPSend / WSPRecv with hEvent NULL post their
 * packets to the port (key and OVERLAPPED as given) -- also a send that completed at once
 * (rc 0), as on Windows without FILE_SKIP_COMPLETION_PORT_ON_SUCCESS. An hEvent with its low bit
 * set keeps the packet off the port. A receive pending when the socket is closed posts its packet
 * with ERROR_OPERATION_ABORTED.
 */
static void test_completion_port(void)
{
    SOCKET base, peer;
    pair_or_bail(&base, &peer);
    HANDLE port = CreateIoCompletionPort((HANDLE)base, NULL, KEY, 0);
    CHECK(port != NULL, "CreateIoCompletionPort takes the base's socket handle (%lu)",
          port ? 0 : GetLastError());
    if (!port)
        bail("no completion port");

    op_t recv_op;
    op_init(&recv_op, 0);
    op_recv(base, &recv_op, NULL);
    CHECK(is_pending(&recv_op), "an overlapped WSPRecv, hEvent NULL, is pending (%d)",
          recv_op.err);
    peer_send_text(peer, "to the port");
    DWORD bytes = 0;
    ULONG_PTR key = 0;
    LPOVERLAPPED ov = NULL;
    BOOL got = GetQueuedCompletionStatus(port, &bytes, &key, &ov, WAIT_MS);
    CHECK(got && key == KEY && ov == &recv_op.ov && bytes == 11 &&
              memcmp(recv_op.data, "to the port", 11) == 0,
          "the port gets the receive's packet: key 0x%llx, its OVERLAPPED, %lu bytes",
          (unsigned long long)key, bytes);
    INT err;
    DWORD reported;
    BOOL done = op_result(base, &recv_op, &reported, &err);
    CHECK(done && reported == 11, "WSPGetOverlappedResult agrees: %lu bytes", reported);

    op_t send_op;
    op_init(&send_op, 0);
    op_send(base, &send_op, "from the port", 13, NULL);
    int immediate = send_op.rc == 0;
    NOTE("the overlapped WSPSend returned %d (%d)", send_op.rc, send_op.rc ? send_op.err : 0);
    got = GetQueuedCompletionStatus(port, &bytes, &key, &ov, WAIT_MS);
    char seen[32];
    int read = peer_outcome(peer, seen, sizeof seen, WAIT_MS);
    CHECK((immediate || is_pending(&send_op)) && got && key == KEY && ov == &send_op.ov &&
              bytes == 13 && read == 13,
          "an overlapped WSPSend, hEvent NULL, %s: the port gets its packet, %lu bytes",
          immediate ? "completed at once (rc 0)" : "pending", bytes);

    /* The low bit of hEvent keeps the packet off the port. */
    op_t quiet;
    op_init(&quiet, 2);
    op_send(base, &quiet, "no packet", 9, NULL);
    DWORD waited = WaitForSingleObject(quiet.event, WAIT_MS);
    got = GetQueuedCompletionStatus(port, &bytes, &key, &ov, QUIET_MS);
    DWORD why = got ? 0 : GetLastError();
    CHECK(waited == WAIT_OBJECT_0 && !got && ov == NULL && why == WAIT_TIMEOUT,
          "with hEvent's low bit set the event is set and no packet comes (%lu)", why);
    peer_outcome(peer, seen, sizeof seen, WAIT_MS);
    op_free(&quiet);

    /* Close with a receive pending: an aborted packet. */
    op_init(&recv_op, 0);
    op_recv(base, &recv_op, NULL);
    int rc = lclose(base);
    ov = NULL;
    got = GetQueuedCompletionStatus(port, &bytes, &key, &ov, WAIT_MS);
    why = got ? 0 : GetLastError();
    CHECK(is_pending(&recv_op) && rc == 0 && !got && ov == &recv_op.ov && key == KEY &&
              why == ERROR_OPERATION_ABORTED,
          "WSPCloseSocket with a receive pending: its packet comes with ERROR_OPERATION_ABORTED "
          "(%lu; ws2_32's own closesocket: ERROR_HANDLES_CLOSED)", why);
    CloseHandle(port);
    p_closesocket(peer);
}

/* ------------------------------------------------------------------------------------------- */
/* WSPDuplicateSocket, WSPAsyncSelect and the slots nothing else calls.                        */

static void test_duplicate(void)
{
    SOCKET base, peer;
    pair_or_bail(&base, &peer);
    WSAPROTOCOL_INFOW info;
    memset(&info, 0, sizeof info);
    INT err = 0;
    int rc = L.lpWSPDuplicateSocket(base, GetCurrentProcessId(), &info, &err);
    CHECK(rc == 0 && info.dwCatalogEntryId == CATALOG && info.ProtocolChain.ChainLen == 1 &&
              info.ProtocolChain.ChainEntries[0] == CATALOG,
          "WSPDuplicateSocket describes the socket with the base's catalog entry %lu (%d)",
          info.dwCatalogEntryId, rc ? err : 0);
    SOCKET copy = L.lpWSPSocket(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info,
                                0, WSA_FLAG_OVERLAPPED, &err);
    CHECK(copy != INVALID_SOCKET && copy != base && ifs_of(copy, CATALOG, 1),
          "WSPSocket(FROM_PROTOCOL_INFO, that description) makes a second handle (%d)",
          copy == INVALID_SOCKET ? err : 0);
    lclose(base);
    int sent = lsend_text(copy, "dup", &err);
    char got[16];
    int read = peer_outcome(peer, got, sizeof got, WAIT_MS);
    CHECK(sent == 3 && read == 3 && strcmp(got, "dup") == 0,
          "with the original closed, the copy still sends (%d)", read);
    lclose(copy);
    p_closesocket(peer);
}

static void test_async_select(void)
{
    HWND window = p_CreateWindowExA(0, "STATIC", "base_host", 0, 0, 0, 0, 0, HWND_MESSAGE, NULL,
                                    NULL, NULL);
    if (!window) {
        NOTE("no message window (%lu)", GetLastError());
        CHECK(0, "a message-only window for WSPAsyncSelect");
        return;
    }
    SOCKET base, peer;
    pair_or_bail(&base, &peer);
    INT err = 0;
    int rc = L.lpWSPAsyncSelect(base, window, WM_BASE_SOCKET, FD_READ, &err);
    peer_send_text(peer, "msg");
    MSG msg;
    int found = 0;
    DWORD start = GetTickCount();
    while (!found && GetTickCount() - start < WAIT_MS) {
        while (p_PeekMessageA(&msg, window, 0, 0, PM_REMOVE))
            found |= msg.message == WM_BASE_SOCKET && msg.wParam == (WPARAM)base &&
                     WSAGETSELECTEVENT(msg.lParam) == FD_READ &&
                     WSAGETSELECTERROR(msg.lParam) == 0;
        if (!found)
            Sleep(10);
    }
    CHECK(rc == 0 && found, "WSPAsyncSelect(FD_READ): ws2_32 posts (base socket, FD_READ) to the "
                            "window, no WPUPostMessage (%d)", rc ? err : 0);
    lclose(base);
    p_closesocket(peer);
    p_DestroyWindow(window);
}

/*
 * SCENARIO NOTES: the slots left. Wine 8's WSACancelBlockingCall returns 0 [Windows, Winsock
 * 2.2: WSAEOPNOTSUPP]; its WSAJoinLeaf and WSAGetQOSByName are stubs that fail without setting
 * an error, which the base reports as WSAEOPNOTSUPP.
 */
static void test_pass_through(void)
{
    INT err = 0;
    SOCKET s = base_socket(AF_INET, SOCK_STREAM, &err);
    int rc = L.lpWSPCancelBlockingCall(&err);
    CHECK(rc == 0, "Wine: WSPCancelBlockingCall returns ws2_32's 0 (%d)", rc ? err : 0);
    char name[] = "G711";
    WSABUF qos_name = {sizeof name, name};
    QOS qos;
    memset(&qos, 0, sizeof qos);
    err = 0;
    BOOL ok = L.lpWSPGetQOSByName(s, &qos_name, &qos, &err);
    CHECK(!ok && err == WSAEOPNOTSUPP,
          "WSPGetQOSByName: FALSE with WSAEOPNOTSUPP for Wine's stub (%d)", err);
    struct sockaddr_in to = loopback4(9);
    err = 0;
    SOCKET leaf = L.lpWSPJoinLeaf(s, (struct sockaddr *)&to, sizeof to, NULL, NULL, NULL, NULL,
                                  JL_BOTH, &err);
    CHECK(leaf == INVALID_SOCKET && err == WSAEOPNOTSUPP,
          "WSPJoinLeaf: INVALID_SOCKET with WSAEOPNOTSUPP for Wine's stub (%d)", err);
    if (leaf != INVALID_SOCKET && leaf != s)
        lclose(leaf);
    lclose(s);
}

/* ------------------------------------------------------------------------------------------- */
/* 64 threads.                                                                                 */

static void test_threads(void)
{
    WSP_BASE_STATS before = stats_now();
    run_threads(4 * WAIT_MS, "");
    WSP_BASE_STATS now = stats_now();
    CHECK(now.sockets_made - before.sockets_made == THREADS &&
              now.sockets_open == before.sockets_open &&
              now.ifs_handles - before.ifs_handles == THREADS &&
              now.calls[WSP_BASE_Connect] - before.calls[WSP_BASE_Connect] == THREADS &&
              now.bytes_sent - before.bytes_sent == (LONG64)THREADS * THREAD_BYTES,
          "BaseStats: %ld sockets made, all closed, %ld WPUModifyIFSHandle, %lld bytes sent",
          now.sockets_made - before.sockets_made, now.ifs_handles - before.ifs_handles,
          (long long)(now.bytes_sent - before.bytes_sent));
}

/* ------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: base_host.exe [other.dll ...] <wsp_base.dll>\n");
        return 2;
    }
    const char *base_dll = argv[argc - 1];
    DWORD began = GetTickCount();
    host_ws2_setup();
    HMODULE user32 = LoadLibraryA("user32.dll");
    int resolved = user32 != NULL;
#define RESOLVE_USER32(name)                                                                       \
    resolved &=                                                                                    \
        (p_##name = (__typeof__(&name))(void (*)(void))GetProcAddress(user32, #name)) != NULL;
    if (resolved) {
        USER32(RESOLVE_USER32)
    }
    if (!resolved)
        bail("user32 functions");

    /* The base's catalog entries: Wine's TCP and UDP over IPv4, with the harness's id. */
    if (!find_protocol(AF_INET, SOCK_STREAM, IPPROTO_TCP, &protocol) ||
        !find_protocol(AF_INET, SOCK_DGRAM, IPPROTO_UDP, &protocol_udp))
        bail("Wine's TCP/IPv4 and UDP/IPv4 catalog entries");
    NOTE("Wine's TCP/IPv4 entry: catalog id %lu, dwServiceFlags1 0x%lx (XP1_IFS_HANDLES %s)",
         protocol.dwCatalogEntryId, protocol.dwServiceFlags1,
         protocol.dwServiceFlags1 & XP1_IFS_HANDLES ? "set" : "not set");
    protocol.dwCatalogEntryId = CATALOG;
    protocol.ProtocolChain.ChainLen = BASE_PROTOCOL;
    protocol.ProtocolChain.ChainEntries[0] = CATALOG;
    protocol_udp.dwCatalogEntryId = CATALOG + 1;
    protocol_udp.ProtocolChain.ChainLen = BASE_PROTOCOL;
    protocol_udp.ProtocolChain.ChainEntries[0] = CATALOG + 1;
    socket_entry = &protocol;

    char full[MAX_PATH];
    if (!GetFullPathNameA(base_dll, MAX_PATH, full, NULL))
        bail("GetFullPathNameA failed");
    HMODULE dll = LoadLibraryA(full);
    if (!dll) {
        NOTE("LoadLibrary(%s) failed: %lu", full, GetLastError());
        bail("LoadLibrary of the base");
    }
    wsp_startup = (LPWSPSTARTUP)(void (*)(void))GetProcAddress(dll, "WSPStartup");
    base_stats = (LPWSP_BASE_STATS)(void (*)(void))GetProcAddress(dll, "BaseStats");
    CHECK(wsp_startup && base_stats, "LoadLibrary(%s): WSPStartup and BaseStats resolve by name",
          base_dll);
    if (!wsp_startup || !base_stats)
        bail("exports");

    test_startup();
    int rc = start_provider(&protocol, NULL);
    CHECK(rc == 0, "WSPStartup(2.2) for the scenarios (%d)", rc);
    if (rc)
        bail("no startup");
    test_stream();
    test_ipv6();
    test_udp();
    test_graceful();
    test_disconnect();
    test_linger_reset();
    test_shutdown_receive();
    test_overlapped();
    test_abort_on_close();
    test_completion_port();
    test_duplicate();
    test_async_select();
    test_pass_through();
    test_threads();

    WSP_BASE_STATS now = stats_now();
    int uncalled = 0;
    static const char *const names[] = {
#define SLOT_NAME(name) "WSP" #name,
        WSP_BASE_SLOTS(SLOT_NAME)
#undef SLOT_NAME
    };
    for (int i = 0; i < WSP_BASE_SLOT_COUNT; i++) {
        if (now.calls[i] == 0) {
            NOTE("%s was never called", names[i]);
            uncalled++;
        }
    }
    CHECK(uncalled == 0, "every one of the 30 slots was called and counted (%d not)", uncalled);
    CHECK(upcalls_but_ifs() == 0 && now.ifs_handles == ifs_count,
          "the base made no upcall but WPUModifyIFSHandle (%ld others; %ld of %ld recorded)",
          upcalls_but_ifs(), ifs_count, now.ifs_handles);
    rc = cleanup();
    now = stats_now();
    CHECK(rc == 0 && now.started == 0 && now.sockets_open == 0 && now.closed_by_cleanup == 1,
          "the last WSPCleanup returns 0; every socket of the scenarios was closed by them "
          "(open %ld)", now.sockets_open);
    p_WSACleanup();
    NOTE("run time %lu ms", GetTickCount() - began);
    return finish();
}
