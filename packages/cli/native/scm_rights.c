/*
 * Reads a unix stream socket with recvmsg, so that descriptors a peer passes with
 * SCM_RIGHTS (QMP's getfd) reach JavaScript. Node.js reads sockets with read(2), which
 * drops them; its IPC pipes do receive them but abort the process on a regular file or a
 * tty (node/src/stream_wrap.cc CHECKs the handle type), and a QMP client may pass either.
 *
 * One thread per connection polls its own dup of the socket and a wake pipe; what it reads
 * goes to the JS callback through a thread-safe function, in order. JS keeps writing through
 * its net.Socket on the original descriptor.
 *
 * JS API: open(fd, onChunk) -> receiver; close(receiver); send(fd, bytes, fds) -> bytes sent.
 * onChunk(data: Buffer | null, fds: number[], errno: number): data null means the end of
 * the stream (errno 0) or a read error (errno set).
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHUNK_BYTES 65536
/* QEMU's TCP_MAX_FDS is 16; more in one message are closed. */
#define MAX_FDS 16

typedef struct {
  ssize_t n;
  int err;
  int nfds;
  int fds[MAX_FDS];
  char data[];
} Chunk;

typedef struct {
  int fd;      /* our dup of the socket */
  int wake[2]; /* written by close() to stop the thread */
  pthread_t thread;
  napi_threadsafe_function tsfn;
  napi_env env;
  int closed;
} Receiver;

static void close_fds(const int *fds, int n) {
  for (int i = 0; i < n; i++) close(fds[i]);
}

/* Moves the SCM_RIGHTS descriptors of msg into c (closing any past MAX_FDS). */
static void take_fds(struct msghdr *msg, Chunk *c) {
  for (struct cmsghdr *h = CMSG_FIRSTHDR(msg); h != NULL; h = CMSG_NXTHDR(msg, h)) {
    if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
    int count = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    int fds[MAX_FDS * 2];
    if (count > MAX_FDS * 2) count = MAX_FDS * 2;
    memcpy(fds, CMSG_DATA(h), (size_t)count * sizeof(int));
    for (int i = 0; i < count; i++) {
      if (c->nfds < MAX_FDS) {
#ifndef MSG_CMSG_CLOEXEC
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
#endif
        c->fds[c->nfds++] = fds[i];
      } else {
        close(fds[i]);
      }
    }
  }
}

static void *receive_loop(void *arg) {
  Receiver *r = arg;
  for (;;) {
    struct pollfd p[2] = {{r->fd, POLLIN, 0}, {r->wake[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents != 0) break;
    Chunk *c = malloc(sizeof(Chunk) + CHUNK_BYTES);
    if (c == NULL) break;
    union {
      struct cmsghdr align;
      char buf[CMSG_SPACE(sizeof(int) * MAX_FDS * 2)];
    } control;
    struct iovec iov = {c->data, CHUNK_BYTES};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    int flags = MSG_DONTWAIT;
#ifdef MSG_CMSG_CLOEXEC
    flags |= MSG_CMSG_CLOEXEC;
#endif
    ssize_t n = recvmsg(r->fd, &msg, flags);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      free(c);
      continue;
    }
    c->n = n;
    c->err = n < 0 ? errno : 0;
    c->nfds = 0;
    if (n >= 0) take_fds(&msg, c);
    if (napi_call_threadsafe_function(r->tsfn, c, napi_tsfn_blocking) != napi_ok) {
      close_fds(c->fds, c->nfds);
      free(c);
      break;
    }
    if (n <= 0) break;
  }
  return NULL;
}

/* Runs on the JS thread, once per chunk. */
static void deliver(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  Chunk *c = data;
  if (env == NULL) {
    /* The function is being torn down: nobody will take these. */
    close_fds(c->fds, c->nfds);
    free(c);
    return;
  }
  napi_value argv[3], fds, undefined, v;
  if (c->n > 0) {
    napi_create_buffer_copy(env, (size_t)c->n, c->data, NULL, &argv[0]);
  } else {
    napi_get_null(env, &argv[0]);
  }
  napi_create_array_with_length(env, (size_t)c->nfds, &fds);
  for (int i = 0; i < c->nfds; i++) {
    napi_create_int32(env, c->fds[i], &v);
    napi_set_element(env, fds, (uint32_t)i, v);
  }
  argv[1] = fds;
  napi_create_int32(env, c->err, &argv[2]);
  free(c);
  napi_get_undefined(env, &undefined);
  napi_call_function(env, undefined, callback, 3, argv, NULL);
}

static void cleanup_receiver(void *arg);

/* Stops and joins the thread, then lets the function go. `from_hook`: the environment is
 * being torn down and runs this as its cleanup hook (which then goes by itself). */
static void stop(Receiver *r, int from_hook) {
  if (r->closed) return;
  r->closed = 1;
  if (!from_hook) napi_remove_env_cleanup_hook(r->env, cleanup_receiver, r);
  char x = 1;
  ssize_t ignored = write(r->wake[1], &x, 1);
  (void)ignored;
  pthread_join(r->thread, NULL);
  napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
  close(r->fd);
  close(r->wake[0]);
  close(r->wake[1]);
}

/* At teardown, before the thread-safe function's own hook (hooks run in reverse order of
 * registration): a thread must not call into a function Node has freed. */
static void cleanup_receiver(void *arg) {
  stop(arg, 1);
}

static void finalize_receiver(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  stop(data, 0);
  free(data);
}

static const char *errno_code(int err) {
  switch (err) {
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case EPIPE: return "EPIPE";
    case ECONNRESET: return "ECONNRESET";
    case ENOTSOCK: return "ENOTSOCK";
    case EMFILE: return "EMFILE";
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    default: return NULL;
  }
}

/* Throws an Error whose code is the errno's name (as Node's own errors), with strerror's text. */
static napi_value throw_errno(napi_env env, const char *what, int err) {
  char text[160];
  snprintf(text, sizeof text, "%s: %s", what, strerror(err));
  napi_throw_error(env, errno_code(err), text);
  return NULL;
}

/* open(fd, onChunk) */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], name, result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  napi_valuetype type;
  if (argc < 2 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_typeof(env, argv[1], &type) != napi_ok ||
      type != napi_function) {
    napi_throw_type_error(env, NULL, "open(fd, onChunk) expects a descriptor and a function");
    return NULL;
  }
  Receiver *r = calloc(1, sizeof(Receiver));
  if (r == NULL) return throw_errno(env, "scm_rights", ENOMEM);
  r->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (r->fd < 0) {
    int err = errno;
    free(r);
    return throw_errno(env, "dup", err);
  }
  if (pipe(r->wake) != 0) {
    int err = errno;
    close(r->fd);
    free(r);
    return throw_errno(env, "pipe", err);
  }
  fcntl(r->wake[0], F_SETFD, FD_CLOEXEC);
  fcntl(r->wake[1], F_SETFD, FD_CLOEXEC);
  napi_create_string_utf8(env, "scm_rights receiver", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[1], NULL, name, 0, 1, NULL, NULL, NULL, deliver, &r->tsfn) != napi_ok) {
    close(r->fd);
    close(r->wake[0]);
    close(r->wake[1]);
    free(r);
    napi_throw_error(env, NULL, "scm_rights: cannot create the thread-safe function");
    return NULL;
  }
  /* Like a listening server's connections, a receiver alone does not keep the process up. */
  napi_unref_threadsafe_function(env, r->tsfn);
  r->env = env;
  int err = pthread_create(&r->thread, NULL, receive_loop, r);
  if (err != 0) {
    napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
    close(r->fd);
    close(r->wake[0]);
    close(r->wake[1]);
    free(r);
    return throw_errno(env, "pthread_create", err);
  }
  napi_add_env_cleanup_hook(env, cleanup_receiver, r);
  napi_create_external(env, r, finalize_receiver, NULL, &result);
  return result;
}

