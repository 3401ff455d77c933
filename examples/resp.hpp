// The Redis side of examples/resp_server.cpp, with no sockets in it: the
// RESP2 request parser (multibulk and inline), the reply encoders, an
// in-memory string store with expiry, and the commands, which append their
// replies to a string. Each part is a function over bytes, so the tests and
// the fuzz target drive it directly. Replies and error texts are Redis 7.0's.
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace resp {

constexpr std::size_t max_bulk = 512u << 20;     // proto-max-bulk-len: one argument, one value
constexpr long long max_multibulk = 1024 * 1024; // arguments in one request
constexpr std::size_t max_inline = 64 * 1024;    // an inline request, or a '*' or '$' line, unfinished
constexpr std::string_view version = "7.0.0";    // the Redis version INFO claims to speak

// ---------------------------------------------------------------------------
// Numbers

/// Redis's string2ll: an optional '-' and decimal digits, no leading zero (so
/// "-0", "01", "+1", " 1" and "" are refused), in range of a long long.
inline bool parse_integer(std::string_view s, long long& out) {
    if (s.empty() || s.size() >= 21) return false;
    if (s.size() == 1 && s[0] == '0') {
        out = 0;
        return true;
    }
    std::size_t i = 0;
    bool negative = s[0] == '-';
    if (negative && ++i == s.size()) return false;
    if (s[i] < '1' || s[i] > '9') return false;
    unsigned long long v = 0;
    for (; i < s.size(); ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        // Up to 19 digits fit in 64 bits; a 20th may overflow, which the checks catch.
        if (__builtin_mul_overflow(v, 10ull, &v) || __builtin_add_overflow(v, static_cast<unsigned>(s[i] - '0'), &v))
            return false;
    }
    constexpr unsigned long long max = LLONG_MAX;
    if (negative) {
        if (v > max + 1) return false;
        out = v == max + 1 ? LLONG_MIN : -static_cast<long long>(v);
    } else {
        if (v > max) return false;
        out = static_cast<long long>(v);
    }
    return true;
}

/// ASCII lower case, as Redis compares command names (no locale).
constexpr char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

// ---------------------------------------------------------------------------
// Replies

inline void add_raw_number(std::string& out, long long v) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
    out.append(digits, end);
}

inline void add_status(std::string& out, std::string_view s) { out.append("+").append(s).append("\r\n"); }
inline void add_ok(std::string& out) { out.append("+OK\r\n"); }
inline void add_nil(std::string& out) { out.append("$-1\r\n"); }

/// "-TEXT\r\n"; a CR or LF inside TEXT (it may quote the client's bytes)
/// becomes a space, as in Redis, so the reply stays one line.
inline void add_error(std::string& out, std::string_view text) {
    out.append("-");
    std::size_t at = out.size();
    out.append(text);
    std::replace_if(
        out.begin() + static_cast<std::ptrdiff_t>(at), out.end(), [](char c) { return c == '\r' || c == '\n'; }, ' ');
    out.append("\r\n");
}

inline void add_integer(std::string& out, long long v) {
    out.append(":");
    add_raw_number(out, v);
    out.append("\r\n");
}

inline void add_bulk(std::string& out, std::string_view s) {
    out.append("$");
    add_raw_number(out, static_cast<long long>(s.size()));
    out.append("\r\n").append(s).append("\r\n");
}

inline void add_array(std::string& out, std::size_t n) {
    out.append("*");
    add_raw_number(out, static_cast<long long>(n));
    out.append("\r\n");
}

// ---------------------------------------------------------------------------
// Requests

enum class parse_status { complete, incomplete, error };

/// Finds one request at a time in a client's bytes. Every call looks at the
/// bytes from the start of the request not yet parsed, more of them than last
/// time when the previous call said `incomplete`; the parser keeps where it
/// got to, so a request that arrives a byte at a time costs linear time.
///
/// A request starting with '*' is a multibulk array of bulk strings
/// ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"); any other is an inline command, one
/// line of words as typed into telnet, with Redis's quoting ("a b", 'a b',
/// "\x41\n"). An empty line, "*0" or "*-1" is a complete request without
/// arguments, to be skipped. The limits and error texts are Redis's.
class request_parser {
  public:
    /// `complete`: args() and consumed() describe the request, until the next
    /// call (which then starts on the following request). `error`: error()
    /// says why, and the connection cannot go on.
    parse_status parse(std::string_view in) {
        if (done_) start_over();
        if (!multibulk_) {
            if (in.empty()) return parse_status::incomplete;
            if (in[0] != '*') return parse_inline(in);
            std::size_t line;
            if (!find_line(in, 0, '\r', line)) return line_missing(in, 0, "too big mbulk count string");
            long long n;
            if (!parse_integer(in.substr(1, line - 1), n) || n > max_multibulk)
                return fail("ERR Protocol error: invalid multibulk length");
            pos_ = line + 2;
            if (n <= 0) return finish(in);
            multibulk_ = true;
            remaining_ = n;
            spans_.reserve(static_cast<std::size_t>(std::min<long long>(n, 1024)));
        }
        while (remaining_ > 0) {
            if (bulk_ < 0) {
                std::size_t line;
                if (!find_line(in, pos_, '\r', line)) return line_missing(in, pos_, "too big bulk count string");
                if (in[pos_] != '$')
                    return fail(std::string("ERR Protocol error: expected '$', got '") + in[pos_] + "'");
                long long n;
                if (!parse_integer(in.substr(pos_ + 1, line - pos_ - 1), n) || n < 0 ||
                    static_cast<unsigned long long>(n) > max_bulk)
                    return fail("ERR Protocol error: invalid bulk length");
                pos_ = line + 2;
                bulk_ = n;
            }
            // As in Redis, the two bytes after the data are taken as its CRLF unseen.
            std::size_t need = static_cast<std::size_t>(bulk_) + 2;
            if (in.size() - pos_ < need) return parse_status::incomplete;
            spans_.emplace_back(pos_, static_cast<std::size_t>(bulk_));
            pos_ += need;
            bulk_ = -1;
            --remaining_;
        }
        return finish(in);
    }

