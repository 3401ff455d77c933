// sendmsg and recvmsg (scatter/gather, control messages, the peer's
// address), recv(n), and on POSIX descriptor passing (send_fds, recv_fds)
// and peer credentials, on every backend; CPython on the other end of a
// socket pair checks that the wire agrees with its socket module.
#include "backends.hpp"

#include <array>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#if !COSOCK_WINDOWS
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child_process.hpp"
#endif

using cosock::task;
using namespace std::chrono_literals;

namespace {

// The error an awaitable ends with, or 0.
template <class Aw>
task<int> errno_of(Aw aw) {
    try {
        co_await std::move(aw);
    } catch (const std::system_error& e) {
        co_return e.code().value();
    }
    co_return 0;
}

#if !COSOCK_WINDOWS
int open_descriptors() {
    int n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

// Whether two descriptors are the same open file (device and inode).
bool same_file(int a, int b) {
    struct stat sa {}, sb {};
    return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// A pipe whose read end holds `text`: what a test passes and reads back.
struct filled_pipe {
    int rd = -1, wr = -1;
    explicit filled_pipe(const std::string& text) {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        rd = p[0];
        wr = p[1];
        REQUIRE(::write(wr, text.data(), text.size()) == ssize_t(text.size()));
    }
    ~filled_pipe() {
        ::close(rd);
        ::close(wr);
    }
};

std::string read_some(int fd) {
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof buf);
    return n > 0 ? std::string(buf, std::size_t(n)) : std::string();
}
#endif

} // namespace

BACKEND_TEST("sendmsg gathers buffers and recvmsg, recvmsg_into and recv(n) read them, the reader waiting first") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    // Ten buffers: more than the iovec list keeps inline.
    std::vector<std::string> parts;
    std::string all;
    for (int i = 0; i < 10; ++i) {
        parts.push_back(std::string(std::size_t(i + 1), char('a' + i)));
        all += parts.back();
    }
    std::string got;
    int flags = -1;
    s.spawn([](cosock::socket& b, std::string& got, int& flags) -> task<> {
        cosock::recvmsg_result r = co_await b.recvmsg(1000);
        got = r.data;
        flags = r.msg_flags;
        CHECK(r.ancdata.empty());
    }(b, got, flags));
    s.run([](cosock::socket& a, std::vector<std::string>& parts, std::size_t size) -> task<> {
        co_await cosock::sleep_for(1ms);
        CHECK(co_await a.sendmsg(parts) == size);
    }(a, parts, all.size()));
    s.run();
    CHECK(got == all);
    CHECK(flags == 0);

    // Scatter: the bytes fill the buffers in order.
    s.run([](cosock::socket& a, cosock::socket& b) -> task<> {
        co_await a.sendall(std::string_view("0123456789"));
        std::string x(3, '.'), y(4, '.'), z(10, '.');
        std::array<std::span<char>, 3> into{std::span(x), std::span(y), std::span(z)};
        cosock::recvmsg_into_result r = co_await b.recvmsg_into(into);
        CHECK(r.nbytes == 10);
        CHECK(x == "012");
        CHECK(y == "3456");
        CHECK(z.substr(0, 3) == "789");

        // recv(n): at most n bytes, as a string; 0 bytes at the end of the stream.
        co_await a.sendall(std::string_view("hello world"));
        CHECK(co_await b.recv(5) == "hello");
        CHECK(co_await b.recv(std::size_t(100)) == " world");
        a.shutdown(cosock::shut_wr);
        std::string end = co_await b.recv(10);
        CHECK(end.empty());
    }(a, b));
}

BACKEND_TEST("recv(n) and recvmsg refuse negative and oversized counts, naming them") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    CHECK_THROWS_WITH_AS((void)b.recv(-1), "recv: negative n -1", std::invalid_argument);
    CHECK_THROWS_WITH_AS((void)b.recvmsg(-5), "recvmsg: negative bufsize -5", std::invalid_argument);
    CHECK_THROWS_WITH_AS((void)b.recvmsg(10, -1), "recvmsg: negative ancbufsize -1", std::invalid_argument);
    CHECK_THROWS_AS((void)b.recv(std::size_t(1) << 40), std::invalid_argument);
    std::array<std::span<char>, 0> none;
    CHECK_THROWS_AS((void)b.recvmsg_into(none, -1), std::invalid_argument);
    b.close();
    CHECK_THROWS_AS((void)b.recv(10), std::system_error);
