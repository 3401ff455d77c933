// The read side of a file object: the bytes received and not yet read, the
// translation of "\r\n" and "\r" to "\n" (Python's newline=None), and the
// search for the end of a line under each newline convention.
//
// Everything here is synchronous. The file object receives straight into
// prepare()'s room and commits the count in the same step, so no received
// byte is ever held only by a suspended coroutine.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace cosock::detail {

/// What ends a line when reading.
enum class newline_kind : unsigned char {
    lf,        // "\n" (binary mode, newline="\n")
    cr,        // "\r"
    crlf,      // "\r\n"
    universal, // any of "\n", "\r\n", "\r" (newline="" or None)
};

inline constexpr std::size_t no_limit = std::size_t(-1);

/// Where the first line of `v` ends (its length, terminator included), or
/// no_limit when only more input can tell. `from`: no terminator starts
/// before it (an earlier search looked). `limit` caps the length as Python's
/// readline(size) does; `at_eof`: nothing follows `v`.
inline std::size_t line_end(std::string_view v, newline_kind nl, std::size_t from, std::size_t limit,
                            bool at_eof) noexcept {
    std::size_t end = no_limit;
    bool cr_undecided = false; // a '\r' ends `v`: is it "\r" or the start of "\r\n"?
    switch (nl) {
    case newline_kind::lf:
    case newline_kind::cr:
        if (auto p = v.find(nl == newline_kind::lf ? '\n' : '\r', from); p != v.npos) end = p + 1;
        break;
    case newline_kind::crlf:
        if (auto p = v.find("\r\n", from); p != v.npos) end = p + 2;
        break;
    case newline_kind::universal:
        if (auto p = v.find_first_of("\r\n", from); p != v.npos) {
            if (v[p] == '\n')
                end = p + 1;
            else if (p + 1 < v.size())
                end = p + (v[p + 1] == '\n' ? 2 : 1);
            else if (at_eof)
                end = p + 1;
            else
                cr_undecided = true;
        }
        break;
    }
    if (end != no_limit) return std::min(end, limit);
    // A cut at `limit` falls before whatever the undecided '\r' turns out to be.
    if (cr_undecided) return limit != no_limit && v.size() >= limit ? limit : no_limit;
    if (v.size() >= limit) return limit;
    return at_eof ? v.size() : no_limit;
}

/// Received bytes: [pos, end) are ready to read; [end, raw) is at most one
/// '\r' held back until the next byte tells whether it starts "\r\n".
class read_buffer {
  public:
    read_buffer() noexcept = default;
    read_buffer(std::size_t chunk, bool translate_cr) noexcept : chunk_(chunk), translate_(translate_cr) {}
    read_buffer(read_buffer&& other) noexcept { *this = std::move(other); }
    read_buffer& operator=(read_buffer&& other) noexcept {
        buf_ = std::move(other.buf_);
        other.buf_.clear();
        pos_ = std::exchange(other.pos_, 0);
        end_ = std::exchange(other.end_, 0);
        raw_ = std::exchange(other.raw_, 0);
        chunk_ = other.chunk_;
        translate_ = other.translate_;
        return *this;
    }

    /// The bytes ready to be read (translated, in newline=None mode).
    std::string_view view() const noexcept { return {buf_.data() + pos_, end_ - pos_}; }
    std::size_t size() const noexcept { return end_ - pos_; }

    /// Room to receive into: at least `need` bytes; in buffered mode as much
    /// as there is (about a chunk), in `exact` mode exactly `need`, so an
    /// unbuffered reader never takes more from the kernel than it asked for.
    std::span<char> prepare(std::size_t need, bool exact) {
        if (pos_ == raw_) pos_ = end_ = raw_ = 0;
        std::size_t want = exact ? need : std::max(need, chunk_);
        if (buf_.size() - raw_ < want && pos_ > 0) {
            std::memmove(buf_.data(), buf_.data() + pos_, raw_ - pos_);
            end_ -= pos_;
            raw_ -= pos_;
            pos_ = 0;
        }
        std::size_t room = buf_.size() - raw_;
        // Grow for what the caller needs, or when a long partial line fills
        // most of the buffer; doubling keeps a long line's cost linear.
        if (room < need || (!exact && room < chunk_ / 2))
            buf_.resize(std::max(raw_ + need, exact ? 0 : std::max(chunk_, 2 * buf_.size())));
        room = buf_.size() - raw_;
        return {buf_.data() + raw_, exact ? need : room};
    }

    /// Accounts for `n` bytes received into prepare()'s room; `at_eof`: the
    /// stream ended (n == 0), so a held-back '\r' is final.
    void commit(std::size_t n, bool at_eof) noexcept {
        raw_ += n;
        if (!translate_) {
            end_ = raw_;
            return;
        }
        // Translate [end, raw) in place: the output never outgrows the input.
        char* b = buf_.data();
        std::size_t in = end_, out = end_;
        while (in < raw_) {
            const void* cr = std::memchr(b + in, '\r', raw_ - in);
            std::size_t stop = cr ? std::size_t(static_cast<const char*>(cr) - b) : raw_;
            if (out != in) std::memmove(b + out, b + in, stop - in);
            out += stop - in;
            in = stop;
            if (in == raw_ || (in + 1 == raw_ && !at_eof)) break;
            b[out++] = '\n';
            in += in + 1 < raw_ && b[in + 1] == '\n' ? 2 : 1;
        }
        end_ = out;
        if (in < raw_) b[out++] = '\r'; // held back: the next byte decides
        raw_ = out;
    }

    /// Removes the first `n` ready bytes and returns them.
    std::string take(std::size_t n) {
        std::string out;
        if (pos_ == 0 && n == raw_ && n >= chunk_) {
            // A large read that is the whole buffer: hand the storage over.
            out = std::exchange(buf_, std::string());
            out.resize(n);
            end_ = raw_ = 0;
            return out;
        }
        out.assign(buf_.data() + pos_, n);
        pos_ += n;
        return out;
    }

    /// Removes the first `n` ready bytes.
    void consume(std::size_t n) noexcept { pos_ += n; }

    /// Forgets everything and frees the storage.
    void clear() noexcept {
        buf_ = std::string();
        pos_ = end_ = raw_ = 0;
    }

  private:
    std::string buf_; // its size is the capacity in use
    std::size_t pos_ = 0, end_ = 0, raw_ = 0;
    std::size_t chunk_ = 0;
    bool translate_ = false;
};

} // namespace cosock::detail
