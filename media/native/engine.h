// The per-thread UDP engine of rtprelay's native addon, shared by udp.c (sockets, batched receive)
// and ng-route.c (NG commands handed from the thread that reads the NG socket to call threads).
#ifndef RTPRELAY_ENGINE_H
#define RTPRELAY_ENGINE_H
#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <node_api.h>
#include <uv.h>

#define MAX_BATCH 64
#define PER_FD 16
#define ROUNDS 8
#define MAX_EVENTS 64
#define META_INTS 8
// Sockets bound ahead of need by the socket thread (udp.c, "The socket thread").
#define PREBIND_MAX 256

enum { PB_FREE = 0, PB_QUEUED, PB_BUSY, PB_READY };

typedef struct {
  int state;
  int fd; // PB_READY: the bound socket, or -errno
  uint32_t family;
  uint32_t rcvbuf;
  socklen_t sl;
  uint64_t seq;
  struct sockaddr_storage ss;
} prebind_t;

// A datagram copied into a queue between threads: an NG command handed to a call thread
// (ng-route.c), or a reply for the socket thread to send (sendSoon, udp.c).
typedef struct dgram {
  struct dgram *next;
  int fd;
  int routed; // a reply on another thread's routed NG socket: sent under ng-route.c's check
  socklen_t sl;
  struct sockaddr_storage addr; // where a command came from, where a reply goes
  size_t len;
  uint8_t data[];
} dgram_t;

typedef struct {
  napi_env env;
  int epfd;
  uv_poll_t poll;
  int polling;
  int open_count;
  int closing;
  napi_ref cb_ref;
  napi_ref arena_ref;
  napi_ref meta_ref;
  napi_async_context async_ctx;
  napi_async_cleanup_hook_handle cleanup;
  uint8_t *arena;
  size_t slot_size;
  int32_t *meta;
  // Which descriptors this thread opened, so a thread that ends closes them (a dead media worker
  // must not leak its ports): 1 open, 2 parked (udp.c, "Parked sockets").
  uint8_t *owned;
  int owned_cap;
  struct mmsghdr msgs[MAX_BATCH];
  struct iovec iov[MAX_BATCH];
  struct sockaddr_storage addrs[MAX_BATCH];
  struct epoll_event events[MAX_EVENTS];
  // The socket thread: closes, and binds the sockets JavaScript will ask for next.
  pthread_t bg;
  int bg_started;
  int bg_stop;
  pthread_mutex_t mu;
  pthread_cond_t work; // the socket thread waits here for closes and binds
  pthread_cond_t done; // the JS thread waits here for a bind in progress or for closes to finish
  // Work queued in this event-loop turn wakes the socket thread once, before the loop next waits
  // for I/O (uv_prepare), not per request: a futex wake per socket cost the JS thread as much as
  // the bind it saved.
  uv_prepare_t kick;
  int kick_needed;
  int handles_open;
  int *closeq;
  int close_n;
  int close_cap;
  int closes_busy; // taken by the socket thread, not yet closed
  int pre_queued;
  uint64_t pre_seq;
  // Datagrams for the socket thread to send (NG replies), oldest first.
  dgram_t *send_head, *send_tail;
  int send_n;
  size_t send_bytes;
  uint64_t send_failed;
  prebind_t pre[PREBIND_MAX];
  // NG routing (ng-route.c): this engine reads NG sockets whose commands go to call threads...
  int ng_router;
  // ...or is call thread `ng_index`'s, woken by ng_async when commands are queued for it.
  int ng_index;
  int ng_async_open;
  int kick_open;
  // The socket thread's name (prctl PR_SET_NAME, at most 15 bytes): "<JS thread's name>-io".
  char io_name[16];
  uv_async_t ng_async;
} engine_t;

#define CHECK(call)                                  \
  do {                                               \
    if ((call) != napi_ok) return NULL;              \
  } while (0)

// A send's arguments, read by send_args (udp.c).
typedef struct {
  int ok;
  int32_t fd;
  void *data;
  size_t len;
  struct sockaddr_storage ss;
  socklen_t sl;
} send_args_t;

napi_value throw_msg(napi_env env, const char *msg);
napi_value num(napi_env env, double v);
engine_t *engine_of(napi_env env);
// Calls JavaScript's onBatch(count) for the datagrams in slots [0, count).
void deliver(engine_t *e, int count);
// Fills slot i's metadata (udp.c's layout) for a datagram from `from`.
void fill_meta_from(engine_t *e, int i, int fd, int len, const struct sockaddr_storage *from);
void on_handle_closed(uv_handle_t *h);
napi_value send_args(napi_env env, napi_callback_info info, uint32_t family, send_args_t *a);
// A queue entry holding a copy of data (next NULL, routed 0), or NULL when out of memory.
dgram_t *dgram_new(int fd, const struct sockaddr_storage *addr, socklen_t sl, const void *data, size_t len);
void dgram_free_all(dgram_t *d);

// ng-route.c
int ng_divert(engine_t *e, int fd, int first, int got);
int ng_is_routed(int fd);
// sendto on a routed NG socket, unless the thread that routes it closed it meanwhile: bytes or -errno.
ssize_t ng_sendto_checked(int fd, const void *data, size_t len, const struct sockaddr *to, socklen_t tl);
void ng_forget_fd(int fd);
void ng_engine_cleanup(engine_t *e);
napi_value ng_route_init(napi_env env, napi_value exports);

#endif
