// cosock/tls.hpp: Python's ssl over OpenSSL 3, on every backend. The
// certificates are made once per run by the openssl command in a temporary
// directory, removed at exit: no private key is committed.
#include "backends.hpp"
#include "child_process.hpp"
#include "tls_support.hpp"

#include <cosock/tls.hpp>

#include <array>
#include <coroutine>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace std::literals;
using cosock::task;

namespace {

/// The exception a task ends with, or nullptr.
template <class T>
task<std::exception_ptr> failure_of(task<T> t) {
    try {
        co_await std::move(t);
    } catch (...) {
        co_return std::current_exception();
    }
    co_return nullptr;
}

std::string what_of(const std::exception_ptr& e) {
    if (!e) return "(no exception)";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    }
    return "(not a std::exception)";
}
template <class E>
bool is_a(const std::exception_ptr& e) {
    if (!e) return false;
    try {
        std::rethrow_exception(e);
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

/// Both handshakes of a connection expected to fail: → {client's, server's} exceptions.
task<std::pair<std::exception_ptr, std::exception_ptr>> failing_handshakes(cosock::scheduler& s,
                                                                           cosock::ssl_context cctx,
                                                                           cosock::ssl_context sctx,
                                                                           std::string hostname = "localhost") {
    auto [a, b] = co_await tcp_pair(s);
    a.settimeout(20s);
    b.settimeout(20s);
    cosock::wrap_options copt{.server_hostname = hostname};
    cosock::wrap_options sopt{.server_side = true};
    auto client = [](cosock::ssl_context ctx, cosock::socket sock, cosock::wrap_options o) -> task<> {
        cosock::ssl_socket c = co_await ctx.wrap_socket(std::move(sock), o);
        // A TLS 1.3 client learns of a refused client certificate at its first read.
        char buf[16];
        co_await c.recv(buf);
    };
    auto server = [](cosock::ssl_context ctx, cosock::socket sock, cosock::wrap_options o) -> task<> {
        cosock::ssl_socket c = co_await ctx.wrap_socket(std::move(sock), o);
        char buf[16];
        co_await c.recv(buf);
    };
    auto r = co_await cosock::when_all(failure_of(client(cctx, std::move(a), copt)),
                                       failure_of(server(sctx, std::move(b), sopt)));
    co_return std::pair{std::get<0>(r), std::get<1>(r)};
}

// A coroutine that is not a cosock task: it starts `t` and is destroyed by
// its owner whenever it likes, taking `t`'s await with it (a frame destroyed
// part-way).
struct bare_awaiting {
    struct promise_type {
        bare_awaiting get_return_object() { return {std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept {}
    };
    std::coroutine_handle<promise_type> h;
};
template <class T>
bare_awaiting start_awaiting(task<T>& t, std::optional<T>& result) {
    try {
        result = co_await t;
    } catch (...) {
    }
}

bool under_asan() {
#if defined(__SANITIZE_ADDRESS__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return true;
#endif
#endif
    return false;
}

} // namespace

// ------------------------------------------------------------ cosock ↔ cosock

BACKEND_TEST("TLS: a cosock client and server echo every byte (0, 1, 16383, 16385 bytes, 1 MiB)") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        std::uint64_t seed = 0;
        for (std::size_t size :
             {std::size_t(0), std::size_t(1), std::size_t(16383), std::size_t(16385), std::size_t(1) << 20}) {
            CAPTURE(size);
            tls_pair p = co_await connect_pair(s);
            std::string data = pattern(size, ++seed);
            auto r = co_await cosock::when_all(echo_until_closed(p.server), send_then_shutdown(p.client, data),
                                               read_to_end(p.client));
            const std::string& got = std::get<2>(r);
            CHECK(got.size() == data.size());
            CHECK(got == data);
        }
    }(s));
}

BACKEND_TEST("TLS: the connection reports its version, cipher, hostname and the peer's certificate") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        CHECK(p.client.version() == "TLSv1.3");
        CHECK(p.server.version() == "TLSv1.3");
        auto c = p.client.cipher();
        REQUIRE(c);
        CHECK(c->protocol == "TLSv1.3");
        CHECK(c->bits >= 128);
        CHECK(c->name == p.server.cipher()->name);
        CHECK(p.client.server_hostname() == "localhost");
        CHECK(!p.client.selected_alpn_protocol());
        auto cert = p.client.getpeercert();
        REQUIRE(cert);
        CHECK(cert->subject.find("CN=localhost") != std::string::npos);
        CHECK(cert->subject.find("O=cosock") != std::string::npos);
        CHECK(cert->issuer == "CN=cosock test CA");
        CHECK(cert->subject_alt_names == std::vector<std::string>{"localhost"});
        CHECK(cert->not_after.find("GMT") != std::string::npos);
        CHECK(!cert->serial_number.empty());
        std::string der = p.client.getpeercert_der();
        REQUIRE(der.size() > 100);
        CHECK(der[0] == '\x30');        // a DER SEQUENCE
        CHECK(!p.server.getpeercert()); // the server asked for no client certificate
        CHECK(p.server.getpeercert_der().empty());
        CHECK(p.client.socket().getpeername() == p.server.socket().getsockname());
        CHECK(p.client.fileno() == p.client.socket().fileno());
        CHECK(p.client.gettimeout() == std::optional<std::chrono::nanoseconds>(20s));
        // Bytes decrypted but not yet read are pending and come before any wait.
        co_await p.server.sendall("0123456789"sv);
        char one[1];
        CHECK(co_await p.client.recv(one) == 1);
        CHECK(p.client.pending() == 9);
        char rest[16];
        p.client.settimeout(0s); // a wait would throw: the bytes must come from OpenSSL
        CHECK(co_await p.client.recv(rest) == 9);
        CHECK(std::string_view(rest, 9) == "123456789");
    }(s));
}

BACKEND_TEST("TLS: with do_handshake_on_connect false, wrap_socket returns at once and do_handshake runs it") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        auto [a, b] = co_await tcp_pair(s);
        cosock::wrap_options copt{.server_hostname = "localhost", .do_handshake_on_connect = false};
        cosock::wrap_options sopt{.server_side = true, .do_handshake_on_connect = false};
        cosock::ssl_socket c = co_await client_ctx().wrap_socket(std::move(a), copt);
        cosock::ssl_socket sv = co_await server_ctx().wrap_socket(std::move(b), sopt);
        CHECK(!c.version());
        CHECK(!c.getpeercert());
        CHECK(SSL_is_init_finished(c.native_handle()) == 0);
        co_await cosock::when_all(c.do_handshake(), sv.do_handshake());
        CHECK(c.version() == "TLSv1.3");
        CHECK(c.getpeercert());
        co_await c.sendall("after"sv);
        char buf[8];
        CHECK(co_await sv.recv(buf) == 5);
    }(s));
}

