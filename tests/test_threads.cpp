// Several schedulers on several threads: resume_on, post(task), socket
// hand-over, scheduler_group. Built with ThreadSanitizer too (scripts/test.sh).
#include "backends.hpp"

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>
#if !COSOCK_WINDOWS
#include <csignal>
#include <sys/syscall.h>
#include <unistd.h>
#endif

using namespace std::chrono_literals;
using cosock::task;

namespace {

#if COSOCK_WINDOWS // no /proc: the process's handles, sockets among them
std::size_t descriptors_open() {
    DWORD n = 0;
    REQUIRE(::GetProcessHandleCount(::GetCurrentProcess(), &n));
    return n;
}
#else
std::size_t descriptors_open() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}
#endif

// Each byte of connection `id`'s stream is a function of its position, so a
// byte lost, repeated or taken from another connection shows.
char pattern(std::size_t id, std::size_t i) { return char('a' + (id * 7 + i * 13) % 26); }

task<> echo(cosock::socket conn) {
    std::array<char, 4096> buf;
    while (std::size_t n = co_await conn.recv(buf)) co_await conn.sendall(std::string_view(buf.data(), n));
}

// Sends `bytes` of connection `id`'s pattern in uneven pieces and checks
// every byte that comes back.
task<> client(cosock::address to, std::size_t id, std::size_t bytes, std::atomic<std::size_t>& checked) {
    cosock::socket c{*cosock::scheduler::current()};
    co_await c.connect(to);
    std::string out(bytes, '\0');
    for (std::size_t i = 0; i < bytes; ++i) out[i] = pattern(id, i);
    std::size_t sent = 0, got = 0;
    std::array<char, 8192> buf;
    while (got < bytes) {
        if (sent < bytes) {
            std::size_t piece = std::min<std::size_t>(bytes - sent, 1 + (id + sent) % 3000);
            co_await c.sendall(std::string_view(out).substr(sent, piece));
            sent += piece;
        }
        while (got < sent) {
            std::size_t n = co_await c.recv(buf);
            REQUIRE(n > 0);
            for (std::size_t k = 0; k < n; ++k)
                if (buf[k] != pattern(id, got + k)) FAIL("connection " << id << " byte " << got + k << " differs");
            got += n;
        }
    }
    checked.fetch_add(got);
}

// A wait that never ends: keeps a loop up until it is stopped.
task<> forever(cosock::scheduler& s) {
    auto [a, b] = cosock::socketpair(s);
    std::array<char, 1> c;
    co_await a.recv(c);
}

} // namespace

// A group of one thread whose scheduler waits for ever: the "other thread" of
// the tests below (a scheduler is made, run and destroyed on one thread).
// The calling thread's id, read by a system call: std::this_thread::get_id()
// reads pthread_self(), which compilers may assume does not change across a
// coroutine's suspension.
#if COSOCK_WINDOWS
long thread_number() { return long(::GetCurrentThreadId()); }
#else
long thread_number() { return ::syscall(SYS_gettid); }
#endif

struct other_thread {
    std::atomic<long> id{0};
    cosock::scheduler_group g;
    explicit other_thread(cosock::backend which) : g(1, {.which = which}) {
        g.start([this](cosock::scheduler& s, std::size_t) -> task<> {
            id = thread_number();
            co_await forever(s);
        });
        while (id.load() == 0) std::this_thread::yield();
    }
    ~other_thread() { g.stop(); }
    cosock::scheduler& operator*() { return g[0]; }
};

BACKEND_TEST("resume_on moves a coroutine to another scheduler's thread and back, and run() waits while it is away") {
    cosock::scheduler home{B::value};
    other_thread t(B::value);
    cosock::scheduler& other = *t;
    auto body = [&]() -> task<int> {
        std::vector<bool> where;
        for (int i = 0; i < 100; ++i) {
            co_await cosock::resume_on(other);
            where.push_back(thread_number() == t.id.load());
            co_await cosock::resume_on(home);
            where.push_back(thread_number() != t.id.load());
        }
        co_await cosock::resume_on(home); // already here: no hop
        co_await cosock::resume_on(other);
        // run()'s own task ends on the other thread; run() returns its value here.
        co_return int(std::count(where.begin(), where.end(), true));
    };
    int right = home.run(body());
    CHECK(right == 200);
}

