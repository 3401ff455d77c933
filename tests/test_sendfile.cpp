// socket::sendfile on every backend: zero-copy from a regular file to a
// stream (the kernel's own accounting says which path ran), the copy for a
// pipe and a datagram socket, offsets and counts, the file position left as
// Python leaves it, and a peer that stops reading (the timeout bounds the
// whole transfer, and every byte sent is accounted for).
#include "backends.hpp"

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using cosock::task;
using namespace std::chrono_literals;

namespace {

// The byte at `i` of every test file: a pattern that shows a byte lost,
// repeated or misplaced.
char pattern(std::uint64_t i) { return char((i * 2654435761u) >> 13); }

// A temporary file of `size` pattern bytes, open for reading.
struct pattern_file {
    temp_dir dir;
    int fd = -1;
    explicit pattern_file(std::uint64_t size) {
        std::string path = dir / "data";
        int w = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        REQUIRE(w >= 0);
        std::vector<char> block(1 << 20);
        for (std::uint64_t done = 0; done < size;) {
            std::size_t n = std::size_t(std::min<std::uint64_t>(block.size(), size - done));
            for (std::size_t i = 0; i < n; ++i) block[i] = pattern(done + i);
            REQUIRE(::write(w, block.data(), n) == ssize_t(n));
            done += n;
        }
        ::close(w);
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
    }
    ~pattern_file() { ::close(fd); }
    std::int64_t position() const { return std::int64_t(::lseek(fd, 0, SEEK_CUR)); }
};

// Bytes this process wrote through the kernel's write paths, sendfile(2)
// included and send(2) not: /proc/self/io's wchar.
std::uint64_t written_by_kernel() {
    std::ifstream io("/proc/self/io");
    std::string key;
    std::uint64_t value = 0;
    while (io >> key >> value)
        if (key == "wchar:") return value;
    return 0;
}

// Reads until the end of the stream, checking each byte against the pattern
// from `first`; the number of bytes read.
task<std::uint64_t> read_pattern(cosock::socket& s, std::uint64_t first, bool& intact) {
    std::vector<char> buf(1 << 16);
    std::uint64_t got = 0;
    intact = true;
    for (;;) {
        std::size_t n = co_await s.recv(buf);
        if (n == 0) break;
        for (std::size_t i = 0; i < n; ++i)
            if (buf[i] != pattern(first + got + i)) intact = false;
        got += n;
    }
    co_return got;
}

// sendfile from `sender` while `receiver` reads; the bytes sent and read.
std::pair<std::uint64_t, std::uint64_t> transfer(cosock::scheduler& s, cosock::socket& sender,
                                                 cosock::socket& receiver, int fd, std::int64_t offset,
                                                 std::optional<std::int64_t> count, bool& intact) {
    std::uint64_t sent = 0, got = 0;
    s.run([](cosock::socket& tx, cosock::socket& rx, int fd, std::int64_t offset, std::optional<std::int64_t> count,
             std::uint64_t& sent, std::uint64_t& got, bool& intact) -> task<> {
        std::vector<task<>> both;
        both.push_back([](cosock::socket& rx, std::uint64_t first, std::uint64_t& got, bool& intact) -> task<> {
            got = co_await read_pattern(rx, first, intact);
        }(rx, std::uint64_t(offset), got, intact));
        both.push_back([](cosock::socket& tx, int fd, std::int64_t offset, std::optional<std::int64_t> count,
                          std::uint64_t& sent) -> task<> {
            sent = co_await tx.sendfile(fd, offset, count);
            tx.shutdown(cosock::shut_wr);
        }(tx, fd, offset, count, sent));
        co_await cosock::when_all(std::move(both));
    }(sender, receiver, fd, offset, count, sent, got, intact));
    return {sent, got};
}

} // namespace

BACKEND_TEST("sendfile sends 64 MiB zero-copy over TCP, every byte in place, and leaves the position after them") {
    cosock::scheduler s{B::value};
    const std::uint64_t size = 64u << 20;
    pattern_file file(size);
    cosock::socket srv = listener(s);
    cosock::socket tx{s};
    cosock::socket rx;
    s.run([](cosock::socket& srv, cosock::socket& tx, cosock::socket& rx) -> task<> {
        co_await tx.connect(srv.getsockname());
        cosock::accept_result r = co_await srv.accept();
        rx = std::move(r.conn);
    }(srv, tx, rx));
    bool intact = false;
    std::uint64_t before = written_by_kernel();
    auto [sent, got] = transfer(s, tx, rx, file.fd, 0, std::nullopt, intact);
    CHECK(sent == size);
    CHECK(got == size);
    CHECK(intact);
    CHECK(file.position() == std::int64_t(size));
    // sendfile(2) counts as the kernel's writing; a read-and-send copy would not.
    CHECK(written_by_kernel() - before >= size);
}

