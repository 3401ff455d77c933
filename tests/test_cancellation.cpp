// Cancellation: a stop request, a deadline (with_timeout) and a close reach
// every awaitable and every combinator, nested, on every backend; each ends in
// its own documented way (cancelled_error, timeout_error, EBADF), no child
// outlives its combinator, and nothing received is dropped on the way.
#include "backends.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>
#if COSOCK_WINDOWS
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#else
#include <csignal>
#include <unistd.h>
#endif

using cosock::task;
using namespace std::chrono_literals;

namespace {

// A hang is a failure too: the process ends instead of waiting for ever.
#if COSOCK_WINDOWS // no alarm(): a watchdog thread ends the process
struct hang_guard {
    std::mutex m;
    std::condition_variable cv;
    bool over = false;
    std::thread watchdog;
    explicit hang_guard(unsigned seconds)
        : watchdog([this, seconds] {
              std::unique_lock lock(m);
              if (!cv.wait_for(lock, std::chrono::seconds(seconds), [this] { return over; })) {
                  std::fprintf(stderr, "hang_guard: still running after %u s\n", seconds);
                  std::_Exit(14);
              }
          }) {}
    ~hang_guard() {
        {
            std::lock_guard lock(m);
            over = true;
        }
        cv.notify_one();
        watchdog.join();
    }
};
#else
struct hang_guard {
    explicit hang_guard(unsigned seconds) { ::alarm(seconds); }
    ~hang_guard() { ::alarm(0); }
};
#endif

// How a task ended, as text a CHECK can show.
task<std::string> outcome_of(task<> t) {
    try {
        co_await std::move(t);
        co_return "completed";
    } catch (const cosock::cancelled_error&) {
        co_return "cancelled";
    } catch (const cosock::timeout_error&) {
        co_return "timeout";
    } catch (const std::system_error& e) {
        co_return "errno " + std::to_string(e.code().value());
    } catch (const std::exception& e) {
        co_return std::string("other: ") + e.what();
    }
}

#if COSOCK_WINDOWS
// Winsock has no MSG_DONTWAIT: cosock's sockets are non-blocking there.
constexpr int dont_wait = 0;
#else
constexpr int dont_wait = MSG_DONTWAIT;
#endif

// Everything the operations under test wait on: each would wait for ever.
struct fixture {
    cosock::scheduler& s;
    std::deque<cosock::socket> keep;
    cosock::socket a, b;              // a stream pair; nothing is sent to a
    cosock::socket full, full_peer;   // a stream pair whose send buffer is full
    cosock::socket srv;               // a listener nobody connects to
    cosock::socket udp;               // a datagram socket nobody sends to
    cosock::socket dfull, dfull_peer; // a datagram pair whose receive queue is full (not on Windows)
    cosock::socket e, e_peer;         // a stream pair read through a file object
    cosock::file_object fe;           // makefile("rb") over e
    cosock::socket g, g_peer;         // like full, written through a file object
    cosock::file_object fg;           // makefile("wb") over g