BACKEND_TEST("TLS: makefile reads lines and writes through TLS") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        auto server = [](cosock::ssl_socket& c) -> task<> {
            cosock::file_object f = c.makefile("rwb");
            for (;;) {
                std::string line = co_await f.readline();
                if (line.empty()) break;
                co_await f.write("echo: " + line);
                co_await f.flush();
            }
            co_await f.write(std::string(100000, 'z'));
            co_await f.close();
            co_await c.shutdown();
        };
        auto client = [](cosock::ssl_socket& c) -> task<> {
            cosock::file_object f = c.makefile("rw", -1, {.newline = "\r\n"});
            co_await f.write("first\nsecond line\n"sv);
            co_await f.flush();
            // newline "\r\n": only "\r\n" ends a line, and it is read as it is.
            CHECK(co_await f.readline() == "echo: first\r\n");
            CHECK(co_await f.readline() == "echo: second line\r\n");
            co_await c.shutdown(); // the server reads end of stream
            CHECK(co_await f.read() == std::string(100000, 'z'));
            co_await f.close();
        };
        co_await cosock::when_all(server(p.server), client(p.client));
    }(s));
}

// ------------------------------------------------------------ other peers

BACKEND_TEST("TLS: a cosock client talks to openssl s_server") {
    if (!need_program("openssl", "openssl")) return;
    child_process srv({"/bin/sh", "-c",
                       "exec openssl s_server -accept 127.0.0.1:0 -cert '" + certs().at("server.pem") + "' -key '" +
                           certs().at("server.key") + "' -rev -naccept 1 </dev/null"});
    int port = -1;
    while (auto line = srv.read_line()) {
        if (line->rfind("ACCEPT", 0) == 0) {
            port = std::atoi(line->c_str() + line->rfind(':') + 1);
            break;
        }
    }
    REQUIRE(port > 0);
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s, int port) -> task<> {
        cosock::socket sock{s};
        sock.settimeout(20s);
        co_await sock.connect({"127.0.0.1", port});
        cosock::wrap_options o{.server_hostname = "localhost"};
        cosock::ssl_socket c = co_await client_ctx().wrap_socket(std::move(sock), o);
        co_await c.sendall("hello s_server\n"sv);
        std::string got;
        char buf[256];
        while (got.find('\n') == std::string::npos) {
            std::size_t n = co_await c.recv(buf);
            if (n == 0) break;
            got.append(buf, n);
        }
        CHECK(got == "revres_s olleh\n");
    }(s, port));
}

BACKEND_TEST("TLS: a cosock server talks to openssl s_client, which verifies it") {
    if (!need_program("openssl", "openssl")) return;
    cosock::scheduler s{B::value};
    cosock::socket srv = listener(s);
    int port = srv.getsockname().port();
    child_process cli({"/bin/sh", "-c",
                       "exec openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " -CAfile '" +
                           certs().at("ca.pem") +
                           "' -verify_return_error -verify_hostname localhost -quiet </dev/null 2>/dev/null"});
    s.run([](cosock::socket& srv) -> task<> {
        auto [conn, peer] = co_await srv.accept();
        conn.settimeout(20s);
        cosock::wrap_options o{.server_side = true};
        cosock::ssl_socket c = co_await server_ctx().wrap_socket(std::move(conn), o);
        co_await c.sendall("hello from cosock\n"sv);
        co_await c.shutdown();
    }(srv));
    CHECK(cli.read_line() == "hello from cosock");
    CHECK(cli.wait() == 0);
}

BACKEND_TEST("TLS: Python's ssl module as a client and as a server") {
    if (!need_program("python3", "python3")) return;
    std::string script = std::string(COSOCK_TESTS_DIR) + "/tls_peer.py";
    cosock::scheduler s{B::value};
    { // Python's client, cosock's server.
        cosock::socket srv = listener(s);
        child_process py({"/usr/bin/env", "python3", script, "client", std::to_string(srv.getsockname().port()),
                          certs().at("ca.pem")},
                         true);
        s.run([](cosock::socket& srv) -> task<> {
            auto [conn, peer] = co_await srv.accept();
            conn.settimeout(20s);
            cosock::wrap_options o{.server_side = true};
            cosock::ssl_socket c = co_await server_ctx().wrap_socket(std::move(conn), o);
            cosock::file_object f = c.makefile("rwb");
            std::string line = co_await f.readline();
            CHECK(line == "ping from python\n");
            co_await f.write("PONG FROM COSOCK\n"sv);
            co_await f.close();
            cosock::socket plain = co_await c.unwrap(); // Python unwraps too
            CHECK(plain.fileno() >= 0);
        }(srv));
        CHECK(py.read_line() == "python got: PONG FROM COSOCK (TLSv1.3)");
        CHECK(py.wait() == 0);
    }
    { // cosock's client, Python's server.
        child_process py(
            {"/usr/bin/env", "python3", script, "server", certs().at("server.pem"), certs().at("server.key")}, true);
        auto line = py.read_line();
        REQUIRE(line);
        int port = port_in(*line);
        REQUIRE(port > 0);
        s.run([](cosock::scheduler& s, int port) -> task<> {
            cosock::socket sock{s};
            sock.settimeout(20s);
            co_await sock.connect({"127.0.0.1", port});
            cosock::wrap_options o{.server_hostname = "localhost"};
            cosock::ssl_socket c = co_await client_ctx().wrap_socket(std::move(sock), o);
            co_await c.sendall("mixed Case\n"sv);
            std::string got;
            char buf[64];
            while (got.size() < 11) {
                std::size_t n = co_await c.recv(buf);
                REQUIRE(n > 0);
                got.append(buf, n);
            }
            CHECK(got == "MIXED CASE\n");
            cosock::socket plain = co_await c.unwrap();
            CHECK(plain.fileno() >= 0);
        }(s, port));
        CHECK(py.read_line() == "python got: mixed Case");
        CHECK(py.wait() == 0);
    }
}

// ------------------------------------------------------------ verification

