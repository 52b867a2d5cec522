/*
 * Traffic-meter harness: plays ws2_32 (ws2_host.h, shared with lsp_host.c) against the
 * reference layered provider samples/traffic-meter (traffic_meter.dll: a non-IFS Layer that
 * counts, per connection, the bytes sent and received and how the connection ended), stacked on
 * the C base provider wsp_base.dll (tests/wine-lsp/base), under Wine; then reads the figures the
 * meter wrote and checks them against what moved.
 *
 * The meter writes one line per connection when its socket goes, and a `totals` line whenever
 * the process has no socket left, to `<exe>.log` in the directory TRAFFIC_METER_DIR names (set
 * here to target/wine/bin/meter_figures, the log deleted first, before the DLL is loaded):
 *
 *   connection pid=P endpoint=127.0.0.1:PORT sent=N received=N local=END peer=END time=T exe=E
 *   totals pid=P connections=N sent=N received=N graceful=N abortive=N peer-fin=N
 *          peer-reset=N time=T exe=E
 *
 * (samples/traffic-meter/src/figures.rs; `traffic-meter show` reads the same). Four
 * connections, each with its own remote endpoint:
 * - A, connected by the layer: plain and overlapped sends and receives (by event and by
 *   routine, relayed), then WSPShutdown(SD_SEND) and the peer's FIN: local=shutdown peer=fin;
 * - B, accepted by the layer from a ws2_32 client: a receive relayed to a completion port, a
 *   send, then SO_LINGER {1, 0} and close while the client's receive waits (it fails with
 *   WSAECONNRESET): local=abortive peer=unseen;
 * - C, connected: a send, then the peer resets (SO_LINGER {1, 0}, close) while the layer's
 *   overlapped receive is pending: the relayed completion is WSAECONNRESET (Layer::completed
 *   sees it), then a plain close: local=close peer=reset;
 * - D, connected, a send, left open at the final WSPCleanup: local=cleanup peer=unseen.
 * The layer's listener has no remote endpoint: no line. The last totals line sums the four.
 *
 * Usage: meter_host.exe <traffic_meter.dll> <wsp_base.dll> (xtask passes the package's cdylib,
 * then its C DLLs). Built and run by `cargo xtask test` or `cargo xtask harness meter_host`.
 */
#include "ws2_host.h"

/* samples/traffic-meter/src/identity.rs: PROVIDER_ID c8e4a011-1c6d-41af-b518-d7faded53e13. */
static const GUID METER_ID = {0xc8e4a011, 0x1c6d, 0x41af,
                              {0xb5, 0x18, 0xd7, 0xfa, 0xde, 0xd5, 0x3e, 0x13}};
#define METER_DESCRIPTION L"winprov traffic meter (layered provider)"
#define METER_DIR_ENV "TRAFFIC_METER_DIR"
#define METER_DIR "meter_figures"
#define EXE_NAME "meter_host.exe"

/* ------------------------------------------------------------------------------------------- */
/* The figures' file.                                                                          */

static char log_path[MAX_PATH];

typedef struct {
    unsigned pid;
    char endpoint[64], local[16], peer[16], exe[MAX_PATH];
    unsigned long long sent, received;
} connection_line;

typedef struct {
    unsigned pid;
    unsigned long long connections, sent, received, graceful, abortive, peer_fin, peer_reset;
    char exe[MAX_PATH];
} totals_line;

#define MAX_LINES 64
static connection_line connections[MAX_LINES];
static int connection_count, totals_count, unparsed;
static totals_line last_totals;

static void read_log(void)
{
    connection_count = totals_count = unparsed = 0;
    FILE *f = fopen(log_path, "r");
    if (!f)
        return;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        connection_line c;
        totals_line t;
        int at = 0;
        if (connection_count < MAX_LINES &&
            sscanf(line,
                   "connection pid=%u endpoint=%63s sent=%llu received=%llu local=%15s "
                   "peer=%15s time=%*u exe=%n",
                   &c.pid, c.endpoint, &c.sent, &c.received, c.local, c.peer, &at) == 6 &&
            at > 0) {
            snprintf(c.exe, sizeof c.exe, "%s", line + at);
            connections[connection_count++] = c;
        } else if (sscanf(line,
                          "totals pid=%u connections=%llu sent=%llu received=%llu graceful=%llu "
                          "abortive=%llu peer-fin=%llu peer-reset=%llu time=%*u exe=%n",
                          &t.pid, &t.connections, &t.sent, &t.received, &t.graceful,
                          &t.abortive, &t.peer_fin, &t.peer_reset, &at) == 8 &&
                   at > 0) {
            snprintf(t.exe, sizeof t.exe, "%s", line + at);
            last_totals = t;
            totals_count++;
        } else {
            unparsed++;
            NOTE("an unparsed line: %s", line);
        }
    }
    fclose(f);
}

