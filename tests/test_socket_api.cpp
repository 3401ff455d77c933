#include "backends.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#if !COSOCK_WINDOWS
#include <fcntl.h>
#include <linux/netlink.h>
#include <unistd.h>
#endif

using cosock::task;

namespace {

// A socket made by the system call itself, not by cosock.
int raw_socket(int family, int type) {
#if COSOCK_WINDOWS // winsock's SOCKET, after WSAStartup, kept in an int as cosock does
    return cosock::detail::sys::socket(family, type, 0);
#else
    return ::socket(family, type, 0);
#endif
}

// Whether `fd` is still an open descriptor (a handle on Windows).
bool still_open(int fd) {
#if COSOCK_WINDOWS
    DWORD flags = 0;
    return ::GetHandleInformation(reinterpret_cast<HANDLE>(static_cast<std::intptr_t>(fd)), &flags) != 0;
#else
    return ::fcntl(fd, F_GETFD) != -1;
#endif
}

} // namespace

static_assert(cosock::const_buffer<std::string>);
static_assert(cosock::const_buffer<std::string_view>);
static_assert(cosock::const_buffer<const std::vector<unsigned char>&>);
static_assert(cosock::const_buffer<std::span<const std::byte>>);
static_assert(!cosock::const_buffer<const char (&)[6]>, "a string literal would send its NUL");
static_assert(!cosock::const_buffer<std::vector<int>>);
static_assert(cosock::mutable_buffer<std::array<std::byte, 8>&>);
static_assert(cosock::mutable_buffer<std::string&>);
static_assert(cosock::mutable_buffer<char (&)[16]>);
static_assert(!cosock::mutable_buffer<std::string_view>);
static_assert(!cosock::mutable_buffer<const std::string&>);

BACKEND_TEST("from_fd reads family, type and protocol from the descriptor") {
    cosock::scheduler s{B::value};
    struct kind {
        int family, type, proto;
    };
    for (kind k : {kind{AF_INET, SOCK_STREAM, IPPROTO_TCP}, kind{AF_INET, SOCK_DGRAM, IPPROTO_UDP},
#if COSOCK_WINDOWS // no AF_UNIX under wine: IPv6 instead
                   kind{AF_INET6, SOCK_STREAM, IPPROTO_TCP}, kind{AF_INET6, SOCK_DGRAM, IPPROTO_UDP}}) {
#else
                   kind{AF_UNIX, SOCK_STREAM, 0}, kind{AF_UNIX, SOCK_DGRAM, 0}, kind{AF_UNIX, SOCK_SEQPACKET, 0}}) {
#endif
        int fd = raw_socket(k.family, k.type);
        REQUIRE(fd >= 0);
        auto sock = cosock::socket::from_fd(s, fd);
        CHECK(sock.fileno() == fd);
        CHECK(sock.family() == k.family);
        CHECK(sock.type() == k.type);
        CHECK(sock.proto() == k.proto);
    }
}

BACKEND_TEST("from_fd refuses a non-socket and a closed descriptor, leaving them alone") {
    cosock::scheduler s{B::value};
#if COSOCK_WINDOWS // a pipe is two HANDLEs there
    HANDLE read_end = nullptr, write_end = nullptr;
    REQUIRE(::CreatePipe(&read_end, &write_end, nullptr, 0));
    const int p[2] = {int(reinterpret_cast<std::intptr_t>(read_end)), int(reinterpret_cast<std::intptr_t>(write_end))};
#else
    int p[2];
    REQUIRE(::pipe(p) == 0);
#endif
    CHECK(error_of([&] { (void)cosock::socket::from_fd(s, p[0]); }) == ENOTSOCK);
    CHECK(still_open(p[0])); // still open: not ours
#if COSOCK_WINDOWS
    ::CloseHandle(read_end);
    ::CloseHandle(write_end);
    // Winsock tells no closed handle from a non-socket: WSAENOTSOCK for both.
    CHECK(error_of([&] { (void)cosock::socket::from_fd(s, p[0]); }) == ENOTSOCK);
#else
    ::close(p[0]);
    ::close(p[1]);
    CHECK(error_of([&] { (void)cosock::socket::from_fd(s, p[0]); }) == EBADF);
#endif
}

BACKEND_TEST("the socket constructor names the arguments the kernel refused") {
    cosock::scheduler s{B::value};
    CHECK_THROWS_WITH_AS(cosock::socket(s, 12345, cosock::sock_stream), doctest::Contains("family=12345"),
                         std::system_error);
}