BACKEND_TEST("a spawned task that ends on another scheduler's thread is counted and destroyed at home") {
    cosock::scheduler home{B::value};
    other_thread t(B::value);
    cosock::scheduler& other = *t;
    std::atomic<int> destroyed{0};
    struct guard {
        std::atomic<int>& n;
        ~guard() { ++n; }
    };
    auto away = [&](int) -> task<> {
        guard g{destroyed};
        co_await cosock::resume_on(other);
        co_await other.yield();
    };
    for (int i = 0; i < 50; ++i) home.spawn(away(i));
    home.run(); // returns only once every spawned task came back and ended
    CHECK(home.spawned_count() == 0);
    CHECK(destroyed == 50);
}

BACKEND_TEST("post(task) starts a task from another thread, in the order posted") {
    cosock::scheduler s{B::value};
    std::vector<int> order;
    auto job = [&](int i) -> task<> {
        order.push_back(i);
        co_return;
    };
    std::atomic<bool> done{false};
    auto root = [&]() -> task<> {
        while (!done.load()) co_await cosock::sleep_for(1ms);
    };
    std::thread poster([&] {
        for (int i = 0; i < 1000; ++i) s.post(job(i));
        s.post([&] { done = true; });
    });
    s.run(root());
    poster.join();
    s.run(); // what was posted after the last turn
    REQUIRE(order.size() == 1000);
    std::vector<int> expect(1000);
    std::iota(expect.begin(), expect.end(), 0);
    CHECK(order == expect);
    CHECK_THROWS_AS(s.post(task<>{}), std::logic_error);
}

BACKEND_TEST("socket::move_to hands a connection to a scheduler on another thread, which serves it") {
    cosock::scheduler a{B::value};
    other_thread tb(B::value);
    cosock::scheduler& b = *tb;
    std::atomic<std::size_t> checked{0};
    auto main = [&]() -> task<> {
        cosock::socket srv = listener(a);
        auto addr = srv.getsockname();
        a.spawn(client(addr, 1, 200000, checked));
        auto [conn, peer] = co_await srv.accept();
        std::array<char, 3> first;
        std::size_t n = co_await conn.recv(first); // used here first: registered with a's backend
        REQUIRE(n > 0);
        conn.move_to(b);
        auto serve = [](cosock::socket c, std::string head) -> task<> {
            co_await c.sendall(head);
            co_await echo(std::move(c));
        };
        b.post(serve(std::move(conn), std::string(first.data(), n)));
        while (checked.load() == 0) co_await cosock::sleep_for(1ms);
    };
    a.run(main());
    CHECK(checked == 200000);
}

BACKEND_TEST(
    "socket::move_to from another thread while the socket's scheduler runs is refused; a closed socket says EBADF") {
    cosock::scheduler b{B::value};
    {
        other_thread ta(B::value);
        auto [x, y] = cosock::socketpair(*ta);
        CHECK_THROWS_AS(x.move_to(b), std::logic_error);
    }
    cosock::scheduler a{B::value}; // runs nowhere: its sockets may move from any thread
    auto [x, y] = cosock::socketpair(a);
    x.move_to(b);
    cosock::socket closed;
    CHECK(error_of([&] { closed.move_to(b); }) == EBADF);
}

namespace {

// How many connections each thread of a group served.
struct tally {
    std::mutex m;
    std::map<const cosock::scheduler*, std::size_t> served;
    void add(const cosock::scheduler* s) {
        std::lock_guard lock(m);
        ++served[s];
    }
};

task<> counted_echo(cosock::socket conn, tally& t) {
    t.add(cosock::scheduler::current());
    co_await echo(std::move(conn));
}

#if !COSOCK_WINDOWS // SO_REUSEPORT
// A loopback port held by a socket that never listens, so that listeners with
// SO_REUSEPORT can share it and it takes no connections itself.
struct reserved_port {
    cosock::scheduler s{cosock::backend::poll};
    cosock::socket probe{s};
    int port;
    reserved_port() {
        probe.setsockopt(cosock::sol_socket, cosock::so_reuseport, 1);
        probe.bind({"127.0.0.1", 0});
        port = probe.getsockname().port();
    }
};
#endif

// Runs `clients` clients of `bytes` each, at most `parallel` at a time, on a
// scheduler of this thread; returns the bytes checked.
std::size_t run_clients(cosock::backend which, cosock::address to, std::size_t clients, std::size_t bytes,
                        std::size_t parallel) {
    cosock::scheduler s{which};
    std::atomic<std::size_t> checked{0};
    auto batch = [&](std::size_t first, std::size_t n) -> task<> {
        for (std::size_t id = first; id < clients; id += n) co_await client(to, id, bytes, checked);
    };
    for (std::size_t k = 0; k < std::min(parallel, clients); ++k) s.spawn(batch(k, std::min(parallel, clients)));
    s.run();
    return checked.load();
}

} // namespace

