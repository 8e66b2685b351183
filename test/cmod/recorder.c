/* The C module test/cmod/c-modules.test.ts drives. Text commands (anything else is
 * echoed back, text or binary):
 *   handle                 replies with this connection's handle
 *   count                  replies "count <n>": messages this instance has seen
 *   send <handle> <text>   sends <text> to <handle>, replies "rc <result>"
 *   close <code> [reason]  closes this connection; replies "rc <result>" on failure
 *   closeh <handle>        closes <handle> with 4000, replies "rc <result>"
 *   badopcode / badutf8 / badclose / nullsend   misuses the API, replies "rc <result>"
 *   thread                 calls send from another thread, replies "rc <result>"
 *   bcast create|sub|unsub <channel>, bcast send <channel> <text>: broadcast channels for
 *                          this connection; bcast subh|unsubh <channel> <handle>: for <handle>
 *   fail                   on_message fails (the connection gets 1011)
 * Logs "create <instance>", "start <instance>", "disconnect <handle>", "shutdown
 * <instance>", so tests can count the callbacks. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lapps.h"

struct recorder {
  const struct lapps_api_v1* api;
  void* host;
  char name[64];
  uint64_t messages;
};

static void logf_(struct recorder* r, const char* fmt, const char* s, uint64_t n) {
  char line[160];
  if (s) {
    snprintf(line, sizeof line, fmt, s);
  } else {
    snprintf(line, sizeof line, fmt, n);
  }
  r->api->log(r->host, LAPPS_LOG_INFO, line);
}

static int reply(struct recorder* r, lapps_handle h, const char* text) {
  return r->api->send(r->host, h, LAPPS_OPCODE_TEXT, text, strlen(text));
}

static int reply_rc(struct recorder* r, lapps_handle h, int rc) {
  char text[32];
  snprintf(text, sizeof text, "rc %d", rc);
  reply(r, h, text);
  return 0;
}

static void* rec_create(const struct lapps_api_v1* api, void* host, const char* instance_name) {
  struct recorder* r = calloc(1, sizeof *r);
  if (!r) return NULL;
  r->api = api;
  r->host = host;
  snprintf(r->name, sizeof r->name, "%s", instance_name);
  logf_(r, "create %s", r->name, 0);
  return r;
}

static void rec_destroy(void* self) {
  free(self);
}

static void rec_on_start(void* self) {
  struct recorder* r = self;
  logf_(r, "start %s", r->name, 0);
}

struct thread_call {
  struct recorder* r;
  lapps_handle handle;
  int rc;
};

static void* thread_send(void* arg) {
  struct thread_call* c = arg;
  c->rc = c->r->api->send(c->r->host, c->handle, LAPPS_OPCODE_TEXT, "x", 1);
  return NULL;
}

static int starts_with(const char* s, size_t len, const char* prefix) {
  size_t n = strlen(prefix);
  return len >= n && memcmp(s, prefix, n) == 0;
}

static int rec_on_message(void* self, lapps_handle h, int opcode, const void* data, size_t len) {
  struct recorder* r = self;
  r->messages++;
  if (opcode != LAPPS_OPCODE_TEXT || len >= 256) {
    return r->api->send(r->host, h, opcode, data, len) == LAPPS_OK ? 0 : 1;
  }
  char cmd[256];
  memcpy(cmd, data, len);
  cmd[len] = '\0';

  if (strcmp(cmd, "handle") == 0) {
    char text[32];
    snprintf(text, sizeof text, "%" PRIu64, h);
    reply(r, h, text);
  } else if (strcmp(cmd, "count") == 0) {
    char text[40];
    snprintf(text, sizeof text, "count %" PRIu64, r->messages);
    reply(r, h, text);
  } else if (starts_with(cmd, len, "send ")) {
    char* rest;
    lapps_handle to = strtoull(cmd + 5, &rest, 10);
    if (*rest == ' ') rest++;
    reply_rc(r, h, r->api->send(r->host, to, LAPPS_OPCODE_TEXT, rest, strlen(rest)));
  } else if (starts_with(cmd, len, "closeh ")) {
    lapps_handle to = strtoull(cmd + 7, NULL, 10);
    reply_rc(r, h, r->api->close(r->host, to, 4000, "intruder", 8));
  } else if (starts_with(cmd, len, "close ")) {
    char* rest;
    int code = (int)strtol(cmd + 6, &rest, 10);
    if (*rest == ' ') rest++;
    int rc = r->api->close(r->host, h, code, rest, strlen(rest));
    if (rc != LAPPS_OK) reply_rc(r, h, rc);
  } else if (starts_with(cmd, len, "bcast ")) {
    /* bcast create|sub|unsub <channel> | bcast send <channel> <text> */
    char what[8] = {0};
    unsigned long long channel = 0;
    int used = 0;
    if (!LAPPS_API_HAS(r->api, bcast_send) ||
        sscanf(cmd + 6, "%7s %llu %n", what, &channel, &used) < 2) {
      reply(r, h, "bad bcast command");
    } else if (strcmp(what, "create") == 0) {
      reply_rc(r, h, r->api->bcast_create(r->host, channel));
    } else if (strcmp(what, "sub") == 0) {
      reply_rc(r, h, r->api->bcast_subscribe(r->host, channel, h));
    } else if (strcmp(what, "unsub") == 0) {
      reply_rc(r, h, r->api->bcast_unsubscribe(r->host, channel, h));
    } else if (strcmp(what, "subh") == 0) {
      reply_rc(r, h, r->api->bcast_subscribe(r->host, channel, strtoull(cmd + 6 + used, NULL, 10)));
    } else if (strcmp(what, "unsubh") == 0) {
      reply_rc(r, h,
               r->api->bcast_unsubscribe(r->host, channel, strtoull(cmd + 6 + used, NULL, 10)));
    } else {
      const char* text = cmd + 6 + used;
      reply_rc(r, h, r->api->bcast_send(r->host, channel, LAPPS_OPCODE_TEXT, text, strlen(text)));
    }
  } else if (strcmp(cmd, "badopcode") == 0) {
    reply_rc(r, h, r->api->send(r->host, h, 9, "x", 1));
  } else if (strcmp(cmd, "badutf8") == 0) {
    reply_rc(r, h, r->api->send(r->host, h, LAPPS_OPCODE_TEXT, "\xff\xfe", 2));
  } else if (strcmp(cmd, "badclose") == 0) {
    reply_rc(r, h, r->api->close(r->host, h, 1005, NULL, 0));
  } else if (strcmp(cmd, "nullsend") == 0) {
    reply_rc(r, h, r->api->send(r->host, h, LAPPS_OPCODE_BINARY, NULL, 3));
  } else if (strcmp(cmd, "thread") == 0) {
    struct thread_call c = {r, h, -1};
    pthread_t t;
    if (pthread_create(&t, NULL, thread_send, &c) != 0) return 1;
    pthread_join(t, NULL);
    reply_rc(r, h, c.rc);
  } else if (strcmp(cmd, "fail") == 0) {
    r->api->log(r->host, LAPPS_LOG_WARN, "failing on request");
    return 7;
  } else {
    return r->api->send(r->host, h, opcode, data, len) == LAPPS_OK ? 0 : 1;
  }
  return 0;
}

static void rec_on_disconnect(void* self, lapps_handle h) {
  logf_(self, "disconnect %" PRIu64, NULL, h);
}

static void rec_on_shutdown(void* self) {
  struct recorder* r = self;
  logf_(r, "shutdown %s", r->name, 0);
}

static const struct lapps_module_v1 recorder_module = {
    .abi_version = LAPPS_ABI_VERSION,
    .size = sizeof(struct lapps_module_v1),
    .name = "recorder",
    .create = rec_create,
    .destroy = rec_destroy,
    .on_start = rec_on_start,
    .on_message = rec_on_message,
    .on_disconnect = rec_on_disconnect,
    .on_shutdown = rec_on_shutdown,
};

LAPPS_EXPORT const struct lapps_module_v1* lapps_service_v1(void) {
  return &recorder_module;
}