BACKEND_TEST("close is idempotent, fileno is -1 after it, and later calls fail with EBADF") {
    cosock::scheduler s{B::value};
    cosock::socket sock{s};
    CHECK(sock.fileno() >= 0);
    sock.close();
    sock.close();
    CHECK(sock.fileno() == -1);
    CHECK(error_of([&] { sock.bind({"127.0.0.1", 0}); }) == EBADF);
    CHECK_THROWS_WITH_AS(sock.listen(), doctest::Contains("listen"), std::system_error);
    std::array<char, 4> buf;
    CHECK(error_of([&] { (void)sock.recv(buf); }) == EBADF);
    cosock::socket empty;
    CHECK(empty.fileno() == -1);
    CHECK(error_of([&] { (void)empty.send(std::string_view("x")); }) == EBADF);
}

BACKEND_TEST("detach hands the descriptor over without closing it") {
    cosock::scheduler s{B::value};
    cosock::socket sock{s};
    int fd = sock.detach();
    CHECK(sock.fileno() == -1);
    CHECK(still_open(fd));
    auto again = cosock::socket::from_fd(s, fd);
    CHECK(again.fileno() == fd);
}

BACKEND_TEST("setsockopt and getsockopt take ints and raw bytes") {
    cosock::scheduler s{B::value};
    cosock::socket sock{s};
    sock.setsockopt(cosock::sol_socket, cosock::so_reuseaddr, 1);
    CHECK(sock.getsockopt(cosock::sol_socket, cosock::so_reuseaddr) == 1);
    sock.setsockopt(cosock::ipproto_tcp, cosock::tcp_nodelay, 1);
    CHECK(sock.getsockopt(cosock::ipproto_tcp, cosock::tcp_nodelay) == 1);
    ::linger in{1, 7}, out{};
    sock.setsockopt(cosock::sol_socket, cosock::so_linger, std::as_bytes(std::span(&in, 1)));
    CHECK(sock.getsockopt(cosock::sol_socket, cosock::so_linger, std::as_writable_bytes(std::span(&out, 1))) ==
          sizeof out);
    CHECK(out.l_onoff == 1);
    CHECK(out.l_linger == 7);
    CHECK(error_of([&] { sock.setsockopt(cosock::sol_socket, 999999, 1); }) == ENOPROTOOPT);
}

BACKEND_TEST("getpeername on an unconnected socket is ENOTCONN") {
    cosock::scheduler s{B::value};
    cosock::socket sock{s};
    CHECK(error_of([&] { (void)sock.getpeername(); }) == ENOTCONN);
}

BACKEND_TEST("recv and send take strings, vectors, arrays and spans of any byte type") {
    cosock::scheduler s{B::value};
    s.run([&]() -> task<> {
        auto [a, b] = cosock::socketpair(s);
        std::string text = "abc";
        std::vector<unsigned char> bytes{1, 2, 3};
        std::array<std::byte, 2> raw{std::byte{9}, std::byte{8}};
        CHECK(co_await a.send(text) == 3);
        CHECK(co_await a.send(bytes) == 3);
        CHECK(co_await a.send(std::span(raw)) == 2);
        std::string into(3, '\0');
        std::vector<unsigned char> into_bytes(3);
        std::array<std::byte, 2> into_raw{};
        char c_array[3];
        CHECK(co_await b.recv(into) == 3);
        CHECK(co_await b.recv(into_bytes) == 3);
        CHECK(co_await b.recv(into_raw) == 2);
        CHECK(into == "abc");
        CHECK(into_bytes == bytes);
        CHECK(into_raw == raw);
        co_await a.send(std::string_view("xy"));
        CHECK(co_await b.recv(c_array) == 2);
    }());
}

#if !COSOCK_WINDOWS // windows: netlink is Linux's
BACKEND_TEST("other families work through the generic constructor and raw addresses") {
    cosock::scheduler s{B::value};
    cosock::socket nl{s, AF_NETLINK, cosock::sock_raw, NETLINK_ROUTE};
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    nl.bind(cosock::address::from_raw(reinterpret_cast<sockaddr*>(&sa), sizeof sa));
    cosock::address local = nl.getsockname();
    CHECK(local.family() == AF_NETLINK);
    CHECK(local.to_string() == "<family " + std::to_string(AF_NETLINK) + ">");
    CHECK(nl.proto() == NETLINK_ROUTE);
}
#endif

BACKEND_TEST("socketpair gives two connected sockets") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
#if COSOCK_WINDOWS // loopback TCP there, the default family
    CHECK(a.family() == cosock::af_inet);
#else
    CHECK(a.family() == cosock::af_unix);
#endif
    CHECK(b.type() == cosock::sock_stream);
    s.run([&]() -> task<> {
        co_await a.sendall(std::string_view("hi"));
        std::array<char, 2> buf;
        CHECK(co_await b.recv(buf) == 2);
    }());
#if COSOCK_WINDOWS // stream sockets over loopback only, and no AF_UNIX
    CHECK(error_of([&] { (void)cosock::socketpair(s, cosock::af_inet, cosock::sock_dgram); }) == EOPNOTSUPP);
    CHECK(error_of([&] { (void)cosock::socketpair(s, cosock::af_unix); }) == EAFNOSUPPORT);
