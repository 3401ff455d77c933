#include "backends.hpp"

#include <array>
#include <chrono>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>
#if !COSOCK_WINDOWS
#include <fcntl.h>
#include <unistd.h>
#endif

using cosock::task;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

BACKEND_TEST("select reports sockets ready to read and to write") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    auto [c, d] = cosock::socketpair(s);
    std::vector<cosock::socket*> readers{&b, &d}, writers{&a}, none;
    s.run([&]() -> task<> {
        // Nothing to read yet; a is writable.
        auto r = co_await cosock::select(readers, writers, none, 0s);
        CHECK(r.readable.empty());
        CHECK(r.writable == writers);
        co_await c.sendall(std::string_view("x"));
        r = co_await cosock::select(readers, none, none);
        CHECK(r.readable == std::vector<cosock::socket*>{&d});
    }());
}

BACKEND_TEST("select waits until a descriptor becomes ready") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    s.spawn([](cosock::scheduler& s, cosock::socket& a) -> task<> {
        co_await s.yield();
        co_await a.sendall(std::string_view("late"));
    }(s, a));
    auto r = s.run(cosock::select<int>({b.fileno()}, {}, {}));
    CHECK(r.readable == std::vector<int>{b.fileno()});
}

BACKEND_TEST("select on a pipe, with a timeout that passes, returns empty lists after the timeout") {
    cosock::scheduler s{B::value};
#if COSOCK_WINDOWS // winsock's select() takes sockets only: a socket pair stands in for the pipe
    auto [p0, p1] = cosock::socketpair(s);
    int p[2] = {p0.fileno(), p1.fileno()};
#else
    int p[2];
    REQUIRE(::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0);
#endif
    auto start = steady::now();
    auto r = s.run(cosock::select<int>({p[0]}, {}, {}, 50ms));
    CHECK(r.empty());
    CHECK(steady::now() - start >= 50ms);
#if COSOCK_WINDOWS
    REQUIRE(raw::send(p[1], "z", 1) == 1);
#else
    REQUIRE(::write(p[1], "z", 1) == 1);
#endif
    r = s.run(cosock::select<int>({p[0]}, {p[1]}, {}, 10s));
    CHECK(r.readable == std::vector<int>{p[0]});
    CHECK(r.writable == std::vector<int>{p[1]});
#if !COSOCK_WINDOWS // on Windows the sockets close themselves
    ::close(p[0]);
    ::close(p[1]);
#endif
}

#if !COSOCK_WINDOWS // windows: no descriptor numbers to choose (F_DUPFD); fd_set holds any SOCKET value
BACKEND_TEST("select watches descriptors above 1023 on every backend") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    int high = ::fcntl(b.fileno(), F_DUPFD_CLOEXEC, 1500);
    REQUIRE(high >= 1500);
    s.spawn([](cosock::scheduler& s, cosock::socket& a) -> task<> {
        co_await s.yield();
        co_await a.sendall(std::string_view("x"));
    }(s, a));
    if (B::value == cosock::backend::select) {
        // The select *backend* cannot wait on it; saying so is the contract.
        CHECK_THROWS_WITH_AS(s.run(cosock::select<int>({high}, {}, {})), doctest::Contains("FD_SETSIZE"),
                             std::system_error);
    } else {
        auto r = s.run(cosock::select<int>({high}, {}, {}));
        CHECK(r.readable == std::vector<int>{high});
    }
    ::close(high);
}
#endif

BACKEND_TEST("select rejects bad arguments clearly") {
    cosock::scheduler s{B::value};
    CHECK_THROWS_WITH_AS(s.run(cosock::select<int>({-1}, {}, {}, 0s)), doctest::Contains("-1"), std::invalid_argument);
    CHECK_THROWS_AS(s.run(cosock::select<int>({}, {}, {}, -1s)), std::invalid_argument);
    CHECK_THROWS_AS(s.run(cosock::select<int>({}, {}, {}, std::nullopt)), std::invalid_argument);
    CHECK(s.run(cosock::select<int>({}, {}, {}, 0s)).empty()); // empty lists with a timeout: fine
}

BACKEND_TEST("when_all runs tasks side by side and returns every result in order") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    auto reader = [](cosock::socket& b) -> task<std::size_t> {
        std::array<char, 8> buf;
        co_return co_await b.recv(buf);
    };
    auto writer = [](cosock::socket& a) -> task<std::size_t> { co_return co_await a.sendall(std::string_view("abc")); };
    std::vector<task<std::size_t>> tasks;
    tasks.push_back(reader(b)); // waits for the writer, which starts after it
    tasks.push_back(writer(a));
    auto results = s.run(cosock::when_all(std::move(tasks)));
    CHECK(results == std::vector<std::size_t>{3, 3});
    auto [x, y] =
        s.run(cosock::when_all([]() -> task<int> { co_return 1; }(), []() -> task<std::string> { co_return "two"; }()));
    CHECK(x == 1);
    CHECK(y == "two");
}