BACKEND_TEST("sendfile of an empty file sends nothing; an offset and a count send that slice exactly") {
    cosock::scheduler s{B::value};
    {
        pattern_file empty(0);
        auto [a, b] = cosock::socketpair(s);
        bool intact = false;
        auto [sent, got] = transfer(s, a, b, empty.fd, 0, std::nullopt, intact);
        CHECK(sent == 0);
        CHECK(got == 0);
        CHECK(empty.position() == 0);
    }
    pattern_file file(300000);
    for (auto [offset, count] : std::vector<std::pair<std::int64_t, std::optional<std::int64_t>>>{
             {1, std::nullopt}, {65537, 100000}, {299999, 10}, {300000, std::nullopt}, {400000, 5}}) {
        CAPTURE(offset);
        auto [a, b] = cosock::socketpair(s);
        bool intact = false;
        std::int64_t before = file.position();
        auto [sent, got] = transfer(s, a, b, file.fd, offset, count, intact);
        std::uint64_t expect =
            offset >= 300000 ? 0 : std::min<std::uint64_t>(count ? std::uint64_t(*count) : UINT64_MAX, 300000 - std::uint64_t(offset));
        CHECK(sent == expect);
        CHECK(got == expect);
        CHECK(intact);
        CHECK(file.position() == (expect ? offset + std::int64_t(expect) : before)); // untouched when nothing went
    }
}

BACKEND_TEST("sendfile to a peer that stops reading times out, and the file position accounts for every byte sent") {
    cosock::scheduler s{B::value};
    pattern_file file(32u << 20);
    auto [a, b] = cosock::socketpair(s);
    a.settimeout(200ms);
    bool timed_out = false;
    s.run([](cosock::socket& a, int fd, bool& timed_out) -> task<> {
        try {
            co_await a.sendfile(fd, 1000);
        } catch (const cosock::timeout_error&) {
            timed_out = true;
        }
    }(a, file.fd, timed_out));
    CHECK(timed_out);
    std::int64_t position = file.position();
    CHECK(position > 1000);
    CHECK(position < 1000 + (32 << 20));
    // What the reader finds is exactly what the position says was sent.
    a.shutdown(cosock::shut_wr);
    bool intact = false;
    std::uint64_t got = s.run(read_pattern(b, 1000, intact));
    CHECK(got == std::uint64_t(position - 1000));
    CHECK(intact);
}

BACKEND_TEST("sendfile sends a pipe from where it stands, and a file to a datagram socket one datagram per 8 KiB") {
    cosock::scheduler s{B::value};
    {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        std::string text(50000, 'p');
        for (std::size_t i = 0; i < text.size(); ++i) text[i] = pattern(i);
        // It fits in the pipe: written whole, before the transfer is counted.
        REQUIRE(::write(p[1], text.data(), text.size()) == ssize_t(text.size()));
        ::close(p[1]);
        auto [a, b] = cosock::socketpair(s);
        bool intact = false;
        auto [sent, got] = transfer(s, a, b, p[0], 0, std::nullopt, intact);
        CHECK(sent == text.size());
        CHECK(got == text.size());
        CHECK(intact);
        ::close(p[0]);
    }
    {
        // A datagram socket: one datagram per 8 KiB read.
        pattern_file file(20000);
        cosock::socket rx{s, cosock::af_inet, cosock::sock_dgram}, tx{s, cosock::af_inet, cosock::sock_dgram};
        rx.bind({"127.0.0.1", 0});
        s.run([](cosock::socket& tx, cosock::socket& rx, int fd) -> task<> {
            co_await tx.connect(rx.getsockname());
            CHECK(co_await tx.sendfile(fd) == 20000);
            std::vector<std::size_t> sizes;
            std::uint64_t at = 0;
            bool intact = true;
            while (at < 20000) {
                std::string d = co_await rx.recv(65536);
                for (std::size_t i = 0; i < d.size(); ++i)
                    if (d[i] != pattern(at + i)) intact = false;
                at += d.size();
                sizes.push_back(d.size());
            }
            CHECK(intact);
            CHECK(sizes == std::vector<std::size_t>{8192, 8192, 3616});
        }(tx, rx, file.fd));
    }
}

