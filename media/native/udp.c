// rtprelay's native addon (module init here; SRTP primitives in srtp.c). Batched UDP I/O for the
// media plane (Linux): non-blocking sockets (bound ahead and closed by a socket thread, see below),
// one epoll set per JavaScript thread watched by a single libuv poll handle, and
// recvmmsg() into one arena that JavaScript reads in place. One call into JavaScript carries up
// to MAX_BATCH datagrams from any number of sockets; sends are synchronous sendto() calls, so the
// caller may reuse its buffer as soon as send returns.
//
// Why not node:dgram: a dgram socket costs a libuv handle, an EventEmitter, a Buffer and an
// rinfo object per datagram, and a callback into JavaScript per datagram. On the 2-core bench
// machine the simplest dgram forwarder topped out near 30,000 packets/s where rtpengine's C
// relay did ~50,000 (see test/bench and the README's performance section for the figures).
// media/udp.ts keeps the dgram path as the fallback behind the same interface.
//
// Layout of the metadata JavaScript reads for datagram i (Int32Array, META_INTS per datagram):
//   [fd, length (-1: truncated), family (4 or 6), port, a0, a1, a2, a3]
// IPv4: a0 is the address as an unsigned 32-bit number in host order, stored as int32.
// IPv6: a0..a3 are the 16 address bytes as four big-endian 32-bit words.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"

napi_value srtp_init(napi_env env, napi_value exports); // srtp.c

