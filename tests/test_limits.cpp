#include "backends.hpp"

#include <array>
#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <pthread.h>
#include <thread>
#include <unistd.h>

using cosock::task;

BACKEND_TEST("a descriptor above FD_SETSIZE works, except on select which refuses it clearly") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    int high = ::fcntl(b.fileno(), F_DUPFD_CLOEXEC, FD_SETSIZE + 10);
    REQUIRE(high >= FD_SETSIZE);
    b.close();
    auto far = cosock::socket::from_fd(s, high);
    std::size_t n = 0;
    std::string error;
    s.run([&]() -> task<> {
        // The writer runs only once this task waits, so recv must register `high`.
        s.spawn([](cosock::socket& a) -> task<> { co_await a.sendall(std::string_view("late")); }(a));
        std::array<char, 8> buf;
        try {
            n = co_await far.recv(buf);
        } catch (const std::system_error& e) {
            error = e.what();
        }
    }());
    if (B::value == cosock::backend::select) {
        CHECK(error.find("FD_SETSIZE") != std::string::npos);
        CHECK(error.find(std::to_string(high)) != std::string::npos);
    } else {
        CHECK(error.empty());
        CHECK(n == 4);
    }
}

namespace {
std::atomic<int> signals_seen{0};
extern "C" void count_signal(int) { signals_seen.fetch_add(1, std::memory_order_relaxed); }
} // namespace

BACKEND_TEST("signals interrupting a wait are retried, never reported (PEP 475)") {
    struct sigaction sa {
    }, old{};
    sa.sa_handler = count_signal; // no SA_RESTART: the wait sees EINTR
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGUSR1, &sa, &old);
    signals_seen = 0;
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    int writer_fd = ::dup(a.fileno());
    pthread_t loop_thread = ::pthread_self();
    std::atomic<bool> waiting{false};
    std::thread pest([&] {
        while (!waiting.load()) std::this_thread::yield();
        // Keep signalling until one has been handled, then feed the reader.
        for (int i = 0; i < 1000 && signals_seen.load() < 20; ++i) {
            ::pthread_kill(loop_thread, SIGUSR1);
            std::this_thread::yield();
        }
        (void)!::write(writer_fd, "data", 4);
    });
    std::size_t n = s.run([&]() -> task<std::size_t> {
        std::array<char, 8> buf;
        waiting = true;
        co_return co_await b.recv(buf);
    }());
    pest.join();
    ::close(writer_fd);
    ::sigaction(SIGUSR1, &old, nullptr);
    CHECK(n == 4);
    CHECK(signals_seen.load() > 0);
}
