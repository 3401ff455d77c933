// The echo client of Python's socket-module documentation: sends messages to
// an echo server and checks that each comes back unchanged.
//
//   echo_client [--backend NAME] [--host HOST] [--port N] [--timeout SECONDS] [MESSAGE...]
//   echo_client ... --count N --size BYTES
//
// Messages are the arguments or, without any, the lines read from stdin; each
// echo is printed as it arrives. --count sends N messages of BYTES random bytes
// instead and prints only a summary (handy for soak runs). The exit status is
// 0 only when every echo matched what was sent. --host may be a name; --port
// defaults to 7000; --timeout bounds each socket operation (default: none).
#include <cosock/cosock.hpp>

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
#include <vector>

using cosock::task;

task<> send_all(cosock::socket& sock, const std::string& msg) { co_await sock.sendall(msg); }

// recv gives whatever has arrived, which may be part of the echo: TCP is a
// stream of bytes, not of messages, so read until all `n` are here.
task<std::string> recv_exactly(cosock::socket& sock, std::size_t n) {
    std::string got(n, '\0');
    for (std::size_t have = 0; have < n;) {
        std::size_t k = co_await sock.recv(std::span(got).subspan(have));
        if (k == 0)
            throw std::runtime_error("the server closed the connection after " + std::to_string(have) + " of " +
                                     std::to_string(n) + " bytes");
        have += k;
    }
    co_return got;
}

// Sends and receives at once: the server echoes while we are still sending,
// and a message bigger than both sockets' buffers would otherwise deadlock
// (we would not read until done writing, and the server could not write).
task<std::string> round_trip(cosock::socket& sock, const std::string& msg) {
    auto [sent, echo] = co_await cosock::when_all(send_all(sock, msg), recv_exactly(sock, msg.size()));
    co_return std::move(echo);
}

task<int> talk(cosock::host_port server, std::optional<std::chrono::nanoseconds> timeout,
               std::vector<std::string> messages, long long count, long long size) {
    cosock::socket sock = co_await cosock::create_connection(server, timeout);
    if (count > 0) {
        std::mt19937 random{std::random_device{}()};
        std::uniform_int_distribution<int> byte(0, 255);
        std::string msg(static_cast<std::size_t>(size), '\0');
        for (long long i = 0; i < count; ++i) {
            for (char& c : msg) c = static_cast<char>(byte(random));
            if (co_await round_trip(sock, msg) != msg) {
                std::fprintf(stderr, "echo_client: message %lld came back different\n", i + 1);
                co_return 1;
            }
        }
        std::printf("%lld messages of %lld bytes echoed correctly\n", count, size);
        co_return 0;
    }
    int failures = 0;
    // Reading stdin blocks the loop, which is fine here: this is the only task.
    for (std::size_t i = 0;; ++i) {
        std::string msg;
        if (i < messages.size())
            msg = messages[i];
        else if (!messages.empty() || !std::getline(std::cin, msg))
            break;
        if (msg.empty()) continue; // nothing to echo
        std::string echo = co_await round_trip(sock, msg);
        std::printf("%s\n", echo.c_str());
        if (echo != msg) {
            std::fprintf(stderr, "echo_client: the echo of message %zu differs from what was sent\n", i + 1);
            ++failures;
        }
        std::fflush(stdout);
    }
    co_return failures == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
    example::options opt(argc, argv,
                         "[--host HOST] [--port N] [--timeout SECONDS] [--count N --size BYTES] [MESSAGE...]",
                         {"--host", "--port", "--timeout", "--count", "--size"});
    std::string host = opt.text("--host", "127.0.0.1");
    int port = static_cast<int>(opt.number("--port", 7000, 1, 65535));
    std::optional<std::chrono::nanoseconds> timeout;
    if (double t = opt.seconds("--timeout", 0); t > 0)
        timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(t));
    long long count = opt.number("--count", 0, 1, 1'000'000'000);
    long long size = opt.number("--size", count > 0 ? 1024 : 0, 1, 64 << 20);
    if (count > 0 && !opt.positional().empty()) opt.fail("--count sends random messages: no MESSAGE arguments too");
    if (count == 0 && size > 0) opt.fail("--size goes with --count");
    try {
        cosock::scheduler s{opt.backend()};
        return s.run(talk({host, port}, timeout, opt.positional(), count, size));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_client: %s\n", e.what());
        return 1;
    }
}
