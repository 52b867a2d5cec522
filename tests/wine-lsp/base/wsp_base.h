/*
 * wsp_base.dll's C-callable introspection API, for the harnesses that load it (base_host.c, and a
 * layered provider's harness that puts a layer over it): what the base was asked to do, counted
 * at its 30 WSPPROC_TABLE slots, so a harness can assert that a layer passed calls down.
 *
 *     BOOL WINAPI BaseStats(WSP_BASE_STATS *out, DWORD size);  size = sizeof(WSP_BASE_STATS)
 *
 * copies the counters (FALSE, nothing written, for a NULL out or another size). The counters
 * only grow, except `started` and `sockets_open`; a harness compares two snapshots.
 */
#ifndef WSP_BASE_H
#define WSP_BASE_H

#include <windows.h>

#define WSP_BASE_STATS_VERSION 1

/* The 30 slots in WSPPROC_TABLE order: X(name) with name the slot's member without `lpWSP`. */
#define WSP_BASE_SLOTS(X)                                                                          \
    X(Accept)                                                                                      \
    X(AddressToString)                                                                             \
    X(AsyncSelect)                                                                                 \
    X(Bind)                                                                                        \
    X(CancelBlockingCall)                                                                          \
    X(Cleanup)                                                                                     \
    X(CloseSocket)                                                                                 \
    X(Connect)                                                                                     \
    X(DuplicateSocket)                                                                             \
    X(EnumNetworkEvents)                                                                           \
    X(EventSelect)                                                                                 \
    X(GetOverlappedResult)                                                                         \
    X(GetPeerName)                                                                                 \
    X(GetSockName)                                                                                 \
    X(GetSockOpt)                                                                                  \
    X(GetQOSByName)                                                                                \
    X(Ioctl)                                                                                       \
    X(JoinLeaf)                                                                                    \
    X(Listen)                                                                                      \
    X(Recv)                                                                                        \
    X(RecvDisconnect)                                                                              \
    X(RecvFrom)                                                                                    \
    X(Select)                                                                                      \
    X(Send)                                                                                        \
    X(SendDisconnect)                                                                              \
    X(SendTo)                                                                                      \
    X(SetSockOpt)                                                                                  \
    X(Shutdown)                                                                                    \
    X(Socket)                                                                                      \
    X(StringToAddress)

#define WSP_BASE_SLOT_ENUM(name) WSP_BASE_##name,
enum { WSP_BASE_SLOTS(WSP_BASE_SLOT_ENUM) WSP_BASE_SLOT_COUNT };
#undef WSP_BASE_SLOT_ENUM

typedef struct {
    DWORD version;      /* WSP_BASE_STATS_VERSION */
    LONG startups;      /* WSPStartup calls that returned 0 */
    LONG cleanups;      /* WSPCleanup calls that returned 0 */
    LONG started;       /* startups - cleanups: 0 = not started */
    LONG sockets_made;  /* sockets handed out by WSPSocket, WSPAccept or WSPJoinLeaf */
    LONG sockets_open;  /* of them, not yet closed by WSPCloseSocket or the final WSPCleanup */
    LONG closed_by_cleanup; /* of them, closed by the final WSPCleanup */
    LONG ifs_handles;   /* WPUModifyIFSHandle upcalls made */
    LONG sends;         /* WSPSend and WSPSendTo calls */
    LONG recvs;         /* WSPRecv and WSPRecvFrom calls */
    /* Bytes of the sends and receives that completed at once, plus those of pending ones that
     * WSPGetOverlappedResult reported complete (completions seen only through an event, a
     * completion routine or a completion port are not known to the base). */
    LONG64 bytes_sent;
    LONG64 bytes_received;
    LONG calls[WSP_BASE_SLOT_COUNT]; /* every call, per slot, indexed by WSP_BASE_<slot> */
} WSP_BASE_STATS;

typedef BOOL(WINAPI *LPWSP_BASE_STATS)(WSP_BASE_STATS *out, DWORD size);

#endif
