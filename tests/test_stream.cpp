#include "backends.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#if !COSOCK_WINDOWS
#include <sys/socket.h>
#include <unistd.h>
#endif

using cosock::task;

namespace {

task<> echo_server(cosock::socket srv, int connections) {
    for (int i = 0; i < connections; ++i) {
        auto [conn, peer] = co_await srv.accept();
        srv.get_scheduler()->spawn([](cosock::socket c) -> task<> {
            std::array<char, 4096> buf;
            while (std::size_t n = co_await c.recv(buf)) co_await c.sendall(std::span(buf.data(), n));
        }(std::move(conn)));
    }
}

task<std::string> round_trip(cosock::scheduler& s, cosock::address to, std::string msg, int family) {
    cosock::socket c{s, family, cosock::sock_stream};
    co_await c.connect(to);
    CHECK(c.getpeername() == to);
    co_await c.sendall(msg);
    c.shutdown(cosock::shut_wr);
    std::string got;
    std::array<char, 1024> buf;
    while (std::size_t n = co_await c.recv(buf)) got.append(buf.data(), n);
    co_return got;
}

void check_echo(cosock::scheduler& s, cosock::socket srv, int family) {
    cosock::address where = srv.getsockname();
    s.spawn(echo_server(std::move(srv), 1));
    std::string msg = "hello over " + where.to_string();
    CHECK(s.run(round_trip(s, where, msg, family)) == msg);
}

std::uint64_t fnv1a(const char* p, std::size_t n, std::uint64_t h) {
    for (std::size_t i = 0; i < n; ++i) h = (h ^ std::uint8_t(p[i])) * 0x100000001b3ULL;
    return h;
}

} // namespace

BACKEND_TEST("a TCP/IPv4 echo returns the bytes sent") {
    cosock::scheduler s{B::value};
    check_echo(s, listener(s), cosock::af_inet);
}

BACKEND_TEST("a TCP/IPv6 echo returns the bytes sent") {
    if (!have_ipv6()) {
        MESSAGE("SKIPPED: ::1 is not available on this machine");
        return;
    }
    cosock::scheduler s{B::value};
    check_echo(s, listener(s, "::1", cosock::af_inet6), cosock::af_inet6);
}

#if !COSOCK_WINDOWS // windows: AF_UNIX sockets, which wine refuses
BACKEND_TEST("a Unix stream echo works over a filesystem path and an abstract name") {
    cosock::scheduler s{B::value};
    temp_dir dir;
    for (auto where : {cosock::address::unix_path(dir / "echo.sock"),
                       cosock::address::abstract("cosock-test-" + std::to_string(::getpid()))}) {
        cosock::socket srv{s, cosock::af_unix, cosock::sock_stream};
        srv.bind(where);
        srv.listen();
        CHECK(srv.getsockname() == where);
        check_echo(s, std::move(srv), cosock::af_unix);
    }
}
#endif

BACKEND_TEST("accept reports the peer's address and the new socket's family and type") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    s.run([&]() -> task<> {
        cosock::socket c{s};
        co_await c.connect(srv.getsockname());
        auto [conn, peer] = co_await srv.accept();
        CHECK(peer == c.getsockname());
        CHECK(conn.getpeername() == c.getsockname());
        CHECK(conn.family() == cosock::af_inet);
        CHECK(conn.type() == cosock::sock_stream);
        CHECK(conn.proto() == IPPROTO_TCP);
    }());
}

BACKEND_TEST("64 MiB through sendall arrive intact (checksum)") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    constexpr std::size_t total = 64u << 20;
    std::vector<char> block(1 << 20);
    for (std::size_t i = 0; i < block.size(); ++i) block[i] = char((i * 2654435761u) >> 13);
    std::uint64_t sent_sum = 0xcbf29ce484222325ULL, got_sum = sent_sum;
    for (std::size_t off = 0; off < total; off += block.size()) sent_sum = fnv1a(block.data(), block.size(), sent_sum);
    std::size_t received = 0;
    s.spawn([](cosock::socket& srv, std::size_t& received, std::uint64_t& sum) -> task<> {
        auto [conn, peer] = co_await srv.accept();
        std::vector<char> buf(256 * 1024);
        while (std::size_t n = co_await conn.recv(buf)) {
            sum = fnv1a(buf.data(), n, sum);
            received += n;
        }
    }(srv, received, got_sum));
    s.run([&]() -> task<> {
        cosock::socket c{s};
        co_await c.connect(srv.getsockname());
        for (std::size_t off = 0; off < total; off += block.size()) CHECK(co_await c.sendall(block) == block.size());
        c.close();
    }());
    s.run();
    CHECK(received == total);
    CHECK(got_sum == sent_sum);
}