    explicit fixture(cosock::scheduler& sched) : s(sched) {
        std::tie(a, b) = cosock::socketpair(s);
        std::tie(full, full_peer) = cosock::socketpair(s);
        std::tie(g, g_peer) = cosock::socketpair(s);
        std::string chunk(1 << 16, 'f');
        for (int fd : {full.fileno(), g.fileno()})
            while (raw::send(fd, chunk.data(), chunk.size(), dont_wait) > 0) {
            }
        srv = listener(s);
        udp = cosock::socket{s, cosock::af_inet, cosock::sock_dgram};
        udp.bind({"127.0.0.1", 0});
#if !COSOCK_WINDOWS // AF_UNIX datagrams (refused by wine); a UDP send never waits for the receiver's room
        // Named, so that sendto has an address to send to.
        static int serial = 0;
        dfull_peer = cosock::socket{s, cosock::af_unix, cosock::sock_dgram};
        dfull_peer.bind(
            cosock::address::abstract("cosock-test-" + std::to_string(::getpid()) + "-" + std::to_string(++serial)));
        // Connected: only then does the kernel report when the receiver has room.
        dfull = cosock::socket{s, cosock::af_unix, cosock::sock_dgram};
        REQUIRE(::connect(dfull.fileno(), dfull_peer.getsockname().data(), dfull_peer.getsockname().size()) == 0);
        while (::send(dfull.fileno(), "d", 1, MSG_DONTWAIT) > 0) {
        }
#endif
        std::tie(e, e_peer) = cosock::socketpair(s);
        fe = e.makefile("rb");
        fg = g.makefile("wb");
    }
};

struct op_case {
    const char* name;
    std::function<task<>(fixture&)> start;
    std::function<task<>(fixture&)> close; // closes what it waits on
    const char* on_close;                  // the outcome expected then
};

template <class F>
std::function<task<>(fixture&)> closing(F f) {
    return [f](fixture& fx) -> task<> {
        f(fx);
        co_return;
    };
}

std::vector<op_case> op_cases() {
    auto recv = [](cosock::socket& s) -> task<> {
        std::array<char, 8> buf;
        co_await s.recv(buf);
    };
    return {
        {"recv", [=](fixture& f) { return recv(f.a); }, closing([](fixture& f) { f.a.close(); }), "errno 9"},
        {"send", [](fixture& f) -> task<> { co_await f.full.send(std::string(1 << 16, 's')); },
         closing([](fixture& f) { f.full.close(); }), "errno 9"},
        {"sendall", [](fixture& f) -> task<> { co_await f.full.sendall(std::string(1 << 20, 's')); },
         closing([](fixture& f) { f.full.close(); }), "errno 9"},
        {"accept", [](fixture& f) -> task<> { co_await f.srv.accept(); }, closing([](fixture& f) { f.srv.close(); }),
         "errno 9"},
        {"recvfrom",
         [](fixture& f) -> task<> {
             std::array<char, 8> buf;
             co_await f.udp.recvfrom(buf);
         },
         closing([](fixture& f) { f.udp.close(); }), "errno 9"},
#if !COSOCK_WINDOWS // needs the full AF_UNIX datagram queue above
        {"sendto",
         [](fixture& f) -> task<> { co_await f.dfull.sendto(std::string_view("x"), f.dfull_peer.getsockname()); },
         closing([](fixture& f) { f.dfull.close(); }), "errno 9"},
#endif
        {"recv(n)", [](fixture& f) -> task<> { co_await f.a.recv(8); }, closing([](fixture& f) { f.a.close(); }),
         "errno 9"},
        {"recvmsg", [](fixture& f) -> task<> { co_await f.a.recvmsg(8, COSOCK_WINDOWS ? 0 : 64); }, // windows: no ancillary data
         closing([](fixture& f) { f.a.close(); }), "errno 9"},
        {"recvmsg_into",
         [](fixture& f) -> task<> {
             std::array<char, 4> x, y;
             std::array<std::span<char>, 2> into{std::span(x), std::span(y)};
             co_await f.udp.recvmsg_into(into);
         },
         closing([](fixture& f) { f.udp.close(); }), "errno 9"},
        {"sendmsg",
         [](fixture& f) -> task<> {
             std::vector<std::string> parts{std::string(1 << 16, 'm'), std::string(1 << 16, 'n')};
             co_await f.full.sendmsg(parts);
         },
         closing([](fixture& f) { f.full.close(); }), "errno 9"},
#if !COSOCK_WINDOWS
        {"recv_fds", [](fixture& f) -> task<> { co_await cosock::recv_fds(f.a, 8, 4); },
         closing([](fixture& f) { f.a.close(); }), "errno 9"},
        {"sendfile",
         [](fixture& f) -> task<> {
             std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::tmpfile(), &std::fclose);
             std::string block(1 << 20, 'f');
             std::fwrite(block.data(), 1, block.size(), file.get());
             std::fflush(file.get());
             co_await f.full.sendfile(fileno(file.get()));
         },
         closing([](fixture& f) { f.full.close(); }), "errno 9"},
#endif
        {"sleep_for", [](fixture&) -> task<> { co_await cosock::sleep_for(1h); }, nullptr, nullptr},
        {"select",
         [](fixture& f) -> task<> {
             std::vector<cosock::socket*> r{&f.a}, none;
             co_await cosock::select(r, none, none);
         },
         closing([](fixture& f) { f.a.close(); }), "completed"},
        {"makefile readline", [](fixture& f) -> task<> { co_await f.fe.readline(); },
         [](fixture& f) -> task<> { co_await f.fe.close(); }, "errno 9"},
        {"makefile write and flush",
         [](fixture& f) -> task<> {
             co_await f.fg.write(std::string(1 << 20, 'w'));
             co_await f.fg.flush();
         },
         nullptr, nullptr}, // close() flushes: it would wait for the same room
        {"when_all of recvs",
         [=](fixture& f) -> task<> {
             std::vector<task<>> both;
             both.push_back(recv(f.a));
             both.push_back(recv(f.udp));
             co_await cosock::when_all(std::move(both));
         },
         closing([](fixture& f) { f.a.close(); }), "errno 9"},
        {"when_any of recvs",
         [=](fixture& f) -> task<> {
             std::vector<task<>> either;
             either.push_back(recv(f.a));
             either.push_back(recv(f.udp));
             co_await cosock::when_any(std::move(either));
         },
         nullptr, nullptr},
        {"nested with_timeout(when_all(when_any(...)))",
         [=](fixture& f) -> task<> {
             std::vector<task<>> either;
             either.push_back(recv(f.a));
             either.push_back(recv(f.udp));
             std::vector<task<>> all;
             all.push_back(
                 [](std::vector<task<>> e) -> task<> { co_await cosock::when_any(std::move(e)); }(std::move(either)));
             all.push_back([](cosock::socket& s) -> task<> {
                 std::array<char, 4> buf;
                 co_await s.recv(buf);
             }(f.full_peer));
             co_await cosock::with_timeout(cosock::when_all(std::move(all)), 1h);
         },
         nullptr, nullptr},
    };
}

