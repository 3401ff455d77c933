// Every example server sleeps when it has nothing to do: after traffic of each
// kind it serves, with its clients still connected and silent, its loop makes
// only a handful of waits in a second. `kill -USR1` makes a server print its
// scheduler's counters ("stats: waits N resumes M"); the test reads them before
// and after an idle second. The second's length is not asserted, only the
// count: a loop that spins makes thousands of waits in it.
#include "backends.hpp"
#include "child_process.hpp"
#include "example_clients.hpp"

#include <cstdio>
#include <string>
#include <thread>

namespace {

cosock::task<> connect_and_echo(cosock::socket& c, cosock::address where) {
    c.settimeout(30s);
    co_await c.connect(where);
    CHECK(co_await echo_of(c, "hello") == "hello");
}

} // namespace

BACKEND_TEST("examples: echo_server sleeps when idle") {
    std::string path = need_example("echo_server");
    if (path.empty()) return;
    running_server server({path, "--backend", backend_name(B::value), "--port", "0"});
    cosock::scheduler s{B::value};
    cosock::socket a{s}, b{s};
    s.run(connect_and_echo(a, {"127.0.0.1", server.port}));
    s.run(connect_and_echo(b, {"127.0.0.1", server.port}));
    check_sleeps(server.proc);
    CHECK(server.proc.stop() == 128 + SIGTERM);
}

BACKEND_TEST("examples: unix_echo sleeps when idle") {
    std::string path = need_example("unix_echo");
    if (path.empty()) return;
    const std::string name = "cosock-idle-" + std::to_string(::getpid()) + "-" + backend_name(B::value);
    child_process server({path, "--backend", backend_name(B::value), "--abstract", name});
    REQUIRE(server.read_line() == "listening on @" + name + " (" + backend_name(B::value) + ")");
    cosock::scheduler s{B::value};
    cosock::socket a{s, cosock::af_unix};
    s.run(connect_and_echo(a, cosock::address::abstract(name)));
    check_sleeps(server);
    CHECK(server.stop() == 0);
}

namespace {

cosock::task<> one_datagram(cosock::socket& c, cosock::address server) {
    c.settimeout(30s);
    co_await c.sendto(std::string_view("ping"), server);
    std::array<char, 64> buf;
    auto [n, from] = co_await c.recvfrom(buf);
    CHECK(std::string_view(buf.data(), n) == "ping");
    CHECK(from == server);
}

} // namespace

BACKEND_TEST("examples: udp_echo sleeps when idle") {
    std::string path = need_example("udp_echo");
    if (path.empty()) return;
    running_server server({path, "--backend", backend_name(B::value), "--port", "0"});
    cosock::scheduler s{B::value};
    cosock::socket c{s, cosock::af_inet, cosock::sock_dgram};
    s.run(one_datagram(c, {"127.0.0.1", server.port}));
    check_sleeps(server.proc);
    CHECK(server.proc.stop() == 128 + SIGTERM);
}

BACKEND_TEST("examples: line_server sleeps when idle") {
    std::string path = need_example("line_server");
    if (path.empty()) return;
    running_server server({path, "--backend", backend_name(B::value), "--port", "0"});
    cosock::scheduler s{B::value};
    line_client a = s.run(connect_to(s, server.port)), b = s.run(connect_to(s, server.port));
    CHECK(s.run(ask(a.f, "SET greeting hello")) == "OK");
    CHECK(s.run(ask(a.f, "GET greeting")) == "VALUE hello");
    CHECK(s.run(ask(b.f, "KEYS")) == "KEYS greeting");
    CHECK(s.run(ask(b.f, "DEL nothing")) == "NOT_FOUND");
    CHECK(s.run(ask(b.f, "FROB")) == "ERR unknown command 'FROB'");
    s.run(send_text(b.f, "GET gree")); // half a command: the server waits for the rest
    check_sleeps(server.proc);
    CHECK(s.run(ask(b.f, "ting")) == "VALUE hello"); // and it was waiting
    CHECK(server.proc.stop() == 128 + SIGTERM);
}

namespace {

cosock::task<> chat_traffic(cosock::scheduler& s, int port, line_client& a, line_client& b) {
    std::vector<line_client*> nobody, just_a;
    a = co_await chat_join(s, port, nobody);
    just_a.push_back(&a);
    b = co_await chat_join(s, port, just_a);
    co_await send_text(a.f, "hello from a\n");
    CHECK(co_await next_line(b.f) == a.name + ": hello from a");
    co_await send_text(b.f, "hi from b\n");
    CHECK(co_await next_line(a.f) == b.name + ": hi from b");
    co_await send_text(b.f, "half a li"); // a line not yet ended
}

} // namespace

BACKEND_TEST("examples: chat_server sleeps when idle") {
    std::string path = need_example("chat_server");
    if (path.empty()) return;
    running_server server({path, "--backend", backend_name(B::value), "--port", "0"});
    cosock::scheduler s{B::value};
    line_client a, b;
    s.run(chat_traffic(s, server.port, a, b));
    check_sleeps(server.proc);
    s.run(send_text(b.f, "ne\n"));
    CHECK(s.run(next_line(a.f)) == b.name + ": half a line");
    CHECK(server.proc.stop() == 128 + SIGTERM);
}

namespace {

cosock::task<> http_traffic(cosock::scheduler& s, int port, line_client& a, line_client& b) {
    a = co_await connect_to(s, port);
    auto got = co_await exchange(a.f, get_root + "GET /missing HTTP/1.1\r\nHost: test\r\n\r\n", 2); // pipelined
    CHECK(got[0].status == 200);
    CHECK(got[1].status == 404);
    got = co_await exchange(a.f, "POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello", 1);
    CHECK(got[0].status == 200);
    b = co_await connect_to(s, port);
    co_await send_text(b.f, "GET / HTTP/1.1\r\nHost: te"); // half a request head
}

} // namespace

BACKEND_TEST("examples: http_hello sleeps when idle") {
    std::string path = need_example("http_hello");
    if (path.empty()) return;
    running_server server({path, "--backend", backend_name(B::value), "--port", "0"});
    cosock::scheduler s{B::value};
    line_client a, b;
    s.run(http_traffic(s, server.port, a, b));
    check_sleeps(server.proc);
    CHECK((s.run(exchange(b.f, "st\r\n\r\n", 1)))[0].status == 200); // it was waiting for the rest
    CHECK(server.proc.stop() == 128 + SIGTERM);
}
