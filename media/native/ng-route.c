// NG commands to call threads without the main thread's JavaScript (--call-threads).
//
// With call threads, every NG command but ping/list/statistics is answered by the thread that
// holds its call (by a hash of the call-id). Routing them in JavaScript cost the main thread a
// bencode decode and two postMessage hops per command (~33 us of its CPU, and the latency of
// waking two event loops); under ngload the call threads then sat half idle. Here, the engine
// that reads an NG socket (the main thread's) looks at each datagram as it comes out of
// recvmmsg(): a well-formed bencoded command with a plain ASCII `call-id` goes straight to its
// thread's queue, which wakes that thread's loop (uv_async); the thread answers on the same
// socket itself (ngSend4/ngSend6). Anything else (JSON, aliases of the call-id key, no call-id,
// the instance-wide commands, a thread that is not serving) stays with the main thread, whose
// JavaScript routes it as before. Both hash the call-id with the same FNV-1a, so a call's
// commands meet in one thread whichever path they take (daemon/call-threads.ts's threadOf).
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

#define NG_TARGETS 64
#define NG_FDS 16
#define NG_QUEUE_MAX 4096
#define MAX_COOKIE 256
#define MAX_DEPTH 32

typedef struct {
  engine_t *e; // the serving thread's engine; NULL: none (its commands stay with the main thread)
  dgram_t *head, *tail;
  int n;
} ng_target_t;

// Queues and targets. Taken by the main thread per routed datagram and by a call thread per wake.
static pthread_mutex_t ng_mu = PTHREAD_MUTEX_INITIALIZER;
static ng_target_t ng_targets[NG_TARGETS];
// The routed NG sockets: written by the thread that routes (ngRoute, close) under the write lock;
// call threads send under the read lock, so no reply goes out on a number closed and reused.
static pthread_rwlock_t ng_rw = PTHREAD_RWLOCK_INITIALIZER;
static int ng_fds[NG_FDS];
static int ng_nfds;
static int ng_count; // threads the call-ids hash over
static uint64_t ng_routed_total, ng_dropped_total;

// Read by the routing thread (the only writer) freely, by call threads under the read lock.
int ng_is_routed(int fd) {
  for (int i = 0; i < ng_nfds; i++)
    if (ng_fds[i] == fd) return 1;
  return 0;
}

// ---- the command's thread, from the datagram -------------------------------------------------

// End of the bencoded value at p[i], or -1 (malformed, cut, or nested deeper than MAX_DEPTH).
static long bskip(const uint8_t *p, long n, long i, int depth) {
  if (i >= n || depth > MAX_DEPTH) return -1;
  uint8_t c = p[i];
  if (c >= '0' && c <= '9') {
    long len = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
      len = len * 10 + (p[i] - '0');
      if (len > n) return -1;
      i++;
    }
    if (i >= n || p[i] != ':') return -1;
    i++;
    return len > n - i ? -1 : i + len;
  }
  if (c == 'i') {
    i++;
    if (i < n && p[i] == '-') i++;
    long s = i;
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    return (i == s || i >= n || p[i] != 'e') ? -1 : i + 1;
  }
  if (c == 'l' || c == 'd') {
    i++;
    while (i < n && p[i] != 'e') {
      if (c == 'd') {
        if (p[i] < '0' || p[i] > '9') return -1; // keys are strings
        i = bskip(p, n, i, depth + 1);
        if (i < 0) return -1;
      }
      i = bskip(p, n, i, depth + 1);
      if (i < 0) return -1;
    }
    return i >= n ? -1 : i + 1;
  }
  return -1;
}

// A string value at p[i]: its bytes in [*s, *s + *len), and the end; -1 if not a string.
static long bstring(const uint8_t *p, long n, long i, long *s, long *len) {
  long end = bskip(p, n, i, 0);
  if (end < 0 || p[i] < '0' || p[i] > '9') return -1;
  long colon = i;
  while (p[colon] != ':') colon++;
  *s = colon + 1;
  *len = end - *s;
  return end;
}

static int is(const uint8_t *p, long len, const char *lit) {
  return (long)strlen(lit) == len && memcmp(p, lit, (size_t)len) == 0;
}

