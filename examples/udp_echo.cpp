// A UDP echo server, and a client for it: one datagram in, the same datagram
// back to whoever sent it.
//
//   udp_echo [--backend NAME] [--host IP] [--port N]                     (server)
//   udp_echo [--backend NAME] --client IP:PORT [--timeout SECONDS] [--retries N] [MESSAGE...]
//
// The server binds --host (default 127.0.0.1) and --port (default 7000; 0 lets
// the kernel pick) and prints "listening on HOST:PORT (BACKEND)" first. The
// client sends each message (the arguments, or else the lines of stdin) as
// one datagram and prints its echo. UDP makes no promise of delivery: when no
// echo comes within --timeout (default 1 s) the client sends the datagram
// again, at most --retries more times (default 3), then gives up on it. The
// exit status is 0 only when every message was echoed.
#include <cosock/cosock.hpp>

#include "options.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using cosock::task;
using clock_type = std::chrono::steady_clock;

// The largest UDP payload: a smaller buffer would silently cut datagrams short.
using datagram = std::array<char, 65535>;

task<> serve(cosock::socket& sock) {
    datagram buf;
    for (;;) {
        // One socket serves every client: there are no connections, so one
        // client's trouble (say, an ICMP error for its address) must not end it.
        try {
            auto [n, peer] = co_await sock.recvfrom(buf);
            co_await sock.sendto(std::string_view(buf.data(), n), peer);
        } catch (const std::system_error& e) {
            std::fprintf(stderr, "udp_echo: %s\n", e.what());
        }
    }
}

// Sends `msg` and waits for it to come back from `server`, sending again when
// the wait times out. A datagram from elsewhere, or a late echo of an earlier
// message, is not the answer: ignore it and keep waiting until the deadline.
task<bool> echo_one(cosock::socket& sock, const cosock::address& server, const std::string& msg,
                    std::chrono::nanoseconds timeout, int retries) {
    datagram buf;
    for (int attempt = 0; attempt <= retries; ++attempt) {
        if (attempt > 0) std::fprintf(stderr, "udp_echo: no echo yet, sending again (%d of %d)\n", attempt, retries);
        co_await sock.sendto(msg, server);
        auto deadline = clock_type::now() + timeout;
        try {
            for (;;) {
                auto left = deadline - clock_type::now();
                auto [n, from] = co_await cosock::with_timeout(sock.recvfrom(buf), std::max(left, left.zero()));
                if (from == server && std::string_view(buf.data(), n) == msg) {
                    std::printf("%s\n", msg.c_str());
                    std::fflush(stdout);
                    co_return true;
                }
            }
        } catch (const cosock::timeout_error&) {
        }
    }
    std::fprintf(stderr, "udp_echo: no echo of '%s' after %d tries; UDP may drop datagrams, or no server runs\n",
                 msg.c_str(), retries + 1);
    co_return false;
}

task<int> client(cosock::scheduler& s, cosock::address server, std::vector<std::string> messages,
                 std::chrono::nanoseconds timeout, int retries) {
    cosock::socket sock{s, server.family(), cosock::sock_dgram};
    int failures = 0;
    for (std::size_t i = 0;; ++i) {
        std::string msg;
        if (i < messages.size())
            msg = messages[i];
        else if (!messages.empty() || !std::getline(std::cin, msg))
            break; // blocks: we are the only task
        failures += !co_await echo_one(sock, server, msg, timeout, retries);
    }
    co_return failures == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
    example::options opt(argc, argv,
                         "[--host IP] [--port N] | --client IP:PORT [--timeout SECONDS] [--retries N] [MESSAGE...]",
                         {"--host", "--port", "--client", "--timeout", "--retries"});
    std::string host = opt.text("--host", "127.0.0.1"), server = opt.text("--client", "");
    int port = static_cast<int>(opt.number("--port", 7000, 0, 65535));
    auto timeout = opt.duration("--timeout", 1.0);
    int retries = static_cast<int>(opt.number("--retries", 3, 0, 100));
    cosock::address where;
    try {
        where = server.empty() ? cosock::address(host, port) : cosock::address::parse(server);
    } catch (const std::invalid_argument& e) {
        opt.fail(e.what());
    }
    if (server.empty() && !opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    if (where.family() != cosock::af_inet && where.family() != cosock::af_inet6)
        opt.fail("--client needs an IP address and port, not '" + server + "'");
    try {
        cosock::scheduler s{opt.backend()};
        if (!server.empty()) return s.run(client(s, where, opt.positional(), timeout, retries));
        cosock::socket sock{s, where.family(), cosock::sock_dgram};
        sock.bind(where);
        std::printf("listening on %s (%s)\n", sock.getsockname().to_string().c_str(),
                    std::string(s.backend_name()).c_str());
        std::fflush(stdout); // the line goes down a pipe, where stdout is not line-buffered

        s.spawn(example::report_stats_on_sigusr1(s)); // kill -USR1 prints the loop's counters
        s.run(serve(sock));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "udp_echo: %s\n", e.what());
    }
    return 1;
}