BACKEND_TEST("TLS: a server certificate from an unknown CA is refused with the reason") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        auto [c, sv] = co_await failing_handshakes(s, client_ctx(), server_ctx("other.pem", "other.key"));
        REQUIRE(is_a<cosock::ssl_certificate_error>(c));
        CHECK(what_of(c).find("do_handshake") != std::string::npos);
        CHECK(what_of(c).find("unable to get local issuer certificate") != std::string::npos);
        try {
            std::rethrow_exception(c);
        } catch (const cosock::ssl_certificate_error& e) {
            CHECK(e.verify_code() == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
            CHECK(e.code().category() == cosock::ssl_category());
        }
        CHECK(is_a<cosock::ssl_error>(sv)); // the client's alert
        CHECK(what_of(sv).find("do_handshake") != std::string::npos);
    }(s));
}

BACKEND_TEST("TLS: a certificate for another host name is refused (Hostname mismatch)") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        auto [c, sv] = co_await failing_handshakes(s, client_ctx(), server_ctx(), "example.com");
        REQUIRE(is_a<cosock::ssl_certificate_error>(c));
        CHECK(what_of(c).find("Hostname mismatch") != std::string::npos);
        CHECK(what_of(c).find("example.com") != std::string::npos);
        CHECK(sv); // the server hears of it
        // The IP address in the certificate is matched as an address.
        tls_pair ok = co_await connect_pair(s, client_ctx(), server_ctx(), "127.0.0.1");
        CHECK(ok.client.server_hostname() == "127.0.0.1");
        auto wrong_ip = co_await failing_handshakes(s, client_ctx(), server_ctx(), "127.0.0.2");
        CHECK(what_of(wrong_ip.first).find("Hostname mismatch") != std::string::npos);
    }(s));
}

BACKEND_TEST("TLS: an expired certificate is refused (certificate has expired)") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        auto [c, sv] = co_await failing_handshakes(s, client_ctx(), server_ctx("expired.pem", "expired.key"));
        REQUIRE(is_a<cosock::ssl_certificate_error>(c));
        CHECK(what_of(c).find("certificate has expired") != std::string::npos);
        CHECK(sv);
    }(s));
}

BACKEND_TEST("TLS: a required client certificate that is missing fails both sides; one given is seen") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        auto strict = [] {
            auto c = server_ctx();
            c.load_verify_locations(certs().at("ca.pem"));
            c.set_verify_mode(cosock::cert_required);
            return c;
        };
        auto [c, sv] = co_await failing_handshakes(s, client_ctx(), strict());
        CHECK(is_a<cosock::ssl_error>(sv));
        CHECK(what_of(sv).find("peer did not return a certificate") != std::string::npos);
        CHECK(is_a<cosock::ssl_error>(c));
        CHECK(what_of(c).find("recv") != std::string::npos); // TLS 1.3: at the client's first read
        // With one, the server sees it.
        auto with_cert = client_ctx();
        with_cert.load_cert_chain(certs().at("client.pem"), certs().at("client.key"));
        tls_pair p = co_await connect_pair(s, with_cert, strict());
        auto cert = p.server.getpeercert();
        REQUIRE(cert);
        CHECK(cert->subject == "CN=cosock test client");
    }(s));
}

// ------------------------------------------------------------ hostile peers

BACKEND_TEST("TLS: a plain-text peer is an ssl_error on both sides, not a hang") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        { // an HTTP client at a TLS server
            auto [a, b] = co_await tcp_pair(s);
            b.settimeout(20s);
            co_await a.sendall("GET / HTTP/1.0\r\n\r\n"sv);
            cosock::wrap_options o{.server_side = true};
            auto e = co_await failure_of(server_ctx().wrap_socket(std::move(b), o));
            CHECK(is_a<cosock::ssl_error>(e));
            CHECK(what_of(e).find("do_handshake") != std::string::npos);
            CHECK(what_of(e).find("http request") != std::string::npos);
        }
        { // a TLS client at an HTTP server that answers plain text
            auto [a, b] = co_await tcp_pair(s);
            a.settimeout(20s);
            co_await b.sendall("HTTP/1.0 400 Bad Request\r\n\r\n"sv);
            cosock::wrap_options o{.server_hostname = "localhost"};
            auto e = co_await failure_of(client_ctx().wrap_socket(std::move(a), o));
            CHECK(is_a<cosock::ssl_error>(e));
            CHECK(what_of(e).find("wrong version number") != std::string::npos);
            try {
                std::rethrow_exception(e);
            } catch (const cosock::ssl_error& x) {
                CHECK(x.reason() == "wrong version number");
                CHECK(!x.library().empty());
            }
        }
    }(s));
}

BACKEND_TEST("TLS: a peer that resets or closes mid-handshake is an error, not a hang") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        for (bool reset : {true, false}) {
            CAPTURE(reset);
            auto [a, b] = co_await tcp_pair(s);
            b.settimeout(20s);
            auto peer = [](cosock::socket a, bool reset) -> task<> {
                char buf[4096];
                co_await a.recv(buf); // the ClientHello
                if (reset) {
                    ::linger l{1, 0};
                    a.setsockopt(SOL_SOCKET, SO_LINGER, std::as_bytes(std::span(&l, 1)));
                }
                a.close();
            };
            cosock::wrap_options o{.server_hostname = "localhost"};
            auto r = co_await cosock::when_all(failure_of(client_ctx().wrap_socket(std::move(b), o)),
                                               peer(std::move(a), reset));
            std::exception_ptr e = std::get<0>(r);
            if (reset) {
                REQUIRE(is_a<std::system_error>(e));
                CHECK(what_of(e).find("do_handshake") != std::string::npos);
            } else {
                CHECK(is_a<cosock::ssl_eof_error>(e)); // even with suppress_ragged_eofs
            }
        }
    }(s));
}

BACKEND_TEST("TLS: a handshake the peer never answers ends at the socket's timeout") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        auto [a, b] = co_await tcp_pair(s);
        a.settimeout(200ms);
        cosock::wrap_options o{.server_hostname = "localhost"};
        auto t0 = std::chrono::steady_clock::now();
        auto e = co_await failure_of(client_ctx().wrap_socket(std::move(a), o));
        auto took = std::chrono::steady_clock::now() - t0;
        CHECK(is_a<cosock::timeout_error>(e));
        CHECK(what_of(e).find("do_handshake") != std::string::npos);
        CHECK(took >= 190ms);
        CHECK(took < 5s);
    }(s));
}