// A key the JavaScript side reads as `call-id` (params.ts: any case, ' ' or '_' for '-').
static int call_id_alias(const uint8_t *p, long len) {
  static const char want[] = "call-id";
  if (len != 7) return 0;
  for (int j = 0; j < 7; j++) {
    uint8_t c = p[j];
    if (c >= 'A' && c <= 'Z') c = (uint8_t)(c + 32);
    if (j == 4 ? (c != '-' && c != ' ' && c != '_') : c != (uint8_t)want[j]) return 0;
  }
  return 1;
}

// The call thread for this NG datagram (cookie SP bencoded-dict), or -1: the main thread decides.
static int ng_target_of(const uint8_t *p, long n, int count) {
  long sp = 0;
  while (sp < n && sp <= MAX_COOKIE && p[sp] != ' ') sp++;
  if (sp == 0 || sp >= n || p[sp] != ' ') return -1;
  long i = sp + 1;
  if (i >= n || p[i] != 'd') return -1; // JSON, or not a dictionary: JavaScript answers it
  i++;
  long cmd = -1, cmd_len = 0, cid = -1, cid_len = 0;
  while (i < n && p[i] != 'e') {
    long ks, klen, vs, vlen;
    i = bstring(p, n, i, &ks, &klen);
    if (i < 0) return -1;
    if (is(p + ks, klen, "command")) {
      if (cmd >= 0) return -1;
      i = bstring(p, n, i, &vs, &vlen);
      if (i < 0) return -1;
      cmd = vs;
      cmd_len = vlen;
      continue;
    }
    if (call_id_alias(p + ks, klen)) {
      if (cid >= 0 || !is(p + ks, klen, "call-id")) return -1;
      i = bstring(p, n, i, &vs, &vlen);
      if (i < 0) return -1;
      cid = vs;
      cid_len = vlen;
      continue;
    }
    i = bskip(p, n, i, 1);
    if (i < 0) return -1;
  }
  if (i + 1 != n) return -1; // cut, or bytes after the dictionary
  if (cmd < 0 || cid < 0) return -1;
  if (is(p + cmd, cmd_len, "ping") || is(p + cmd, cmd_len, "list") || is(p + cmd, cmd_len, "statistics")) return -1;
  // FNV-1a, as threadOf() over the call-id's UTF-16 units: the same for printable ASCII, which is
  // all a SIP Call-ID holds; anything else is left to JavaScript.
  uint32_t h = 0x811c9dc5u;
  for (long k = 0; k < cid_len; k++) {
    uint8_t c = p[cid + k];
    if (c < 0x20 || c > 0x7e) return -1;
    h ^= c;
    h *= 0x01000193u;
  }
  return (int)(h % (uint32_t)count);
}

// ---- the routing thread: hand datagrams over --------------------------------------------------

// Queues datagram k of the batch for thread t: 1 taken (queued, or dropped because that thread is
// that far behind: the proxy retransmits), 0 the thread is not serving (the main thread keeps it).
static int hand_over(engine_t *e, int t, int fd, int k, int len) {
  dgram_t *it = dgram_new(fd, &e->addrs[k], e->msgs[k].msg_hdr.msg_namelen, e->arena + (size_t)k * e->slot_size, (size_t)len);
  if (it == NULL) return 0;
  pthread_mutex_lock(&ng_mu);
  ng_target_t *tg = &ng_targets[t];
  if (tg->e == NULL) {
    pthread_mutex_unlock(&ng_mu);
    free(it);
    return 0;
  }
  if (tg->n >= NG_QUEUE_MAX) {
    ng_dropped_total++;
    pthread_mutex_unlock(&ng_mu);
    free(it);
    return 1;
  }
  if (tg->tail) tg->tail->next = it;
  else tg->head = it;
  tg->tail = it;
  tg->n++;
  ng_routed_total++;
  uv_async_send(&tg->e->ng_async); // coalesced by libuv while the thread has not run it yet
  pthread_mutex_unlock(&ng_mu);
  return 1;
}