    std::span<const std::string_view> args() const { return args_; }
    std::size_t consumed() const { return pos_; }
    const std::string& error() const { return error_; }

  private:
    void start_over() {
        done_ = multibulk_ = false;
        pos_ = scanned_ = 0;
        remaining_ = 0;
        bulk_ = -1;
        spans_.clear();
        args_.clear();
        words_.clear();
    }

    // The next `stop` at or after `from`, followed by one more byte (a line
    // "...\r\n" is whole once both are in): its index in `line`. Bytes already
    // searched are not searched again.
    bool find_line(std::string_view in, std::size_t from, char stop, std::size_t& line) {
        std::size_t at = std::max(from, scanned_);
        const void* hit = std::memchr(in.data() + at, stop, in.size() - at);
        if (hit == nullptr) {
            scanned_ = in.size();
            return false;
        }
        line = static_cast<std::size_t>(static_cast<const char*>(hit) - in.data());
        scanned_ = line;
        if (stop == '\r' && line + 2 > in.size()) return false;
        scanned_ = 0;
        return true;
    }

    parse_status line_missing(std::string_view in, std::size_t from, const char* too_big) {
        if (in.size() - from > max_inline) return fail(std::string("ERR Protocol error: ") + too_big);
        return parse_status::incomplete;
    }

    parse_status fail(std::string why) {
        error_ = std::move(why);
        done_ = true;
        return parse_status::error;
    }

    parse_status finish(std::string_view in) {
        for (auto [at, n] : spans_) args_.emplace_back(in.data() + at, n);
        done_ = true;
        return parse_status::complete;
    }

    parse_status parse_inline(std::string_view in) {
        std::size_t nl;
        if (!find_line(in, 0, '\n', nl)) return line_missing(in, 0, "too big inline request");
        std::size_t end = nl > 0 && in[nl - 1] == '\r' ? nl - 1 : nl;
        if (!split_words(in.substr(0, end))) return fail("ERR Protocol error: unbalanced quotes in request");
        pos_ = nl + 1;
        for (auto [at, n] : spans_) args_.emplace_back(words_.data() + at, n);
        done_ = true;
        return parse_status::complete;
    }

    static bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }
    static int hex_value(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

    // Redis's sdssplitargs: words apart at blanks; "..." with \n \r \t \b \a
    // \xHH and \<any>; '...' with \'; a closing quote must end its word.
    // The words go into words_, their places into spans_.
    bool split_words(std::string_view line) {
        std::size_t p = 0, n = line.size();
        auto at = [&](std::size_t i) { return i < n ? line[i] : '\0'; };
        for (;;) {
            while (p < n && std::isspace(static_cast<unsigned char>(line[p]))) ++p;
            if (p >= n) return true;
            std::size_t start = words_.size();
            bool in_double = false, in_single = false, done = false;
            while (!done) {
                char c = at(p);
                if (in_double) {
                    if (c == '\\' && at(p + 1) == 'x' && is_hex(at(p + 2)) && is_hex(at(p + 3))) {
                        words_ += static_cast<char>(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3)));
                        p += 3;
                    } else if (c == '\\' && p + 1 < n) {
                        char e = line[++p];
                        words_ += e == 'n'   ? '\n'
                                  : e == 'r' ? '\r'
                                  : e == 't' ? '\t'
                                  : e == 'b' ? '\b'
                                  : e == 'a' ? '\a'
                                             : e;
                    } else if (c == '"') {
                        if (p + 1 < n && !std::isspace(static_cast<unsigned char>(line[p + 1]))) return false;
                        done = true;
                    } else if (p >= n) {
                        return false;
                    } else {
                        words_ += c;
                    }
                } else if (in_single) {
                    if (c == '\\' && at(p + 1) == '\'') {
                        ++p;
                        words_ += '\'';
                    } else if (c == '\'') {
                        if (p + 1 < n && !std::isspace(static_cast<unsigned char>(line[p + 1]))) return false;
                        done = true;
                    } else if (p >= n) {
                        return false;
                    } else {
                        words_ += c;
                    }
                } else if (p >= n || c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                    done = true;
                } else if (c == '"') {
                    in_double = true;
                } else if (c == '\'') {
                    in_single = true;
                } else {
                    words_ += c;
                }
                if (p < n) ++p;
            }
            spans_.emplace_back(start, words_.size() - start);
        }
    }

    bool done_ = false, multibulk_ = false;
    std::size_t pos_ = 0;                                    // where parsing goes on, from the request's start
    std::size_t scanned_ = 0;                                // bytes searched for the end of a line without finding it
    long long remaining_ = 0;                                // bulk strings still to come
    long long bulk_ = -1;                                    // the length of the bulk string being read, or -1
    std::vector<std::pair<std::size_t, std::size_t>> spans_; // the arguments: offset, length
    std::vector<std::string_view> args_;
    std::string words_; // an inline request's words, unquoted
    std::string error_;
};

// ---------------------------------------------------------------------------
// Patterns