napi_value throw_msg(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

engine_t *engine_of(napi_env env) {
  void *data = NULL;
  if (napi_get_instance_data(env, &data) != napi_ok) return NULL;
  return (engine_t *)data;
}

static void owned_set(engine_t *e, int fd, uint8_t v) {
  if (fd >= e->owned_cap) {
    int cap = e->owned_cap ? e->owned_cap : 1024;
    while (cap <= fd) cap *= 2;
    uint8_t *n = realloc(e->owned, (size_t)cap);
    if (n == NULL) return;
    memset(n + e->owned_cap, 0, (size_t)(cap - e->owned_cap));
    e->owned = n;
    e->owned_cap = cap;
  }
  e->owned[fd] = v;
}

void deliver(engine_t *e, int count) {
  napi_env env = e->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, arg, result;
  if (napi_get_reference_value(env, e->cb_ref, &cb) == napi_ok && cb != NULL) {
    napi_get_global(env, &recv);
    napi_create_int32(env, count, &arg);
    napi_status st = napi_make_callback(env, e->async_ctx, recv, cb, 1, &arg, &result);
    if (st == napi_pending_exception) {
      napi_value err;
      // As with a throwing dgram 'message' listener: the exception is the process's (or worker's).
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
  }
  napi_close_handle_scope(env, scope);
}

void fill_meta_from(engine_t *e, int i, int fd, int len, const struct sockaddr_storage *ss) {
  int32_t *m = e->meta + i * META_INTS;
  m[0] = fd;
  m[1] = len;
  if (ss->ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    m[2] = 4;
    m[3] = ntohs(a->sin_port);
    m[4] = (int32_t)ntohl(a->sin_addr.s_addr);
    m[5] = m[6] = m[7] = 0;
  } else {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    const uint8_t *b = a->sin6_addr.s6_addr;
    m[2] = 6;
    m[3] = ntohs(a->sin6_port);
    for (int w = 0; w < 4; w++)
      m[4 + w] = (int32_t)(((uint32_t)b[4 * w] << 24) | ((uint32_t)b[4 * w + 1] << 16) |
                           ((uint32_t)b[4 * w + 2] << 8) | (uint32_t)b[4 * w + 3]);
  }
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  engine_t *e = (engine_t *)handle->data;
  if (status < 0 || e->closing) return;
  for (int round = 0; round < ROUNDS; round++) {
    int ready = epoll_wait(e->epfd, e->events, MAX_EVENTS, 0);
    if (ready <= 0) return;
    int count = 0;
    for (int r = 0; r < ready && count < MAX_BATCH; r++) {
      int fd = e->events[r].data.fd;
      int take = MAX_BATCH - count;
      if (take > PER_FD) take = PER_FD;
      for (int i = 0; i < take; i++) {
        struct msghdr *h = &e->msgs[count + i].msg_hdr;
        e->iov[count + i].iov_base = e->arena + (size_t)(count + i) * e->slot_size;
        e->iov[count + i].iov_len = e->slot_size;
        h->msg_iov = &e->iov[count + i];
        h->msg_iovlen = 1;
        h->msg_name = &e->addrs[count + i];
        h->msg_namelen = sizeof(struct sockaddr_storage);
        h->msg_control = NULL;
        h->msg_controllen = 0;
        h->msg_flags = 0;
      }
      int got = recvmmsg(fd, &e->msgs[count], (unsigned)take, MSG_DONTWAIT, NULL);
      if (got <= 0) continue; // EAGAIN, or an error queued on the socket: nothing to read now
      // NG commands for call threads go to them from here (ng-route.c); the rest stays.
      if (e->ng_router && ng_is_routed(fd)) got = ng_divert(e, fd, count, got);
      for (int i = 0; i < got; i++) {
        int k = count + i;
        int len = (e->msgs[k].msg_hdr.msg_flags & MSG_TRUNC) ? -1 : (int)e->msgs[k].msg_len;
        fill_meta_from(e, k, fd, len, &e->addrs[k]);
      }
      count += got;
    }
    if (count == 0) return;
    deliver(e, count);
    if (e->closing) return;
  }
}

static void update_ref(engine_t *e) {
  if (!e->polling) return;
  if (e->open_count > 0) uv_ref((uv_handle_t *)&e->poll);
  else uv_unref((uv_handle_t *)&e->poll);
}

static void on_kick(uv_prepare_t *h) {
  engine_t *e = (engine_t *)h->data;
  if (!e->kick_needed) return;
  pthread_mutex_lock(&e->mu);
  e->kick_needed = 0;
  pthread_cond_signal(&e->work);
  pthread_mutex_unlock(&e->mu);
}

// init(arena: Buffer, slotSize: number, meta: Int32Array, onBatch: (count) => void): max batch
static napi_value js_init(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = engine_of(env);
  if (e == NULL) return throw_msg(env, "udp engine missing");
  if (e->cb_ref != NULL) return throw_msg(env, "udp engine already initialised on this thread");
  void *arena;
  size_t arena_len;
  CHECK(napi_get_buffer_info(env, argv[0], &arena, &arena_len));
  uint32_t slot;
  CHECK(napi_get_value_uint32(env, argv[1], &slot));
  napi_typedarray_type tt;
  size_t meta_len;
  void *meta;
  napi_value ab;
  size_t off;
  CHECK(napi_get_typedarray_info(env, argv[2], &tt, &meta_len, &meta, &ab, &off));
  if (tt != napi_int32_array || meta_len < MAX_BATCH * META_INTS || slot < 256 ||
      arena_len < (size_t)MAX_BATCH * slot)
    return throw_msg(env, "udp engine: arena or metadata too small");
  CHECK(napi_create_reference(env, argv[0], 1, &e->arena_ref));
  CHECK(napi_create_reference(env, argv[2], 1, &e->meta_ref));
  CHECK(napi_create_reference(env, argv[3], 1, &e->cb_ref));
  napi_value name;
  CHECK(napi_create_string_utf8(env, "rtprelay:udp", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, NULL, name, &e->async_ctx));
  e->arena = arena;
  e->slot_size = slot;
  e->meta = meta;
  uv_loop_t *loop;
  CHECK(napi_get_uv_event_loop(env, &loop));
  if (uv_poll_init(loop, &e->poll, e->epfd) != 0) return throw_msg(env, "udp engine: uv_poll_init failed");
  e->poll.data = e;
  if (uv_poll_start(&e->poll, UV_READABLE, on_readable) != 0) return throw_msg(env, "udp engine: uv_poll_start failed");
  e->polling = 1;
  e->handles_open = 1;
  if (uv_prepare_init(loop, &e->kick) == 0) {
    e->kick.data = e;
    uv_prepare_start(&e->kick, on_kick);
    uv_unref((uv_handle_t *)&e->kick);
    e->handles_open++;
    e->kick_open = 1;
  }
  update_ref(e);
  return num(env, MAX_BATCH);
}

static int parse_addr(napi_env env, napi_value v, uint32_t family, uint32_t port, struct sockaddr_storage *ss,
                      socklen_t *len) {
  char buf[64];
  size_t n;
  if (napi_get_value_string_latin1(env, v, buf, sizeof buf, &n) != napi_ok) return -EINVAL;
  memset(ss, 0, sizeof *ss);
  if (family == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, buf, &a->sin6_addr) != 1) return -EINVAL;
    *len = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, buf, &a->sin_addr) != 1) return -EINVAL;
    *len = sizeof *a;
  }
  return 0;
}