BACKEND_TEST("TLS: garbage records after the handshake are an ssl_error") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        co_await p.server.sendall("fine\n"sv);
        char buf[64];
        CHECK(co_await p.client.recv(buf) == 5);
        // An application-data record whose bytes are not what the keys make.
        std::string junk = "\x17\x03\x03\x00\x20"s + std::string(32, 'x');
        REQUIRE(::send(p.server.fileno(), junk.data(), junk.size(), MSG_NOSIGNAL) == ssize_t(junk.size()));
        auto e = co_await failure_of(p.client.recv(buf));
        CHECK(is_a<cosock::ssl_error>(e));
        CHECK(!is_a<cosock::ssl_eof_error>(e));
        CHECK(what_of(e).find("recv") != std::string::npos);
        CHECK(what_of(e).find("bad record mac") != std::string::npos);
    }(s));
}

BACKEND_TEST("TLS: a peer closing without close_notify: ssl_eof_error, or 0 with suppress_ragged_eofs") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        for (bool suppress : {false, true}) {
            CAPTURE(suppress);
            auto [a, b] = co_await tcp_pair(s);
            cosock::wrap_options copt{.server_hostname = "localhost", .suppress_ragged_eofs = suppress};
            cosock::wrap_options sopt{.server_side = true};
            auto both = co_await cosock::when_all(client_ctx().wrap_socket(std::move(a), copt),
                                                  server_ctx().wrap_socket(std::move(b), sopt));
            cosock::ssl_socket& c = std::get<0>(both);
            cosock::ssl_socket& sv = std::get<1>(both);
            co_await sv.sendall("last words"sv);
            sv.close(); // no close_notify
            char buf[64];
            CHECK(co_await c.recv(buf) == 10);
            if (suppress) {
                CHECK(co_await c.recv(buf) == 0);
                CHECK(co_await c.recv(buf) == 0); // and stays at the end
            } else {
                auto e = co_await failure_of(c.recv(buf));
                CHECK(is_a<cosock::ssl_eof_error>(e));
                CHECK(what_of(e).find("recv") != std::string::npos);
            }
        }
        // A clean close_notify is 0 either way.
        tls_pair p = co_await connect_pair(s);
        co_await p.server.shutdown();
        char buf[8];
        CHECK(co_await p.client.recv(buf) == 0);
    }(s));
}

BACKEND_TEST("TLS: a second shutdown sends nothing and reads nothing: the peer's data stays readable") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        co_await p.client.sendall("unread data"sv);
        co_await p.server.shutdown();
        // Waiting for the peer's close_notify here would hang (the peer sends
        // none) and drop "unread data"; the socket's timeout turns a hang into a failure.
        p.server.settimeout(std::chrono::seconds(5));
        co_await p.server.shutdown();
        std::string got;
        char buf[64];
        while (got.size() < 11) {
            std::size_t n = co_await p.server.recv(buf);
            if (n == 0) break;
            got.append(buf, n);
        }
        CHECK(got == "unread data");
        CHECK(co_await p.client.recv(buf) == 0); // our close_notify went out once
    }(s));
}

// ------------------------------------------------------------ protocol features

BACKEND_TEST("TLS: unwrap ends TLS on both sides and plain text follows on the same socket") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        co_await p.client.sendall("secret"sv);
        char buf[64];
        CHECK(co_await p.server.recv(buf) == 6);
        auto r = co_await cosock::when_all(p.client.unwrap(), p.server.unwrap());
        cosock::socket& a = std::get<0>(r);
        cosock::socket& b = std::get<1>(r);
        CHECK(p.client.closed());
        co_await a.sendall("plain text"sv);
        std::size_t n = co_await b.recv(buf);
        CHECK(std::string_view(buf, n) == "plain text");
        co_await b.sendall("and back"sv);
        n = co_await a.recv(buf);
        CHECK(std::string_view(buf, n) == "and back");
    }(s));
}

BACKEND_TEST("TLS: unwrap while several of the peer's records are still arriving drops them, then plain text follows") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        auto peer = [](cosock::ssl_socket& t) -> task<> {
            co_await t.sendall(pattern(100000, 1)); // in flight when the other side unwraps
            char buf[64];
            CHECK(co_await t.recv(buf) == 0); // its close_notify
            co_await t.shutdown();
            co_await t.socket().sendall("PLAIN"sv);
        };
        auto unwrapper = [](cosock::ssl_socket& t) -> task<std::string> {
            cosock::socket plain = co_await t.unwrap();
            char buf[64];
            std::size_t n = co_await plain.recv(buf);
            co_return std::string(buf, n);
        };
        auto r = co_await cosock::when_all(peer(p.server), unwrapper(p.client));
        CHECK(std::get<1>(r) == "PLAIN");
    }(s));
}

BACKEND_TEST("TLS: a peer asks for key updates while a record is half sent; reading and writing at once carry on") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        const std::string big = pattern(8 << 20, 5);
        // The client writes 8 MiB, which the server does not read at first,
        // so the client's sendall waits part-way through a record, while the
        // client also reads. The server asks twice for a key update, which
        // the client answers from inside its read.
        auto client_write = [](cosock::ssl_socket& t, const std::string& data) -> task<> { co_await t.sendall(data); };
        auto client_read = [](cosock::ssl_socket& t) -> task<std::string> {
            std::string got;
            char buf[16];
            while (got.size() < 2) {
                std::size_t n = co_await t.recv(std::span(buf, 2 - got.size()));
                if (n == 0) break;
                got.append(buf, n);
            }
            co_return got;
        };
        auto server = [](cosock::ssl_socket& t) -> task<std::string> {
            CHECK(SSL_key_update(t.native_handle(), SSL_KEY_UPDATE_REQUESTED) == 1);
            co_await t.sendall("x"sv);
            CHECK(SSL_key_update(t.native_handle(), SSL_KEY_UPDATE_REQUESTED) == 1);
            co_await t.sendall("y"sv);
            std::string got;
            std::vector<char> buf(65536);
            while (got.size() < (8u << 20)) {
                std::size_t n = co_await t.recv(buf);
                if (n == 0) break;
                got.append(buf.data(), n);
            }
            co_return got;
        };
        auto r = co_await cosock::when_all(client_write(p.client, big), client_read(p.client), server(p.server));
        CHECK(std::get<1>(r) == "xy");
        CHECK(std::get<2>(r).size() == big.size());
        CHECK(std::get<2>(r) == big);
    }(s));
}

