// makefile()'s arguments, checked and turned into what a file object does.
// The checks follow Python's socket.makefile() and open(); each refusal is a
// std::invalid_argument that quotes the bad value.
#pragma once

#include <cctype>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <cosock/detail/read_buffer.hpp>

namespace cosock::detail {

struct file_mode {
    bool readable = false;
    bool writable = false;
    bool binary = false;
    bool unbuffered = false;     // buffering=0: take from the kernel only what a call needs, write at once
    bool line_buffering = false; // buffering=1 in text mode: a write with "\n" or "\r" flushes
    std::size_t buffer_size = 0;
    newline_kind read_newline = newline_kind::lf;
    bool translate_cr = false;             // newline=None: "\r\n" and "\r" are read as "\n"
    std::string_view write_newline = "\n"; // what a written "\n" becomes
};

/// Python's repr-like quoting, so a bad "\t" shows as '\t' in a message.
inline std::string quoted(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\n')
            out += "\\n";
        else if (c == '\r')
            out += "\\r";
        else if (c == '\t')
            out += "\\t";
        else if (c == '\'' || c == '\\')
            out += std::string("\\") + c;
        else if (std::isprint(static_cast<unsigned char>(c)))
            out += c;
        else {
            static constexpr char hex[] = "0123456789abcdef";
            out += "\\x";
            out += hex[static_cast<unsigned char>(c) >> 4];
            out += hex[static_cast<unsigned char>(c) & 15];
        }
    }
    return out + "'";
}

[[noreturn]] inline void bad_file_argument(const std::string& what) {
    throw std::invalid_argument("makefile: " + what);
}

/// Python's codec names for UTF-8, compared as Python does: any case, with
/// '_' or ' ' for '-'.
inline bool is_utf8(std::string_view name) {
    std::string n;
    for (char c : name) n += c == '_' || c == ' ' ? '-' : char(std::tolower(static_cast<unsigned char>(c)));
    return n == "utf-8" || n == "utf8" || n == "u8" || n == "utf";
}

inline file_mode parse_file_mode(std::string_view mode, int buffering, std::optional<std::string_view> encoding,
                                 std::optional<std::string_view> newline, std::size_t default_size) {
    file_mode m;
    // Python accepts any mix of r, w and b; cosock wants each letter at most
    // once and at least one of r and w, so "rr" or a lone "b" are not guesses.
    bool ok = !mode.empty();
    for (char c : mode) {
        bool& seen = c == 'r' ? m.readable : c == 'w' ? m.writable : m.binary;
        if ((c != 'r' && c != 'w' && c != 'b') || seen) ok = false;
        seen = true;
    }
    if (!ok || !(m.readable || m.writable))
        bad_file_argument("invalid mode " + quoted(mode) + " (expected r, w or rw, optionally with b)");

    if (buffering < -1)
        bad_file_argument("invalid buffering " + std::to_string(buffering) +
                          " (expected -1 for the default, 0, 1 or a size in bytes)");
    if (buffering == 0 && !m.binary)
        bad_file_argument("buffering=0 (unbuffered) needs a binary mode, not " + quoted(mode));
    m.unbuffered = buffering == 0;
    m.line_buffering = buffering == 1 && !m.binary; // binary: Python warns and uses the default
    m.buffer_size = buffering > 1 ? std::size_t(buffering) : default_size;

    if (m.binary) {
        if (encoding) bad_file_argument("binary mode " + quoted(mode) + " takes no encoding");
        if (newline) bad_file_argument("binary mode " + quoted(mode) + " takes no newline");
        return m;
    }
    if (encoding && !is_utf8(*encoding))
        bad_file_argument("unsupported encoding " + quoted(*encoding) + " (text mode is UTF-8 only)");
    if (!newline) { // None: universal newlines, translated to "\n"
        m.read_newline = newline_kind::universal;
        m.translate_cr = true;
    } else if (newline->empty()) {
        m.read_newline = newline_kind::universal;
    } else if (*newline == "\n") {
        m.read_newline = newline_kind::lf;
    } else if (*newline == "\r") {
        m.read_newline = newline_kind::cr;
        m.write_newline = "\r";
    } else if (*newline == "\r\n") {
        m.read_newline = newline_kind::crlf;
        m.write_newline = "\r\n";
    } else {
        bad_file_argument("illegal newline value " + quoted(*newline) +
                          " (expected none, '', '\\n', '\\r' or '\\r\\n')");
    }
    return m;
}

} // namespace cosock::detail
