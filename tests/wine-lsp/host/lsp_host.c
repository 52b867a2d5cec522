/*
 * Layered provider harness: plays ws2_32 against a layered service provider DLL written with
 * winprov-wsp's Layer API (winprov_wine_lsp.dll, tests/wine-lsp/src/lib.rs: a metering layer of
 * non-IFS handles, `export_provider!(layer: Meter, Meter::new)`), stacked on the C base provider
 * wsp_base.dll (tests/wine-lsp/base: real ws2_32 sockets, an IFS base), on real Windows threads,
 * under Wine.
 *
 * The setup (ws2_host.h, shared with meter_host.c). Wine does not host third-party providers, so
 * the harness is ws2_32 for both DLLs: the catalog (the layer's hidden entry, the base's, the
 * chain [HIDDEN, BASE] without XP1_IFS_HANDLES), the upcall table (socket handles that are real
 * kernel file handles, events, threads, WPUQueueApc), and ws2_32!WPUCompleteOverlappedRequest,
 * which really completes a request on the layer's handle (InternalHigh, then Internal; the event;
 * a packet to the port the application associated with the handle). The layer finds its lower
 * provider the way it does on Windows, through ws2_32 and the loader: the harness replaces the
 * layer DLL's imports of ws2_32!WSCEnumProtocols, ws2_32!WSCGetProviderPath and
 * ws2_32!WPUCompleteOverlappedRequest with its own (patching the DLL's import address table;
 * `x86_64-w64-mingw32-objdump -p` shows them imported by name from ws2_32.dll) and wraps its
 * kernel32 LoadLibraryExW and FreeLibrary (the real ones, logged). Everything else of the
 * layer's code runs as it would on Windows -- its relay's completion port and thread are the
 * kernel's (CreateIoCompletionPort, GetQueuedCompletionStatus) -- and the base is loaded by the
 * layer itself (the harness loads it too, for BaseStats, wsp_base.h). The layer's counters: it
 * writes them to the file named by WINPROV_LSP_COUNTERS (set here, before the DLL is loaded)
 * whenever they change (the layer has no unsafe code, so no export of its own; see src/lib.rs).
 * The peers: the harness's own ws2_32 sockets (Wine's), or another socket of the layer.
 *
 * What Wine 8.0 (Debian 8.0~repack-4) does, through the layer (base_host.c shows it on the base
 * alone; [Windows] where it differs):
 * - Wine's own WSCEnumProtocols lists Wine's entries only, so before the harness's catalog is
 *   in place the layer's first socket fails (the layer is not installed);
 * - SO_LINGER {1, 0} then close resets: the peer's receive that is already waiting fails with
 *   WSAECONNRESET [a later one too; Wine: 0];
 * - shutdown(SD_RECEIVE) then data: no reset, the peer's sends succeed [WSAECONNRESET, R-WSP-9];
 * - the relay of overlapped requests (the layer's own request on the base's real socket, bound
 *   to the layer's kernel completion port): by event, by a packet to the port associated with
 *   the layer's handle, and by routine (WPUQueueApc to the initiating thread, run at its
 *   alertable wait), each after Layer::completed; a close with requests pending returns after
 *   each was relayed as WSA_OPERATION_ABORTED (the base cancels its request with CancelIoEx, the
 *   kernel's packet reaches the layer's thread); the final cleanup relays nothing and the
 *   layer's thread is gone when it returns;
 * - SIO_GET_EXTENSION_FUNCTION_POINTER for ConnectEx answers the layer's own function, which
 *   calls the base's (Wine's real ConnectEx, on the real socket) with the layer's own request
 *   and completes the caller's on the layer's handle, after the connect and send hooks.
 *
 * Prints `ok N - ...` / `not ok N - ...` per check, then "N passed, M failed"; exits non-zero on
 * any failure. Usage: lsp_host.exe <layer.dll> <wsp_base.dll> (xtask passes the package's
 * cdylib, then its C DLLs). Built and run by `cargo xtask test` or `cargo xtask harness lsp_host`
 * (x86_64-w64-mingw32-gcc, then wine, cwd = target/wine/bin).
 */
#include "ws2_host.h"
#include <mswsock.h>

/* The layer's provider GUID (src/lib.rs: 7769_6e70_726f_7600_1a7e_5749_4e45_0001). */
static const GUID LAYER_ID = {0x77696e70, 0x726f, 0x7600,
                              {0x1a, 0x7e, 0x57, 0x49, 0x4e, 0x45, 0x00, 0x01}};
#define DESCRIPTION L"winprov Wine test layer: a meter"
#define COUNTERS_ENV "WINPROV_LSP_COUNTERS"
#define COUNTERS_FILE "lsp_counters.txt"
/* src/lib.rs: a send of these many bytes panics in the layer's hook, before / after passing. */
#define PANIC_BEFORE 4241
#define PANIC_AFTER 4243

/* ------------------------------------------------------------------------------------------- */
/* The layer's counters.                                                                       */

static char counters_path[MAX_PATH];

typedef struct {
    long long opened, closed, connects, accepts, sent, received, pending, shutdowns, resets,
        panics, completed, completion_errors;
} counters_t;

static counters_t counters_now(void)
{
    counters_t c;
    memset(&c, 0, sizeof c);
    FILE *f = fopen(counters_path, "r");
    if (!f)
        return c; /* nothing counted yet */
    int n = fscanf(f,
                   "opened=%lld closed=%lld connects=%lld accepts=%lld sent=%lld received=%lld "
                   "pending=%lld shutdowns=%lld resets=%lld panics=%lld completed=%lld "
                   "completion_errors=%lld",
                   &c.opened, &c.closed, &c.connects, &c.accepts, &c.sent, &c.received,
                   &c.pending, &c.shutdowns, &c.resets, &c.panics, &c.completed,
                   &c.completion_errors);
    fclose(f);
    if (n != 12)
        bail("the layer's counters file does not parse");
    return c;
}

/* ------------------------------------------------------------------------------------------- */
/* Scenarios.                                                                                  */

