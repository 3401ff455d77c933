// Smoke tests of the example programs: each server is started as its own
// process on a loopback port the kernel picks, driven by a real client (the
// example clients, or curl), then stopped. Every one runs on every backend.
#include "backends.hpp"
#include "child_process.hpp"

#include <string>

namespace {

std::string backend_name(cosock::backend b) { return std::string(cosock::to_string(b)); }

/// The example's path; the test is skipped loudly when the examples were not built.
std::string need_example(const char* name) {
    std::string p = example_path(name);
    if (p.empty()) MESSAGE("SKIPPED: example '" << name << "' not built (meson -Dexamples=false)");
    return p;
}

} // namespace

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

// ---- chat_server, line_server, http_hello, and the request parser ----------

#include "../examples/http_request.hpp"

#include <random>

namespace {

http::parse_status parse(std::string_view in, http::request& req, std::size_t max_head = http::default_max_head) {
    return http::parse_request(in, req, max_head);
}

http::parse_status status_of(std::string_view in) {
    http::request req;
    return parse(in, req);
}

} // namespace

TEST_CASE("examples: http_request parses a request head and says where it ends") {
    const std::string text = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.org\r\nAccept:  */* \r\n\r\nrest";
    http::request req;
    REQUIRE(parse(text, req) == http::parse_status::complete);
    CHECK(req.method == "GET");
    CHECK(req.target == "/index.html?q=1");
    CHECK(req.version_minor == 1);
    CHECK(req.keep_alive);
    REQUIRE(req.header_count == 2);
    CHECK(req.headers[0].name == "Host");
    CHECK(req.headers[1].value == "*/*"); // surrounding whitespace is not part of the value
    CHECK(text.substr(req.consumed) == "rest");
    CHECK(req.content_length == 0);
    CHECK_FALSE(req.has_transfer_encoding);
}

TEST_CASE("examples: http_request split at every byte is incomplete, then complete") {
    const std::vector<std::string> requests = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\nPOST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.0\nConnection: keep-alive\n\n",
    };
    for (const std::string& text : requests) {
        CAPTURE(text);
        http::request whole;
        REQUIRE(parse(text, whole) == http::parse_status::complete);
        CHECK(whole.consumed == text.size());
        for (std::size_t split = 0; split < text.size(); ++split) {
            CAPTURE(split);
            http::request req;
            CHECK(parse(std::string_view(text).substr(0, split), req) == http::parse_status::incomplete);
            std::string joined = text.substr(0, split) + text.substr(split);
            REQUIRE(parse(joined, req) == http::parse_status::complete);
            CHECK(req.consumed == whole.consumed);
            CHECK(req.method == whole.method);
            CHECK(req.keep_alive == whole.keep_alive);
        }
    }
}