#if COSOCK_WINDOWS
    // Ancillary data is refused when the operation is made.
    cosock::ancillary item{cosock::sol_socket, 1, "x"};
    std::vector<cosock::ancillary> items{item};
    std::vector<std::string> bufs{"x"};
    CHECK_THROWS_AS((void)a.sendmsg(bufs, items), std::system_error);
    CHECK_THROWS_AS((void)a.recvmsg(10, 64), std::system_error);
#endif
}

BACKEND_TEST("UDP sendmsg to an address; recvmsg gives the sender and says MSG_TRUNC for a short buffer") {
    cosock::scheduler s{B::value};
    cosock::socket rx{s, cosock::af_inet, cosock::sock_dgram}, tx{s, cosock::af_inet, cosock::sock_dgram};
    rx.bind({"127.0.0.1", 0});
    tx.bind({"127.0.0.1", 0});
    s.run([](cosock::socket& rx, cosock::socket& tx) -> task<> {
        std::vector<std::string> parts{"data", "gram"};
        std::span<const cosock::ancillary> none;
        std::optional<cosock::address> to = rx.getsockname();
        CHECK(co_await tx.sendmsg(parts, none, 0, to) == 8);
        cosock::recvmsg_result r = co_await rx.recvmsg(4);
        CHECK(r.data == "data");
        CHECK((r.msg_flags & cosock::msg_trunc) != 0);
        CHECK(r.address == tx.getsockname());

        CHECK(co_await tx.sendmsg(parts, none, 0, to) == 8);
        std::string x(2, '.'), y(10, '.');
        std::array<std::span<char>, 2> into{std::span(x), std::span(y)};
        cosock::recvmsg_into_result ri = co_await rx.recvmsg_into(into);
        CHECK(ri.nbytes == 8);
        CHECK(x + y.substr(0, 6) == "datagram");
        CHECK(ri.msg_flags == 0);
        CHECK(ri.address == tx.getsockname());
    }(rx, tx));
}

#if !COSOCK_WINDOWS // windows: SCM_RIGHTS and AF_UNIX are POSIX's (cosock/unix.hpp)

BACKEND_TEST("control messages: SCM_RIGHTS through sendmsg and recvmsg; too little room says MSG_CTRUNC") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    filled_pipe one("one"), two("two");
    int before = open_descriptors();
    s.run([](cosock::socket& a, cosock::socket& b, int fd1, int fd2) -> task<> {
        int fds[2] = {fd1, fd2};
        std::vector<cosock::ancillary> items{
            {cosock::sol_socket, SCM_RIGHTS, std::string(reinterpret_cast<const char*>(fds), sizeof fds)}};
        std::vector<std::string> data{"m"};
        CHECK(co_await a.sendmsg(data, items) == 1);
        cosock::recvmsg_result r = co_await b.recvmsg(10, cosock::cmsg_space(sizeof fds));
        CHECK(r.data == "m");
        CHECK(r.msg_flags == 0);
        REQUIRE(r.ancdata.size() == 1);
        CHECK(r.ancdata[0].level == cosock::sol_socket);
        CHECK(r.ancdata[0].type == SCM_RIGHTS);
        REQUIRE(r.ancdata[0].data.size() == sizeof fds);
        int got[2];
        std::memcpy(got, r.ancdata[0].data.data(), sizeof got);
        CHECK(same_file(got[0], fd1));
        CHECK(same_file(got[1], fd2));
        CHECK((::fcntl(got[0], F_GETFD) & FD_CLOEXEC) != 0);
        ::close(got[0]);
        ::close(got[1]);

        // Room for one descriptor of the two: the kernel closes the other.
        CHECK(co_await a.sendmsg(data, items) == 1);
        r = co_await b.recvmsg(10, cosock::cmsg_len(sizeof(int)));
        CHECK((r.msg_flags & MSG_CTRUNC) != 0);
        REQUIRE(r.ancdata.size() == 1);
        REQUIRE(r.ancdata[0].data.size() == sizeof(int));
        std::memcpy(got, r.ancdata[0].data.data(), sizeof(int));
        CHECK(same_file(got[0], fd1));
        ::close(got[0]);

        // No room at all: the descriptors are all closed, MSG_CTRUNC says so.
        CHECK(co_await a.sendmsg(data, items) == 1);
        r = co_await b.recvmsg(10);
        CHECK((r.msg_flags & MSG_CTRUNC) != 0);
        CHECK(r.ancdata.empty());
    }(a, b, one.rd, two.rd));
    CHECK(open_descriptors() == before);
}