/// Redis's glob (stringmatchlen): '*', '?', '[abc]', '[^abc]', '[a-z]', and
/// '\' quoting the next character. An unterminated '[' ends with the pattern.
/// Iterative, so no pattern takes more than O(pattern × text) steps.
inline bool glob_match(std::string_view pat, std::string_view text, bool nocase = false) {
    auto fold = [nocase](char c) { return static_cast<int>(static_cast<signed char>(nocase ? lower(c) : c)); };
    // Whether the element at pat[p] matches c; `next` is the element after it.
    auto element = [&](std::size_t p, char ch, std::size_t& next) {
        const std::size_t n = pat.size();
        int c = fold(ch);
        if (pat[p] == '?') {
            next = p + 1;
            return true;
        }
        if (pat[p] == '[') {
            std::size_t i = p + 1;
            bool negate = i < n && pat[i] == '^', match = false;
            if (negate) ++i;
            for (; i < n && pat[i] != ']'; ++i) {
                if (pat[i] == '\\' && n - i >= 2) {
                    match = match || fold(pat[++i]) == c;
                } else if (n - i >= 3 && pat[i + 1] == '-') {
                    int lo = fold(pat[i]), hi = fold(pat[i + 2]);
                    if (lo > hi) std::swap(lo, hi);
                    match = match || (c >= lo && c <= hi);
                    i += 2;
                } else {
                    match = match || fold(pat[i]) == c;
                }
            }
            next = i < n ? i + 1 : n;
            return match != negate;
        }
        if (pat[p] == '\\' && n - p >= 2) ++p;
        next = p + 1;
        return fold(pat[p]) == c;
    };
    if (text.empty()) return pat.empty(); // as Redis: not even "*" matches an empty text
    std::size_t p = 0, t = 0, star = std::string_view::npos, star_t = 0;
    while (t < text.size()) {
        if (p < pat.size() && pat[p] == '*') {
            while (p < pat.size() && pat[p] == '*') ++p;
            if (p == pat.size()) return true;
            star = p;
            star_t = t;
            continue;
        }
        std::size_t next;
        if (p < pat.size() && element(p, text[t], next)) {
            p = next;
            ++t;
            continue;
        }
        if (star == std::string_view::npos) return false;
        p = star;
        t = ++star_t;
    }
    while (p < pat.size() && pat[p] == '*') ++p;
    return p == pat.size();
}

// ---------------------------------------------------------------------------
// The store

/// Milliseconds on the monotonic clock: deadlines are kept in it, so setting
/// the wall clock changes no TTL.
inline std::int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count() + 1; // never 0
}

struct entry {
    std::string value;
    std::int64_t expires = 0; // a now_ms() deadline; 0: never
};

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

/// Keys to string values. A key past its deadline is gone: a lookup that
/// meets it removes it (lazy expiry), and purge_expired() removes those whose
/// time has come in deadline order, so keys nobody asks for again do not stay.
class database {
  public:
    using table = std::unordered_map<std::string, entry, string_hash, std::equal_to<>>;

    /// The live entry of `key`, or nullptr.
    entry* find(std::string_view key) {
        auto it = map_.find(key);
        if (it == map_.end()) return nullptr;
        if (it->second.expires != 0 && now_ms() > it->second.expires) {
            erase(it);
            return nullptr;
        }
        return &it->second;
    }

    /// Sets `key` to `value` with the deadline `expires` (0: none), or keeping
    /// its deadline when `keep_ttl`. Returns the entry.
    entry& set(std::string_view key, std::string_view value, std::int64_t expires = 0, bool keep_ttl = false) {
        auto it = map_.find(key);
        if (it == map_.end())
            it = map_.emplace(std::string(key), entry{}).first;
        else if (it->second.expires != 0 && now_ms() > it->second.expires)
            keep_ttl = false; // a key past its deadline is a new key
        it->second.value.assign(value);
        if (!keep_ttl) set_deadline(*it, expires);
        return it->second;
    }

    bool erase(std::string_view key) {
        auto it = map_.find(key);
        if (it == map_.end()) return false;
        bool live = it->second.expires == 0 || now_ms() <= it->second.expires;
        erase(it);
        return live;
    }

    /// Gives the live key `key` the deadline `expires` (0: none).
    void expire_at(std::string_view key, std::int64_t expires) {
        auto it = map_.find(key);
        if (it != map_.end()) set_deadline(*it, expires);
    }

    /// Removes the keys whose deadline has passed, at most `limit` of them.
    void purge_expired(std::size_t limit = SIZE_MAX) {
        if (deadlines_.empty()) return;
        const std::int64_t now = now_ms();
        for (std::size_t n = 0; n < limit && !deadlines_.empty() && deadlines_.begin()->first < now; ++n)
            erase(map_.find(deadlines_.begin()->second));
    }

    /// Keys, live ones only.
    std::size_t size() {
        purge_expired();
        return map_.size();
    }
    std::size_t volatile_keys() {
        purge_expired();
        return deadlines_.size();
    }
    void clear() {
        deadlines_.clear();
        map_.clear();
    }

    /// Every live key matching `pattern`, sorted.
    std::vector<std::string_view> keys(std::string_view pattern) {
        purge_expired();
        std::vector<std::string_view> found;
        bool all = pattern == "*";
        for (auto& [key, e] : map_)
            if (all || glob_match(pattern, key)) found.emplace_back(key);
        std::sort(found.begin(), found.end());
        return found;
    }

  private:
    void erase(table::iterator it) {
        if (it->second.expires != 0) deadlines_.erase({it->second.expires, it->first});
        map_.erase(it);
    }

    void set_deadline(table::value_type& kv, std::int64_t expires) {
        if (kv.second.expires == expires) return;
        if (kv.second.expires != 0) deadlines_.erase({kv.second.expires, kv.first});
        kv.second.expires = expires;
        if (expires != 0) deadlines_.emplace(expires, kv.first); // the map's key stays put while it lives
    }