/* The line of the connection to 127.0.0.1:port, and how many there are. */
static const connection_line *line_of(unsigned short port, int *count)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%u", port);
    const connection_line *found = NULL;
    *count = 0;
    for (int i = 0; i < connection_count; i++)
        if (strcmp(connections[i].endpoint, endpoint) == 0) {
            found = &connections[i];
            ++*count;
        }
    return found;
}

/* Checks the line of the connection to 127.0.0.1:port. */
static void check_line(const char *name, unsigned short port, unsigned long long sent,
                       unsigned long long received, const char *local, const char *peer)
{
    int count = 0;
    const connection_line *c = line_of(port, &count);
    CHECK(count == 1 && c->pid == GetCurrentProcessId() && c->sent == sent &&
              c->received == received && strcmp(c->local, local) == 0 &&
              strcmp(c->peer, peer) == 0 && _stricmp(c->exe, EXE_NAME) == 0,
          "connection %s: one line for 127.0.0.1:%u: sent=%llu received=%llu local=%s peer=%s "
          "(expected %llu, %llu, %s, %s)", name, port, c ? c->sent : 0, c ? c->received : 0,
          c ? c->local : "-", c ? c->peer : "-", sent, received, local, peer);
}

/* ------------------------------------------------------------------------------------------- */
/* The connections.                                                                            */

static char pattern[4096];

typedef struct {
    unsigned short port;
    unsigned long long sent, received;
} moved_t;

/* A: plain and overlapped, then SD_SEND and the peer's FIN. */
static moved_t connection_a(void)
{
    moved_t m = {0, 0, 0};
    SOCKET layer, peer;
    if (connect_pair_port(&layer, &peer, &m.port))
        bail("no pair A");
    INT err = 0;
    char got[4096];
    int sent = lsend_text(layer, "plain send", &err);
    int read = peer_read_all(peer, got, 10);
    int back = peer_send_text(peer, "plain reply!");
    int received = lrecv_text(layer, got, sizeof got, &err);
    CHECK(sent == 10 && read == 10 && back == 12 && received == 12,
          "A: a plain WSPSend of 10 bytes and a WSPRecv of 12 through the meter");
    m.sent += 10;
    m.received += 12;

    op_t op;
    op_init(&op, 1);
    op_send(layer, &op, pattern, 300, NULL);
    DWORD waited = WaitForSingleObject(op.event, WAIT_MS);
    DWORD bytes;
    BOOL done = op_result(layer, &op, &bytes, &err);
    read = peer_read_all(peer, got, 300);
    CHECK((op.rc == 0 || is_pending(&op)) && waited == WAIT_OBJECT_0 && done && bytes == 300 &&
              read == 300 && memcmp(got, pattern, 300) == 0,
          "A: an overlapped WSPSend of 300 bytes (%s), the peer reads %d",
          op.rc == 0 ? "at once" : "pending", read);
    op_free(&op);
    m.sent += 300;

    op_init(&op, 1);
    op_recv(layer, &op, NULL);
    peer_send(peer, pattern, 25);
    waited = WaitForSingleObject(op.event, WAIT_MS);
    done = op_result(layer, &op, &bytes, &err);
    CHECK(is_pending(&op) && waited == WAIT_OBJECT_0 && done && bytes == 25 &&
              memcmp(op.data, pattern, 25) == 0,
          "A: an overlapped WSPRecv pending, relayed by event: %lu bytes", bytes);
    op_free(&op);
    m.received += 25;

    op_init(&op, 0);
    op_recv(layer, &op, on_routine);
    peer_send_text(peer, "routine");
    DWORD slept = SleepEx(WAIT_MS, TRUE);
    CHECK(is_pending(&op) && slept == WAIT_IO_COMPLETION && op.routine_calls == 1 &&
              op.routine_error == 0 && op.routine_bytes == 7,
          "A: an overlapped WSPRecv pending, relayed by routine: %lu bytes", op.routine_bytes);
    m.received += 7;

    int rc = lshutdown(layer, SD_SEND);
    int fin = peer_outcome(peer, got, sizeof got, WAIT_MS);
    int peer_fin = p_shutdown(peer, SD_SEND);
    received = lrecv_text(layer, got, sizeof got, &err);
    CHECK(rc == 0 && fin == 0 && peer_fin == 0 && received == 0,
          "A: WSPShutdown(SD_SEND): the peer reads the end (%d); the peer's SD_SEND: the "
          "layer's WSPRecv returns 0 (%d)", fin, received);
    CHECK(lclose(layer) == 0, "A: closed");
    p_closesocket(peer);
    return m;
}