// Runs `op` in a spawned task, lets it reach its wait, then applies `end`;
// returns how the task ended.
task<std::string> ended_by(cosock::scheduler& s, task<> op, std::function<task<>()> end, std::stop_source* stop) {
    std::string result;
    bool done = false;
    task<> runner = [](task<> op, std::string& result, bool& done) -> task<> {
        result = co_await outcome_of(std::move(op));
        done = true;
    }(std::move(op), result, done);
    s.spawn(stop ? std::move(runner).with_stop_token(stop->get_token()) : std::move(runner));
    for (int i = 0; i < 3; ++i) co_await s.yield();
    REQUIRE_FALSE(done); // it waits
    co_await end();
    for (int i = 0; i < 1000 && !done; ++i) co_await s.yield();
    if (!done) co_await cosock::sleep_for(100ms); // a kernel round trip (io_uring cancellations)
    for (int i = 0; i < 1000 && !done; ++i) co_await s.yield();
    CHECK(done);
    co_return result;
}

} // namespace

BACKEND_TEST("stop, a deadline and a close end every awaitable and combinator, each in its own way") {
    hang_guard guard(120);
    for (const op_case& c : op_cases()) {
        std::string name = c.name;
        CAPTURE(name);
        {
            cosock::scheduler s{B::value};
            fixture f(s);
            std::stop_source stop;
            auto request = [&]() -> task<> {
                stop.request_stop();
                co_return;
            };
            CHECK(s.run(ended_by(s, c.start(f), request, &stop)) == "cancelled");
        }
        {
            cosock::scheduler s{B::value};
            fixture f(s);
            CHECK(s.run(outcome_of(cosock::with_timeout(c.start(f), 30ms))) == "timeout");
        }
        if (c.close) {
            cosock::scheduler s{B::value};
            fixture f(s);
            CHECK(s.run(ended_by(
                      s, c.start(f), [&] { return c.close(f); }, nullptr)) == std::string(c.on_close));
        }
    }
}