    table map_;
    std::set<std::pair<std::int64_t, std::string_view>> deadlines_;
};

// ---------------------------------------------------------------------------
// Commands

/// What INFO reports; the server keeps the counters.
struct server_stats {
    std::string backend; // the cosock backend, INFO's multiplexing_api
    int port = 0;
    long pid = 0;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    std::uint64_t connected_clients = 0, total_connections = 0, total_commands = 0;
    std::uint64_t reads = 0, writes = 0; // recv calls that got data; sends (one per batch of replies)
};

/// One connection's state.
struct session {
    long long id = 0;
    std::string name;  // CLIENT SETNAME
    bool quit = false; // QUIT: close once the reply is sent
};

struct context {
    database& db;
    session& client;
    server_stats& server;
    std::string& out;
};

using arguments = std::span<const std::string_view>;
using handler = void (*)(context&, arguments);

struct command {
    std::string_view name; // lower case
    int arity;             // > 0: exactly that many words, name included; < 0: at least -arity
    handler run;
    std::string_view flags; // COMMAND INFO's flags, space-separated
    int first_key, last_key, key_step;
    std::string_view categories; // ACL categories, space-separated
    std::string_view summary, since, group;
    std::span<const command> subcommands = {};
};

namespace cmd {

inline void syntax_error(context& c) { add_error(c.out, "ERR syntax error"); }
inline void not_an_integer(context& c) { add_error(c.out, "ERR value is not an integer or out of range"); }
inline void invalid_expire(context& c, std::string_view command) {
    add_error(c.out, "ERR invalid expire time in '" + std::string(command) + "' command");
}

inline void ping(context& c, arguments a) {
    if (a.size() > 2)
        add_error(c.out, "ERR wrong number of arguments for 'ping' command");
    else if (a.size() == 2)
        add_bulk(c.out, a[1]);
    else
        add_status(c.out, "PONG");
}

inline void echo(context& c, arguments a) { add_bulk(c.out, a[1]); }

inline void get(context& c, arguments a) {
    if (entry* e = c.db.find(a[1]))
        add_bulk(c.out, e->value);
    else
        add_nil(c.out);
}

// A relative expiry in `unit` ms as a deadline, as Redis's SET checks it.
inline bool set_deadline(context& c, std::string_view text, long long unit, std::int64_t& deadline) {
    long long v;
    if (!parse_integer(text, v)) {
        not_an_integer(c);
        return false;
    }
    long long ms;
    if (v <= 0 || __builtin_mul_overflow(v, unit, &ms) || __builtin_add_overflow(ms, now_ms(), &deadline)) {
        invalid_expire(c, "set");
        return false;
    }
    return true;
}

inline void set(context& c, arguments a) {
    enum : unsigned { nx = 1, xx = 2, get = 4, keepttl = 8, ex = 16, px = 32 };
    unsigned flags = 0;
    std::string_view expire;
    for (std::size_t j = 3; j < a.size(); ++j) {
        std::string_view opt = a[j];
        bool next = j + 1 < a.size();
        if (iequals(opt, "nx") && !(flags & xx))
            flags |= nx;
        else if (iequals(opt, "xx") && !(flags & nx))
            flags |= xx;
        else if (iequals(opt, "get"))
            flags |= get;
        else if (iequals(opt, "keepttl") && !(flags & (ex | px)))
            flags |= keepttl;
        else if (iequals(opt, "ex") && !(flags & (keepttl | px)) && next)
            flags |= ex, expire = a[++j];
        else if (iequals(opt, "px") && !(flags & (keepttl | ex)) && next)
            flags |= px, expire = a[++j];
        else
            return syntax_error(c);
    }
    std::int64_t deadline = 0;
    if ((flags & (ex | px)) && !set_deadline(c, expire, flags & ex ? 1000 : 1, deadline)) return;
    entry* e = c.db.find(a[1]);
    if (flags & get) {
        if (e)
            add_bulk(c.out, e->value);
        else
            add_nil(c.out);
    }
    if (((flags & nx) && e) || ((flags & xx) && !e)) {
        if (!(flags & get)) add_nil(c.out);
        return;
    }
    c.db.set(a[1], a[2], deadline, flags & keepttl);
    if (!(flags & get)) add_ok(c.out);
}

inline void del(context& c, arguments a) {
    long long n = 0;
    for (std::size_t i = 1; i < a.size(); ++i) n += c.db.erase(a[i]);
    add_integer(c.out, n);
}

inline void exists(context& c, arguments a) {
    long long n = 0;
    for (std::size_t i = 1; i < a.size(); ++i) n += c.db.find(a[i]) != nullptr;
    add_integer(c.out, n);
}

inline void incr_by(context& c, std::string_view key, long long by) {
    entry* e = c.db.find(key);
    long long v = 0;
    if (e && !parse_integer(e->value, v)) return not_an_integer(c);
    if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v))
        return add_error(c.out, "ERR increment or decrement would overflow");
    v += by;
    char digits[24];
    std::string_view text(digits,
                          static_cast<std::size_t>(std::to_chars(digits, digits + sizeof digits, v).ptr - digits));
    if (e)
        e->value.assign(text); // the key keeps its TTL
    else
        c.db.set(key, text);
    add_integer(c.out, v);
}

inline void incr(context& c, arguments a) { incr_by(c, a[1], 1); }
inline void decr(context& c, arguments a) { incr_by(c, a[1], -1); }

inline void incrby(context& c, arguments a) {
    long long by;
    if (!parse_integer(a[2], by)) return not_an_integer(c);
    incr_by(c, a[1], by);
}

