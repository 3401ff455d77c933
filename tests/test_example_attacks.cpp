// The example servers under attack: clients that take descriptors and never
// finish, descriptor limits, clients that never read. Each server runs as its
// own process on a loopback port the kernel picks, on every backend.
#include "backends.hpp"
#include "child_process.hpp"
#include "example_clients.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <string>
#include <vector>

namespace {

/// Reads the program's lines until one contains `text`; false at its end,
/// saying what the program printed instead.
bool prints(child_process& p, const std::string& text) {
    std::string seen;
    while (std::optional<std::string> line = p.read_line()) {
        if (line->find(text) != std::string::npos) return true;
        seen += *line + "\n";
    }
    MESSAGE("looked for \"", text, "\" in vain; the program printed:\n", seen);
    return false;
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
    SKIP_UNDER_VALGRIND("the child's descriptor limit and table are set before exec, which valgrind emulates");
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
    SKIP_UNDER_VALGRIND("the child's descriptor limit and table are set before exec, which valgrind emulates");
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
    SKIP_UNDER_VALGRIND("the child's descriptor limit and table are set before exec, which valgrind emulates");
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

namespace {

// `keys` keys of 1000 bytes: 20,000 make a KEYS reply of 20 MB.
cosock::task<> fill_store(line_client& c, int keys) {
    auto send_all = [&]() -> cosock::task<> {
        for (int i = 0; i < keys; ++i) {
            std::string key = std::to_string(1000000 + i);
            co_await c.f.write("SET " + key + std::string(1000 - key.size(), 'k') + " v\n");
        }
        co_await c.f.flush();
    };
    auto read_all = [&]() -> cosock::task<> {
        int ok = 0;
        for (int i = 0; i < keys; ++i) ok += co_await next_line(c.f) == "OK";
        CHECK(ok == keys);
    };
    co_await cosock::when_all(send_all(), read_all()); // pipelined, read while sending
}

cosock::task<> keys_to_non_readers(cosock::scheduler& s, int port, pid_t server) {
    line_client filler = co_await connect_to(s, port);
    co_await fill_store(filler, 20000);
    const long before = resident_kib(server);
    REQUIRE(before > 0);
    // Eight clients ask for the keys, see the reply start, and read no more.
    std::vector<line_client> stalled;
    for (int i = 0; i < 8; ++i) {
        stalled.push_back(co_await connect_to(s, port, 4096));
        co_await send_text(stalled.back().f, "KEYS\n");
        std::array<char, 5> start;
        CHECK(co_await stalled.back().sock.recv(start) > 0);
    }
    // Everyone else is served meanwhile.
    line_client other = co_await connect_to(s, port);
    CHECK(co_await ask(other.f, "SET fresh 1") == "OK");
    CHECK(co_await ask(other.f, "GET fresh") == "VALUE 1");
    const long grown = resident_kib(server) - before;
    MESSAGE("eight stalled KEYS replies of 20 MB grew the server by " << grown / 1024 << " MiB");
    CHECK(grown < 32 * 1024);
    // The reply comes in pieces, but whole and in order.
    other.f.set_max_line(32 << 20);
    std::string all = co_await ask(other.f, "KEYS");
    std::vector<std::string> keys;
    for (std::size_t at = all.find(' '); at != std::string::npos;) {
        std::size_t end = all.find(' ', at + 1);
        keys.push_back(all.substr(at + 1, end == std::string::npos ? end : end - at - 1));
        at = end;
    }
    CHECK(all.starts_with("KEYS 1000000"));
    CHECK(keys.size() == 20001);
    CHECK(std::is_sorted(keys.begin(), keys.end()));
    CHECK(keys.back() == "fresh");
}

} // namespace

BACKEND_TEST("examples: line_server's memory stays bounded while clients that never read ask for KEYS") {
    std::string path = need_example("line_server");
    if (path.empty()) return;
    running_server server({path, "--backend", backend_name(B::value), "--port", "0"});
    cosock::scheduler s{B::value};
    s.run(keys_to_non_readers(s, server.port, server.proc.pid()));
    CHECK(server.proc.stop() == 128 + SIGTERM);
}

namespace {

/// A request padded to 130 bytes: a byte every 100 ms takes 13 s to send.
const std::string slow_request = "GET / HTTP/1.1\r\nHost: test\r\nX-Pad: " + std::string(94, 'p') + "\r\n\r\n";

// Sends `slow_request` a byte at a time, waiting 100 ms for the server to
// close between bytes; → how many bytes it sent before the server closed
// (all of them if it never did). The 100 ms paces the attack; nothing waits
// on it to have happened.
cosock::task<std::size_t> trickle(cosock::scheduler& s, int port) {
    cosock::socket c{s};
    c.settimeout(30s);
    co_await c.connect({"127.0.0.1", port});
    std::array<char, 512> buf;
    for (std::size_t sent = 0; sent < slow_request.size(); ++sent) {
        try {
            co_await c.sendall(std::string_view(slow_request).substr(sent, 1));
            std::size_t n = co_await cosock::with_timeout(c.recv(buf), 100ms);
            CHECK(n == 0); // no answer to an unfinished request: only the close
            co_return sent + 1;
        } catch (const cosock::timeout_error&) {
            continue; // still connected
        } catch (const std::system_error&) {
            co_return sent; // reset: closed with our last byte unread
        }
    }
    co_return slow_request.size();
}

cosock::task<> trickler_and_a_client(cosock::scheduler& s, int port) {
    std::size_t sent = 0;
    auto attack = [&]() -> cosock::task<> { sent = co_await trickle(s, port); };
    auto client = [&]() -> cosock::task<> {
        line_client c = co_await connect_to(s, port);
        auto got = co_await exchange(c.f, get_root, 1);
        CHECK(got[0].status == 200);
        CHECK(got[0].body == "Hello, World!\n");
    };
    co_await cosock::when_all(attack(), client());
    CHECK(sent < slow_request.size()); // dropped before it could finish
    line_client after = co_await connect_to(s, port);
    CHECK((co_await exchange(after.f, get_root, 1))[0].status == 200);
}

} // namespace

BACKEND_TEST("examples: http_hello drops a client that trickles its request past --request-timeout") {
    std::string path = need_example("http_hello");
    if (path.empty()) return;
    running_server server({path, "--backend", backend_name(B::value), "--port", "0", "--request-timeout", "1"});
    cosock::scheduler s{B::value};
    s.run(trickler_and_a_client(s, server.port));
    CHECK(server.proc.stop() == 128 + SIGTERM);
}

namespace {

// --max-connections 3: three silent connections are held, the next ones are
// closed at once; once the three are dropped (their --request-timeout), a new
// client is served.
cosock::task<> beyond_max_connections(cosock::scheduler& s, int port) {
    std::vector<line_client> held, excess;
    for (int i = 0; i < 3; ++i) held.push_back(co_await connect_to(s, port));
    for (int i = 0; i < 3; ++i) excess.push_back(co_await connect_to(s, port));
    for (line_client& c : excess) CHECK(co_await next_line(c.f) == "<eof>"); // accepted and closed
    for (line_client& c : held) CHECK(co_await next_line(c.f) == "<eof>");   // dropped by the deadline
    line_client fresh = co_await connect_to(s, port);
    auto got = co_await exchange(fresh.f, get_root + get_root, 2);
    CHECK(got[0].status == 200);
    CHECK(got[1].status == 200);
    got = co_await exchange(fresh.f, get_root, 1); // and it stays open
    CHECK(got[0].body == "Hello, World!\n");
}

} // namespace

BACKEND_TEST("examples: http_hello closes connections beyond --max-connections at once and serves again later") {
    std::string path = need_example("http_hello");
    if (path.empty()) return;
    running_server server(
        {path, "--backend", backend_name(B::value), "--port", "0", "--max-connections", "3", "--request-timeout", "3"});
    cosock::scheduler s{B::value};
    s.run(beyond_max_connections(s, server.port));
    CHECK(server.proc.stop() == 128 + SIGTERM);
}

namespace {

// 80 clients trickle requests at a server limited to 64 descriptors: every
// one is dropped before it finishes, and then a new client is served.
cosock::task<> slow_crowd(cosock::scheduler& s, int port) {
    std::vector<cosock::task<std::size_t>> crowd;
    for (int i = 0; i < 80; ++i) crowd.push_back(trickle(s, port));
    std::vector<std::size_t> sent = co_await cosock::when_all(std::move(crowd));
    CHECK(std::count(sent.begin(), sent.end(), slow_request.size()) == 0);
    line_client fresh = co_await connect_to(s, port);
    auto got = co_await exchange(fresh.f, get_root, 1);
    CHECK(got[0].status == 200);
}

} // namespace

BACKEND_TEST("examples: http_hello out of descriptors to slow clients is delayed, not denied") {
    SKIP_UNDER_VALGRIND("the child's descriptor limit and table are set before exec, which valgrind emulates");
    std::string path = need_example("http_hello");
    if (path.empty()) return;
    const std::vector<std::string> argv = {
        path, "--backend", backend_name(B::value), "--port", "0", "--request-timeout", "1"};
    {
        // By default it takes connections only up to what its descriptor
        // limit allows, and closes the rest at once.
        running_server server(argv, true, {.max_descriptors = 64});
        cosock::scheduler s{B::value};
        s.run(slow_crowd(s, server.port));
        CHECK(server.proc.stop() == 128 + SIGTERM);
        CHECK(server.proc.read_all().find("Too many open files") == std::string::npos); // it never ran out
    }
    // Told to take more than it can, it runs out: accept fails, and the
    // server waits for the slow clients' deadlines to free descriptors.
    std::vector<std::string> more = argv;
    more.insert(more.end(), {"--max-connections", "1000"});
    running_server server(more, true, {.max_descriptors = 64});
    cosock::scheduler s{B::value};
    s.run(slow_crowd(s, server.port));
    CHECK(prints(server.proc, "Too many open files"));
    CHECK(server.proc.stop() == 128 + SIGTERM);
}
