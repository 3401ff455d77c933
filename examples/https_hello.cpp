// http_hello over TLS: the same HTTP/1.1 server (keep-alive, pipelining, the
// same answers and limits: http_server.hpp), each connection first wrapped
// with cosock::ssl_context::wrap_socket. ALPN offers "http/1.1".
//
//   https_hello --cert FILE --key FILE [--password TEXT] [--backend NAME] [--host ADDR]
//               [--port N] [--idle SECONDS] [--request-timeout SECONDS]
//               [--max-connections N] [--threads N]
//
// --cert is the certificate chain (PEM, the server's first), --key its
// private key (PEM; --password if it is encrypted). The handshake counts
// against --request-timeout like a first request: a client that stalls in it
// is dropped. A client that fails the handshake (plain HTTP, an unknown
// certificate authority, garbage) ends only its own connection. The first
// line printed is "listening on HOST:PORT (BACKEND)".
//
// Try (a throw-away certificate for 127.0.0.1):
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1
//     -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem
//   https_hello --cert cert.pem --key key.pem --port 8443 &
//   curl --cacert cert.pem https://127.0.0.1:8443/
#include "http_server.hpp"

#include <cosock/tls.hpp>

#include <cstdio>
#include <string>

namespace {

cosock::task<> serve_tls(const cosock::ssl_context& ctx, cosock::socket conn, http_server::limits lim,
                         http_server::connection_slot slot) {
    // The handshake and the first request's head share one --request-timeout.
    auto deadline = std::chrono::steady_clock::now() + lim.request;
    cosock::ssl_socket tls;
    try {
        conn.settimeout(lim.request);
        cosock::wrap_options server_side{.server_side = true};
        tls = co_await ctx.wrap_socket(std::move(conn), server_side);
    } catch (const std::system_error&) {
        co_return; // a failed handshake ends only this connection
    }
    co_await http_server::serve_client(std::move(tls), lim, std::move(slot), deadline);
}

} // namespace

int main(int argc, char** argv) {
    example::options opt(argc, argv, "--cert FILE --key FILE [--password TEXT] " + std::string(http_server::synopsis),
                         {"--cert", "--key", "--password", "--host", "--port", "--idle", "--request-timeout",
                          "--max-connections", "--threads"});
    std::string cert = opt.text("--cert", ""), key = opt.text("--key", "");
    if (cert.empty() || key.empty()) opt.fail("--cert FILE and --key FILE are needed");
    cosock::ssl_context ctx = cosock::ssl_context::server();
    try {
        ctx.load_cert_chain(cert, key, opt.text("--password", ""));
        ctx.set_alpn_protocols({"http/1.1"});
    } catch (const std::exception& e) {
        std::fprintf(stderr, "https_hello: %s\n", e.what());
        return 1;
    }
    return http_server::run(opt, 8443, "https_hello",
                            [&ctx](cosock::socket conn, http_server::limits lim, http_server::connection_slot slot) {
                                return serve_tls(ctx, std::move(conn), lim, std::move(slot));
                            });
}
