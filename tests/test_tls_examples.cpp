// The TLS examples, started as their own processes and driven by peers
// nobody here wrote (curl, openssl s_client, Python's ssl) as well as by each
// other, on every backend. Certificates: tls_certs.hpp.
#include "backends.hpp"
#include "child_process.hpp"
#include "example_clients.hpp"
#include "tls_support.hpp"

#include <array>
#include <chrono>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

using namespace std::literals;

namespace {

std::pair<int, std::string> run_to_end(std::vector<std::string> argv) {
    child_process p(std::move(argv), true);
    std::string out = p.read_all();
    return {p.wait(), out};
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string python_peer() { return std::string(COSOCK_TESTS_DIR) + "/tls_peer.py"; }

// A plain TCP client that sends `text` (maybe nothing) and reads to the end:
// the server must end the connection by itself (within 20 s) without answering
// in plain text. → what it received.
cosock::task<std::string> plain_client(cosock::scheduler& s, int port, std::string text) {
    cosock::socket c{s};
    c.settimeout(20s);
    co_await c.connect({"127.0.0.1", port});
    if (!text.empty()) co_await c.sendall(text);
    std::string got;
    std::array<char, 4096> buf;
    try {
        while (std::size_t n = co_await c.recv(buf)) got.append(buf.data(), n);
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::errc::connection_reset); // a reset is an end too; a timeout is not
    }
    co_return got;
}

} // namespace

BACKEND_TEST("examples: tls_echo serves its own client, openssl s_client and Python, and outlives clients that fail") {
    std::string prog = need_example("tls_echo");
    if (prog.empty()) return;
    const std::string backend = backend_name(B::value);
    running_server server({prog, "--backend", backend, "server", "--cert", certs().at("server.pem"), "--key",
                           certs().at("server.key"), "--port", "0"},
                          true);
    const std::string port = std::to_string(server.port);
    const std::vector<std::string> client = {prog, "--backend", backend, "client", "--port", port};
    auto with = [&](std::vector<std::string> extra) {
        std::vector<std::string> argv = client;
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run_to_end(std::move(argv));
    };

    auto [status, out] = with({"--cafile", certs().at("ca.pem"), "--server-name", "localhost", "hello", "two words"});
    CHECK(status == 0);
    CHECK(out == "hello\ntwo words\n");
    // More than the buffers on the way hold: the client reads while it sends.
    std::tie(status, out) =
        with({"--cafile", certs().at("ca.pem"), "--server-name", "localhost", "--count", "3", "--size", "3000000"});
    CHECK(status == 0);
    CHECK(out == "3 messages of 3000000 bytes echoed correctly\n");
    // The certificate names localhost and 127.0.0.1, and is checked for both.
    std::tie(status, out) = with({"--cafile", certs().at("ca.pem"), "one"});
    CHECK(status == 0);
    CHECK(out == "one\n");

    // Clients that must fail, each with its reason; the server serves on.
    std::tie(status, out) = with({"--cafile", certs().at("ca.pem"), "--server-name", "wrong.example", "x"});
    CHECK(status == 1);
    CHECK(has(out, "Hostname mismatch"));
    std::tie(status, out) = with({"--cafile", certs().at("other_ca.pem"), "--server-name", "localhost", "x"});
    CHECK(status == 1);
    CHECK(has(out, "certificate verify failed"));
    cosock::scheduler s{B::value};
    CHECK(s.run(plain_client(s, server.port, "GET / HTTP/1.0\r\n\r\n")).find("HTTP") == std::string::npos);

    if (need_program("openssl", "openssl")) {
        // -quiet ignores the end of its input: it waits for the server, which
        // echoes and waits for more, until it is stopped.
        std::string input = certs().at("s_client.in");
        std::ofstream(input) << "hello s_client\n";
        child_process sc({"/bin/sh", "-c",
                          "exec openssl s_client -connect 127.0.0.1:" + port + " -CAfile '" + certs().at("ca.pem") +
                              "' -verify_return_error -verify_hostname localhost -quiet 2>/dev/null <'" + input + "'"});
        CHECK(sc.read_line() == "hello s_client");
        sc.stop();
    }
    if (need_program("python3", "python3")) {
        std::tie(status, out) = run_to_end({"/usr/bin/env", "python3", python_peer(), "client", port, certs().at("ca.pem")});
        CHECK(status == 0); // Python's unwrap() got the server's close_notify in answer
        CHECK(out == "python got: ping from python (TLSv1.3)\n");

        // The client against Python's server: close_notify both ways.
        child_process py({"/usr/bin/env", "python3", python_peer(), "echo-server", certs().at("server.pem"),
                          certs().at("server.key")},
                         true);
        auto first = py.read_line();
        REQUIRE(first);
        std::vector<std::string> argv = {prog,      "--backend", backend, "client", "--port", std::to_string(port_in(*first)),
                                         "--cafile", certs().at("ca.pem"), "--server-name", "localhost", "--count",
                                         "2",        "--size",    "100000"};
        std::tie(status, out) = run_to_end(argv);
        CHECK(status == 0);
        CHECK(out == "2 messages of 100000 bytes echoed correctly\n");
        CHECK(py.read_line() == "python echoed 200000 bytes");
        CHECK(py.wait() == 0);
    }

    std::tie(status, out) = with({"--cafile", certs().at("ca.pem"), "still", "here"});
    CHECK(status == 0);
    CHECK(out == "still\nhere\n");
    CHECK(server.proc.stop() == 128 + SIGTERM);

    // Usage errors name what is wrong.
    std::tie(status, out) = run_to_end({prog});
    CHECK(status == 2);
    CHECK(has(out, "'server' or 'client'"));
    std::tie(status, out) = run_to_end({prog, "server", "--key", "k.pem"});
    CHECK(status == 2);
    CHECK(has(out, "--cert"));
    std::tie(status, out) = run_to_end({prog, "client", "--port", port});
    CHECK(status == 2);
    CHECK(has(out, "--cafile"));
    std::tie(status, out) = run_to_end({prog, "server", "--cert", "/nonexistent.pem", "--key", "/nonexistent.key"});
    CHECK(status == 1);
    CHECK(has(out, "/nonexistent.pem"));
}

