// What the examples share: command-line handling ("--name value" options, a
// --backend option every example takes, positional arguments, and a usage
// message (exit status 2) naming the bad value), the servers' listening line,
// an accept that survives running out of descriptors, and the counters printed
// on SIGUSR1. Not part of the library.
#pragma once

#include <cosock/address.hpp>
#include <cosock/create.hpp>
#include <cosock/scheduler.hpp>
#if !COSOCK_WINDOWS
#include <cosock/signal.hpp>
#endif
#include <cosock/socket.hpp>
#include <cosock/threads.hpp>
#include <cosock/time.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <memory>
#if !COSOCK_WINDOWS
#include <signal.h>
#endif
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace example {

class options {
  public:
    /// `synopsis` follows the program name in the usage line; `names` are the
    /// options taking a value besides --backend (e.g. {"--port", "--host"}).
    options(int argc, char** argv, std::string_view synopsis, std::initializer_list<std::string_view> names)
        : program_(argc > 0 ? argv[0] : "example"), synopsis_(synopsis) {
        if (auto slash = program_.rfind('/'); slash != std::string::npos) program_.erase(0, slash + 1);
        for (int i = 1; i < argc; ++i) {
            std::string_view arg = argv[i];
            if (arg == "-h" || arg == "--help") {
                std::printf("usage: %s [--backend NAME] %s\n", program_.c_str(), synopsis_.c_str());
                std::exit(0);
            }
            if (!arg.starts_with("--")) {
                positional_.emplace_back(arg);
                continue;
            }
            bool known = arg == "--backend";
            for (auto n : names) known = known || n == arg;
            if (!known) fail("unknown option '" + std::string(arg) + "'");
            if (i + 1 >= argc) fail("option " + std::string(arg) + " needs a value");
            values_[std::string(arg)] = argv[++i];
        }
        if (auto b = values_.find("--backend"); b != values_.end()) {
            try {
                backend_ = cosock::parse_backend(b->second);
            } catch (const std::exception& e) {
                fail(e.what());
            }
        }
    }

    /// Prints the problem and the usage line on stderr and exits with status 2.
    [[noreturn]] void fail(const std::string& problem) const {
        std::fprintf(stderr, "%s: %s\nusage: %s [--backend NAME] %s\n", program_.c_str(), problem.c_str(),
                     program_.c_str(), synopsis_.c_str());
        std::exit(2);
    }

    cosock::backend backend() const { return backend_; }
    const std::vector<std::string>& positional() const { return positional_; }

    std::string text(const std::string& name, std::string fallback) const {
        auto it = values_.find(name);
        return it == values_.end() ? fallback : it->second;
    }

    /// An integer option in [lo, hi]; anything else is a usage error.
    long long number(const std::string& name, long long fallback, long long lo, long long hi) const {
        auto it = values_.find(name);
        if (it == values_.end()) return fallback;
        const std::string& t = it->second;
        long long v = 0;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec != std::errc() || end != t.data() + t.size() || v < lo || v > hi)
            fail(name + " must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) + ", not '" +
                 t + "'");
        return v;
    }

    /// The numeric --host (default 127.0.0.1) and --port of a server, as an
    /// address; a bad one is a usage error. Building it never blocks.
    cosock::address server_address(int default_port) const {
        std::string host = text("--host", "127.0.0.1");
        int port = static_cast<int>(number("--port", default_port, 0, 65535));
        try {
            return cosock::address(host, port);
        } catch (const std::invalid_argument& e) {
            fail(e.what());
        }
    }

    /// A duration in seconds (e.g. 0.5); must be positive.
    double seconds(const std::string& name, double fallback) const {
        auto it = values_.find(name);
        if (it == values_.end()) return fallback;
        const std::string& t = it->second;
        char* end = nullptr;
        double v = std::strtod(t.c_str(), &end);
        if (t.empty() || *end != '\0' || !(v > 0) || v > 1e6)
            fail(name + " must be a positive number of seconds, not '" + t + "'");
        return v;
    }

    /// seconds(name, fallback) as a duration.
    std::chrono::nanoseconds duration(const std::string& name, double fallback) const {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::duration<double>(seconds(name, fallback)));
    }

  private:
    std::string program_, synopsis_;
    std::map<std::string, std::string> values_;
    std::vector<std::string> positional_;
    cosock::backend backend_ = cosock::backend::automatic;
};

