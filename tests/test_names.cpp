// getaddrinfo, create_connection and create_server. Only "localhost" and
// numeric hosts resolve here (there is no network); lookups that must stay
// open go through fake_resolver, which holds them until the test says so.
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

#if !COSOCK_WINDOWS
#include <netdb.h>
#endif

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

// A loopback port with a socket bound to it but not listening: a connection
// to it is refused, and nobody else can listen there while `holder` lives.
// (Unused on Windows while the case that uses it is compiled out there.)
cosock::address refusing_address(cosock::socket& holder, const char* host = "127.0.0.1") {
    holder.bind({host, 0});
    return holder.getsockname();
}

// The candidates getaddrinfo would give for these addresses, in this order
// (built outside the coroutines: see GCC before 13 in task.hpp).
template <class... Address>
std::vector<cosock::addrinfo_entry> stream_entries(const Address&... a) {
    return {cosock::addrinfo_entry{a.family(), cosock::sock_stream, cosock::ipproto_tcp, "", a}...};
}

// A task waiting for a held lookup: `destroyed` is set when its frame goes,
// `resumed` if the lookup ever resumes it.
task<> wait_for_held_lookup(bool& destroyed, bool& resumed) {
    set_on_destroy guard{destroyed};
    co_await cosock::getaddrinfo("held.invalid", 80);
    resumed = true;
}

// A task waiting for a held lookup that records the errno it fails with.
task<> record_lookup_error(int& err) {
    try {
        co_await cosock::getaddrinfo("held.invalid", 80);
    } catch (const cosock::cancelled_error&) {
        err = ECANCELED; // as a number, beside the errors below
    } catch (const std::system_error& e) {
        err = e.code().value();
    }
}

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
#if COSOCK_WINDOWS // Windows' getaddrinfo may leave the protocol at the hint's 0
            CHECK((proto == cosock::ipproto_tcp || proto == 0));
#else
            CHECK(proto == cosock::ipproto_tcp);
#endif
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
#if COSOCK_WINDOWS // Windows' getaddrinfo gives one entry of type 0 instead, as Python shows there
        REQUIRE(all_types.size() >= 1);
        CHECK(all_types[0].address == cosock::address{"127.0.0.1", 80});
#else
        CHECK(all_types.size() >= 2);
#endif

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

