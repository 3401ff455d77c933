// Fuzz target: the RESP request parser and the commands of examples/resp_server.
// For any bytes: parsing them whole and in pieces (as they arrive from a
// socket) finds the same requests and ends the same way; a multibulk
// request's arguments point into the input; and running the requests on a
// store appends exactly one well-formed RESP reply per request.
#include "resp.hpp"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct outcome {
    std::vector<std::vector<std::string>> requests; // those with arguments
    std::string end;                                // "incomplete", or the protocol error
};

// As the server does: the bytes not yet parsed stay at the front of a buffer
// that grows as pieces of `piece` bytes arrive.
outcome parse(std::string_view in, std::size_t piece) {
    resp::request_parser parser;
    outcome out;
    std::string buffer;
    std::size_t start = 0;
    for (std::size_t fed = 0; fed < in.size();) {
        std::size_t n = std::min(piece, in.size() - fed);
        buffer.append(in.substr(fed, n));
        fed += n;
        for (;;) {
            resp::parse_status st = parser.parse(std::string_view(buffer).substr(start));
            if (st == resp::parse_status::incomplete) break;
            if (st == resp::parse_status::error) {
                out.end = parser.error();
                return out;
            }
            if (parser.consumed() == 0 || parser.consumed() > buffer.size() - start) std::abort();
            if (!parser.args().empty()) out.requests.emplace_back(parser.args().begin(), parser.args().end());
            start += parser.consumed();
        }
        buffer.erase(0, start);
        start = 0;
    }
    out.end = "incomplete";
    return out;
}

// Skips one RESP2 reply at `at`; false if there is none, whole and well formed.
bool skip_reply(std::string_view r, std::size_t& at, int depth = 0) {
    if (at >= r.size() || depth > 8) return false;
    std::size_t end = r.find("\r\n", at);
    if (end == std::string_view::npos) return false;
    char kind = r[at];
    std::string_view line = r.substr(at + 1, end - at - 1);
    if (line.find_first_of("\r\n") != std::string_view::npos) return false;
    at = end + 2;
    long long n = 0;
    switch (kind) {
    case '+':
    case '-':
        return true;
    case ':':
        return resp::parse_integer(line, n);
    case '$':
        if (!resp::parse_integer(line, n) || n < -1) return false;
        if (n == -1) return true;
        if (r.size() - at < static_cast<std::size_t>(n) + 2 || r.substr(at + static_cast<std::size_t>(n), 2) != "\r\n")
            return false;
        at += static_cast<std::size_t>(n) + 2;
        return true;
    case '*':
        if (!resp::parse_integer(line, n) || n < 0) return false;
        for (long long i = 0; i < n; ++i)
            if (!skip_reply(r, at, depth + 1)) return false;
        return true;
    default:
        return false;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // An exact-size copy, so that ASan catches a read one byte past the end.
    std::unique_ptr<char[]> copy(new char[size ? size : 1]);
    std::copy(data, data + size, copy.get());
    std::string_view in(copy.get(), size);

    // Whole, then in pieces: the same requests, the same end.
    outcome whole = parse(in, in.size() + 1);
    for (std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{3} + size % 13}) {
        outcome split = parse(in, piece);
        if (split.requests != whole.requests || split.end != whole.end) std::abort();
    }

    // A multibulk request's arguments are views into the bytes given.
    resp::request_parser parser;
    if (!in.empty() && in[0] == '*' && parser.parse(in) == resp::parse_status::complete)
        for (std::string_view a : parser.args())
            if (!a.empty() && (a.data() < in.data() || a.data() + a.size() > in.data() + in.size())) std::abort();

    // Run them: one reply each, well formed, until QUIT.
    static resp::database db;
    db.clear();
    resp::session me{1, {}, false};
    resp::server_stats stats;
    std::string out;
    resp::context ctx{db, me, stats, out};
    for (const auto& request : whole.requests) {
        std::vector<std::string_view> args(request.begin(), request.end());
        std::size_t before = out.size();
        resp::execute(ctx, args);
        std::size_t at = before;
        if (!skip_reply(out, at) || at != out.size()) std::abort();
        if (me.quit) break;
    }
    return 0;
}