// ---- The socket thread ------------------------------------------------------------------------
// Creating, binding and closing a UDP socket costs the kernel about 10 us (socket 3, bind 1,
// epoll_ctl 1.3, close 4.5 us, measured here in C), and a call opens and closes four: under
// ngload's offer+answer+delete that was a fifth of the JavaScript thread's time. This thread does
// it beside the JavaScript thread: close(fd) is queued and returns at once, and prebind() binds
// the ports the port pool will hand out next (media/relay.ts asks for a window ahead of the pool's
// FIFO head), so open() of such a port takes a ready descriptor. A socket the thread has not bound
// yet is bound synchronously, as before, and a bind that meets EADDRINUSE while closes are still
// queued waits for them (the port may be one this thread is closing) and tries once more.
// Closes run before binds, so a port released and then asked for again is free by then.

static int same_addr(const prebind_t *p, uint32_t family, const struct sockaddr_storage *ss, uint32_t rcvbuf) {
  if (p->family != family || p->rcvbuf != rcvbuf) return 0;
  if (family == 6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&p->ss, *b = (const struct sockaddr_in6 *)ss;
    return a->sin6_port == b->sin6_port && memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
  }
  const struct sockaddr_in *a = (const struct sockaddr_in *)&p->ss, *b = (const struct sockaddr_in *)ss;
  return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

// A non-blocking socket bound to ss and watched by the engine's epoll set, or -errno.
static int make_socket(int epfd, uint32_t family, const struct sockaddr_storage *ss, socklen_t sl, uint32_t rcvbuf) {
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  if (family == 6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (rcvbuf > 0) {
    int v = (int)rcvbuf;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
  }
  if (bind(fd, (const struct sockaddr *)ss, sl) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data = {.fd = fd}};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

dgram_t *dgram_new(int fd, const struct sockaddr_storage *addr, socklen_t sl, const void *data, size_t len) {
  dgram_t *d = malloc(sizeof(dgram_t) + len);
  if (d == NULL) return NULL;
  d->next = NULL;
  d->fd = fd;
  d->routed = 0;
  d->sl = sl;
  d->addr = *addr;
  d->len = len;
  memcpy(d->data, data, len);
  return d;
}

void dgram_free_all(dgram_t *d) {
  while (d != NULL) {
    dgram_t *next = d->next;
    free(d);
    d = next;
  }
}

// Sends and frees a queue of datagrams; how many the kernel refused (a full socket buffer: dropped,
// as a UDP datagram may be).
static uint64_t send_all(dgram_t *q) {
  uint64_t failed = 0;
  for (dgram_t *d = q; d != NULL; d = d->next) {
    ssize_t r = d->routed ? ng_sendto_checked(d->fd, d->data, d->len, (struct sockaddr *)&d->addr, d->sl)
                          : sendto(d->fd, d->data, d->len, MSG_DONTWAIT, (struct sockaddr *)&d->addr, d->sl);
    if (r < 0) failed++;
  }
  dgram_free_all(q);
  return failed;
}

static void *bg_main(void *arg) {
  engine_t *e = (engine_t *)arg;
  int *mine = NULL, mine_cap = 0;
  pthread_mutex_lock(&e->mu);
  if (e->io_name[0] != '\0') prctl(PR_SET_NAME, e->io_name, 0, 0, 0);
  for (;;) {
    // Sends before closes: a datagram queued for a socket went before that socket's close did.
    if (e->send_head != NULL) {
      dgram_t *q = e->send_head;
      e->send_head = e->send_tail = NULL;
      e->send_n = 0;
      e->send_bytes = 0;
      pthread_mutex_unlock(&e->mu);
      uint64_t failed = send_all(q);
      pthread_mutex_lock(&e->mu);
      e->send_failed += failed;
      continue;
    }
    if (e->close_n > 0) {
      // Take the whole queue (swap arrays) and close outside the lock.
      int *q = e->closeq, n = e->close_n, cap = e->close_cap;
      e->closeq = mine;
      e->close_cap = mine_cap;
      e->close_n = 0;
      e->closes_busy += n;
      pthread_mutex_unlock(&e->mu);
      for (int i = 0; i < n; i++) close(q[i]);
      pthread_mutex_lock(&e->mu);
      mine = q;
      mine_cap = cap;
      e->closes_busy -= n;
      pthread_cond_broadcast(&e->done);
      continue;
    }
    if (e->pre_queued > 0 && !e->bg_stop) {
      prebind_t *p = NULL;
      for (int i = 0; i < PREBIND_MAX; i++)
        if (e->pre[i].state == PB_QUEUED && (p == NULL || e->pre[i].seq < p->seq)) p = &e->pre[i];
      if (p != NULL) {
        p->state = PB_BUSY; // the JS thread leaves a busy entry alone (open waits for it)
        e->pre_queued--;
        pthread_mutex_unlock(&e->mu);
        int fd = make_socket(e->epfd, p->family, &p->ss, p->sl, p->rcvbuf);
        pthread_mutex_lock(&e->mu);
        p->fd = fd;
        p->state = PB_READY;
        pthread_cond_broadcast(&e->done);
        continue;
      }
      e->pre_queued = 0;
    }
    if (e->bg_stop) break;
    pthread_cond_wait(&e->work, &e->mu);
  }
  pthread_mutex_unlock(&e->mu);
  free(mine);
  return NULL;
}

// threadName(name): names the calling thread (what top -H, ps -L and /proc/PID/task/TID/comm
// show; the kernel keeps 15 bytes) and this thread's socket thread "<name>-io". Lets an operator
// and the benchmark tell the media workers, call threads and socket threads apart.
static napi_value js_thread_name(napi_env env, napi_callback_info info) {
  engine_t *e = NULL;
  napi_get_instance_data(env, (void **)&e);
  size_t argc = 1;
  napi_value argv[1];
  char name[16];
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "threadName(name: string)");
    return NULL;
  }
  prctl(PR_SET_NAME, name, 0, 0, 0);
  pthread_mutex_lock(&e->mu);
  snprintf(e->io_name, sizeof e->io_name, "%.12s-io", name);
  if (e->bg_started) pthread_setname_np(e->bg, e->io_name);
  pthread_mutex_unlock(&e->mu);
  return NULL;
}

static void bg_ensure(engine_t *e) {
  if (e->bg_started || e->closing || !e->kick_open) return;
  if (pthread_create(&e->bg, NULL, bg_main, e) == 0) e->bg_started = 1;
}

// Stops the socket thread after its queued closes; closes the sockets bound for nobody.
static void bg_stop(engine_t *e) {
  if (e->bg_started) {
    pthread_mutex_lock(&e->mu);
    e->bg_stop = 1;
    pthread_cond_signal(&e->work);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->bg, NULL);
    e->bg_started = 0;
  }
  for (int i = 0; i < PREBIND_MAX; i++) {
    if (e->pre[i].state == PB_READY && e->pre[i].fd >= 0) close(e->pre[i].fd);
    e->pre[i].state = PB_FREE;
  }
  e->send_failed += send_all(e->send_head);
  e->send_head = e->send_tail = NULL;
  e->send_n = 0;
  e->send_bytes = 0;
  for (int i = 0; i < e->close_n; i++) close(e->closeq[i]);
  e->close_n = 0;
  free(e->closeq);
  e->closeq = NULL;
  e->close_cap = 0;
}

