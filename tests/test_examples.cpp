// Smoke tests of the example programs: each server is started as its own
// process on a loopback port the kernel picks, driven by a real client (the
// example clients, or curl), then stopped. Every one runs on every backend.
#include "backends.hpp"
#include "child_process.hpp"
#include "example_clients.hpp"

#include <filesystem>

#include <string>

BACKEND_TEST("examples: echo runs its clients and serves") {
    std::string echo = need_example("echo");
    if (echo.empty()) return;
    child_process demo({echo, "--backend", backend_name(B::value), "--clients", "5"});
    std::string out = demo.read_all();
    CHECK(demo.wait() == 0);
    CHECK(out.find("5 of 5 clients got their message back") != std::string::npos);

    child_process bad({echo, "--clients", "many"}, true);
    std::string complaint = bad.read_all();
    CHECK(bad.wait() == 2);
    CHECK(complaint.find("'many'") != std::string::npos);
}

namespace {

/// What a server prints first.
std::string listening(const std::string& where, cosock::backend b) {
    return "listening on " + where + " (" + backend_name(b) + ")";
}

/// Runs a program to its end; returns {exit status, everything it printed}.
std::pair<int, std::string> run_to_end(std::vector<std::string> argv, bool merge_stderr = false) {
    child_process p(std::move(argv), merge_stderr);
    std::string out = p.read_all();
    return {p.wait(), out};
}

} // namespace

BACKEND_TEST("examples: echo_server echoes for echo_client and outlives a client that resets") {
    std::string server_path = need_example("echo_server"), client = need_example("echo_client");
    if (server_path.empty() || client.empty()) return;
    const std::string backend = backend_name(B::value);
    child_process server({server_path, "--backend", backend, "--port", "0"}, true);
    auto first = server.read_line();
    REQUIRE(first);
    CHECK(*first == listening("127.0.0.1:" + std::to_string(port_in(*first)), B::value));
    const std::string port = std::to_string(port_in(*first));

    auto [status, out] = run_to_end({client, "--backend", backend, "--port", port, "hello", "two words"});
    CHECK(status == 0);
    CHECK(out == "hello\ntwo words\n");
    // Bigger than both sockets' buffers together: only works if the client reads while it sends.
    std::tie(status, out) =
        run_to_end({client, "--backend", backend, "--port", port, "--count", "3", "--size", "8000000"});
    CHECK(status == 0);
    CHECK(out == "3 messages of 8000000 bytes echoed correctly\n");

    // A client that gets its echo, then resets the connection (SO_LINGER 0):
    // the server's next recv fails, which ends only that connection's task.
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s, int port) -> cosock::task<> {
        cosock::socket c{s};
        co_await c.connect({"127.0.0.1", port});
        co_await c.sendall(std::string_view("x"));
        char echo[1];
        CHECK(co_await c.recv(echo) == 1);
        ::linger hard{1, 0};
        c.setsockopt(cosock::sol_socket, cosock::so_linger, std::as_bytes(std::span(&hard, 1)));
    }(s, port_in(*first)));
    auto complaint = server.read_line();
    REQUIRE(complaint);
    CHECK(complaint->starts_with("echo_server: 127.0.0.1:"));
    CHECK(complaint->ends_with("Connection reset by peer"));
    std::tie(status, out) = run_to_end({client, "--backend", backend, "--port", port, "still there?"});
    CHECK(status == 0);
    CHECK(out == "still there?\n");
    CHECK(server.stop() == 128 + SIGTERM);

    std::tie(status, out) = run_to_end({server_path, "--port", "70000"}, true);
    CHECK(status == 2);
    CHECK(out.find("'70000'") != std::string::npos);
    std::tie(status, out) = run_to_end({client, "--count", "3", "--size", "lots"}, true);
    CHECK(status == 2);
    CHECK(out.find("'lots'") != std::string::npos);
}

