/*
 * lapps.h: the C ABI of lapps service modules (docs/c-api.md).
 *
 * A C service is a shared object that exports ONE symbol, lapps_service_v1: a function
 * returning the module's descriptor (struct lapps_module_v1). For each instance of the
 * service the server calls create(), then on_start(), on_connect() (if the module has one)
 * for every handshake routed to that instance, on_message() for every message of every
 * connection, on_disconnect() once per connection, on_shutdown(), and finally destroy().
 * The module reaches back into the server through the API table (struct lapps_api_v1)
 * handed to create().
 *
 * Threading. Every callback of one instance runs on that instance's worker thread, never
 * two at a time: an instance needs no locks for its own state. create() and destroy() run
 * on the server's main thread while the worker is not running the instance. Instances of
 * one service may live on different workers and run in parallel; they share the module's
 * global variables (the shared object is loaded once per process), so globals must be
 * constant or thread-safe. The API functions must be called on the instance's worker
 * thread, from within a callback or with a handle obtained in one; from any other thread
 * they do nothing and return LAPPS_WRONG_THREAD.
 *
 * Errors. No callback may let a C++ exception or a longjmp escape into the server. A
 * failing on_message() costs only its own connection (closed with 1011).
 *
 * Plain C11 (also valid C++): fixed-width integers, no server types.
 */
#ifndef LAPPS_H
#define LAPPS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. A module stores it in lapps_module_v1.abi_version. */
#define LAPPS_ABI_VERSION 1

/* Marks the module's entry point as exported (needed with -fvisibility=hidden). */
#if defined(__GNUC__) || defined(__clang__)
#define LAPPS_EXPORT __attribute__((visibility("default")))
#else
#define LAPPS_EXPORT
#endif

/* Message opcodes (RFC 6455). on_message() only ever sees these two. */
#define LAPPS_OPCODE_TEXT 1
#define LAPPS_OPCODE_BINARY 2

/* Results of the API functions. Values never change meaning; new ones may be added. */
#define LAPPS_OK 0
#define LAPPS_NO_CONNECTION 1 /* stale, invalid, gone, or another service's connection */
#define LAPPS_CLOSING 2       /* the connection is closing: nothing more can be sent */
#define LAPPS_SLOW_CONSUMER 3 /* over its outbound limit: the connection was closed */
#define LAPPS_NOT_UTF8 4      /* text message or close reason is not valid UTF-8 */
#define LAPPS_INVALID 5       /* bad argument: opcode, close code, reason length, NULL */
#define LAPPS_WRONG_THREAD 6  /* called outside the instance's worker thread */
#define LAPPS_NO_CHANNEL 7    /* broadcast channel not created (bcast_create first) */

/* What on_connect answers (appended in lapps 0.2). */
#define LAPPS_CONNECT_ACCEPT 0  /* 101: the connection opens */
#define LAPPS_CONNECT_REFUSE 1  /* the HTTP status and body in *refusal */
#define LAPPS_CONNECT_PENDING 2 /* answered later with connect_accept / connect_refuse */

/* Log levels for lapps_api_v1.log (the server's levels, most severe first). */
#define LAPPS_LOG_ERROR 0
#define LAPPS_LOG_WARN 1
#define LAPPS_LOG_INFO 2
#define LAPPS_LOG_DEBUG 3

/* A connection: opaque, never 0. A handle outlives its connection only as a number: the
 * server detects a stale one and answers LAPPS_NO_CONNECTION, even after the slot has
 * been reused by another connection. A module names only connections routed to its own
 * service: a handle of another service's connection is answered LAPPS_NO_CONNECTION too.
 * Handles of the service's connections on other workers are valid: calls on them are
 * forwarded (and answer LAPPS_OK once queued). */
typedef uint64_t lapps_handle;

/*
 * What the server offers a module. The table and `host` stay valid until destroy() has
 * returned. New functions are only ever appended: before using a function a module was
 * not built with in mind, check LAPPS_API_HAS(api, name).
 */
struct lapps_api_v1 {
  uint32_t abi_version; /* LAPPS_ABI_VERSION of the server */
  uint32_t size;        /* sizeof(struct lapps_api_v1) as the server knows it */

  /* Queues a message to a connection. opcode is LAPPS_OPCODE_TEXT (data must be valid
   * UTF-8) or LAPPS_OPCODE_BINARY; data may be NULL only if len is 0. The bytes are
   * copied or written before the call returns: the caller keeps ownership. Returns
   * LAPPS_OK, LAPPS_NO_CONNECTION, LAPPS_CLOSING, LAPPS_SLOW_CONSUMER, LAPPS_NOT_UTF8,
   * LAPPS_INVALID or LAPPS_WRONG_THREAD. */
  int (*send)(void* host, lapps_handle handle, int opcode, const void* data, size_t len);

