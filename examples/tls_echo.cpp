// The echo server and client over TLS: echo_server and echo_client with each
// connection wrapped by cosock::ssl_context::wrap_socket.
//
//   tls_echo server --cert FILE --key FILE [--password TEXT] [--backend NAME]
//                   [--host IP] [--port N] [--handshake-timeout SECONDS]
//   tls_echo client --cafile FILE [--backend NAME] [--host HOST] [--port N]
//                   [--server-name NAME] [--timeout SECONDS]
//                   [--count N --size BYTES] [MESSAGE...]
//
// The server prints "listening on HOST:PORT (BACKEND)" first, then sends back
// every byte each client sends; a client that fails its handshake (within
// --handshake-timeout, default 10 s), resets or truncates the stream ends
// only its own connection, reported on stderr. At the client's close_notify
// it answers with its own.
// The client verifies the server's certificate against --cafile (PEM) and its
// name against --server-name (default: --host, default 127.0.0.1); messages
// are the arguments or, without any, the lines of stdin, each echo printed as
// it arrives; --count N --size BYTES sends N random messages instead and
// prints a summary. It ends with close_notify; the exit status is 0 only when
// every echo matched. --port defaults to 4433 for both.
//
// Try (a throw-away certificate for 127.0.0.1):
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1
//     -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem
//   tls_echo server --cert cert.pem --key key.pem &
//   tls_echo client --cafile cert.pem hello world
// or with OpenSSL's own client: openssl s_client -CAfile cert.pem -connect 127.0.0.1:4433
#include <cosock/cosock.hpp>
#include <cosock/tls.hpp>

#include "options.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using cosock::task;

