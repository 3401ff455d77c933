// Signals as awaitables: wait_signal and signal_set, on every backend. The
// tests send SIGUSR1, SIGUSR2 and SIGHUP only (the runner itself handles
// SIGINT, SIGTERM and the crash signals). While a test runs, those signals
// have a handler of the test's, which counts any arrival cosock did not
// catch instead of ending the run, and which each test expects to find again
// once cosock has let go of the signal.
#include "backends.hpp"

#include <atomic>
#include <csignal>
#include <filesystem>
#include <latch>
#include <memory>
#include <pthread.h>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

using cosock::task;
using namespace std::chrono_literals;

namespace {

std::atomic<int> uncaught{0};
extern "C" void count_uncaught(int) { uncaught.fetch_add(1); }

/// The test's own handler on SIGUSR1, SIGUSR2 and SIGHUP for its duration.
struct test_signals {
    static constexpr int list[] = {SIGUSR1, SIGUSR2, SIGHUP};
    struct sigaction saved[3]{};
    test_signals() {
        uncaught = 0;
        struct sigaction sa {};
        sa.sa_handler = count_uncaught;
        sigemptyset(&sa.sa_mask);
        for (int i = 0; i < 3; ++i) ::sigaction(list[i], &sa, &saved[i]);
    }
    ~test_signals() {
        for (int i = 0; i < 3; ++i) ::sigaction(list[i], &saved[i], nullptr);
    }
    test_signals(const test_signals&) = delete;
    test_signals& operator=(const test_signals&) = delete;
};

using handler = void (*)(int);

handler handler_of(int sig) {
    struct sigaction now {};
    ::sigaction(sig, nullptr, &now);
    return now.sa_handler;
}

/// Whether cosock catches `sig` now (its handler replaced the test's).
bool caught(int sig) { return handler_of(sig) != count_uncaught; }

bool ignored(int sig) { return handler_of(sig) == SIG_IGN; }

int open_descriptors() {
    int n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

/// Raises `sig` on the loop thread once cosock catches it (a wait began).
task<> raise_once_caught(cosock::scheduler& s, int sig) {
    while (!caught(sig)) co_await s.yield();
    ::raise(sig);
}

task<int> until(int sig) { co_return co_await cosock::wait_signal({sig}); }

} // namespace

BACKEND_TEST("wait_signal returns the number of a signal raised in its thread, or sent from another thread to the "
             "process, to the loop's thread or to itself") {
    test_signals guard;
    using sender = void (*)(pthread_t loop);
    const std::pair<const char*, sender> ways[] = {
        {"raise()", [](pthread_t) { ::raise(SIGUSR2); }},
        {"kill(getpid())", [](pthread_t) { std::thread([] { ::kill(::getpid(), SIGUSR2); }).join(); }},
        {"pthread_kill() of the loop's thread",
         [](pthread_t loop) { std::thread([loop] { ::pthread_kill(loop, SIGUSR2); }).join(); }},
        {"pthread_kill() of the sending thread",
         [](pthread_t) { std::thread([] { ::pthread_kill(::pthread_self(), SIGUSR2); }).join(); }},
    };
    for (auto [how, send] : ways) {
        std::string name = how;
        CAPTURE(name);
        cosock::scheduler s{B::value};
        int got = s.run([](cosock::scheduler& s, sender send) -> task<int> {
            s.spawn([](cosock::scheduler& s, sender send) -> task<> {
                while (!caught(SIGUSR2)) co_await s.yield();
                send(::pthread_self());
            }(s, send));
            co_return co_await cosock::wait_signal({SIGUSR1, SIGUSR2});
        }(s, send));
        CHECK(got == SIGUSR2);
        CHECK_FALSE(caught(SIGUSR2)); // the test's handler is back
    }
    CHECK(uncaught == 0);
}

BACKEND_TEST(
    "a signal_set queues the signals that arrive while nobody waits, and returns them in the order they came") {
    test_signals guard;
    cosock::scheduler s{B::value};
    cosock::signal_set set{s, {SIGUSR1, SIGUSR2, SIGHUP}};
    CHECK(set.contains(SIGUSR2));
    CHECK_FALSE(set.contains(SIGINT));
    // Before run(): the set catches them from its construction on. Not in
    // number order: SIGUSR2 is 12, SIGUSR1 10.
    ::raise(SIGUSR2);
    ::raise(SIGUSR1);
    ::raise(SIGUSR2);
    std::vector<int> got = s.run([](cosock::scheduler& s, cosock::signal_set& set) -> task<std::vector<int>> {
        std::vector<int> got;
        for (int i = 0; i < 3; ++i) got.push_back(co_await set.wait());
        CHECK_THROWS_AS(co_await cosock::with_timeout(set.wait(), 10ms), cosock::timeout_error); // nothing left
        // And between two waits, while the task does something else.
        ::raise(SIGHUP);
        co_await s.yield();
        got.push_back(co_await set.wait());
        co_return got;
    }(s, set));
    CHECK(got == std::vector<int>{SIGUSR2, SIGUSR1, SIGUSR2, SIGHUP});
    CHECK(uncaught == 0);
}

BACKEND_TEST("a signal reaches every set that has it, and each set's waiters in the order they came") {
    test_signals guard;
    cosock::scheduler s{B::value};
    cosock::signal_set one{s, {SIGUSR1}}, both{s, {SIGUSR1, SIGUSR2}};
    s.run([](cosock::scheduler& s, cosock::signal_set& one, cosock::signal_set& both) -> task<> {
        int first = 0, second = 0;
        auto waiter = [](cosock::signal_set& set, int& got) -> task<> { got = co_await set.wait(); };
        s.spawn(waiter(both, first));
        s.spawn(waiter(both, second));
        co_await s.yield(); // both wait now
        ::raise(SIGUSR1);
        ::raise(SIGUSR2);
        CHECK(co_await one.wait() == SIGUSR1);
        while (second == 0) co_await s.yield();
        CHECK(first == SIGUSR1);
        CHECK(second == SIGUSR2);
    }(s, one, both));
    CHECK(uncaught == 0);
}

BACKEND_TEST("a wait for a signal ends with cancelled_error on a stop request and timeout_error under with_timeout") {
    test_signals guard;
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        std::stop_source stop;
        bool cancelled = false;
        auto waiter = [](bool& cancelled) -> task<> {
            try {
                co_await cosock::wait_signal({SIGUSR1});
            } catch (const cosock::cancelled_error&) {
                cancelled = true;
            }
        };
        s.spawn(waiter(cancelled).with_stop_token(stop.get_token()));
        while (!caught(SIGUSR1)) co_await s.yield();
        stop.request_stop();
        while (!cancelled) co_await s.yield();
        CHECK_FALSE(caught(SIGUSR1)); // the wait took its handler away with it

        CHECK_THROWS_AS(co_await cosock::with_timeout(cosock::wait_signal({SIGUSR1}), 10ms), cosock::timeout_error);
        CHECK_FALSE(caught(SIGUSR1));

        // A stop requested before the wait starts: cancelled at once, nothing installed.
        std::stop_source early;
        early.request_stop();
        auto stopped_first = []() -> task<> { co_await cosock::wait_signal({SIGUSR1}); };
        CHECK_THROWS_AS(co_await stopped_first().with_stop_token(early.get_token()), cosock::cancelled_error);

        // A set's wait ends the same way; the set still catches its signal.
        cosock::signal_set set{s, {SIGUSR1}};
        CHECK_THROWS_AS(co_await cosock::with_timeout(set.wait(), 10ms), cosock::timeout_error);
        ::raise(SIGUSR1);
        CHECK(co_await set.wait() == SIGUSR1);
    }(s));
    CHECK(uncaught == 0);
}