BACKEND_TEST("500 concurrent connections each get their own echo") {
    cosock::scheduler s{B::value};
    constexpr int n = 500;
    auto srv = listener(s);
    cosock::address where = srv.getsockname();
    s.spawn(echo_server(std::move(srv), n));
    int ok = 0;
    for (int i = 0; i < n; ++i)
        s.spawn([](cosock::scheduler& s, cosock::address to, int i, int& ok) -> task<> {
            std::string msg = "client " + std::to_string(i);
            if (co_await round_trip(s, to, msg, cosock::af_inet) == msg) ++ok;
        }(s, where, i, ok));
    s.run();
    CHECK(ok == n);
}

BACKEND_TEST("recv yields 0 when the peer closes, and shutdown closes one direction") {
    cosock::scheduler s{B::value};
    s.run([&]() -> task<> {
        auto [a, b] = cosock::socketpair(s);
        std::array<char, 16> buf;
        a.shutdown(cosock::shut_wr);
        CHECK(co_await b.recv(buf) == 0);
        co_await b.sendall(std::string_view("still open"));
        CHECK(co_await a.recv(buf) == 10);
        b.close();
        CHECK(co_await a.recv(buf) == 0);
    }());
}

// A recv that comes back short lets the next one wait for data without trying
// first; the end of the stream must still be seen when it arrived together with
// the last bytes (one readiness report for both, no later edge).
BACKEND_TEST("after a short recv, the end of the stream that came with it is seen at once") {
    cosock::scheduler s{B::value};
    auto check_pair = [&](cosock::socket a, cosock::socket b) {
        s.run([](cosock::socket a, cosock::socket b) -> task<> {
            auto& sched = *cosock::scheduler::current();
            sched.spawn([](cosock::socket a) -> task<> {
                co_await cosock::scheduler::current()->yield(); // the reader is waiting by now
                co_await a.sendall(std::string_view("last words"));
                a.close();
            }(std::move(a)));
            std::array<char, 4096> buf;
            CHECK(co_await b.recv(buf) == 10);
            CHECK(co_await b.recv(buf) == 0);
            CHECK(co_await b.recv(buf) == 0);
        }(std::move(a), std::move(b)));
    };
    for (int round = 0; round < 3; ++round) {
        auto [a, b] = cosock::socketpair(s);
        check_pair(std::move(a), std::move(b));
        cosock::socket srv = listener(s);
        cosock::socket c{s};
        auto accepted = s.run([](cosock::socket& srv, cosock::socket& c) -> task<cosock::socket> {
            co_await c.connect(srv.getsockname());
            auto r = co_await srv.accept();
            co_return std::move(r.conn);
        }(srv, c));
        check_pair(std::move(c), std::move(accepted));
    }
}

// A descriptor first registered by a read that waited must still wake a write
// that waits later, once the peer makes room. A lost wake-up ends in the
// sockets' timeout (a failure), never in a hang.
BACKEND_TEST("a write that waits, on a socket that so far only waited to read, completes") {
    cosock::scheduler s{B::value};
    std::string big(8 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = char(i * 7 + i / 4096);
    auto [a, b] = cosock::socketpair(s);
    a.settimeout(30.0);
    b.settimeout(30.0);
    std::string got = s.run([](cosock::socket a, cosock::socket b, const std::string& big) -> task<std::string> {
        cosock::scheduler::current()->spawn([](cosock::socket a, const std::string& big) -> task<> {
            std::array<char, 16> buf;
            CHECK(co_await a.recv(buf) == 2); // waits to read: registered for reading only
            co_await a.sendall(big);          // fills the send buffer: waits to write
            a.close();
        }(std::move(a), big));
        co_await cosock::scheduler::current()->yield(); // the writer waits to read by now
        co_await b.sendall(std::string_view("go"));
        std::string got;
        std::vector<char> buf(64 * 1024);
        while (std::size_t n = co_await b.recv(buf)) got.append(buf.data(), n);
        co_return got;
    }(std::move(a), std::move(b), big));
    CHECK(got.size() == big.size());
    CHECK(got == big);
}

#if !COSOCK_WINDOWS // windows: wine closes a socket with SO_LINGER 0 gracefully: the peer reads an end, no reset
BACKEND_TEST("a reset by the peer is an ECONNRESET error") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    s.run([&]() -> task<> {
        cosock::socket c{s};
        co_await c.connect(srv.getsockname());
        auto [conn, peer] = co_await srv.accept();
        ::linger hard{1, 0};
        conn.setsockopt(cosock::sol_socket, cosock::so_linger, std::as_bytes(std::span(&hard, 1)));
        conn.close(); // sends RST
        std::array<char, 16> buf;
        int err = 0;
        try {
            co_await c.recv(buf);
        } catch (const std::system_error& e) {
            err = e.code().value();
            CHECK(std::string(e.what()).find("recv") != std::string::npos);
        }
        CHECK(err == ECONNRESET);
    }());
}
#endif