/* close(receiver): the thread is stopped and joined; chunks already queued are still delivered. */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *r = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_external(env, argv[0], &r) != napi_ok || r == NULL) {
    napi_throw_type_error(env, NULL, "close(receiver) expects a receiver");
    return NULL;
  }
  stop(r, 0);
  return NULL;
}

/* send(fd, bytes, fds) -> bytes sent: one sendmsg, the descriptors attached (a QMP client's
 * side of getfd). Throws with the errno text, EAGAIN included: the caller waits and retries. */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  void *data = NULL;
  size_t length = 0;
  uint32_t nfds = 0;
  bool is_buffer = false, is_array = false;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_is_buffer(env, argv[1], &is_buffer) != napi_ok ||
      !is_buffer || napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "send(fd, bytes, fds) expects a descriptor, a Buffer and an array");
    return NULL;
  }
  napi_get_buffer_info(env, argv[1], &data, &length);
  napi_get_array_length(env, argv[2], &nfds);
  if (length == 0 || nfds > MAX_FDS) {
    napi_throw_range_error(env, NULL, "send: at least one byte, and at most 16 descriptors");
    return NULL;
  }
  int fds[MAX_FDS];
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value v;
    napi_get_element(env, argv[2], i, &v);
    if (napi_get_value_int32(env, v, &fds[i]) != napi_ok) {
      napi_throw_type_error(env, NULL, "send: descriptors must be numbers");
      return NULL;
    }
  }
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
  } control;
  struct iovec iov = {data, length};
  struct msghdr msg;
  memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  if (nfds > 0) {
    memset(&control, 0, sizeof control);
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(h), fds, sizeof(int) * nfds);
  }
  int flags = MSG_DONTWAIT;
#ifdef MSG_NOSIGNAL
  flags |= MSG_NOSIGNAL;
#endif
  ssize_t n;
  do {
    n = sendmsg(fd, &msg, flags);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, "sendmsg", errno);
  napi_create_int64(env, (int64_t)n, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value f;
  napi_create_function(env, "open", NAPI_AUTO_LENGTH, js_open, NULL, &f);
  napi_set_named_property(env, exports, "open", f);
  napi_create_function(env, "close", NAPI_AUTO_LENGTH, js_close, NULL, &f);
  napi_set_named_property(env, exports, "close", f);
  napi_create_function(env, "send", NAPI_AUTO_LENGTH, js_send, NULL, &f);
  napi_set_named_property(env, exports, "send", f);
  return exports;
}