/*
 * SCENARIO NOTES: Wine's own catalog. Before the harness replaces the layer's imports, the layer
 * asks Wine's ws2_32: its WSCEnumProtocols lists Wine's own entries, none of them the layer's
 * hidden entry, so the first socket fails (WSAEINVALIDPROVIDER: the layer is not installed) and
 * nothing is loaded. On Windows an installed layer finds itself there.
 */
static void test_wine_catalog(void)
{
    int rc = start_provider(&catalog[2], NULL);
    INT err = 0;
    SOCKET s = rc ? INVALID_SOCKET : lsock(&err);
    NOTE("with Wine's own WSCEnumProtocols / WSCGetProviderPath: WSPSocket %s, error %d",
         s == INVALID_SOCKET ? "failed" : "succeeded", err);
    CHECK(rc == 0 && s == INVALID_SOCKET && err == WSAEINVALIDPROVIDER &&
              stats_now().startups == 0,
          "Wine's own catalog has no hidden entry of the layer: its first WSPSocket is "
          "WSAEINVALIDPROVIDER (%d), the base not started", err);
    if (s != INVALID_SOCKET)
        lclose(s);
    CHECK(cleanup() == 0, "and its WSPCleanup returns 0");
}

static void test_startup(void)
{
    WSPDATA data;
    memset(&data, 0, sizeof data);
    WSAPROTOCOL_INFOW ifs_chain = catalog[2];
    ifs_chain.dwServiceFlags1 |= XP1_IFS_HANDLES;
    WSPPROC_TABLE refused_table;
    int rc = wsp_startup(MAKEWORD(2, 2), &data, &ifs_chain, upcalls, &refused_table);
    CHECK(rc == WSAEPROVIDERFAILEDINIT,
          "R-WSP-19: a chain entry with XP1_IFS_HANDLES: the non-IFS layer's WSPStartup is "
          "WSAEPROVIDERFAILEDINIT (%d)", rc);

    LONG enums = enum_calls, loads_before = loads;
    rc = start_provider(&catalog[2], &data);
    CHECK(rc == 0 && data.wVersion == 0x0202 && wcscmp(data.szDescription, DESCRIPTION) == 0,
          "the layer's WSPStartup(2.2) with the chain [%d, %d]: 0, wVersion 0x%04x, \"%ls\"",
          HIDDEN, BASE, data.wVersion, data.szDescription);
    void *const *slots = (void *const *)&L;
    int filled = 0;
    for (int i = 0; i < WSP_BASE_SLOT_COUNT; i++)
        filled += slots[i] != NULL;
    CHECK(filled == WSP_BASE_SLOT_COUNT, "all 30 slots of its WSPPROC_TABLE are filled (%d)",
          filled);
    WSP_BASE_STATS now = stats_now();
    CHECK(now.startups == 0 && enum_calls == enums && loads == loads_before,
          "Start::Lazy: the layer's startup neither looked up nor started the base (%ld startups)",
          now.startups);
    rc = start_provider(&catalog[2], NULL);
    CHECK(rc == 0, "a second WSPStartup of the layer (%d)", rc);

    /* A catalog that cannot name the base's DLL: the socket fails, nothing is left behind. */
    refuse_path = 1;
    INT err = 0;
    SOCKET s = lsock(&err);
    now = stats_now();
    CHECK(s == INVALID_SOCKET && err == WSAEPROVIDERFAILEDINIT && now.startups == 0 &&
              loads == loads_before && live_handles() == 0,
          "WSCGetProviderPath failing: the layer's first WSPSocket is WSAEPROVIDERFAILEDINIT "
          "(%d), nothing loaded or started", err);

    LONG creates = calls.create, ifs_before = ifs_count;
    s = lsock(&err);
    now = stats_now();
    WCHAR loaded[MAX_PATH];
    EnterCriticalSection(&log_lock);
    wcscpy(loaded, last_load);
    HMODULE module = last_loaded;
    LeaveCriticalSection(&log_lock);
    CHECK(s != INVALID_SOCKET && now.startups == 1 && now.started == 1 && enum_calls > enums &&
              path_calls >= 2 && loads == loads_before + 1 && module == base_module &&
              _wcsicmp(loaded, base_full_path) == 0,
          "the next WSPSocket finds the base through WSCEnumProtocols and WSCGetProviderPath, "
          "expands %ls to %ls, LoadLibraryExW's it and starts it once (%ld startups)",
          catalog_path, loaded, now.startups);
    CHECK(calls.create == creates + 1 && handle_catalog(s) == CHAIN &&
              ifs_count == ifs_before + 1 && ifs_calls_not_of(ifs_before, BASE) == 0,
          "the layer's handle comes from WPUCreateSocketHandle(%d, ...) (%lu); the base's socket "
          "went through WPUModifyIFSHandle with the base's own entry %d",
          CHAIN, handle_catalog(s), BASE);
    SOCKET second = lsock(&err);
    CHECK(second != INVALID_SOCKET && stats_now().startups == 1 && loads == loads_before + 1,
          "a second socket: the base is not started or loaded again");
    lclose(second);
    lclose(s);

    CHECK(cleanup() == 0 && stats_now().started == 1 && stats_now().cleanups == 0,
          "R-WSP-2: the first of the layer's two WSPCleanups leaves the base started");
    s = lsock(&err);
    CHECK(s != INVALID_SOCKET, "the layer still serves (%d)", s == INVALID_SOCKET ? err : 0);
    LONG closes_before = calls.close;
    LONG frees_before = base_frees;
    rc = cleanup();
    now = stats_now();
    CHECK(rc == 0 && now.cleanups == 1 && now.started == 0 && now.closed_by_cleanup == 1 &&
              now.sockets_open == 0 && calls.close == closes_before + 1 && live_handles() == 0,
          "the layer's final WSPCleanup: the base's WSPCleanup once (%ld), the socket left open "
          "closed below (%ld) and its handle by WPUCloseSocketHandle",
          now.cleanups, now.closed_by_cleanup);
    CHECK(base_frees == frees_before + 1,
          "and the layer FreeLibrary'd the base once (%ld)", base_frees - frees_before);
    s = lsock(&err);
    CHECK(s == INVALID_SOCKET && err == WSANOTINITIALISED,
          "after it the layer's WSPSocket is WSANOTINITIALISED (%d)", err);

    rc = start_provider(&catalog[2], NULL);
    s = rc ? INVALID_SOCKET : lsock(&err);
    now = stats_now();
    CHECK(s != INVALID_SOCKET && now.startups == 2 && now.started == 1 &&
              loads == loads_before + 2,
          "a new session: WSPStartup, then a socket loads and starts the base again (%ld)",
          now.startups);
    lclose(s);
}

