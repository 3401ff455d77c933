// A Redis-protocol (RESP2) server for redis-cli, redis-benchmark and Redis
// client libraries: Redis's string commands on an in-memory store.
//
//   resp_server [--backend NAME] [--host ADDR] [--port N] [--io recv|makefile]
//
//   PING [msg]  ECHO msg  SET key value [EX s|PX ms] [NX|XX] [KEEPTTL] [GET]
//   GET key  DEL key...  EXISTS key...  INCR/DECR key  INCRBY/DECRBY key n
//   MGET key...  MSET key value...  APPEND key value  STRLEN key
//   EXPIRE/PEXPIRE key n [NX|XX|GT|LT]  PERSIST key  TTL/PTTL key
//   KEYS pattern  DBSIZE  FLUSHDB  FLUSHALL  SELECT 0  QUIT  INFO [section]
//   CLIENT SETNAME|GETNAME|ID  CONFIG GET pattern  COMMAND [COUNT|INFO|DOCS|LIST]
//
// Replies and error texts are Redis 7.0's (examples/resp.hpp holds the
// protocol and the commands, without sockets). Requests may be multibulk, as
// clients send them, or inline lines as typed into telnet. A malformed request
// gets "-ERR Protocol error: ..." and the connection is closed.
//
// Pipelining: each connection reads whatever has arrived into its buffer,
// runs every whole request in it, appends the replies to one output buffer and
// sends that once, when no whole request is left (INFO's
// total_writes_processed counts those sends). A client that sends but never
// reads holds at most 64 KiB of replies plus the last one: past that the
// server sends before it runs more of its requests, and stops reading from it
// until the replies are taken. An idle connection is a recv waiting in the
// kernel: no timer, no CPU.
//
// --io makefile serves each connection through conn.makefile("rwb") instead,
// the way the README writes line protocols: readline and read, write, and a
// flush when f.buffered() is 0. It is the same server otherwise; bench/redis.py
// measures what the stream view costs against recv into a buffer. (There
// total_reads_processed counts the reads that found nothing buffered.)
//
// Try: redis-cli -p 6379   or   redis-benchmark -p 6379 -t ping,set,get -P 16
#include <cosock/cosock.hpp>

#include "options.hpp"
#include "resp.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <unistd.h>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t read_size = 16 * 1024;    // a connection's buffer at first, and the room a recv gets
constexpr std::size_t output_limit = 64 * 1024; // replies held back before a batch is sent in part
constexpr std::size_t max_query = 1u << 30;     // an unfinished request this big closes the connection

struct server {
    resp::database db;
    resp::server_stats stats;
    long long next_id = 0;
};

// Closing with unread input makes the kernel reset the connection, which can
// destroy the last reply on its way: send FIN, then read and drop what the
// client still sends until it closes too (2 s, 1 MiB at most).
cosock::task<> close_gracefully(cosock::socket& conn) {
    conn.shutdown(cosock::shut_wr);
    conn.settimeout(2s);
    std::array<char, 4096> sink;
    for (std::size_t total = 0; total < (1u << 20);) {
        std::size_t n = co_await conn.recv(sink);
        if (n == 0) break;
        total += n;
    }
}

// A connection's place in INFO's connected_clients, taken by serve() and
// given back when the connection's task ends.
struct counted {
    std::uint64_t& n;
    ~counted() { --n; }
};

cosock::task<> serve_client(cosock::socket conn, server& srv) {
    counted slot{srv.stats.connected_clients};
    try {
        resp::session me{++srv.next_id, {}, false};
        resp::request_parser parser;
        std::string out;
        resp::context ctx{srv.db, me, srv.stats, out};
        // buf[start, end) is what arrived and is not parsed yet: at most one
        // unfinished request once a batch has run.
        std::size_t cap = read_size, start = 0, end = 0;
        auto buf = std::make_unique_for_overwrite<char[]>(cap);
        auto sent = [&] { // after each send: a big reply's memory is not kept
            ++srv.stats.writes;
            if (out.capacity() > 4 * output_limit)
                std::string().swap(out);
            else
                out.clear();
        };
        bool open = true;
        while (open) {
            if (start == end) {
                start = end = 0;
                if (cap > 4 * read_size) buf = std::make_unique_for_overwrite<char[]>(cap = read_size);
            } else if (cap - end < read_size / 4) {
                // The unfinished request moves to the front, into a bigger
                // buffer when it fills half of this one.
                std::size_t pending = end - start;
                if (pending > max_query) break; // as Redis's client-query-buffer-limit: closed, no reply
                if (pending > cap / 2) {
                    auto bigger = std::make_unique_for_overwrite<char[]>(cap *= 2);
                    std::memcpy(bigger.get(), buf.get() + start, pending);
                    buf = std::move(bigger);
                } else {
                    std::memmove(buf.get(), buf.get() + start, pending);
                }
                start = 0;
                end = pending;
            }
            std::size_t n = co_await conn.recv(std::span<char>(buf.get() + end, cap - end));
            if (n == 0) break; // the client closed
            ++srv.stats.reads;
            end += n;
            // Every whole request in the buffer, then one send for their replies.
            while (open) {
                resp::parse_status status = parser.parse({buf.get() + start, end - start});
                if (status == resp::parse_status::incomplete) break;
                if (status == resp::parse_status::error) {
                    resp::add_error(out, parser.error());
                    open = false;
                    break;
                }
                resp::execute(ctx, parser.args());
                start += parser.consumed();
                open = !me.quit;
                if (open && out.size() >= output_limit) { // a client that does not read holds no more than this
                    co_await conn.sendall(out);
                    sent();
                }
            }
            if (!out.empty()) {
                co_await conn.sendall(out);
                sent();
            }
            srv.db.purge_expired(32); // a few keys whose deadline passed, so none stays for long
        }
        if (!open) co_await close_gracefully(conn); // QUIT or a protocol error: the reply is out
    } catch (const std::system_error&) {
        // A client that resets or vanishes ends only its own connection.
    }
}