#if !COSOCK_WINDOWS // windows: no SO_REUSEPORT
BACKEND_TEST("scheduler_group: a SO_REUSEPORT listener per thread; threads x connections echo every byte") {
    constexpr std::size_t threads = 3;
    std::size_t clients = B::value == cosock::backend::select ? 60 : 150;
    reserved_port port;
    tally t;
    std::atomic<std::size_t> listening{0};
    cosock::scheduler_group g(threads, {.which = B::value});
    g.start([&](cosock::scheduler& s, std::size_t) -> task<> {
        cosock::socket srv{s};
        srv.setsockopt(cosock::sol_socket, cosock::so_reuseport, 1);
        srv.bind({"127.0.0.1", port.port});
        srv.listen(1024);
        ++listening;
        for (;;) {
            auto [conn, peer] = co_await srv.accept();
            s.spawn(counted_echo(std::move(conn), t));
        }
    });
    while (listening.load() < threads) std::this_thread::yield();
    CHECK(run_clients(B::value, {"127.0.0.1", port.port}, clients, 20000, 50) == clients * 20000);
    g.stop();
    g.join();
    CHECK(t.served.size() == threads); // each thread served some (the kernel spreads them)
    std::size_t total = 0;
    for (auto& [s, n] : t.served) total += n;
    CHECK(total == clients);
}
#endif

BACKEND_TEST("scheduler_group: one acceptor hands 10,000 connections to the other schedulers, each byte checked") {
    constexpr std::size_t threads = 3;
    std::size_t clients = 10000, parallel = B::value == cosock::backend::select ? 150 : 500;
    tally t;
    std::atomic<int> port{0};
    cosock::scheduler_group g(threads, {.which = B::value});
    g.start([&](cosock::scheduler& s, std::size_t i) -> task<> {
        if (i != 0) co_return; // the others serve what they are handed
        cosock::socket srv = listener(s);
        srv.listen(1024);
        port = srv.getsockname().port();
        for (bool least = false;; least = !least) {
            auto [conn, peer] = co_await srv.accept();
            // Round robin and least loaded in turn, never this thread.
            cosock::scheduler* to = &(least ? g.least_loaded() : g.next());
            while (to == &s) to = &g.next();
            conn.move_to(*to);
            to->post(counted_echo(std::move(conn), t));
        }
    });
    while (port.load() == 0) std::this_thread::yield();
    const cosock::scheduler* acceptor = &g[0];
    CHECK(run_clients(B::value, {"127.0.0.1", port.load()}, clients, 100, parallel) == clients * 100);
    g.stop();
    g.join();
    CHECK_THROWS_AS(g[0], std::logic_error); // gone with the group's stop
    std::size_t total = 0;
    for (auto& [s, n] : t.served) {
        CHECK(s != acceptor);
        total += n;
    }
    CHECK(t.served.size() == threads - 1);
    CHECK(total == clients);
}

BACKEND_TEST("scheduler_group: stopped from another thread with thousands of operations in flight, it frees every "
             "frame and descriptor") {
    std::size_t per_thread = B::value == cosock::backend::select ? 150 : 2000;
    std::size_t before = descriptors_open();
    std::atomic<std::size_t> waiting{0}, frames{0};
    struct frame_guard {
        std::atomic<std::size_t>& n;
        explicit frame_guard(std::atomic<std::size_t>& c) : n(c) { ++n; }
        ~frame_guard() { --n; }
    };
    {
        cosock::scheduler_group g(2, {.which = B::value});
        auto waiter = [&](cosock::scheduler& on) -> task<> {
            frame_guard f{frames};
            co_await cosock::resume_on(on); // some wait on the other thread's scheduler
            auto [a, b] = cosock::socketpair(on);
            std::array<char, 8> buf;
            ++waiting;
            co_await a.recv(buf);
            FAIL("a recv nobody writes to completed");
        };
        g.start([&](cosock::scheduler& s, std::size_t i) -> task<> {
            for (std::size_t k = 0; k < per_thread; ++k) s.spawn(waiter(k % 10 == 0 ? g[1 - i] : s));
            co_return;
        });
        while (waiting.load() < 2 * per_thread) std::this_thread::yield();
        CHECK(frames.load() == 2 * per_thread);
        std::thread stopper([&] { g.stop(); });
        stopper.join();
        g.join();
        CHECK(frames.load() == 0);
    }
    CHECK(descriptors_open() == before);
}