static void test_stream(void)
{
    counters_t c0 = counters_now();
    WSP_BASE_STATS b0 = stats_now();
    SOCKET layer, peer;
    int rc = connect_pair(&layer, &peer);
    CHECK(rc == 0, "through the layer: WSPSocket + WSPConnect to a ws2_32 listener, accepted (%d)",
          rc);
    if (rc)
        bail("no pair");
    INT err = 0;
    char got[4096];
    int sent = lsend_text(layer, "through the layer", &err);
    int read = peer_outcome(peer, got, sizeof got, WAIT_MS);
    CHECK(sent == 17 && read == 17 && strcmp(got, "through the layer") == 0,
          "WSPSend 17 bytes through the layer, the peer receives \"%s\"", got);
    /* Two buffers, 3000 bytes. */
    static char big[3000];
    for (int i = 0; i < (int)sizeof big; i++)
        big[i] = (char)('A' + i % 26);
    WSABUF bufs[2] = {{1000, big}, {2000, big + 1000}};
    DWORD big_sent = 0;
    rc = L.lpWSPSend(layer, bufs, 2, &big_sent, 0, NULL, NULL, NULL, &err);
    read = peer_read_all(peer, got, sizeof big);
    CHECK(rc == 0 && big_sent == 3000 && read == 3000 && memcmp(got, big, 3000) == 0,
          "WSPSend of two buffers (1000 + 2000 bytes): the peer reads %d bytes in order", read);
    sent = peer_send_text(peer, "from the peer");
    read = lrecv_text(layer, got, sizeof got, &err);
    CHECK(sent == 13 && read == 13 && strcmp(got, "from the peer") == 0,
          "the peer sends 13 bytes, the layer's WSPRecv reads \"%s\"", got);

    struct sockaddr_in theirs;
    INT len = sizeof theirs;
    rc = L.lpWSPGetPeerName(layer, (struct sockaddr *)&theirs, &len, &err);
    CHECK(rc == 0 && theirs.sin_addr.s_addr == 0x0100007F,
          "WSPGetPeerName through the layer: 127.0.0.1:%u", swap16(theirs.sin_port));

    counters_t c1 = counters_now();
    WSP_BASE_STATS b1 = stats_now();
    CHECK(c1.opened - c0.opened == 1 && c1.connects - c0.connects == 1 &&
              c1.sent - c0.sent == 3017 && c1.received - c0.received == 13,
          "the layer's hooks counted 1 socket, 1 connect, %lld bytes sent and %lld received: "
          "what moved", c1.sent - c0.sent, c1.received - c0.received);
    CHECK(b1.calls[WSP_BASE_Connect] - b0.calls[WSP_BASE_Connect] == 1 &&
              b1.sends - b0.sends == 2 && b1.recvs - b0.recvs == 1 &&
              b1.bytes_sent - b0.bytes_sent == 3017 &&
              b1.bytes_received - b0.bytes_received == 13 &&
              b1.calls[WSP_BASE_GetPeerName] - b0.calls[WSP_BASE_GetPeerName] == 1,
          "BaseStats: the connect, 2 sends (%lld bytes), 1 receive (%lld bytes) and the name "
          "went down", (long long)(b1.bytes_sent - b0.bytes_sent),
          (long long)(b1.bytes_received - b0.bytes_received));

    /* The layer accepting: from a ws2_32 client, and from another layer socket. */
    SOCKET listener, client;
    struct sockaddr_in any;
    int connected = listen_and_connect(&listener, &client, &any, 8, &err);
    struct sockaddr_in from;
    INT from_len = sizeof from;
    SOCKET accepted = L.lpWSPAccept(listener, (struct sockaddr *)&from, &from_len, NULL, 0, &err);
    CHECK(connected && accepted != INVALID_SOCKET && handle_catalog(accepted) == CHAIN &&
              from.sin_addr.s_addr == 0x0100007F,
          "WSPBind + WSPListen + WSPAccept through the layer of a ws2_32 client: a handle of the "
          "layer's (%d)", accepted == INVALID_SOCKET ? err : 0);
    set_timeouts(accepted, 1);
    sent = peer_send_text(client, "ping");
    read = lrecv_text(accepted, got, sizeof got, &err);
    CHECK(sent == 4 && read == 4 && strcmp(got, "ping") == 0, "the accepted socket reads \"%s\"",
          got);
    lclose(accepted);
    p_closesocket(client);

    SOCKET a = lsock(&err);
    int ok = a != INVALID_SOCKET &&
             L.lpWSPConnect(a, (struct sockaddr *)&any, sizeof any, NULL, NULL, NULL, NULL, &err) ==
                 0;
    SOCKET b = ok ? L.lpWSPAccept(listener, NULL, NULL, NULL, 0, &err) : INVALID_SOCKET;
    CHECK(ok && b != INVALID_SOCKET,
          "a layer socket connects to the layer's listener and is accepted (%d)", err);
    set_timeouts(a, 1);
    set_timeouts(b, 1);
    int ab = lsend_text(a, "layer to layer", &err);
    int ba_read = lrecv_text(b, got, sizeof got, &err);
    int ba = lsend_text(b, "and back", &err);
    int ab_read = lrecv_text(a, got, sizeof got, &err);
    CHECK(ab == 14 && ba_read == 14 && ba == 8 && ab_read == 8,
          "layer to layer: 14 bytes one way, 8 the other (%d, %d)", ba_read, ab_read);
    lclose(a);
    lclose(b);
    lclose(listener);
    counters_t c2 = counters_now();
    CHECK(c2.accepts - c1.accepts == 2 && c2.connects - c1.connects == 1 &&
              c2.sent - c1.sent == 22 && c2.received - c1.received == 4 + 14 + 8 &&
              c2.opened - c1.opened == 4 && c2.closed - c1.closed == 4,
          "the layer counted 2 accepts, 1 connect, 22 bytes sent, %lld received, 4 sockets "
          "opened, 4 closed", c2.received - c1.received);
    lclose(layer);
    p_closesocket(peer);
}

