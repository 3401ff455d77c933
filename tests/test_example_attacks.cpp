// The example servers under attack: clients that take descriptors and never
// finish, descriptor limits, clients that never read. Each server runs as its
// own process on a loopback port the kernel picks, on every backend.
#include "backends.hpp"
#include "child_process.hpp"
#include "example_clients.hpp"

#include <string>
#include <vector>

namespace {

/// Reads the program's lines until one contains `text`; false at its end.
bool prints(child_process& p, const std::string& text) {
    while (std::optional<std::string> line = p.read_line())
        if (line->find(text) != std::string::npos) return true;
    return false;
}

cosock::task<std::string> echo_of(cosock::socket& c, std::string text) {
    co_await c.sendall(text);
    std::string got(text.size(), '\0');
    for (std::size_t have = 0; have < got.size();) {
        std::size_t n = co_await c.recv(std::span(got).subspan(have));
        if (n == 0) break;
        have += n;
    }
    co_return got;
}

// 40 connections against a limit of 32 descriptors: the server accepts what
// it can, then accept fails with EMFILE; once the test closes 20, the queued
// ones and a new client are served.
cosock::task<> exhaust_echo_server(cosock::scheduler& s, child_process& server, cosock::address where) {
    std::vector<cosock::socket> conns;
    for (int i = 0; i < 40; ++i) {
        cosock::socket c{s, where.family()};
        c.settimeout(30s);
        co_await c.connect(where); // the kernel completes it, accepted or not
        conns.push_back(std::move(c));
    }
    CHECK(prints(server, "Too many open files"));
    CHECK(co_await echo_of(conns[0], "first") == "first"); // the accepted ones are served meanwhile
    conns.erase(conns.begin(), conns.begin() + 20);
    cosock::socket fresh{s, where.family()};
    fresh.settimeout(30s);
    co_await fresh.connect(where);
    CHECK(co_await echo_of(fresh, "still there?") == "still there?");
    CHECK(co_await echo_of(conns.back(), "queued") == "queued");
}

} // namespace

BACKEND_TEST("examples: echo_server out of descriptors pauses accepting, then serves again") {
    std::string path = need_example("echo_server");
    if (path.empty()) return;
    child_process server({path, "--backend", backend_name(B::value), "--port", "0"}, true, {.max_descriptors = 32});
    auto first = server.read_line();
    REQUIRE(first);
    REQUIRE(port_in(*first) > 0);
    cosock::scheduler s{B::value};
    s.run(exhaust_echo_server(s, server, {"127.0.0.1", port_in(*first)}));
    CHECK(server.stop() == 128 + SIGTERM); // alive until stopped
}

BACKEND_TEST("examples: unix_echo out of descriptors pauses accepting, then serves again") {
    std::string path = need_example("unix_echo");
    if (path.empty()) return;
    const std::string name = "cosock-emfile-" + std::to_string(::getpid()) + "-" + backend_name(B::value);
    child_process server({path, "--backend", backend_name(B::value), "--abstract", name}, true,
                         {.max_descriptors = 32});
    REQUIRE(server.read_line() == "listening on @" + name + " (" + backend_name(B::value) + ")");
    cosock::scheduler s{B::value};
    s.run(exhaust_echo_server(s, server, cosock::address::abstract(name)));
    CHECK(server.stop() == 0); // alive until stopped, and stopped cleanly
}

namespace {

// Clients join one by one while the server's descriptors climb past 1024. On
// select the first one select() cannot take is told so and closed, and the
// room goes on; on the other backends everyone joins.
cosock::task<> chat_past_fd_setsize(cosock::scheduler& s, int port, bool on_select) {
    std::vector<line_client> room;
    int refused = 0;
    for (int i = 0; i < 16 && refused == 0; ++i) {
        line_client c = co_await connect_to(s, port);
        std::string first = co_await next_line(c.f);
        if (first.starts_with("* welcome ")) {
            CHECK(first == "* welcome " + c.name + ", " + std::to_string(room.size()) + " others here");
            for (line_client& p : room) CHECK(co_await next_line(p.f) == "* " + c.name + " joined");
            room.push_back(std::move(c));
        } else {
            CHECK(first == "* sorry, no room for another client");
            CHECK(co_await next_line(c.f) == "<eof>");
            ++refused;
        }
    }
    CHECK(refused == (on_select ? 1 : 0));
    REQUIRE(room.size() >= 2);
    if (!on_select) CHECK(room.size() == 16);
    // The last to join (the highest descriptor) and the first still talk.
    co_await send_text(room.back().f, "from the last\n");
    for (std::size_t i = 0; i + 1 < room.size(); ++i)
        CHECK(co_await next_line(room[i].f) == room.back().name + ": from the last");
    co_await send_text(room.front().f, "from the first\n");
    for (std::size_t i = 1; i < room.size(); ++i)
        CHECK(co_await next_line(room[i].f) == room.front().name + ": from the first");
}

} // namespace

BACKEND_TEST("examples: chat_server refuses a client whose descriptor its backend cannot wait on, and goes on") {
    std::string path = need_example("chat_server");
    if (path.empty()) return;
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < 1100) {
        MESSAGE("SKIPPED: the RLIMIT_NOFILE hard limit (" << lim.rlim_max << ") is below 1100");
        return;
    }
    // Descriptors 3 to 1015 are taken before it starts: its clients' pass 1024.
    running_server server({path, "--backend", backend_name(B::value), "--port", "0"}, true,
                          {.max_descriptors = 1100, .first_free_descriptor = 1016});
    cosock::scheduler s{B::value};
    s.run(chat_past_fd_setsize(s, server.port, B::value == cosock::backend::select));
    CHECK(server.proc.stop() == 128 + SIGTERM); // still running
}