// Queues fd for the socket thread (the lock is held); closes it here when the queue cannot grow.
static void queue_close_locked(engine_t *e, int fd) {
  if (e->close_n == e->close_cap) {
    int cap = e->close_cap ? e->close_cap * 2 : 256;
    int *n = realloc(e->closeq, (size_t)cap * sizeof(int));
    if (n == NULL) {
      close(fd);
      return;
    }
    e->closeq = n;
    e->close_cap = cap;
  }
  e->closeq[e->close_n++] = fd;
  e->kick_needed = 1;
}

// The arguments of open() and prebind(): (family: 4 | 6, address: string, port: number,
// rcvbuf?: number). NULL with `a` filled in; else what the caller returns at once: NULL with
// a->e NULL when N-API failed (an exception is pending), or -errno for an address that does not parse.
typedef struct {
  engine_t *e;
  uint32_t family, rcvbuf;
  struct sockaddr_storage ss;
  socklen_t sl;
} socket_args_t;

static napi_value socket_args(napi_env env, napi_callback_info info, socket_args_t *a) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t port;
  engine_t *e = engine_of(env);
  a->e = NULL;
  a->rcvbuf = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (e == NULL || !e->polling) return throw_msg(env, "udp engine not initialised");
  if (napi_get_value_uint32(env, argv[0], &a->family) != napi_ok) return NULL;
  if (napi_get_value_uint32(env, argv[2], &port) != napi_ok) return NULL;
  if (argc >= 4) napi_get_value_uint32(env, argv[3], &a->rcvbuf);
  a->e = e;
  int rc = parse_addr(env, argv[1], a->family, port, &a->ss, &a->sl);
  return rc < 0 ? num(env, rc) : NULL;
}