BACKEND_TEST("TLS: after the peer's close_notify, writing to a peer that has gone is the system error, not OpenSSL's") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        co_await p.client.shutdown();
        p.client.close();
        char buf[16];
        CHECK(co_await p.server.recv(buf) == 0); // close_notify: a clean end
        // The first write may still be taken by the kernel; the peer's reset
        // answers it, and a later one fails (bounded: 200 tries, 5 ms apart).
        std::exception_ptr failure;
        for (int i = 0; i < 200 && !failure; ++i) {
            failure = co_await failure_of(p.server.sendall("after"sv));
            if (!failure) co_await cosock::sleep_for(5ms);
        }
        REQUIRE(failure);
        CHECK(!is_a<cosock::ssl_error>(failure));
        CHECK(is_a<std::system_error>(failure));
        try {
            std::rethrow_exception(failure);
        } catch (const std::system_error& e) {
            CHECK((e.code() == std::errc::broken_pipe || e.code() == std::errc::connection_reset));
            CHECK(std::string(e.what()).find("sendall") != std::string::npos);
        }
        CHECK_THROWS_AS(co_await p.server.shutdown(), std::system_error);
    }(s));
}

BACKEND_TEST("TLS: a second reader or writer while one waits is refused with logic_error; the first goes on") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        const std::string big = pattern(8 << 20, 7);
        auto first = [](cosock::ssl_socket& t, const std::string& data) -> task<> { co_await t.sendall(data); };
        auto second = [](cosock::ssl_socket& t) -> task<std::string> {
            std::exception_ptr e = co_await failure_of(t.sendall("second"sv)); // the first waits: the socket is full
            co_return what_of(e) + (is_a<std::logic_error>(e) ? " [logic_error]" : "");
        };
        auto reader = [](cosock::ssl_socket& t, std::size_t want) -> task<std::string> {
            std::string got;
            std::vector<char> buf(65536);
            while (got.size() < want) {
                std::size_t n = co_await t.recv(buf);
                if (n == 0) break;
                got.append(buf.data(), n);
            }
            co_return got;
        };
        auto second_reader = [](cosock::ssl_socket& t) -> task<std::string> {
            char buf[16];
            std::exception_ptr e = co_await failure_of(t.recv(buf)); // `reader` waits
            co_return what_of(e);
        };
        auto r = co_await cosock::when_all(first(p.client, big), second(p.client), reader(p.server, big.size()),
                                           second_reader(p.server));
        CHECK(std::get<1>(r).find("another operation is already waiting to write") != std::string::npos);
        CHECK(std::get<1>(r).find("[logic_error]") != std::string::npos);
        CHECK(std::get<3>(r).find("another operation is already waiting to read") != std::string::npos);
        CHECK(std::get<2>(r) == big); // the first writer's bytes, whole
    }(s));
}

BACKEND_TEST("TLS: renegotiation is refused; one started through native_handle still sends what it wrote first") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        auto cctx = client_ctx();
        cctx.set_maximum_version(cosock::tls_version::tlsv1_2);
        auto sctx = server_ctx();
        {
            tls_pair p = co_await connect_pair(s, cctx, sctx);
            CHECK(p.client.version() == "TLSv1.2");
            CHECK(SSL_renegotiate(p.client.native_handle()) == 0); // refused by default
            CHECK(SSL_renegotiate(p.server.native_handle()) == 0);
            ERR_clear_error();
        }
        // Allowed by hand: the write that starts it must send the ClientHello
        // before it waits for the answer, or both sides wait for ever.
        SSL_CTX_clear_options(cctx.native_handle(), SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_clear_options(sctx.native_handle(), SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_set_options(sctx.native_handle(), SSL_OP_ALLOW_CLIENT_RENEGOTIATION);
        tls_pair p = co_await connect_pair(s, cctx, sctx);
        REQUIRE(SSL_renegotiate(p.client.native_handle()) == 1);
        auto reader = [](cosock::ssl_socket& t) -> task<std::string> {
            char buf[16];
            std::size_t n = co_await t.recv(buf);
            co_return std::string(buf, n);
        };
        auto r = co_await cosock::when_all(p.client.sendall("hello"sv), reader(p.server));
        CHECK(std::get<1>(r) == "hello");
    }(s));
}

BACKEND_TEST("TLS: traffic continues across a TLS 1.3 key update") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        std::string data = pattern(200000, 7);
        for (int round = 0; round < 3; ++round) {
            cosock::ssl_socket& from = round % 2 ? p.client : p.server;
            cosock::ssl_socket& to = round % 2 ? p.server : p.client;
            REQUIRE(SSL_key_update(from.native_handle(), SSL_KEY_UPDATE_REQUESTED) == 1);
            auto reader = [](cosock::ssl_socket& c, std::size_t n) -> task<std::string> {
                std::string got;
                std::vector<char> buf(7000);
                while (got.size() < n) {
                    std::size_t k = co_await c.recv(buf);
                    if (k == 0) break;
                    got.append(buf.data(), k);
                }
                co_return got;
            };
            auto r = co_await cosock::when_all(from.sendall(data), reader(to, data.size()));
            CHECK(std::get<1>(r) == data);
            CHECK(SSL_get_key_update_type(from.native_handle()) == SSL_KEY_UPDATE_NONE); // it was sent
        }
        // The requested updates came back: both directions still work.
        co_await p.client.sendall("after"sv);
        char buf[8];
        CHECK(co_await p.server.recv(buf) == 5);
    }(s));
}

BACKEND_TEST("TLS: set_ciphersuites chooses the TLS 1.3 suite; a client offering none the server takes fails") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        auto sctx = server_ctx();
        sctx.set_ciphersuites("TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384");
        auto cctx = client_ctx();
        cctx.set_ciphersuites("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
        tls_pair p = co_await connect_pair(s, cctx, sctx);
        CHECK(p.client.cipher()->name == "TLS_AES_256_GCM_SHA384");
        CHECK(p.server.cipher()->name == "TLS_AES_256_GCM_SHA384");
        co_await p.client.sendall("chosen"sv);
        char buf[8];
        CHECK(co_await p.server.recv(buf) == 6);

        auto only = client_ctx();
        only.set_ciphersuites("TLS_AES_128_GCM_SHA256");
        only.set_minimum_version(cosock::tls_version::tlsv1_3);
        auto [client, server] = co_await failing_handshakes(s, only, sctx);
        CHECK(client);
        CHECK(server);
    }(s));
}