/* B: accepted by the layer; a receive to a completion port; SO_LINGER {1, 0}, close. */
static moved_t connection_b(void)
{
    moved_t m = {0, 0, 0};
    INT err = 0;
    SOCKET listener, client;
    struct sockaddr_in any;
    int connected = listen_and_connect(&listener, &client, &any, 8, &err);
    struct sockaddr_in mine;
    int mine_len = sizeof mine;
    p_getsockname(client, (struct sockaddr *)&mine, &mine_len);
    m.port = swap16(mine.sin_port);
    SOCKET layer = L.lpWSPAccept(listener, NULL, NULL, NULL, 0, &err);
    CHECK(connected && layer != INVALID_SOCKET,
          "B: the meter's listener accepts a ws2_32 client from port %u (%d)", m.port,
          layer == INVALID_SOCKET ? err : 0);
    if (layer == INVALID_SOCKET)
        bail("no accepted socket");
    set_timeouts(layer, 1);
    set_timeouts(client, 0);

    HANDLE port = host_associate(layer, NULL, KEY);
    op_t op;
    op_init(&op, 0);
    op_recv(layer, &op, NULL);
    peer_send(client, pattern, 40);
    LPOVERLAPPED ov;
    DWORD bytes, why;
    ULONG_PTR key;
    int got = port ? port_packet(port, WAIT_MS, &ov, &bytes, &key, &why) : -1;
    CHECK(port && is_pending(&op) && got == 1 && ov == &op.ov && bytes == 40 &&
              memcmp(op.data, pattern, 40) == 0,
          "B: an overlapped WSPRecv pending, relayed to the completion port of the layer's "
          "handle: %lu bytes", bytes);
    m.received += 40;

    char buf[128];
    int sent = lsend(layer, pattern, 60, &err);
    int read = peer_read_all(client, buf, 60);
    CHECK(sent == 60 && read == 60, "B: a plain WSPSend of 60 bytes, the client reads %d", read);
    m.sent += 60;

    struct linger hard = {1, 0};
    int set = L.lpWSPSetSockOpt(layer, SOL_SOCKET, SO_LINGER, (const char *)&hard, sizeof hard,
                                &err);
    op_t waiting;
    op_init(&waiting, 1);
    peer_op_recv(client, &waiting);
    int rc = lclose(layer);
    DWORD waited = WaitForSingleObject(waiting.event, WAIT_MS);
    DWORD flags = 0, n = 0;
    BOOL done = p_WSAGetOverlappedResult(client, &waiting.ov, &n, FALSE, &flags);
    int reset = done ? 0 : p_WSAGetLastError();
    CHECK(set == 0 && is_pending(&waiting) && rc == 0 && waited == WAIT_OBJECT_0 &&
              reset == WSAECONNRESET,
          "B: SO_LINGER {1, 0} and WSPCloseSocket: the client's waiting receive fails with "
          "WSAECONNRESET (%d)", reset);
    op_free(&waiting);
    op_free(&op);
    if (port)
        CloseHandle(port);
    p_closesocket(client);
    lclose(listener);
    return m;
}

/* C: the peer resets while the layer's overlapped receive is pending. */
static moved_t connection_c(void)
{
    moved_t m = {0, 0, 0};
    SOCKET layer, peer;
    if (connect_pair_port(&layer, &peer, &m.port))
        bail("no pair C");
    INT err = 0;
    char got[16];
    int sent = lsend_text(layer, "hello", &err);
    int read = peer_read_all(peer, got, 5);
    m.sent += 5;
    op_t op;
    op_init(&op, 1);
    op_recv(layer, &op, NULL);
    struct linger hard = {1, 0};
    p_setsockopt(peer, SOL_SOCKET, SO_LINGER, (const char *)&hard, sizeof hard);
    p_closesocket(peer);
    DWORD waited = WaitForSingleObject(op.event, WAIT_MS);
    DWORD bytes;
    BOOL done = op_result(layer, &op, &bytes, &err);
    CHECK(sent == 5 && read == 5 && is_pending(&op) && waited == WAIT_OBJECT_0 && !done &&
              err == WSAECONNRESET,
          "C: the peer resets: the layer's pending overlapped WSPRecv is relayed with "
          "WSAECONNRESET (%d)", err);
    op_free(&op);
    CHECK(lclose(layer) == 0, "C: closed");
    return m;
}