BACKEND_TEST("cancelled_error is not a std::system_error, so an error handler cannot swallow it") {
    hang_guard guard(60);
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    auto [c, d] = cosock::socketpair(s);
    static_assert(!std::is_base_of_v<std::system_error, cosock::cancelled_error>);
    static_assert(std::is_base_of_v<std::exception, cosock::cancelled_error>);
    static_assert(std::is_base_of_v<std::system_error, cosock::timeout_error>);
    // A loser that catches every system_error in a loop still ends.
    int rounds = 0;
    auto stubborn = [](cosock::socket& sock, int& rounds) -> task<int> {
        std::array<char, 4> buf;
        for (;;) {
            try {
                co_await sock.recv(buf);
            } catch (const std::system_error&) {
            }
            if (++rounds > 1000) co_return -1;
        }
    };
    auto winner = [](cosock::socket& sock) -> task<int> {
        std::array<char, 4> buf;
        co_return int(co_await sock.recv(buf));
    };
    s.spawn([](cosock::socket& d) -> task<> { co_await d.sendall(std::string_view("w")); }(d));
    std::vector<task<int>> tasks;
    tasks.push_back(stubborn(a, rounds));
    tasks.push_back(winner(c));
    auto r = s.run(cosock::when_any(std::move(tasks)));
    CHECK(r.index == 1);
    CHECK(r.value == 1);
    CHECK(rounds <= 1);
}

BACKEND_TEST("with_timeout and a stop request reach every child of when_all, which ends only after them") {
    hang_guard guard(60);
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    auto [c, d] = cosock::socketpair(s);
    int ended = 0;
    auto child = [](cosock::socket& sock, int& ended) -> task<std::size_t> {
        struct on_exit {
            int& n;
            ~on_exit() { ++n; }
        } guard{ended};
        std::array<char, 4> buf;
        co_return co_await sock.recv(buf);
    };
    // Deadline.
    std::vector<task<std::size_t>> kids;
    kids.push_back(child(a, ended));
    kids.push_back(child(c, ended));
    CHECK_THROWS_AS(s.run(cosock::with_timeout(cosock::when_all(std::move(kids)), 50ms)), cosock::timeout_error);
    CHECK(ended == 2);
    // Stop request on the task that awaits when_all.
    ended = 0;
    std::stop_source stop;
    std::string result = s.run([](cosock::scheduler& s, std::stop_source& stop, task<> all) -> task<std::string> {
        std::string r;
        bool done = false;
        s.spawn([](task<> all, std::string& r, bool& done) -> task<> {
            r = co_await outcome_of(std::move(all));
            done = true;
        }(std::move(all), r, done)
                                                                  .with_stop_token(stop.get_token()));
        co_await s.yield();
        co_await s.yield();
        stop.request_stop();
        while (!done) co_await s.yield();
        co_return r;
    }(s, stop, [](task<std::size_t> x, task<std::size_t> y) -> task<> {
                                   co_await cosock::when_all(std::move(x), std::move(y));
                               }(child(a, ended), child(c, ended))));
    CHECK(result == "cancelled");
    CHECK(ended == 2);
    // Data sent afterwards is all still there: the cancelled recvs took nothing.
    s.run([](cosock::socket& b, cosock::socket& d) -> task<> {
        co_await b.sendall(std::string_view("B"));
        co_await d.sendall(std::string_view("D"));
    }(b, d));
    std::array<char, 4> buf{};
    CHECK(s.run(cosock::with_timeout(a.recv(buf), 5s)) == 1);
    CHECK(s.run(cosock::with_timeout(c.recv(buf), 5s)) == 1);
}

BACKEND_TEST("a child of when_all that fails stops its siblings, and when_all rethrows that failure") {
    hang_guard guard(60);
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    int ended = 0;
    auto silent = [](cosock::socket& sock, int& ended) -> task<int> {
        struct on_exit {
            int& n;
            ~on_exit() { ++n; }
        } guard{ended};
        std::array<char, 4> buf;
        co_return int(co_await sock.recv(buf));
    };
    auto failing = [](cosock::scheduler& s) -> task<int> {
        co_await s.yield();
        throw std::runtime_error("child failed");
    };
    std::vector<task<int>> kids;
    kids.push_back(silent(a, ended));
    kids.push_back(failing(s));
    CHECK_THROWS_WITH_AS(s.run(cosock::when_all(std::move(kids))), "child failed", std::runtime_error);
    CHECK(ended == 1);
}