static void test_graceful(void)
{
    SOCKET layer, peer;
    pair_or_bail(&layer, &peer);
    counters_t c0 = counters_now();
    INT err = 0;
    int sent = lsend_text(layer, "bye", &err);
    int rc = lshutdown(layer, SD_SEND);
    char got[64];
    int first = peer_outcome(peer, got, sizeof got, WAIT_MS);
    int second = peer_outcome(peer, got, sizeof got, WAIT_MS);
    CHECK(sent == 3 && rc == 0 && first == 3 && second == 0,
          "R-WSP-8 through the layer: WSPShutdown(SD_SEND): the peer reads the 3 bytes, then 0 "
          "(%d, %d)", first, second);
    int again = lsend_text(layer, "more", &err);
    CHECK(again == -1 && err == WSAESHUTDOWN,
          "then WSPSend through the layer is the base's WSAESHUTDOWN (%d)", err);
    sent = peer_send_text(peer, "still open");
    int read = lrecv_text(layer, got, sizeof got, &err);
    CHECK(sent == 10 && read == 10, "the receiving side still works: %d bytes", read);
    p_closesocket(peer);
    read = lrecv_text(layer, got, sizeof got, &err);
    CHECK(read == 0, "the peer's close: WSPRecv returns 0 (%d)", read < 0 ? err : read);
    counters_t c1 = counters_now();
    CHECK(c1.shutdowns - c0.shutdowns == 1 && c1.sent - c0.sent == 3 &&
              c1.received - c0.received == 10,
          "the layer counted the shutdown, 3 bytes out, 10 in (the refused send: none)");
    lclose(layer);
}

/*
 * SCENARIO NOTES: abortive close through the layer. The layer's set_sock_opt hook sees the
 * decoded SO_LINGER {1, 0} and passes it down; its close passes WSPCloseSocket down, and the
 * base's close resets the connection. The peer's receive that is waiting fails with
 * WSAECONNRESET, as on Windows; under Wine only a receive already waiting sees the reset (one
 * started afterwards returns 0 -- base_host.c shows it).
 */
static void test_linger_reset(void)
{
    SOCKET layer, peer;
    pair_or_bail(&layer, &peer);
    counters_t c0 = counters_now();
    WSP_BASE_STATS b0 = stats_now();
    INT err = 0;
    struct linger hard = {1, 0}, read_back = {0, 7};
    INT len = sizeof read_back;
    int set = L.lpWSPSetSockOpt(layer, SOL_SOCKET, SO_LINGER, (const char *)&hard, sizeof hard,
                                &err);
    int got_opt = L.lpWSPGetSockOpt(layer, SOL_SOCKET, SO_LINGER, (char *)&read_back, &len, &err);
    CHECK(set == 0 && got_opt == 0 && read_back.l_onoff && read_back.l_linger == 0,
          "WSPSetSockOpt(SO_LINGER {1, 0}) through the layer; WSPGetSockOpt reads {%u, %u}",
          read_back.l_onoff, read_back.l_linger);
    op_t waiting;
    op_init(&waiting, 1);
    peer_op_recv(peer, &waiting);
    DWORD began = GetTickCount();
    int rc = lclose(layer);
    DWORD took = GetTickCount() - began;
    DWORD waited = WaitForSingleObject(waiting.event, WAIT_MS);
    DWORD bytes = 0, flags = 0;
    BOOL done = p_WSAGetOverlappedResult(peer, &waiting.ov, &bytes, FALSE, &flags);
    int why = done ? 0 : p_WSAGetLastError();
    CHECK(is_pending(&waiting) && rc == 0 && took < 1000 && waited == WAIT_OBJECT_0 && !done &&
              why == WSAECONNRESET,
          "R-WSP-11 through the layer: WSPCloseSocket with SO_LINGER {1, 0} returns at once (%lu "
          "ms) and resets: the peer's waiting receive fails with WSAECONNRESET (%d)", took, why);
    counters_t c1 = counters_now();
    WSP_BASE_STATS b1 = stats_now();
    CHECK(c1.resets - c0.resets == 1 && c1.closed - c0.closed == 1 &&
              b1.calls[WSP_BASE_SetSockOpt] - b0.calls[WSP_BASE_SetSockOpt] == 1 &&
              b1.calls[WSP_BASE_CloseSocket] - b0.calls[WSP_BASE_CloseSocket] == 1 &&
              b1.sockets_open == b0.sockets_open - 1,
          "the layer counted the abortive linger and the close; both went down (BaseStats)");
    op_free(&waiting);
    p_closesocket(peer);
}

/*
 * SCENARIO NOTES: WSPShutdown(SD_RECEIVE) through the layer. Windows documents (R-WSP-9) that
 * TCP resets the connection when data arrives after SD_RECEIVE. Wine 8 does not: the peer's
 * sends keep succeeding and it sees neither a reset nor the end of the stream; the layer's own
 * receives are WSAESHUTDOWN.
 */
static void test_shutdown_receive(void)
{
    SOCKET layer, peer;
    pair_or_bail(&layer, &peer);
    INT err = 0;
    int rc = lshutdown(layer, SD_RECEIVE);
    char got[16];
    int read = lrecv_text(layer, got, sizeof got, &err);
    CHECK(rc == 0 && read == -1 && err == WSAESHUTDOWN,
          "R-WSP-7 through the layer: after WSPShutdown(SD_RECEIVE) WSPRecv is WSAESHUTDOWN (%d)",
          err);
    int first = peer_send_text(peer, "late data");
    Sleep(QUIET_MS);
    int second = peer_send_text(peer, "more");
    int seen = peer_outcome(peer, got, sizeof got, QUIET_MS);
    CHECK(first == 9 && second == 4 && seen == PEER_QUIET,
          "Wine: data arriving after SD_RECEIVE does not reset: the peer's sends succeed (%d, %d) "
          "and its receive sees nothing (%d) [Windows: WSAECONNRESET, R-WSP-9]", first, second,
          seen);
    int sent = lsend_text(layer, "sending side", &err);
    seen = peer_outcome(peer, got, sizeof got, WAIT_MS);
    CHECK(sent == 12 && seen == 12, "the layer's sending side still works (%d)", seen);
    lclose(layer);
    p_closesocket(peer);
}

