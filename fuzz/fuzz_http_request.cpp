// Fuzz target: the HTTP/1.x request-head parser of examples/http_hello. For
// any bytes it must return one of its four answers without reading past the
// input, and the answers must agree with each other: a complete head is also
// complete when more bytes follow it and incomplete when cut short; every
// view it returns points into the input; a bad prefix stays bad.
#include "http_request.hpp"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace {

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // An exact-size copy, so that ASan catches a read one byte past the end.
    std::unique_ptr<char[]> copy(new char[size ? size : 1]);
    std::copy(data, data + size, copy.get());
    std::string_view in(copy.get(), size);

    static http::request req; // large (64 headers): kept out of the stack frame
    const std::size_t max_head = 64 + (size % 4096);
    http::parse_status st = http::parse_request(in, req, max_head);
    switch (st) {
    case http::parse_status::complete: {
        if (req.consumed == 0 || req.consumed > size || req.consumed > max_head) std::abort();
        if (!inside(req.method, in) || !inside(req.target, in) || req.header_count > http::max_headers) std::abort();
        for (std::size_t i = 0; i < req.header_count; ++i)
            if (!inside(req.headers[i].name, in) || !inside(req.headers[i].value, in)) std::abort();
        if (req.has_transfer_encoding && req.content_length != 0) std::abort();
        // Exactly the head: complete again, with the same length.
        static http::request again;
        if (http::parse_request(in.substr(0, req.consumed), again, max_head) != http::parse_status::complete ||
            again.consumed != req.consumed)
            std::abort();
        // One byte short of its end: not yet complete.
        if (http::parse_request(in.substr(0, req.consumed - 1), again, max_head) == http::parse_status::complete)
            std::abort();
        break;
    }
    case http::parse_status::incomplete:
        // Every prefix of a valid beginning is a valid beginning.
        if (size > 0 && http::parse_request(in.substr(0, size / 2), req, max_head) != http::parse_status::incomplete)
            std::abort();
        break;
    case http::parse_status::bad_request:
    case http::parse_status::headers_too_large:
        break;
    default:
        std::abort();
    }
    return 0;
}