BACKEND_TEST("when_all stops the other tasks when one fails, waits for them, then rethrows that failure") {
    cosock::scheduler s{B::value};
    int cancelled = 0, started = 0;
    std::vector<task<>> tasks;
    tasks.push_back([](int& cancelled) -> task<> {
        try {
            co_await cosock::sleep_for(1h);
        } catch (const cosock::cancelled_error&) {
            ++cancelled;
            throw;
        }
    }(cancelled));
    tasks.push_back([](cosock::scheduler& s) -> task<> {
        co_await s.yield();
        throw std::runtime_error("first");
    }(s));
    CHECK_THROWS_WITH_AS(s.run(cosock::when_all(std::move(tasks))), "first", std::runtime_error);
    CHECK(cancelled == 1);
    // A task that fails before the next one starts: that one never runs.
    std::vector<task<>> early;
    early.push_back([]() -> task<> {
        throw std::runtime_error("at once");
        co_return;
    }());
    early.push_back([](int& started) -> task<> {
        ++started;
        co_return;
    }(started));
    CHECK_THROWS_WITH_AS(s.run(cosock::when_all(std::move(early))), "at once", std::runtime_error);
    CHECK(started == 0);
}

BACKEND_TEST("when_any returns the first result and cancels the others, waiting for them") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    int loser_error = 0;
    std::vector<task<int>> tasks;
    tasks.push_back([](cosock::socket& b, int& err) -> task<int> {
        std::array<char, 8> buf;
        try {
            co_await b.recv(buf); // never satisfied: cancelled by the winner
        } catch (const cosock::cancelled_error&) {
            err = ECANCELED;
            throw;
        }
        co_return 0;
    }(b, loser_error));
    tasks.push_back([]() -> task<int> {
        co_await cosock::sleep_for(10ms);
        co_return 42;
    }());
    auto r = s.run(cosock::when_any(std::move(tasks)));
    CHECK(r.index == 1);
    CHECK(r.value == 42);
    CHECK(r.others.empty());
    CHECK(loser_error == ECANCELED); // the loser finished before when_any returned
    CHECK_THROWS_AS(s.run(cosock::when_any(std::vector<task<int>>{})), std::invalid_argument);
}

namespace {
template <class T>
task<T> value_after(std::chrono::milliseconds d, T v) {
    co_await cosock::sleep_for(d);
    co_return v;
}

task<std::size_t> recv_some(cosock::socket& sock) {
    std::array<char, 8> buf;
    co_return co_await sock.recv(buf);
}
} // namespace

BACKEND_TEST("when_any(a, b, ...) of tasks of several types gives the winner's index and value as a variant") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    int loser_error = 0;
    auto r = s.run(cosock::when_any(
        [](cosock::socket& b, int& err) -> task<std::size_t> {
            std::array<char, 8> buf;
            try {
                co_return co_await b.recv(buf); // never satisfied: stopped by the winner
            } catch (const cosock::cancelled_error&) {
                err = ECANCELED;
                throw;
            }
        }(b, loser_error),
        value_after(10ms, std::string("fast")), []() -> task<> { co_await cosock::sleep_for(10s); }()));
    static_assert(std::is_same_v<decltype(r.value), std::variant<std::size_t, std::string, std::monostate>>);
    CHECK(r.index == 1);
    CHECK(r.value.index() == 1);
    CHECK(std::get<1>(r.value) == "fast");
    CHECK(r.others.empty());
    CHECK(loser_error == ECANCELED);

    // Tasks of one type give that type, as the vector form does.
    auto same = s.run(cosock::when_any(value_after(200ms, 1), value_after(5ms, 2), value_after(300ms, 3)));
    static_assert(std::is_same_v<decltype(same.value), int>);
    CHECK(same.index == 1);
    CHECK(same.value == 2);

    // Nothing received is dropped: what the recv got is the winner's value or
    // in `others`, and what it did not take is still in the socket.
    s.spawn([](cosock::socket& a) -> task<> { co_await a.sendall(std::string_view("abc")); }(a));
    auto both = s.run(cosock::when_any(recv_some(b), value_after(0ms, std::string("now"))));
    std::size_t got = both.index == 0 ? std::get<0>(both.value) : 0;
    for (auto& [i, v] : both.others) {
        CHECK(v.index() == i);
        if (i == 0) got = std::get<0>(v);
    }
    if (got < 3) got += s.run(recv_some(b));
    CHECK(got == 3);

    // Awaited in place, its tasks made in the same expression.
    std::size_t first = s.run([]() -> task<std::size_t> {
        auto r = co_await cosock::when_any(value_after(5ms, 1), value_after(50ms, std::string("late")));
        co_return r.index;
    }());
    CHECK(first == 0);
}

BACKEND_TEST("select takes braced lists of sockets, awaited in place") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    s.run([](cosock::socket& a, cosock::socket& b) -> task<> {
        co_await b.sendall(std::string_view("x"));
        auto r = co_await cosock::select({&a, &b}, {&b}, {}, 1s);
        CHECK(r.readable == std::vector<cosock::socket*>{&a});
        CHECK(r.writable == std::vector<cosock::socket*>{&b});
        auto start = steady::now();
        auto none = co_await cosock::select({}, {}, {}, 20ms); // a sleep
        CHECK(none.empty());
        CHECK(steady::now() - start >= 20ms);
        auto quiet = co_await cosock::select({&b}, {}, {}, 0s);
        CHECK(quiet.empty());
    }(a, b));
}

BACKEND_TEST("select takes file objects too") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    auto f = b.makefile("rb");
    std::vector<cosock::file_object*> readers{&f}, none;
    s.spawn([](cosock::scheduler& s, cosock::socket& a) -> task<> {
        co_await s.yield();
        co_await a.sendall(std::string_view("line\n"));
    }(s, a));
    auto r = s.run(cosock::select(readers, none, none));
    CHECK(r.readable == readers);
    CHECK(s.run(f.readline()) == "line\n");
}