  /* Starts the closing handshake with `code` (1000-1003, 1007-1014, 3000-4999) and an
   * optional reason (UTF-8, at most 123 bytes; NULL when len is 0). on_disconnect() follows
   * later, when the connection is gone. Returns LAPPS_OK, LAPPS_NO_CONNECTION,
   * LAPPS_CLOSING, LAPPS_NOT_UTF8, LAPPS_INVALID or LAPPS_WRONG_THREAD. */
  int (*close)(void* host, lapps_handle handle, int code, const char* reason, size_t len);

  /* Writes a line to the server log, tagged "service <name>#<instance>". message is a
   * NUL-terminated string, copied before the call returns. An unknown level is logged as
   * LAPPS_LOG_INFO. Unlike send/close, log may also be called from create() and
   * destroy() (it is thread-safe), but not after destroy() has returned. */
  void (*log)(void* host, int level, const char* message);
  /* Broadcast channels, shared with Lua services (bcast): channel ids are any 53-bit
   * integers. bcast_create makes a channel exist (creating it again is fine). A
   * subscription ends with its connection. bcast_send encodes the message into one frame
   * that every subscribed connection, on every worker, queues. Same thread rule as send:
   * they answer LAPPS_WRONG_THREAD outside the worker thread (bcast_create excepted: any
   * time after create()). Results: LAPPS_OK, LAPPS_NO_CHANNEL, LAPPS_NO_CONNECTION,
   * LAPPS_NOT_UTF8, LAPPS_INVALID, LAPPS_WRONG_THREAD. Appended in lapps 0.1: check
   * LAPPS_API_HAS(api, bcast_send). */
  int (*bcast_create)(void* host, uint64_t channel);
  int (*bcast_subscribe)(void* host, uint64_t channel, lapps_handle handle);
  int (*bcast_unsubscribe)(void* host, uint64_t channel, lapps_handle handle);
  int (*bcast_send)(void* host, uint64_t channel, int opcode, const void* data, size_t len);

  /* Answers a handshake whose on_connect returned LAPPS_CONNECT_PENDING: accept (the 101
   * follows, and the frames the client sent meanwhile reach on_message), or refuse with an
   * HTTP status from 400 to 599 and a short text body (UTF-8, at most 1024 bytes; NULL when
   * len is 0; empty: the status's reason phrase). The answer goes out on the next turn of
   * the worker's loop, never from inside the call. Returns LAPPS_OK, LAPPS_NO_CONNECTION
   * (not a handshake of this service waiting for its answer: answered already, timed out
   * after handshake_timeout_ms with 503, or the client left), LAPPS_INVALID or
   * LAPPS_WRONG_THREAD. Appended in lapps 0.2: check LAPPS_API_HAS(api, connect_accept). */
  int (*connect_accept)(void* host, lapps_handle handle);
  int (*connect_refuse)(void* host, lapps_handle handle, int status, const char* reason,
                        size_t len);
};

/* True if the server's API table has the function `field` (for functions appended later). */
#define LAPPS_API_HAS(api, field)                                                \
  ((api)->size >= offsetof(struct lapps_api_v1, field) + sizeof((api)->field) && \
   (api)->field != NULL)

/* A string that is not NUL-terminated: `len` bytes at `data` (data may be NULL when len is 0). */
struct lapps_str {
  const char* data;
  size_t len;
};

/* A header field of the request: its name in lower case; the values of a repeated field
 * joined with ", " in order (RFC 9110 section 5.3). */
struct lapps_header {
  struct lapps_str name;
  struct lapps_str value;
};

/* The handshake on_connect decides on. Every pointer is valid during the call only: copy
 * what you keep. New fields are only ever appended: check `size` before reading one a
 * module was not built with in mind. */
struct lapps_request {
  uint32_t size; /* sizeof(struct lapps_request) as the server knows it */
  struct lapps_str method;
  struct lapps_str target;      /* as sent in the request line */
  struct lapps_str path;        /* the routed path, without the query */
  struct lapps_str query;       /* raw, without the '?'; empty if none (decode it yourself) */
  struct lapps_str origin;      /* empty if the client sent none */
  struct lapps_str subprotocol; /* the one the 101 will name; empty if none */
  const struct lapps_header* headers;
  size_t header_count;
  const char* ip; /* the client ("203.0.113.7", "2001:db8::1"; behind trusted proxies, the
                     real client), NUL-terminated */
  uint16_t port;
  /* wss only (NULL on ws://), NUL-terminated: the protocol ("TLSv1.3"), the cipher, the SNI
   * name (NULL if none), and the client certificate's RFC 2253 subject and issuer and its
   * SHA-256 fingerprint ("AB:CD:...") when the client sent one (NULL otherwise). */
  const char* tls_version;
  const char* tls_cipher;
  const char* tls_sni;
  const char* tls_subject;
  const char* tls_issuer;
  const char* tls_fingerprint;
};