// prebind(family: 4 | 6, address: string, port: number, rcvbuf?: number): 1 queued, 0 already
// there (or no socket thread), or -errno. The oldest ready socket nobody took makes room.
static napi_value js_prebind(napi_env env, napi_callback_info info) {
  socket_args_t a;
  napi_value early = socket_args(env, info, &a);
  if (early != NULL || a.e == NULL) return early;
  engine_t *e = a.e;
  bg_ensure(e);
  if (!e->bg_started) return num(env, 0);
  pthread_mutex_lock(&e->mu);
  prebind_t *slot = NULL, *oldest = NULL;
  for (int i = 0; i < PREBIND_MAX; i++) {
    prebind_t *p = &e->pre[i];
    if (p->state == PB_FREE) {
      if (slot == NULL) slot = p;
      continue;
    }
    if (same_addr(p, a.family, &a.ss, a.rcvbuf)) {
      pthread_mutex_unlock(&e->mu);
      return num(env, 0);
    }
    if (p->state == PB_READY && (oldest == NULL || p->seq < oldest->seq)) oldest = p;
  }
  if (slot == NULL && oldest != NULL) {
    if (oldest->fd >= 0) queue_close_locked(e, oldest->fd);
    oldest->state = PB_FREE;
    slot = oldest;
  }
  if (slot == NULL) {
    pthread_mutex_unlock(&e->mu);
    return num(env, -ENOSPC);
  }
  slot->state = PB_QUEUED;
  slot->fd = -1;
  slot->family = a.family;
  slot->rcvbuf = a.rcvbuf;
  slot->ss = a.ss;
  slot->sl = a.sl;
  slot->seq = ++e->pre_seq;
  e->pre_queued++;
  e->kick_needed = 1;
  pthread_mutex_unlock(&e->mu);
  return num(env, 1);
}

// The socket the socket thread bound for this address, if any: fd, or -1 (bind it here). A bind
// in progress is waited for; a queued one is cancelled.
static int take_prebound(engine_t *e, uint32_t family, const struct sockaddr_storage *ss, uint32_t rcvbuf) {
  int fd = -1;
  pthread_mutex_lock(&e->mu);
  for (int i = 0; i < PREBIND_MAX; i++) {
    prebind_t *p = &e->pre[i];
    if (p->state == PB_FREE || !same_addr(p, family, ss, rcvbuf)) continue;
    if (p->state == PB_QUEUED) {
      e->pre_queued--;
      p->state = PB_FREE;
      break;
    }
    while (p->state == PB_BUSY) pthread_cond_wait(&e->done, &e->mu);
    if (p->state == PB_READY) {
      fd = p->fd;
      p->state = PB_FREE;
    }
    break;
  }
  pthread_mutex_unlock(&e->mu);
  return fd;
}

// open(family: 4 | 6, address: string, port: number, rcvbuf?: number): fd, or -errno
static napi_value js_open(napi_env env, napi_callback_info info) {
  socket_args_t a;
  napi_value early = socket_args(env, info, &a);
  if (early != NULL || a.e == NULL) return early;
  engine_t *e = a.e;
  int fd = e->bg_started ? take_prebound(e, a.family, &a.ss, a.rcvbuf) : -1;
  if (fd < 0) fd = make_socket(e->epfd, a.family, &a.ss, a.sl, a.rcvbuf);
  if ((fd == -EADDRINUSE || fd == -EMFILE || fd == -ENFILE) && e->bg_started) {
    // Perhaps a socket of ours on its way to being closed (the port, or a descriptor the limit
    // lets us have: parked sockets closed to make room, see park below): wait for the closes
    // queued so far.
    pthread_mutex_lock(&e->mu);
    int pending = e->close_n + e->closes_busy;
    pthread_cond_signal(&e->work);
    while (e->close_n + e->closes_busy > 0) pthread_cond_wait(&e->done, &e->mu);
    pthread_mutex_unlock(&e->mu);
    if (pending > 0) fd = make_socket(e->epfd, a.family, &a.ss, a.sl, a.rcvbuf);
  }
  if (fd < 0) return num(env, fd);
  owned_set(e, fd, 1);
  e->open_count++;
  update_ref(e);
  return num(env, fd);
}

