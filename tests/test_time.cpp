#include "backends.hpp"

#include <array>
#include <chrono>
#include <stop_token>
#include <string>
#include <vector>

using cosock::task;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// Runs `body`, returning the errno of the std::system_error it throws (or -1)
// and how long it took.
template <class Body>
task<std::pair<int, steady::duration>> timed(Body body) {
    auto start = steady::now();
    int err = -1;
    try {
        co_await body();
    } catch (const std::system_error& e) {
        err = e.code().value();
    }
    co_return std::pair{err, steady::now() - start};
}

} // namespace

BACKEND_TEST("sleep_for resumes no earlier than asked, and sleepers wake in deadline order") {
    cosock::scheduler s{B::value};
    std::string order;
    for (auto [name, ms] : {std::pair{'c', 60}, std::pair{'a', 20}, std::pair{'b', 40}})
        s.spawn([](std::string& order, char name, int ms) -> task<> {
            auto start = steady::now();
            co_await cosock::sleep_for(std::chrono::milliseconds(ms));
            CHECK(steady::now() - start >= std::chrono::milliseconds(ms));
            order += name;
        }(order, name, ms));
    s.run();
    CHECK(order == "abc");
}

BACKEND_TEST("100000 concurrent sleeping tasks all wake") {
    cosock::scheduler s{B::value};
    constexpr int n = 100'000;
    int woke = 0;
    for (int i = 0; i < n; ++i)
        s.spawn([](int& woke, int ms) -> task<> {
            co_await cosock::sleep_for(std::chrono::milliseconds(ms));
            ++woke;
        }(woke, i % 50));
    s.run();
    CHECK(woke == n);
}

BACKEND_TEST("a recv timeout raises timeout_error, not before the deadline, and the socket stays usable") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    b.settimeout(100ms);
    CHECK(b.gettimeout() == std::optional<std::chrono::nanoseconds>(100ms));
    s.run([&]() -> task<> {
        std::array<char, 8> buf;
        auto [err, took] = co_await timed([&]() -> task<> { co_await b.recv(buf); });
        CHECK(err == ETIMEDOUT);
        CHECK(took >= 100ms);
        // Nothing was lost to the cancelled recv.
        co_await a.sendall(std::string_view("later"));
        CHECK(co_await b.recv(buf) == 5);
    }());
}

BACKEND_TEST("the timeout error is a cosock::timeout_error naming the operation") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    srv.settimeout(0.05);
    s.run([&]() -> task<> {
        try {
            co_await srv.accept();
            FAIL("accept returned without a peer");
        } catch (const cosock::timeout_error& e) {
            CHECK(e.code() == std::errc::timed_out);
            CHECK(std::string(e.what()).find("accept") != std::string::npos);
            CHECK(std::string(e.what()).find("timed out") != std::string::npos); // named on every platform
        }
    }());
}

BACKEND_TEST("settimeout(0) makes a would-block operation fail at once with EAGAIN") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    b.settimeout(0s);
    s.run([&]() -> task<> {
        std::array<char, 8> buf;
        auto [err, took] = co_await timed([&]() -> task<> { co_await b.recv(buf); });
        CHECK(err == EAGAIN);
        co_await a.sendall(std::string_view("x"));
        CHECK(co_await b.recv(buf) == 1); // ready data is still read without waiting
    }());
    b.settimeout(std::nullopt);
    CHECK_FALSE(b.gettimeout().has_value());
    CHECK_THROWS_AS(b.settimeout(-1s), std::invalid_argument);
    CHECK_THROWS_AS(b.settimeout(-0.5), std::invalid_argument);
}

BACKEND_TEST("a sendall timeout bounds the whole call across partial progress") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s); // b never reads
    a.settimeout(200ms);
    std::string big(64u << 20, 'x');
    s.run([&]() -> task<> {
        auto [err, took] = co_await timed([&]() -> task<> { co_await a.sendall(big); });
        CHECK(err == ETIMEDOUT);
        CHECK(took >= 200ms);
        CHECK(took < 20s);
    }());
}

BACKEND_TEST("a connect timeout fires when the listener's backlog is full") {
    cosock::scheduler s{B::value};
    cosock::socket srv{s};
    srv.bind({"127.0.0.1", 0});
    srv.listen(0); // never accepted: a second SYN is dropped
    std::vector<cosock::socket> queued;
    int timeouts = 0;
    s.run([&]() -> task<> {
        for (int i = 0; i < 16 && timeouts == 0; ++i) {
            cosock::socket c{s};
            c.settimeout(100ms);
            try {
                co_await c.connect(srv.getsockname());
                queued.push_back(std::move(c));
            } catch (const cosock::timeout_error&) {
                ++timeouts;
            }
        }
    }());
    CHECK(timeouts == 1);
}