BACKEND_TEST("TLS: ALPN picks the server's first choice both offer") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        auto cctx = client_ctx();
        cctx.set_alpn_protocols({"http/1.1", "h2"});
        auto sctx = server_ctx();
        sctx.set_alpn_protocols({"h2", "http/1.1"});
        tls_pair p = co_await connect_pair(s, cctx, sctx);
        CHECK(p.client.selected_alpn_protocol() == "h2");
        CHECK(p.server.selected_alpn_protocol() == "h2");
        auto other = server_ctx();
        other.set_alpn_protocols({"spdy/3"});
        tls_pair q = co_await connect_pair(s, cctx, other);
        CHECK(!q.client.selected_alpn_protocol());
    }(s));
}

// ------------------------------------------------------------ timeouts, cancellation, close

BACKEND_TEST("TLS: zero timeout never waits, a timeout bounds recv, close ends a waiting recv with EBADF") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        char buf[16];
        p.client.settimeout(0s);
        auto e = co_await failure_of(p.client.recv(buf));
        REQUIRE(is_a<std::system_error>(e));
        CHECK(!is_a<cosock::timeout_error>(e));
        CHECK(error_of([&] { std::rethrow_exception(e); }) == EAGAIN);
        p.client.settimeout(100ms);
        auto t0 = std::chrono::steady_clock::now();
        e = co_await failure_of(p.client.recv(buf));
        CHECK(is_a<cosock::timeout_error>(e));
        CHECK(std::chrono::steady_clock::now() - t0 >= 90ms);
        p.client.settimeout(std::nullopt);
        auto closer = [](cosock::ssl_socket& c) -> task<> {
            co_await cosock::sleep_for(20ms);
            c.close();
        };
        auto r = co_await cosock::when_all(failure_of(p.client.recv(buf)), closer(p.client));
        CHECK(error_of([&] { std::rethrow_exception(std::get<0>(r)); }) == EBADF);
        CHECK(p.client.fileno() == -1);
        CHECK(error_of([&] { (void)p.client.recv(buf); }) == EBADF);
        // A stop request is cancelled_error, not a system_error.
        tls_pair q = co_await connect_pair(s);
        std::stop_source stop;
        auto t = q.server.recv(buf).with_stop_token(stop.get_token());
        auto stopper = [](std::stop_source& st) -> task<> {
            co_await cosock::sleep_for(10ms);
            st.request_stop();
        };
        auto r2 = co_await cosock::when_all(failure_of(std::move(t)), stopper(stop));
        CHECK_MESSAGE(is_a<cosock::cancelled_error>(std::get<0>(r2)), what_of(std::get<0>(r2)));
        co_await q.client.sendall("still there"sv); // nothing was lost to the stop
        CHECK(co_await q.server.recv(buf) == 11);
    }(s));
}

BACKEND_TEST("TLS: the socket's timeout bounds a whole sendall, not each wait") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        p.client.socket().setsockopt(SOL_SOCKET, SO_SNDBUF, 32768);
        p.server.socket().setsockopt(SOL_SOCKET, SO_RCVBUF, 32768);
        p.client.settimeout(150ms);
        bool writing = true;
        // The reader takes a little every 10 ms: each of the writer's waits is
        // short, but all of them together are longer than the timeout.
        auto reader = [](cosock::ssl_socket& c, bool& writing) -> task<std::size_t> {
            std::size_t got = 0;
            std::vector<char> buf(16384);
            while (writing) {
                co_await cosock::sleep_for(10ms);
                got += co_await c.recv(buf);
            }
            co_return got;
        };
        auto writer = [](cosock::ssl_socket& c, bool& writing) -> task<std::exception_ptr> {
            std::string big(8 << 20, 'w');
            auto t0 = std::chrono::steady_clock::now();
            auto e = co_await failure_of(c.sendall(big));
            auto took = std::chrono::steady_clock::now() - t0;
            CHECK(took >= 140ms);
            CHECK(took < 2s);
            writing = false;
            co_return e;
        };
        auto r = co_await cosock::when_all(writer(p.client, writing), reader(p.server, writing));
        CHECK(is_a<cosock::timeout_error>(std::get<0>(r)));
        CHECK(what_of(std::get<0>(r)).find("sendall") != std::string::npos);
        CHECK(std::get<1>(r) > 0); // the writer did make progress between its waits
    }(s));
}