BACKEND_TEST("send_fds and recv_fds pass 0, 1 and 253 descriptors, close-on-exec and owned by the result") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    filled_pipe p("passed");
    int before = open_descriptors();
    for (std::size_t count : {0, 1, 253}) {
        CAPTURE(count);
        s.run([](cosock::socket& a, cosock::socket& b, int fd, std::size_t count) -> task<> {
            std::vector<int> fds(count, fd);
            std::vector<std::string> data{"fds"};
            // The receiver waits first.
            cosock::recv_fds_result r;
            std::vector<task<>> both;
            both.push_back([](cosock::socket& b, cosock::recv_fds_result& r) -> task<> {
                r = co_await cosock::recv_fds(b, 100, cosock::max_fds_per_message);
            }(b, r));
            both.push_back([](cosock::socket& a, std::vector<std::string>& data, std::vector<int>& fds) -> task<> {
                co_await cosock::sleep_for(1ms);
                CHECK(co_await cosock::send_fds(a, data, fds) == 3);
            }(a, data, fds));
            co_await cosock::when_all(std::move(both));
            CHECK(r.data == "fds");
            CHECK(r.msg_flags == 0);
            REQUIRE(r.fds.size() == count);
            for (const cosock::unique_fd& f : r.fds) {
                CHECK(same_file(f.get(), fd));
                CHECK((::fcntl(f.get(), F_GETFD) & FD_CLOEXEC) != 0);
            }
        }(a, b, p.rd, count));
        CHECK(open_descriptors() == before); // the result closed them
    }
    // One taken out of its owner is the caller's.
    s.run([](cosock::socket& a, cosock::socket& b, int fd) -> task<> {
        std::vector<int> fds{fd};
        std::vector<std::string> data{"x"};
        co_await cosock::send_fds(a, data, fds);
        cosock::recv_fds_result r = co_await cosock::recv_fds(b, 10, 1);
        REQUIRE(r.fds.size() == 1);
        int mine = r.fds[0].release();
        CHECK(read_some(mine) == "passed");
        ::close(mine);
    }(a, b, p.rd));
    CHECK(open_descriptors() == before);
}

BACKEND_TEST("recv_fds: more descriptors than maxfds are closed by the kernel; a peer closing mid-message leaks none") {
    cosock::scheduler s{B::value};
    int before = open_descriptors();
    {
        auto [a, b] = cosock::socketpair(s);
        filled_pipe p("x");
        int with_pipe = open_descriptors();
        s.run([](cosock::socket& a, cosock::socket& b, int fd) -> task<> {
            std::vector<int> fds(5, fd);
            std::vector<std::string> data{"abc"};
            co_await cosock::send_fds(a, data, fds);
            a.close(); // the peer is gone before anything is read
            cosock::recv_fds_result r = co_await cosock::recv_fds(b, 2, 2);
            CHECK(r.data == "ab");
            CHECK(r.fds.size() == 2);
            CHECK((r.msg_flags & MSG_CTRUNC) != 0);
            r = co_await cosock::recv_fds(b, 10, 4);
            CHECK(r.data == "c");
            CHECK(r.fds.empty());
            r = co_await cosock::recv_fds(b, 10, 4);
            CHECK(r.data.empty()); // the end of the stream
            CHECK(r.fds.empty());
        }(a, b, p.rd));
        CHECK(open_descriptors() == with_pipe - 1); // a is closed
    }
    // A peer that closes with descriptors never read: closing the receiver frees them.
    {
        auto [a, b] = cosock::socketpair(s);
        filled_pipe p("x");
        s.run([](cosock::socket& a, int fd) -> task<> {
            std::vector<int> fds(3, fd);
            std::vector<std::string> data{"unread"};
            co_await cosock::send_fds(a, data, fds);
        }(a, p.rd));
    }
    CHECK(open_descriptors() == before);
}

