// An idle loop sleeps: after an operation of any kind has ended, in any way, a
// scheduler whose tasks all wait on silent peers makes only a handful of
// backend waits over an idle window, on every backend. The window's length is
// not asserted; only the count of waits is (scheduler::stats()).
#include "backends.hpp"

#include <array>
#include <chrono>
#include <csignal>
#include <deque>
#include <string>
#include <thread>
#include <vector>
#if !COSOCK_WINDOWS
#include <fcntl.h>
#include <unistd.h>
#endif

using cosock::task;
using namespace std::chrono_literals;

namespace {

// Everything a scenario may leave waiting lives here, for the whole test.
struct world {
    explicit world(cosock::scheduler& sched) : s(sched) {}
    cosock::scheduler& s;
    std::deque<cosock::socket> socks; // a deque: what waits on them never moves
    std::deque<cosock::file_object> files;
    std::array<char, 64> buf{};

    cosock::socket& keep(cosock::socket sock) { return socks.emplace_back(std::move(sock)); }
    std::pair<cosock::socket*, cosock::socket*> pair(int type = cosock::sock_stream) {
        auto [a, b] = cosock::socketpair(s, COSOCK_WINDOWS ? cosock::af_inet : cosock::af_unix, type);
        cosock::socket* pa = &keep(std::move(a));
        cosock::socket* pb = &keep(std::move(b));
        return {pa, pb};
    }
};

// A task that waits on a silent peer for ever (until the scheduler goes).
task<> recv_forever(cosock::socket& sock) {
    std::array<char, 16> b;
    co_await sock.recv(b);
    FAIL("a silent peer sent something");
}

task<> readline_forever(cosock::file_object& f) {
    co_await f.readline();
    FAIL("a silent peer sent a line");
}

task<std::size_t> recv_one(cosock::socket& sock) {
    std::array<char, 16> b;
    co_return co_await sock.recv(b);
}

using scenario = task<> (*)(world&);

task<> after_recv(world& w) {
    auto [a, b] = w.pair();
    co_await b->sendall(std::string_view("x"));
    CHECK(co_await a->recv(w.buf) == 1);
    w.s.spawn(recv_forever(*a));
}

task<> after_send(world& w) {
    auto [a, b] = w.pair();
    CHECK(co_await a->send(std::string_view("xy")) == 2);
    CHECK(co_await b->recv(w.buf) == 2);
    w.s.spawn(recv_forever(*a));
    w.s.spawn(recv_forever(*b));
}

// The scenario itself takes every byte, so that the idle window starts when
// nothing is on its way any more (over TCP, as on Windows, a sendall ends while
// much of it is still in the buffers).
task<> after_sendall(world& w) {
    auto [a, b] = w.pair();
    w.s.spawn([](cosock::socket& a) -> task<> {
        std::string big(1 << 20, 'z');
        CHECK(co_await a.sendall(big) == big.size());
        co_await recv_forever(a);
    }(*a));
    std::vector<char> sink(65536);
    for (std::size_t n = 1 << 20; n > 0;) n -= co_await b->recv(sink); // the last byte left before it came
    w.s.spawn(recv_forever(*b));
}

task<> after_accept_and_connect(world& w) {
    cosock::socket& srv = w.keep(listener(w.s));
    cosock::socket& c = w.keep(cosock::socket{w.s});
    auto connecting = [](cosock::socket& c, cosock::address to) -> task<> { co_await c.connect(to); };
    w.s.spawn(connecting(c, srv.getsockname()));
    auto [conn, peer] = co_await srv.accept();
    cosock::socket& served = w.keep(std::move(conn));
    w.s.spawn(recv_forever(served));
    w.s.spawn(recv_forever(c));
    w.s.spawn([](cosock::socket& srv) -> task<> {
        co_await srv.accept();
        FAIL("nobody else connects");
    }(srv));
}

task<> after_datagrams(world& w) {
    cosock::socket& a = w.keep(cosock::socket{w.s, cosock::af_inet, cosock::sock_dgram});
    cosock::socket& b = w.keep(cosock::socket{w.s, cosock::af_inet, cosock::sock_dgram});
    a.bind({"127.0.0.1", 0});
    b.bind({"127.0.0.1", 0});
    CHECK(co_await a.sendto(std::string_view("d"), b.getsockname()) == 1);
    auto [n, from] = co_await b.recvfrom(w.buf);
    CHECK(n == 1);
    w.s.spawn([](cosock::socket& b) -> task<> {
        std::array<char, 8> x;
        co_await b.recvfrom(x);
        FAIL("nobody sends another datagram");
    }(b));
}

task<> after_makefile_lines(world& w) {
    auto [a, b] = w.pair();
    cosock::file_object& fa = w.files.emplace_back(a->makefile("rwb"));
    cosock::file_object& fb = w.files.emplace_back(b->makefile("rwb"));
    w.s.spawn([](cosock::file_object& fb) -> task<> {
        co_await fb.write(std::string_view("one\n"));
        co_await fb.flush();
        co_await cosock::sleep_for(10ms); // the reader waits for the second line
        co_await fb.write(std::string_view("two\n"));
        co_await fb.flush();
    }(fb));
    CHECK(co_await fa.readline() == "one\n");
    CHECK(co_await fa.readline() == "two\n");
    CHECK(co_await fa.read(0) == "");
    w.s.spawn(readline_forever(fa));
    w.s.spawn(readline_forever(fb));
}

task<> after_makefile_big_write(world& w) {
    auto [a, b] = w.pair();
    cosock::file_object& fa = w.files.emplace_back(a->makefile("wb"));
    w.s.spawn([](cosock::file_object& fa, cosock::socket& a) -> task<> {
        std::string big(1 << 20, 'q');
        co_await fa.write(big); // fills the socket buffer: the flush waits for writability
        co_await fa.flush();
        co_await recv_forever(a);
    }(fa, *a));
    std::vector<char> sink(65536);
    for (std::size_t n = 1 << 20; n > 0;) n -= co_await b->recv(sink);
    w.s.spawn(recv_forever(*b));
}

task<> after_select(world& w) {
    auto [a, b] = w.pair();
    co_await b->sendall(std::string_view("s"));
    std::vector<cosock::socket*> readers{a}, none;
    auto r = co_await cosock::select(readers, none, none);
    CHECK(r.readable.size() == 1);
    std::array<char, 1> one; // read exactly what came: nothing says the socket is empty now
    CHECK(co_await a->recv(one) == 1);
    w.s.spawn([](std::vector<cosock::socket*> readers) -> task<> {
        std::vector<cosock::socket*> none;
        co_await cosock::select(readers, none, none);
        FAIL("a silent socket became readable");
    }(readers));
}

task<> after_select_on_raw_descriptors(world& w) {
    int p[2];
#if COSOCK_WINDOWS // no pipes there: a raw loopback pair
    REQUIRE(cosock::detail::sys::socketpair(cosock::af_inet, cosock::sock_stream, 0, p) == 0);
#else
    REQUIRE(::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
#endif
    w.s.spawn([](cosock::scheduler& s, int fd) -> task<> {
        co_await s.yield();
#if COSOCK_WINDOWS
        REQUIRE(raw::send(fd, "p", 1) == 1);
#else
        REQUIRE(::write(fd, "p", 1) == 1);
#endif
    }(w.s, p[1]));
    std::vector<int> readers{p[0]}, none; // named (see GCC before 13 in task.hpp)
    auto r = co_await cosock::select(readers, none, none);
    CHECK(r.readable.size() == 1);
    raw::close(p[0]); // closed and its number free for the sockets below
    raw::close(p[1]);
    auto [a, b] = w.pair();
    w.s.spawn(recv_forever(*a));
    w.s.spawn(recv_forever(*b));
}

task<> after_a_move(world& w) {
    auto [a, b] = w.pair();
    w.s.spawn([](world& w, cosock::socket& a, cosock::socket& b) -> task<> {
        co_await w.s.yield(); // the recv below waits by now
        w.keep(std::move(a)); // the waiting recv's socket moves
        co_await b.sendall(std::string_view("m"));
    }(w, *a, *b));
    CHECK(co_await a->recv(w.buf) == 1);
    w.s.spawn(recv_forever(w.socks.back()));
}

// A writer waits for room on a TCP connection whose peer has shut its sending
// side (io_uring's poll reports that half-close to a wait for writability).
// Writers that fill a peer's buffers are stuck once its window is closed.
// Segments still in flight are acknowledged for a while after the last read,
// and the peer's stack may still open its window now and then (zero-window
// probes back off: 200 ms, 400 ms, …), each time making room the writers
// rightly use: wait until a window as long as the check's passes with at most
// the timer's own wake-up and one such event. A loop that spins never gets
// there, and the check that follows fails.
task<> until_writers_stuck(world& w) {
    for (int i = 0; i < 15; ++i) {
        std::uint64_t before = w.s.stats().waits;
        co_await cosock::sleep_for(std::chrono::milliseconds(200));
        if (w.s.stats().waits - before <= 2) break;
    }
}

task<> after_a_peer_half_closed(world& w) {
    cosock::socket& srv = w.keep(listener(w.s));
    cosock::socket& cli = w.keep(cosock::socket{w.s});
    co_await cli.connect(srv.getsockname());
    cosock::socket& conn = w.keep((co_await srv.accept()).conn);
    cli.shutdown(cosock::shut_wr);
    cosock::file_object& f = w.files.emplace_back(conn.makefile("wb"));
    w.s.spawn([](cosock::file_object& f) -> task<> {
        std::string big(1 << 20, 'h');
        for (;;) co_await f.write(big); // fills the buffers, then waits for room
    }(f));
    w.s.spawn([](cosock::socket& conn) -> task<> { // sends without waiting, and select()s for room
        conn.settimeout(std::chrono::seconds(0));
        std::string big(1 << 16, 's');
        std::vector<cosock::socket*> none, writers{&conn};
        for (;;) {
            bool full = false;
            try {
                co_await conn.send(big);
            } catch (const std::system_error&) { // EAGAIN
                full = true;
            }
            if (full) co_await cosock::select(none, writers, none);
        }
    }(w.keep(cosock::socket::from_fd(w.s, cosock::detail::sys::dup(conn.fileno())))));
    std::vector<char> sink(1 << 16);
    for (std::size_t got = 0; got < (4u << 20);) got += co_await cli.recv(sink); // then stops reading
    co_await until_writers_stuck(w);
}

// Urgent data from the peer while our writes wait for room: Windows' select()
// reports it in the exception set, where a failed connect is reported too.
task<> after_urgent_data_under_waiting_writes(world& w) {
    cosock::socket& srv = w.keep(listener(w.s));
    cosock::socket& cli = w.keep(cosock::socket{w.s});
    co_await cli.connect(srv.getsockname());
    cosock::socket& conn = w.keep((co_await srv.accept()).conn);
    w.s.spawn([](cosock::socket& conn) -> task<> {
        std::string big(1 << 20, 'u');
        for (;;) co_await conn.sendall(big); // fills the buffers, then waits for room
    }(conn));
    co_await w.s.yield();
    CHECK(co_await cli.send(std::string_view("!"), cosock::msg_oob) == 1);
    co_await until_writers_stuck(w); // nobody reads cli
}

// One ICMP error (port unreachable) on a datagram socket, then a select()
// loop waits on it.
task<> after_an_icmp_error(world& w) {
    cosock::socket dead{w.s, cosock::af_inet, cosock::sock_dgram};
    dead.bind({"127.0.0.1", 0});
    cosock::address nobody = dead.getsockname();
    dead.close();
    cosock::socket& u = w.keep(cosock::socket{w.s, cosock::af_inet, cosock::sock_dgram});
    co_await u.connect(nobody);
    co_await u.send(std::string_view("ping"));
    w.s.spawn([](cosock::socket& u) -> task<> {
        for (;;) {
            std::vector<cosock::socket*> readers{&u}, none;
            co_await cosock::select(readers, none, none);
            std::array<char, 16> b;
            try {
                co_await u.recv(b);
            } catch (const std::system_error&) { // ECONNREFUSED, once
            }
        }
    }(u));
    co_await cosock::sleep_for(20ms); // the error arrives, and is read
}

task<> after_a_far_timer(world& w) {
    w.s.spawn([]() -> task<> { co_await cosock::sleep_for(std::chrono::hours(24 * 60)); }());
    auto [a, b] = w.pair();
    w.s.spawn(recv_forever(*a));
    co_return;
}

task<> after_post(world& w) {
    bool ran = false;
    std::thread poster([&] { w.s.post([&] { ran = true; }); });
    poster.join();
    while (!ran) co_await cosock::sleep_for(1ms);
    auto [a, b] = w.pair();
    w.s.spawn(recv_forever(*a));
}

task<> after_getaddrinfo(world& w) {
    auto found = co_await cosock::getaddrinfo("localhost", 80, cosock::af_inet, cosock::sock_stream);
    CHECK(!found.empty());
    auto [a, b] = w.pair();
    w.s.spawn(recv_forever(*a));
}

task<> after_sleep(world& w) {
    co_await cosock::sleep_for(1ms);
    auto [a, b] = w.pair();
    w.s.spawn(recv_forever(*a));
}

task<> after_timeout(world& w) {
    auto [a, b] = w.pair();
    CHECK_THROWS_AS(co_await cosock::with_timeout(a->recv(w.buf), 5ms), cosock::timeout_error);
    a->settimeout(5ms);
    CHECK_THROWS_AS(co_await a->recv(w.buf), cosock::timeout_error);
    a->settimeout(std::nullopt);
    w.s.spawn(recv_forever(*a));
}

task<> after_stop(world& w) {
    auto [a, b] = w.pair();
    std::stop_source stop;
    bool ended = false;
    w.s.spawn([](cosock::socket& a, bool& ended) -> task<> {
        try {
            co_await recv_one(a);
        } catch (...) {
        }
        ended = true;
    }(*a, ended)
                                                        .with_stop_token(stop.get_token()));
    co_await w.s.yield();
    stop.request_stop();
    while (!ended) co_await w.s.yield();
    w.s.spawn(recv_forever(*a));
}

task<> after_close(world& w) {
    auto [a, b] = w.pair();
    auto [c, d] = w.pair();
    bool ended = false;
    w.s.spawn([](cosock::socket& a, bool& ended) -> task<> {
        try {
            co_await recv_one(a);
        } catch (...) {
        }
        ended = true;
    }(*a, ended));
    co_await w.s.yield();
    a->close();
    while (!ended) co_await w.s.yield();
    w.s.spawn(recv_forever(*c));
}

#if !COSOCK_WINDOWS // POSIX signals
task<> after_signal(world& w) {
    {
        cosock::signal_set set{w.s, {SIGUSR1}};
        ::raise(SIGUSR1);
        CHECK(co_await set.wait() == SIGUSR1);
    }
    w.s.spawn([]() -> task<> {
        co_await cosock::wait_signal({SIGUSR2});
        FAIL("nobody sends SIGUSR2");
    }());
    auto [a, b] = w.pair();
    w.s.spawn(recv_forever(*a));
}
#endif

task<> after_when_all(world& w) {
    auto [a, b] = w.pair();
    auto [c, d] = w.pair();
    co_await b->sendall(std::string_view("1"));
    co_await d->sendall(std::string_view("22"));
    std::vector<task<std::size_t>> both;
    both.push_back(recv_one(*a));
    both.push_back(recv_one(*c));
    auto got = co_await cosock::when_all(std::move(both));
    CHECK(got == std::vector<std::size_t>{1, 2});
    w.s.spawn(recv_forever(*a));
    w.s.spawn(recv_forever(*c));
}

task<> after_when_any(world& w) {
    auto [a, b] = w.pair();
    auto [c, d] = w.pair();
    co_await b->sendall(std::string_view("1"));
    std::vector<task<std::size_t>> either;
    either.push_back(recv_one(*a));
    either.push_back(recv_one(*c));
    auto got = co_await cosock::when_any(std::move(either));
    CHECK(got.index == 0);
    w.s.spawn(recv_forever(*a));
    w.s.spawn(recv_forever(*c));
}

// Counts the backend waits of an idle window after `sc` has run.
task<std::uint64_t> idle_waits(world& w, scenario sc) {
    co_await sc(w);
    co_await w.s.yield(); // let the spawned waiters reach their waits
    co_await w.s.yield();
    std::uint64_t before = w.s.stats().waits;
    co_await cosock::sleep_for(200ms);
    co_return w.s.stats().waits - before;
}

} // namespace

BACKEND_TEST("an idle loop sleeps after an operation of any kind has ended, in any way") {
    const std::pair<const char*, scenario> scenarios[] = {
        {"recv", after_recv},
        {"send", after_send},
        {"sendall", after_sendall},
        {"accept and connect", after_accept_and_connect},
        {"sendto and recvfrom", after_datagrams},
        {"makefile readline, write and flush", after_makefile_lines},
        {"makefile write that waits", after_makefile_big_write},
        {"select", after_select},
        {"select on raw descriptors, then closed", after_select_on_raw_descriptors},
        {"a recv whose socket moved", after_a_move},
        {"writes waiting on a peer that shut its side", after_a_peer_half_closed},
        {"urgent data while writes wait", after_urgent_data_under_waiting_writes},
        {"an ICMP error on a datagram socket", after_an_icmp_error},
        {"a timer two months away", after_a_far_timer},
        {"post", after_post},
        {"getaddrinfo", after_getaddrinfo},
        {"sleep_for", after_sleep},
        {"timeouts", after_timeout},
        {"a stop request", after_stop},
        {"a close under a waiting recv", after_close},
#if !COSOCK_WINDOWS
        {"a signal, and a wait for another", after_signal},
#endif
        {"when_all", after_when_all},
        {"when_any", after_when_any},
    };
    for (auto [what, sc] : scenarios) {
        std::string name = what;
        CAPTURE(name);
        cosock::scheduler s{B::value};
        world w{s};
        std::uint64_t waits = s.run(idle_waits(w, sc));
        // The sleep's own wake-up, and one spare for a wake-up already under way.
        CHECK(waits <= 3);
    }
}