// close(fd): 0, or -errno. The socket thread closes it (the fd number stays taken until then).
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  engine_t *e = engine_of(env);
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  if (e == NULL || fd < 0 || fd >= e->owned_cap || !e->owned[fd]) return num(env, -EBADF);
  if (e->owned[fd] == 2) e->open_count++; // parked: not counted as open (park), uncounted below
  // No call thread sends on it any more (ng-route.c), before the number can be reused.
  if (e->ng_router) ng_forget_fd(fd);
  owned_set(e, fd, 0);
  e->open_count--;
  update_ref(e);
  bg_ensure(e);
  if (e->bg_started) {
    pthread_mutex_lock(&e->mu);
    queue_close_locked(e, fd);
    pthread_mutex_unlock(&e->mu);
  } else {
    close(fd);
  }
  return num(env, 0);
}

// ---- Parked sockets --------------------------------------------------------------------------
// media/udp.ts keeps the socket of a port an ended call released bound for a while ("parked"), so
// a call given that port again takes it without socket(), bind() and close(): under load that was
// the socket thread's whole work, about a core's fifth at ngload's rate. A parked socket stays in
// the epoll set (its stray datagrams are read and dropped in JavaScript) but does not keep the
// event loop alive.

// The one descriptor argument of park and unpark: 0 with *e and *fd set, or -1 (N-API failed).
static int fd_arg(napi_env env, napi_callback_info info, engine_t **e, int32_t *fd) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return -1;
  if (napi_get_value_int32(env, argv[0], fd) != napi_ok) return -1;
  *e = engine_of(env);
  return 0;
}

// Moves fd between open (1) and parked (2): 1, or 0 when it is not in state `from`.
static int move_fd(engine_t *e, int32_t fd, uint8_t from, uint8_t to) {
  if (e == NULL || fd < 0 || fd >= e->owned_cap || e->owned[fd] != from) return 0;
  e->owned[fd] = to;
  e->open_count += to == 1 ? 1 : -1;
  update_ref(e);
  return 1;
}

// park(fd): 0, or -EBADF when fd is not an open socket of this thread.
static napi_value js_park(napi_env env, napi_callback_info info) {
  engine_t *e;
  int32_t fd;
  if (fd_arg(env, info, &e, &fd) != 0) return NULL;
  return num(env, move_fd(e, fd, 1, 2) ? 0 : -EBADF);
}

// unpark(fd): the datagrams that waited in its receive queue, now discarded (the next call must
// not hear the last one's stragglers), or -EBADF when fd is not parked.
static napi_value js_unpark(napi_env env, napi_callback_info info) {
  engine_t *e;
  int32_t fd;
  if (fd_arg(env, info, &e, &fd) != 0) return NULL;
  if (!move_fd(e, fd, 2, 1)) return num(env, -EBADF);
  // Bounded: a receive queue holds at most a few thousand datagrams; a flood that outpaces this
  // leaves the rest to the relay's source checks, as for any open port.
  int n = 0;
  char b[1];
  while (n < 65536 && recv(fd, b, sizeof b, MSG_DONTWAIT | MSG_TRUNC) >= 0) n++;
  return num(env, n);
}

// localPort(fd): the bound port (port 0 asks the kernel for one), or -errno
static napi_value js_local_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  CHECK(napi_get_value_int32(env, argv[0], &fd));
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return num(env, -errno);
  return num(env, ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port));
}

// The arguments of send4/send6 (udp.c) and ngSend4/ngSend6 (ng-route.c): (fd, buf, port,
// address: number for IPv4, string for IPv6). NULL with `a` filled in; else what the caller
// returns at once: NULL with a->ok 0 when N-API failed (an exception is pending), or -EINVAL.
napi_value send_args(napi_env env, napi_callback_info info, uint32_t family, send_args_t *a) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t port;
  a->ok = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  if (napi_get_value_int32(env, argv[0], &a->fd) != napi_ok) return NULL;
  if (napi_get_buffer_info(env, argv[1], &a->data, &a->len) != napi_ok) return NULL;
  if (napi_get_value_uint32(env, argv[2], &port) != napi_ok) return NULL;
  if (family == 4) {
    uint32_t ip;
    if (napi_get_value_uint32(env, argv[3], &ip) != napi_ok) return NULL;
    struct sockaddr_in *s = (struct sockaddr_in *)&a->ss;
    memset(s, 0, sizeof *s);
    s->sin_family = AF_INET;
    s->sin_port = htons((uint16_t)port);
    s->sin_addr.s_addr = htonl(ip);
    a->sl = sizeof *s;
  } else {
    int rc = parse_addr(env, argv[3], 6, port, &a->ss, &a->sl);
    if (rc < 0) return num(env, rc);
  }
  a->ok = 1;
  return NULL;
}

