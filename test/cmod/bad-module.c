/* Modules the server must refuse, one per build flag (see CMakeLists.txt):
 *   BAD_ABI          descriptor says ABI version 2
 *   BAD_NO_SYMBOL    exports no lapps_service_v1
 *   BAD_NO_CALLBACK  on_message is NULL
 *   BAD_CREATE       create() returns NULL */
#include <stddef.h>

#include "lapps.h"

#ifndef BAD_NO_CALLBACK
static int ok_on_message(void* self, lapps_handle handle, int opcode, const void* data,
                         size_t len) {
  (void)self, (void)handle, (void)opcode, (void)data, (void)len;
  return 0;
}
#endif

static void* ok_create(const struct lapps_api_v1* api, void* host, const char* name) {
  (void)api, (void)host, (void)name;
#ifdef BAD_CREATE
  return NULL;
#else
  static int instance;
  return &instance;
#endif
}

static const struct lapps_module_v1 module = {
#ifdef BAD_ABI
    .abi_version = 2,
#else
    .abi_version = LAPPS_ABI_VERSION,
#endif
    .size = sizeof(struct lapps_module_v1),
    .name = "bad",
    .create = ok_create,
#ifndef BAD_NO_CALLBACK
    .on_message = ok_on_message,
#endif
};

#ifdef BAD_NO_SYMBOL
LAPPS_EXPORT const struct lapps_module_v1* lapps_service(void) {
  return &module;
}
#else
LAPPS_EXPORT const struct lapps_module_v1* lapps_service_v1(void) {
  return &module;
}
#endif