BACKEND_TEST("descriptors received for a frame destroyed before it resumed are closed, not leaked") {
    int before = open_descriptors();
    filled_pipe p("x");
    for (int round = 0; round < 5; ++round) {
        auto s = std::make_unique<cosock::scheduler>(B::value);
        auto [a, b] = cosock::socketpair(*s);
        s->spawn([](cosock::socket& b) -> task<> { co_await cosock::recv_fds(b, 10, 4); }(b));
        s->run([](cosock::scheduler& s) -> task<> { co_await s.yield(); }(*s)); // recv_fds waits
        // Sent behind the loop's back: io_uring may complete the receive now.
        int fds[2] = {p.rd, p.wr};
        char byte = 'x';
        iovec iov{&byte, 1};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = control;
        m.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof fds);
        std::memcpy(CMSG_DATA(c), fds, sizeof fds);
        REQUIRE(::sendmsg(a.fileno(), &m, 0) == 1);
        s.reset(); // destroys the waiting frame
    }
    CHECK(open_descriptors() == before + 2); // the pipe's two ends
}

BACKEND_TEST("send_fds refuses what it cannot send, naming it; recv_fds refuses negative counts") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    std::vector<std::string> data{"x"}, nothing;
    std::vector<int> too_many(254, 0), closed{987654}, one{0};
    CHECK_THROWS_WITH_AS((void)cosock::send_fds(a, data, too_many),
                         "send_fds: 254 descriptors, more than one message carries (253)", std::invalid_argument);
    CHECK_THROWS_WITH_AS((void)cosock::send_fds(a, data, closed), "send_fds: descriptor 987654 is not open",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS((void)cosock::send_fds(a, nothing, one),
                         "send_fds: descriptors need at least one byte of data on a stream socket",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS((void)cosock::recv_fds(b, 10, -1), "recv_fds: negative maxfds -1", std::invalid_argument);
    CHECK_THROWS_WITH_AS((void)cosock::recv_fds(b, -1, 1), "recv_fds: negative bufsize -1", std::invalid_argument);
    // A datagram may carry descriptors alone.
    auto [d1, d2] = cosock::socketpair(s, cosock::af_unix, cosock::sock_dgram);
    s.run([](cosock::socket& d1, cosock::socket& d2, std::vector<std::string>& nothing,
             std::vector<int>& one) -> task<> {
        CHECK(co_await cosock::send_fds(d1, nothing, one) == 0);
        cosock::recv_fds_result r = co_await cosock::recv_fds(d2, 10, 1);
        CHECK(r.data.empty());
        CHECK(r.fds.size() == 1);
    }(d1, d2, nothing, one));
}

BACKEND_TEST("peer_credentials names this process at the other end of a pair; a TCP socket has none") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    cosock::credentials c = cosock::peer_credentials(a);
    CHECK(c.pid == ::getpid());
    CHECK(c.uid == ::getuid());
    CHECK(c.gid == ::getgid());
    cosock::socket tcp{s};
    CHECK_THROWS_AS(cosock::peer_credentials(tcp), std::system_error);
    a.close();
    CHECK_THROWS_AS(cosock::peer_credentials(a), std::system_error);
}