BACKEND_TEST("sendfile refuses what it cannot do, naming it, before touching the socket") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    pattern_file file(10);
    CHECK_THROWS_WITH_AS((void)a.sendfile(file.fd, -1),
                         ("sendfile of descriptor " + std::to_string(file.fd) + ": negative offset -1").c_str(),
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS((void)a.sendfile(file.fd, 0, 0),
                         ("sendfile of descriptor " + std::to_string(file.fd) + ": count must be positive, not 0").c_str(),
                         std::invalid_argument);
    CHECK(error_of([&] { (void)a.sendfile(987654); }) == EBADF);
    temp_dir dir;
    int d = ::open(dir.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK_THROWS_AS((void)a.sendfile(d), std::invalid_argument);
    ::close(d);
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    CHECK_THROWS_AS((void)a.sendfile(p[0]), std::invalid_argument); // non-blocking: cannot be waited for
    auto [u1, u2] = cosock::socketpair(s);
    CHECK_THROWS_AS((void)a.sendfile(u1.fileno()), std::invalid_argument); // a socket is not a file
    REQUIRE(::fcntl(p[0], F_SETFL, 0) == 0);
    CHECK_THROWS_AS((void)a.sendfile(p[0], 5), std::invalid_argument); // a pipe has no offsets
    ::close(p[0]);
    ::close(p[1]);
    a.close();
    CHECK(error_of([&] { (void)a.sendfile(file.fd); }) == EBADF);
}

BACKEND_TEST("sendfile ended early loses nothing: a pipe keeps what the socket did not take") {
    cosock::scheduler s{B::value};
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    REQUIRE(::fcntl(p[1], F_SETPIPE_SZ, 1 << 20) > 0);
    std::string text(1 << 20, '\0');
    for (std::size_t i = 0; i < text.size(); ++i) text[i] = pattern(i);
    REQUIRE(::write(p[1], text.data(), text.size()) == ssize_t(text.size()));
    ::close(p[1]);
    auto [a, b] = cosock::socketpair(s);
    bool timed_out = false;
    s.run([](cosock::socket& a, int fd, bool& timed_out) -> task<> {
        try {
            co_await cosock::with_timeout(a.sendfile(fd), 100ms); // nobody reads b yet
        } catch (const cosock::timeout_error&) {
            timed_out = true;
        }
    }(a, p[0], timed_out));
    CHECK(timed_out);
    a.shutdown(cosock::shut_wr);
    bool intact = false;
    std::uint64_t got = s.run(read_pattern(b, 0, intact));
    CHECK(intact);
    CHECK(got > 0);
    // The rest is still in the pipe, from the first byte not sent.
    std::string rest;
    char buf[65536];
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) rest.append(buf, std::size_t(n));
    ::close(p[0]);
    CHECK(got + rest.size() == text.size());
    CHECK(rest == text.substr(std::size_t(got)));
}

BACKEND_TEST("sendfile to a datagram socket whose reader is slow waits for room instead of failing") {
    cosock::scheduler s{B::value};
    pattern_file file(1 << 20);
    auto [a, b] = cosock::socketpair(s, cosock::af_unix, cosock::sock_dgram);
    std::uint64_t sent = 0, got = 0;
    bool intact = true;
    s.run([](cosock::socket& a, cosock::socket& b, int fd, std::uint64_t& sent, std::uint64_t& got,
             bool& intact) -> task<> {
        std::vector<task<>> both;
        both.push_back([](cosock::socket& a, int fd, std::uint64_t& sent) -> task<> {
            sent = co_await a.sendfile(fd);
        }(a, fd, sent));
        both.push_back([](cosock::socket& b, std::uint64_t& got, bool& intact) -> task<> {
            co_await cosock::sleep_for(50ms); // the sender fills the queue first
            while (got < (1u << 20)) {
                std::string d = co_await b.recv(65536);
                for (std::size_t i = 0; i < d.size(); ++i)
                    if (d[i] != pattern(got + i)) intact = false;
                got += d.size();
            }
        }(b, got, intact));
        co_await cosock::when_all(std::move(both));
    }(a, b, file.fd, sent, got, intact));
    CHECK(sent == 1u << 20);
    CHECK(got == 1u << 20);
    CHECK(intact);
}

BACKEND_TEST("sendfile that sends nothing leaves the file's position alone, as Python does") {
    cosock::scheduler s{B::value};
    pattern_file file(10);
    auto [a, b] = cosock::socketpair(s);
    REQUIRE(::lseek(file.fd, 3, SEEK_SET) == 3);
    std::size_t sent = s.run([](cosock::socket& a, int fd) -> task<std::size_t> {
        co_return co_await a.sendfile(fd, 500);
    }(a, file.fd));
    CHECK(sent == 0);
    CHECK(file.position() == 3);
}

BACKEND_TEST("sendfile and its splice from a pipe to a peer that is gone fail with EPIPE, never SIGPIPE") {
    // In a child with SIGPIPE's default action, which kills: it exits 0 only
    // when both transfers ended with an exception.
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        std::signal(SIGPIPE, SIG_DFL);
        int failed = 0;
        {
            cosock::scheduler s{B::value};
            pattern_file file(4 << 20);
            int p[2];
            if (::pipe2(p, O_CLOEXEC) != 0) ::_exit(3);
            if (::write(p[1], "some bytes", 10) != 10) ::_exit(3);
            for (int source : {file.fd, p[0]}) {
                auto [a, b] = cosock::socketpair(s);
                b.close();
                try {
                    s.run([](cosock::socket& a, int fd) -> task<> { co_await a.sendfile(fd); }(a, source));
                } catch (const std::system_error& e) {
                    if (e.code().value() == EPIPE) ++failed;
                }
            }
        }
        ::_exit(failed == 2 ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK_FALSE(WIFSIGNALED(status));
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