BACKEND_TEST("wait_signal ends a server loop through when_any, and works in when_all") {
    test_signals guard;
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    s.run([](cosock::scheduler& s, cosock::socket& a) -> task<> {
        auto serve = [](cosock::socket& a) -> task<int> {
            std::array<char, 16> buf;
            for (;;) co_await a.recv(buf); // a silent peer: for ever
        };
        std::vector<task<int>> either;
        either.push_back(serve(a));
        either.push_back(until(SIGHUP));
        s.spawn(raise_once_caught(s, SIGHUP));
        auto first = co_await cosock::when_any(std::move(either));
        CHECK(first.index == 1);
        CHECK(first.value == SIGHUP);

        std::vector<task<int>> all;
        all.push_back(until(SIGUSR1));
        all.push_back(until(SIGUSR2));
        s.spawn(raise_once_caught(s, SIGUSR2));
        s.spawn(raise_once_caught(s, SIGUSR1));
        std::vector<int> got = co_await cosock::when_all(std::move(all));
        std::vector<int> expected{SIGUSR1, SIGUSR2};
        CHECK(got == expected);
    }(s, a));
    CHECK(uncaught == 0);
    CHECK_FALSE(caught(SIGHUP));
}

BACKEND_TEST("a frame destroyed while it waits for a signal leaves nothing behind") {
    test_signals guard;
    int descriptors = open_descriptors();
    std::unique_ptr<cosock::signal_set> outliving;
    {
        cosock::scheduler s{B::value};
        outliving = std::make_unique<cosock::signal_set>(s, cosock::signal_list{SIGHUP});
        cosock::signal_set held{s, {SIGUSR2}};
        s.spawn(until(SIGUSR1));
        s.spawn([](cosock::signal_set& held) -> task<> { co_await held.wait(); }(held));
        s.spawn([](cosock::signal_set& outliving) -> task<> { co_await outliving.wait(); }(*outliving));
        s.run([](cosock::scheduler& s) -> task<> {
            while (!caught(SIGUSR1)) co_await s.yield();
            co_await s.yield();
        }(s));
        CHECK(s.spawned_count() == 3); // all three still wait
        CHECK(caught(SIGUSR1));
    } // the scheduler destroys their frames, then goes
    CHECK_FALSE(caught(SIGUSR1));
    CHECK_FALSE(caught(SIGUSR2));
    CHECK_FALSE(caught(SIGHUP)); // a set that outlives its scheduler catches nothing
    outliving.reset();
    CHECK(open_descriptors() == descriptors);
    CHECK(uncaught == 0);
}