/* Filled by on_connect when it answers LAPPS_CONNECT_REFUSE (preset to 403, no reason). */
struct lapps_refusal {
  int status;         /* 400-599 */
  const char* reason; /* the response body, a short text (at most 1024 bytes are sent);
                         must stay valid until on_connect returns */
  size_t reason_len;
};

/*
 * What a module provides. Returned by lapps_service_v1(); must stay valid and unchanged
 * while the module is loaded (a static const object is the natural choice). Required:
 * create and on_message. The other callbacks may be NULL (nothing to do).
 */
struct lapps_module_v1 {
  uint32_t abi_version; /* LAPPS_ABI_VERSION the module was built with */
  uint32_t size;        /* sizeof(struct lapps_module_v1) */
  const char* name;     /* informative (logged when loaded); may be NULL */

  /* Creates one instance. `api` and `host` stay valid until destroy(); keep them in the
   * instance. instance_name is "<service>#<index>", valid only during the call. Returns
   * the instance pointer handed to every other callback, or NULL on failure (the server
   * then refuses to start, naming the module). Runs on the main thread. */
  void* (*create)(const struct lapps_api_v1* api, void* host, const char* instance_name);

  /* Frees the instance; called once, after on_shutdown() (or instead of any other call,
   * if the server stops before starting the instance). Runs on the main thread. */
  void (*destroy)(void* self);

  /* The instance's worker is about to serve connections. */
  void (*on_start)(void* self);

  /* One complete message. data points into the server's buffers and is valid only during
   * the call (copy what you keep); text messages are valid UTF-8. Returns 0 on success;
   * any other value is a failure: it is logged and the connection is closed with 1011
   * (further messages already received from it are dropped). */
  int (*on_message)(void* self, lapps_handle handle, int opcode, const void* data, size_t len);

  /* The connection is gone (whatever ended it): called exactly once for every connection
   * routed to this instance that completed its handshake. The handle is stale from now on
   * (sends to it answer LAPPS_NO_CONNECTION). */
  void (*on_disconnect)(void* self, lapps_handle handle);

  /* The server is stopping; connections have been closed (on_disconnect already ran). */
  void (*on_shutdown)(void* self);

  /* Optional (appended in lapps 0.2; a descriptor built with an older header is shorter and
   * has none). A handshake routed to this instance passed the server's checks (ACL,
   * Origin, limits): return LAPPS_CONNECT_ACCEPT, LAPPS_CONNECT_REFUSE (fill *refusal) or
   * LAPPS_CONNECT_PENDING (then answer with api->connect_accept / connect_refuse, on the
   * worker thread, within handshake_timeout_ms; later, the server answers 503). Any other
   * value refuses with 500 and is logged. The handle names the connection from now on; it
   * is stale if the handshake is refused, and on_disconnect is called only for connections
   * that opened. */
  int (*on_connect)(void* self, lapps_handle handle, const struct lapps_request* request,
                    struct lapps_refusal* refusal);
};

/* The one symbol a module exports:
 *   LAPPS_EXPORT const struct lapps_module_v1* lapps_service_v1(void) { return &module; }
 * Called once per instance on the main thread; must return the same descriptor. */
typedef const struct lapps_module_v1* (*lapps_service_v1_fn)(void);
#define LAPPS_SERVICE_SYMBOL_V1 "lapps_service_v1"

/* Short English description of a result code, for log lines. */
static inline const char* lapps_result_string(int result) {
  switch (result) {
    case LAPPS_OK:
      return "ok";
    case LAPPS_NO_CONNECTION:
      return "no such connection";
    case LAPPS_CLOSING:
      return "connection is closing";
    case LAPPS_SLOW_CONSUMER:
      return "connection closed: slow consumer";
    case LAPPS_NOT_UTF8:
      return "text is not valid UTF-8";
    case LAPPS_INVALID:
      return "invalid argument";
    case LAPPS_WRONG_THREAD:
      return "called outside the instance's worker thread";
    case LAPPS_NO_CHANNEL:
      return "no such broadcast channel";
    default:
      return "unknown result";
  }
}

#ifdef __cplusplus
}
#endif

#endif /* LAPPS_H */
