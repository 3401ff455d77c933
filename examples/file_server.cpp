// Serves the files of a directory over HTTP/1.1 with socket::sendfile: the
// bytes go from the page cache to the socket without passing through here.
//
//   file_server [--backend NAME] [--host IP] [--port N] [--root DIR] [--request-timeout SECONDS]
//
// GET and HEAD, keep-alive. A path is resolved in the directory (--root,
// default "."), symbolic links included, and refused with 403 when it leads
// outside it, 404 when nothing is there. A request head must arrive whole
// within --request-timeout (default 10 s); a transfer may take as long as it
// needs while the client keeps reading, and ends when the client stops
// reading for 60 s. The first line printed is "listening on HOST:PORT (BACKEND)".
// Try: curl -O http://127.0.0.1:8000/some/file
#include <cosock/cosock.hpp>

#include "http_request.hpp"
#include "options.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using cosock::task;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_head = 8192;

// A file to answer with, or the status saying why there is none.
struct lookup {
    int fd = -1;
    std::uint64_t size = 0;
    int status = 200;
};

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// %XX decoded; nullopt for a malformed escape or a NUL byte.
std::optional<std::string> percent_decoded(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size() || hex_digit(s[i + 1]) < 0 || hex_digit(s[i + 2]) < 0) return std::nullopt;
        int v = hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]);
        if (v == 0) return std::nullopt;
        out += char(v);
        i += 2;
    }
    return out;
}

// The file `target` names under `root` (a real path, no trailing slash).
lookup find(const std::string& root, std::string_view target) {
    target = target.substr(0, target.find_first_of("?#"));
    std::optional<std::string> path = percent_decoded(target);
    if (!path || path->empty() || (*path)[0] != '/') return {.status = 400};
    // ".." that climbs above the directory is refused before the file system
    // is asked, so that whether something exists out there is not told.
    int depth = 0;
    for (std::size_t at = 1; at <= path->size();) {
        std::size_t end = std::min(path->find('/', at), path->size());
        std::string_view segment = std::string_view(*path).substr(at, end - at);
        if (segment == "..") {
            if (--depth < 0) return {.status = 403};
        } else if (!segment.empty() && segment != ".") {
            ++depth;
        }
        at = end + 1;
    }
    char resolved[PATH_MAX];
    if (!::realpath((root + *path).c_str(), resolved)) return {.status = errno == ENOENT || errno == ENOTDIR ? 404 : 403};
    std::string real = resolved;
    if (real != root && !real.starts_with(root + "/")) return {.status = 403}; // outside the directory
    int fd = ::open(resolved, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {.status = errno == ENOENT ? 404 : 403};
    struct stat st {};
    if (::fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return {.status = 404}; // directories are not listed
    }
    return {fd, std::uint64_t(st.st_size), 200};
}

std::string_view reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    default: return "Request Header Fields Too Large";
    }
}

// Reads one request head into `in` (which may hold bytes of it already):
// false when the client closed before a whole one.
task<bool> read_head(cosock::socket& conn, std::string& in, http::request& req,
                     http::parse_status& status) {
    for (;;) {
        status = http::parse_request(in, req, max_head);
        if (status != http::parse_status::incomplete) co_return true;
        std::string more = co_await conn.recv(4096);
        if (more.empty()) co_return false;
        in += more;
    }
}

task<> serve_client(cosock::socket conn, std::string root, std::chrono::nanoseconds request_timeout) {
    conn.settimeout(60s); // a client that stops reading for this long is dropped
    std::string in;
    try {
        for (;;) {
            http::request req;
            http::parse_status parsed{};
            bool got = co_await cosock::with_timeout(read_head(conn, in, req, parsed), request_timeout);
            if (!got) co_return;
            int status = 200;
            lookup file;
            bool keep = parsed == http::parse_status::complete && req.keep_alive && req.content_length == 0 &&
                        !req.has_transfer_encoding;
            if (parsed == http::parse_status::bad_request)
                status = 400;
            else if (parsed == http::parse_status::headers_too_large)
                status = 431;
            else if (req.method != "GET" && req.method != "HEAD")
                status = 405;
            else
                status = (file = find(root, req.target)).status;
            std::uint64_t length = status == 200 ? file.size : reason(status).size() + 1;
            std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason(status)) +
                               "\r\nContent-Length: " + std::to_string(length) +
                               (keep ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
            if (status != 200) head += std::string(reason(status)) + "\n";
            bool head_only = parsed == http::parse_status::complete && req.method == "HEAD";
            if (head_only && status != 200) head.resize(head.find("\r\n\r\n") + 4);
            if (parsed == http::parse_status::complete) in.erase(0, req.consumed);
            try {
                co_await conn.sendall(head);
                if (status == 200 && !head_only && file.size > 0) {
                    std::size_t sent = co_await conn.sendfile(file.fd);
                    if (sent < file.size) keep = false; // the file shrank: the length we said is wrong
                }
            } catch (...) {
                if (file.fd >= 0) ::close(file.fd);
                throw;
            }
            if (file.fd >= 0) ::close(file.fd);
            if (!keep) break;
        }
        conn.shutdown(cosock::shut_wr);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "file_server: %s\n", e.what());
    }
}

task<> serve(cosock::scheduler& s, cosock::socket srv, std::string root, std::chrono::nanoseconds request_timeout) {
    for (;;) {
        auto [conn, peer] = co_await example::accept_patiently(srv, "file_server");
        s.spawn(serve_client(std::move(conn), root, request_timeout));
    }
}

} // namespace

int main(int argc, char** argv) {
    example::options opt(argc, argv, "[--host IP] [--port N] [--root DIR] [--request-timeout SECONDS]",
                         {"--host", "--port", "--root", "--request-timeout"});
    if (!opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    const cosock::address where = opt.server_address(8000);
    std::string dir = opt.text("--root", ".");
    char real[PATH_MAX];
    if (!::realpath(dir.c_str(), real)) opt.fail("--root '" + dir + "': " + std::generic_category().message(errno));
    std::string root = real;
    if (root == "/") root.clear(); // "/x" starts with root + "/"
    auto request_timeout = opt.duration("--request-timeout", 10);
    try {
        cosock::scheduler s{opt.backend()};
        cosock::socket srv = cosock::create_server(s, where);
        example::announce(srv, s);
        s.run(serve(s, std::move(srv), root, request_timeout));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "file_server: %s\n", e.what());
    }
    return 1;
}