#else
    CHECK(error_of([&] { (void)cosock::socketpair(s, cosock::af_inet); }) == EOPNOTSUPP);
#endif
}

BACKEND_TEST("setblocking and getblocking are the timeout as Python maps them") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    CHECK(a.getblocking());
    a.setblocking(false);
    CHECK_FALSE(a.getblocking());
    CHECK(a.gettimeout() == std::chrono::nanoseconds::zero());
    std::array<char, 4> buf{};
    CHECK(error_of([&] { s.run([](cosock::socket& a, std::span<char> buf) -> task<> { co_await a.recv(buf); }(a, buf)); }) ==
          EAGAIN);
    a.settimeout(1.5);
    CHECK(a.getblocking()); // a timeout still blocks, up to its limit
    a.setblocking(true);
    CHECK_FALSE(a.gettimeout().has_value());
}

BACKEND_TEST("dup gives a second socket on the same connection, which outlives the first") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    b.settimeout(2.0);
    cosock::socket c = b.dup();
    CHECK(c.fileno() != b.fileno());
    CHECK(c.family() == b.family());
    CHECK(c.type() == b.type());
    CHECK_FALSE(c.gettimeout().has_value()); // the default, as Python's dup gives
    CHECK(c.get_scheduler() == &s);
    b.close();
    std::string got = s.run([](cosock::socket& a, cosock::socket& c) -> task<std::string> {
        co_await c.sendall(std::string_view("from the dup"));
        std::array<char, 32> buf;
        std::size_t n = co_await a.recv(buf);
        co_return std::string(buf.data(), n);
    }(a, c));
    CHECK(got == "from the dup");
    CHECK(error_of([&] { (void)b.dup(); }) == EBADF); // a closed socket has nothing to duplicate
}

BACKEND_TEST("recv_into and recvfrom_into read at most nbytes, and refuse more than the buffer holds") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    std::array<char, 8> buf{};
    s.run([](cosock::socket& a, cosock::socket& b, std::span<char> buf) -> task<> {
        co_await b.sendall(std::string_view("abcdef"));
        CHECK(co_await a.recv_into(buf, 2) == 2);
        CHECK(std::string_view(buf.data(), 2) == "ab");
        std::size_t n = 0;
        while (n < 4) n += co_await a.recv_into(buf.subspan(n)); // nbytes 0: the whole buffer
        CHECK(std::string_view(buf.data(), 4) == "cdef");
    }(a, b, buf));
    try {
        (void)a.recv_into(buf, 9);
        FAIL("nbytes past the buffer was taken");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("nbytes 9") != std::string::npos);
        CHECK(std::string(e.what()).find("8") != std::string::npos);
    }
    cosock::socket rx{s, cosock::af_inet, cosock::sock_dgram}, tx{s, cosock::af_inet, cosock::sock_dgram};
    rx.bind({"127.0.0.1", 0});
    tx.bind({"127.0.0.1", 0});
    auto [size, from] = s.run([](cosock::socket& rx, cosock::socket& tx, std::span<char> buf) -> task<cosock::recvfrom_result> {
        co_await tx.sendto(std::string_view("datagram"), rx.getsockname());
        co_return co_await rx.recvfrom_into(buf, 4); // the rest of the datagram is dropped
    }(rx, tx, buf));
    CHECK(size == 4);
    CHECK(from == tx.getsockname());
    CHECK(std::string_view(buf.data(), 4) == "data");
}

BACKEND_TEST("connect_ex gives the errno in place of the exception, 0 once connected") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    cosock::address to = srv.getsockname();
    // A port nobody listens on: the listener's, once it is closed.
    cosock::address closed_port;
    {
        auto gone = listener(s);
        closed_port = gone.getsockname();
    }
    auto [ok, refused] = s.run([](cosock::scheduler& s, cosock::address to, cosock::address nobody) -> task<std::pair<int, int>> {
        cosock::socket a{s}, b{s};
        int first = co_await a.connect_ex(to);
        int second = co_await b.connect_ex(nobody);
        co_return std::pair{first, second};
    }(s, to, closed_port));
    CHECK(ok == 0);
    CHECK(refused == ECONNREFUSED);
    // A stop is the caller's: still cancelled_error.
    std::stop_source stop;
    stop.request_stop();
    cosock::socket c{s};
    CHECK_THROWS_AS(s.run([](cosock::socket& c, cosock::address to) -> task<int> { co_return co_await c.connect_ex(to); }(c, to)
                              .with_stop_token(stop.get_token())),
                    cosock::cancelled_error);
}

TEST_CASE("gethostname is this machine's name") {
    std::string name = cosock::gethostname();
    CHECK_FALSE(name.empty());
    CHECK(name.size() < 256);
}
