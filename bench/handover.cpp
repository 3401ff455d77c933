// What handing a connection to another thread costs: two schedulers of a
// scheduler_group, and one coroutine that goes back and forth between them.
//
//   handover --backend NAME [--count 100000]
//
// Three loops of `count` turns each, timed with the wall clock:
// - hop: `co_await resume_on(other)` alone;
// - hand-over: socket::move_to(other), the hop, then a 1-byte send and
//   receive on the socket there (its first operations on the new backend);
// - in place: the send and receive alone, without moving.
// One JSON line: nanoseconds per turn of each, and the hand-over minus the
// send and receive (what moving a connection adds to serving it). The
// threads wake each other at every turn, so the figures include a wake-up:
// they are latencies, not CPU time.
#include "common.hpp"

#include <cosock/cosock.hpp>

#include <array>
#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string_view>
#include <sys/socket.h>

using cosock::task;
using clk = std::chrono::steady_clock;

namespace {

double ns_per(clk::duration d, std::size_t count) {
    return std::chrono::duration<double, std::nano>(d).count() / double(count);
}

struct figures {
    double hop = 0, handover = 0, in_place = 0;
};

// One byte out through `sock`, back in through `peer` (a plain descriptor),
// and the same the other way.
task<> exchange(cosock::socket& sock, int peer) {
    std::array<char, 1> byte{'x'};
    co_await sock.sendall(std::string_view(byte.data(), 1));
    if (::recv(peer, byte.data(), 1, 0) != 1) throw std::runtime_error("handover: the byte did not arrive");
    if (::send(peer, byte.data(), 1, 0) != 1) throw std::runtime_error("handover: cannot send the byte back");
    if (co_await sock.recv(byte) != 1) throw std::runtime_error("handover: the byte did not come back");
}

task<> measure(cosock::scheduler_group& g, cosock::socket& sock, int peer, std::size_t count, figures& out) {
    co_await exchange(sock, peer); // in use on the first scheduler before the loops
    auto t0 = clk::now();
    for (std::size_t i = 0; i < count; ++i) co_await cosock::resume_on(g[(i + 1) % 2]);
    out.hop = ns_per(clk::now() - t0, count);

    t0 = clk::now();
    for (std::size_t i = 0; i < count; ++i) {
        cosock::scheduler& to = g[(i + 1) % 2];
        sock.move_to(to);
        co_await cosock::resume_on(to);
        co_await exchange(sock, peer);
    }
    out.handover = ns_per(clk::now() - t0, count);

    t0 = clk::now();
    for (std::size_t i = 0; i < count; ++i) co_await exchange(sock, peer);
    out.in_place = ns_per(clk::now() - t0, count);
    sock.close(); // while its scheduler still runs
}

task<> nothing() { co_return; } // the second thread only serves what hops to it

} // namespace

int main(int argc, char** argv) {
    bench::options opt(argc, argv, {"backend", "count"}, "--backend NAME [--count N]");
    auto count = std::size_t(opt.number("count", 100000));
    if (count % 2 != 0) ++count; // an even number of hops ends where it began
    try {
        cosock::scheduler_group g(2, {.which = cosock::parse_backend(opt.text("backend", "automatic"))});
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) throw std::runtime_error("handover: socketpair failed");
        cosock::socket sock = cosock::socket::from_fd(g[0], fds[0]); // g[0] runs nowhere yet
        figures f;
        g.run([&](cosock::scheduler&, std::size_t i) -> task<> {
            if (i == 0) return measure(g, sock, fds[1], count, f);
            return nothing();
        });
        ::close(fds[1]);
        std::printf("{\"backend\": \"%s\", \"count\": %zu, \"hop_ns\": %.0f, \"handover_ns\": %.0f, "
                    "\"in_place_ns\": %.0f, \"handover_cost_ns\": %.0f}\n",
                    opt.text("backend", "automatic").c_str(), count, f.hop, f.handover, f.in_place,
                    f.handover - f.in_place);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "handover: %s\n", e.what());
        return 1;
    }
}