// Datagrams [first, first + got) of the batch came from routed NG socket fd: those for a call
// thread go to it, the rest move down to close the gaps. Returns how many stay.
int ng_divert(engine_t *e, int fd, int first, int got) {
  int keep = first;
  for (int k = first; k < first + got; k++) {
    int truncated = (e->msgs[k].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    int len = (int)e->msgs[k].msg_len;
    if (!truncated && ng_count > 0) {
      int t = ng_target_of(e->arena + (size_t)k * e->slot_size, len, ng_count);
      if (t >= 0 && hand_over(e, t, fd, k, len)) continue;
    }
    if (keep != k) {
      memmove(e->arena + (size_t)keep * e->slot_size, e->arena + (size_t)k * e->slot_size, (size_t)len);
      e->addrs[keep] = e->addrs[k];
      e->msgs[keep].msg_len = e->msgs[k].msg_len;
      e->msgs[keep].msg_hdr.msg_flags = e->msgs[k].msg_hdr.msg_flags;
    }
    keep++;
  }
  return keep - first;
}

// ---- a call thread: take its queue ----------------------------------------------------------

static void on_ng_async(uv_async_t *h) {
  engine_t *e = (engine_t *)h->data;
  if (e->closing || e->ng_index < 0) return;
  pthread_mutex_lock(&ng_mu);
  ng_target_t *tg = &ng_targets[e->ng_index];
  dgram_t *it = tg->head;
  tg->head = tg->tail = NULL;
  tg->n = 0;
  pthread_mutex_unlock(&ng_mu);
  while (it && !e->closing) {
    int count = 0;
    // Commands read before their socket was closed are dropped: its number may be a new socket's.
    pthread_rwlock_rdlock(&ng_rw);
    while (it && count < MAX_BATCH) {
      dgram_t *next = it->next;
      if (ng_is_routed(it->fd)) {
        int len = it->len <= e->slot_size ? (int)it->len : -1; // slots are 64 KiB: never cut
        if (len > 0) memcpy(e->arena + (size_t)count * e->slot_size, it->data, (size_t)len);
        fill_meta_from(e, count, it->fd, len, &it->addr);
        count++;
      }
      free(it); // the arena holds the bytes now
      it = next;
    }
    pthread_rwlock_unlock(&ng_rw);
    if (count > 0) deliver(e, count);
  }
  dgram_free_all(it);
}

// Called when a thread's engine goes away: its queue is dropped, and its commands stay with the
// main thread (which answers that the thread is down, or routes to its successor).
void ng_engine_cleanup(engine_t *e) {
  if (!e->ng_async_open) return;
  pthread_mutex_lock(&ng_mu);
  dgram_t *drop = NULL;
  if (e->ng_index >= 0 && ng_targets[e->ng_index].e == e) {
    drop = ng_targets[e->ng_index].head;
    ng_targets[e->ng_index] = (ng_target_t){0};
  }
  pthread_mutex_unlock(&ng_mu);
  dgram_free_all(drop);
  e->ng_index = -1;
  e->ng_async_open = 0;
  uv_close((uv_handle_t *)&e->ng_async, on_handle_closed);
}

void ng_forget_fd(int fd) {
  pthread_rwlock_wrlock(&ng_rw);
  for (int i = 0; i < ng_nfds; i++)
    if (ng_fds[i] == fd) {
      ng_fds[i] = ng_fds[--ng_nfds];
      break;
    }
  pthread_rwlock_unlock(&ng_rw);
}

// ---- JavaScript API ---------------------------------------------------------------------------

// ngRoute(fd, threads): commands read from fd (an NG socket this thread opened) go to call
// threads from now on, hashed over `threads`. 0, or -errno.
static napi_value js_ng_route(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  int32_t fd;
  uint32_t count;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_uint32(env, argv[1], &count) != napi_ok) return NULL;
  engine_t *e = engine_of(env);
  if (e == NULL || !e->polling) return throw_msg(env, "udp engine not initialised");
  if (count == 0 || count > NG_TARGETS || fd < 0) return num(env, -EINVAL);
  pthread_rwlock_wrlock(&ng_rw);
  if (ng_count != 0 && ng_count != (int)count) {
    pthread_rwlock_unlock(&ng_rw);
    return num(env, -EINVAL);
  }
  int have = 0;
  for (int i = 0; i < ng_nfds; i++) have |= ng_fds[i] == fd;
  if (!have) {
    if (ng_nfds == NG_FDS) {
      pthread_rwlock_unlock(&ng_rw);
      return num(env, -ENOSPC);
    }
    ng_fds[ng_nfds++] = fd;
  }
  ng_count = (int)count;
  e->ng_router = 1;
  pthread_rwlock_unlock(&ng_rw);
  return num(env, 0);
}

