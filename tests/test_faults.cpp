// Faults: connections reset or closed under a waiting operation, writes into a
// closed connection, accept with no descriptor left, half-closed and slow
// peers, a scheduler destroyed with thousands of operations in flight, and one
// failing handler among many. Each outcome is asserted exactly, on every
// backend.
#include "alloc_count.hpp"
#include "backends.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#if !COSOCK_WINDOWS
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

using cosock::task;
using namespace std::chrono_literals;

namespace {

struct tcp_connection {
    cosock::socket client, server;
};

// A client connected to `srv`, and the server's side of it.
task<tcp_connection> connect_to(cosock::scheduler& s, cosock::socket& srv) {
    cosock::socket c{s};
    co_await c.connect(srv.getsockname());
    auto [conn, peer] = co_await srv.accept();
    co_return tcp_connection{std::move(c), std::move(conn)};
}

// Closes `sock` with SO_LINGER {1, 0}, so the kernel sends RST instead of FIN.
[[maybe_unused]] void reset(cosock::socket& sock) {
    ::linger hard{1, 0};
    sock.setsockopt(cosock::sol_socket, cosock::so_linger, std::as_bytes(std::span(&hard, 1)));
    sock.close();
}

// The errno of the std::system_error that `t` ends with, or 0 if it succeeds.
template <class T>
task<int> error_in(task<T> t) {
    try {
        co_await std::move(t);
    } catch (const std::system_error& e) {
        co_return e.code().value();
    }
    co_return 0;
}

// Echoes until the peer ends its stream, then ends ours.
task<> echo(cosock::socket& conn) {
    std::array<char, 4096> buf;
    while (std::size_t n = co_await conn.recv(buf)) co_await conn.sendall(std::span(buf.data(), n));
    conn.shutdown(cosock::shut_wr);
}

// Sends `msg` through an echo on the other side, ends the stream and returns
// what came back.
task<std::string> send_and_collect(cosock::socket& c, std::string msg) {
    co_await c.sendall(msg);
    c.shutdown(cosock::shut_wr);
    std::string got;
    std::array<char, 256> buf;
    while (std::size_t n = co_await c.recv(buf)) got.append(buf.data(), n);
    co_return got;
}

// One echo exchange over an existing connection: → what the client got back.
[[maybe_unused]] task<std::string> echo_exchange(tcp_connection& conn, std::string msg) {
    auto [got, done] = co_await cosock::when_all(send_and_collect(conn.client, std::move(msg)), echo(conn.server));
    co_return got;
}

std::uint64_t fnv1a(const char* p, std::size_t n, std::uint64_t h = 0xcbf29ce484222325ULL) {
    for (std::size_t i = 0; i < n; ++i) h = (h ^ std::uint8_t(p[i])) * 0x100000001b3ULL;
    return h;
}

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = char((i * 2654435761u) >> 13);
    return s;
}

} // namespace

#if !COSOCK_WINDOWS // windows: wine closes a socket with SO_LINGER 0 gracefully: the peer reads an end, no reset
// 1. A connection reset under a waiting operation.

namespace {
enum class phase { not_started, waiting, returned };

// → the errno the recv fails with (0: it returned, e.g. end of stream).
task<int> recv_error(cosock::socket& c, phase& at) {
    at = phase::waiting;
    int err = co_await error_in([](cosock::socket& c) -> task<> {
        std::array<char, 64> buf;
        co_await c.recv(buf);
    }(c));
    at = phase::returned;
    co_return err;
}

task<int> sendall_error(cosock::socket& c, std::string_view data, phase& at) {
    at = phase::waiting;
    int err = co_await error_in(
        [](cosock::socket& c, std::string_view data) -> task<> { co_await c.sendall(data); }(c, data));
    at = phase::returned;
    co_return err;
}

// Resets `peer` once the operation of the other task waits in the backend
// (after one loop turn: on io_uring, submitted to the kernel).
task<> reset_while_waiting(cosock::scheduler& s, cosock::socket& peer, const phase& at, bool& was_waiting) {
    co_await s.yield();
    was_waiting = at == phase::waiting;
    reset(peer);
}
} // namespace

BACKEND_TEST("faults: a recv waiting when the peer resets fails with ECONNRESET; other connections carry on") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    int err = -1;
    bool was_waiting = false;
    std::string after;
    s.run([&]() -> task<> {
        auto victim = co_await connect_to(s, srv);
        auto other = co_await connect_to(s, srv);
        phase at = phase::not_started;
        auto [e, done] = co_await cosock::when_all(recv_error(victim.client, at),
                                                   reset_while_waiting(s, victim.server, at, was_waiting));
        err = e;
        after = co_await echo_exchange(other, "after the reset");
    }());
    CHECK(was_waiting);
    CHECK(err == ECONNRESET);
    CHECK(after == "after the reset");
}