BACKEND_TEST("examples: https_hello answers curl with keep-alive, Python's pipelined requests, and drops bad clients") {
    std::string prog = need_example("https_hello");
    if (prog.empty()) return;
    const std::string backend = backend_name(B::value);
    for (const char* threads : {"1", "2"}) {
        CAPTURE(threads);
        running_server server({prog, "--backend", backend, "--cert", certs().at("server.pem"), "--key",
                               certs().at("server.key"), "--port", "0", "--request-timeout", "1", "--threads",
                               threads});
        const std::string base = "https://127.0.0.1:" + std::to_string(server.port);
        if (need_program("curl", "curl")) {
            // Two requests on one connection: the second makes no new connection.
            auto [status, out] = run_to_end({"/usr/bin/env", "curl", "-sS", "--max-time", "30", "--cacert",
                                             certs().at("ca.pem"), "-w", "|%{http_code}|%{num_connects}|%{http_version}\n",
                                             base + "/", base + "/nope"});
            CHECK(status == 0);
            CHECK(out == "Hello, World!\n|200|1|1.1\nnot found\n|404|0|1.1\n");
            std::tie(status, out) = run_to_end({"/usr/bin/env", "curl", "-sS", "--max-time", "30", "--cacert",
                                                certs().at("other_ca.pem"), base + "/"});
            CHECK(status == 60); // curl: the peer's certificate was refused
            std::tie(status, out) = run_to_end({"/usr/bin/env", "curl", "-sS", "--max-time", "30",
                                                "http://127.0.0.1:" + std::to_string(server.port) + "/"});
            CHECK(status != 0); // plain HTTP gets no plain answer
            CHECK(!has(out, "Hello"));
        }
        if (need_program("python3", "python3")) {
            auto [status, out] =
                run_to_end({"/usr/bin/env", "python3", python_peer(), "pipeline", std::to_string(server.port),
                            certs().at("ca.pem"), "7"});
            CHECK(status == 0); // the stream ended with close_notify
            CHECK(out == "responses: 7, 200s: 7, clean end\n");
        }
        // A client that never starts its handshake is dropped after --request-timeout.
        cosock::scheduler s{B::value};
        CHECK(s.run(plain_client(s, server.port, "")).empty());
        if (need_program("curl", "curl")) {
            auto [status, out] = run_to_end(
                {"/usr/bin/env", "curl", "-sS", "--max-time", "30", "--cacert", certs().at("ca.pem"), base + "/"});
            CHECK(status == 0);
            CHECK(out == "Hello, World!\n");
        }
        // One thread: SIGTERM ends it (the default action); several: a clean stop.
        CHECK(server.proc.stop() == (std::string(threads) == "1" ? 128 + SIGTERM : 0));
    }
    {
        // The handshake and the first request's head share --request-timeout:
        // a client slow in both is dropped when it ends, not one later.
        running_server server({prog, "--backend", backend, "--cert", certs().at("server.pem"), "--key",
                               certs().at("server.key"), "--port", "0", "--request-timeout", "2"});
        cosock::scheduler s{B::value};
        double held = s.run([](cosock::scheduler& s, int port) -> cosock::task<double> {
            auto start = std::chrono::steady_clock::now();
            cosock::socket sock{s};
            sock.settimeout(20s);
            co_await sock.connect({"127.0.0.1", port});
            co_await cosock::sleep_for(1200ms); // slow to start the handshake
            auto ctx = cosock::ssl_context::client();
            ctx.load_verify_locations(certs().at("ca.pem"));
            cosock::wrap_options o{.server_hostname = "localhost"};
            cosock::ssl_socket tls = co_await ctx.wrap_socket(std::move(sock), o);
            co_await tls.sendall("GET / HTTP/1.1\r\nHost: x\r\n"sv); // and the head never ends
            char buf[256];
            try {
                while (co_await tls.recv(buf) > 0) {
                }
            } catch (const std::system_error&) { // a reset is an end too
            }
            co_return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        }(s, server.port));
        CHECK(held >= 1.9);
        CHECK(held < 3.0); // 2 s from the accept; a fresh 2 s after the handshake would be 3.2 s or more
    }
    auto [status, out] = run_to_end({prog, "--port", "0"});
    CHECK(status == 2);
    CHECK(has(out, "--cert FILE and --key FILE"));
}