BACKEND_TEST("a signal_set destroyed under a waiting task ends its wait with EBADF") {
    test_signals guard;
    cosock::scheduler s{B::value};
    auto set = std::make_unique<cosock::signal_set>(s, cosock::signal_list{SIGUSR1});
    int error = s.run([](cosock::scheduler& s, std::unique_ptr<cosock::signal_set>& set) -> task<int> {
        int error = 0;
        s.spawn([](cosock::signal_set& set, int& error) -> task<> {
            try {
                co_await set.wait();
            } catch (const std::system_error& e) {
                error = e.code().value();
            }
        }(*set, error));
        co_await s.yield(); // it waits
        set.reset();
        while (error == 0) co_await s.yield();
        co_return error;
    }(s, set));
    CHECK(error == EBADF);
    CHECK_FALSE(caught(SIGUSR1));
}

BACKEND_TEST("the disposition a signal had comes back when its last set goes, unless the program replaced it") {
    test_signals guard;
    struct sigaction ignore {};
    struct sigaction before {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGHUP, &ignore, &before);
    cosock::scheduler s{B::value};
    {
        auto first = std::make_unique<cosock::signal_set>(s, cosock::signal_list{SIGUSR1, SIGHUP});
        cosock::signal_set second{s, {SIGUSR1}};
        CHECK(caught(SIGUSR1));
        CHECK_FALSE(ignored(SIGHUP));
        first.reset();
        CHECK(ignored(SIGHUP)); // its last set went
        CHECK(caught(SIGUSR1)); // the second set still has it
    }
    CHECK_FALSE(caught(SIGUSR1));
    {
        cosock::signal_set set{s, {SIGUSR2}};
        struct sigaction mine {};
        mine.sa_handler = SIG_IGN;
        ::sigaction(SIGUSR2, &mine, nullptr);
    }
    CHECK(ignored(SIGUSR2)); // installed while the set lived: kept
    ::sigaction(SIGHUP, &before, nullptr);
}

