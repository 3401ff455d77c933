#include "backends.hpp"

#include <array>
#include <coroutine>
#include <stdexcept>
#include <string>
#include <vector>
#if COSOCK_WINDOWS
#include <fcntl.h>
#include <io.h>
#else
#include <fcntl.h>
#include <unistd.h>
#endif

using cosock::task;

namespace {

struct env_guard {
    std::string saved;
    bool had;
    explicit env_guard(const char* value) {
        const char* old = std::getenv("COSOCK_BACKEND");
        had = old != nullptr;
        if (had) saved = old;
        raw::set_env("COSOCK_BACKEND", value);
    }
    ~env_guard() { raw::set_env("COSOCK_BACKEND", had ? saved.c_str() : nullptr); }
};

task<> throw_after_recv(cosock::socket& sock) {
    std::array<char, 8> buf;
    co_await sock.recv(buf);
    throw std::runtime_error("spawned task failed");
}

task<> echo_once(cosock::socket& sock, int& echoed) {
    std::array<char, 8> buf;
    std::size_t n = co_await sock.recv(buf);
    co_await sock.sendall(std::span(buf.data(), n));
    ++echoed;
}

} // namespace

TEST_CASE("COSOCK_BACKEND chooses the backend of an automatic scheduler only") {
    {
        env_guard env("select");
        CHECK(cosock::scheduler{}.backend_name() == "select");
        CHECK(cosock::scheduler{}.backend_kind() == cosock::backend::select);
        CHECK(cosock::scheduler{cosock::backend::poll}.backend_name() == "poll");
    }
    {
        env_guard env("poll");
        CHECK(cosock::scheduler{}.backend_name() == "poll");
        CHECK(cosock::scheduler{cosock::backend::select}.backend_name() == "select");
    }
    {
        env_guard env(nullptr);
        CHECK(cosock::scheduler{}.backend_kind() != cosock::backend::automatic);
    }
}

TEST_CASE("a bad COSOCK_BACKEND value is an invalid_argument naming it") {
    env_guard env("kqueue");
    CHECK_THROWS_WITH_AS(cosock::scheduler{}, doctest::Contains("kqueue"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(cosock::parse_backend("Poll"), doctest::Contains("'Poll'"), std::invalid_argument);
    CHECK(cosock::parse_backend("select") == cosock::backend::select);
}

BACKEND_TEST("an exception escaping a spawned task goes to the handler and others keep running") {
    cosock::scheduler s{B::value};
    std::vector<std::string> reported;
    s.set_exception_handler([&](std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            reported.emplace_back(ex.what());
        }
    });
    auto [a, b] = cosock::socketpair(s);
    auto [c, d] = cosock::socketpair(s);
    int echoed = 0;
    s.spawn(throw_after_recv(b));
    s.spawn(echo_once(d, echoed));
    s.run([&]() -> task<> {
        co_await a.sendall(std::string_view("x"));
        co_await c.sendall(std::string_view("ping"));
        std::array<char, 8> buf;
        CHECK(co_await c.recv(buf) == 4);
    }());
    s.run(); // let the spawned tasks finish
    CHECK(echoed == 1);
    REQUIRE(reported.size() == 1);
    CHECK(reported[0] == "spawned task failed");
    CHECK(s.spawned_count() == 0);
}

BACKEND_TEST("without a handler a spawned task's exception is printed to stderr") {
    int pipefd[2];
#if COSOCK_WINDOWS // the C runtime's pipe; it is read only after its write end is closed
    REQUIRE(::_pipe(pipefd, 65536, _O_BINARY) == 0);
#else
    REQUIRE(::pipe(pipefd) == 0);
    ::fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
#endif
    int saved = ::dup(2);
    ::dup2(pipefd[1], 2);
    {
        cosock::scheduler s{B::value};
        s.spawn([]() -> task<> {
            throw std::runtime_error("unseen failure");
            co_return;
        }());
        s.run();
    }
    ::dup2(saved, 2);
    ::close(saved);
    ::close(pipefd[1]);
    std::string text(4096, '\0');
#if COSOCK_WINDOWS
    int n = ::_read(pipefd[0], text.data(), unsigned(text.size()));
#else
    ssize_t n = ::read(pipefd[0], text.data(), text.size());
#endif
    ::close(pipefd[0]);
    text.resize(n > 0 ? std::size_t(n) : 0);
    CHECK(text.find("unseen failure") != std::string::npos);
}

BACKEND_TEST("a handler that rethrows makes run() fail fast") {
    cosock::scheduler s{B::value};
    s.set_exception_handler([](std::exception_ptr e) { std::rethrow_exception(e); });
    s.spawn([]() -> task<> {
        throw std::runtime_error("fatal");
        co_return;
    }());
    CHECK_THROWS_WITH_AS(s.run(), "fatal", std::runtime_error);
}

BACKEND_TEST("destroying a scheduler destroys suspended tasks and closes their sockets") {
    int alive = 0;
    int fd = -1;
    struct counted {
        int* n;
        explicit counted(int* p) : n(p) { ++*n; }
        ~counted() { --*n; }
    };
    {
        cosock::scheduler s{B::value};
        auto [a, b] = cosock::socketpair(s);
        fd = b.fileno();
        s.spawn([](cosock::socket sock, int* n) -> task<> {
            counted c(n);
            std::array<char, 16> buf;
            co_await sock.recv(buf); // never satisfied
        }(std::move(b), &alive));
        s.run([]() -> task<> { co_return; }()); // the spawned task runs first and suspends
        CHECK(alive == 1);
        CHECK(s.spawned_count() == 1);
    }
    CHECK(alive == 0);
#if COSOCK_WINDOWS
    CHECK(!cosock::detail::sys::is_open(fd));
#else
    CHECK(::fcntl(fd, F_GETFD) == -1);
#endif
}

BACKEND_TEST("run() waits for spawned tasks and returns when nothing is left") {
    cosock::scheduler s{B::value};
    s.run(); // nothing to do
    int done = 0;
    for (int i = 0; i < 3; ++i)
        s.spawn([](int* d) -> task<> {
            ++*d;
            co_return;
        }(&done));
    s.run();
    CHECK(done == 3);
}

BACKEND_TEST("stop() ends run(); run(task) then reports operation_canceled") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    s.spawn([](cosock::scheduler* sched) -> task<> {
        sched->stop();
        co_return;
    }(&s));
    int err = 0;
    std::string what;
    try {
        s.run([&]() -> task<> {
            std::array<char, 4> buf;
            co_await b.recv(buf); // stopped before data arrives
        }());
    } catch (const std::system_error& e) {
        err = e.code().value();
        what = e.what();
    }
    CHECK(err == int(std::errc::operation_canceled));
    CHECK(what.find("anceled") != std::string::npos); // named on every platform
    // A later run starts afresh.
    CHECK(s.run([]() -> task<int> { co_return 1; }()) == 1);
}

