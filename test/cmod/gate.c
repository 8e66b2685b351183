/* The C module test/cmod/c-modules.test.ts drives for on_connect. The query decides:
 *   (none)                 accept
 *   refuse                 LAPPS_CONNECT_REFUSE, 401 "no entry"
 *   refuse-default         LAPPS_CONNECT_REFUSE with the preset status and no reason
 *   refuse-bad             LAPPS_CONNECT_REFUSE with status 200 (the server answers 500)
 *   nonsense               returns 7 (the server answers 500)
 *   pending                LAPPS_CONNECT_PENDING; a later "release <handle>" or
 *                          "deny <handle>" from another connection answers it
 * Text commands: "request" replies with what on_connect saw of this connection;
 * "release <h>" / "deny <h>" reply "rc <result>". */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lapps.h"

#define SEEN_MAX 64

struct gate {
  const struct lapps_api_v1* api;
  void* host;
  struct {
    lapps_handle handle;
    char text[512];
  } seen[SEEN_MAX];
  unsigned next;
};

static int query_is(const struct lapps_request* r, const char* q) {
  return r->query.len == strlen(q) && memcmp(r->query.data, q, r->query.len) == 0;
}

static void* gate_create(const struct lapps_api_v1* api, void* host, const char* name) {
  (void)name;
  struct gate* g = calloc(1, sizeof *g);
  if (!g) return NULL;
  g->api = api;
  g->host = host;
  return g;
}

static void gate_destroy(void* self) {
  free(self);
}

static int gate_on_connect(void* self, lapps_handle handle, const struct lapps_request* r,
                           struct lapps_refusal* refusal) {
  struct gate* g = self;
  const char* token = "";
  size_t token_len = 0;
  for (size_t i = 0; i < r->header_count; ++i) {
    if (r->headers[i].name.len == 7 && memcmp(r->headers[i].name.data, "x-token", 7) == 0) {
      token = r->headers[i].value.data;
      token_len = r->headers[i].value.len;
    }
  }
  unsigned k = g->next++ % SEEN_MAX;
  g->seen[k].handle = handle;
  snprintf(g->seen[k].text, sizeof g->seen[k].text,
           "method=%.*s path=%.*s query=%.*s target=%.*s ip=%s port=%u token=%.*s tls=%s",
           (int)r->method.len, r->method.data, (int)r->path.len, r->path.data, (int)r->query.len,
           r->query.data, (int)r->target.len, r->target.data, r->ip, (unsigned)r->port,
           (int)token_len, token, r->tls_version ? r->tls_version : "none");
  if (query_is(r, "refuse")) {
    refusal->status = 401;
    refusal->reason = "no entry";
    refusal->reason_len = 8;
    return LAPPS_CONNECT_REFUSE;
  }
  if (query_is(r, "refuse-default")) return LAPPS_CONNECT_REFUSE;
  if (query_is(r, "refuse-bad")) {
    refusal->status = 200;
    return LAPPS_CONNECT_REFUSE;
  }
  if (query_is(r, "nonsense")) return 7;
  if (query_is(r, "pending")) return LAPPS_CONNECT_PENDING;
  return LAPPS_CONNECT_ACCEPT;
}

static int reply(struct gate* g, lapps_handle h, const char* text) {
  return g->api->send(g->host, h, LAPPS_OPCODE_TEXT, text, strlen(text));
}

static int gate_on_message(void* self, lapps_handle handle, int opcode, const void* data,
                           size_t len) {
  struct gate* g = self;
  char text[600];
  if (len >= sizeof text) len = sizeof text - 1;
  memcpy(text, data, len);
  text[len] = 0;
  if (strcmp(text, "request") == 0) {
    for (unsigned i = 0; i < SEEN_MAX; ++i) {
      if (g->seen[i].handle == handle) return reply(g, handle, g->seen[i].text) == LAPPS_OK ? 0 : 1;
    }
    return reply(g, handle, "unknown") == LAPPS_OK ? 0 : 1;
  }
  unsigned long long h;
  char out[32];
  if (sscanf(text, "release %llu", &h) == 1) {
    snprintf(out, sizeof out, "rc %d", g->api->connect_accept(g->host, (lapps_handle)h));
    return reply(g, handle, out) == LAPPS_OK ? 0 : 1;
  }
  if (sscanf(text, "deny %llu", &h) == 1) {
    snprintf(out, sizeof out, "rc %d",
             g->api->connect_refuse(g->host, (lapps_handle)h, 429, "later", 5));
    return reply(g, handle, out) == LAPPS_OK ? 0 : 1;
  }
  if (strcmp(text, "pending-handle") == 0) {
    /* The handle of the last handshake left pending. */
    for (unsigned i = g->next; i-- > 0 && i + SEEN_MAX >= g->next;) {
      if (strstr(g->seen[i % SEEN_MAX].text, "query=pending ")) {
        snprintf(out, sizeof out, "%" PRIu64, g->seen[i % SEEN_MAX].handle);
        return reply(g, handle, out) == LAPPS_OK ? 0 : 1;
      }
    }
    return reply(g, handle, "none") == LAPPS_OK ? 0 : 1;
  }
  return g->api->send(g->host, handle, opcode, data, len) == LAPPS_OK ? 0 : 1;
}

static const struct lapps_module_v1 module = {
    .abi_version = LAPPS_ABI_VERSION,
#ifdef GATE_OLD_DESCRIPTOR
    /* As a module built before on_connect existed says: the server must not read it. */
    .size = offsetof(struct lapps_module_v1, on_connect),
#else
    .size = sizeof(struct lapps_module_v1),
#endif
    .name = "gate",
    .create = gate_create,
    .destroy = gate_destroy,
    .on_message = gate_on_message,
    .on_connect = gate_on_connect,
};

LAPPS_EXPORT const struct lapps_module_v1* lapps_service_v1(void) {
  return &module;
}