int main(int argc, char **argv)
{
    DWORD began = host_begin(argc, argv, "meter_host.exe", &METER_ID, L"winprov traffic meter",
                             L"winprov traffic meter over TCP/IPv4");
    for (int i = 0; i < (int)sizeof pattern; i++)
        pattern[i] = (char)('a' + i % 26);

    /* The figures' directory, emptied of this executable's log, then the layer. */
    char dir[MAX_PATH];
    if (!GetFullPathNameA(METER_DIR, MAX_PATH, dir, NULL))
        bail("GetFullPathNameA of the figures' directory");
    snprintf(log_path, sizeof log_path, "%s\\%s.log", dir, EXE_NAME);
    DeleteFileA(log_path);
    SetEnvironmentVariableA(METER_DIR_ENV, dir);
    HMODULE layer = host_load_layer(argv[1]);
    patched_t p = patch_layer(layer);
    CHECK(p.enum_protocols >= 1 && p.provider_path >= 1 && p.complete >= 1,
          "the meter imports ws2_32!WSCEnumProtocols (%d), WSCGetProviderPath (%d) and "
          "WPUCompleteOverlappedRequest (%d) by name: replaced by the harness's",
          p.enum_protocols, p.provider_path, p.complete);
    if (!p.enum_protocols || !p.provider_path || !p.complete)
        bail("the meter's ws2_32 imports");

    WSPDATA data;
    memset(&data, 0, sizeof data);
    int rc = start_provider(&catalog[2], &data);
    CHECK(rc == 0 && wcscmp(data.szDescription, METER_DESCRIPTION) == 0,
          "the meter's WSPStartup over the harness's chain: %d, \"%ls\"", rc, data.szDescription);
    if (rc)
        bail("the meter does not start");

    moved_t a = connection_a();
    moved_t b = connection_b();
    moved_t c = connection_c();

    /* D: left open at the final cleanup. */
    moved_t d = {0, 0, 0};
    SOCKET layer_d, peer_d;
    if (connect_pair_port(&layer_d, &peer_d, &d.port))
        bail("no pair D");
    INT err = 0;
    char got[16];
    int sent = lsend_text(layer_d, "end", &err);
    int read = peer_read_all(peer_d, got, 3);
    d.sent = 3;
    rc = cleanup();
    int closed = peer_outcome(peer_d, got, sizeof got, WAIT_MS);
    CHECK(sent == 3 && read == 3 && rc == 0 && live_handles() == 0 && closed <= 0 &&
              closed != PEER_QUIET,
          "D: 3 bytes sent, then the final WSPCleanup with the socket open: its handle closed, "
          "the peer sees the connection end (%d)", closed);
    p_closesocket(peer_d);

    read_log();
    CHECK(connection_count == 4 && unparsed == 0 && totals_count >= 1,
          "%s: %d connection lines (the listener has none), %d totals lines, %d unparsed",
          log_path, connection_count, totals_count, unparsed);
    check_line("A (plain and overlapped, SD_SEND, the peer's FIN)", a.port, a.sent, a.received,
               "shutdown", "fin");
    check_line("B (accepted, a relayed receive, SO_LINGER {1, 0} close)", b.port, b.sent,
               b.received, "abortive", "unseen");
    check_line("C (the peer's reset seen by a relayed receive, then close)", c.port, c.sent,
               c.received, "close", "reset");
    check_line("D (left open at the final cleanup)", d.port, d.sent, d.received, "cleanup",
               "unseen");
    unsigned long long all_sent = a.sent + b.sent + c.sent + d.sent,
                       all_received = a.received + b.received + c.received + d.received;
    const totals_line *t = &last_totals;
    CHECK(totals_count >= 1 && t->pid == GetCurrentProcessId() && t->connections == 4 &&
              t->sent == all_sent && t->received == all_received && t->graceful == 2 &&
              t->abortive == 2 && t->peer_fin == 1 && t->peer_reset == 1 &&
              _stricmp(t->exe, EXE_NAME) == 0,
          "the last totals line: connections=%llu sent=%llu received=%llu graceful=%llu "
          "abortive=%llu peer-fin=%llu peer-reset=%llu (expected 4, %llu, %llu, 2, 2, 1, 1)",
          t->connections, t->sent, t->received, t->graceful, t->abortive, t->peer_fin,
          t->peer_reset, all_sent, all_received);
    CHECK(calls.post == 0 && calls.other == 0 && calls.apc_unknown_thread == 0 &&
              calls.complete_refused == 0 && calls.queue_apc == 1,
          "no WPUPostMessage or WPUGetProviderPath; one WPUQueueApc (%ld) to a thread "
          "WPUOpenCurrentThread opened; every WPUCompleteOverlappedRequest (%ld) named a live "
          "handle", calls.queue_apc, calls.complete);
    p_WSACleanup();
    NOTE("run time %lu ms", GetTickCount() - began);
    return finish();
}