/*
 * SCENARIO NOTES: overlapped receives through the layer, relayed. The layer does not pass the
 * caller's WSAOVERLAPPED down: its own request goes to the base's socket, which the layer bound
 * to its own completion port (one thread of the layer's waits on it: started with the first
 * relayed request, stopped by the final cleanup); the completion is relayed to the caller's
 * request on the layer's handle after Layer::completed -- by WPUCompleteOverlappedRequest
 * (the harness's: the event, or a packet to the port the application associated with the
 * layer's handle) or, with a completion routine, by WPUQueueApc to the initiating thread.
 * Closed with receives pending: each is relayed as WSA_OPERATION_ABORTED before the close
 * returns (R-WSP-14).
 */
static int threads_without_relay;

static void test_overlapped(void)
{
    SOCKET layer, peer;
    pair_or_bail(&layer, &peer);
    counters_t c0 = counters_now();
    LONG completes0 = calls.complete, events0 = calls.complete_events,
         packets0 = calls.complete_packets, apcs0 = calls.queue_apc;
    threads_without_relay = process_threads();
    op_t op;
    op_init(&op, 1);
    op_recv(layer, &op, NULL);
    int threads_relaying = process_threads();
    CHECK(is_pending(&op) && op.ov.Internal == WSS_OPERATION_IN_PROGRESS && !is_set(&op) &&
              threads_relaying == threads_without_relay + 1,
          "an overlapped WSPRecv through the layer with nothing queued is WSA_IO_PENDING (%d), "
          "Internal WSS_OPERATION_IN_PROGRESS; the layer's relay thread started (%d threads, "
          "%d before)", op.err, threads_relaying, threads_without_relay);
    peer_send_text(peer, "overlapped");
    DWORD waited = WaitForSingleObject(op.event, WAIT_MS);
    counters_t c_event = counters_now();
    DWORD bytes;
    INT err;
    BOOL done = op_result(layer, &op, &bytes, &err);
    CHECK(waited == WAIT_OBJECT_0 && done && bytes == 10 &&
              memcmp(op.data, "overlapped", 10) == 0 && op.ov.Internal == 0 &&
              op.ov.InternalHigh == 10 && calls.complete == completes0 + 1 &&
              calls.complete_events == events0 + 1 && calls.complete_packets == packets0,
          "by event: the peer's 10 bytes are relayed by WPUCompleteOverlappedRequest on the "
          "layer's handle (%ld call): InternalHigh 10, Internal 0, the event set, no packet; "
          "WSPGetOverlappedResult through the layer: %lu bytes", calls.complete - completes0,
          bytes);
    CHECK(c_event.completed - c0.completed == 1 && c_event.received - c0.received == 10,
          "Layer::completed saw it before the event was set: the layer counted its 10 bytes "
          "(%lld)", c_event.received - c0.received);
    op_free(&op);

    op_init(&op, 0);
    op_recv(layer, &op, on_routine);
    peer_send_text(peer, "routine");
    DWORD slept = SleepEx(WAIT_MS, TRUE);
    CHECK(is_pending(&op) && slept == WAIT_IO_COMPLETION && op.routine_calls == 1 &&
              op.routine_error == 0 && op.routine_bytes == 7 &&
              op.routine_thread == GetCurrentThreadId() && memcmp(op.data, "routine", 7) == 0 &&
              op.ov.Internal == 0 && op.ov.InternalHigh == 7,
          "by routine: it runs once at the initiating thread's alertable SleepEx, 7 bytes, error "
          "%lu; InternalHigh 7, Internal 0", op.routine_error);
    CHECK(calls.queue_apc == apcs0 + 1 && calls.apc_thread == GetCurrentThreadId() &&
              calls.apc_unknown_thread == 0 && calls.complete == completes0 + 1,
          "R-WSP-17: queued by WPUQueueApc (%ld) to the thread whose WSATHREADID "
          "WPUOpenCurrentThread made; no WPUCompleteOverlappedRequest for it",
          calls.queue_apc - apcs0);
    op_free(&op);
    counters_t c1 = counters_now();
    CHECK(c1.pending - c0.pending == 2 && c1.completed - c0.completed == 2 &&
              c1.received - c0.received == 17 && c1.completion_errors == c0.completion_errors,
          "the layer's hooks saw both receives go pending (%lld) and Layer::completed both "
          "complete: %lld bytes", c1.pending - c0.pending, c1.received - c0.received);

    /* A completion port associated with the layer's handle. */
    HANDLE port = host_associate(layer, NULL, KEY);
    CHECK(port != NULL,
          "CreateIoCompletionPort takes the layer's handle (a kernel file handle of the host's) "
          "(%lu)", port ? 0 : GetLastError());
    if (!port)
        bail("no completion port");
    op_init(&op, 0);
    op_recv(layer, &op, NULL);
    peer_send_text(peer, "to the port");
    LPOVERLAPPED ov;
    DWORD packet_bytes, why;
    ULONG_PTR key;
    int got = port_packet(port, WAIT_MS, &ov, &packet_bytes, &key, &why);
    CHECK(is_pending(&op) && got == 1 && ov == &op.ov && key == KEY && packet_bytes == 11 &&
              op.ov.Internal == 0 && op.ov.InternalHigh == 11 &&
              memcmp(op.data, "to the port", 11) == 0,
          "an overlapped WSPRecv (hEvent NULL) on a layer handle bound to a port: the port gets "
          "its packet (the caller's OVERLAPPED, key 0x%lx, %lu bytes)", (unsigned long)key,
          packet_bytes);
    op_t quiet;
    op_init(&quiet, 2);
    op_recv(layer, &quiet, NULL);
    peer_send_text(peer, "no packet");
    waited = WaitForSingleObject(quiet.event, WAIT_MS);
    got = port_packet(port, QUIET_MS, &ov, &packet_bytes, &key, &why);
    CHECK(is_pending(&quiet) && waited == WAIT_OBJECT_0 && got == -1 &&
              quiet.ov.InternalHigh == 9,
          "hEvent with its low bit set on that handle: the event is set, the port gets nothing");
    op_free(&quiet);

    /* Aborted by the close, one of each. */
    op_t by_port, by_event, by_routine;
    op_init(&by_port, 0);
    op_init(&by_event, 2);
    op_init(&by_routine, 0);
    op_recv(layer, &by_port, NULL);
    op_recv(layer, &by_event, NULL);
    op_recv(layer, &by_routine, on_routine);
    CHECK(is_pending(&by_port) && is_pending(&by_event) && is_pending(&by_routine),
          "three overlapped WSPRecvs pending through the layer: by port, event and routine");
    counters_t c2 = counters_now();
    LONG apcs = calls.queue_apc;
    int rc = lclose(layer);
    int event_now = is_set(&by_event);
    LONG apcs_now = calls.queue_apc;
    ULONG_PTR port_internal = by_port.ov.Internal, event_internal = by_event.ov.Internal;
    got = port_packet(port, 0, &ov, &packet_bytes, &key, &why);
    CHECK(rc == 0 && event_now && event_internal == WSA_OPERATION_ABORTED &&
              port_internal == WSA_OPERATION_ABORTED && by_event.ov.InternalHigh == 0 &&
              got == 0 && ov == &by_port.ov && why == ERROR_OPERATION_ABORTED &&
              apcs_now == apcs + 1,
          "R-WSP-14 through the layer: WSPCloseSocket returns after relaying each as aborted: "
          "the event already set, the packet already queued (%lu), the APC already queued; "
          "Internal %llu", why, (unsigned long long)event_internal);
    slept = SleepEx(0, TRUE);
    CHECK(slept == WAIT_IO_COMPLETION && by_routine.routine_calls == 1 &&
              by_routine.routine_error == WSA_OPERATION_ABORTED && by_routine.routine_bytes == 0,
          "and the routine runs once at the next alertable wait with error %lu "
          "(WSA_OPERATION_ABORTED)", by_routine.routine_error);
    done = op_result(layer, &by_event, &bytes, &err);
    CHECK(!done && err == WSAENOTSOCK,
          "WSPGetOverlappedResult with the closed layer handle: WSAENOTSOCK (%d)", err);
    counters_t c3 = counters_now();
    CHECK(c3.completed - c2.completed == 3 && c3.completion_errors - c2.completion_errors == 3 &&
              c3.closed - c2.closed == 1,
          "Layer::completed saw the three aborted receives (%lld)", c3.completed - c2.completed);
    got = port_packet(port, QUIET_MS, &ov, &packet_bytes, &key, &why);
    CHECK(got == -1 && calls.complete_refused == 0,
          "nothing more comes after the close; every WPUCompleteOverlappedRequest named a live "
          "handle of the layer's");
    op_free(&by_port);
    op_free(&by_event);
    op_free(&by_routine);
    op_free(&op);
    CloseHandle(port);
    p_closesocket(peer);
}

