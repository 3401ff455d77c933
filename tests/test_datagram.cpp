#include "backends.hpp"

#include <array>
#include <string>
#include <utility>

using cosock::task;

namespace {

// The receiver waits first (so the suspend path runs), then the sender sends.
void exchange(cosock::scheduler& s, cosock::socket& rx, cosock::socket& tx) {
    cosock::address rx_addr = rx.getsockname(), tx_addr = tx.getsockname();
    std::string got;
    cosock::address from;
    s.spawn([](cosock::socket& rx, std::string& got, cosock::address& from) -> task<> {
        std::array<char, 64> buf;
        auto [n, sender] = co_await rx.recvfrom(buf);
        got.assign(buf.data(), n);
        from = sender;
    }(rx, got, from));
    s.run([&]() -> task<> { CHECK(co_await tx.sendto(std::string_view("datagram"), rx_addr) == 8); }());
    s.run();
    CHECK(got == "datagram");
    CHECK(from == tx_addr);
}

// Two UDP sockets on loopback, each connected to the other.
std::pair<cosock::socket, cosock::socket> connected_udp_pair(cosock::scheduler& s) {
    cosock::socket a{s, cosock::af_inet, cosock::sock_dgram}, b{s, cosock::af_inet, cosock::sock_dgram};
    a.bind({"127.0.0.1", 0});
    b.bind({"127.0.0.1", 0});
    s.run([&]() -> task<> {
        co_await a.connect(b.getsockname());
        co_await b.connect(a.getsockname());
    }());
    return {std::move(a), std::move(b)};
}

} // namespace

BACKEND_TEST("UDP sendto/recvfrom carry a datagram and the sender's address") {
    cosock::scheduler s{B::value};
    cosock::socket rx{s, cosock::af_inet, cosock::sock_dgram}, tx{s, cosock::af_inet, cosock::sock_dgram};
    rx.bind({"127.0.0.1", 0});
    tx.bind({"127.0.0.1", 0});
    CHECK(rx.proto() == IPPROTO_UDP);
    exchange(s, rx, tx);
}

#if !COSOCK_WINDOWS // windows: AF_UNIX sockets, which wine refuses
BACKEND_TEST("Unix datagram sockets exchange datagrams between bound paths") {
    cosock::scheduler s{B::value};
    temp_dir dir;
    cosock::socket rx{s, cosock::af_unix, cosock::sock_dgram}, tx{s, cosock::af_unix, cosock::sock_dgram};
    rx.bind(cosock::address::unix_path(dir / "rx.sock"));
    tx.bind(cosock::address::unix_path(dir / "tx.sock"));
    exchange(s, rx, tx);
}
#endif

BACKEND_TEST("datagram boundaries are kept: one recv, one datagram, even an empty one") {
    cosock::scheduler s{B::value};
#if COSOCK_WINDOWS // no AF_UNIX datagram pair there
    auto [a, b] = connected_udp_pair(s);
#else
    auto [a, b] = cosock::socketpair(s, cosock::af_unix, cosock::sock_dgram);
#endif
    s.run([&]() -> task<> {
        co_await a.send(std::string_view("one"));
        co_await a.send(std::string_view(""));
        co_await a.send(std::string_view("three"));
        std::array<char, 64> buf;
        CHECK(co_await b.recv(buf) == 3);
        CHECK(co_await b.recv(buf) == 0);
        CHECK(co_await b.recv(buf) == 5);
    }());
}

BACKEND_TEST("a connected UDP socket uses send and recv") {
    cosock::scheduler s{B::value};
    auto [a, b] = connected_udp_pair(s);
    s.run([&]() -> task<> {
        co_await a.send(std::string_view("ping"));
        std::array<char, 16> buf;
        CHECK(co_await b.recv(buf) == 4);
        CHECK(std::string_view(buf.data(), 4) == "ping");
    }());
}

BACKEND_TEST("a datagram longer than the buffer fills it and the rest is dropped, for recv and recvfrom alike") {
    cosock::scheduler s{B::value};
    auto [a, b] = connected_udp_pair(s);
    s.run([](cosock::socket& a, cosock::socket& b) -> task<> {
        const std::string first(100, 'x'), second = "next";
        co_await a.send(first);
        co_await a.send(second);
        std::array<char, 10> small;
        // A peek leaves the datagram where it is; it fills the buffer all the same.
        CHECK(co_await b.recv(small, cosock::msg_peek) == small.size());
        CHECK(co_await b.recv(small) == small.size()); // where Winsock says WSAEMSGSIZE
        CHECK(std::string_view(small.data(), small.size()) == std::string_view(first).substr(0, small.size()));
        std::array<char, 16> buf;
        CHECK(co_await b.recv(buf) == second.size()); // the rest of the first was dropped
        co_await a.send(first);
        auto [n, from] = co_await b.recvfrom(small);
        CHECK(n == small.size());
        CHECK(from == a.getsockname());
    }(a, b));
}