BACKEND_TEST("CPython at the other end: send_fds, recv_fds, sendmsg and recvmsg agree with its socket module") {
    if (!need_program("python3", "python3")) return;
    cosock::scheduler s{B::value};
    auto [mine, theirs] = cosock::socketpair(s);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::dup2(theirs.fileno(), 3);
        for (int fd = 4; fd < 1024; ++fd) ::close(fd);
        ::execlp("python3", "python3", COSOCK_TESTS_DIR "/msg_peer.py", "3", nullptr);
        ::_exit(127);
    }
    theirs.close();
    filled_pipe one("one"), two("two");
    s.run([](cosock::socket& py, int fd1, int fd2, int refill) -> task<> {
        // 1. Two descriptors to Python's recv_fds, which reads them and answers
        //    with a gathered sendmsg.
        std::vector<int> fds{fd1, fd2};
        std::vector<std::string> data{"fds"};
        co_await cosock::send_fds(py, data, fds);
        cosock::recvmsg_result r = co_await cosock::with_timeout(py.recvmsg(100), 20s);
        CHECK(r.data == "got fds:one|two");
        co_await py.sendall(std::string_view("n")); // the next step
        // 2. Python's send_fds: one pipe it wrote to.
        cosock::recv_fds_result f = co_await cosock::with_timeout(cosock::recv_fds(py, 100, 4), 20s);
        CHECK(f.data == "py");
        REQUIRE(f.fds.size() == 1);
        CHECK(read_some(f.fds[0].get()) == "from python");
        co_await py.sendall(std::string_view("n"));
        // 3. Python's sendmsg with its own SCM_RIGHTS item, three descriptors,
        //    two of which do not fit here.
        f = co_await cosock::with_timeout(cosock::recv_fds(py, 100, 1), 20s);
        CHECK(f.data == "three");
        CHECK(f.fds.size() == 1);
        CHECK((f.msg_flags & MSG_CTRUNC) != 0);
        // 4. Our sendmsg with an ancillary item; Python's recvmsg says what it saw.
        REQUIRE(::write(refill, "one", 3) == 3);
        int fd = fd1;
        std::vector<cosock::ancillary> items{
            {cosock::sol_socket, SCM_RIGHTS, std::string(reinterpret_cast<const char*>(&fd), sizeof fd)}};
        std::vector<std::string> parts{"sc", "at", "ter"};
        co_await py.sendmsg(parts, items);
        r = co_await cosock::with_timeout(py.recvmsg(200), 20s);
        CHECK(r.data == "recvmsg scatter level=1 type=1 len=4 flags=0 read=one");
    }(mine, one.rd, two.rd, one.wr));
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}

// A Unix stream's receive stops where descriptors were sent with the bytes,
// with the rest still queued: a short receive there does not mean the queue
// is empty, and the next read must not wait for data that has come.
BACKEND_TEST("a read that stops short where descriptors came still gets the bytes queued after them") {
    cosock::scheduler s{B::value};
    filled_pipe p("x");
    for (bool makefile : {false, true}) {
        CAPTURE(makefile);
        auto [a, b] = cosock::socketpair(s);
        std::string got;
        s.run([](cosock::scheduler& s, cosock::socket& a, cosock::socket& b, int fd, bool makefile,
                 std::string& got) -> task<> {
            auto reader = [](cosock::socket& b, bool makefile, std::string& got) -> task<> {
                if (makefile) {
                    auto f = b.makefile("rb");
                    got = co_await cosock::with_timeout(f.readline(), 10s); // waits first, then crosses the boundary
                } else {
                    std::array<char, 100> buf;
                    while (got.find('\n') == std::string::npos) {
                        std::size_t n = co_await cosock::with_timeout(b.recv(buf), 10s);
                        if (n == 0) break;
                        got.append(buf.data(), n);
                    }
                }
            };
            auto writer = [](cosock::scheduler& s, cosock::socket& a, int fd) -> task<> {
                co_await s.yield(); // the reader waits by now
                std::vector<std::string> first{"abc"};
                std::vector<int> fds{fd};
                co_await cosock::send_fds(a, first, fds);
                co_await a.sendall(std::string_view("def\n"));
            };
            co_await cosock::when_all(reader(b, makefile, got), writer(s, a, fd));
        }(s, a, b, p.rd, makefile, got));
        CHECK(got == "abcdef\n");
    }
}

#endif