// ngServe(index): this thread is call thread `index`: the commands routed to it come through its
// onBatch like any datagram (from the NG socket's descriptor). 0, or -errno.
static napi_value js_ng_serve(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  uint32_t index;
  if (napi_get_value_uint32(env, argv[0], &index) != napi_ok) return NULL;
  engine_t *e = engine_of(env);
  if (e == NULL || !e->polling) return throw_msg(env, "udp engine not initialised");
  if (index >= NG_TARGETS) return num(env, -EINVAL);
  if (e->ng_async_open) return num(env, e->ng_index == (int)index ? 0 : -EINVAL);
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) return NULL;
  pthread_mutex_lock(&ng_mu);
  if (ng_targets[index].e != NULL) {
    pthread_mutex_unlock(&ng_mu);
    return num(env, -EBUSY);
  }
  if (uv_async_init(loop, &e->ng_async, on_ng_async) != 0) {
    pthread_mutex_unlock(&ng_mu);
    return num(env, -ENOMEM);
  }
  e->ng_async.data = e;
  uv_unref((uv_handle_t *)&e->ng_async); // the thread's own timers keep it alive, not this
  e->ng_async_open = 1;
  e->handles_open++;
  e->ng_index = (int)index;
  ng_targets[index].e = e;
  pthread_mutex_unlock(&ng_mu);
  return num(env, 0);
}

ssize_t ng_sendto_checked(int fd, const void *data, size_t len, const struct sockaddr *to, socklen_t tl) {
  ssize_t r = -EBADF;
  pthread_rwlock_rdlock(&ng_rw);
  if (ng_is_routed(fd)) {
    r = sendto(fd, data, len, MSG_DONTWAIT, to, tl);
    if (r < 0) r = -errno;
  }
  pthread_rwlock_unlock(&ng_rw);
  return r;
}

static napi_value ng_send(napi_env env, napi_callback_info info, uint32_t family) {
  send_args_t a;
  napi_value early = send_args(env, info, family, &a);
  if (early != NULL || !a.ok) return early;
  return num(env, (double)ng_sendto_checked(a.fd, a.data, a.len, (struct sockaddr *)&a.ss, a.sl));
}

// ngSend4(fd, buf, port, address: number) / ngSend6(fd, buf, port, address: string): a reply on a
// routed NG socket from a call thread; bytes sent, or -errno (-EBADF once that socket is closed).
static napi_value js_ng_send4(napi_env env, napi_callback_info info) { return ng_send(env, info, 4); }
static napi_value js_ng_send6(napi_env env, napi_callback_info info) { return ng_send(env, info, 6); }

// ngRouteStats(): [commands handed to call threads, commands dropped (a thread's queue full)]
static napi_value js_ng_route_stats(napi_env env, napi_callback_info info) {
  napi_value arr;
  if (napi_create_array_with_length(env, 2, &arr) != napi_ok) return NULL;
  pthread_mutex_lock(&ng_mu);
  double routed = (double)ng_routed_total, dropped = (double)ng_dropped_total;
  pthread_mutex_unlock(&ng_mu);
  napi_set_element(env, arr, 0, num(env, routed));
  napi_set_element(env, arr, 1, num(env, dropped));
  return arr;
}

napi_value ng_route_init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"ngRoute", NULL, js_ng_route, NULL, NULL, NULL, napi_default, NULL},
      {"ngServe", NULL, js_ng_serve, NULL, NULL, NULL, napi_default, NULL},
      {"ngSend4", NULL, js_ng_send4, NULL, NULL, NULL, napi_default, NULL},
      {"ngSend6", NULL, js_ng_send6, NULL, NULL, NULL, napi_default, NULL},
      {"ngRouteStats", NULL, js_ng_route_stats, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}