BACKEND_TEST("run(task) on a task that can never finish is a logic_error, not a hang") {
    cosock::scheduler s{B::value};
    CHECK_THROWS_AS(s.run([]() -> task<> { co_await std::suspend_always{}; }()), std::logic_error);
}

BACKEND_TEST("run() inside a running scheduler is a logic_error") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& sched) -> task<> {
        CHECK_THROWS_AS(sched.run(), std::logic_error);
        co_return;
    }(s));
}

BACKEND_TEST("a coroutine fed by a busy peer cannot starve the others") {
    cosock::scheduler s{B::value};
    auto [x_in, x_out] = cosock::socketpair(s);
    auto [y_in, y_out] = cosock::socketpair(s);
    constexpr int total = 20'000;
    std::string fill(total, 'x');
    int progress = 0, seen_at = -1;
    s.spawn([](cosock::socket& y, int& progress, int& seen_at) -> task<> {
        std::array<char, 1> c;
        co_await y.recv(c);
        seen_at = progress;
    }(y_out, progress, seen_at));
    s.run([&]() -> task<> {
        co_await x_in.sendall(fill); // fits in the socket buffer
        co_await y_in.sendall(std::string_view("!"));
        std::array<char, 1> c;
        while (progress < total) {
            co_await x_out.recv(c); // always ready: would never suspend on its own
            ++progress;
        }
    }());
    CHECK(seen_at >= 0);
    CHECK(seen_at < total);
}

BACKEND_TEST("yield lets the other ready tasks run first") {
    cosock::scheduler s{B::value};
    std::string order;
    auto step = [](cosock::scheduler& s, std::string& order, char name) -> task<> {
        for (int i = 0; i < 3; ++i) {
            order += name;
            co_await s.yield();
        }
    };
    s.spawn(step(s, order, 'a'));
    s.spawn(step(s, order, 'b'));
    s.run();
    CHECK(order == "ababab");
}