BACKEND_TEST("getnameinfo names an address and its port, numerically at once or looked up off the loop thread") {
    cosock::scheduler s{B::value};
    s.run([&]() -> task<> {
        const int numeric = cosock::ni_numerichost | cosock::ni_numericserv;
        auto [host, port] = co_await cosock::getnameinfo({"127.0.0.1", 8080}, numeric);
        CHECK(host == "127.0.0.1");
        CHECK(port == "8080");
        if (have_ipv6()) {
            auto [host6, port6] = co_await cosock::getnameinfo({"::1", 443}, numeric);
            CHECK(host6 == "::1");
            CHECK(port6 == "443");
        }
        // Looked up: the loopback has a name on every machine (/etc/hosts on
        // Linux, the system's own on Windows); port 80 is "http" where there
        // is a services database, else its number, as in Python.
        auto [name, service] = co_await cosock::getnameinfo({"127.0.0.1", 80});
        CHECK_FALSE(name.empty());
        CHECK((service == "http" || service == "80"));
        auto [dgram_name, dgram_service] = co_await cosock::getnameinfo({"127.0.0.1", 53}, cosock::ni_dgram);
        CHECK((dgram_service == "domain" || dgram_service == "53"));
#if !COSOCK_WINDOWS // windows: Winsock's getnameinfo ignores flags it does not know
        // Bad flags: the lookup's own error, a gaierror naming the address.
        try {
            co_await cosock::getnameinfo({"127.0.0.1", 80}, 0x4000000);
            FAIL("getnameinfo took unknown flags");
        } catch (const cosock::gaierror& e) {
            CHECK(e.code().value() == cosock::eai_badflags);
            CHECK(contains(e.what(), "getnameinfo(127.0.0.1:80)"));
        }
#endif
    }());
#if !COSOCK_WINDOWS // windows: AF_UNIX addresses
    CHECK_THROWS_AS((void)cosock::getnameinfo(cosock::address::unix_path("/tmp/x.sock")), std::invalid_argument);
#endif
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
#if COSOCK_WINDOWS // wine's getaddrinfo takes any flags: 0x7fff fails by its AI_NUMERICHOST instead
        CHECK(co_await code_of(cosock::getaddrinfo("localhost", 80, cosock::af_unspec, 0, 0, 0x7fff)) != 0);
#else
        CHECK(co_await code_of(cosock::getaddrinfo("localhost", 80, cosock::af_unspec, 0, 0, 0x7fff)) ==
              cosock::eai_badflags);
#endif
        CHECK(co_await code_of(cosock::getaddrinfo("localhost", 80, cosock::af_inet, cosock::sock_stream, 0,
                                                   cosock::ai_numerichost)) == cosock::eai_noname);
        try {
            co_await cosock::getaddrinfo("127.0.0.1", "no-such-service", cosock::af_inet, cosock::sock_stream);
        } catch (const cosock::gaierror& e) {
            CHECK(contains(e.what(), "no-such-service"));
            CHECK(contains(e.what(), "Servname not supported")); // glibc's words, on Windows too
        }
        try {
            co_await cosock::getaddrinfo("127.0.0.1", 80, 12345);
        } catch (const cosock::gaierror& e) {
            CHECK(contains(e.what(), "ai_family not supported"));
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
        s.spawn(wait_for_held_lookup(destroyed, resumed));
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
        s.spawn(wait_for_held_lookup(destroyed, resumed));
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
    s.spawn(record_lookup_error(err).with_stop_token(stop.get_token()));
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
    s.spawn(record_lookup_error(err).with_stop_token(early.get_token()));
    s.run();
    CHECK(err == ECANCELED);
    CHECK(cosock::detail::helper_threads.load() == 2); // the two held above, no third
    CHECK_FALSE(guard.fired());
}

// ----------------------------------------------------------- create_connection

BACKEND_TEST("create_connection connects by name, by address and by service text") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    const int port = srv.getsockname().port();
    s.run([&]() -> task<> {
        // "localhost" may list ::1 first, where nothing listens: then that
        // attempt is refused and the next address connects.
        auto by_name = co_await cosock::create_connection({"localhost", port});
        CHECK(by_name.getpeername() == srv.getsockname());
        auto by_address = co_await cosock::create_connection(srv.getsockname());
        CHECK(by_address.getpeername() == srv.getsockname());
        auto by_text = co_await cosock::create_connection({"127.0.0.1", std::to_string(port)});
        CHECK(by_text.getpeername() == srv.getsockname());
        CHECK_FALSE(by_text.gettimeout().has_value());
    }());
}

BACKEND_TEST("create_connection falls back across addresses and raises the last error") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    cosock::socket holder{s}, holder2{s};
    const cosock::address refused = refusing_address(holder), refused2 = refusing_address(holder2);
    s.run([&]() -> task<> {
        auto c = co_await cosock::detail::connect_first(stream_entries(refused, srv.getsockname()), std::nullopt,
                                                        std::nullopt, "test");
        CHECK(c.getpeername() == srv.getsockname());

        try {
            co_await cosock::detail::connect_first(stream_entries(refused, refused2), std::nullopt, std::nullopt,
                                                   "test");
            FAIL("connected to a port nobody listens on");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == ECONNREFUSED);
            CHECK(contains(e.what(), refused2.to_string()));
            CHECK(contains(e.what(), "the last of 2 addresses"));
        }

        // One address: its error as it is, as Python raises it.
        try {
            co_await cosock::create_connection(refused);
            FAIL("connected to a port nobody listens on");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == ECONNREFUSED);
            CHECK_FALSE(contains(e.what(), "addresses tried"));
        }
    }());

    if (have_ipv6()) {
        cosock::socket holder6{s, cosock::af_inet6};
        const cosock::address refused6 = refusing_address(holder6, "::1");
        s.run([&]() -> task<> {
            auto c = co_await cosock::detail::connect_first(stream_entries(refused6, srv.getsockname()), std::nullopt,
                                                            std::nullopt, "test");
            CHECK(c.getpeername() == srv.getsockname());
        }());
    } else {
        MESSAGE("SKIPPED the IPv6-to-IPv4 fallback: no ::1 here");
    }
}

