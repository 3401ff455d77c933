// The head of an HTTP/1.x request (RFC 9112), parsed by a pure function over
// bytes: no sockets, no allocation, views into the caller's buffer. Call it
// again with all the bytes received so far until it says complete; it never
// reads past `in`, so it can be tested at every split point and fuzzed alone.
// Only the head is parsed: the body (content_length bytes after `consumed`)
// is the caller's to read.
#pragma once

#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace http {

enum class parse_status {
    incomplete,        ///< a valid beginning: call again once more bytes arrived
    complete,          ///< a whole head, described in the request
    bad_request,       ///< not an HTTP/1.x request: answer 400 and close
    headers_too_large, ///< longer than max_head bytes or max_headers fields: 431 and close
};

struct header {
    std::string_view name, value;
};

inline constexpr std::size_t max_headers = 64;
inline constexpr std::size_t default_max_head = 8192;

struct request {
    std::string_view method, target;
    int version_minor = 1; ///< 0 for HTTP/1.0; HTTP/1.2 and later minors behave as 1.1
    std::array<header, max_headers> headers{};
    std::size_t header_count = 0;
    bool keep_alive = true;             ///< the version's default, overridden by Connection
    std::uint64_t content_length = 0;   ///< 0 when absent
    bool has_transfer_encoding = false; ///< the body is framed by Transfer-Encoding, not Content-Length
    std::size_t consumed = 0;           ///< bytes of the head, its final empty line included
};

namespace detail {

inline bool is_tchar(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos;
}

inline bool is_token(std::string_view s) {
    for (char ch : s)
        if (!is_tchar(static_cast<unsigned char>(ch))) return false;
    return !s.empty();
}

// Field names and connection options compare without regard to ASCII case.
inline bool iequals(std::string_view a, std::string_view b) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c + ('a' - 'A')) : c; };
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Field values: visible ASCII, spaces, tabs and obs-text; never CR, LF or NUL.
inline bool is_field_value(std::string_view s) {
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (c < 0x20 ? c != '\t' : c == 0x7f) return false;
    }
    return true;
}

// "HTTP/1.1" → 1; anything other than HTTP/1.<digit> → -1 (HTTP/2 does not come this way).
inline int version_minor(std::string_view v) {
    if (v.size() != 8 || !v.starts_with("HTTP/1.") || v[7] < '0' || v[7] > '9') return -1;
    return v[7] - '0';
}

} // namespace detail

/// Parses the request head at the start of `in` into `req`. Lines may end in
/// CRLF or a bare LF; empty lines before the request line are skipped, as
/// RFC 9112 asks. A head (those empty lines included) longer than `max_head`
/// bytes is headers_too_large, whether or not its end has arrived.
inline parse_status parse_request(std::string_view in, request& req, std::size_t max_head = default_max_head) {
    using detail::iequals;
    req = request{};
    // Only the first max_head bytes can hold an acceptable head.
    const std::string_view head = in.substr(0, max_head);
    std::size_t pos = 0;
    std::string_view line;
    auto next_line = [&] {
        std::size_t lf = head.find('\n', pos);
        if (lf == std::string_view::npos) return false;
        line = head.substr(pos, lf - pos);
        if (line.ends_with('\r')) line.remove_suffix(1);
        pos = lf + 1;
        return true;
    };
    auto out_of_bytes = [&] {
        return in.size() >= max_head ? parse_status::headers_too_large : parse_status::incomplete;
    };

    do {
        if (!next_line()) return out_of_bytes();
    } while (line.empty());

    // request-line = method SP request-target SP HTTP-version
    std::size_t sp1 = line.find(' '), sp2 = line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return parse_status::bad_request;
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    req.version_minor = detail::version_minor(line.substr(sp2 + 1));
    if (!detail::is_token(req.method) || req.target.empty() || req.version_minor < 0) return parse_status::bad_request;
    for (char ch : req.target)
        if (unsigned char c = static_cast<unsigned char>(ch); c <= ' ' || c >= 0x7f) return parse_status::bad_request;

    bool close = false, keep_alive = false, has_length = false;
    int hosts = 0;
    for (;;) {
        if (!next_line()) return out_of_bytes();
        if (line.empty()) break;
        // No whitespace may precede the colon, and obsolete line folding
        // (a line starting with whitespace) is refused: both hide smuggling.
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos) return parse_status::bad_request;
        header h{line.substr(0, colon), detail::trim(line.substr(colon + 1))};
        if (!detail::is_token(h.name) || !detail::is_field_value(h.value)) return parse_status::bad_request;
        if (req.header_count == max_headers) return parse_status::headers_too_large;
        req.headers[req.header_count++] = h;

        if (iequals(h.name, "Content-Length")) {
            std::uint64_t n = 0;
            auto [end, ec] = std::from_chars(h.value.data(), h.value.data() + h.value.size(), n);
            // Digits only, and two Content-Length fields must agree.
            if (h.value.empty() || ec != std::errc() || end != h.value.data() + h.value.size() ||
                (has_length && n != req.content_length))
                return parse_status::bad_request;
            req.content_length = n;
            has_length = true;
        } else if (iequals(h.name, "Transfer-Encoding")) {
            req.has_transfer_encoding = true;
        } else if (iequals(h.name, "Host")) {
            ++hosts;
        } else if (iequals(h.name, "Connection")) {
            for (std::string_view rest = h.value; !rest.empty();) { // a comma-separated list of options
                std::size_t comma = rest.find(',');
                std::string_view option = detail::trim(rest.substr(0, comma));
                rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
                close = close || iequals(option, "close");
                keep_alive = keep_alive || iequals(option, "keep-alive");
            }
        }
    }
    // Both framings at once is the classic request-smuggling shape; RFC 9112
    // §6.1 allows refusing it, and a server that reads only one would desync.
    if (req.has_transfer_encoding && has_length) return parse_status::bad_request;
    // HTTP/1.1 requires exactly one Host field (RFC 9112 §3.2).
    if (hosts > 1 || (req.version_minor >= 1 && hosts == 0)) return parse_status::bad_request;
    req.keep_alive = !close && (req.version_minor >= 1 || keep_alive);
    req.consumed = pos;
    return parse_status::complete;
}

} // namespace http
