// A socket BIO for the clients' TLS connections that writes with send(MSG_NOSIGNAL):
// OpenSSL's own socket BIO uses write(2), which raises SIGPIPE when the server has reset
// the connection, killing any process that has not ignored the signal.
#pragma once

#include <openssl/bio.h>

namespace lapps {

// A BIO over the non-blocking socket fd (not owned: BIO_free leaves it open). Null on
// allocation failure.
BIO* newSocketBio(int fd);

}  // namespace lapps
