// HTTP/1.1 "Hello, World!" with keep-alive and pipelining, and the answers a
// server owes a client that sends something else: 400, 404, 413, 431, 501.
//
//   http_hello [--backend NAME] [--host ADDR] [--port N] [--idle SECONDS]
//              [--request-timeout SECONDS] [--max-connections N] [--threads N]
//
// --threads N (default 1) serves from N threads, each with its own scheduler
// and a SO_REUSEPORT listener on the same port; --max-connections then counts
// per thread. SIGINT or SIGTERM stops them all cleanly.
// Slow clients cannot hold it. A request head must arrive whole within
// --request-timeout (default 10 s) of its first byte (for a connection's
// first, of the accept), and the body after it within as long again after the
// answer: a client that trickles is closed however steadily it sends. Between
// requests a connection may be silent for --idle (60 s). Beyond
// --max-connections (default: the RLIMIT_NOFILE descriptor limit less 16, at
// most 10,000) a new connection is accepted and closed at once: that costs
// nothing, and the client may retry. Out of descriptors even so, it pauses
// accepting and serves the connections it has.
//
// Try: curl -v http://127.0.0.1:8080/   or   wrk -c64 -d5s http://127.0.0.1:8080/
// The request parser is examples/http_request.hpp, a function over bytes.
#include <cosock/cosock.hpp>

#include "http_request.hpp"
#include "options.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>
#include <string_view>
#include <sys/resource.h>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_head = 8192;      // a longer request head gets 431
constexpr std::uint64_t max_body = 1 << 20; // bodies are read and thrown away, up to this size
constexpr std::string_view hello = "Hello, World!\n";

// Appends one response. `out` keeps its capacity from one batch to the next,
// so once a connection has warmed up a response costs no allocation.
void respond(std::string& out, std::string_view status, std::string_view body, std::string_view connection,
             bool head_only = false) {
    char length[24];
    auto end = std::to_chars(length, length + sizeof length, body.size()).ptr;
    out.append("HTTP/1.1 ").append(status).append("\r\nContent-Type: text/plain\r\nContent-Length: ");
    out.append(length, end).append("\r\n").append(connection).append("\r\n");
    if (!head_only) out.append(body);
}

// Closing a socket with unread input makes the kernel send a reset, which can
// destroy the response still on its way. So: send FIN, then read and discard
// until the client closes too (within limits).
cosock::task<> close_gracefully(cosock::socket& conn) {
    conn.shutdown(cosock::shut_wr);
    conn.settimeout(2s);
    std::array<char, 4096> sink;
    for (std::size_t total = 0; total < max_body;) {
        std::size_t n = co_await conn.recv(sink);
        if (n == 0) break;
        total += n;
    }
}

struct limits {
    std::chrono::nanoseconds idle, request;
    long long max_connections;
};

cosock::task<> serve_client(cosock::socket conn, limits lim, long long& open_connections) {
    using clock = std::chrono::steady_clock;
    struct counted { // counted by serve(); this frees the slot before `conn` closes
        long long& n;
        ~counted() { --n; }
    } slot{open_connections};
    try {
        std::array<char, 2 * max_head> in; // an unfinished head is < max_head: there is always room
        std::size_t have = 0, skip = 0;    // bytes in `in`; body bytes still to throw away
        std::string out;
        http::request req;
        bool open = true, between = false; // between: waiting for a request's first byte
        auto deadline = clock::now() + lim.request;
        while (open) {
            // Every wait is bounded: a silent, trickling or stuck client is dropped.
            conn.settimeout(between ? lim.idle : std::max<std::chrono::nanoseconds>(deadline - clock::now(), 1ns));
            std::size_t n = co_await conn.recv(std::span(in).subspan(have));
            if (n == 0) co_return; // the client closed
            if (between) deadline = clock::now() + lim.request;
            have += n;
            // Answer every complete request in the buffer (pipelining), then send once.
            std::size_t pos = 0;
            while (open) {
                std::size_t body = std::min<std::uint64_t>(skip, have - pos);
                pos += body;
                skip -= body;
                if (skip > 0) break;
                auto status = http::parse_request({in.data() + pos, have - pos}, req, max_head);
                if (status == http::parse_status::incomplete) break;
                open = status == http::parse_status::complete && req.keep_alive;
                std::string_view connection = !open                    ? "Connection: close\r\n"
                                              : req.version_minor == 0 ? "Connection: keep-alive\r\n"
                                                                       : "";
                if (status == http::parse_status::bad_request) {
                    respond(out, "400 Bad Request", "bad request\n", connection);
                } else if (status == http::parse_status::headers_too_large) {
                    respond(out, "431 Request Header Fields Too Large", "request head too large\n", connection);
                } else if (req.has_transfer_encoding || req.content_length > max_body) {
                    // Without the body's framing understood, the next request cannot be found: close.
                    open = false;
                    bool te = req.has_transfer_encoding;
                    respond(out, te ? "501 Not Implemented" : "413 Content Too Large",
                            te ? "Transfer-Encoding is not supported\n" : "request body too large\n",
                            "Connection: close\r\n");
                } else {
                    pos += req.consumed;
                    skip = req.content_length;
                    bool found = req.target == "/";
                    respond(out, found ? "200 OK" : "404 Not Found", found ? hello : "not found\n", connection,
                            req.method == "HEAD");
                }
            }
            if (!out.empty()) {
                conn.settimeout(lim.idle); // for the client to take the answers
                co_await conn.sendall(out);
                out.clear();
                deadline = clock::now() + lim.request; // for what follows them
            }
            std::memmove(in.data(), in.data() + pos, have - pos);
            have -= pos;
            between = have == 0 && skip == 0;
        }
        co_await close_gracefully(conn); // we answered with "Connection: close"
    } catch (const std::system_error&) {
        // A client that resets, vanishes or stalls ends only its own connection.
    }
}