BACKEND_TEST("TLS: recv and sendall of 4 MiB abandoned part-way (timeout, stop, frame destroyed) lose nothing") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        // Small socket buffers: a sendall of 4 MiB waits many times.
        p.client.socket().setsockopt(SOL_SOCKET, SO_SNDBUF, 32768);
        p.server.socket().setsockopt(SOL_SOCKET, SO_RCVBUF, 32768);
        const std::string data = pattern(4 << 20, 42);
        struct counts {
            int sends_abandoned = 0, sends_partway = 0, recvs_abandoned = 0;
        } n;
        auto writer = [](cosock::ssl_socket& c, const std::string& data, counts& n) -> task<> {
            std::size_t off = 0;
            for (int round = 0; off < data.size(); ++round) {
                std::string_view rest = std::string_view(data).substr(off);
                bool finished = false;
                switch (round % 3) {
                case 0:
                    try {
                        co_await cosock::with_timeout(c.sendall(rest), 3ms);
                        finished = true;
                    } catch (const cosock::timeout_error&) {
                    }
                    break;
                case 1: {
                    std::vector<task<std::size_t>> race;
                    race.push_back(c.sendall(rest));
                    race.push_back([]() -> task<std::size_t> {
                        co_await cosock::sleep_for(3ms);
                        co_return 0;
                    }());
                    auto r = co_await cosock::when_any(std::move(race));
                    finished = r.index == 0 || !r.others.empty();
                    break;
                }
                default: {
                    task<std::size_t> t = c.sendall(rest);
                    std::optional<std::size_t> sent;
                    bare_awaiting b = start_awaiting(t, sent);
                    co_await cosock::sleep_for(3ms);
                    finished = sent.has_value();
                    b.h.destroy();
                    break;
                }
                }
                std::size_t taken = c.last_send_progress();
                if (finished) {
                    REQUIRE(taken == rest.size());
                } else {
                    ++n.sends_abandoned;
                    if (taken > 0 && taken < rest.size()) ++n.sends_partway;
                }
                off += taken;
                co_await cosock::sleep_for(2ms); // the reader drains the socket and waits
            }
            co_await c.shutdown();
        };
        auto reader = [](cosock::ssl_socket& c, counts& n) -> task<std::string> {
            std::string got;
            std::vector<char> buf(50000);
            for (int round = 0;; ++round) {
                if (round % 8 == 7) co_await cosock::sleep_for(1ms); // slower than the writer: its sendall waits
                std::optional<std::size_t> k;
                switch (round % 4) {
                case 0:
                    try {
                        k = co_await cosock::with_timeout(c.recv(buf), 1ms);
                    } catch (const cosock::timeout_error&) {
                    }
                    break;
                case 1: {
                    std::vector<task<std::size_t>> race;
                    race.push_back(c.recv(buf));
                    race.push_back([]() -> task<std::size_t> { co_return 0; }());
                    auto r = co_await cosock::when_any(std::move(race));
                    if (r.index == 0) k = r.value;
                    for (auto& [i, v] : r.others)
                        if (i == 0) k = v;
                    break;
                }
                case 2: {
                    task<std::size_t> t = c.recv(buf);
                    bare_awaiting b = start_awaiting(t, k); // k is set if it finished at once
                    b.h.destroy();
                    break;
                }
                default:
                    k = co_await c.recv(buf);
                }
                if (!k) {
                    ++n.recvs_abandoned;
                    continue;
                }
                if (*k == 0) break;
                got.append(buf.data(), *k);
            }
            co_return got;
        };
        auto r = co_await cosock::when_all(writer(p.client, data, n), reader(p.server, n));
        const std::string& got = std::get<1>(r);
        CHECK(got.size() == data.size());
        CHECK(got == data);
        CHECK(n.sends_abandoned > 0);
        CHECK(n.sends_partway > 0);
        CHECK(n.recvs_abandoned > 0);
        MESSAGE("sendall abandoned " << n.sends_abandoned << " times (" << n.sends_partway << " part-way), recv "
                                     << n.recvs_abandoned << " times");
    }(s));
}

BACKEND_TEST("TLS: a makefile flush and read abandoned part-way lose and duplicate nothing") {
    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s) -> task<> {
        tls_pair p = co_await connect_pair(s);
        p.client.socket().setsockopt(SOL_SOCKET, SO_SNDBUF, 32768);
        p.server.socket().setsockopt(SOL_SOCKET, SO_RCVBUF, 32768);
        const std::string data = pattern(2 << 20, 5);
        int flushes_abandoned = 0, reads_abandoned = 0;
        auto writer = [](cosock::ssl_socket& c, const std::string& data, int& abandoned) -> task<> {
            cosock::file_object f = c.makefile("wb", 1 << 22); // the whole stream fits in its buffer
            co_await f.write(data);
            for (;;) {
                try {
                    co_await cosock::with_timeout(f.flush(), 2ms);
                    break;
                } catch (const cosock::timeout_error&) {
                    ++abandoned;
                }
                co_await cosock::sleep_for(2ms);
            }
            co_await f.close();
            co_await c.shutdown();
        };
        auto reader = [](cosock::ssl_socket& c, int& abandoned) -> task<std::string> {
            cosock::file_object f = c.makefile("rb");
            std::string got;
            for (;;) {
                try {
                    std::string part = co_await cosock::with_timeout(f.read1(30000), 1ms);
                    if (part.empty()) break;
                    got += part;
                } catch (const cosock::timeout_error&) {
                    ++abandoned;
                }
            }
            co_return got;
        };
        auto r =
            co_await cosock::when_all(writer(p.client, data, flushes_abandoned), reader(p.server, reads_abandoned));
        CHECK(std::get<1>(r) == data);
        CHECK(flushes_abandoned > 0);
        CHECK(reads_abandoned > 0);
    }(s));
}

// ------------------------------------------------------------ many connections

BACKEND_TEST("TLS: many concurrent connections each echo 1 MiB, every byte checked") {
    std::size_t count = 1000;
    if (B::value == cosock::backend::select) count = 400; // two descriptors each, under FD_SETSIZE
    if (under_asan()) {
        count = 50;
        MESSAGE("UNDER ASAN: only " << count << " concurrent TLS connections instead of 1000");
    } else if (count != 1000) {
        MESSAGE("select: " << count << " concurrent TLS connections (FD_SETSIZE), not 1000");
    }
    cosock::scheduler s{B::value};
    auto t0 = std::chrono::steady_clock::now();
    s.run([](cosock::scheduler& s, std::size_t count) -> task<> {
        constexpr std::size_t size = 1 << 20;
        // Connection i sends big[i * 37 % 4096, + 1 MiB): bytes crossing
        // between connections would show.
        const std::string big = pattern(size + 4096, 99);
        cosock::socket srv = listener(s);
        auto cctx = client_ctx();
        struct tally {
            std::size_t server_failures = 0, served = 0;
            std::string first_failure;
        } t;
        auto one = [](cosock::socket conn, cosock::ssl_context ctx, tally& t) -> task<> {
            try {
                conn.settimeout(120s);
                cosock::wrap_options o{.server_side = true};
                cosock::ssl_socket c = co_await ctx.wrap_socket(std::move(conn), o);
                co_await echo_until_closed(c);
                ++t.served;
            } catch (const std::exception& e) {
                if (t.server_failures++ == 0) t.first_failure = e.what();
            }
        };
        auto serve = [](cosock::scheduler& s, cosock::socket& srv, std::size_t count, tally& t,
                        decltype(one) one) -> task<> {
            auto sctx = server_ctx();
            for (std::size_t i = 0; i < count; ++i) {
                auto [conn, peer] = co_await srv.accept();
                s.spawn(one(std::move(conn), sctx, t));
            }
        };
        auto client = [](cosock::scheduler& s, cosock::address at, cosock::ssl_context ctx,
                         std::string_view data) -> task<bool> {
            cosock::socket sock{s};
            sock.settimeout(120s);
            co_await sock.connect(at);
            cosock::wrap_options o{.server_hostname = "localhost"};
            cosock::ssl_socket c = co_await ctx.wrap_socket(std::move(sock), o);
            auto send = [](cosock::ssl_socket& c, std::string_view data) -> task<> {
                co_await c.sendall(data);
                co_await c.shutdown();
            };
            auto check = [](cosock::ssl_socket& c, std::string_view data) -> task<bool> {
                std::vector<char> buf(32768);
                std::size_t at = 0;
                bool same = true;
                while (std::size_t n = co_await c.recv(buf)) {
                    same = same && at + n <= data.size() && std::memcmp(buf.data(), data.data() + at, n) == 0;
                    at += n;
                }
                co_return same&& at == data.size();
            };
            auto r = co_await cosock::when_all(send(c, data), check(c, data));
            co_return std::get<1>(r);
        };
        std::vector<task<bool>> clients;
        for (std::size_t i = 0; i < count; ++i)
            clients.push_back(client(s, srv.getsockname(), cctx, std::string_view(big).substr(i * 37 % 4096, size)));
        auto r = co_await cosock::when_all(serve(s, srv, count, t, one), cosock::when_all(std::move(clients)));
        std::size_t good = 0;
        for (bool ok : std::get<1>(r)) good += ok;
        CHECK(good == count);
        while (t.served + t.server_failures < count) co_await cosock::sleep_for(1ms);
        CHECK(t.server_failures == 0);
        CHECK(t.first_failure == "");
        CHECK(t.served == count);
    }(s, count));
    MESSAGE(
        count << " TLS connections echoed 1 MiB each in "
              << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
              << " ms");
}