/// Prints the line every server starts with, "listening on HOST:PORT (BACKEND)",
/// and flushes it: it often goes down a pipe, where stdout is not line-buffered.
inline void announce(const cosock::socket& srv, cosock::scheduler& s) {
    std::printf("listening on %s (%s)\n", srv.getsockname().to_string().c_str(), std::string(s.backend_name()).c_str());
    std::fflush(stdout);
}

/// For --threads N: a SO_REUSEPORT listener on `where` for each scheduler of
/// `g`, made before its threads run (a scheduler that runs nowhere yet may
/// have sockets made for it from here). With port 0 the others take the port
/// the first was given.
inline std::vector<cosock::socket> reuse_port_listeners(cosock::scheduler_group& g, cosock::address where) {
    std::vector<cosock::socket> listeners;
    for (std::size_t i = 0; i < g.size(); ++i) {
        listeners.push_back(cosock::create_server(g[i], where, {.reuse_port = true}));
        where = listeners.back().getsockname();
    }
    return listeners;
}

/// The next connection. An accept that fails (out of descriptors: EMFILE,
/// ENFILE; out of memory) leaves the connection queued in the kernel, so trying
/// again at once would fail again and spin: the error is printed, and the
/// server pauses 100 ms and goes on, serving the connections it has meanwhile.
inline cosock::task<cosock::accept_result> accept_patiently(cosock::socket& srv, const char* program) {
    for (;;) {
        try {
            co_return co_await srv.accept();
        } catch (const std::system_error& e) { // a stop (cancelled_error) is not one: it goes on
            std::fprintf(stderr, "%s: %s\n", program, e.what());
        }
        co_await cosock::sleep_for(std::chrono::milliseconds(100));
    }
}

/// SIGINT or SIGTERM stops the group's threads cleanly. POSIX only: on
/// Windows, Ctrl-C ends the process as it does any console program.
inline void stop_on_interrupt(cosock::scheduler_group& g) {
#if COSOCK_WINDOWS
    (void)g;
#else
    g.stop_on({SIGINT, SIGTERM});
#endif
}

#if !COSOCK_WINDOWS
namespace detail {
inline cosock::task<> print_stats_on_signal(cosock::scheduler& s, std::unique_ptr<cosock::signal_set> usr1) {
    for (;;) {
        co_await usr1->wait();
        cosock::scheduler_stats st = s.stats();
        std::printf("stats: waits %llu resumes %llu\n", static_cast<unsigned long long>(st.waits),
                    static_cast<unsigned long long>(st.resumes));
        std::fflush(stdout);
    }
}
} // namespace detail

/// `kill -USR1 PID` makes a server print its loop's counters on stdout as one
/// line, "stats: waits N resumes M", flushed. An idle server's waits hardly
/// grow; a spinning loop's grow fast. Spawn it before run():
/// `s.spawn(example::report_stats_on_sigusr1(s));`. SIGUSR1 is caught from the
/// call on (a cosock::signal_set), so one sent as soon as the server has
/// started prints its line instead of ending the process.
inline cosock::task<> report_stats_on_sigusr1(cosock::scheduler& s) {
    return detail::print_stats_on_signal(s, std::make_unique<cosock::signal_set>(s, cosock::signal_list{SIGUSR1}));
}
#else
/// Windows has no SIGUSR1: nothing to report on.
inline cosock::task<> report_stats_on_sigusr1(cosock::scheduler&) { co_return; }
#endif

} // namespace example
