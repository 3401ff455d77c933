// HTTP/1.1 "Hello, World!" with keep-alive and pipelining, and the answers a
// server owes a client that sends something else: 400, 404, 413, 431, 501.
//
//   http_hello [--backend NAME] [--host ADDR] [--port N] [--idle SECONDS]
//
// Try: curl -v http://127.0.0.1:8080/   or   wrk -c64 -d5s http://127.0.0.1:8080/
// The request parser is examples/http_request.hpp, a function over bytes.
#include <cosock/cosock.hpp>

#include "http_request.hpp"
#include "options.hpp"

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

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

cosock::task<> serve_client(cosock::socket conn, std::chrono::nanoseconds idle) {
    try {
        conn.settimeout(idle);             // bounds every wait: a silent or stuck client is dropped
        std::array<char, 2 * max_head> in; // an unfinished head is < max_head: there is always room
        std::size_t have = 0, skip = 0;    // bytes in `in`; body bytes still to throw away
        std::string out;
        http::request req;
        bool open = true;
        while (open) {
            std::size_t n = co_await conn.recv(std::span(in).subspan(have));
            if (n == 0) co_return; // the client closed
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
                co_await conn.sendall(out);
                out.clear();
            }
            std::memmove(in.data(), in.data() + pos, have - pos);
            have -= pos;
        }
        co_await close_gracefully(conn); // we answered with "Connection: close"
    } catch (const std::system_error&) {
        // A client that resets, vanishes or stalls ends only its own connection.
    }
}

cosock::task<> serve(cosock::scheduler& s, cosock::socket srv, std::chrono::nanoseconds idle) {
    for (;;) {
        cosock::socket conn;
        try {
            conn = (co_await srv.accept()).conn;
            conn.setsockopt(cosock::ipproto_tcp, cosock::tcp_nodelay, 1); // a batch of responses is one send
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "http_hello: %s\n", e.what());
            conn.close();
        }
        if (conn.fileno() >= 0)
            s.spawn(serve_client(std::move(conn), idle));
        else
            co_await cosock::sleep_for(100ms); // e.g. out of descriptors: retrying at once would spin
    }
}

} // namespace

int main(int argc, char** argv) {
    example::options opt(argc, argv, "[--host ADDR] [--port N] [--idle SECONDS]", {"--host", "--port", "--idle"});
    auto idle =
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(opt.seconds("--idle", 60)));
    if (!opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    const cosock::address where = opt.server_address(8080);
    try {
        cosock::scheduler s{opt.backend()};
        cosock::socket srv = cosock::create_server(s, where);
        example::announce(srv, s);
        s.run(serve(s, std::move(srv), idle));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "http_hello: %s\n", e.what());
        return 1;
    }
}