BACKEND_TEST("connecting to a port nobody listens on is ECONNREFUSED naming the address") {
    cosock::scheduler s{B::value};
    cosock::socket bound{s}; // bound, never listening: the port is ours and refuses
    bound.bind({"127.0.0.1", 0});
    cosock::address where = bound.getsockname();
    s.run([&]() -> task<> {
        cosock::socket c{s};
        try {
            co_await c.connect(where);
            FAIL("connect succeeded");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == ECONNREFUSED);
            CHECK(std::string(e.what()).find(where.to_string()) != std::string::npos);
        }
    }());
}

BACKEND_TEST("sending to a closed peer is an EPIPE error, never SIGPIPE") {
    cosock::scheduler s{B::value};
    s.run([&]() -> task<> {
        auto [a, b] = cosock::socketpair(s);
        b.close();
        int err = 0;
        try {
            co_await a.sendall(std::string(1 << 16, 'x'));
        } catch (const std::system_error& e) {
            err = e.code().value();
        }
#if COSOCK_WINDOWS // the pair is loopback TCP: the first send is buffered, the peer's reset fails a later one
        for (int i = 0; i < 100 && err == 0; ++i) {
            co_await cosock::sleep_for(std::chrono::milliseconds(10));
            try {
                co_await a.sendall(std::string(1 << 16, 'x'));
            } catch (const std::system_error& e) {
                err = e.code().value();
            }
        }
        CHECK(err == ECONNRESET);
#else
        CHECK(err == EPIPE);
#endif
    }());
}

BACKEND_TEST("closing a socket resumes its waiting recv with EBADF") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    int err = 0;
    s.spawn([](cosock::socket& sock, int& err) -> task<> {
        std::array<char, 16> buf;
        try {
            co_await sock.recv(buf);
        } catch (const std::system_error& e) {
            err = e.code().value();
        }
    }(b, err));
    s.run([&]() -> task<> {
        b.close();
        co_return;
    }());
    s.run();
    CHECK(err == EBADF);
    CHECK(b.fileno() == -1);
}

BACKEND_TEST("sends from tasks that are ready together leave in the order they were made") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    std::string expected;
    for (int i = 0; i < 20; ++i) {
        std::string msg = "message " + std::to_string(i) + ";";
        expected += msg;
        // Spawned tasks and then run()'s task all start in one batch, each
        // while none of the earlier sends has completed yet.
        s.spawn([](cosock::socket& sock, std::string msg, int i) -> task<> {
            if (i % 2)
                co_await sock.sendall(msg);
            else
                CHECK(co_await sock.send(msg) == msg.size());
        }(a, std::move(msg), i));
    }
    s.run([&]() -> task<> {
        // The batch's last task: nothing else is ready when it sends.
        co_await a.sendall(std::string_view("last;"));
        std::string got;
        std::array<char, 256> buf;
        while (got.size() < expected.size() + 5) got.append(buf.data(), co_await b.recv(buf));
        CHECK(got == expected + "last;");
    }());
}

BACKEND_TEST("recv of urgent data after a short recv fails at once with EINVAL when there is none") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    s.run([&]() -> task<> {
        cosock::socket c{s};
        co_await c.connect(srv.getsockname());
        auto [conn, peer] = co_await srv.accept();
#if COSOCK_WINDOWS // an urgent recv with none says WSAEWOULDBLOCK there: it waits, until this timeout
        conn.settimeout(std::chrono::milliseconds(200));
#else
        conn.settimeout(std::chrono::seconds(10)); // a wrong wait fails instead of hanging
#endif
        co_await c.sendall(std::string_view("ab"));
        std::array<char, 16> buf;
        std::size_t got = 0;
        while (got < 2) got += co_await conn.recv(std::span(buf).subspan(got)); // short: the queue is empty
        int err = 0;
        try {
            co_await conn.recv(buf, MSG_OOB);
        } catch (const std::system_error& e) {
            err = e.code().value();
        }
#if COSOCK_WINDOWS
        CHECK(err == ETIMEDOUT);
        // Urgent data that does come is read.
        conn.settimeout(std::chrono::seconds(10));
        CHECK(co_await c.send(std::string_view("!"), MSG_OOB) == 1);
        CHECK(co_await conn.recv(buf, MSG_OOB) == 1);
        CHECK(buf[0] == '!');
#else
        CHECK(err == EINVAL);
#endif
    }());
}
