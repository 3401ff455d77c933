// Every behaviour runs on every backend: BACKEND_TEST is a doctest template
// test case instantiated once per backend, named after it.
#pragma once

#include <cosock/cosock.hpp>
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#include <string>
#include <vector>

struct on_select {
    static constexpr cosock::backend value = cosock::backend::select;
};
struct on_poll {
    static constexpr cosock::backend value = cosock::backend::poll;
};
struct on_epoll {
    static constexpr cosock::backend value = cosock::backend::epoll;
};
struct on_io_uring {
    static constexpr cosock::backend value = cosock::backend::io_uring;
};
TYPE_TO_STRING_AS("select", on_select);
TYPE_TO_STRING_AS("poll", on_poll);
TYPE_TO_STRING_AS("epoll", on_epoll);
TYPE_TO_STRING_AS("io_uring", on_io_uring);

// A backend this machine refuses is excluded by the runner (tests/main.cpp),
// which says so and counts its cases as skipped.
#define BACKEND_TEST(name) TEST_CASE_TEMPLATE(name, B, on_select, on_poll, on_epoll, on_io_uring)

/// True when the suite runs under valgrind, which keeps descriptors of its own
/// and emulates the descriptor limit, so tests that exhaust descriptors on
/// purpose cannot mean anything there (they say so and stop).
inline bool under_valgrind() {
#if __has_include(<valgrind/valgrind.h>)
    return RUNNING_ON_VALGRIND != 0;
#else
    return false;
#endif
}

#define SKIP_UNDER_VALGRIND(why)                                                                                       \
    if (under_valgrind()) {                                                                                            \
        MESSAGE("SKIPPED under valgrind: " why);                                                                       \
        return;                                                                                                        \
    }

/// A listening TCP socket on a loopback port chosen by the kernel.
inline cosock::socket listener(cosock::scheduler& s, const char* host = "127.0.0.1", int family = cosock::af_inet) {
    cosock::socket srv{s, family, cosock::sock_stream};
    srv.bind({host, 0});
    srv.listen();
    return srv;
}

/// A fresh directory for Unix socket paths, removed at scope exit.
struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
#if COSOCK_WINDOWS
        std::random_device random;
        for (int tries = 0; path.empty(); ++tries) {
            auto p = std::filesystem::temp_directory_path() / ("cosock-test-" + std::to_string(random()));
            if (std::filesystem::create_directory(p)) path = p;
            else if (tries == 100) throw std::runtime_error("temp_dir: no fresh directory");
        }
#else
        std::string tmpl = (std::filesystem::temp_directory_path() / "cosock-test-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
#endif
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string operator/(const char* name) const { return (path / name).string(); }
};

/// The errno a std::system_error carries, or -1 when `f` throws nothing.
template <class F>
int error_of(F&& f) {
    try {
        f();
    } catch (const std::system_error& e) {
        return e.code().value();
    }
    return -1;
}

/// True when this machine has IPv6 loopback (::1).
inline bool have_ipv6() {
    cosock::scheduler s{cosock::backend::poll};
    try {
        cosock::socket probe{s, cosock::af_inet6, cosock::sock_stream};
        probe.bind({"::1", 0});
        return true;
    } catch (const std::system_error&) {
        return false;
    }
}

// A listener whose backlog is full: a connection to it gets no answer, so it
// waits until its timeout. `queued` keeps the one connection that filled it.
inline cosock::task<cosock::address> unanswered_address(cosock::scheduler& s, cosock::socket& srv,
                                                        std::vector<cosock::socket>& queued) {
    srv.bind({"127.0.0.1", 0});
    srv.listen(0);
    for (int i = 0; i < 16; ++i) {
        cosock::socket c{s};
        c.settimeout(std::chrono::milliseconds(100));
        try {
            co_await c.connect(srv.getsockname());
            queued.push_back(std::move(c));
        } catch (const cosock::timeout_error&) {
            co_return srv.getsockname();
        }
    }
    FAIL("a listener with a full backlog still answered 16 connections");
    co_return srv.getsockname();
}

// Windows (cross-built with mingw-w64 and run under wine by scripts/windows.sh).
// A case that cannot run there is compiled out with a reason the script lists:
//
//   #if !COSOCK_WINDOWS // windows: needs fork()
//   BACKEND_TEST("...") { ... }
//   #endif
//
// and the system calls a test makes on a raw descriptor go through these.
namespace raw {
inline int close(int fd) { return cosock::detail::sys::close(fd); }
inline long send(int fd, const void* buf, std::size_t len, int flags = 0) {
    return cosock::detail::sys::send(fd, buf, len, flags);
}
inline long recv(int fd, void* buf, std::size_t len, int flags = 0) {
    return cosock::detail::sys::recv(fd, buf, len, flags);
}
inline int shutdown(int fd, int how) { return cosock::detail::sys::shutdown(fd, how); }
/// Sets (or, with nullptr, removes) an environment variable.
inline void set_env(const char* name, const char* value) {
#if COSOCK_WINDOWS
    ::_putenv_s(name, value ? value : "");
#else
    if (value)
        ::setenv(name, value, 1);
    else
        ::unsetenv(name);
#endif
}
} // namespace raw