// The kernel reports a reset once, as ECONNRESET, to the first call that looks
// (here the waiting sendall; a recv would take it if one looked first); after
// it the connection is closed for writing and every send is EPIPE.
BACKEND_TEST("faults: a sendall waiting on a full buffer when the peer resets fails with ECONNRESET, then EPIPE") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    const std::string big(32u << 20, 'x'); // far more than the peer, which never reads, can buffer
    int err = -1, next = -1;
    bool was_waiting = false;
    std::string after;
    s.run([&]() -> task<> {
        auto victim = co_await connect_to(s, srv);
        auto other = co_await connect_to(s, srv);
        phase at = phase::not_started;
        auto [e, done] = co_await cosock::when_all(sendall_error(victim.client, big, at),
                                                   reset_while_waiting(s, victim.server, at, was_waiting));
        err = e;
        next = co_await error_in(
            [](cosock::socket& c) -> task<> { co_await c.send(std::string_view("x")); }(victim.client));
        after = co_await echo_exchange(other, "after the reset");
    }());
    CHECK(was_waiting);
    CHECK(err == ECONNRESET);
    CHECK(next == EPIPE);
    CHECK(after == "after the reset");
}

#endif

#if !COSOCK_WINDOWS // windows: POSIX signals (SIGPIPE)
// 2. Writing into a closed connection: EPIPE, never SIGPIPE, on every path
// that writes (send, sendall, sendto, a file object's write, flush and close),
// whether the write finds the connection closed or waits when it closes.

namespace {
std::atomic<int> sigpipes{0};
extern "C" void count_sigpipe(int) { sigpipes.fetch_add(1, std::memory_order_relaxed); }

// While it lives, SIGPIPE is counted instead of ending the process, and it is
// unblocked on this thread so that a raised one cannot stay pending unseen.
struct sigpipe_counter {
    struct sigaction old {};
    sigset_t old_mask;
    sigpipe_counter() {
        struct sigaction sa {};
        sa.sa_handler = count_sigpipe;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGPIPE, &sa, &old);
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        ::pthread_sigmask(SIG_UNBLOCK, &pipe, &old_mask);
        sigpipes = 0;
    }
    ~sigpipe_counter() {
        ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
        ::sigaction(SIGPIPE, &old, nullptr);
    }
    int count() const { return sigpipes.load(); }
};

// Each path writes `data` once; `peer` is for sendto.
using write_fn = task<> (*)(cosock::socket&, std::string_view data, const cosock::address& peer);
struct write_path {
    const char* name;
    write_fn write;
    bool needs_tcp; // sendto with an address is EISCONN on a connected Unix stream socket
};
const write_path write_paths[] = {
    {"send", [](cosock::socket& s, std::string_view d, const cosock::address&) -> task<> { co_await s.send(d); },
     false},
    {"sendall", [](cosock::socket& s, std::string_view d, const cosock::address&) -> task<> { co_await s.sendall(d); },
     false},
    {"sendto",
     [](cosock::socket& s, std::string_view d, const cosock::address& to) -> task<> { co_await s.sendto(d, to); },
     true},
    {"file write, unbuffered",
     [](cosock::socket& s, std::string_view d, const cosock::address&) -> task<> {
         auto f = s.makefile("wb", 0);
         co_await f.write(d);
     },
     false},
    {"file flush",
     [](cosock::socket& s, std::string_view d, const cosock::address&) -> task<> {
         auto f = s.makefile("wb");
         co_await f.write(d);
         co_await f.flush(); // and on failure the destructor tries once more
     },
     false},
    {"file close",
     [](cosock::socket& s, std::string_view d, const cosock::address&) -> task<> {
         auto f = s.makefile("wb");
         co_await f.write(d);
         co_await f.close();
     },
     false},
};

struct write_outcome {
    std::string what; // situation and path
    int error;
};

