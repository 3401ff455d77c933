#include "backends.hpp"

#include <array>
#include <cstddef>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <string>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using cosock::task;

namespace {

// Runs `body` in a child process in which io_uring_setup fails with `err`, as
// under a container's seccomp profile; returns the child's exit code.
template <class Body>
int without_io_uring(int err, Body body) {
    pid_t pid = ::fork();
    if (pid == 0) {
        sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned(err) & SECCOMP_RET_DATA)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
            ::_exit(100);
        ::_exit(body());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

bool contains(const std::string& text, const char* part) { return text.find(part) != std::string::npos; }

} // namespace

#ifdef COSOCK_HAS_LIBURING
TEST_CASE("when the kernel refuses io_uring, automatic falls back to epoll and explicit io_uring says why") {
    for (int err : {EPERM, ENOSYS}) {
        CAPTURE(err);
        int code = without_io_uring(err, [err] {
            if (cosock::scheduler{}.backend_kind() != cosock::backend::epoll) return 1;
            try {
                cosock::scheduler s{cosock::backend::io_uring};
                return 2;
            } catch (const std::system_error& e) {
                if (e.code().value() != err) return 3;
                if (!contains(e.what(), "io_uring_setup")) return 4;
                if (!contains(e.what(), err == EPERM ? "io_uring_disabled" : "seccomp")) return 5;
            }
            if (!contains(cosock::backend_unavailable(cosock::backend::io_uring), "io_uring")) return 6;
            if (!cosock::backend_unavailable(cosock::backend::epoll).empty()) return 7;
            return 0;
        });
        CHECK_MESSAGE(code == 0, "child exit code ", code, " (see the returns in this test)");
    }
}
#else
TEST_CASE("without liburing, an explicit io_uring backend says cosock was built without it") {
    CHECK_THROWS_WITH_AS(cosock::scheduler{cosock::backend::io_uring}, doctest::Contains("without liburing"),
                         std::system_error);
    CHECK(cosock::scheduler{}.backend_kind() == cosock::backend::epoll);
}
#endif

TEST_CASE("automatic picks the best backend this machine allows") {
    cosock::backend expected = cosock::backend_unavailable(cosock::backend::io_uring).empty()
                                   ? cosock::backend::io_uring
                                   : cosock::backend::epoll;
    const char* env = std::getenv("COSOCK_BACKEND");
    if (env && *env) {
        MESSAGE("COSOCK_BACKEND is set; checking the fallback order in a clean child instead");
    }
    pid_t pid = ::fork();
    if (pid == 0) {
        ::unsetenv("COSOCK_BACKEND");
        ::_exit(cosock::scheduler{}.backend_kind() == expected ? 0 : 1);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("COSOCK_BACKEND names any of the four backends") {
    for (auto b : {cosock::backend::select, cosock::backend::poll, cosock::backend::epoll, cosock::backend::io_uring}) {
        if (!cosock::backend_unavailable(b).empty()) continue;
        std::string name(cosock::to_string(b));
        ::setenv("COSOCK_BACKEND", name.c_str(), 1);
        CHECK(cosock::scheduler{}.backend_name() == name);
    }
    ::unsetenv("COSOCK_BACKEND");
}

namespace {
// After the task waiting in recv() on `fd` was abandoned, data written to the
// peer must still be readable once the loop has run: the abandoned recv did not
// take it (had it stayed in the kernel, it would have written into a dead frame).
template <class Drive>
void check_data_left_for(int fd, int peer, Drive drive) {
    REQUIRE(::write(peer, "after", 5) == 5);
    drive();
    pollfd p{fd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10'000) == 1);
    char got[8] = {};
    CHECK(::read(fd, got, sizeof got) == 5);
    CHECK(std::string(got, 5) == "after");
}

task<> recv_forever(cosock::socket sock) {
    std::array<char, 64> buf;
    co_await sock.recv(buf);
}
} // namespace

BACKEND_TEST("an abandoned recv never takes data after its frame is destroyed") {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    SUBCASE("the frame goes while the scheduler keeps running") {
        cosock::scheduler s{B::value};
        int err = error_of([&] {
            s.run([](cosock::scheduler& s, int fd) -> task<> {
                s.spawn([](cosock::scheduler& s) -> task<> {
                    co_await s.yield(); // the loop hands the waiting recv to the kernel
                    s.stop();
                }(s));
                co_await recv_forever(cosock::socket::from_fd(s, fd));
            }(s, ::dup(fds[0])));
        });
        REQUIRE(err == int(std::errc::operation_canceled)); // the root frame is destroyed here
        // Drive the loop through a real wait: a request left in the kernel
        // would run now and take the data.
        check_data_left_for(fds[0], fds[1], [&] {
            auto [a, b] = cosock::socketpair(s);
            s.spawn([](cosock::scheduler& s, cosock::socket& a) -> task<> {
                co_await s.yield();
                co_await a.sendall(std::string_view("ok"));
            }(s, a));
            std::array<char, 4> buf;
            CHECK(s.run([&]() -> task<std::size_t> { co_return co_await b.recv(buf); }()) == 2);
        });
    }
    SUBCASE("the frame goes with its scheduler") {
        {
            cosock::scheduler s{B::value};
            // The task owns a duplicate, so the socket stays open after the frame goes.
            s.spawn(recv_forever(cosock::socket::from_fd(s, ::dup(fds[0]))));
            s.run([](cosock::scheduler& s) -> task<> { co_await s.yield(); }(s));
        }
        check_data_left_for(fds[0], fds[1], [] {});
    }
    ::close(fds[0]);
    ::close(fds[1]);
}

BACKEND_TEST("10000 ping-pong round trips on one connection keep waking the right side") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    constexpr int rounds = 10'000;
    s.spawn([](cosock::socket& b) -> task<> {
        std::array<char, 4> buf;
        while (std::size_t n = co_await b.recv(buf)) co_await b.sendall(std::span(buf.data(), n));
    }(b));
    int ok = s.run([&]() -> task<int> {
        int ok = 0;
        std::array<char, 4> buf;
        for (int i = 0; i < rounds; ++i) {
            char c = char('a' + i % 26);
            co_await a.sendall(std::string_view(&c, 1));
            if (co_await a.recv(buf) == 1 && buf[0] == c) ++ok;
        }
        a.shutdown(cosock::shut_wr);
        co_return ok;
    }());
    CHECK(ok == rounds);
}

BACKEND_TEST("a detached descriptor is forgotten by the backend and can be adopted again") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    std::array<char, 8> buf;
    // Make the backend know the descriptor, then hand it over and back.
    s.spawn([](cosock::socket& a) -> task<> { co_await a.sendall(std::string_view("1")); }(a));
    CHECK(s.run([&]() -> task<std::size_t> { co_return co_await b.recv(buf); }()) == 1);
    int fd = b.detach();
    auto again = cosock::socket::from_fd(s, fd);
    s.spawn([](cosock::socket& a) -> task<> { co_await a.sendall(std::string_view("22")); }(a));
    CHECK(s.run([&]() -> task<std::size_t> { co_return co_await again.recv(buf); }()) == 2);
}
