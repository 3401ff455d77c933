// Clients for the tests that start the example servers: a server's process
// and port, a line-oriented connection, HTTP responses read one by one, and
// what the tests read about a server process (its loop's counters, its memory).
#pragma once

#include "backends.hpp"
#include "child_process.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

/// A server example started on a port the kernel picks, read from its first line.
struct running_server {
    child_process proc;
    int port = -1;
    explicit running_server(std::vector<std::string> argv, bool merge_stderr = false, child_setup setup = {})
        : proc(std::move(argv), merge_stderr, setup) {
        std::optional<std::string> first = proc.read_line();
        REQUIRE(first);
        CHECK(first->starts_with("listening on 127.0.0.1:"));
        port = port_in(*first);
        REQUIRE(port > 0);
    }
};

/// A client connection with a file object for reading lines; every wait is
/// bounded by a generous timeout, so a missing answer fails instead of hanging.
struct line_client {
    cosock::socket sock;
    cosock::file_object f;
    std::string name; // our address as the server sees it
};

inline cosock::task<line_client> connect_to(cosock::scheduler& s, int port, int rcvbuf = 0) {
    line_client c{cosock::socket{s}, {}, {}};
    if (rcvbuf > 0) c.sock.setsockopt(cosock::sol_socket, cosock::so_rcvbuf, rcvbuf);
    c.sock.settimeout(30s);
    co_await c.sock.connect({"127.0.0.1", port});
    c.f = c.sock.makefile("rwb");
    c.name = c.sock.getsockname().to_string();
    co_return c;
}

/// The next line without its line end; "<eof>" at end of stream.
inline cosock::task<std::string> next_line(cosock::file_object& f) {
    std::string line = co_await f.readline();
    if (line.empty()) co_return "<eof>";
    while (line.ends_with('\n') || line.ends_with('\r')) line.pop_back();
    co_return line;
}

inline cosock::task<> send_text(cosock::file_object& f, std::string text) {
    co_await f.write(text);
    co_await f.flush();
}

inline cosock::task<std::string> ask(cosock::file_object& f, std::string command) {
    co_await send_text(f, command + "\n");
    co_return co_await next_line(f);
}

struct http_response {
    int status = 0; // 0: the connection ended first
    std::string head, body;
};

/// One response; `head_only` for the answer to HEAD, which has no body.
inline cosock::task<http_response> read_response(cosock::file_object& f, bool head_only = false) {
    http_response r;
    std::string status_line = co_await f.readline();
    if (status_line.empty()) co_return r;
    REQUIRE(status_line.starts_with("HTTP/1.1 "));
    r.status = std::stoi(status_line.substr(9, 3));
    std::size_t length = 0;
    for (;;) {
        std::string line = co_await f.readline();
        REQUIRE(line.ends_with("\r\n"));
        if (line == "\r\n") break;
        r.head += line;
        if (line.starts_with("Content-Length: ")) length = std::stoul(line.substr(16));
    }
    if (!head_only) r.body = co_await f.read(static_cast<std::ptrdiff_t>(length));
    co_return r;
}

/// Sends `requests` in one write, then reads `count` responses.
inline cosock::task<std::vector<http_response>> exchange(cosock::file_object& f, std::string requests, int count) {
    co_await send_text(f, std::move(requests));
    std::vector<http_response> got;
    for (int i = 0; i < count; ++i) got.push_back(co_await read_response(f));
    co_return got;
}

inline const std::string get_root = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// Joins the chat room with everyone in `present` there already, and checks
/// the welcome and that each of them saw us join.
inline cosock::task<line_client> chat_join(cosock::scheduler& s, int port, std::vector<line_client*> present,
                                           int rcvbuf = 0) {
    line_client c = co_await connect_to(s, port, rcvbuf);
    CHECK(co_await next_line(c.f) == "* welcome " + c.name + ", " + std::to_string(present.size()) + " others here");
    // Once everyone saw us join, the server has us in the room.
    for (line_client* p : present) CHECK(co_await next_line(p->f) == "* " + c.name + " joined");
    co_return c;
}

/// Sends `text` and reads as many bytes back (fewer if the peer closes first).
inline cosock::task<std::string> echo_of(cosock::socket& c, std::string text) {
    co_await c.sendall(text);
    std::string got(text.size(), '\0');
    std::size_t have = 0;
    while (have < got.size()) {
        std::size_t n = co_await c.recv(std::span(got).subspan(have));
        if (n == 0) break;
        have += n;
    }
    got.resize(have);
    co_return got;
}

struct loop_stats {
    unsigned long long waits = 0, resumes = 0;
};

/// Sends SIGUSR1 and reads the line of counters the server prints for it.
inline loop_stats stats_of(child_process& p) {
    ::kill(p.pid(), SIGUSR1);
    while (std::optional<std::string> line = p.read_line()) {
        loop_stats st;
        if (std::sscanf(line->c_str(), "stats: waits %llu resumes %llu", &st.waits, &st.resumes) == 2) return st;
    }
    FAIL("the server ended without printing its counters");
    return {};
}

/// The waits the server's loop makes in an idle second: a handful at most.
inline void check_sleeps(child_process& p) {
    loop_stats before = stats_of(p);
    std::this_thread::sleep_for(1s); // a window to count in, not a synchronisation
    loop_stats after = stats_of(p);
    MESSAGE("in an idle second: " << after.waits - before.waits << " waits, " << after.resumes - before.resumes
                                  << " resumes");
    CHECK(after.waits - before.waits <= 5);
}

/// The resident memory of a process in KiB, from /proc/PID/status; -1 if unknown.
inline long resident_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
    return -1;
}
