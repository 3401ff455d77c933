// getaddrinfo. Only "localhost" and numeric hosts resolve here (there is no
// network); lookups that must stay open go through fake_resolver, which holds
// them until the test says so.
#include "backends.hpp"

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include <netdb.h>

using cosock::task;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// Stands in for the blocking getaddrinfo the helper threads call. Forwarding,
// it counts calls and resolves for real; holding, it keeps every lookup
// waiting until release(), then answers 127.0.0.1 whatever the name. The
// destructor releases, waits for every helper thread and restores the real one.
class fake_resolver {
  public:
    enum mode { forward, hold };
    explicit fake_resolver(mode m) {
        std::lock_guard lock(gate().mutex);
        gate().holding = m == hold;
        gate().open = false;
        gate().calls = 0;
        cosock::detail::blocking_getaddrinfo = &fake;
    }
    ~fake_resolver() {
        release();
        cosock::detail::wait_for_helper_threads();
        cosock::detail::blocking_getaddrinfo = &::getaddrinfo;
    }
    int calls() {
        std::lock_guard lock(gate().mutex);
        return gate().calls;
    }
    // True once `n` lookups have reached the resolver (false after 10 s: a failure, not a hang).
    bool wait_for_calls(int n) {
        std::unique_lock lock(gate().mutex);
        return gate().changed.wait_for(lock, 10s, [n] { return gate().calls >= n; });
    }
    void release() {
        std::lock_guard lock(gate().mutex);
        gate().open = true;
        gate().changed.notify_all();
    }

  private:
    struct state {
        std::mutex mutex;
        std::condition_variable changed;
        bool holding = false;
        bool open = false;
        int calls = 0;
    };
    static state& gate() {
        static state s;
        return s;
    }
    static int fake(const char* host, const char* port, const addrinfo* hints, addrinfo** res) {
        {
            std::unique_lock lock(gate().mutex);
            ++gate().calls;
            gate().changed.notify_all();
            if (gate().holding) {
                gate().changed.wait(lock, [] { return gate().open; });
                host = "127.0.0.1";
            }
        }
        return ::getaddrinfo(host, port, hints, res);
    }
};

// Stops `s` from another thread every `period` until the test is done, so
// that a loop waiting for ever fails the test (fired()) instead of hanging.
class watchdog {
  public:
    watchdog(cosock::scheduler& s, std::chrono::seconds period)
        : thread_([this, &s, period] {
              std::unique_lock lock(mutex_);
              while (!done_cv_.wait_for(lock, period, [this] { return done_; })) {
                  fired_ = true;
                  s.post([&s] { s.stop(); });
              }
          }) {}
    ~watchdog() {
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        done_cv_.notify_all();
        thread_.join();
    }
    bool fired() {
        std::lock_guard lock(mutex_);
        return fired_;
    }

  private:
    std::mutex mutex_;
    std::condition_variable done_cv_;
    bool done_ = false;
    bool fired_ = false;
    std::thread thread_;
};

