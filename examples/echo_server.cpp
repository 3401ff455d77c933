// The echo server of Python's socket-module documentation: every byte a client
// sends comes back to it, one task per connection.
//
//   echo_server [--backend NAME] [--host IP] [--port N] [--threads N]
//
// --threads N (default 1) serves from N threads, each with its own scheduler
// and its own listening socket on the same port (SO_REUSEPORT: the kernel
// spreads the connections); SIGINT or SIGTERM stops them all cleanly.
// --host is a numeric IPv4 or IPv6 address (default 127.0.0.1; "::" or
// "0.0.0.0" for every interface), --port defaults to 7000 and 0 lets the
// kernel pick one. The first line printed is "listening on HOST:PORT (BACKEND)".
// Out of descriptors, it pauses accepting (connections wait in the kernel's
// queue) and serves the clients it has until some close.
// Try it with echo_client, or nc 127.0.0.1 7000.
#include <cosock/cosock.hpp>

#include "options.hpp"

#include <array>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using cosock::task;

// One client. A client that resets the connection or vanishes ends only this
// task: the error is reported here, and the server goes on accepting others.
task<> handle(cosock::socket conn, cosock::address peer) {
    try {
        std::array<char, 16384> buf;
        while (std::size_t n = co_await conn.recv(buf)) // 0: the client closed its side
            co_await conn.sendall(std::string_view(buf.data(), n));
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "echo_server: %s: %s\n", peer.to_string().c_str(), e.what());
    }
}

task<> serve(cosock::scheduler& s, cosock::socket srv) {
    for (;;) {
        auto [conn, peer] = co_await example::accept_patiently(srv, "echo_server");
        s.spawn(handle(std::move(conn), peer));
    }
}

// --threads N: a scheduler_group, a SO_REUSEPORT listener per thread, all
// made before the threads run (a scheduler that runs nowhere yet may have
// sockets made for it from here).
int serve_threads(const example::options& opt, const cosock::address& where, std::size_t threads) {
    cosock::scheduler_group g(threads, {.which = opt.backend()});
    std::vector<cosock::socket> listeners = example::reuse_port_listeners(g, where);
    example::announce(listeners[0], g[0]);
    example::stop_on_interrupt(g);
    g.run([&](cosock::scheduler& s, std::size_t i) -> task<> {
        s.spawn(example::report_stats_on_sigusr1(s));
        co_await serve(s, std::move(listeners[i]));
    });
    return 0;
}

int main(int argc, char** argv) {
    example::options opt(argc, argv, "[--host IP] [--port N] [--threads N]", {"--host", "--port", "--threads"});
    if (!opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    const cosock::address where = opt.server_address(7000);
    auto threads = std::size_t(opt.number("--threads", 1, 1, 1024));
    try {
        if (threads > 1) return serve_threads(opt, where, threads);
        cosock::scheduler s{opt.backend()};
        // create_server sets SO_REUSEADDR, so a restarted server need not wait
        // for the old connections' TIME_WAIT to end.
        cosock::socket srv = cosock::create_server(s, where);
        example::announce(srv, s);
        s.spawn(example::report_stats_on_sigusr1(s)); // kill -USR1 prints the loop's counters
        s.run(serve(s, std::move(srv)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
    }
    return 1; // serve() only ever ends with an error (e.g. the backend's wait failed)
}
