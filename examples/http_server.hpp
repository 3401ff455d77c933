// The HTTP/1.1 "Hello, World!" server shared by http_hello (plain TCP) and
// https_hello (the same over TLS): keep-alive, pipelining, the answers owed to
// a client that sends something else (400, 404, 413, 431, 501), and the
// limits that keep slow clients from holding it. A connection is served by
// serve_client<Conn>, where Conn is cosock::socket or cosock::ssl_socket: both
// have recv, sendall and settimeout; only a graceful close differs.
// run_http_server() is either program's main loop, on one scheduler or, with
// --threads N, on a scheduler_group. Not part of the library.
//
// Slow clients cannot hold it. A request head must arrive whole within
// --request-timeout (default 10 s) of its first byte (for a connection's
// first, of the accept), and the body after it within as long again after the
// answer: a client that trickles is closed however steadily it sends. Between
// requests a connection may be silent for --idle (60 s). Beyond
// --max-connections (default: the RLIMIT_NOFILE descriptor limit less 16, at
// most 10,000) a new connection is accepted and closed at once: that costs
// nothing, and the client may retry. Out of descriptors even so, it pauses
// accepting and serves the connections it has.
#pragma once

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
#include <string_view>
#if !COSOCK_WINDOWS
#include <sys/resource.h>
#endif
#include <system_error>
#include <vector>

namespace http_server {

using namespace std::chrono_literals;

inline constexpr std::size_t max_head = 8192;      // a longer request head gets 431
inline constexpr std::uint64_t max_body = 1 << 20; // bodies are read and thrown away, up to this size
inline constexpr std::string_view hello = "Hello, World!\n";

/// The options both programs take besides --backend.
inline constexpr std::string_view synopsis =
    "[--host ADDR] [--port N] [--idle SECONDS] [--request-timeout SECONDS] [--max-connections N] [--threads N]";

struct limits {
    std::chrono::nanoseconds idle, request;
    long long max_connections;
};

// Appends one response. `out` keeps its capacity from one batch to the next,
// so once a connection has warmed up a response costs no allocation.
inline void respond(std::string& out, std::string_view status, std::string_view body, std::string_view connection,
                    bool head_only = false) {
    char length[24];
    auto end = std::to_chars(length, length + sizeof length, body.size()).ptr;
    out.append("HTTP/1.1 ").append(status).append("\r\nContent-Type: text/plain\r\nContent-Length: ");
    out.append(length, end).append("\r\n").append(connection).append("\r\n");
    if (!head_only) out.append(body);
}

// Reads and discards until the client closes too (within limits).
template <class Conn>
cosock::task<> drain(Conn& conn) {
    conn.settimeout(2s);
    std::array<char, 4096> sink;
    for (std::size_t total = 0; total < max_body;) {
        std::size_t n = co_await conn.recv(sink);
        if (n == 0) break;
        total += n;
    }
}

// Closing a socket with unread input makes the kernel send a reset, which can
// destroy the response still on its way. So: send FIN (over TLS, close_notify
// first), then read and discard until the client closes too.
template <class Conn>
cosock::task<> close_gracefully(Conn& conn) {
    if constexpr (requires { conn.socket(); }) { // a cosock::ssl_socket
        co_await conn.shutdown();
        conn.socket().shutdown(cosock::shut_wr);
    } else {
        conn.shutdown(cosock::shut_wr);
    }
    co_await drain(conn);
}

/// The number of connections being served (by one scheduler), counted from
/// the accept; a slot is freed when its connection's task ends.
class connection_slot {
  public:
    explicit connection_slot(long long& n) noexcept : n_(&n) { ++n; }
    connection_slot(connection_slot&& o) noexcept : n_(std::exchange(o.n_, nullptr)) {}
    connection_slot& operator=(connection_slot&&) = delete;
    ~connection_slot() {
        if (n_) --*n_;
    }