static napi_value send_family(napi_env env, napi_callback_info info, uint32_t family) {
  send_args_t a;
  napi_value early = send_args(env, info, family, &a);
  if (early != NULL || !a.ok) return early;
  ssize_t r = sendto(a.fd, a.data, a.len, MSG_DONTWAIT, (struct sockaddr *)&a.ss, a.sl);
  return num(env, r < 0 ? -errno : (double)r);
}

// send4(fd, buf, port, address: number): bytes sent, or -errno. The kernel has copied `buf` on return.
static napi_value js_send4(napi_env env, napi_callback_info info) { return send_family(env, info, 4); }

// send6(fd, buf, port, address: string): bytes sent, or -errno
static napi_value js_send6(napi_env env, napi_callback_info info) { return send_family(env, info, 6); }

// ---- Sends on the socket thread ----------------------------------------------------------------
// An NG reply's sendto() is mostly the kernel delivering it to the proxy on loopback and waking
// it (~6 us, a tenth of a JavaScript thread's time per command under ngload). sendSoon copies the
// datagram into a queue that the socket thread sends from, woken once per event-loop turn like
// its closes; the JavaScript thread goes on with the next command. Bounded: past SEND_QUEUE_MAX
// datagrams or SEND_QUEUE_BYTES the caller gets -ENOBUFS and sends itself.
#define SEND_QUEUE_MAX 4096
#define SEND_QUEUE_BYTES (16 * 1024 * 1024)

static napi_value send_soon(napi_env env, napi_callback_info info, uint32_t family, int routed) {
  send_args_t a;
  napi_value early = send_args(env, info, family, &a);
  if (early != NULL || !a.ok) return early;
  engine_t *e = engine_of(env);
  if (e == NULL) return throw_msg(env, "udp engine missing");
  bg_ensure(e);
  if (!e->bg_started || e->closing) return num(env, -ENOBUFS);
  dgram_t *it = dgram_new(a.fd, &a.ss, a.sl, a.data, a.len);
  if (it == NULL) return num(env, -ENOBUFS);
  it->routed = routed;
  pthread_mutex_lock(&e->mu);
  if (e->send_n >= SEND_QUEUE_MAX || e->send_bytes + a.len > SEND_QUEUE_BYTES) {
    pthread_mutex_unlock(&e->mu);
    free(it);
    return num(env, -ENOBUFS);
  }
  if (e->send_tail != NULL) e->send_tail->next = it;
  else e->send_head = it;
  e->send_tail = it;
  e->send_n++;
  e->send_bytes += a.len;
  e->kick_needed = 1;
  pthread_mutex_unlock(&e->mu);
  return num(env, (double)a.len);
}

// sendSoon4(fd, buf, port, address: number) / sendSoon6(fd, buf, port, address: string): bytes
// queued (the bytes are copied: `buf` may be reused at once), or -errno (-ENOBUFS: queue full or no
// socket thread; send it yourself). ngSendSoon4/6: the same on another thread's routed NG socket.
static napi_value js_send_soon4(napi_env env, napi_callback_info info) { return send_soon(env, info, 4, 0); }
static napi_value js_send_soon6(napi_env env, napi_callback_info info) { return send_soon(env, info, 6, 0); }
static napi_value js_ng_send_soon4(napi_env env, napi_callback_info info) { return send_soon(env, info, 4, 1); }
static napi_value js_ng_send_soon6(napi_env env, napi_callback_info info) { return send_soon(env, info, 6, 1); }

// sendSoonFailed(): datagrams queued by sendSoon that the kernel refused (dropped).
static napi_value js_send_soon_failed(napi_env env, napi_callback_info info) {
  engine_t *e = engine_of(env);
  if (e == NULL) return num(env, 0);
  pthread_mutex_lock(&e->mu);
  double n = (double)e->send_failed;
  pthread_mutex_unlock(&e->mu);
  return num(env, n);
}