namespace {

constexpr const char* synopsis =
    "server --cert FILE --key FILE [--password TEXT] [--host IP] [--port N] [--handshake-timeout SECONDS]\n"
    "       tls_echo [--backend NAME] client --cafile FILE [--host HOST] [--port N] [--server-name NAME] "
    "[--timeout SECONDS] [--count N --size BYTES] [MESSAGE...]";

// ---- server

task<> handle(const cosock::ssl_context& ctx, cosock::socket conn, cosock::address peer,
              std::chrono::nanoseconds handshake_timeout) {
    try {
        conn.settimeout(handshake_timeout);
        cosock::wrap_options server_side{.server_side = true};
        cosock::ssl_socket tls = co_await ctx.wrap_socket(std::move(conn), server_side);
        tls.settimeout(std::nullopt); // an echo client may think as long as it likes
        std::array<char, 16384> buf;
        while (std::size_t n = co_await tls.recv(buf)) // 0: the client's close_notify
            co_await tls.sendall(std::string_view(buf.data(), n));
        co_await tls.shutdown(); // ours in answer
    } catch (const std::system_error& e) { // TLS errors are system_errors too
        std::fprintf(stderr, "tls_echo: %s: %s\n", peer.to_string().c_str(), e.what());
    }
}

task<> serve(cosock::scheduler& s, const cosock::ssl_context& ctx, cosock::socket srv,
             std::chrono::nanoseconds handshake_timeout) {
    for (;;) {
        auto [conn, peer] = co_await example::accept_patiently(srv, "tls_echo");
        s.spawn(handle(ctx, std::move(conn), peer, handshake_timeout));
    }
}

int run_server(const example::options& opt) {
    std::string cert = opt.text("--cert", ""), key = opt.text("--key", "");
    if (cert.empty() || key.empty()) opt.fail("the server needs --cert FILE and --key FILE");
    if (!opt.text("--cafile", "").empty()) opt.fail("--cafile is the client's option");
    if (opt.positional().size() > 1) opt.fail("unexpected argument '" + opt.positional()[1] + "'");
    const cosock::address where = opt.server_address(4433);
    auto handshake_timeout = opt.duration("--handshake-timeout", 10);
    try {
        cosock::ssl_context ctx = cosock::ssl_context::server();
        ctx.load_cert_chain(cert, key, opt.text("--password", ""));
        cosock::scheduler s{opt.backend()};
        cosock::socket srv = cosock::create_server(s, where);
        example::announce(srv, s);
        s.spawn(example::report_stats_on_sigusr1(s));
        s.run(serve(s, ctx, std::move(srv), handshake_timeout));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tls_echo: %s\n", e.what());
    }
    return 1; // serve() only ever ends with an error
}

// ---- client

task<> send_all(cosock::ssl_socket& tls, const std::string& msg) { co_await tls.sendall(msg); }

// recv gives whatever has arrived (a record at most): read until all `n` are here.
task<std::string> recv_exactly(cosock::ssl_socket& tls, std::size_t n) {
    std::string got(n, '\0');
    for (std::size_t have = 0; have < n;) {
        std::size_t k = co_await tls.recv(std::span(got).subspan(have));
        if (k == 0)
            throw std::runtime_error("the server ended the stream after " + std::to_string(have) + " of " +
                                     std::to_string(n) + " bytes");
        have += k;
    }
    co_return got;
}

// Sends and receives at once, so that a message bigger than the buffers on
// the way cannot deadlock (one reader and one writer at a time may share an
// ssl_socket).
task<std::string> round_trip(cosock::ssl_socket& tls, const std::string& msg) {
    auto [sent, echo] = co_await cosock::when_all(send_all(tls, msg), recv_exactly(tls, msg.size()));
    co_return std::move(echo);
}

struct client_options {
    cosock::host_port server;
    std::string server_name;
    std::optional<std::chrono::nanoseconds> timeout;
    std::vector<std::string> messages;
    long long count, size;
};

task<int> talk(const cosock::ssl_context& ctx, client_options o) {
    cosock::socket sock = co_await cosock::create_connection(o.server, o.timeout);
    cosock::wrap_options client_side{.server_hostname = o.server_name};
    cosock::ssl_socket tls = co_await ctx.wrap_socket(std::move(sock), client_side);
    int failures = 0;
    if (o.count > 0) {
        std::mt19937 random{std::random_device{}()};
        std::uniform_int_distribution<int> byte(0, 255);
        std::string msg(static_cast<std::size_t>(o.size), '\0');
        for (long long i = 0; i < o.count && failures == 0; ++i) {
            for (char& c : msg) c = static_cast<char>(byte(random));
            if (co_await round_trip(tls, msg) != msg) {
                std::fprintf(stderr, "tls_echo: message %lld came back different\n", i + 1);
                ++failures;
            }
        }
        if (failures == 0) std::printf("%lld messages of %lld bytes echoed correctly\n", o.count, o.size);
    } else {
        // Reading stdin blocks the loop, which is fine here: this is the only task.
        for (std::size_t i = 0;; ++i) {
            std::string msg;
            if (i < o.messages.size())
                msg = o.messages[i];
            else if (!o.messages.empty() || !std::getline(std::cin, msg))
                break;
            if (msg.empty()) continue; // nothing to echo
            std::string echo = co_await round_trip(tls, msg);
            std::printf("%s\n", echo.c_str());
            std::fflush(stdout);
            if (echo != msg) {
                std::fprintf(stderr, "tls_echo: the echo of message %zu differs from what was sent\n", i + 1);
                ++failures;
            }
        }
    }
    co_await tls.shutdown(); // close_notify: the server answers with its own
    std::array<char, 256> rest;
    if (co_await tls.recv(rest) != 0) ++failures; // nothing more was owed
    co_return failures == 0 ? 0 : 1;
}

int run_client(const example::options& opt) {
    std::string cafile = opt.text("--cafile", "");
    if (cafile.empty()) opt.fail("the client needs --cafile FILE (the certificate authority to trust)");
    if (!opt.text("--cert", "").empty() || !opt.text("--key", "").empty()) opt.fail("--cert and --key are the server's options");
    std::string host = opt.text("--host", "127.0.0.1");
    client_options o{.server = {host, static_cast<int>(opt.number("--port", 4433, 1, 65535))},
                     .server_name = opt.text("--server-name", host),
                     .timeout = std::nullopt,
                     .messages = {opt.positional().begin() + 1, opt.positional().end()},
                     .count = opt.number("--count", 0, 1, 1'000'000'000),
                     .size = 0};
    if (double t = opt.seconds("--timeout", 0); t > 0)
        o.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(t));
    o.size = opt.number("--size", o.count > 0 ? 1024 : 0, 1, 64 << 20);
    if (o.count > 0 && !o.messages.empty()) opt.fail("--count sends random messages: no MESSAGE arguments too");
    if (o.count == 0 && o.size > 0) opt.fail("--size goes with --count");
    try {
        cosock::ssl_context ctx = cosock::create_default_context();
        ctx.load_verify_locations(cafile);
        cosock::scheduler s{opt.backend()};
        return s.run(talk(ctx, std::move(o)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tls_echo: %s\n", e.what());
        return 1;
    }
}

} // namespace

int main(int argc, char** argv) {
    example::options opt(argc, argv, synopsis,
                         {"--cert", "--key", "--password", "--cafile", "--host", "--port", "--server-name",
                          "--timeout", "--handshake-timeout", "--count", "--size"});
    std::string mode = opt.positional().empty() ? "" : opt.positional()[0];
    if (mode == "server") return run_server(opt);
    if (mode == "client") return run_client(opt);
    opt.fail(mode.empty() ? "say 'server' or 'client'" : "'" + mode + "' is neither 'server' nor 'client'");
}