inline void decrby(context& c, arguments a) {
    long long by;
    if (!parse_integer(a[2], by)) return not_an_integer(c);
    if (by == LLONG_MIN) return add_error(c.out, "ERR decrement would overflow");
    incr_by(c, a[1], -by);
}

inline void mget(context& c, arguments a) {
    add_array(c.out, a.size() - 1);
    for (std::size_t i = 1; i < a.size(); ++i) {
        if (entry* e = c.db.find(a[i]))
            add_bulk(c.out, e->value);
        else
            add_nil(c.out);
    }
}

inline void mset(context& c, arguments a) {
    if (a.size() % 2 == 0) return add_error(c.out, "ERR wrong number of arguments for 'mset' command");
    for (std::size_t i = 1; i < a.size(); i += 2) c.db.set(a[i], a[i + 1]);
    add_ok(c.out);
}

inline void append(context& c, arguments a) {
    entry* e = c.db.find(a[1]);
    if (!e) {
        c.db.set(a[1], a[2]);
        return add_integer(c.out, static_cast<long long>(a[2].size()));
    }
    if (e->value.size() + a[2].size() > max_bulk)
        return add_error(c.out, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    e->value.append(a[2]);
    add_integer(c.out, static_cast<long long>(e->value.size()));
}

inline void strlen(context& c, arguments a) {
    entry* e = c.db.find(a[1]);
    add_integer(c.out, e ? static_cast<long long>(e->value.size()) : 0);
}

// EXPIRE and PEXPIRE, with Redis 7's NX, XX, GT and LT.
inline void expire_generic(context& c, arguments a, long long unit, std::string_view name) {
    bool nx = false, xx = false, gt = false, lt = false;
    for (std::size_t j = 3; j < a.size(); ++j) {
        if (iequals(a[j], "nx"))
            nx = true;
        else if (iequals(a[j], "xx"))
            xx = true;
        else if (iequals(a[j], "gt"))
            gt = true;
        else if (iequals(a[j], "lt"))
            lt = true;
        else
            return add_error(c.out, "ERR Unsupported option " + std::string(a[j]));
    }
    if (nx && (xx || gt || lt))
        return add_error(c.out, "ERR NX and XX, GT or LT options at the same time are not compatible");
    if (gt && lt) return add_error(c.out, "ERR GT and LT options at the same time are not compatible");
    long long when;
    if (!parse_integer(a[2], when)) return not_an_integer(c);
    const std::int64_t now = now_ms();
    if (__builtin_mul_overflow(when, unit, &when) || __builtin_add_overflow(when, now, &when))
        return invalid_expire(c, name);
    entry* e = c.db.find(a[1]);
    if (!e) return add_integer(c.out, 0);
    const std::int64_t current = e->expires; // 0: none, which GT and LT take as forever
    if ((nx && current != 0) || (xx && current == 0) || (gt && (current == 0 || when <= current)) ||
        (lt && current != 0 && when >= current))
        return add_integer(c.out, 0);
    if (when <= now)
        c.db.erase(a[1]);
    else
        c.db.expire_at(a[1], when);
    add_integer(c.out, 1);
}

inline void expire(context& c, arguments a) { expire_generic(c, a, 1000, "expire"); }
inline void pexpire(context& c, arguments a) { expire_generic(c, a, 1, "pexpire"); }

inline void persist(context& c, arguments a) {
    entry* e = c.db.find(a[1]);
    if (!e || e->expires == 0) return add_integer(c.out, 0);
    c.db.expire_at(a[1], 0);
    add_integer(c.out, 1);
}

inline void ttl_generic(context& c, arguments a, bool ms) {
    entry* e = c.db.find(a[1]);
    if (!e) return add_integer(c.out, -2);
    if (e->expires == 0) return add_integer(c.out, -1);
    long long left = std::max<long long>(0, e->expires - now_ms());
    add_integer(c.out, ms ? left : (left + 500) / 1000);
}

inline void ttl(context& c, arguments a) { ttl_generic(c, a, false); }
inline void pttl(context& c, arguments a) { ttl_generic(c, a, true); }

inline void keys(context& c, arguments a) {
    std::vector<std::string_view> found = c.db.keys(a[1]);
    add_array(c.out, found.size());
    for (std::string_view k : found) add_bulk(c.out, k);
}

inline void dbsize(context& c, arguments) { add_integer(c.out, static_cast<long long>(c.db.size())); }

inline void flush(context& c, arguments a) {
    if (a.size() > 2 || (a.size() == 2 && !iequals(a[1], "sync") && !iequals(a[1], "async"))) return syntax_error(c);
    c.db.clear();
    add_ok(c.out);
}

inline void select(context& c, arguments a) {
    long long db;
    if (!parse_integer(a[1], db) || db < INT_MIN || db > INT_MAX) return not_an_integer(c);
    if (db != 0) return add_error(c.out, "ERR DB index is out of range");
    add_ok(c.out);
}

inline void quit(context& c, arguments) {
    c.client.quit = true;
    add_ok(c.out);
}

inline void help(context& c, std::string_view container, std::initializer_list<std::string_view> lines) {
    add_array(c.out, lines.size() + 1);
    add_status(c.out, std::string(container) + " <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
    for (std::string_view line : lines) add_status(c.out, line);
}

inline void client_setname(context& c, arguments a) {
    for (char ch : a[2])
        if (ch < '!' || ch > '~')
            return add_error(c.out, "ERR Client names cannot contain spaces, newlines or special characters.");
    c.client.name.assign(a[2]);
    add_ok(c.out);
}

inline void client_getname(context& c, arguments) {
    if (c.client.name.empty())
        add_nil(c.out);
    else
        add_bulk(c.out, c.client.name);
}

inline void client_id(context& c, arguments) { add_integer(c.out, c.client.id); }

inline void client_help(context& c, arguments) {
    help(c, "CLIENT",
         {"GETNAME", "    Return the name of the current connection.", "ID",
          "    Return the ID of the current connection.", "SETNAME <connection-name>",
          "    Assign the name <connection-name> to the current connection.", "HELP", "    Print this help."});
}

// The settings CONFIG GET knows: those clients ask about.
inline std::vector<std::pair<std::string_view, std::string>> settings(context& c) {
    return {{"appendonly", "no"},
            {"databases", "1"},
            {"port", std::to_string(c.server.port)},
            {"proto-max-bulk-len", std::to_string(max_bulk)},
            {"save", ""},
            {"timeout", "0"}};
}

inline void config_get(context& c, arguments a) {
    std::vector<std::pair<std::string_view, std::string>> all = settings(c), found;
    for (auto& kv : all)
        for (std::size_t i = 2; i < a.size(); ++i)
            if (glob_match(a[i], kv.first, true)) {
                found.push_back(kv);
                break;
            }
    add_array(c.out, found.size() * 2);
    for (auto& [k, v] : found) add_bulk(c.out, k), add_bulk(c.out, v);
}

inline void config_help(context& c, arguments) {
    help(c, "CONFIG",
         {"GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.", "HELP",
          "    Print this help."});
}

inline void info(context& c, arguments a);
inline void command_all(context& c, arguments a);
inline void command_count(context& c, arguments a);
inline void command_info(context& c, arguments a);
inline void command_docs(context& c, arguments a);
inline void command_list(context& c, arguments a);
inline void command_help(context& c, arguments a);

inline constexpr command client_subcommands[] = {
    {"setname", 3, client_setname, "noscript loading stale", 0, 0, 0, "@slow @connection",
     "Set the current connection name", "2.6.9", "connection"},
    {"getname", 2, client_getname, "noscript loading stale", 0, 0, 0, "@slow @connection",
     "Get the current connection name", "2.6.9", "connection"},
    {"id", 2, client_id, "noscript loading stale", 0, 0, 0, "@slow @connection",
     "Returns the client ID for the current connection", "5.0.0", "connection"},
    {"help", 2, client_help, "loading stale", 0, 0, 0, "@slow @connection",
     "Show helpful text about the different subcommands", "5.0.0", "connection"},
};

inline constexpr command config_subcommands[] = {
    {"get", -3, config_get, "admin noscript loading stale", 0, 0, 0, "@admin @slow @dangerous",
     "Get the values of configuration parameters", "2.0.0", "server"},
    {"help", 2, config_help, "loading stale", 0, 0, 0, "@slow", "Show helpful text about the different subcommands",
     "5.0.0", "server"},
};

inline constexpr command command_subcommands[] = {
    {"count", 2, command_count, "loading stale", 0, 0, 0, "@slow @connection", "Get total number of Redis commands",
     "2.8.13", "server"},
    {"docs", -2, command_docs, "loading stale", 0, 0, 0, "@slow @connection",
     "Get array of specific Redis command documentation", "7.0.0", "server"},
    {"info", -2, command_info, "loading stale", 0, 0, 0, "@slow @connection",
     "Get array of specific Redis command details, or all when no argument is given.", "2.8.13", "server"},
    {"list", -2, command_list, "loading stale", 0, 0, 0, "@slow @connection", "Get an array of Redis command names",
     "7.0.0", "server"},
    {"help", 2, command_help, "loading stale", 0, 0, 0, "@slow @connection",
     "Show helpful text about the different subcommands", "5.0.0", "server"},
};

// The most frequent first: lookup goes down the list.
inline constexpr command table[] = {
    {"get", 2, get, "readonly fast", 1, 1, 1, "@read @string @fast", "Get the value of a key", "1.0.0", "string"},
    {"set", -3, set, "write denyoom", 1, 1, 1, "@write @string @slow", "Set the string value of a key", "1.0.0",
     "string"},
    {"ping", -1, ping, "fast", 0, 0, 0, "@fast @connection", "Ping the server", "1.0.0", "connection"},
    {"del", -2, del, "write", 1, -1, 1, "@keyspace @write @slow", "Delete a key", "1.0.0", "generic"},
    {"exists", -2, exists, "readonly fast", 1, -1, 1, "@keyspace @read @fast", "Determine if a key exists", "1.0.0",
     "generic"},
    {"incr", 2, incr, "write denyoom fast", 1, 1, 1, "@write @string @fast",
     "Increment the integer value of a key by one", "1.0.0", "string"},
    {"decr", 2, decr, "write denyoom fast", 1, 1, 1, "@write @string @fast",
     "Decrement the integer value of a key by one", "1.0.0", "string"},
    {"incrby", 3, incrby, "write denyoom fast", 1, 1, 1, "@write @string @fast",
     "Increment the integer value of a key by the given amount", "1.0.0", "string"},
    {"decrby", 3, decrby, "write denyoom fast", 1, 1, 1, "@write @string @fast",
     "Decrement the integer value of a key by the given number", "1.0.0", "string"},
    {"mget", -2, mget, "readonly fast", 1, -1, 1, "@read @string @fast", "Get the values of all the given keys",
     "1.0.0", "string"},
    {"mset", -3, mset, "write denyoom", 1, -1, 2, "@write @string @slow", "Set multiple keys to multiple values",
     "1.0.1", "string"},
    {"append", 3, append, "write denyoom fast", 1, 1, 1, "@write @string @fast", "Append a value to a key", "2.0.0",
     "string"},
    {"strlen", 2, strlen, "readonly fast", 1, 1, 1, "@read @string @fast",
     "Get the length of the value stored in a key", "2.2.0", "string"},
    {"expire", -3, expire, "write fast", 1, 1, 1, "@keyspace @write @fast", "Set a key's time to live in seconds",
     "1.0.0", "generic"},
    {"pexpire", -3, pexpire, "write fast", 1, 1, 1, "@keyspace @write @fast",
     "Set a key's time to live in milliseconds", "2.6.0", "generic"},
    {"persist", 2, persist, "write fast", 1, 1, 1, "@keyspace @write @fast", "Remove the expiration from a key",
     "2.2.0", "generic"},
    {"ttl", 2, ttl, "readonly fast", 1, 1, 1, "@keyspace @read @fast", "Get the time to live for a key in seconds",
     "1.0.0", "generic"},
    {"pttl", 2, pttl, "readonly fast", 1, 1, 1, "@keyspace @read @fast",
     "Get the time to live for a key in milliseconds", "2.6.0", "generic"},
    {"keys", 2, keys, "readonly", 0, 0, 0, "@keyspace @read @slow @dangerous",
     "Find all keys matching the given pattern", "1.0.0", "generic"},
    {"dbsize", 1, dbsize, "readonly fast", 0, 0, 0, "@keyspace @read @fast",
     "Return the number of keys in the selected database", "1.0.0", "server"},
    {"flushdb", -1, flush, "write", 0, 0, 0, "@keyspace @write @slow @dangerous",
     "Remove all keys from the current database", "1.0.0", "server"},
    {"flushall", -1, flush, "write", 0, 0, 0, "@keyspace @write @slow @dangerous", "Remove all keys from all databases",
     "1.0.0", "server"},
    {"echo", 2, echo, "fast", 0, 0, 0, "@fast @connection", "Echo the given string", "1.0.0", "connection"},
    {"select", 2, select, "loading stale fast", 0, 0, 0, "@fast @connection",
     "Change the selected database for the current connection", "1.0.0", "connection"},
    {"quit", -1, quit, "allow_busy noscript loading stale fast no_auth", 0, 0, 0, "@fast @connection",
     "Close the connection", "1.0.0", "connection"},
    {"client", -2, nullptr, "", 0, 0, 0, "@slow", "A container for client connection commands", "2.4.0", "connection",
     client_subcommands},
    {"config", -2, nullptr, "", 0, 0, 0, "@slow", "A container for server configuration commands", "2.0.0", "server",
     config_subcommands},
    {"command", -1, command_all, "loading stale", 0, 0, 0, "@slow @connection", "Get array of Redis command details",
     "2.8.13", "server", command_subcommands},
    {"info", -1, info, "loading stale", 0, 0, 0, "@slow @dangerous", "Get information and statistics about the server",
     "1.0.0", "server"},
};

/// The command named `name`, in any case, or nullptr.
inline const command* find(std::span<const command> in, std::string_view name) {
    char folded[16];
    if (name.size() > sizeof folded) return nullptr;
    for (std::size_t i = 0; i < name.size(); ++i) folded[i] = lower(name[i]);
    std::string_view key(folded, name.size());
    for (const command& c : in)
        if (c.name == key) return &c;
    return nullptr;
}

inline void add_words(std::string& out, std::string_view words) { // an array of statuses
    std::size_t n = 0;
    for (std::size_t i = 0; i < words.size();) {
        std::size_t end = std::min(words.find(' ', i), words.size());
        n += end > i;
        i = end + 1;
    }
    add_array(out, n);
    for (std::size_t i = 0; i < words.size();) {
        std::size_t end = std::min(words.find(' ', i), words.size());
        if (end > i) add_status(out, words.substr(i, end - i));
        i = end + 1;
    }
}

inline std::string full_name(const command& c, std::string_view parent) {
    return parent.empty() ? std::string(c.name) : std::string(parent) + "|" + std::string(c.name);
}

// COMMAND INFO's ten fields for one command.
inline void add_info(std::string& out, const command& c, std::string_view parent = {}) {
    add_array(out, 10);
    add_bulk(out, full_name(c, parent));
    add_integer(out, c.arity);
    add_words(out, c.flags);
    add_integer(out, c.first_key);
    add_integer(out, c.last_key);
    add_integer(out, c.key_step);
    add_words(out, c.categories);
    add_array(out, 0); // tips
    add_array(out, 0); // key specifications
    add_array(out, c.subcommands.size());
    for (const command& sub : c.subcommands) add_info(out, sub, c.name);
}

// COMMAND DOCS's map (a flat array in RESP2) for one command.
inline void add_docs(std::string& out, const command& c, std::string_view parent = {}) {
    add_bulk(out, full_name(c, parent));
    add_array(out, c.subcommands.empty() ? 6 : 8);
    add_bulk(out, "summary"), add_bulk(out, c.summary);
    add_bulk(out, "since"), add_bulk(out, c.since);
    add_bulk(out, "group"), add_bulk(out, c.group);
    if (c.subcommands.empty()) return;
    add_bulk(out, "subcommands");
    add_array(out, c.subcommands.size() * 2);
    for (const command& sub : c.subcommands) add_docs(out, sub, c.name);
}

// The command an argument of COMMAND INFO or DOCS names: "get", "client|setname".
inline const command* named(std::string_view name, std::string_view& parent) {
    std::size_t bar = name.find('|');
    parent = {};
    if (bar == std::string_view::npos) return find(table, name);
    const command* top = find(table, name.substr(0, bar));
    if (!top) return nullptr;
    parent = top->name;
    return find(top->subcommands, name.substr(bar + 1));
}

inline void command_all(context& c, arguments) {
    add_array(c.out, std::size(table));
    for (const command& cmd : table) add_info(c.out, cmd);
}

inline void command_count(context& c, arguments) { add_integer(c.out, static_cast<long long>(std::size(table))); }

inline void command_info(context& c, arguments a) {
    if (a.size() == 2) return command_all(c, a);
    add_array(c.out, a.size() - 2);
    for (std::size_t i = 2; i < a.size(); ++i) {
        std::string_view parent;
        if (const command* cmd = named(a[i], parent))
            add_info(c.out, *cmd, parent);
        else
            add_nil(c.out);
    }
}

inline void command_docs(context& c, arguments a) {
    if (a.size() == 2) {
        add_array(c.out, std::size(table) * 2);
        for (const command& cmd : table) add_docs(c.out, cmd);
        return;
    }
    std::string body;
    std::size_t n = 0;
    for (std::size_t i = 2; i < a.size(); ++i) {
        std::string_view parent;
        if (const command* cmd = named(a[i], parent)) add_docs(body, *cmd, parent), ++n;
    }
    add_array(c.out, n * 2);
    c.out += body;
}

inline void command_list(context& c, arguments a) {
    if (a.size() > 2) return syntax_error(c); // FILTERBY is not supported
    add_array(c.out, std::size(table));
    for (const command& cmd : table) add_bulk(c.out, cmd.name);
}

inline void command_help(context& c, arguments) {
    help(c, "COMMAND",
         {"(no subcommand)", "    Return details about all Redis commands.", "COUNT",
          "    Return the total number of commands in this Redis server.", "LIST",
          "    Return a list of all commands in this Redis server.", "INFO [<command-name> ...]",
          "    Return details about multiple Redis commands.", "DOCS [<command-name> ...]",
          "    Return documentation details about multiple Redis commands.", "HELP", "    Print this help."});
}

inline void info(context& c, arguments a) {
    auto wanted = [&](std::string_view section) {
        if (a.size() == 1) return true;
        for (std::size_t i = 1; i < a.size(); ++i)
            if (iequals(a[i], section) || iequals(a[i], "all") || iequals(a[i], "default") ||
                iequals(a[i], "everything"))
                return true;
        return false;
    };
    const server_stats& s = c.server;
    auto line = [](std::string& to, std::string_view key, auto value) {
        to.append(key).append(":");
        if constexpr (std::is_convertible_v<decltype(value), std::string_view>)
            to.append(value);
        else
            add_raw_number(to, static_cast<long long>(value));
        to.append("\r\n");
    };
    std::string text;
    auto section = [&](std::string_view name) {
        if (!wanted(name)) return false;
        if (!text.empty()) text += "\r\n";
        text.append("# ").append(name).append("\r\n");
        return true;
    };
    if (section("Server")) {
        auto up = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - s.started);
        line(text, "redis_version", version);
        line(text, "redis_mode", "standalone");
        line(text, "server_name", "cosock resp_server");
        line(text, "multiplexing_api", std::string_view(s.backend));
        line(text, "process_id", s.pid);
        line(text, "tcp_port", s.port);
        line(text, "uptime_in_seconds", up.count());
        line(text, "uptime_in_days", up.count() / 86400);
    }
    if (section("Clients")) line(text, "connected_clients", s.connected_clients);
    if (section("Stats")) {
        line(text, "total_connections_received", s.total_connections);
        line(text, "total_commands_processed", s.total_commands);
        line(text, "total_reads_processed", s.reads);
        line(text, "total_writes_processed", s.writes);
    }
    if (section("Keyspace")) {
        std::size_t keys = c.db.size();
        if (keys > 0)
            text.append("db0:keys=")
                .append(std::to_string(keys))
                .append(",expires=")
                .append(std::to_string(c.db.volatile_keys()))
                .append(",avg_ttl=0\r\n");
    }
    add_bulk(c.out, text);
}

} // namespace cmd