TEST_CASE("examples: http_request keep-alive follows the version and Connection") {
    http::request req;
    REQUIRE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", req) == http::parse_status::complete);
    CHECK_FALSE(req.keep_alive);
    REQUIRE(parse("GET / HTTP/1.0\r\n\r\n", req) == http::parse_status::complete);
    CHECK(req.version_minor == 0);
    CHECK_FALSE(req.keep_alive);
    REQUIRE(parse("GET / HTTP/1.0\r\nconnection: Keep-Alive, foo\r\n\r\n", req) == http::parse_status::complete);
    CHECK(req.keep_alive);
    REQUIRE(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n", req) == http::parse_status::complete);
    CHECK_FALSE(req.keep_alive);
}

TEST_CASE("examples: http_request pipelined requests are parsed one at a time") {
    const std::string one = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n", two = "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    std::string both = one + two;
    http::request req;
    REQUIRE(parse(both, req) == http::parse_status::complete);
    CHECK(req.target == "/1");
    REQUIRE(req.consumed == one.size());
    REQUIRE(parse(std::string_view(both).substr(req.consumed), req) == http::parse_status::complete);
    CHECK(req.target == "/2");
}

TEST_CASE("examples: http_request body framing") {
    http::request req;
    REQUIRE(parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\ncontent-length: 42\r\n\r\n", req) ==
            http::parse_status::complete);
    CHECK(req.content_length == 42);
    REQUIRE(parse("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", req) ==
            http::parse_status::complete);
    CHECK(req.has_transfer_encoding);
    for (const char* bad : {"12a", "-1", "+1", "", "1 2", "99999999999999999999999", "0x10"}) {
        CAPTURE(bad);
        CHECK(status_of(std::string("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ") + bad + "\r\n\r\n") ==
              http::parse_status::bad_request);
    }
    CHECK(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") ==
          http::parse_status::bad_request);
}

TEST_CASE("examples: http_request refuses malformed heads as soon as a line shows it") {
    for (const char* bad : {
             "GET /\r\n\r\n",
             "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
             "GET / http/1.1\r\nHost: a\r\n\r\n",
             "GET / HTTP/2.0\r\n\r\n",
             "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",
             "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
             "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n",
             "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
             "GET / HTTP/1.1\r\nX: a\r\n\r\n",
             "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
             "GET / HTTP/1.1\r\n: empty\r\n\r\n",
         }) {
        CAPTURE(bad);
        CHECK(status_of(bad) == http::parse_status::bad_request);
    }
    // A bad line is refused before the head is complete.
    CHECK(status_of("GET / HTTP/1.1\r\nBad Name: x\r\nHost: a\r\n") == http::parse_status::bad_request);
    std::string nul_in_value("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 30);
    CHECK(status_of(nul_in_value) == http::parse_status::bad_request);
}

TEST_CASE("examples: http_request heads over the limit are too large, complete or not") {
    const std::string start = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
    std::string big = start + std::string(9 * 1024, 'v') + "\r\n\r\n";
    CHECK(status_of(big) == http::parse_status::headers_too_large);
    CHECK(status_of(std::string_view(big).substr(0, http::default_max_head)) == http::parse_status::headers_too_large);
    CHECK(status_of(std::string_view(big).substr(0, http::default_max_head - 1)) == http::parse_status::incomplete);
    // Exactly at the limit is fine.
    std::string fits = start + std::string(http::default_max_head - start.size() - 4, 'v') + "\r\n\r\n";
    REQUIRE(fits.size() == http::default_max_head);
    CHECK(status_of(fits) == http::parse_status::complete);
    CHECK(status_of(fits + "x") == http::parse_status::complete);
    std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
    for (std::size_t i = 0; i < http::max_headers; ++i) many += "X: y\r\n";
    CHECK(status_of(many + "\r\n") == http::parse_status::headers_too_large);
    // Endless empty lines before the request line count too.
    CHECK(status_of(std::string(http::default_max_head, '\n')) == http::parse_status::headers_too_large);
}

TEST_CASE("examples: http_request survives random mutations of valid requests") {
    const std::string seed = "POST /x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n";
    std::mt19937 rng(12345);
    const std::string alphabet = "\r\n :\t\x7f\x80\0aZ0-/,GET HTTP/1.1";
    for (int round = 0; round < 20000; ++round) {
        std::string text = seed;
        for (int edits = 1 + int(rng() % 4); edits > 0; --edits) {
            std::size_t at = rng() % (text.size() + 1);
            char c = alphabet[rng() % alphabet.size()];
            switch (rng() % 3) {
            case 0:
                text.insert(at, 1, c);
                break;
            case 1:
                if (at < text.size()) text.erase(at, 1);
                break;
            default:
                if (at < text.size()) text[at] = c;
                break;
            }
        }
        http::request req;
        auto status = parse(text, req, 64);
        if (status == http::parse_status::complete) {
            CHECK(req.consumed <= std::min<std::size_t>(text.size(), 64));
            CHECK(req.header_count <= http::max_headers);
        }
    }
}