BACKEND_TEST("when_any reports every child that completed, so nothing a loser received is lost") {
    hang_guard guard(60);
    for (int round = 0; round < 20; ++round) {
        CAPTURE(round);
        for (bool data_first : {true, false}) {
            CAPTURE(data_first);
            cosock::scheduler s{B::value};
            auto [a, b] = cosock::socketpair(s);
            auto [c, d] = cosock::socketpair(s);
            auto reader = [](cosock::socket& sock) -> task<std::string> {
                std::array<char, 16> buf;
                std::size_t n = co_await sock.recv(buf);
                co_return std::string(buf.data(), n);
            };
            auto both_send = [](cosock::socket& b, cosock::socket& d) -> task<> {
                co_await b.sendall(std::string_view("from-a"));
                co_await d.sendall(std::string_view("from-c"));
            };
            if (data_first)
                s.run(both_send(b, d));
            else
                s.spawn([](cosock::scheduler& s, task<> send) -> task<> {
                    co_await s.yield(); // both readers wait; the data arrives for both at once
                    co_await std::move(send);
                }(s, both_send(b, d)));
            std::vector<task<std::string>> tasks;
            tasks.push_back(reader(a));
            tasks.push_back(reader(c));
            auto r = s.run(cosock::when_any(std::move(tasks)));
            // Every byte is either in a result or still in its socket.
            std::string got_a, got_c;
            (r.index == 0 ? got_a : got_c) = r.value;
            for (auto& [i, v] : r.others) (i == 0 ? got_a : got_c) = v;
            std::array<char, 16> buf{};
            a.settimeout(0s);
            c.settimeout(0s);
            if (got_a.empty()) got_a.assign(buf.data(), s.run(cosock::with_timeout(a.recv(buf), 5s)));
            if (got_c.empty()) got_c.assign(buf.data(), s.run(cosock::with_timeout(c.recv(buf), 5s)));
            CHECK(got_a == "from-a");
            CHECK(got_c == "from-c");
        }
    }
}

BACKEND_TEST("an operation started after its stop was requested fails at once without touching the kernel") {
    hang_guard guard(60);
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    s.run([](cosock::socket& b) -> task<> { co_await b.sendall(std::string_view("kept")); }(b));
    std::stop_source stop;
    stop.request_stop();
    auto recv_then = [](cosock::socket& a) -> task<> {
        std::array<char, 8> buf;
        co_await a.recv(buf);
    };
    auto send_then = [](cosock::socket& a) -> task<> { co_await a.sendall(std::string_view("never")); };
    CHECK(s.run(outcome_of(recv_then(a).with_stop_token(stop.get_token()))) == "cancelled");
    CHECK(s.run(outcome_of(send_then(a).with_stop_token(stop.get_token()))) == "cancelled");
    // The data is still there for the next recv, and nothing was sent.
    std::array<char, 8> buf{};
    a.settimeout(0s);
    b.settimeout(0s);
    CHECK(s.run(cosock::with_timeout(a.recv(buf), 5s)) == 4);
    CHECK(error_of([&] { s.run(cosock::with_timeout(b.recv(buf), 5s)); }) == EAGAIN);
}

BACKEND_TEST("a task's own stop token still reaches it under with_timeout, when_all and when_any") {
    hang_guard guard(60);
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    auto recv_one = [](cosock::socket& a) -> task<std::size_t> {
        std::array<char, 8> buf;
        co_return co_await a.recv(buf);
    };
    auto wrappers = std::vector<std::function<task<>(task<std::size_t>)>>{
        [](task<std::size_t> t) -> task<> { co_await cosock::with_timeout(std::move(t), 1h); },
        [](task<std::size_t> t) -> task<> { co_await cosock::when_all(std::move(t)); },
        [](task<std::size_t> t) -> task<> {
            std::vector<task<std::size_t>> one;
            one.push_back(std::move(t));
            co_await cosock::when_any(std::move(one));
        },
    };
    for (auto& wrap : wrappers) {
        std::stop_source own;
        std::string result =
            s.run([](cosock::scheduler& s, std::stop_source& own, task<> wrapped) -> task<std::string> {
                s.spawn([](cosock::scheduler& s, std::stop_source& own) -> task<> {
                    co_await s.yield();
                    own.request_stop();
                }(s, own));
                co_return co_await outcome_of(std::move(wrapped));
            }(s, own, wrap(recv_one(a).with_stop_token(own.get_token()))));
        CHECK(result == "cancelled");
    }
}