BACKEND_TEST("examples: udp_echo echoes datagrams and its client gives up after its retries") {
    std::string udp = need_example("udp_echo");
    if (udp.empty()) return;
    const std::string backend = backend_name(B::value);
    child_process server({udp, "--backend", backend, "--port", "0"});
    auto first = server.read_line();
    REQUIRE(first);
    const std::string where = "127.0.0.1:" + std::to_string(port_in(*first));
    CHECK(*first == listening(where, B::value));

    // Loopback does not drop datagrams, but a loaded machine may be slow: the
    // timeout is a bound on failure, not a pace.
    auto [status, out] = run_to_end({udp, "--backend", backend, "--client", where, "--timeout", "10", "one", "two"});
    CHECK(status == 0);
    CHECK(out == "one\ntwo\n");

    // A bound socket that never answers: every try times out.
    cosock::scheduler s{B::value};
    cosock::socket silent{s, cosock::af_inet, cosock::sock_dgram};
    silent.bind({"127.0.0.1", 0});
    std::tie(status, out) = run_to_end({udp, "--backend", backend, "--client", silent.getsockname().to_string(),
                                        "--timeout", "0.2", "--retries", "1", "lost"},
                                       true);
    CHECK(status == 1);
    CHECK(out.find("sending again (1 of 1)") != std::string::npos);
    CHECK(out.find("no echo of 'lost' after 2 tries") != std::string::npos);
    CHECK(server.stop() == 128 + SIGTERM);

    std::tie(status, out) = run_to_end({udp, "--client", "localhost:7"}, true);
    CHECK(status == 2);
    CHECK(out.find("\"localhost\"") != std::string::npos);
}

BACKEND_TEST("examples: unix_echo serves on a path and an abstract name, and cleans up its socket file") {
    std::string unix_echo = need_example("unix_echo");
    if (unix_echo.empty()) return;
    const std::string backend = backend_name(B::value);
    temp_dir dir;
    const std::string path = dir / "echo.sock";
    {
        // A socket file left behind by a server that is gone: bound, then closed.
        cosock::scheduler s{B::value};
        cosock::socket gone{s, cosock::af_unix};
        gone.bind(cosock::address::unix_path(path));
    }
    REQUIRE(std::filesystem::exists(path));
    child_process server({unix_echo, "--backend", backend, "--path", path}, true);
    CHECK(server.read_line() == "unix_echo: removing stale socket file " + path);
    CHECK(server.read_line() == listening(path, B::value));
    auto [status, out] = run_to_end({unix_echo, "--backend", backend, "--client", path, "a", "b c"});
    CHECK(status == 0);
    CHECK(out == "a\nb c\n");
    // A second server must not take the path from a live one.
    std::tie(status, out) = run_to_end({unix_echo, "--backend", backend, "--path", path}, true);
    CHECK(status == 1);
    CHECK(out == "unix_echo: a server is already listening on " + path + "\n");
    CHECK(server.stop() == 0);                  // SIGTERM stops it cleanly...
    CHECK_FALSE(std::filesystem::exists(path)); // ...and its socket file goes with it

    const std::string name = "cosock-example-" + std::to_string(::getpid()) + "-" + backend;
    child_process abstract({unix_echo, "--backend", backend, "--abstract", name}, true);
    CHECK(abstract.read_line() == listening("@" + name, B::value));
    std::tie(status, out) = run_to_end({unix_echo, "--backend", backend, "--client", "@" + name, "hi"});
    CHECK(status == 0);
    CHECK(out == "hi\n");
    CHECK(abstract.stop() == 0);

    std::tie(status, out) = run_to_end({unix_echo, "--path", path, "--abstract", name}, true);
    CHECK(status == 2);
    CHECK(out.find("give one of --path, --abstract or --client") != std::string::npos);
    std::tie(status, out) = run_to_end({unix_echo, "--client", "@" + std::string(200, 'n')}, true);
    CHECK(status == 2);
    CHECK(out.find(std::string(200, 'n')) != std::string::npos);
}