void on_handle_closed(uv_handle_t *h) {
  engine_t *e = (engine_t *)h->data;
  if (--e->handles_open > 0) return;
  napi_async_cleanup_hook_handle hook = e->cleanup;
  free(e->owned);
  free(e);
  napi_remove_async_cleanup_hook(hook);
}

// The thread's environment is going away (process exit or a worker ending): close every socket
// this thread opened, then the poll handle and the epoll set.
static void on_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  engine_t *e = (engine_t *)arg;
  e->closing = 1;
  ng_engine_cleanup(e); // no more NG commands queued for this thread; its async handle closes
  bg_stop(e);
  for (int fd = 0; fd < e->owned_cap; fd++)
    if (e->owned[fd]) close(fd);
  e->owned_cap = 0;
  if (e->async_ctx != NULL) napi_async_destroy(e->env, e->async_ctx);
  e->async_ctx = NULL;
  if (e->polling) {
    uv_poll_stop(&e->poll);
    e->polling = 0;
    close(e->epfd);
    if (e->kick_open) {
      uv_prepare_stop(&e->kick);
      uv_close((uv_handle_t *)&e->kick, on_handle_closed);
    }
    uv_close((uv_handle_t *)&e->poll, on_handle_closed);
  } else {
    close(e->epfd);
    free(e->owned);
    free(e);
    napi_remove_async_cleanup_hook(handle);
  }
}

/*
 * releasePages(buf): gives the whole pages inside `buf` back to the kernel (MADV_DONTNEED); they
 * read as zeros when touched again. For memory kept allocated but unused for a while (the NG
 * reply cache's reserve), which is then not resident. Returns the bytes released, or -errno.
 */
static napi_value js_release_pages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  size_t len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "releasePages(buf: Buffer)");
    return NULL;
  }
  long page = sysconf(_SC_PAGESIZE);
  uintptr_t from = ((uintptr_t)data + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
  uintptr_t to = ((uintptr_t)data + len) & ~((uintptr_t)page - 1);
  double r = 0;
  if (to > from) r = madvise((void *)from, to - from, MADV_DONTNEED) == 0 ? (double)(to - from) : -errno;
  napi_value out;
  napi_create_double(env, r, &out);
  return out;
}

NAPI_MODULE_INIT() {
  engine_t *e = calloc(1, sizeof(engine_t));
  if (e == NULL) return NULL;
  e->env = env;
  e->ng_index = -1;
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->work, NULL);
  pthread_cond_init(&e->done, NULL);
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (e->epfd < 0) {
    free(e);
    napi_throw_error(env, NULL, "udp engine: epoll_create1 failed");
    return NULL;
  }
  if (napi_set_instance_data(env, e, NULL, NULL) != napi_ok) return NULL;
  napi_add_async_cleanup_hook(env, on_cleanup, e, &e->cleanup);
  napi_property_descriptor props[] = {
      {"init", NULL, js_init, NULL, NULL, NULL, napi_default, NULL},
      {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"prebind", NULL, js_prebind, NULL, NULL, NULL, napi_default, NULL},
      {"park", NULL, js_park, NULL, NULL, NULL, napi_default, NULL},
      {"unpark", NULL, js_unpark, NULL, NULL, NULL, napi_default, NULL},
      {"localPort", NULL, js_local_port, NULL, NULL, NULL, napi_default, NULL},
      {"send4", NULL, js_send4, NULL, NULL, NULL, napi_default, NULL},
      {"send6", NULL, js_send6, NULL, NULL, NULL, napi_default, NULL},
      {"sendSoon4", NULL, js_send_soon4, NULL, NULL, NULL, napi_default, NULL},
      {"sendSoon6", NULL, js_send_soon6, NULL, NULL, NULL, napi_default, NULL},
      {"ngSendSoon4", NULL, js_ng_send_soon4, NULL, NULL, NULL, napi_default, NULL},
      {"ngSendSoon6", NULL, js_ng_send_soon6, NULL, NULL, NULL, napi_default, NULL},
      {"sendSoonFailed", NULL, js_send_soon_failed, NULL, NULL, NULL, napi_default, NULL},
      {"threadName", NULL, js_thread_name, NULL, NULL, NULL, napi_default, NULL},
      {"releasePages", NULL, js_release_pages, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  if (ng_route_init(env, exports) == NULL) return NULL;
  return srtp_init(env, exports);
}