/*
 * SCENARIO NOTES: a panic in the layer's send hook. A send of PANIC_BEFORE bytes panics before
 * the hook passes it down: the call fails with WSASYSCALLFAILURE and nothing reaches the base.
 * A send of PANIC_AFTER bytes panics after passing it down: the caller is told
 * WSASYSCALLFAILURE although the base sent the bytes (what the hook's panic boundary can say).
 * Either way the process lives and the layer keeps serving.
 */
/* ConnectEx through the layer: the layer's own function (the base's, Wine's real one, knows
 * only the real socket), which connects the real socket with the layer's own request and
 * completes the caller's on the layer's handle. */
static void test_connect_ex(void)
{
    counters_t c0 = counters_now();
    LONG completes0 = calls.complete;
    unsigned short port = 0;
    SOCKET listener = peer_listener(AF_INET, &port);
    INT err = 0;
    SOCKET layer = lsock(&err);
    if (listener == INVALID_SOCKET || layer == INVALID_SOCKET)
        bail("no sockets for ConnectEx");
    struct sockaddr_in any = loopback4(0);
    int rc = L.lpWSPBind(layer, (struct sockaddr *)&any, sizeof any, &err);
    GUID guid = WSAID_CONNECTEX;
    LPFN_CONNECTEX connect_ex = NULL, real = NULL;
    DWORD returned = 0;
    rc |= L.lpWSPIoctl(layer, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &connect_ex,
                       sizeof connect_ex, &returned, NULL, NULL, NULL, &err);
    DWORD real_returned = 0;
    SOCKET mine = p_socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    int real_rc = p_WSAIoctl(mine, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &real,
                           sizeof real, &real_returned, NULL, NULL);
    p_closesocket(mine);
    CHECK(rc == 0 && returned == sizeof connect_ex && connect_ex && real_rc == 0 && real &&
              connect_ex != real,
          "WSPIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER, WSAID_CONNECTEX) through the non-IFS "
          "layer: the layer's own ConnectEx, not ws2_32's (%d)", rc ? err : 0);
    if (!connect_ex)
        bail("no ConnectEx");

    WSAOVERLAPPED ov;
    memset(&ov, 0, sizeof ov);
    ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
    struct sockaddr_in to = loopback4(port);
    DWORD sent = 0;
    BOOL at_once = connect_ex(layer, (struct sockaddr *)&to, sizeof to, "connect-ex", 10, &sent,
                              &ov);
    int started = at_once ? 0 : p_WSAGetLastError();
    /* Accepted only if a connection came: a ConnectEx that did nothing leaves none. */
    fd_set incoming;
    FD_ZERO(&incoming);
    FD_SET(listener, &incoming);
    struct timeval tv = {WAIT_MS / 1000, 0};
    SOCKET peer = p_select(0, &incoming, NULL, NULL, &tv) == 1 ? p_accept(listener, NULL, NULL)
                                                                : INVALID_SOCKET;
    DWORD waited = WaitForSingleObject(ov.hEvent, WAIT_MS);
    char got[64];
    int read = peer == INVALID_SOCKET ? -1 : peer_outcome(peer, got, sizeof got, WAIT_MS);
    counters_t c1 = counters_now();
    CHECK((at_once || started == WSA_IO_PENDING) && waited == WAIT_OBJECT_0 &&
              ov.Internal == 0 && ov.InternalHigh == 10 && read == 10 &&
              memcmp(got, "connect-ex", 10) == 0 && calls.complete == completes0 + 1,
          "the layer's ConnectEx with 10 bytes of data (%s, %d): the peer accepts and reads "
          "\"%s\"; the request completes on the layer's handle by WPUCompleteOverlappedRequest "
          "(InternalHigh %llu, Internal %llu, the event set)",
          at_once ? "at once" : "pending", started, got, (unsigned long long)ov.InternalHigh,
          (unsigned long long)ov.Internal);
    CHECK(c1.connects - c0.connects == 1 && c1.sent - c0.sent == 10,
          "the layer's connect hook saw it, and its send hook (or Layer::completed) its 10 "
          "bytes (%lld connects, %lld bytes)", c1.connects - c0.connects, c1.sent - c0.sent);
    rc = L.lpWSPSetSockOpt(layer, SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, NULL, 0, &err);
    struct sockaddr_in theirs;
    INT len = sizeof theirs;
    rc |= L.lpWSPGetPeerName(layer, (struct sockaddr *)&theirs, &len, &err);
    int echoed = peer_send_text(peer, "back");
    int back = lrecv_text(layer, got, sizeof got, &err);
    CHECK(rc == 0 && swap16(theirs.sin_port) == port && echoed == 4 && back == 4 &&
              strcmp(got, "back") == 0,
          "then SO_UPDATE_CONNECT_CONTEXT, the peer's name and data both ways through the layer "
          "(%d)", rc ? err : 0);
    CloseHandle(ov.hEvent);
    lclose(layer);
    p_closesocket(peer);
    p_closesocket(listener);
}