BACKEND_TEST("one SIGUSR2 wakes every scheduler waiting for it, each on its own thread") {
    test_signals guard;
    std::latch waiting(2);
    auto run_one = [&waiting](int& got) {
        bool announced = false;
        try {
            cosock::scheduler s{B::value};
            got = s.run([](cosock::scheduler& s, std::latch& waiting, bool& announced) -> task<int> {
                s.spawn([](std::latch& waiting, bool& announced) -> task<> { // runs once the wait has begun
                    announced = true;
                    waiting.count_down();
                    co_return;
                }(waiting, announced));
                // The limit only keeps a missed signal from hanging the run.
                co_return co_await cosock::with_timeout(cosock::wait_signal({SIGUSR2}), 60s);
            }(s, waiting, announced));
        } catch (...) {
            got = -1;
            if (!announced) waiting.count_down();
        }
    };
    int got[2] = {0, 0};
    std::thread first(run_one, std::ref(got[0])), second(run_one, std::ref(got[1]));
    waiting.wait();
    ::kill(::getpid(), SIGUSR2);
    first.join();
    second.join();
    CHECK(got[0] == SIGUSR2);
    CHECK(got[1] == SIGUSR2);
    CHECK(uncaught == 0);
    CHECK_FALSE(caught(SIGUSR2));
}

BACKEND_TEST("bad signal lists are refused with an exception naming the value") {
    test_signals guard;
    cosock::scheduler s{B::value};
    auto refusal = [&s](cosock::signal_list list) -> std::string {
        try {
            cosock::signal_set set{s, list};
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "accepted";
    };
    CHECK(refusal({SIGKILL}) == "cosock::signal_set: signal 9 (SIGKILL) cannot be caught");
    CHECK(refusal({SIGUSR1, SIGSTOP}) == "cosock::signal_set: signal 19 (SIGSTOP) cannot be caught");
    CHECK(refusal({0}) == "cosock::signal_set: 0 is not a signal number (1 to " + std::to_string(NSIG - 1) + ")");
    CHECK(refusal({-1}).find("-1 is not a signal number") != std::string::npos);
    CHECK(refusal({NSIG}).find(std::to_string(NSIG) + " is not a signal number") != std::string::npos);
    CHECK(refusal({}) == "cosock::signal_set: no signal given");
    CHECK(refusal({32}) == "cosock::signal_set: signal 32 is reserved by the C library");
    CHECK_FALSE(caught(SIGUSR1)); // the refused list installed nothing

    CHECK_THROWS_AS((void)cosock::wait_signal({SIGUSR1}), std::logic_error); // no scheduler running
    s.run([](cosock::scheduler& s) -> task<> {
        CHECK_THROWS_WITH_AS((void)cosock::wait_signal({SIGKILL}),
                             "cosock::wait_signal: signal 9 (SIGKILL) cannot be caught", std::invalid_argument);
        CHECK_THROWS_AS((void)cosock::wait_signal({}), std::invalid_argument);
        // A set is awaited on its own scheduler.
        cosock::scheduler other{B::value};
        cosock::signal_set elsewhere{other, {SIGUSR1}};
        CHECK_THROWS_AS(co_await elsewhere.wait(), std::logic_error);
        (void)s;
    }(s));
}

BACKEND_TEST(
    "an idle scheduler waiting for a signal sleeps, and one with a signal_set but no waiter runs out of work") {
    test_signals guard;
    cosock::scheduler s{B::value};
    std::uint64_t waits = s.run([](cosock::scheduler& s) -> task<std::uint64_t> {
        int got = 0;
        s.spawn([](int& got) -> task<> { got = co_await cosock::wait_signal({SIGUSR1}); }(got));
        while (!caught(SIGUSR1)) co_await s.yield();
        co_await s.yield();
        std::uint64_t before = s.stats().waits;
        co_await cosock::sleep_for(200ms);
        std::uint64_t idle = s.stats().waits - before;
        ::raise(SIGUSR1);
        while (got == 0) co_await s.yield();
        CHECK(got == SIGUSR1);
        co_return idle;
    }(s));
    // The sleep's own wake-up, and one spare for a wake-up already under way.
    CHECK(waits <= 3);

    // A set alone is no work: run() returns once its tasks have ended.
    cosock::signal_set set{s, {SIGUSR2}};
    s.spawn([](cosock::signal_set& set) -> task<> {
        CHECK_THROWS_AS(co_await cosock::with_timeout(set.wait(), 5ms), cosock::timeout_error);
    }(set));
    s.run();
    CHECK(s.spawned_count() == 0);
    ::raise(SIGUSR2); // still caught, and queued
    CHECK(s.run([](cosock::signal_set& set) -> task<int> { co_return co_await set.wait(); }(set)) == SIGUSR2);
    CHECK(uncaught == 0);
}