// The length a "$N\r\n" line announces, or -1 for any other piece: the
// parser judges those.
long long announced_bulk(std::string_view piece) {
    long long n;
    if (piece.size() < 4 || piece[0] != '$' || !piece.ends_with("\r\n") ||
        !resp::parse_integer(piece.substr(1, piece.size() - 3), n) || n < 0 ||
        static_cast<unsigned long long>(n) > resp::max_bulk)
        return -1;
    return n;
}

// --io makefile: the same server on the stream Python's makefile("rwb")
// gives. A request is read a piece at a time (a line, or after a "$N" line
// the N + 2 bytes of that argument) and handed, as it grows, to the same
// parser, which says when it is whole and names what is malformed. Replies go
// into the file object's buffer, flushed when nothing received is left
// unread (f.buffered() == 0), and else by the next read that must wait (a
// request partly come): the replies to a pipelined batch leave in one send,
// as above, and a client that does not read holds at most a buffer of them
// (a write past it sends). A request past 1 GiB closes the connection, as
// above.
cosock::task<> serve_client_makefile(cosock::socket conn, server& srv) {
    counted slot{srv.stats.connected_clients};
    try {
        resp::session me{++srv.next_id, {}, false};
        resp::request_parser parser;
        std::string out, request;
        resp::context ctx{srv.db, me, srv.stats, out};
        cosock::file_object f = conn.makefile("rwb", read_size);
        bool open = true;
        while (open) {
            request.clear();
            resp::parse_status status = resp::parse_status::incomplete;
            long long bulk = -1; // the length the last piece announced, if it was a "$N" line
            long long left = 0;  // well-formed pieces still to come before the request is whole
            while (status == resp::parse_status::incomplete) {
                // A line longer than any request line comes in pieces, and the
                // parser refuses it once it is too long.
                if (f.buffered() == 0) ++srv.stats.reads; // this read receives first
                std::string piece;
                if (bulk < 0)
                    piece = co_await f.readline(resp::max_inline + 2);
                else
                    piece = co_await f.read(static_cast<std::ptrdiff_t>(bulk) + 2);
                if (piece.empty()) break; // the client closed
                if (request.size() + piece.size() > max_query) break;
                request += piece;
                // The parser reads the request once it is whole, or at once
                // when a piece is not what a multibulk request's next one is.
                long long n = 0;
                if (request.size() == piece.size()) { // the first line: "*N" announces 2N pieces
                    bool counted = piece.size() > 3 && piece[0] == '*' && piece.ends_with("\r\n") &&
                                   resp::parse_integer(std::string_view(piece).substr(1, piece.size() - 3), n) &&
                                   n > 0 && n <= resp::max_multibulk;
                    left = counted ? 2 * n : 0;
                    bulk = -1;
                } else if (left > 0 && bulk < 0) { // a "$N" line
                    bulk = announced_bulk(piece);
                    left = bulk < 0 ? 0 : left - 1;
                } else if (left > 0) { // an argument and its "\r\n"
                    bool whole = piece.size() == std::size_t(bulk) + 2 && piece.ends_with("\r\n");
                    left = whole ? left - 1 : 0;
                    bulk = -1;
                } else {
                    bulk = announced_bulk(piece);
                }
                if (left == 0) status = parser.parse(request);
            }
            if (status == resp::parse_status::incomplete) break; // closed, or past max_query
            if (status == resp::parse_status::error) {
                resp::add_error(out, parser.error());
                open = false;
            } else {
                resp::execute(ctx, parser.args());
                open = !me.quit;
            }
            co_await f.write(out);
            out.clear();
            if (!open || f.buffered() == 0) {
                co_await f.flush();
                ++srv.stats.writes;
            }
            srv.db.purge_expired(32);
        }
        if (!open) co_await close_gracefully(conn);
    } catch (const std::system_error&) {
    }
}

cosock::task<> serve(cosock::scheduler& s, cosock::socket srv, server& state, bool makefile) {
    for (;;) {
        cosock::socket conn = (co_await example::accept_patiently(srv, "resp_server")).conn;
        try {
            conn.setsockopt(cosock::ipproto_tcp, cosock::tcp_nodelay, 1); // a batch of replies is one send
        } catch (const std::system_error&) {
            continue; // e.g. reset already
        }
        ++state.stats.connected_clients; // now, not when the task first runs: a burst of accepts comes first
        ++state.stats.total_connections;
        s.spawn(makefile ? serve_client_makefile(std::move(conn), state) : serve_client(std::move(conn), state));
    }
}

} // namespace

int main(int argc, char** argv) {
    example::options opt(argc, argv, "[--host ADDR] [--port N] [--io recv|makefile]", {"--host", "--port", "--io"});
    if (!opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    const std::string io = opt.text("--io", "recv");
    if (io != "recv" && io != "makefile") opt.fail("--io must be recv or makefile, not '" + io + "'");
    const cosock::address where = opt.server_address(6379);
    server state; // outlives the scheduler, which may destroy connections' frames
    try {
        cosock::scheduler s{opt.backend()};
        cosock::socket srv = cosock::create_server(s, where);
        state.stats.backend = s.backend_name();
        state.stats.port = srv.getsockname().port();
        state.stats.pid = static_cast<long>(::getpid());
        example::announce(srv, s);
        s.spawn(example::report_stats_on_sigusr1(s)); // kill -USR1 prints the loop's counters
        s.run(serve(s, std::move(srv), state, io == "makefile"));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "resp_server: %s\n", e.what());
        return 1;
    }
}
