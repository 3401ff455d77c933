#include "alloc_count.hpp"
#include "backends.hpp"

#include <array>
#include <string_view>

using cosock::task;

namespace {

task<> echo(cosock::socket& conn) {
    std::array<char, 64> buf;
    while (std::size_t n = co_await conn.recv(buf)) co_await conn.sendall(std::string_view(buf.data(), n));
}

constexpr std::string_view message = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// Under wine a loopback round trip costs about a millisecond: fewer there.
constexpr int round_trips = COSOCK_WINDOWS ? 10'000 : 100'000;
constexpr int warm_up = 1000;

} // namespace

BACKEND_TEST("steady-state accept, recv and send allocate nothing over many echo round trips") {
    SKIP_UNLESS_ALLOCATIONS_COUNTED();
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    cosock::socket conn;
    s.run([&]() -> task<> {
        cosock::socket c{s};
        co_await c.connect(srv.getsockname());
        auto accepted = co_await srv.accept();
        conn = std::move(accepted.conn);
        s.spawn(echo(conn));
        std::array<char, 64> buf;
        std::size_t before = 0;
        int ok = 0;
        MESSAGE(round_trips << " round trips after " << warm_up << " to warm up");
        for (int i = 0; i < warm_up + round_trips; ++i) {
            if (i == warm_up) before = allocations_so_far(); // after warm-up: backend tables sized
            // The reply is not there yet, so every recv waits through the backend.
            co_await c.sendall(message);
            std::size_t got = 0;
            while (got < buf.size()) got += co_await c.recv(std::span(buf).subspan(got));
            ok += std::string_view(buf.data(), got) == message;
        }
        CHECK(allocations_so_far() - before == 0);
        CHECK(ok == warm_up + round_trips);
        // A second connection, accepted while the listener is known to the backend.
        before = allocations_so_far();
        {
            cosock::socket c2{s};
            co_await c2.connect(srv.getsockname());
            auto [conn2, peer] = co_await srv.accept();
            (void)conn2;
        }
        CHECK(allocations_so_far() - before == 0);
    }());
}