/// Runs one request (its words, the command name first) and appends its
/// reply to c.out. Unknown commands and wrong argument counts get Redis's
/// error texts.
inline void execute(context& c, arguments a) {
    if (a.empty()) return;
    ++c.server.total_commands;
    const command* cmd = cmd::find(cmd::table, a[0]);
    if (cmd == nullptr) {
        std::string args;
        for (std::size_t i = 1; i < a.size() && args.size() < 128; ++i) {
            std::string_view arg = a[i].substr(0, 128 - args.size());
            args.append("'").append(arg).append("' ");
        }
        add_error(c.out,
                  "ERR unknown command '" + std::string(a[0].substr(0, 128)) + "', with args beginning with: " + args);
        return;
    }
    std::string_view parent;
    if (!cmd->subcommands.empty() && a.size() >= 2) {
        const command* sub = cmd::find(cmd->subcommands, a[1]);
        if (sub == nullptr) {
            std::string upper(cmd->name);
            for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            add_error(c.out,
                      "ERR unknown subcommand '" + std::string(a[1].substr(0, 128)) + "'. Try " + upper + " HELP.");
            return;
        }
        parent = cmd->name;
        cmd = sub;
    }
    std::size_t n = a.size();
    if ((cmd->arity > 0 && n != static_cast<std::size_t>(cmd->arity)) ||
        n < static_cast<std::size_t>(cmd->arity < 0 ? -cmd->arity : 0) || cmd->run == nullptr) {
        add_error(c.out, "ERR wrong number of arguments for '" + cmd::full_name(*cmd, parent) + "' command");
        return;
    }
    cmd->run(c, a);
}

} // namespace resp
