// An in-memory key/value store over a line protocol, built on makefile("rwb").
// Every command line gets one reply line:
//
//   SET key value  → OK                 GET key → VALUE value | NOT_FOUND
//   DEL key        → OK | NOT_FOUND     KEYS    → KEYS key1 key2 ... (sorted)
//   QUIT           → OK, then the server closes the connection
//
// Anything else (an unknown verb, the wrong number of arguments, a line longer
// than --max-line) gets "ERR why" and the connection stays up. Keys are single
// words; a value is the rest of the line. A KEYS reply is written in pieces as
// the client reads it, so one that never reads costs a piece of memory, not
// the whole list.
//
//   line_server [--backend NAME] [--host ADDR] [--port N] [--max-line BYTES] [--max-keys N]
//
// Try: nc 127.0.0.1 7379
#include <cosock/cosock.hpp>

#include "options.hpp"

#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace {

using store = std::map<std::string, std::string, std::less<>>;

struct limits {
    std::size_t max_line, max_keys;
};

// Splits "VERB rest" at the first space.
std::pair<std::string_view, std::string_view> cut(std::string_view s) {
    std::size_t sp = s.find(' ');
    if (sp == std::string_view::npos) return {s, {}};
    return {s.substr(0, sp), s.substr(sp + 1)};
}

bool one_word(std::string_view s) { return !s.empty() && s.find(' ') == std::string_view::npos; }

// The reply to one command (its line end removed), without the line end; ""
// for KEYS, whose reply can be too big to build at once.
std::string execute(store& db, std::string_view line, const limits& lim, bool& quit) {
    auto [verb, args] = cut(line);
    if (verb == "SET") {
        auto [key, value] = cut(args);
        if (key.empty() || value.empty()) return "ERR usage: SET key value";
        auto it = db.find(key);
        if (it == db.end() && db.size() >= lim.max_keys) return "ERR the store is full";
        if (it == db.end()) it = db.emplace(std::string(key), std::string()).first;
        it->second = value;
        return "OK";
    }
    if (verb == "GET" || verb == "DEL") {
        if (!one_word(args)) return "ERR usage: " + std::string(verb) + " key";
        auto it = db.find(args);
        if (it == db.end()) return "NOT_FOUND";
        if (verb == "GET") return "VALUE " + it->second;
        db.erase(it);
        return "OK";
    }
    if (verb == "KEYS" || verb == "QUIT") {
        if (!args.empty()) return "ERR usage: " + std::string(verb);
        quit = verb == "QUIT";
        return quit ? "OK" : ""; // the caller writes the keys: write_keys
    }
    if (verb.empty()) return "ERR empty command";
    return "ERR unknown command '" + std::string(verb.substr(0, 32)) + "'";
}

// "KEYS k1 k2 ...\n" in pieces of about 8 KiB, each written (and, once the
// buffer is full, sent) before the next is made: a client that does not read
// makes only its own task wait. Other clients change the store meanwhile, so
// each piece starts after the last key sent rather than at a saved iterator.
cosock::task<> write_keys(cosock::file_object& f, const store& db) {
    std::string piece = "KEYS";
    for (auto it = db.begin(); it != db.end();) {
        for (; it != db.end() && piece.size() < 8192; ++it) piece.append(" ").append(it->first);
        std::string last = std::prev(it)->first;
        co_await f.write(piece);
        piece.clear();
        it = db.upper_bound(last);
    }
    piece += "\n";
    co_await f.write(piece);
}

cosock::task<> serve_client(cosock::socket conn, store& db, limits lim) {
    try {
        auto f = conn.makefile("rwb");
        f.set_max_line(lim.max_line);
        for (bool quit = false; !quit;) {
            std::string line, reply;
            bool too_long = false;
            try {
                line = co_await f.readline(); // "" once the client has closed
            } catch (const std::system_error& e) {
                if (e.code() != std::errc::message_size) throw;
                too_long = true; // the line's bytes stay buffered: skipped below
            }
            if (too_long) {
                reply = "ERR line longer than " + std::to_string(lim.max_line) + " bytes\n";
            } else if (line.empty()) {
                break;
            } else {
                std::string_view cmd = line;
                if (cmd.ends_with('\n')) cmd.remove_suffix(1);
                if (cmd.ends_with('\r')) cmd.remove_suffix(1);
                reply = execute(db, cmd, lim, quit);
                if (reply.empty())
                    co_await write_keys(f, db);
                else
                    reply += "\n";
            }
            co_await f.write(reply);
            co_await f.flush(); // the reply leaves now, before we wait for the next line
            // Skip the rest of an over-long line in pieces, so memory stays bounded.
            while (too_long) {
                std::string piece = co_await f.readline(static_cast<std::ptrdiff_t>(lim.max_line));
                too_long = !piece.empty() && !piece.ends_with('\n');
            }
        }
        co_await f.close();
    } catch (const std::system_error&) {
        // A client that resets or vanishes ends only its own connection.
    }
}

cosock::task<> serve(cosock::scheduler& s, cosock::socket srv, store& db, limits lim) {
    for (;;) s.spawn(serve_client((co_await example::accept_patiently(srv, "line_server")).conn, db, lim));
}

} // namespace

int main(int argc, char** argv) {
    example::options opt(argc, argv, "[--host ADDR] [--port N] [--max-line BYTES] [--max-keys N]",
                         {"--host", "--port", "--max-line", "--max-keys"});
    limits lim{static_cast<std::size_t>(opt.number("--max-line", 4096, 16, 1 << 24)),
               static_cast<std::size_t>(opt.number("--max-keys", 100000, 1, 100000000))};
    if (!opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    const cosock::address where = opt.server_address(7379);
    store db; // outlives the scheduler, and so every connection using it
    try {
        cosock::scheduler s{opt.backend()};
        cosock::socket srv = cosock::create_server(s, where);
        example::announce(srv, s);
        s.spawn(example::report_stats_on_sigusr1(s)); // kill -USR1 prints the loop's counters
        s.run(serve(s, std::move(srv), db, lim));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "line_server: %s\n", e.what());
        return 1;
    }
}