// Writes `data` again and again until a write fails (bounded): → its errno,
// or 0 if none did.
task<int> write_until_error(const write_path& path, cosock::socket& s, std::string_view data,
                            const cosock::address& peer) {
    for (int i = 0; i < 10'000; ++i)
        if (int err = co_await error_in(path.write(s, data, peer))) co_return err;
    co_return 0;
}

task<> close_after_a_turn(cosock::scheduler& s, cosock::socket& peer) {
    co_await s.yield(); // the waiting write is in the kernel (io_uring) or registered
    peer.close();
}

task<> shut_down_now(cosock::socket& sock) {
    sock.shutdown(cosock::shut_wr);
    co_return;
}

task<std::vector<write_outcome>> write_into_closed_connections(cosock::scheduler& s) {
    std::vector<write_outcome> out;
    auto srv = listener(s);
    const std::string chunk(64 * 1024, 'x');
    for (const write_path& path : write_paths) {
        std::string name = path.name;
        if (!path.needs_tcp) {
            // The peer closed before the write: it fails at once.
            auto [a, b] = cosock::socketpair(s);
            b.close();
            int err = co_await error_in(path.write(a, "data", {}));
            out.push_back({"unix, peer closed before: " + name, err});

            // The write waits on a full buffer when the peer closes.
            auto [c, d] = cosock::socketpair(s);
            auto [waited, done] =
                co_await cosock::when_all(write_until_error(path, c, chunk, {}), close_after_a_turn(s, d));
            out.push_back({"unix, peer closes while the write waits: " + name, waited});
        }
        {
            // The peer closed before the write. TCP takes the first write
            // after a FIN (the peer answers it with RST); once the RST is in,
            // every write fails.
            auto conn = co_await connect_to(s, srv);
            cosock::address peer = conn.client.getpeername();
            conn.server.close();
            std::array<char, 1> buf;
            CHECK(co_await conn.client.recv(buf) == 0);
            CHECK(::send(conn.client.fileno(), "x", 1, MSG_NOSIGNAL) == 1);
            pollfd p{conn.client.fileno(), 0, 0}; // waits for POLLHUP: the reset is in
            CHECK(::poll(&p, 1, 10'000) == 1);
            int err = co_await error_in(path.write(conn.client, "data", peer));
            out.push_back({"tcp, peer closed before: " + name, err});
        }
        {
            // The writes go on until one waits (the kernel's buffers are full,
            // or the task has used its turn), and right then the connection is
            // shut down for writing: the waiting write fails through the
            // backend (on io_uring, as its own SQE).
            auto conn = co_await connect_to(s, srv);
            cosock::address peer = conn.client.getpeername();
            auto [err, done] = co_await cosock::when_all(write_until_error(path, conn.client, chunk, peer),
                                                         shut_down_now(conn.client));
            out.push_back({"tcp, shut down while the write waits: " + name, err});
        }
    }
    co_return out;
}
} // namespace

BACKEND_TEST("faults: writing into a closed connection is EPIPE on every write path, and never raises SIGPIPE") {
    sigpipe_counter sigpipe;
    cosock::scheduler s{B::value};
    auto outcomes = s.run(write_into_closed_connections(s));
    CHECK(outcomes.size() == 5 * 2 + 6 * 2);
    for (const auto& o : outcomes) {
        CAPTURE(o.what);
        CHECK(o.error == EPIPE);
    }
    CHECK(sigpipe.count() == 0);
}

#endif

#if !COSOCK_WINDOWS // windows: no descriptor limit (rlimit) to run out of
// 3. accept with no descriptor left. accept raises EMFILE (as Python does) and
// leaves the connection queued in the kernel; a server loop that catches it
// and waits before trying again does not spin, and accepts the connection
// once a descriptor is free.

namespace {
// What the child process reports through its pipe.
struct starved_report {
    int stage = 0;             // how far it got: 4 means all of it
    int emfile = 0;            // accept failures with EMFILE
    int other_error = 0;       // the errno of any other failure, or 0
    int received = 0;          // bytes read from the connection accepted at last
    long cpu_us = 0;           // CPU time of the process (all threads) while starved
    long wall_us = 0;          // wall-clock time while starved
    bool names_accept = false; // every failure's message names the operation
};

long cpu_time_us() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1'000'000L + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

constexpr auto starved_for = 300ms; // how long the descriptor table stays full
constexpr auto backoff = 10ms;      // what the server loop waits after a failed accept

// The server loop the accept documentation recommends: catch, wait, retry.
// The failures are looked at once the table has room again: a sanitizer
// checking a call on the exception needs descriptors of its own.
task<> patient_server(cosock::socket& srv, starved_report& r, std::vector<std::exception_ptr>& failures) {
    for (int i = 0; i < 1000; ++i) {
        try {
            auto [conn, peer] = co_await srv.accept();
            r.stage = 3;
            std::array<char, 8> buf;
            r.received = int(co_await conn.recv(buf));
            if (r.received == 4) r.stage = 4;
            co_return;
        } catch (const std::system_error&) {
            failures.push_back(std::current_exception());
        }
        co_await cosock::sleep_for(backoff);
    }
}

task<> patient_client(cosock::socket& c, cosock::address to) {
    co_await c.connect(to); // the kernel completes the handshake; accept is not needed for that
    co_await c.sendall(std::string_view("ping"));
}

// Keeps the table full for `starved_for`, measuring the process's CPU time
// meanwhile, then frees one descriptor.
task<> free_one_later(std::vector<int>& spare, starved_report& r) {
    auto start = std::chrono::steady_clock::now();
    long cpu_start = cpu_time_us();
    r.stage = 2;
    co_await cosock::sleep_for(starved_for);
    r.cpu_us = cpu_time_us() - cpu_start;
    r.wall_us =
        long(std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count());
    ::close(spare.back());
    spare.pop_back();
}

// Runs in a child process, so the test binary's own limit is untouched.
starved_report starve_accept(cosock::backend b) {
    starved_report r;
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = 256;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return r;
    cosock::scheduler s{b};
    auto srv = listener(s);
    cosock::socket client{s};
    std::vector<int> spare;
    for (int i = 0; i < 1000; ++i) { // fill the descriptor table
        int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
        spare.push_back(fd);
    }
    if (::open("/dev/null", O_RDONLY | O_CLOEXEC) >= 0 || errno != EMFILE) return r;
    r.stage = 1;
    std::vector<std::exception_ptr> failures;
    s.run(cosock::when_all(patient_client(client, srv.getsockname()), patient_server(srv, r, failures),
                           free_one_later(spare, r)));
    for (int fd : spare) ::close(fd);
    r.names_accept = !failures.empty();
    for (const auto& failure : failures) {
        try {
            std::rethrow_exception(failure);
        } catch (const std::system_error& e) {
            if (e.code().value() == EMFILE)
                ++r.emfile;
            else
                r.other_error = e.code().value();
            r.names_accept = r.names_accept && std::string(e.what()).find("accept") != std::string::npos;
        }
    }
    return r;
}
} // namespace

BACKEND_TEST("faults: accept out of descriptors raises EMFILE without spinning, and accepts once one is free") {
    SKIP_UNDER_VALGRIND("it lowers the descriptor limit, which valgrind emulates");
    int report_pipe[2];
    REQUIRE(::pipe2(report_pipe, O_CLOEXEC) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::alarm(120); // a library spinning inside accept would otherwise never let the child end
        starved_report r;
        try {
            r = starve_accept(B::value);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "starved child: %s\n", e.what());
            r.other_error = -1;
        } catch (...) {
            r.other_error = -1;
        }
        (void)!::write(report_pipe[1], &r, sizeof r);
        ::_exit(0);
    }
    ::close(report_pipe[1]);
    starved_report r;
    ssize_t got = ::read(report_pipe[0], &r, sizeof r);
    ::close(report_pipe[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status)); // not killed: no crash
    REQUIRE(got == ssize_t(sizeof r));
    CHECK(r.other_error == 0);
    CHECK(r.stage == 4);
    CHECK(r.emfile >= 1); // every failure was EMFILE (other_error == 0)
    CHECK(r.names_accept);
    CHECK(r.received == 4);
    // Generous: the loop sleeps between tries; a spinning one would use all of it.
    CHECK(r.wall_us >= std::chrono::microseconds(starved_for).count());
    CHECK(r.cpu_us < r.wall_us * 3 / 10);
    MESSAGE("starved for " << r.wall_us / 1000 << " ms: " << r.emfile << " accepts failed with EMFILE, using "
                           << r.cpu_us / 1000 << " ms of CPU");
}

#endif

// 4. Half-close: after shutdown(SHUT_WR) the peer reads end of stream, and
// the connection still carries everything the other way.

namespace {
struct received {
    std::size_t size = 0;
    std::uint64_t sum = fnv1a(nullptr, 0);
    int ends = 0; // recv calls that returned 0
};

task<> receive_all(cosock::socket& c, received& r, int ends = 1) {
    std::vector<char> buf(64 * 1024);
    while (r.ends < ends) {
        std::size_t n = co_await c.recv(buf);
        r.size += n;
        r.sum = fnv1a(buf.data(), n, r.sum);
        r.ends += n == 0;
    }
}

task<> half_closing_client(cosock::socket& c, const std::string& request, received& reply, int& late_send) {
    co_await c.sendall(request);
    c.shutdown(cosock::shut_wr);
    late_send = co_await error_in([](cosock::socket& c) -> task<> { co_await c.send(std::string_view("late")); }(c));
    co_await receive_all(c, reply);
}

// Reads the request to its end, twice (end of stream stays so), then replies.
task<> replying_server(cosock::socket& conn, received& request, const std::string& reply, std::size_t& sent) {
    co_await receive_all(conn, request, 2);
    sent = co_await conn.sendall(reply);
    conn.close();
}
} // namespace

BACKEND_TEST("faults: after shutdown(SHUT_WR) the peer reads EOF, and its reply still arrives in full") {
    cosock::scheduler s{B::value};
    auto srv = listener(s);
    const std::string request = pattern(1u << 20);
    const std::string reply = pattern(8u << 20); // more than the buffers hold: it flows as the client reads
    received at_server, at_client;
    int late_send = -1;
    std::size_t sent = 0;
    s.run([&]() -> task<> {
        auto conn = co_await connect_to(s, srv);
        for (auto* end : {&conn.client, &conn.server}) end->settimeout(60s); // failure limits, not expected
        co_await cosock::when_all(half_closing_client(conn.client, request, at_client, late_send),
                                  replying_server(conn.server, at_server, reply, sent));
    }());
    CHECK(at_server.size == request.size());
    CHECK(at_server.sum == fnv1a(request.data(), request.size()));
    CHECK(at_server.ends == 2);
    CHECK(late_send == EPIPE); // the half-closed side can no longer send
    CHECK(sent == reply.size());
    CHECK(at_client.size == reply.size());
    CHECK(at_client.sum == fnv1a(reply.data(), reply.size()));
    CHECK(at_client.ends == 1);
}

// 5. A slow reader and a reader that stopped. sendall keeps no copy of the
// caller's bytes: it allocates nothing however many it sends, and it waits on
// a reader that stopped only until its timeout.

namespace {
// A TCP connection whose kernel buffers are a few KiB, so that a sendall of
// some KiB already waits for the reader.
task<tcp_connection> small_buffered_connection(cosock::scheduler& s) {
    cosock::socket srv{s};
    srv.setsockopt(cosock::sol_socket, cosock::so_rcvbuf, 4096); // inherited by the accepted socket
    srv.bind({"127.0.0.1", 0});
    srv.listen();
    cosock::socket c{s};
    c.setsockopt(cosock::sol_socket, cosock::so_sndbuf, 4096);
    co_await c.connect(srv.getsockname());
    auto [conn, peer] = co_await srv.accept();
    co_return tcp_connection{std::move(c), std::move(conn)};
}

struct slow_round {
    std::size_t sent = 0;
    std::size_t allocations = 0;  // during the sendall, by anything on this thread
    std::size_t read_by_then = 0; // bytes the reader had taken when sendall returned
};

task<> measured_sendall(cosock::socket& c, std::string_view data, const std::string& got, slow_round& r) {
    std::size_t before = allocations_so_far();
    r.sent = co_await c.sendall(data);
    r.allocations = allocations_so_far() - before;
    r.read_by_then = got.size();
}

// Reads `n` bytes one at a time, letting every other task run between two.
task<> one_byte_at_a_time(cosock::scheduler& s, cosock::socket& c, std::string& got, std::size_t n) {
    std::array<char, 1> byte;
    while (got.size() < n) { // no co_await right of && (see GCC before 13 in task.hpp)
        if (co_await c.recv(byte) != 1) break;
        got += byte[0];
        co_await s.yield();
    }
}
} // namespace

BACKEND_TEST("faults: sendall to a reader taking one byte at a time completes, allocating nothing") {
    SKIP_UNLESS_ALLOCATIONS_COUNTED();
    cosock::scheduler s{B::value};
    const std::string data = pattern(64 * 1024);
    std::vector<slow_round> rounds(2);
    std::vector<std::string> got(2);
    s.run([&]() -> task<> {
        auto conn = co_await small_buffered_connection(s);
        for (auto* end : {&conn.client, &conn.server}) end->settimeout(60s); // failure limits, not expected
        // Both ends' deadlines can be in the timer heap at once: let its
        // vector grow to that here, as the round that warms up may not.
        std::vector<task<>> sleepers;
        for (int i = 0; i < 4; ++i) sleepers.push_back([]() -> task<> { co_await cosock::sleep_for(0ms); }());
        co_await cosock::when_all(std::move(sleepers));
        for (std::size_t i = 0; i < rounds.size(); ++i) { // the first round warms up the backend's tables
            got[i].reserve(data.size());
            co_await cosock::when_all(measured_sendall(conn.client, data, got[i], rounds[i]),
                                      one_byte_at_a_time(s, conn.server, got[i], data.size()));
        }
    }());
    for (std::size_t i = 0; i < rounds.size(); ++i) {
        CAPTURE(i);
        CHECK(rounds[i].sent == data.size());
        CHECK(got[i] == data);
        // It waited on the reader: the kernel's buffers hold a few KiB of the 64.
        CHECK(rounds[i].read_by_then >= data.size() / 2);
    }
    CHECK(rounds[1].allocations == 0);
    MESSAGE("sendall returned when the reader had taken " << rounds[1].read_by_then << " of " << data.size()
                                                          << " bytes");
}

namespace {
struct stopped_round {
    bool timed_out = false;         // a cosock::timeout_error, code errc::timed_out
    std::size_t while_waiting = 99; // allocations from the start of sendall until it waited
    std::size_t in_all = 0;         // allocations from the start of sendall to the caught error
};

task<> sendall_until_timeout(cosock::socket& c, std::string_view data, std::size_t& started_at, stopped_round& r) {
    started_at = allocations_so_far();
    try {
        co_await c.sendall(data);
    } catch (const cosock::timeout_error& e) {
        r.timed_out = e.code() == std::errc::timed_out;
    }
    r.in_all = allocations_so_far() - started_at;
}

// Runs once the sendall waits.
task<> count_while_waiting(const std::size_t& started_at, stopped_round& r) {
    r.while_waiting = allocations_so_far() - started_at;
    co_return;
}
} // namespace

BACKEND_TEST("faults: sendall to a reader that stopped raises timeout_error, holding no copy of the data") {
    SKIP_UNLESS_ALLOCATIONS_COUNTED();
    cosock::scheduler s{B::value};
    const std::string small(1u << 20, 'x'), big(64u << 20, 'x');
    std::vector<stopped_round> rounds(3);
    s.run([&]() -> task<> {
        auto conn = co_await small_buffered_connection(s); // conn.server never reads
        conn.client.settimeout(100ms);
        std::string_view sizes[] = {small, small, big}; // the first round warms up
        for (std::size_t i = 0; i < rounds.size(); ++i) {
            std::size_t started_at = 0;
            co_await cosock::when_all(sendall_until_timeout(conn.client, sizes[i], started_at, rounds[i]),
                                      count_while_waiting(started_at, rounds[i]));
        }
    }());
    for (const auto& r : rounds) CHECK(r.timed_out);
    CHECK(rounds[1].while_waiting == 0);
    CHECK(rounds[2].while_waiting == 0);
    CHECK(rounds[2].in_all == rounds[1].in_all); // 64 MiB cost what 1 MiB did: the error's message
}

// Many connections at once need many descriptors: the soft limit is raised to
// the hard one for the test, and the test scales down, saying so, when even
// that is too low, or when select's FD_SETSIZE bounds the descriptors.

namespace {
#if COSOCK_WINDOWS
// The process's handles, its sockets among them.
std::size_t open_descriptors() {
    DWORD n = 0;
    ::GetProcessHandleCount(::GetCurrentProcess(), &n);
    return n;
}

struct raised_nofile_limit { // Windows has no descriptor limit to raise
    raised_nofile_limit() {}
};

// How many connections of `per_connection` sockets fit beside `reserve`
// others, at most `wanted`: select's set holds FD_SETSIZE sockets, and under
// wine each wait over thousands of sockets costs milliseconds, so at most 1000.
int connections_that_fit(cosock::backend b, int wanted, int per_connection, int reserve,
                         const char* what = "connections") {
    int fit = std::min(wanted, 1000);
    std::string why = "at most 1000 on Windows";
    if (b == cosock::backend::select && (FD_SETSIZE - reserve) / per_connection < fit) {
        fit = (FD_SETSIZE - reserve) / per_connection;
        why = "as select's FD_SETSIZE allows";
    }
    if (fit < wanted)
        MESSAGE("SCALED DOWN: " << fit << " " << std::string(what) << " instead of " << wanted << ", " << why);
    return fit;
}
#else
std::size_t open_descriptors() {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

int highest_open_descriptor() {
    int high = -1;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
        high = std::max(high, std::stoi(entry.path().filename().string()));
    return high;
}

struct raised_nofile_limit {
    rlimit saved{};
    raised_nofile_limit() {
        ::getrlimit(RLIMIT_NOFILE, &saved);
        rlimit raised = saved;
        raised.rlim_cur = raised.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &raised);
    }
    ~raised_nofile_limit() { ::setrlimit(RLIMIT_NOFILE, &saved); }
    raised_nofile_limit(const raised_nofile_limit&) = delete;
};

// How many connections of `per_connection` descriptors fit beside `reserve`
// others, at most `wanted`. `what` names them in the message.
int connections_that_fit(cosock::backend b, int wanted, int per_connection, int reserve,
                         const char* what = "connections") {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    long room = lim.rlim_cur == RLIM_INFINITY ? long(wanted) * per_connection + reserve : long(lim.rlim_cur);
    room -= long(open_descriptors()) + reserve;
    std::string why = "the RLIMIT_NOFILE hard limit";
    if (b == cosock::backend::select && FD_SETSIZE - 1 - highest_open_descriptor() - reserve < room) {
        room = FD_SETSIZE - 1 - highest_open_descriptor() - reserve; // descriptors are given lowest first
        why = "select's FD_SETSIZE";
    }
    int fit = int(std::max(0L, room / per_connection));
    if (fit >= wanted) return wanted;
    MESSAGE("SCALED DOWN: " << fit << " " << std::string(what) << " instead of " << wanted << ", as " << why
                            << " allows");
    return fit;
}
#endif
} // namespace

// 6. The scheduler destroyed with thousands of operations in flight: every
// frame goes, every descriptor closes, and no kernel request outlives its
// buffer (ASan and the descriptor count are the judges).

namespace {
struct census {
    int alive = 0;    // frames not destroyed yet
    int waiting = 0;  // tasks that reached their last wait
    int finished = 0; // tasks that got past it (none may)
};

// Counts a frame from its start to its destruction.
struct in_flight {
    census& c;
    explicit in_flight(census& cen) : c(cen) { ++c.alive; }
    ~in_flight() { --c.alive; }
    in_flight(const in_flight&) = delete;
};

task<> waits_in_recv(census& c, cosock::socket sock) {
    in_flight f(c);
    std::array<char, 64> buf;
    ++c.waiting;
    co_await sock.recv(buf);
    ++c.finished;
}

task<> waits_in_timed_recv(census& c, cosock::socket sock) { // a deadline timer too
    in_flight f(c);
    sock.settimeout(1h);
    std::array<char, 64> buf;
    ++c.waiting;
    co_await sock.recv(buf);
    ++c.finished;
}

task<> waits_in_with_timeout(census& c, cosock::socket sock) {
    in_flight f(c);
    std::array<char, 64> buf;
    ++c.waiting;
    co_await cosock::with_timeout(sock.recv(buf), 1h);
    ++c.finished;
}

task<> waits_in_readline(census& c, cosock::socket sock) {
    in_flight f(c);
    auto file = sock.makefile("rb");
    ++c.waiting;
    co_await file.readline();
    ++c.finished;
}

task<> waits_in_select(census& c, cosock::socket sock) {
    in_flight f(c);
    std::vector<int> readable{sock.fileno()}, none;
    ++c.waiting;
    co_await cosock::select(readable, none, none);
    ++c.finished;
}

task<> waits_in_when_any(census& c, cosock::socket sock) {
    in_flight f(c);
    std::vector<task<>> racers;
    racers.push_back([](cosock::socket& s) -> task<> {
        std::array<char, 64> buf;
        co_await s.recv(buf);
    }(sock));
    racers.push_back([]() -> task<> { co_await cosock::sleep_for(1h); }());
    ++c.waiting;
    co_await cosock::when_any(std::move(racers));
    ++c.finished;
}

task<> waits_in_sleep(census& c) {
    in_flight f(c);
    ++c.waiting;
    co_await cosock::sleep_for(1h);
    ++c.finished;
}

// Keeps `held` (a socket, a listener and its queue) alive while it sleeps.
template <class Held>
task<> holds_while_sleeping(census& c, [[maybe_unused]] Held held) {
    in_flight f(c);
    ++c.waiting;
    co_await cosock::sleep_for(1h);
    ++c.finished;
}

task<> waits_in_sendall(census& c, cosock::socket sock, std::string_view data) {
    in_flight f(c);
    ++c.waiting;
    co_await sock.sendall(data); // the peer never reads: it waits on a full buffer
    ++c.finished;
}

task<> waits_in_accept(census& c, cosock::socket& srv) {
    in_flight f(c);
    ++c.waiting;
    co_await srv.accept();
    ++c.finished;
}

task<> waits_in_connect(census& c, cosock::socket sock, cosock::address to) {
    in_flight f(c);
    ++c.waiting;
    co_await sock.connect(to); // to a listener whose backlog is full: no answer
    ++c.finished;
}

// Sets everything up; returns once every task waits and every request is
// with the backend (with the kernel, on io_uring). → how many tasks wait.
task<int> leave_in_flight(cosock::scheduler& s, census& c, int connections, std::string_view big) {
    int expected = 0;
    auto start = [&](task<> t) {
        s.spawn(std::move(t));
        ++expected;
    };
    // Accepts on a listener that closes before them (its holder is destroyed
    // first: destruction follows the order of spawn) and on one that closes
    // after them.
    for (bool holder_first : {true, false}) {
        auto srv = std::make_unique<cosock::socket>(s);
        srv->bind({"127.0.0.1", 0});
        srv->listen();
        cosock::socket& l = *srv;
        if (holder_first) start(holds_while_sleeping(c, std::move(srv)));
        for (int i = 0; i < 32; ++i) start(waits_in_accept(c, l));
        if (!holder_first) start(holds_while_sleeping(c, std::move(srv)));
    }
    // Connects that get no answer.
    {
        auto srv = std::make_unique<cosock::socket>(s);
        auto queued = std::make_unique<std::vector<cosock::socket>>();
        cosock::address to = co_await unanswered_address(s, *srv, *queued);
        start(holds_while_sleeping(c, std::pair(std::move(srv), std::move(queued))));
        for (int i = 0; i < 8; ++i) start(waits_in_connect(c, cosock::socket{s}, to));
    }
    // Connections, each end waiting in one way or another.
    auto srv = listener(s);
    for (int i = 0; i < connections; ++i) {
        auto [client, server] = co_await connect_to(s, srv);
        switch (i % 10) {
        case 6:
            start(waits_in_timed_recv(c, std::move(client)));
            break;
        case 7:
            start(waits_in_with_timeout(c, std::move(client)));
            break;
        case 8:
            start(waits_in_select(c, std::move(client)));
            break;
        case 9:
            start(waits_in_when_any(c, std::move(client)));
            break;
        default:
            start(waits_in_recv(c, std::move(client)));
        }
        switch (i % 10) {
        case 7:
            start(waits_in_readline(c, std::move(server)));
            break;
        case 8:
            start(holds_while_sleeping(c, std::move(server)));
            break;
        default:
            start(waits_in_recv(c, std::move(server)));
        }
    }
    // Sends waiting on full buffers: the peers never read.
    for (int i = 0; i < 16; ++i) {
        auto [client, server] = co_await connect_to(s, srv);
        start(waits_in_sendall(c, std::move(client), big));
        start(holds_while_sleeping(c, std::move(server)));
    }
    for (int i = 0; i < 1000; ++i) start(waits_in_sleep(c));
    for (int i = 0; i < 1000 && c.waiting < expected; ++i) co_await s.yield();
    co_await s.yield(); // the last requests go to the kernel (io_uring)
    co_await s.yield();
    co_return expected;
}
} // namespace

BACKEND_TEST("faults: destroying a scheduler with thousands of operations in flight frees everything") {
    raised_nofile_limit limit;
    const std::string big(16u << 20, 'x'); // outlives the scheduler: the kernel may read it until cancelled
    const int connections = connections_that_fit(B::value, 3000, 2, 100);
    const std::size_t descriptors_before = open_descriptors();
    census c;
    auto s = std::make_unique<cosock::scheduler>(B::value);
    const int expected = s->run(leave_in_flight(*s, c, connections, big));
    CHECK(expected > 2 * connections + 1000);
    CHECK(c.waiting == expected);
    CHECK(c.alive == expected);
    CHECK(c.finished == 0);
    CHECK(s->spawned_count() == std::size_t(expected));
    auto start = std::chrono::steady_clock::now();
    s.reset();
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    CHECK(c.alive == 0);
    CHECK(c.finished == 0);
    CHECK(open_descriptors() == descriptors_before);
    MESSAGE(expected << " waiting tasks (" << connections << " connections) destroyed with their scheduler in "
                     << took.count() << " ms");
}

// 7. An exception in one connection's handler ends that connection only.

namespace {
constexpr int failing_client = 500;

std::string message_of(int client) { return "client " + std::to_string(client); }

// Reads the request to its end and sends it back, except that the handler of
// failing_client's request throws.
task<> handler(cosock::socket conn) {
    std::string request;
    std::array<char, 64> buf;
    while (std::size_t n = co_await conn.recv(buf)) request.append(buf.data(), n);
    if (request == message_of(failing_client)) throw std::runtime_error("handler for " + request + " failed");
    co_await conn.sendall(request);
}

task<> accept_loop(cosock::socket srv, int connections) {
    for (int i = 0; i < connections; ++i) {
        auto [conn, peer] = co_await srv.accept();
        srv.get_scheduler()->spawn(handler(std::move(conn)));
    }
}

// Client `i`; when done, it starts client i + width, so that at most `width`
// connections are open at once.
task<> client(cosock::scheduler& s, cosock::address to, int i, int width, std::vector<std::string>& replies) {
    {
        cosock::socket c{s};
        c.settimeout(60s); // a failure limit: a connection left open would otherwise hang the test
        co_await c.connect(to);
        co_await c.sendall(message_of(i));
        c.shutdown(cosock::shut_wr);
        std::string reply;
        std::array<char, 64> buf;
        while (std::size_t n = co_await c.recv(buf)) reply.append(buf.data(), n);
        replies[std::size_t(i)] = std::move(reply);
    }
    if (i + width < int(replies.size())) s.spawn(client(s, to, i + width, width, replies));
}
} // namespace

BACKEND_TEST("faults: an exception in one of 1000 connection handlers reaches the handler once; 999 echoes finish") {
    raised_nofile_limit limit;
    constexpr int total = 1000;
    SKIP_UNDER_VALGRIND("valgrind's own descriptors leave too little room under its emulated limit");
    const int width = connections_that_fit(B::value, total, 2, 64, "connections at once");
    REQUIRE(width > 0);
    cosock::scheduler s{B::value};
    std::vector<std::string> reported;
    s.set_exception_handler([&](std::exception_ptr e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            reported.emplace_back(ex.what());
        }
    });
    auto srv = listener(s);
    cosock::address where = srv.getsockname();
    std::vector<std::string> replies(total, "(none)");
    s.spawn(accept_loop(std::move(srv), total));
    for (int i = 0; i < width; ++i) s.spawn(client(s, where, i, width, replies));
    s.run();
    REQUIRE(reported.size() == 1); // and so no client failed either
    CHECK(reported[0] == "handler for client 500 failed");
    int echoed = 0;
    for (int i = 0; i < total; ++i) echoed += i != failing_client && replies[std::size_t(i)] == message_of(i);
    CHECK(echoed == total - 1);
    CHECK(replies[failing_client] == ""); // its connection closed with the handler's frame: end of stream
    CHECK(s.spawned_count() == 0);
}
