// What the TLS bench programs share: one set of TLS settings, so that every
// server and the load generator speak exactly the same protocol.
//
//   - TLS 1.3 only, one cipher suite (TLS_AES_128_GCM_SHA256) and one key
//     exchange group (X25519);
//   - no session tickets (SSL_CTX_set_num_tickets(ctx, 0); in TLS 1.3
//     SSL_OP_NO_TICKET would only switch to stateful tickets) and no session
//     cache, so every connection is a full handshake;
//   - partial writes, and a retried write may come from another address
//     holding the same bytes (SSL_MODE_ENABLE_PARTIAL_WRITE |
//     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER, which Asio also sets).
//
// The certificate and key come from files (--cert, --key): bench/run.py makes
// a throw-away ECDSA P-256 pair with the openssl command for each run.
#pragma once

#include "common.hpp"

#include <cstdio>
#include <cstdlib>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string>

namespace bench::tls {

inline constexpr const char* ciphersuite = "TLS_AES_128_GCM_SHA256";
inline constexpr const char* group = "X25519";

inline constexpr const char* server_usage = "--port PORT (0: pick one) --cert FILE --key FILE [--max-seconds S]";

/// OpenSSL's first queued error, as one line (and the queue emptied).
inline std::string last_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "no OpenSSL error queued";
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    return text;
}

[[noreturn]] inline void die(const char* program, const char* what) {
    std::fprintf(stderr, "%s: %s: %s\n", program, what, last_error().c_str());
    std::exit(1);
}

/// The settings every TLS program applies to its context (see above).
inline void restrict(SSL_CTX* ctx, const char* program) {
    if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) || !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION))
        die(program, "TLS 1.3 only");
    if (!SSL_CTX_set_ciphersuites(ctx, ciphersuite)) die(program, ciphersuite);
    if (!SSL_CTX_set1_groups_list(ctx, group)) die(program, group);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

/// A server's settings: those above, no session cache, and the certificate
/// chain and key of --cert and --key (exits with a message if they are bad).
inline void configure_server(SSL_CTX* ctx, const options& opt, const char* program) {
    restrict(ctx, program);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    std::string cert = opt.text("cert", ""), key = opt.text("key", "");
    if (cert.empty() || key.empty()) {
        std::fprintf(stderr, "%s: --cert FILE and --key FILE are required\n", program);
        std::exit(2);
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) die(program, cert.c_str());
    if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) die(program, key.c_str());
    if (SSL_CTX_check_private_key(ctx) != 1) die(program, "the key does not match the certificate");
}

} // namespace bench::tls
