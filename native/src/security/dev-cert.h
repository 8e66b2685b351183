// A self-signed certificate for trying wss:// on one machine: no CA, no openssl CLI.
// Clients must trust the certificate file itself (e.g. Node's `ca` option, curl --cacert).
#pragma once

#include <string>

namespace lapps {

// Writes a self-signed development certificate for localhost (EC P-256, SHA-256,
// subjectAltName DNS:localhost, IP:127.0.0.1, IP:::1, serverAuth EKU, valid `days` days
// from now, 1 to 3650) to certFile, and its unencrypted key to keyFile with mode 0600.
// Refuses if either file exists unless `overwrite`; then each is replaced by rename, so a
// server reloading meanwhile never reads half a file. Returns false with `error` set
// (naming the file); temporary files are removed.
bool writeDevCertificate(const std::string& certFile, const std::string& keyFile, int days,
                         bool overwrite, std::string& error);

}  // namespace lapps
