// HTTP/1.1 "Hello, World!" with keep-alive and pipelining, and the answers a
// server owes a client that sends something else: 400, 404, 413, 431, 501.
//
//   http_hello [--backend NAME] [--host ADDR] [--port N] [--idle SECONDS]
//              [--request-timeout SECONDS] [--max-connections N] [--threads N]
//
// --threads N (default 1) serves from N threads, each with its own scheduler
// and a SO_REUSEPORT listener on the same port; --max-connections then counts
// per thread. SIGINT or SIGTERM stops them all cleanly. Slow clients cannot
// hold it: see the limits in http_server.hpp, which holds the server itself
// (https_hello serves the same over TLS).
//
// Try: curl -v http://127.0.0.1:8080/   or   wrk -c64 -d5s http://127.0.0.1:8080/
// The request parser is examples/http_request.hpp, a function over bytes.
#include "http_server.hpp"

int main(int argc, char** argv) {
    example::options opt(argc, argv, http_server::synopsis,
                         {"--host", "--port", "--idle", "--request-timeout", "--max-connections", "--threads"});
    return http_server::run(opt, 8080, "http_hello", [](cosock::socket conn, http_server::limits lim,
                                                        http_server::connection_slot slot) {
        return http_server::serve_client(std::move(conn), lim, std::move(slot),
                                         std::chrono::steady_clock::now() + lim.request);
    });
}