BACKEND_TEST("create_connection with all_errors reports every address's error, in the order tried") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    cosock::socket holder{s}, holder2{s};
    const cosock::address refused = refusing_address(holder), refused2 = refusing_address(holder2);
    s.run([&]() -> task<> {
        try {
            co_await cosock::detail::connect_first(stream_entries(refused, refused2), std::nullopt, std::nullopt,
                                                   "test", true);
            FAIL("connected to a port nobody listens on");
        } catch (const cosock::connection_errors& e) {
            REQUIRE(e.attempts().size() == 2);
            CHECK(e.attempts()[0].address == refused);
            CHECK(e.attempts()[1].address == refused2);
            for (const auto& a : e.attempts()) CHECK(error_of([&] { std::rethrow_exception(a.error); }) == ECONNREFUSED);
            CHECK(e.code().value() == ECONNREFUSED);
            CHECK(contains(e.what(), "2 addresses failed"));
            CHECK(contains(e.what(), refused.to_string()));
            CHECK(contains(e.what(), refused2.to_string()));
            CHECK_FALSE(contains(e.what(), "refused: Connection refused")); // the last error's text once
        }
        // One address: still the group, as Python raises it.
        try {
            co_await cosock::create_connection(refused, std::nullopt, std::nullopt, true);
            FAIL("connected to a port nobody listens on");
        } catch (const cosock::connection_errors& e) {
            CHECK(e.attempts().size() == 1);
            CHECK(contains(e.what(), "1 address failed"));
        }
        // A later address that connects: no error at all.
        auto c = co_await cosock::detail::connect_first(stream_entries(refused, srv.getsockname()), std::nullopt,
                                                        std::nullopt, "test", true);
        CHECK(c.getpeername() == srv.getsockname());
    }());
}

BACKEND_TEST("create_connection's timeout bounds each attempt and stays on the socket") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    cosock::socket full{s};
    std::vector<cosock::socket> queued;
    s.run([&]() -> task<> {
        const cosock::address silent = co_await unanswered_address(s, full, queued);
        auto start = steady::now();
        auto c = co_await cosock::detail::connect_first(stream_entries(silent, srv.getsockname()), 100ms, std::nullopt,
                                                        "test");
        CHECK(steady::now() - start >= 100ms);
        CHECK(c.getpeername() == srv.getsockname());
        CHECK(c.gettimeout() == std::optional<std::chrono::nanoseconds>(100ms));

        start = steady::now();
        try {
            co_await cosock::detail::connect_first(stream_entries(silent, silent), 50ms, std::nullopt, "test");
            FAIL("connected to a listener with a full backlog");
        } catch (const cosock::timeout_error& e) {
            CHECK(contains(e.what(), "the last of 2 addresses"));
        }
        CHECK(steady::now() - start >= 100ms);

        // Cancellation (here by with_timeout) ends the search: the listener
        // that would answer is not tried.
        CHECK_THROWS_AS(
            co_await cosock::with_timeout(cosock::detail::connect_first(stream_entries(silent, srv.getsockname()),
                                                                        std::nullopt, std::nullopt, "test"),
                                          50ms),
            cosock::timeout_error);
    }());
}

TEST_CASE("bad arguments to create_connection are std::invalid_argument naming them") {
    CHECK(contains(message_of([] { return cosock::host_port("localhost", 65536); }), "65536"));
    CHECK(contains(message_of([] { return cosock::host_port(cosock::address::unix_path("/tmp/x")); }), "/tmp/x"));
    cosock::scheduler s{cosock::backend::poll};
    CHECK(contains(message_of([&] {
                       return s.run(cosock::create_connection({"127.0.0.1", 80}, -1s));
                   }),
                   "negative timeout"));
}

BACKEND_TEST("create_connection binds to source_address") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    cosock::socket probe{s};
    bool second_loopback = true;
    try {
        probe.bind({"127.0.0.2", 0});
    } catch (const std::system_error&) {
        second_loopback = false;
        MESSAGE("127.0.0.2 cannot be bound here: using 127.0.0.1 as the source");
    }
    const char* source_host = second_loopback ? "127.0.0.2" : "127.0.0.1";
    s.run([&]() -> task<> {
        auto c = co_await cosock::create_connection(srv.getsockname(), std::nullopt, cosock::address{source_host, 0});
        auto [conn, peer] = co_await srv.accept();
        CHECK(peer == c.getsockname());
        CHECK(peer.host() == source_host);

        // A source that cannot be bound fails the attempt, naming it.
        cosock::socket taken{s};
        taken.bind({"127.0.0.1", 0});
        try {
            co_await cosock::create_connection(srv.getsockname(), std::nullopt, taken.getsockname());
            FAIL("bound to a port already bound");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EADDRINUSE);
            CHECK(contains(e.what(), taken.getsockname().to_string()));
        }
    }());
}

BACKEND_TEST("create_connection to a name under .invalid raises gaierror") {
    cosock::scheduler s{B::value};
    CHECK_THROWS_AS(s.run(cosock::with_timeout(cosock::create_connection({"no-such-host.invalid", 80}), 30s)),
                    cosock::gaierror);
}