BACKEND_TEST("scheduler_group: an exception escaping one thread's function stops the others and reaches join()") {
    cosock::scheduler_group g(3, {.which = B::value});
    g.start([](cosock::scheduler& s, std::size_t i) -> task<> {
        if (i == 1) {
            co_await cosock::sleep_for(5ms);
            throw std::runtime_error("thread 1 failed");
        }
        co_await forever(s);
    });
    CHECK_THROWS_WITH_AS(g.join(), "thread 1 failed", std::runtime_error);
}

BACKEND_TEST("scheduler_group: it ends by itself once every function and what it spawned have ended") {
    std::atomic<int> ran{0};
    cosock::scheduler_group g(4, {.which = B::value, .pin = true});
    g.run([&](cosock::scheduler& s, std::size_t) -> task<> {
        s.spawn([](std::atomic<int>& n) -> task<> {
            co_await cosock::sleep_for(2ms);
            ++n;
        }(ran));
        co_await cosock::sleep_for(1ms);
        ++ran;
    });
    CHECK(ran == 8);
}

// stop() may be called from any thread, at any time: also while the group's
// threads are destroying their schedulers (a thread hammers it meanwhile).
BACKEND_TEST("scheduler_group: stop() from another thread while the schedulers go touches none of them") {
    for (int round = 0; round < 20; ++round) {
        cosock::scheduler_group g(2, {.which = B::value});
        g.start([](cosock::scheduler& s, std::size_t) -> task<> {
            for (int i = 0; i < 50; ++i) s.spawn(forever(s)); // each scheduler has frames to destroy
            co_await forever(s);
        });
        std::atomic<bool> done{false};
        std::thread hammer([&] {
            while (!done.load()) g.stop();
        });
        g.stop();
        g.join();
        done = true;
        hammer.join();
    }
}

TEST_CASE("scheduler_group refuses bad input, naming it") {
    CHECK_THROWS_WITH_AS(cosock::scheduler_group(0), doctest::Contains("not 0"), std::invalid_argument);
    cosock::scheduler_group g(2, {.which = cosock::backend::poll});
    CHECK_THROWS_WITH_AS(g[2], doctest::Contains("no scheduler 2"), std::out_of_range);
    g.start([](cosock::scheduler&, std::size_t) -> task<> { co_return; });
    CHECK_THROWS_AS(g.start([](cosock::scheduler&, std::size_t) -> task<> { co_return; }), std::logic_error);
    g.join();
}

#if !COSOCK_WINDOWS // windows: POSIX signals (stop_on, kill)
BACKEND_TEST("scheduler_group: stop_on ends the group when the signal arrives, and does not keep a finished group up") {
    {
        std::atomic<int> started{0};
        cosock::scheduler_group g(2, {.which = B::value});
        g.stop_on({SIGUSR2});
        g.start([&](cosock::scheduler& s, std::size_t) -> task<> {
            ++started;
            co_await forever(s);
        });
        while (started.load() < 2) std::this_thread::yield();
        ::kill(::getpid(), SIGUSR2); // caught since stop_on
        g.join();                    // returns: the signal stopped it
    }
    cosock::scheduler_group g(2, {.which = B::value});
    g.stop_on({SIGUSR2});
    g.run([](cosock::scheduler&, std::size_t) -> task<> { co_return; }); // ends by itself
}
#endif

BACKEND_TEST("tasks posted to a scheduler that is destroyed before it runs them are destroyed with it") {
    std::atomic<int> alive{0};
    struct guard {
        std::atomic<int>& n;
        explicit guard(std::atomic<int>& c) : n(c) { ++n; }
        guard(const guard& o) : n(o.n) { ++n; }
        ~guard() { --n; }
    };
    auto job = [](guard) -> task<> { co_return; };
    {
        cosock::scheduler s{B::value};
        std::thread poster([&] {
            for (int i = 0; i < 100; ++i) s.post(job(guard{alive}));
        });
        poster.join();
        CHECK(alive.load() == 100); // each frame holds its guard
    }
    CHECK(alive.load() == 0);
}

