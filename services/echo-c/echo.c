/* The bundled echo service written in C (lapps.h): sends every message back as it came,
 * like services/echo/echo.lua. Built by CMake as libecho_c.so. */
#include <stdio.h>
#include <stdlib.h>

#include "lapps.h"

struct echo {
  const struct lapps_api_v1* api;
  void* host;
};

static void* echo_create(const struct lapps_api_v1* api, void* host, const char* instance_name) {
  (void)instance_name;
  struct echo* self = malloc(sizeof *self);
  if (!self) return NULL;
  self->api = api;
  self->host = host;
  return self;
}

static void echo_destroy(void* self) {
  free(self);
}

static int echo_on_message(void* self, lapps_handle handle, int opcode, const void* data,
                           size_t len) {
  struct echo* e = self;
  int rc = e->api->send(e->host, handle, opcode, data, len);
  if (rc != LAPPS_OK) {
    char line[128];
    snprintf(line, sizeof line, "echo: %s", lapps_result_string(rc));
    e->api->log(e->host, LAPPS_LOG_INFO, line);
  }
  return rc; /* like echo.lua: a failed send fails the message (its connection gets 1011) */
}

static const struct lapps_module_v1 echo_module = {
    .abi_version = LAPPS_ABI_VERSION,
    .size = sizeof(struct lapps_module_v1),
    .name = "echo-c",
    .create = echo_create,
    .destroy = echo_destroy,
    .on_message = echo_on_message,
};

LAPPS_EXPORT const struct lapps_module_v1* lapps_service_v1(void) {
  return &echo_module;
}