cosock::task<> serve(cosock::scheduler& s, cosock::socket srv, limits lim, long long& open_connections) {
    for (;;) {
        cosock::socket conn = (co_await example::accept_patiently(srv, "http_hello")).conn;
        if (open_connections >= lim.max_connections) continue; // closed at once
        try {
            conn.setsockopt(cosock::ipproto_tcp, cosock::tcp_nodelay, 1); // a batch of responses is one send
        } catch (const std::system_error&) {
            continue; // e.g. reset already
        }
        ++open_connections; // now, not when the task first runs: a burst of accepts comes first
        s.spawn(serve_client(std::move(conn), lim, open_connections));
    }
}

// As many connections as the descriptor limit allows, less some for the
// server's own (listening socket, backend, standard streams).
long long default_max_connections() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return 10000;
    return std::clamp<long long>(static_cast<long long>(lim.rlim_cur) - 16, 1, 10000);
}

} // namespace

int main(int argc, char** argv) {
    example::options opt(
        argc, argv,
        "[--host ADDR] [--port N] [--idle SECONDS] [--request-timeout SECONDS] [--max-connections N] [--threads N]",
        {"--host", "--port", "--idle", "--request-timeout", "--max-connections", "--threads"});
    limits lim{opt.duration("--idle", 60), opt.duration("--request-timeout", 10),
               opt.number("--max-connections", default_max_connections(), 1, 1000000)};
    if (!opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    const cosock::address where = opt.server_address(8080);
    auto threads = std::size_t(opt.number("--threads", 1, 1, 1024));
    // Per thread, outliving the schedulers, which may destroy connections' frames.
    std::vector<long long> open_connections(threads, 0);
    try {
        if (threads == 1) {
            cosock::scheduler s{opt.backend()};
            cosock::socket srv = cosock::create_server(s, where);
            example::announce(srv, s);
            s.spawn(example::report_stats_on_sigusr1(s)); // kill -USR1 prints the loop's counters
            s.run(serve(s, std::move(srv), lim, open_connections[0]));
            return 1; // serve() only ever ends with an error
        }
        // A scheduler_group: the listeners are made before the threads run.
        cosock::scheduler_group g(threads, {.which = opt.backend()});
        std::vector<cosock::socket> listeners;
        cosock::address at = where;
        for (std::size_t i = 0; i < threads; ++i) {
            listeners.push_back(cosock::create_server(g[i], at, {.reuse_port = true}));
            at = listeners.back().getsockname(); // port 0: the others share the port the first was given
        }
        example::announce(listeners[0], g[0]);
        g.stop_on({SIGINT, SIGTERM});
        g.run([&](cosock::scheduler& s, std::size_t i) -> cosock::task<> {
            s.spawn(example::report_stats_on_sigusr1(s));
            co_await serve(s, std::move(listeners[i]), lim, open_connections[i]);
        });
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "http_hello: %s\n", e.what());
        return 1;
    }
}