// --------------------------------------------------------------- create_server

BACKEND_TEST("create_server listens with SO_REUSEADDR and accepts") {
    cosock::scheduler s{B::value};
    auto srv = cosock::create_server(s, {"127.0.0.1", 0});
#if COSOCK_WINDOWS // cosock leaves SO_REUSEADDR off there, where it would let another socket take the port
    CHECK(srv.getsockopt(cosock::sol_socket, cosock::so_reuseaddr) == 0);
#else
    CHECK(srv.getsockopt(cosock::sol_socket, cosock::so_reuseaddr) != 0);
    CHECK(srv.getsockopt(cosock::sol_socket, cosock::so_reuseport) == 0);
#endif
    s.run([&]() -> task<> {
        auto c = co_await cosock::create_connection(srv.getsockname());
        auto [conn, peer] = co_await srv.accept();
        CHECK(peer == c.getsockname());
    }());

#if !COSOCK_WINDOWS // no AF_UNIX under wine
    temp_dir dir;
    auto unix_srv = cosock::create_server(s, cosock::address::unix_path(dir / "srv.sock"), {.backlog = 4});
    s.run([&]() -> task<> {
        cosock::socket c{s, cosock::af_unix};
        co_await c.connect(unix_srv.getsockname());
        co_await unix_srv.accept();
    }());
#endif
}

#if !COSOCK_WINDOWS // windows: SO_REUSEPORT is not there
BACKEND_TEST("create_server with reuse_port lets two servers bind the same port") {
    cosock::scheduler s{B::value};
    auto first = cosock::create_server(s, {"127.0.0.1", 0}, {.reuse_port = true});
    const cosock::address where = first.getsockname();
    auto second = cosock::create_server(s, where, {.reuse_port = true});
    CHECK(second.getsockname() == where);
    CHECK(second.getsockopt(cosock::sol_socket, cosock::so_reuseport) != 0);
    try {
        cosock::create_server(s, where);
        FAIL("a third server without reuse_port bound the port");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == EADDRINUSE);
        CHECK(contains(e.what(), where.to_string()));
    }
    s.run([&]() -> task<> {
        auto c = co_await cosock::create_connection(where); // one of the two takes it
        CHECK(c.getpeername() == where);
    }());
}
#endif

BACKEND_TEST("create_server with dualstack_ipv6 accepts IPv4 clients") {
    if (!have_ipv6() || !cosock::has_dualstack_ipv6()) {
        MESSAGE("SKIPPED: no IPv6 (::1) or no dual-stack sockets here");
        return;
    }
    cosock::scheduler s{B::value};
    auto dual = cosock::create_server(s, {"::", 0}, {.family = cosock::af_inet6, .dualstack_ipv6 = true});
    CHECK(dual.getsockopt(cosock::ipproto_ipv6, cosock::ipv6_v6only) == 0);
    const int port = dual.getsockname().port();
    s.run([&]() -> task<> {
        auto c = co_await cosock::create_connection({"127.0.0.1", port});
        auto [conn, peer] = co_await dual.accept();
        CHECK(peer.family() == cosock::af_inet6);
        CHECK(peer.host() == "::ffff:127.0.0.1");
        auto c6 = co_await cosock::create_connection({"::1", port});
        co_await dual.accept();
    }());
    // Without dualstack_ipv6 an IPv6 server is IPv6 only, as Python makes it.
    auto v6only = cosock::create_server(s, {"::", 0});
    CHECK(v6only.getsockopt(cosock::ipproto_ipv6, cosock::ipv6_v6only) == 1);
}

TEST_CASE("create_server refuses invalid combinations with std::invalid_argument") {
    cosock::scheduler s{cosock::backend::poll};
    const cosock::address v4{"127.0.0.1", 0};
    auto refusal = [&](const cosock::address& a, const cosock::server_options& o) {
        return message_of([&] { return cosock::create_server(s, a, o); });
    };
    CHECK(contains(refusal(v4, {.dualstack_ipv6 = true}), "dualstack_ipv6 requires an AF_INET6 address"));
    CHECK(contains(refusal(v4, {.family = cosock::af_inet, .dualstack_ipv6 = true}), "dualstack_ipv6"));
    CHECK(contains(refusal(v4, {.family = cosock::af_inet6}), "the address is AF_INET but family is AF_INET6"));
    CHECK(contains(refusal(v4, {.backlog = -1}), "negative backlog -1"));
    CHECK(contains(refusal(cosock::address{}, {}), "empty address"));
}