static void test_panic(void)
{
    SOCKET layer, peer;
    pair_or_bail(&layer, &peer);
    static char data[PANIC_AFTER];
    memset(data, 'p', sizeof data);
    counters_t c0 = counters_now();
    WSP_BASE_STATS b0 = stats_now();
    INT err = 0;
    int sent = lsend(layer, data, PANIC_BEFORE, &err);
    WSP_BASE_STATS b1 = stats_now();
    char got[PANIC_AFTER + 1];
    int seen = peer_outcome(peer, got, sizeof got, QUIET_MS);
    CHECK(sent == -1 && err == WSASYSCALLFAILURE && b1.sends == b0.sends && seen == PEER_QUIET,
          "a panic in the send hook before passing: WSASYSCALLFAILURE (%d), nothing reached the "
          "base or the peer", err);
    sent = lsend_text(layer, "alive", &err);
    seen = peer_outcome(peer, got, sizeof got, WAIT_MS);
    CHECK(sent == 5 && seen == 5 && strcmp(got, "alive") == 0,
          "the process lives and the layer still serves: the next send delivers \"%s\"", got);
    sent = lsend(layer, data, PANIC_AFTER, &err);
    WSP_BASE_STATS b2 = stats_now();
    seen = peer_read_all(peer, got, PANIC_AFTER);
    CHECK(sent == -1 && err == WSASYSCALLFAILURE && b2.sends == b1.sends + 2 &&
              seen == PANIC_AFTER,
          "a panic after passing: WSASYSCALLFAILURE (%d), though the base sent it and the peer "
          "reads %d bytes", err, seen);
    counters_t c1 = counters_now();
    CHECK(c1.panics - c0.panics == 2 && c1.sent - c0.sent == 5,
          "the layer counted 2 panics and only the 5 bytes of the send it returned from");
    int read_back = peer_send_text(peer, "still");
    int read = lrecv_text(layer, got, sizeof got, &err);
    CHECK(read_back == 5 && read == 5, "and receives (%d)", read);
    lclose(layer);
    p_closesocket(peer);
}

/* ------------------------------------------------------------------------------------------- */

static void test_threads(void)
{
    counters_t c0 = counters_now();
    WSP_BASE_STATS b0 = stats_now();
    LONG creates = calls.create, closes = calls.close, live = live_handles();
    run_threads(6 * WAIT_MS, " through the layer");
    counters_t c1 = counters_now();
    CHECK(c1.opened - c0.opened == THREADS && c1.closed - c0.closed == THREADS &&
              c1.connects - c0.connects == THREADS && c1.shutdowns - c0.shutdowns == THREADS &&
              c1.sent - c0.sent == (long long)THREADS * THREAD_BYTES,
          "the layer counted %lld sockets, %lld connects, %lld bytes sent, %lld closes",
          c1.opened - c0.opened, c1.connects - c0.connects, c1.sent - c0.sent,
          c1.closed - c0.closed);
    WSP_BASE_STATS b1 = stats_now();
    CHECK(b1.sockets_made - b0.sockets_made == THREADS && b1.sockets_open == b0.sockets_open &&
              b1.calls[WSP_BASE_Connect] - b0.calls[WSP_BASE_Connect] == THREADS &&
              b1.bytes_sent - b0.bytes_sent == (LONG64)THREADS * THREAD_BYTES,
          "BaseStats: %ld sockets made below, all closed, %lld bytes sent",
          b1.sockets_made - b0.sockets_made, (long long)(b1.bytes_sent - b0.bytes_sent));
    CHECK(calls.create - creates == THREADS && calls.close - closes == THREADS &&
              live_handles() == live,
          "%ld WPUCreateSocketHandle and %ld WPUCloseSocketHandle: no handle left",
          calls.create - creates, calls.close - closes);
}

/* ------------------------------------------------------------------------------------------- */

/*
 * SCENARIO NOTES: the final cleanup with requests pending (R-WSP-15). A layer socket bound to a
 * port with three receives pending (by port, event and routine) and another socket left open:
 * the layer's last WSPCleanup closes the handles and has the base clean up (which cancels its
 * requests), relays nothing, and stops its relay thread. A new session then relays again, with a
 * new thread, stopped again by its own final cleanup.
 */