// Sets a flag when the coroutine frame holding it is destroyed.
struct set_on_destroy {
    bool& flag;
    ~set_on_destroy() { flag = true; }
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The message of the std::invalid_argument that `call` throws.
template <class Call>
std::string message_of(Call call) {
    try {
        (void)call();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "(nothing thrown)";
}

} // namespace

// ---------------------------------------------------------------- getaddrinfo

BACKEND_TEST("getaddrinfo resolves localhost, numeric hosts and service names") {
    cosock::scheduler s{B::value};
    s.run([]() -> task<> {
        auto local = co_await cosock::getaddrinfo("localhost", 8080, cosock::af_unspec, cosock::sock_stream);
        REQUIRE_FALSE(local.empty());
        for (const auto& [family, type, proto, canonname, addr] : local) {
            CHECK((addr == cosock::address{"127.0.0.1", 8080} || addr == cosock::address{"::1", 8080}));
            CHECK(family == addr.family());
            CHECK(type == cosock::sock_stream);
            CHECK(proto == cosock::ipproto_tcp);
        }

        auto v4 = co_await cosock::getaddrinfo("127.0.0.1", 80, cosock::af_unspec, cosock::sock_stream);
        REQUIRE(v4.size() == 1);
        CHECK(v4[0].family == cosock::af_inet);
        CHECK(v4[0].address == cosock::address{"127.0.0.1", 80});
        CHECK(v4[0].canonname.empty());

        auto v6 = co_await cosock::getaddrinfo("::1", "443", cosock::af_inet6, cosock::sock_stream);
        REQUIRE(v6.size() == 1);
        CHECK(v6[0].address == cosock::address{"::1", 443});

        // Type 0: one entry per socket type, as Python shows.
        auto all_types = co_await cosock::getaddrinfo("127.0.0.1", 80);
        CHECK(all_types.size() >= 2);

        auto wildcard =
            co_await cosock::getaddrinfo("", 8080, cosock::af_inet, cosock::sock_stream, 0, cosock::ai_passive);
        REQUIRE(wildcard.size() == 1);
        CHECK(wildcard[0].address == cosock::address{"0.0.0.0", 8080});

        auto canon = co_await cosock::getaddrinfo("localhost", "", cosock::af_inet, cosock::sock_stream, 0,
                                                  cosock::ai_canonname);
        REQUIRE_FALSE(canon.empty());
        CHECK(canon[0].canonname == "localhost");
        CHECK(canon[0].address.port() == 0);

        if (std::filesystem::exists("/etc/services")) {
            auto http = co_await cosock::getaddrinfo("127.0.0.1", "http", cosock::af_inet, cosock::sock_stream);
            REQUIRE(http.size() == 1);
            CHECK(http[0].address == cosock::address{"127.0.0.1", 80});
        } else {
            MESSAGE("SKIPPED the service name check: no /etc/services here");
        }
    }());
}

BACKEND_TEST("getaddrinfo converts numeric hosts at once and looks names up on a helper thread") {
    fake_resolver resolver{fake_resolver::forward};
    cosock::scheduler s{B::value};
    s.run([&]() -> task<> {
        co_await cosock::getaddrinfo("127.0.0.1", 80);
        co_await cosock::getaddrinfo("::1", "8080");
        co_await cosock::getaddrinfo("", 80, cosock::af_inet, 0, 0, cosock::ai_passive);
        CHECK(resolver.calls() == 0);
        co_await cosock::getaddrinfo("localhost", 80);
        CHECK(resolver.calls() == 1);
        // A service name is looked up too (/etc/services may be any NSS source).
        try {
            co_await cosock::getaddrinfo("127.0.0.1", "http", cosock::af_inet, cosock::sock_stream);
        } catch (const cosock::gaierror&) { // no /etc/services: still asked
        }
        CHECK(resolver.calls() == 2);
    }());
}

BACKEND_TEST("a name under .invalid fails with a gaierror naming it") {
    cosock::scheduler s{B::value};
    s.run([]() -> task<> {
        // RFC 6761: .invalid never resolves. With no network the resolver
        // answers at once; the limit turns a resolver that hangs into a
        // failure (a timeout_error) rather than a stuck suite.
        try {
            co_await cosock::with_timeout(cosock::getaddrinfo("no-such-host.invalid", 80), 30s);
            FAIL("no-such-host.invalid resolved");
        } catch (const cosock::gaierror& e) {
            CHECK(&e.code().category() == &cosock::gai_category());
            CHECK(e.code().value() != 0);
            CHECK(contains(e.what(), "no-such-host.invalid"));
            CHECK(contains(e.what(), e.code().message()));
        }
    }());
}

BACKEND_TEST("getaddrinfo reports unknown services, bad families and bad flags as gaierror") {
    cosock::scheduler s{B::value};
    s.run([]() -> task<> {
        auto code_of = [](task<std::vector<cosock::addrinfo_entry>> t) -> task<int> {
            try {
                co_await std::move(t);
            } catch (const cosock::gaierror& e) {
                co_return e.code().value();
            }
            co_return 0;
        };
        CHECK(co_await code_of(cosock::getaddrinfo("127.0.0.1", "no-such-service", cosock::af_inet,
                                                   cosock::sock_stream)) == cosock::eai_service);
        CHECK(co_await code_of(cosock::getaddrinfo("127.0.0.1", 80, 12345)) == cosock::eai_family);
        CHECK(co_await code_of(cosock::getaddrinfo("localhost", 80, cosock::af_unspec, 0, 0, 0x7fff)) ==
              cosock::eai_badflags);
        CHECK(co_await code_of(cosock::getaddrinfo("localhost", 80, cosock::af_inet, cosock::sock_stream, 0,
                                                   cosock::ai_numerichost)) == cosock::eai_noname);
        try {
            co_await cosock::getaddrinfo("127.0.0.1", "no-such-service", cosock::af_inet, cosock::sock_stream);
        } catch (const cosock::gaierror& e) {
            CHECK(contains(e.what(), "no-such-service"));
        }
        // A name far longer than DNS allows is an error, not a crash.
        CHECK(co_await code_of(cosock::getaddrinfo(std::string(100'000, 'a') + ".invalid", 80)) != 0);
    }());
}

TEST_CASE("bad arguments to getaddrinfo are std::invalid_argument naming them") {
    CHECK(contains(message_of([] { return cosock::getaddrinfo("localhost", 70000); }), "70000"));
    CHECK(contains(message_of([] { return cosock::getaddrinfo("localhost", -1); }), "-1"));
    CHECK(contains(message_of([] { return cosock::getaddrinfo("localhost", "65536"); }), "65536"));
    CHECK(contains(message_of([] { return cosock::getaddrinfo(std::string_view("local\0host", 10), 80); }), "NUL"));
    CHECK(contains(message_of([] { return cosock::getaddrinfo("localhost", std::string_view("8\0", 2)); }), "NUL"));
}

BACKEND_TEST("a resolve abandoned with its scheduler is never delivered") {
    fake_resolver resolver{fake_resolver::hold};
    bool destroyed = false, resumed = false;
    {
        cosock::scheduler s{B::value};
        s.spawn([](bool& destroyed, bool& resumed) -> task<> {
            set_on_destroy guard{destroyed};
            co_await cosock::getaddrinfo("held.invalid", 80);
            resumed = true;
        }(destroyed, resumed));
        s.run([]() -> task<> { co_return; }()); // the spawned task now waits for its helper
        REQUIRE(resolver.wait_for_calls(1));
    } // the scheduler and the frame go while the lookup is held
    CHECK(destroyed);
    resolver.release();
    cosock::detail::wait_for_helper_threads(); // the helper finished: under ASan it touched nothing that died
    CHECK_FALSE(resumed);
}

BACKEND_TEST("a resolve whose answer arrives after the loop stopped is dropped with the scheduler") {
    fake_resolver resolver{fake_resolver::hold};
    bool destroyed = false, resumed = false;
    {
        cosock::scheduler s{B::value};
        s.spawn([](bool& destroyed, bool& resumed) -> task<> {
            set_on_destroy guard{destroyed};
            co_await cosock::getaddrinfo("held.invalid", 80);
            resumed = true;
        }(destroyed, resumed));
        s.run([]() -> task<> { co_return; }());
        REQUIRE(resolver.wait_for_calls(1));
        resolver.release();
        cosock::detail::wait_for_helper_threads(); // the answer is posted; no loop runs to take it
    }
    CHECK(destroyed);
    CHECK_FALSE(resumed);
}

BACKEND_TEST("a resolve abandoned with its task no longer keeps run() waiting") {
    fake_resolver resolver{fake_resolver::hold};
    cosock::scheduler s{B::value};
    watchdog guard{s, 10s};
    s.spawn([](cosock::scheduler& s) -> task<> {
        co_await s.yield(); // the root below is waiting for its lookup now
        s.stop();
    }(s));
    CHECK_THROWS_AS(s.run([]() -> task<> { co_await cosock::getaddrinfo("held.invalid", 80); }()), std::system_error);
    REQUIRE(resolver.wait_for_calls(1));
    // Nothing is expected any more: a task waiting for nothing is a logic_error, not a wait.
    CHECK_THROWS_AS(s.run([]() -> task<> { co_await std::suspend_always{}; }()), std::logic_error);
    resolver.release();
    cosock::detail::wait_for_helper_threads();
    s.run(); // the answer (posted for nobody) is dropped
    CHECK_FALSE(guard.fired());
}

BACKEND_TEST("a stop token cancels a resolve at once, without waiting for the lookup") {
    fake_resolver resolver{fake_resolver::hold};
    cosock::scheduler s{B::value};
    watchdog guard{s, 10s};
    std::stop_source stop;
    int err = 0;
    s.spawn([](int& err) -> task<> {
        try {
            co_await cosock::getaddrinfo("held.invalid", 80);
        } catch (const std::system_error& e) {
            err = e.code().value();
        }
    }(err)
                                .with_stop_token(stop.get_token()));
    s.run([&]() -> task<> {
        co_await s.yield();
        stop.request_stop();
    }());
    s.run();
    CHECK(err == ECANCELED);
    CHECK(resolver.wait_for_calls(1)); // it started, and it is still held

    // with_timeout is a stop token too.
    s.run([]() -> task<> {
        auto start = steady::now();
        CHECK_THROWS_AS(co_await cosock::with_timeout(cosock::getaddrinfo("held.invalid", 80), 50ms),
                        cosock::timeout_error);
        CHECK(steady::now() - start >= 50ms);
    }());

    // A stop requested before the resolve starts cancels it without a lookup.
    std::stop_source early;
    early.request_stop();
    err = 0;
    s.spawn([](int& err) -> task<> {
        try {
            co_await cosock::getaddrinfo("held.invalid", 80);
        } catch (const std::system_error& e) {
            err = e.code().value();
        }
    }(err)
                                .with_stop_token(early.get_token()));
    s.run();
    CHECK(err == ECANCELED);
    CHECK(cosock::detail::helper_threads.load() == 2); // the two held above, no third
    CHECK_FALSE(guard.fired());
}
