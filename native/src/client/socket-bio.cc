#include "client/socket-bio.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>

namespace lapps {

namespace {

int fdOf(BIO* b) {
  return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
}

bool wouldBlock() {
  return errno == EAGAIN || errno == EWOULDBLOCK;
}

int bioWrite(BIO* b, const char* data, size_t len, size_t* written) {
  BIO_clear_retry_flags(b);
  ssize_t n;
  do {
    n = ::send(fdOf(b), data, len, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n >= 0) {
    *written = static_cast<size_t>(n);
    return 1;
  }
  if (wouldBlock()) BIO_set_retry_write(b);
  return 0;  // errno is left for SSL_ERROR_SYSCALL reporting
}

int bioRead(BIO* b, char* buf, size_t len, size_t* got) {
  BIO_clear_retry_flags(b);
  ssize_t n;
  do {
    n = ::recv(fdOf(b), buf, len, 0);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    *got = static_cast<size_t>(n);
    return 1;
  }
  if (n == 0) {
    // libssl asks BIO_eof() to tell a TCP EOF from an error (see SSL_OP_IGNORE_UNEXPECTED_EOF).
    BIO_set_flags(b, BIO_FLAGS_IN_EOF);
    errno = 0;
  } else if (wouldBlock()) {
    BIO_set_retry_read(b);
  }
  return 0;
}

long bioCtrl(BIO* b, int cmd, long, void* ptr) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    case BIO_C_GET_FD:
      if (ptr) *static_cast<int*>(ptr) = fdOf(b);
      return fdOf(b);
    default:
      return 0;
  }
}

int bioCreate(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

int bioDestroy(BIO*) {
  return 1;
}

// Built once and never changed or freed: shared by all connections and threads.
BIO_METHOD* socketMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "lapps client socket");
    if (m) {
      BIO_meth_set_write_ex(m, bioWrite);
      BIO_meth_set_read_ex(m, bioRead);
      BIO_meth_set_ctrl(m, bioCtrl);
      BIO_meth_set_create(m, bioCreate);
      BIO_meth_set_destroy(m, bioDestroy);
    }
    return m;
  }();
  return method;
}

}  // namespace

BIO* newSocketBio(int fd) {
  BIO_METHOD* m = socketMethod();
  BIO* b = m ? BIO_new(m) : nullptr;
  if (b) BIO_set_data(b, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  return b;
}

}  // namespace lapps