// ------------------------------------------------------------ bad input

BACKEND_TEST("TLS: bad input is a clear exception naming it") {
    auto what = [](auto f) -> std::string {
        try {
            f();
        } catch (const std::exception& e) {
            return e.what();
        }
        return "(nothing thrown)";
    };
    auto has = [](const std::string& text, const char* part) {
        INFO(text);
        CHECK(text.find(part) != std::string::npos);
    };
    auto ctx = cosock::ssl_context::server();
    has(what([&] { ctx.load_cert_chain(certs().at("missing.pem")); }), "missing.pem");
    has(what([&] { ctx.load_cert_chain(certs().at("missing.pem")); }), "No such file");
    has(what([&] { ctx.load_cert_chain(certs().at("server.pem"), certs().at("client.key")); }),
        "does not match the certificate");
    has(what([&] { ctx.load_cert_chain(certs().at("server.pem"), certs().at("server_enc.key"), "wrong"); }),
        "server_enc.key");
    // An encrypted key without a password fails at once instead of prompting.
    has(what([&] { ctx.load_cert_chain(certs().at("server.pem"), certs().at("server_enc.key")); }), "server_enc.key");
    CHECK(what([&] { ctx.load_cert_chain(certs().at("server.pem"), certs().at("server_enc.key"), "secret"); }) ==
          "(nothing thrown)");
    CHECK_THROWS_AS(ctx.load_cert_chain(certs().at("missing.pem")), cosock::ssl_error);

    has(what([&] { ctx.set_alpn_protocols({"h2", ""}); }), "empty");
    has(what([&] { ctx.set_alpn_protocols({std::string(256, 'a')}); }), "longer than 255 bytes");
    CHECK_THROWS_AS(ctx.set_alpn_protocols({""}), std::invalid_argument);
    CHECK_NOTHROW(ctx.set_alpn_protocols({std::string(255, 'a')}));
    has(what([&] { ctx.set_alpn_protocols(std::vector<std::string>(300, std::string(255, 'a'))); }), "76800 bytes");
    has(what([&] { ctx.set_alpn_protocols(std::vector<std::string>(249, std::string(254, 'a'))); }), "at most 63481");
    CHECK_NOTHROW(ctx.set_alpn_protocols(std::vector<std::string>(248, std::string(254, 'a'))));
    has(what([&] { ctx.set_ciphers("NO-SUCH-CIPHER"); }), "set_ciphers");
    has(what([&] { ctx.set_ciphersuites("TLS_AES_128_GCM_SHA256:NO_SUCH_SUITE"); }), "'NO_SUCH_SUITE'");
    has(what([&] { ctx.set_ciphersuites(""); }), "no cipher suite named");
    has(what([&] { ctx.set_ciphersuites("::"); }), "no cipher suite named");
    has(what([&] { ctx.load_verify_locations({}); }), "all empty");
    has(what([&] { ctx.load_verify_locations({}, {}, "not a certificate"); }), "cadata");

    auto client = cosock::ssl_context::client();
    CHECK(client.check_hostname());
    CHECK(client.verify_mode() == cosock::cert_required);
    has(what([&] { client.set_verify_mode(cosock::cert_none); }), "check_hostname");
    client.set_check_hostname(false);
    client.set_verify_mode(cosock::cert_none);
    client.set_check_hostname(true); // turns verification back on, as Python
    CHECK(client.verify_mode() == cosock::cert_required);
    client.set_minimum_version(cosock::tls_version::tlsv1_3);
    CHECK(client.minimum_version() == cosock::tls_version::tlsv1_3);
    CHECK(client.maximum_version() == cosock::tls_version::tlsv1_3);

    cosock::scheduler s{B::value};
    s.run([](cosock::scheduler& s, decltype(what) what, decltype(has) has) -> task<> {
        cosock::wrap_options o{.server_hostname = "localhost"};
        cosock::socket closed;
        has(what_of(co_await failure_of(client_ctx().wrap_socket(std::move(closed), o))), "wrap_socket");
        cosock::socket udp{s, cosock::af_inet, cosock::sock_dgram};
        has(what_of(co_await failure_of(client_ctx().wrap_socket(std::move(udp), o))), "stream socket");
        auto [a, b] = co_await tcp_pair(s);
        cosock::wrap_options no_name{};
        has(what_of(co_await failure_of(client_ctx().wrap_socket(std::move(a), no_name))), "server_hostname");
        cosock::wrap_options server_side{.server_side = true};
        has(what_of(co_await failure_of(client_ctx().wrap_socket(std::move(b), server_side))),
            "server_side with a client context");
        cosock::ssl_socket none;
        char buf[4];
        has(what([&] { (void)none.recv(buf); }), "recv: the ssl_socket is closed");
        // CA certificates given as PEM text work as a file does.
        std::ifstream ca_file(certs().at("ca.pem"));
        std::string pem((std::istreambuf_iterator<char>(ca_file)), std::istreambuf_iterator<char>());
        auto from_text = cosock::ssl_context::client();
        from_text.load_verify_locations({}, {}, pem);
        tls_pair p = co_await connect_pair(s, from_text, server_ctx());
        CHECK(p.client.version() == "TLSv1.3");
    }(s, what, has));
}