namespace {
task<int> sleeper_for_ever() {
    co_await cosock::sleep_for(1h);
    co_return 0;
}
task<int> hopper(cosock::scheduler& other, int v) {
    co_await cosock::resume_on(other);
    co_return v + 1;
}
task<> away_sleeper(cosock::scheduler& other) {
    co_await cosock::resume_on(other);
    co_await cosock::sleep_for(1h);
}
} // namespace

BACKEND_TEST("a task that moved to another thread is stopped there: when_any's loser, with_timeout's child") {
    std::atomic<int> rounds{0};
    cosock::scheduler_group g(2, {.which = B::value});
    g.run([&](cosock::scheduler& s, std::size_t i) -> task<> {
        if (i != 0) co_return;
        for (int r = 0; r < 300; ++r) {
            std::vector<task<int>> ts;
            ts.push_back(sleeper_for_ever());
            ts.push_back(hopper(g[1], r));
            auto won = co_await cosock::when_any(std::move(ts));
            CHECK(won.index == 1);
            CHECK(won.value == r + 1);
            // The child sleeps on the other thread; the deadline is here.
            CHECK_THROWS_AS(co_await cosock::with_timeout(away_sleeper(g[1]), 1ms), cosock::timeout_error);
            CHECK(cosock::scheduler::current() == &s); // the caller continues on its own scheduler
            ++rounds;
        }
        g.stop();
    });
    CHECK(rounds == 300);
}

BACKEND_TEST("a task awaited by another ends on another thread; its caller continues on its own, every time") {
    // Each round is two wake-ups across threads, which cost wine about 1 ms.
    constexpr int wanted = COSOCK_WINDOWS ? 2000 : 20000;
    std::atomic<int> rounds{0};
    cosock::scheduler_group g(2, {.which = B::value});
    g.run([&](cosock::scheduler& s, std::size_t i) -> task<> {
        if (i != 0) co_return;
        for (int r = 0; r < wanted; ++r) {
            int v = co_await hopper(g[1], r);
            if (v != r + 1 || cosock::scheduler::current() != &s) FAIL("round " << r);
            ++rounds;
        }
        g.stop();
    });
    CHECK(rounds == wanted);
}

BACKEND_TEST("a channel in one thread's function, with waiters on another thread, may go first when the group stops") {
    // Thread 0's frame, with the channel in it, is destroyed while thread 1's
    // consumers wait on it, have just been handed a value, or are being
    // destroyed themselves, in any order; repeated so that the orders occur.
    std::atomic<int> received{0};
    auto consumer = [&](cosock::channel<int>& ch) -> task<> {
        if (co_await ch.receive()) ++received; // and touches `ch` no more
    };
    for (int round = 0; round < 40; ++round) {
        std::atomic<bool> all_waiting{false};
        auto marker = [&]() -> task<> {
            all_waiting = true;
            co_return;
        };
        cosock::scheduler_group g(2, {.which = B::value});
        g.run([&](cosock::scheduler&, std::size_t i) -> task<> {
            if (i != 0) co_return;
            cosock::channel<int> ch(8);
            // Thread 1 runs what is posted in order, each task up to its first
            // wait: once the marker has run, every consumer waits on `ch`.
            for (int k = 0; k < 4; ++k) g[1].post(consumer(ch));
            g[1].post(marker());
            while (!all_waiting.load()) co_await cosock::sleep_for(1ms);
            for (int v = 0; v < round % 5; ++v) { // hands a value to a waiting consumer
                int value = v;
                CHECK(ch.try_send(value));
            }
            g.stop();
            co_await cosock::sleep_for(1h); // destroyed, with the channel, as thread 1's consumers are
        });
        CHECK(all_waiting.load());
    }
    CHECK(received.load() <= 80);
}

BACKEND_TEST("a scheduler stopped while it did not run starts its next run() afresh") {
    cosock::scheduler s{B::value};
    s.stop();
    CHECK(s.run([]() -> task<int> { co_return 42; }()) == 42);
}