  private:
    long long* n_;
};

/// One client, from its first request to the end of the connection: the
/// first request's head must be in by `first_deadline` (the accept, plus
/// --request-timeout). `slot` is freed before `conn` closes.
template <class Conn>
cosock::task<> serve_client(Conn conn, limits lim, connection_slot counted,
                            std::chrono::steady_clock::time_point first_deadline) {
    using clock = std::chrono::steady_clock;
    connection_slot slot = std::move(counted); // a local: destroyed before the parameters
    try {
        std::array<char, 2 * max_head> in; // an unfinished head is < max_head: there is always room
        std::size_t have = 0, skip = 0;    // bytes in `in`; body bytes still to throw away
        std::string out;
        http::request req;
        bool open = true, between = false; // between: waiting for a request's first byte
        auto deadline = first_deadline;
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
        // A client that resets, vanishes or stalls ends only its own connection
        // (TLS errors are system_errors too).
    }
}

/// Accepts connections and hands each to `start(conn, lim, slot)`, which
/// returns the task that serves it.
template <class Start>
cosock::task<> serve(cosock::scheduler& s, cosock::socket srv, limits lim, long long& open_connections,
                     const char* program, Start start) {
    for (;;) {
        cosock::accept_result accepted = co_await example::accept_patiently(srv, program);
        cosock::socket conn = std::move(accepted.conn);
        if (open_connections >= lim.max_connections) continue; // closed at once
        try {
            conn.setsockopt(cosock::ipproto_tcp, cosock::tcp_nodelay, 1); // a batch of responses is one send
        } catch (const std::system_error&) {
            continue; // e.g. reset already
        }
        // Counted now, not when the task first runs: a burst of accepts comes first.
        s.spawn(start(std::move(conn), lim, connection_slot(open_connections)));
    }
}

// As many connections as the descriptor limit allows, less some for the
// server's own (listening socket, backend, standard streams).
// Windows has no such limit: 10000, as where the limit is infinite.
inline long long default_max_connections() {
#if COSOCK_WINDOWS
    return 10000;
#else
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur == RLIM_INFINITY) return 10000;
    return std::clamp<long long>(static_cast<long long>(lim.rlim_cur) - 16, 1, 10000);
#endif
}

/// The options shared by both programs, read from `opt`.
inline limits limits_from(const example::options& opt) {
    return {opt.duration("--idle", 60), opt.duration("--request-timeout", 10),
            opt.number("--max-connections", default_max_connections(), 1, 1000000)};
}

/// Either program's main: listens on --host/--port, prints the listening
/// line, and serves with `start` on one scheduler or, with --threads N, on N
/// (each with a SO_REUSEPORT listener; SIGINT or SIGTERM stops them cleanly).
/// Returns the exit status.
template <class Start>
int run(const example::options& opt, int default_port, const char* program, Start start) {
    limits lim = limits_from(opt);
    if (!opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    const cosock::address where = opt.server_address(default_port);
    auto threads = std::size_t(opt.number("--threads", 1, 1, 1024));
    // Per thread, outliving the schedulers, which may destroy connections' frames.
    std::vector<long long> open_connections(threads, 0);
    try {
        if (threads == 1) {
            cosock::scheduler s{opt.backend()};
            cosock::socket srv = cosock::create_server(s, where);
            example::announce(srv, s);
            s.spawn(example::report_stats_on_sigusr1(s)); // kill -USR1 prints the loop's counters
            s.run(serve(s, std::move(srv), lim, open_connections[0], program, start));
            return 1; // serve() only ever ends with an error
        }
        // A scheduler_group: the listeners are made before the threads run.
        cosock::scheduler_group g(threads, {.which = opt.backend()});
        std::vector<cosock::socket> listeners = example::reuse_port_listeners(g, where);
        example::announce(listeners[0], g[0]);
        example::stop_on_interrupt(g);
        g.run([&](cosock::scheduler& s, std::size_t i) -> cosock::task<> {
            s.spawn(example::report_stats_on_sigusr1(s));
            co_await serve(s, std::move(listeners[i]), lim, open_connections[i], program, start);
        });
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", program, e.what());
        return 1;
    }
}

} // namespace http_server