BACKEND_TEST("examples: port_probe tells open, closed and timed-out ports apart") {
    std::string probe = need_example("port_probe");
    if (probe.empty()) return;
    const std::string backend = backend_name(B::value);
    cosock::scheduler s{B::value};
    // Two neighbouring ports for a range: one listening (open), one bound but
    // not listening, which the kernel refuses (closed) and nobody else can take.
    cosock::socket open, closed;
    int port = 0;
    for (int attempt = 0; attempt < 100 && closed.fileno() < 0; ++attempt) {
        open = listener(s);
        port = open.getsockname().port();
        if (port == 65535) continue;
        cosock::socket next{s};
        if (error_of([&] { next.bind({"127.0.0.1", port + 1}); }) == -1) closed = std::move(next);
    }
    REQUIRE(closed.fileno() >= 0);
    // A listener whose backlog is full drops the SYN: no answer until the timeout.
    cosock::socket full{s};
    std::vector<cosock::socket> queued;
    cosock::address unanswered = s.run(unanswered_address(s, full, queued));

    std::vector<std::string> argv = {probe,
                                     "--backend",
                                     backend,
                                     "--timeout",
                                     "1",
                                     "127.0.0.1:" + std::to_string(port) + "-" + std::to_string(port + 1),
                                     unanswered.to_string()};
    std::string expected = "127.0.0.1:" + std::to_string(port) + " open\n127.0.0.1:" + std::to_string(port + 1) +
                           " closed\n" + unanswered.to_string() + " timeout\n";
    cosock::socket open6;
    if (have_ipv6()) {
        open6 = listener(s, "::1", cosock::af_inet6);
        argv.push_back(open6.getsockname().to_string());
        expected += open6.getsockname().to_string() + " open\n";
    }
    auto [status, out] = run_to_end(argv);
    CHECK(status == 1); // not every target is open
    CHECK(out == expected);
    std::tie(status, out) = run_to_end({probe, "--backend", backend, "127.0.0.1:" + std::to_string(port)});
    CHECK(status == 0);
    CHECK(out == "127.0.0.1:" + std::to_string(port) + " open\n");

    for (std::string bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:9-8", "::1:80", "[::1]80"}) {
        std::tie(status, out) = run_to_end({probe, bad}, true);
        CHECK(status == 2);
        CHECK_MESSAGE(out.find("bad target '" + bad + "'") != std::string::npos, out);
    }
}

namespace {
std::size_t threads_of(pid_t pid) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task"))
        ++n;
    return n;
}
} // namespace

BACKEND_TEST("examples: echo_server and http_hello --threads 2 serve from two threads and stop cleanly on SIGTERM") {
    std::string echo_path = need_example("echo_server"), http_path = need_example("http_hello");
    if (echo_path.empty() || http_path.empty()) return;
    const std::string backend = backend_name(B::value);
    {
        running_server server({echo_path, "--backend", backend, "--port", "0", "--threads", "2"});
        CHECK(threads_of(server.proc.pid()) == 3); // the main thread waits in join()
        cosock::scheduler s{B::value};
        s.run([](cosock::scheduler& s, int port) -> cosock::task<> {
            for (int i = 0; i < 40; ++i) {
                cosock::socket c{s};
                c.settimeout(10s);
                co_await c.connect({"127.0.0.1", port});
                std::string text = "client " + std::to_string(i) + std::string(std::size_t(i) * 1000, 'x');
                CHECK(co_await echo_of(c, text) == text);
            }
        }(s, server.port));
        CHECK(server.proc.stop() == 0); // SIGTERM stops the group: a clean exit
        // A clean stop ended the pending accepts: the port is free at once (a
        // killed io_uring server's stays busy for a while).
        CHECK_NOTHROW(cosock::create_server(s, {"127.0.0.1", server.port}));
    }
    {
        running_server server({http_path, "--backend", backend, "--port", "0", "--threads", "2"});
        cosock::scheduler s{B::value};
        s.run([](cosock::scheduler& s, int port) -> cosock::task<> {
            for (int i = 0; i < 10; ++i) {
                line_client c = co_await connect_to(s, port);
                auto answers = co_await exchange(c.f, get_root + get_root, 2);
                REQUIRE(answers.size() == 2);
                CHECK(answers[0].status == 200);
                CHECK(answers[1].body == "Hello, World!\n");
            }
        }(s, server.port));
        CHECK(server.proc.stop() == 0);
    }
    auto [status, out] = run_to_end({echo_path, "--threads", "0"}, true);
    CHECK(status == 2);
    CHECK(out.find("'0'") != std::string::npos);
}