BACKEND_TEST("with_timeout bounds one operation or a whole task") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    s.run([&]() -> task<> {
        std::array<char, 8> buf;
        auto start = steady::now();
        CHECK_THROWS_AS(co_await cosock::with_timeout(b.recv(buf), 50ms), cosock::timeout_error);
        CHECK(steady::now() - start >= 50ms);
        auto two_reads = [&]() -> task<std::size_t> {
            std::size_t n = co_await b.recv(buf);
            co_return n + co_await b.recv(buf);
        };
        co_await a.sendall(std::string_view("1"));
        CHECK_THROWS_AS(co_await cosock::with_timeout(two_reads(), 50ms), cosock::timeout_error);
        // In time: the value comes through.
        co_await a.sendall(std::string_view("22"));
        CHECK(co_await cosock::with_timeout(b.recv(buf), 10s) == 2);
    }());
}

BACKEND_TEST("a stop token cancels the operations and sleeps of its task") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    std::stop_source stop;
    int recv_err = 0, sleep_err = 0;
    s.spawn([](cosock::socket& b, int& err) -> task<> {
        std::array<char, 8> buf;
        try {
            co_await b.recv(buf);
        } catch (const cosock::cancelled_error&) {
            err = ECANCELED;
        }
    }(b, recv_err)
                                                   .with_stop_token(stop.get_token()));
    s.spawn([](int& err) -> task<> {
        try {
            co_await cosock::sleep_for(1h);
        } catch (const cosock::cancelled_error&) {
            err = ECANCELED;
        }
    }(sleep_err)
                                .with_stop_token(stop.get_token()));
    s.run([&]() -> task<> {
        co_await s.yield();
        stop.request_stop();
    }());
    s.run();
    CHECK(recv_err == ECANCELED);
    CHECK(sleep_err == ECANCELED);
}

BACKEND_TEST("closing a socket ends every kind of waiting operation with EBADF") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    auto [a, b] = cosock::socketpair(s);
    auto [c, d] = cosock::socketpair(s); // d never reads, so c's sendall waits
#if COSOCK_WINDOWS // no AF_UNIX datagram pair there: a bound UDP socket waits for a datagram instead
    cosock::socket d2{s, cosock::af_inet, cosock::sock_dgram};
    d2.bind({"127.0.0.1", 0});
#else
    auto [d1, d2] = cosock::socketpair(s, cosock::af_unix, cosock::sock_dgram);
#endif
    std::vector<int> errors;
    auto expect_cancel = [](std::vector<int>& errors, auto op) -> task<> {
        try {
            co_await op();
            errors.push_back(0);
        } catch (const std::system_error& e) {
            errors.push_back(e.code().value());
        }
    };
    std::array<char, 8> buf;
    std::string big(64u << 20, 'x');
    s.spawn(expect_cancel(errors, [&]() -> task<> { co_await srv.accept(); }));
    s.spawn(expect_cancel(errors, [&]() -> task<> { co_await b.recv(buf); }));
    s.spawn(expect_cancel(errors, [&]() -> task<> { co_await c.sendall(big); }));
    s.spawn(expect_cancel(errors, [&]() -> task<> { co_await d2.recvfrom(buf); }));
    s.run([&]() -> task<> {
        co_await s.yield(); // every operation above is waiting now
        srv.close();
        b.close();
        c.close();
        d2.close();
    }());
    s.run();
    REQUIRE(errors.size() == 4);
    for (int e : errors) CHECK(e == EBADF);
}

BACKEND_TEST("closing a socket ends its waiting connect with EBADF") {
    cosock::scheduler s{B::value};
    cosock::socket srv{s};
    std::vector<cosock::socket> queued;
    int err = -1;
    s.run([&]() -> task<> {
        cosock::address where = co_await unanswered_address(s, srv, queued);
        cosock::socket waiting{s};
        s.spawn([](cosock::scheduler& s, cosock::socket& w) -> task<> {
            co_await s.yield(); // the connect below is waiting now
            w.close();
        }(s, waiting));
        try {
            co_await waiting.connect(where);
            err = 0;
        } catch (const std::system_error& e) {
            err = e.code().value();
        }
    }());
    CHECK(err == EBADF);
}