static void test_final_cleanup(void)
{
    SOCKET layer, peer;
    pair_or_bail(&layer, &peer);
    INT err = 0;
    SOCKET left = lsock(&err);
    HANDLE port = host_associate(layer, NULL, KEY);
    op_t by_port, by_event, by_routine;
    op_init(&by_port, 0);
    op_init(&by_event, 1);
    op_init(&by_routine, 0);
    op_recv(layer, &by_port, NULL);
    op_recv(layer, &by_event, NULL);
    op_recv(layer, &by_routine, on_routine);
    CHECK(port && is_pending(&by_port) && is_pending(&by_event) && is_pending(&by_routine),
          "three overlapped WSPRecvs pending through the layer (port, event, routine) before the "
          "final cleanup");
    WSP_BASE_STATS b0 = stats_now();
    counters_t c0 = counters_now();
    LONG frees_before = base_frees, completes = calls.complete, apcs = calls.queue_apc,
         sets = calls.set_event;
    int threads_before = process_threads();
    int rc = cleanup();
    int threads_after = process_threads();
    WSP_BASE_STATS b1 = stats_now();
    CHECK(left != INVALID_SOCKET && rc == 0 && b1.cleanups == b0.cleanups + 1 &&
              b1.started == 0 && b1.sockets_open == 0 &&
              b1.closed_by_cleanup == b0.closed_by_cleanup + 2 && live_handles() == 0 &&
              base_frees == frees_before + 1,
          "the layer's last WSPCleanup: the base cleaned up once (started %ld), the two sockets "
          "left open closed below, every handle closed, the base freed", b1.started);
    DWORD waited = WaitForSingleObject(by_event.event, QUIET_MS);
    LPOVERLAPPED ov;
    DWORD packet_bytes, why;
    ULONG_PTR key;
    int got = port ? port_packet(port, QUIET_MS, &ov, &packet_bytes, &key, &why) : -1;
    DWORD slept = SleepEx(QUIET_MS, TRUE);
    counters_t c1 = counters_now();
    CHECK(waited == WAIT_TIMEOUT && got == -1 && slept == 0 && by_routine.routine_calls == 0 &&
              calls.complete == completes && calls.queue_apc == apcs &&
              calls.set_event == sets && by_event.ov.Internal == WSS_OPERATION_IN_PROGRESS &&
              c1.completed == c0.completed,
          "R-WSP-15 through the layer: it relays nothing -- no event, no packet, no APC at an "
          "alertable wait, no WPUCompleteOverlappedRequest / WPUQueueApc / WPUSetEvent, "
          "Layer::completed not called (%lld)", c1.completed - c0.completed);
    CHECK(threads_before == threads_without_relay + 1 && threads_after == threads_before - 1,
          "and the layer's relay thread is gone: %d threads after it, %d before it, %d before "
          "the relay started", threads_after, threads_before, threads_without_relay);
    op_free(&by_port);
    op_free(&by_event);
    op_free(&by_routine);
    if (port)
        CloseHandle(port);
    p_closesocket(peer);

    /* A new session relays again. */
    rc = start_provider(&catalog[2], NULL);
    if (rc || connect_pair(&layer, &peer))
        bail("no pair in a new session");
    op_t op;
    op_init(&op, 1);
    op_recv(layer, &op, NULL);
    int threads_again = process_threads();
    peer_send_text(peer, "again");
    waited = WaitForSingleObject(op.event, WAIT_MS);
    CHECK(is_pending(&op) && waited == WAIT_OBJECT_0 && op.ov.InternalHigh == 5 &&
              memcmp(op.data, "again", 5) == 0 && threads_again == threads_after + 1,
          "a new session: an overlapped receive is relayed again (%llu bytes, by event), by a "
          "new relay thread (%d threads)", (unsigned long long)op.ov.InternalHigh,
          threads_again);
    lclose(layer);
    p_closesocket(peer);
    op_free(&op);
    rc = cleanup();
    int threads_end = process_threads();
    CHECK(rc == 0 && threads_end == threads_after && live_handles() == 0,
          "and its final WSPCleanup stops that thread too (%d threads)", threads_end);
}

int main(int argc, char **argv)
{
    DWORD began = host_begin(argc, argv, "lsp_host.exe", &LAYER_ID, L"winprov Wine test layer",
                             L"winprov Wine test layer over TCP/IPv4");

    /* The layer's counters file, then the layer. */
    if (!GetFullPathNameA(COUNTERS_FILE, MAX_PATH, counters_path, NULL))
        bail("GetFullPathNameA of the counters file");
    DeleteFileA(counters_path);
    SetEnvironmentVariableA(COUNTERS_ENV, counters_path);
    HMODULE layer = host_load_layer(argv[1]);

    test_wine_catalog();

    patched_t p = patch_layer(layer);
    CHECK(p.enum_protocols >= 1 && p.provider_path >= 1 && p.load_library >= 1 &&
              p.free_library >= 1 && p.complete >= 1,
          "the layer imports ws2_32!WSCEnumProtocols (%d), ws2_32!WSCGetProviderPath (%d), "
          "kernel32!LoadLibraryExW (%d), kernel32!FreeLibrary (%d) and "
          "ws2_32!WPUCompleteOverlappedRequest (%d) by name: replaced by the harness's",
          p.enum_protocols, p.provider_path, p.load_library, p.free_library, p.complete);
    if (!p.enum_protocols || !p.provider_path || !p.complete)
        bail("the layer's ws2_32 imports");

    test_startup();
    test_stream();
    test_graceful();
    test_linger_reset();
    test_shutdown_receive();
    test_overlapped();
    test_connect_ex();
    test_panic();
    test_threads();
    test_final_cleanup();

    CHECK(calls.post == 0 && calls.other == 0 && calls.apc_unknown_thread == 0 &&
              calls.complete_refused == 0,
          "no WPUPostMessage or WPUGetProviderPath upcall was made; every WPUQueueApc (%ld) named "
          "a thread WPUOpenCurrentThread opened, every WPUCompleteOverlappedRequest (%ld) a live "
          "handle", calls.queue_apc, calls.complete);
    CHECK(ifs_calls_not_of(0, BASE) == 0 && calls.modify_ifs == stats_now().ifs_handles,
          "every WPUModifyIFSHandle (%ld) came from the base with its own entry %d",
          calls.modify_ifs, BASE);
    p_WSACleanup();
    NOTE("run time %lu ms", GetTickCount() - began);
    return finish();
}
