// What the TLS tests share. The certificates, made once per run by the openssl command
// in a temporary directory that is removed at exit: no private key is
// committed. certs().at("server.pem") etc.: a CA (ca.pem), a server
// certificate for localhost and 127.0.0.1 signed by it (server.pem/.key, the
// key also encrypted with "secret" as server_enc.key), an expired one
// (expired), one from another CA (other, other_ca), a client certificate
// (client). Contexts over them, connected pairs, and test streams.
#pragma once

#include "backends.hpp"

#include <cosock/tls.hpp>

#include <chrono>
#include <cstdint>
#include <string_view>
#include <utility>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unistd.h>
#include <vector>

struct test_certs {
    std::string dir;
    std::string at(const char* name) const { return dir + "/" + name; }
};

inline std::string& certs_dir_to_remove() {
    static std::string d;
    return d;
}

inline const test_certs& certs() {
    static const test_certs c = [] {
        std::string tmpl = (std::filesystem::temp_directory_path() / "cosock-tls-XXXXXX").string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        certs_dir_to_remove() = tmpl;
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(certs_dir_to_remove(), ec);
        });
        std::string script = "set -e; cd '" + tmpl + R"(';
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
key ca.key; openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj "/CN=cosock test CA"
key other_ca.key; openssl req -x509 -new -key other_ca.key -out other_ca.pem -days 30 -subj "/CN=another CA"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
printf 'extendedKeyUsage=clientAuth\n' > client.ext
leaf() { key "$1.key"; openssl req -new -key "$1.key" -out "$1.csr" -subj "$4";
         openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days "$3" -extfile "$5" -out "$1.pem"; }
leaf server ca 30 "/CN=localhost/O=cosock" san.ext
leaf expired ca -1 "/CN=localhost" san.ext
leaf other other_ca 30 "/CN=localhost" san.ext
leaf client ca 30 "/CN=cosock test client" client.ext
openssl pkey -in server.key -aes256 -passout pass:secret -out server_enc.key
)";
        std::string cmd = "{ " + script + "\n} >'" + tmpl + "/openssl.log' 2>&1";
        if (std::system(cmd.c_str()) != 0) {
            std::ifstream log(tmpl + "/openssl.log");
            std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
            throw std::runtime_error("making the test certificates with openssl failed: " + text);
        }
        return test_certs{tmpl};
    }();
    return c;
}

inline cosock::ssl_context server_ctx(const char* cert = "server.pem", const char* key = "server.key") {
    auto c = cosock::ssl_context::server();
    c.load_cert_chain(certs().at(cert), certs().at(key));
    return c;
}
inline cosock::ssl_context client_ctx(const char* ca = "ca.pem") {
    auto c = cosock::ssl_context::client();
    c.load_verify_locations(certs().at(ca));
    return c;
}

struct tls_pair {
    cosock::ssl_socket client, server;
};

/// A connected TCP pair over loopback (the client's end first).
inline cosock::task<std::pair<cosock::socket, cosock::socket>> tcp_pair(cosock::scheduler& s) {
    cosock::socket srv = listener(s);
    cosock::socket c{s};
    co_await c.connect(srv.getsockname());
    auto [conn, peer] = co_await srv.accept();
    co_return std::pair<cosock::socket, cosock::socket>{std::move(c), std::move(conn)};
}

/// Both ends of a TLS connection, handshakes done (each side's timeout: 20 s,
/// so that a failing test cannot hang).
inline cosock::task<tls_pair> connect_pair(cosock::scheduler& s, cosock::ssl_context cctx, cosock::ssl_context sctx,
                            std::string hostname = "localhost") {
    auto [a, b] = co_await tcp_pair(s);
    a.settimeout(std::chrono::seconds(20));
    b.settimeout(std::chrono::seconds(20));
    cosock::wrap_options copt{.server_hostname = hostname};
    cosock::wrap_options sopt{.server_side = true};
    auto both = co_await cosock::when_all(cctx.wrap_socket(std::move(a), copt), sctx.wrap_socket(std::move(b), sopt));
    co_return tls_pair{std::move(std::get<0>(both)), std::move(std::get<1>(both))};
}
inline cosock::task<tls_pair> connect_pair(cosock::scheduler& s) { return connect_pair(s, client_ctx(), server_ctx()); }

/// Byte i of the test stream `seed`.
inline char byte_at(std::uint64_t seed, std::size_t i) {
    std::uint64_t x = (seed + 1) * 0x9e3779b97f4a7c15ULL + i / 8;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 32;
    return char(x >> (8 * (i % 8)));
}
inline std::string pattern(std::size_t n, std::uint64_t seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = byte_at(seed, i);
    return s;
}

inline cosock::task<std::string> read_to_end(cosock::ssl_socket& c) {
    std::string got;
    std::vector<char> buf(65536);
    while (std::size_t n = co_await c.recv(buf)) got.append(buf.data(), n);
    co_return got;
}

inline cosock::task<> echo_until_closed(cosock::ssl_socket& c) {
    std::vector<char> buf(65536);
    while (std::size_t n = co_await c.recv(buf)) co_await c.sendall(std::string_view(buf.data(), n));
    co_await c.shutdown();
}

inline cosock::task<> send_then_shutdown(cosock::ssl_socket& c, const std::string& data) {
    co_await c.sendall(data);
    co_await c.shutdown();
}
