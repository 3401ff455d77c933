// Tests of examples/resp_server, the Redis-protocol server. Its request parser
// and glob are functions (examples/resp.hpp), tested directly, split at every
// byte. The server runs as a process on every backend, driven by the real
// redis-cli (package redis-tools: every command and error, one connection per
// script; and at a terminal, where it asks for COMMAND DOCS first), and by raw
// sockets that send pipelined requests cut at odd places and check every byte
// of the replies, send malformed requests, never read, or sit idle.
#include "backends.hpp"
#include "child_process.hpp"
#include "example_clients.hpp"

#include "../examples/resp.hpp"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

namespace {

using words = std::vector<std::string>;

/// Feeds `input` to a parser in pieces of the given sizes (cycling), as the
/// server does: the bytes not yet parsed stay at the front of a buffer that
/// grows. Returns every request with arguments, and "<error: TEXT>" for an
/// error, after which it stops.
std::vector<words> parse_in_pieces(std::string_view input, const std::vector<std::size_t>& sizes) {
    resp::request_parser parser;
    std::vector<words> got;
    std::string buffer;
    std::size_t start = 0, fed = 0, piece = 0;
    while (fed < input.size()) {
        std::size_t n = std::min(sizes[piece++ % sizes.size()], input.size() - fed);
        buffer.append(input.substr(fed, n));
        fed += n;
        for (;;) {
            auto status = parser.parse(std::string_view(buffer).substr(start));
            if (status == resp::parse_status::incomplete) break;
            if (status == resp::parse_status::error) {
                got.push_back({"<error: " + parser.error() + ">"});
                return got;
            }
            if (!parser.args().empty()) got.emplace_back(parser.args().begin(), parser.args().end());
            start += parser.consumed();
        }
        buffer.erase(0, start); // as the server moves the unfinished request to the front
        start = 0;
    }
    if (start < buffer.size()) got.push_back({"<incomplete>"});
    return got;
}

std::vector<words> parse_whole(std::string_view input) { return parse_in_pieces(input, {input.size() + 1}); }

const std::string big(20000, 'b');

// Requests of every kind, one after the other, as a pipelining client sends them.
const std::string pipelined = std::string("*1\r\n$4\r\nPING\r\n") +
                              "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n" + // binary-safe: CRLF in a value
                              "PING inline\r\n" +                                   // inline, CRLF
                              "ECHO \"quoted \\x41\\n\" 'it\\'s'\n" +               // inline, LF, quotes
                              "\r\n" +                                              // an empty line: skipped
                              "*0\r\n" + "*-1\r\n" +                                // empty arrays: skipped
                              "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n" +                    // an empty argument
                              "   \t \r\n" +                                        // blanks: skipped
                              "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$20000\r\n" + big + "\r\n" + // bigger than a read
                              "*2\r\n$6\r\nSTRLEN\r\n$3\r\nbig\r\n";

const std::vector<words> pipelined_words = {
    {"PING"},     {"SET", "key", "va\r\nl"}, {"PING", "inline"}, {"ECHO", "quoted A\n", "it's"},
    {"ECHO", ""}, {"SET", "big", big},       {"STRLEN", "big"},
};

} // namespace

TEST_CASE("examples: resp parser finds the same requests however the bytes are split") {
    REQUIRE(parse_whole(pipelined) == pipelined_words);
    for (std::size_t split = 1; split < pipelined.size(); ++split) {
        CAPTURE(split);
        CHECK(parse_in_pieces(pipelined, {split, pipelined.size()}) == pipelined_words);
    }
    for (const std::vector<std::size_t>& sizes :
         std::vector<std::vector<std::size_t>>{{1}, {2}, {3}, {7}, {1, 2, 3, 7, 11, 64, 1000}}) {
        std::size_t first = sizes[0], count = sizes.size();
        CAPTURE(first);
        CAPTURE(count);
        CHECK(parse_in_pieces(pipelined, sizes) == pipelined_words);
    }
}

TEST_CASE("examples: resp parser refuses malformed requests with Redis's error texts") {
    struct bad {
        std::string input, error;
    };
    const std::vector<bad> cases = {
        {"*x\r\n", "ERR Protocol error: invalid multibulk length"},
        {"*+1\r\n", "ERR Protocol error: invalid multibulk length"},
        {"*01\r\n", "ERR Protocol error: invalid multibulk length"},
        {"*1 \r\n", "ERR Protocol error: invalid multibulk length"},
        {"*1\n$4\r\nPING\r\n", "ERR Protocol error: invalid multibulk length"}, // the count ends at a CR
        {"*1048577\r\n", "ERR Protocol error: invalid multibulk length"},       // over 1M arguments
        {"*99999999999999999999\r\n", "ERR Protocol error: invalid multibulk length"},
        {"*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length"},
        {"*1\r\n$-0\r\n", "ERR Protocol error: invalid bulk length"},
        {"*1\r\n$x\r\n", "ERR Protocol error: invalid bulk length"},
        {"*1\r\n$ 4\r\n", "ERR Protocol error: invalid bulk length"},
        {"*1\r\n$536870913\r\n", "ERR Protocol error: invalid bulk length"}, // over 512 MiB
        {"*1\r\nx\r\n", "ERR Protocol error: expected '$', got 'x'"},
        {"*2\r\n$4\r\nPING\r\n:1\r\n", "ERR Protocol error: expected '$', got ':'"},
        {"*2\r\n$3\r\nfoobar\r\n", "ERR Protocol error: expected '$', got 'r'"}, // 3 bytes, then 2 skipped
        {"*" + std::string(70000, '1'), "ERR Protocol error: too big mbulk count string"},
        {"*1\r\n$" + std::string(70000, '1'), "ERR Protocol error: too big bulk count string"},
        {std::string(70000, 'x'), "ERR Protocol error: too big inline request"},
        {"GET \"a\r\n", "ERR Protocol error: unbalanced quotes in request"},
        {"GET 'a\r\n", "ERR Protocol error: unbalanced quotes in request"},
        {"GET \"a\"b\r\n", "ERR Protocol error: unbalanced quotes in request"},
        {"GET 'a'b\r\n", "ERR Protocol error: unbalanced quotes in request"},
    };
    for (const bad& b : cases) {
        CAPTURE(b.input.substr(0, 40));
        words expected = {"<error: " + b.error + ">"};
        CHECK(parse_whole(b.input) == std::vector<words>{expected});
        CHECK(parse_in_pieces(b.input, {1}) == std::vector<words>{expected});
        // After a good request, the good one comes first.
        CHECK(parse_in_pieces("PING\r\n" + b.input, {3}) == std::vector<words>{{"PING"}, expected});
    }
}

TEST_CASE("examples: resp parser takes the largest requests Redis takes and waits for their bytes") {
    CHECK(parse_whole("*1048576\r\n") == std::vector<words>{{"<incomplete>"}});
    CHECK(parse_whole("*1\r\n$536870912\r\n") == std::vector<words>{{"<incomplete>"}});
    CHECK(parse_whole("*" + std::string(65535, '1')) == std::vector<words>{{"<incomplete>"}}); // 64 KiB in all
    CHECK(parse_whole(std::string(65536, 'x')) == std::vector<words>{{"<incomplete>"}});
    // The line is whole once the byte after its CR is in; what that byte is, Redis does not look.
    CHECK(parse_whole("*1\r") == std::vector<words>{{"<incomplete>"}});
    CHECK(parse_whole("*1\rX$4\rXPING\r\n") == std::vector<words>{{"PING"}});
    CHECK(parse_whole("*2\r\n$4\r\nECHO\r\n$2\r\nhi") == std::vector<words>{{"<incomplete>"}});
}

TEST_CASE("examples: resp inline requests are split into words as Redis splits them") {
    CHECK(parse_whole("SET  a\tb \r\n") == std::vector<words>{{"SET", "a", "b"}});
    CHECK(parse_whole("ECHO \"a b\" 'c d' e\"f g\" i'j k'\n") ==
          std::vector<words>{{"ECHO", "a b", "c d", "ef g", "ij k"}}); // a quote may open inside a word
    CHECK(parse_whole("ECHO \"\\x41\\x4a\\n\\r\\t\\\"\\\\\\q\"\r\n") == std::vector<words>{{"ECHO", "AJ\n\r\t\"\\q"}});
    CHECK(parse_whole("ECHO \"\\xZZ\"\n") == std::vector<words>{{"ECHO", "xZZ"}}); // not hex: the x alone
    CHECK(parse_whole("ECHO 'a\\'b' 'c\\d'\n") == std::vector<words>{{"ECHO", "a'b", "c\\d"}});
    CHECK(parse_whole("ECHO \"\" ''\n") == std::vector<words>{{"ECHO", "", ""}});
    CHECK(parse_whole("PING\rx\r\n") == std::vector<words>{{"PING", "x"}}); // a lone CR separates words
    CHECK(parse_whole("\n\r\n \r\nPING\n") == std::vector<words>{{"PING"}});
}

TEST_CASE("examples: resp integers are parsed as Redis parses them") {
    long long v = 1;
    CHECK((resp::parse_integer("0", v) && v == 0));
    CHECK((resp::parse_integer("-42", v) && v == -42));
    CHECK((resp::parse_integer("9223372036854775807", v) && v == LLONG_MAX));
    CHECK((resp::parse_integer("-9223372036854775808", v) && v == LLONG_MIN));
    for (const char* bad : {"", "-", "+1", "01", "-0", "00", " 1", "1 ", "1.5", "9223372036854775808",
                            "-9223372036854775809", "99999999999999999999", "0x10"}) {
        CAPTURE(bad);
        CHECK_FALSE(resp::parse_integer(bad, v));
    }
}

TEST_CASE("examples: resp glob matches as Redis's KEYS does") {
    struct one {
        const char *pattern, *text;
        bool match;
    };
    const std::string fifty(50, 'a');
    for (const one& c : std::vector<one>{
             {"*", "anything", true},
             {"a*", "abc", true},
             {"a*", "bac", false},
             {"*c", "abc", true},
             {"a*c", "abbbc", true},
             {"a*c", "abcd", false},
             {"?", "a", true},
             {"?", "ab", false},
             {"a?c", "abc", true},
             {"[abc]", "b", true},
             {"[abc]", "d", false},
             {"[^abc]", "d", true},
             {"[^abc]", "a", false},
             {"[a-c]x", "bx", true},
             {"[c-a]x", "bx", true},
             {"[a-c]x", "dx", false},
             {"\\*", "*", true},
             {"\\*", "a", false},
             {"[\\]]", "]", true},
             {"[abc", "b", true},
             {"a\\", "a\\", true},
             {"*a*b*c*", "xaybzc", true},
             {"*a*b*c*", "xaybz", false},
             {"**", "", false},
             {"", "", true},
             {"*[eo]", "two", true},
             {"h[ae]llo", "hello", true},
             {"*****x", fifty.c_str(), false},
         }) {
        CAPTURE(c.pattern);
        CAPTURE(c.text);
        CHECK(resp::glob_match(c.pattern, c.text) == c.match);
    }
    CHECK(resp::glob_match("APPEND*", "appendonly", true));
    CHECK_FALSE(resp::glob_match("APPEND*", "appendonly"));
    // A pattern that backtracks at every star takes steps, not exponential time.
    CHECK_FALSE(resp::glob_match(std::string(30, '*') + "a*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
}

// ---------------------------------------------------------------------------
// The server as a process.

namespace {

/// resp_server's command line on `backend`, on a port the kernel picks;
/// `io` "makefile" serves connections through makefile("rwb").
std::vector<std::string> resp_server_argv(const std::string& path, cosock::backend b, const std::string& io = "recv") {
    return {path, "--backend", backend_name(b), "--port", "0", "--io", io};
}

#define START_RESP_SERVER(server) START_RESP_SERVER_IO(server, "recv")
#define START_RESP_SERVER_IO(server, io)                                                                               \
    std::string resp_server_path = need_example("resp_server");                                                        \
    if (resp_server_path.empty()) return;                                                                              \
    running_server server(resp_server_argv(resp_server_path, B::value, io))

// The tests of the protocol's framing run each I/O mode of the server.
const std::vector<std::string> io_modes = {"recv", "makefile"};

/// What `redis-cli --no-raw` prints for `script`, its commands one a line
/// (redis-cli's own quoting), sent on one connection.
std::string redis_cli(int port, const std::string& script) {
    temp_dir dir;
    std::string file = dir / "script";
    std::ofstream(file) << script;
    child_process cli({"/bin/sh", "-c", "exec redis-cli -p " + std::to_string(port) + " --no-raw < '" + file + "'"},
                      true);
    std::string out = cli.read_all();
    cli.wait();
    return out;
}

/// What `redis-cli --no-raw ARGS...` prints: one command, its arguments as given.
std::string redis_cli_args(int port, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/env", "redis-cli", "-p", std::to_string(port), "--no-raw"};
    argv.insert(argv.end(), args.begin(), args.end());
    child_process cli(argv, true);
    std::string out = cli.read_all();
    cli.wait();
    return out;
}

struct cli_exchange {
    std::string script, expected;
};

// Each script runs on a connection of its own, in this order; the store is
// shared. The expected text is what Redis 7.0 prints (redis-server started
// with --databases 1), except where a comment says otherwise.
const std::vector<cli_exchange> cli_exchanges = {
    {R"(FLUSHALL
PING
PING "hello world"
ECHO "a b"
ECHO ""
)",
     R"(OK
PONG
"hello world"
"a b"
""
)"},
    {R"(SET k v
GET k
GET missing
SET k v2 XX
SET k v3 NX
GET k
SET fresh v NX
SET other v XX
SET k v4 GET
SET nothing v GET
GET nothing
set k "with space"
get k
)",
     R"(OK
"v"
(nil)
OK
(nil)
"v2"
OK
(nil)
"v2"
(nil)
"v"
OK
"with space"
)"},
    {R"(SET t v EX 100
TTL t
SET t w KEEPTTL
TTL t
GET t
SET t v
TTL t
TTL missing
PTTL missing
SET t v EX 0
SET t v PX -5
SET t v EX x
SET t v EX 9223372036854775807
SET t v PX 9223372036854775807
SET t v NX XX
SET t v EX 1 PX 1
SET t v KEEPTTL EX 5
SET t v FOO
SET t v EX
SET t v ex 10 nx
)",
     R"(OK
(integer) 100
OK
(integer) 100
"w"
OK
(integer) -1
(integer) -2
(integer) -2
(error) ERR invalid expire time in 'set' command
(error) ERR invalid expire time in 'set' command
(error) ERR value is not an integer or out of range
(error) ERR invalid expire time in 'set' command
(error) ERR invalid expire time in 'set' command
(error) ERR syntax error
(error) ERR syntax error
(error) ERR syntax error
(error) ERR syntax error
(error) ERR syntax error
(nil)
)"},
    {R"(SET e 1
EXPIRE e 100
TTL e
EXPIRE e 50 GT
EXPIRE e 50 LT
TTL e
EXPIRE e 10 NX
PERSIST e
PERSIST e
TTL e
EXPIRE e 10 XX
EXPIRE e 10 GT
EXPIRE missing 10
EXPIRE e 10 FOO
EXPIRE e 10 NX XX
EXPIRE e 10 GT LT
EXPIRE e x
EXPIRE e 99999999999999999
PEXPIRE e 100000
TTL e
EXPIRE e -1
EXISTS e
GET e
)",
     R"(OK
(integer) 1
(integer) 100
(integer) 0
(integer) 1
(integer) 50
(integer) 0
(integer) 1
(integer) 0
(integer) -1
(integer) 0
(integer) 0
(integer) 0
(error) ERR Unsupported option FOO
(error) ERR NX and XX, GT or LT options at the same time are not compatible
(error) ERR GT and LT options at the same time are not compatible
(error) ERR value is not an integer or out of range
(error) ERR invalid expire time in 'expire' command
(integer) 1
(integer) 100
(integer) 1
(integer) 0
(nil)
)"},
    {R"(MSET a 1 b 2 c 3
EXISTS a b missing a
DEL a b missing a
EXISTS a b c
MGET a c missing
MSET a
MSET a 1 b
MSET a 1 b 2
MGET a b
)",
     R"(OK
(integer) 3
(integer) 2
(integer) 1
1) (nil)
2) "3"
3) (nil)
(error) ERR wrong number of arguments for 'mset' command
(error) ERR wrong number of arguments for 'mset' command
OK
1) "1"
2) "2"
)"},
    {R"(INCR n
INCR n
INCRBY n 10
DECR n
DECRBY n 20
GET n
INCRBY n x
INCRBY n 01
SET s abc
INCR s
SET s 1.5
INCR s
SET s " 1"
INCR s
SET max 9223372036854775807
INCR max
SET min -9223372036854775808
DECR min
DECRBY n -9223372036854775808
INCRBY n 9223372036854775807
SET ttl 5 EX 100
INCR ttl
TTL ttl
)",
     R"((integer) 1
(integer) 2
(integer) 12
(integer) 11
(integer) -9
"-9"
(error) ERR value is not an integer or out of range
(error) ERR value is not an integer or out of range
OK
(error) ERR value is not an integer or out of range
OK
(error) ERR value is not an integer or out of range
OK
(error) ERR value is not an integer or out of range
OK
(error) ERR increment or decrement would overflow
OK
(error) ERR increment or decrement would overflow
(error) ERR decrement would overflow
(integer) 9223372036854775798
OK
(integer) 6
(integer) 100
)"},
    {R"(APPEND ap hello
APPEND ap " world"
GET ap
STRLEN ap
STRLEN missing
SET ap2 v EX 100
APPEND ap2 w
TTL ap2
GET ap2
)",
     R"((integer) 5
(integer) 11
"hello world"
(integer) 11
(integer) 0
OK
(integer) 2
(integer) 100
"vw"
)"},
    // Redis lists keys in its hash table's order; resp_server sorts them.
    {R"(FLUSHDB
MSET one 1 two 2 three 3 four 4 [x 5
KEYS *
KEYS t*
KEYS ?o*
KEYS *[eo]
KEYS [^t]*
KEYS [a-o]*
KEYS \[*
KEYS nomatch
DBSIZE
FLUSHDB ASYNC
DBSIZE
FLUSHALL x
FLUSHALL SYNC
)",
     R"(OK
OK
1) "[x"
2) "four"
3) "one"
4) "three"
5) "two"
1) "three"
2) "two"
1) "four"
1) "one"
2) "three"
3) "two"
1) "[x"
2) "four"
3) "one"
1) "four"
2) "one"
1) "[x"
(empty array)
(integer) 5
OK
(integer) 0
(error) ERR syntax error
OK
)"},
    {R"(SELECT 0
SELECT 1
SELECT x
CLIENT SETNAME "a b"
CLIENT SETNAME conn-1
CLIENT GETNAME
CLIENT SETNAME ""
CLIENT GETNAME
CLIENT FOO
CLIENT
CLIENT SETNAME
CLIENT GETNAME x
)",
     R"(OK
(error) ERR DB index is out of range
(error) ERR value is not an integer or out of range
(error) ERR Client names cannot contain spaces, newlines or special characters.
OK
"conn-1"
OK
(nil)
(error) ERR unknown subcommand 'FOO'. Try CLIENT HELP.
(error) ERR wrong number of arguments for 'client' command
(error) ERR wrong number of arguments for 'client|setname' command
(error) ERR wrong number of arguments for 'client|getname' command
)"},
    // Redis has more commands (COMMAND COUNT) and more in their documentation.
    {R"(CONFIG GET save
CONFIG GET appendonly
CONFIG GET nosuch
CONFIG FOO
CONFIG
COMMAND COUNT
COMMAND FOO
COMMAND INFO nosuch
COMMAND DOCS nosuch
COMMAND DOCS get
COMMAND INFO get
)",
     R"(1) "save"
2) ""
1) "appendonly"
2) "no"
(empty array)
(error) ERR unknown subcommand 'FOO'. Try CONFIG HELP.
(error) ERR wrong number of arguments for 'config' command
(integer) 29
(error) ERR unknown subcommand 'FOO'. Try COMMAND HELP.
1) (nil)
(empty array)
1) "get"
2) 1) "summary"
   2) "Get the value of a key"
   3) "since"
   4) "1.0.0"
   5) "group"
   6) "string"
1)  1) "get"
    2) (integer) 2
    3) 1) readonly
       2) fast
    4) (integer) 1
    5) (integer) 1
    6) (integer) 1
    7) 1) @read
       2) @string
       3) @fast
    8) (empty array)
    9) (empty array)
   10) (empty array)
)"},
    {R"(FOO a b
foo
GET
GET a b
PING a b
ECHO
DEL
EXISTS
INCR
INCRBY a
DECRBY a 1 2
APPEND a
STRLEN
TTL
PTTL a b
KEYS
KEYS a b
DBSIZE x
SELECT
EXPIRE a
MGET
SET a
)",
     R"((error) ERR unknown command 'FOO', with args beginning with: 'a' 'b' 
(error) ERR unknown command 'foo', with args beginning with: 
(error) ERR wrong number of arguments for 'get' command
(error) ERR wrong number of arguments for 'get' command
(error) ERR wrong number of arguments for 'ping' command
(error) ERR wrong number of arguments for 'echo' command
(error) ERR wrong number of arguments for 'del' command
(error) ERR wrong number of arguments for 'exists' command
(error) ERR wrong number of arguments for 'incr' command
(error) ERR wrong number of arguments for 'incrby' command
(error) ERR wrong number of arguments for 'decrby' command
(error) ERR wrong number of arguments for 'append' command
(error) ERR wrong number of arguments for 'strlen' command
(error) ERR wrong number of arguments for 'ttl' command
(error) ERR wrong number of arguments for 'pttl' command
(error) ERR wrong number of arguments for 'keys' command
(error) ERR wrong number of arguments for 'keys' command
(error) ERR wrong number of arguments for 'dbsize' command
(error) ERR wrong number of arguments for 'select' command
(error) ERR wrong number of arguments for 'expire' command
(error) ERR wrong number of arguments for 'mget' command
(error) ERR wrong number of arguments for 'set' command
)"},
};

/// Calls `ask` until it returns `want`, for up to 10 s; whether it did.
template <class F>
bool eventually(F ask, const std::string& want) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (ask() != want) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(10ms); // paces the polling; the check above decides
    }
    return true;
}

} // namespace

BACKEND_TEST("examples: resp_server answers redis-cli: every command and error, as Redis does") {
    if (!need_program("redis-cli", "redis-tools")) return;
    START_RESP_SERVER(server);
    const int port = server.port;
    for (const cli_exchange& x : cli_exchanges) {
        CAPTURE(x.script);
        CHECK(redis_cli(port, x.script) == x.expected);
    }
    // One command per connection, its words as given (no quoting).
    CHECK(redis_cli_args(port, {"SET", "spaced key", "a \"quoted\"\nvalue"}) == "OK\n");
    CHECK(redis_cli_args(port, {"GET", "spaced key"}) == "\"a \\\"quoted\\\"\\nvalue\"\n");
    CHECK(redis_cli_args(port, {"KEYS", "spaced*"}) == "1) \"spaced key\"\n");
    CHECK(redis_cli_args(port, {"QUIT"}) == "OK\n");
    // PTTL counts down from PX in milliseconds.
    CHECK(redis_cli_args(port, {"SET", "p", "v", "PX", "100000"}) == "OK\n");
    std::string pttl = redis_cli_args(port, {"PTTL", "p"});
    REQUIRE(pttl.starts_with("(integer) "));
    long long left = std::stoll(pttl.substr(10));
    CHECK(left > 90000);
    CHECK(left <= 100000);
    // Keys go when their time has come, whether asked for or not.
    CHECK(redis_cli_args(port, {"FLUSHALL"}) == "OK\n");
    CHECK(redis_cli(port, "SET gone v PX 50\nSET kept v\nSET purged v PX 50\nDBSIZE\n") == "OK\nOK\nOK\n(integer) 3\n");
    CHECK(eventually([&] { return redis_cli_args(port, {"GET", "gone"}); }, "(nil)\n"));
    CHECK(redis_cli_args(port, {"EXISTS", "gone"}) == "(integer) 0\n");
    CHECK(redis_cli_args(port, {"DBSIZE"}) == "(integer) 1\n"); // "purged" was never asked for
    CHECK(redis_cli_args(port, {"KEYS", "*"}) == "1) \"kept\"\n");
    // INFO: a short report of the server, its clients, counters and keys.
    std::string info = redis_cli_args(port, {"INFO"});
    const std::vector<std::string> parts = {"# Server",
                                            "redis_version:7.0.0",
                                            "multiplexing_api:" + backend_name(B::value),
                                            "# Clients",
                                            "connected_clients:",
                                            "# Stats",
                                            "total_commands_processed:",
                                            "total_writes_processed:",
                                            "# Keyspace",
                                            "db0:keys=1,expires=0,avg_ttl=0"};
    for (const std::string& part : parts) {
        CAPTURE(part);
        CHECK(info.find(part) != std::string::npos);
    }
    std::string keyspace = redis_cli_args(port, {"INFO", "keyspace"});
    CHECK(keyspace == "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"); // redis-cli prints INFO as it is
    CHECK(server.proc.stop() == 128 + SIGTERM);
}

namespace {

/// A program at a terminal of its own (a pseudo-terminal), with TERM=dumb so
/// that a line editor reads plain lines: what it prints is read from the
/// terminal's other side.
class terminal_program {
  public:
    explicit terminal_program(std::vector<std::string> argv) {
        master_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        REQUIRE(master_ >= 0);
        REQUIRE(::grantpt(master_) == 0);
        REQUIRE(::unlockpt(master_) == 0);
        std::string slave = ::ptsname(master_);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::setsid();
            int fd = ::open(slave.c_str(), O_RDWR); // the session's controlling terminal
            if (fd < 0) ::_exit(126);
            ::dup2(fd, 0), ::dup2(fd, 1), ::dup2(fd, 2);
            ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
            ::setenv("TERM", "dumb", 1);
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
    }
    terminal_program(const terminal_program&) = delete;
    terminal_program& operator=(const terminal_program&) = delete;
    ~terminal_program() {
        if (pid_ > 0 && !exited_) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        ::close(master_);
    }

    void type(const std::string& line) {
        std::string text = line + "\n";
        REQUIRE(::write(master_, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    }

    /// Reads until the output since the last call holds `text` (30 s at most).
    bool shows(const std::string& text) {
        auto deadline = std::chrono::steady_clock::now() + 30s;
        for (;;) {
            if (auto at = seen_.find(text); at != std::string::npos) {
                seen_.erase(0, at + text.size());
                return true;
            }
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd p{master_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
            char buf[4096];
            ssize_t n = ::read(master_, buf, sizeof buf);
            if (n <= 0) break; // the program ended (EIO once no one has the terminal open)
            seen_.append(buf, static_cast<std::size_t>(n));
        }
        MESSAGE("looked for \"" << text << "\" in vain; the terminal showed:\n" << seen_);
        return false;
    }

    /// The exit status, once the program has ended (30 s at most); -1 if not.
    int wait() {
        for (int i = 0; i < 3000; ++i) {
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                exited_ = true;
                return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            }
            char buf[4096]; // keep the terminal drained meanwhile
            pollfd p{master_, POLLIN, 0};
            if (::poll(&p, 1, 10) > 0 && ::read(master_, buf, sizeof buf) <= 0) std::this_thread::sleep_for(10ms);
        }
        return -1;
    }

  private:
    int master_ = -1;
    pid_t pid_ = -1;
    bool exited_ = false;
    std::string seen_;
};

} // namespace

BACKEND_TEST("examples: resp_server serves redis-cli at a terminal, which asks for COMMAND DOCS first") {
    if (!need_program("redis-cli", "redis-tools")) return;
    START_RESP_SERVER(server);
    const std::string prompt = "127.0.0.1:" + std::to_string(server.port) + "> ";
    terminal_program cli({"redis-cli", "-p", std::to_string(server.port)});
    REQUIRE(cli.shows(prompt));
    cli.type("PING");
    CHECK(cli.shows("PONG"));
    // Its help comes from the server's COMMAND DOCS, asked for at start.
    cli.type("help get");
    CHECK(cli.shows("Get the value of a key"));
    cli.type("help client setname");
    CHECK(cli.shows("Set the current connection name"));
    cli.type("SET greeting \"hello world\"");
    CHECK(cli.shows("OK"));
    cli.type("GET greeting");
    CHECK(cli.shows("\"hello world\""));
    cli.type("GETX");
    CHECK(cli.shows("(error) ERR unknown command 'GETX', with args beginning with: "));
    CHECK(cli.shows(prompt));
    cli.type("QUIT");
    CHECK(cli.wait() == 0);
    CHECK(server.proc.stop() == 128 + SIGTERM);
}

namespace {

const std::string pipelined_replies = std::string("+PONG\r\n") + "+OK\r\n" + "$6\r\ninline\r\n" +
                                      "-ERR wrong number of arguments for 'echo' command\r\n" + // three words
                                      "$0\r\n\r\n" + "+OK\r\n" + ":20000\r\n";

/// Reads exactly `n` bytes, or fewer if the server closes first.
cosock::task<std::string> read_bytes(cosock::socket& c, std::size_t n) {
    std::string got(n, '\0');
    std::size_t have = 0;
    while (have < n) {
        std::size_t k = co_await c.recv(std::span(got).subspan(have));
        if (k == 0) break;
        have += k;
    }
    got.resize(have);
    co_return got;
}

/// Everything until the server closes.
cosock::task<std::string> read_until_closed(cosock::socket& c) {
    std::string got;
    std::array<char, 16384> buf;
    while (std::size_t n = co_await c.recv(buf)) got.append(buf.data(), n);
    co_return got;
}

cosock::task<cosock::socket> resp_connect(cosock::scheduler& s, int port) {
    cosock::socket c{s};
    c.settimeout(30s);
    c.setsockopt(cosock::ipproto_tcp, cosock::tcp_nodelay, 1); // each piece its own segment
    co_await c.connect({"127.0.0.1", port});
    co_return c;
}

// Sends `data` in pieces of the given sizes (cycling), each its own send,
// while reading the replies; checks them byte for byte, and that nothing
// else follows them.
cosock::task<> exchange_in_pieces(cosock::scheduler& s, int port, std::string data, std::vector<std::size_t> sizes,
                                  std::string expected) {
    cosock::socket c = co_await resp_connect(s, port);
    auto send = [&]() -> cosock::task<> {
        std::size_t at = 0;
        for (std::size_t i = 0; at < data.size(); ++i) {
            std::size_t n = std::min(sizes[i % sizes.size()], data.size() - at);
            co_await c.sendall(std::string_view(data).substr(at, n));
            at += n;
        }
    };
    std::string got;
    auto receive = [&]() -> cosock::task<> { got = co_await read_bytes(c, expected.size()); };
    co_await cosock::when_all(send(), receive());
    CHECK(got == expected);
    co_await c.sendall(std::string_view("PING\r\n"));
    CHECK(co_await read_bytes(c, 7) == "+PONG\r\n");
}

} // namespace

BACKEND_TEST("examples: resp_server answers pipelined requests split at odd byte boundaries, byte for byte") {
    for (const std::string& io : io_modes) {
        CAPTURE(io);
        START_RESP_SERVER_IO(server, io);
        // The parser's input, and more: a counter, an error, QUIT-free.
        const std::string requests = "FLUSHALL\r\n" + pipelined +
                                     "INCR counter\r\n*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n" +
                                     "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n" + "MGET key nokey\r\n" + "*1\r\n$3\r\nFOO\r\n";
        const std::string replies = "+OK\r\n" + pipelined_replies + ":1\r\n:2\r\n" + "$5\r\nva\r\nl\r\n" +
                                    "*2\r\n$5\r\nva\r\nl\r\n$-1\r\n" +
                                    "-ERR unknown command 'FOO', with args beginning with: \r\n";
        cosock::scheduler s{B::value};
        for (const std::vector<std::size_t>& sizes : std::vector<std::vector<std::size_t>>{
                 {requests.size()}, {1}, {2}, {3}, {7}, {1, 2, 3, 7, 11, 64, 1000}, {16383}, {16385}}) {
            CAPTURE(sizes[0]);
            s.run(exchange_in_pieces(s, server.port, requests, sizes, replies));
        }
        CHECK(server.proc.stop() == 128 + SIGTERM);
    }
}

namespace {

// A request before the bad one is answered; the bad one gets Redis's protocol
// error, and the server closes the connection.
cosock::task<> malformed(cosock::scheduler& s, int port, std::string bad, std::string error) {
    cosock::socket c = co_await resp_connect(s, port);
    auto send = [&]() -> cosock::task<> {
        try {
            std::string all = "PING\r\n" + bad; // named: no temporary beside a co_await (GCC 12)
            co_await c.sendall(all);
        } catch (const std::system_error&) {
            // the server may close before it has read all of a long request
        }
    };
    std::string got;
    auto receive = [&]() -> cosock::task<> { got = co_await read_until_closed(c); };
    co_await cosock::when_all(send(), receive());
    CHECK(got == "+PONG\r\n-" + error + "\r\n");
}

} // namespace

BACKEND_TEST("examples: resp_server answers a malformed request with Redis's protocol error, then closes") {
    for (const std::string& io : io_modes) {
        CAPTURE(io);
        START_RESP_SERVER_IO(server, io);
        cosock::scheduler s{B::value};
        struct bad {
            std::string input, error;
        };
        for (const bad& b : std::vector<bad>{
                 {"*x\r\n", "ERR Protocol error: invalid multibulk length"},
                 {"*1048577\r\n", "ERR Protocol error: invalid multibulk length"},
                 {"*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length"},
                 {"*1\r\n$536870913\r\n", "ERR Protocol error: invalid bulk length"},
                 {"*2\r\n$3\r\nGET\r\n$x\r\n", "ERR Protocol error: invalid bulk length"},
                 {"*1\r\nGET\r\n", "ERR Protocol error: expected '$', got 'G'"},
                 {"*" + std::string(100000, '1'), "ERR Protocol error: too big mbulk count string"},
                 {"*1\r\n$" + std::string(100000, '1'), "ERR Protocol error: too big bulk count string"},
                 {std::string(100000, 'x'), "ERR Protocol error: too big inline request"},
                 {"SET \"a b\r\n", "ERR Protocol error: unbalanced quotes in request"},
             }) {
            CAPTURE(b.input.substr(0, 40));
            s.run(malformed(s, server.port, b.input, b.error));
        }
        // QUIT too: its reply, then the close, whatever follows it.
        auto quit = [&]() -> cosock::task<> {
            cosock::socket c = co_await resp_connect(s, server.port);
            co_await c.sendall(std::string_view("PING\r\nQUIT\r\nPING\r\n"));
            CHECK(co_await read_until_closed(c) == "+PONG\r\n+OK\r\n");
        };
        s.run(quit());
        // The server goes on serving others.
        s.run(exchange_in_pieces(s, server.port, "PING\r\n", {1}, "+PONG\r\n"));
        CHECK(server.proc.stop() == 128 + SIGTERM);
    }
}

namespace {

struct counters {
    unsigned long long commands = 0, reads = 0, writes = 0;
};

counters counters_in(const std::string& info) {
    auto field = [&](const std::string& name) {
        auto at = info.find(name + ":");
        REQUIRE(at != std::string::npos);
        return std::stoull(info.substr(at + name.size() + 1));
    };
    return {field("total_commands_processed"), field("total_reads_processed"), field("total_writes_processed")};
}

// 1000 PINGs and an INFO in one send: their replies go out in as many sends
// as there were reads that completed requests, not one per reply.
cosock::task<> pipelined_counts(cosock::scheduler& s, int port) {
    cosock::socket c = co_await resp_connect(s, port);
    const std::string info = "*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n";
    auto read_info = [&]() -> cosock::task<std::string> {
        std::string head;
        for (char ch = 0; ch != '\n';) {
            std::string one = co_await read_bytes(c, 1);
            REQUIRE(one.size() == 1);
            head += ch = one[0];
        }
        REQUIRE(head.starts_with("$"));
        co_return co_await read_bytes(c, std::stoul(head.substr(1)) + 2);
    };
    co_await c.sendall(info);
    counters before = counters_in(co_await read_info());
    std::string batch;
    for (int i = 0; i < 1000; ++i) batch += "*1\r\n$4\r\nPING\r\n";
    batch += info;
    std::string expected;
    for (int i = 0; i < 1000; ++i) expected += "+PONG\r\n";
    co_await c.sendall(batch);
    CHECK(co_await read_bytes(c, expected.size()) == expected);
    counters after = counters_in(co_await read_info());
    const unsigned long long reads = after.reads - before.reads, writes = after.writes - before.writes;
    MESSAGE("1000 pipelined PINGs: " << reads << " reads, " << writes << " sends");
    CHECK(after.commands - before.commands == 1001);
    CHECK(reads >= 1);
    CHECK(writes <= reads); // one send per read at most (the first INFO's included, the last one's not yet)
    CHECK(writes <= 20);
}

} // namespace

BACKEND_TEST("examples: resp_server sends once per batch of pipelined requests, not once per reply") {
    for (const std::string& io : io_modes) {
        CAPTURE(io);
        START_RESP_SERVER_IO(server, io);
        cosock::scheduler s{B::value};
        s.run(pipelined_counts(s, server.port));
        CHECK(server.proc.stop() == 128 + SIGTERM);
    }
}

namespace {

// A client sets a 1 MiB value, then asks for it 2000 times (2 GB of replies)
// and reads none: the server holds about one reply for it, not all of them,
// and serves others meanwhile.
cosock::task<> never_reads(cosock::scheduler& s, int port, pid_t server) {
    cosock::socket filler = co_await resp_connect(s, port);
    const std::string value(1 << 20, 'v');
    const std::string set =
        "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
    co_await filler.sendall(set);
    CHECK(co_await read_bytes(filler, 5) == "+OK\r\n");
    const long before = resident_kib(server);
    REQUIRE(before > 0);

    std::vector<cosock::socket> stalled;
    for (int i = 0; i < 4; ++i) {
        cosock::socket c{s};
        c.setsockopt(cosock::sol_socket, cosock::so_rcvbuf, 4096);
        c.settimeout(30s);
        co_await c.connect({"127.0.0.1", port});
        std::string gets;
        for (int k = 0; k < 2000; ++k) gets += "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";
        co_await c.sendall(gets); // 44 KB: the kernel's buffers take what the server does not read
        stalled.push_back(std::move(c));
    }
    // Everyone else is served meanwhile.
    cosock::socket other = co_await resp_connect(s, port);
    co_await other.sendall(std::string_view("SET fresh 1\r\nGET fresh\r\nSTRLEN big\r\n"));
    CHECK(co_await read_bytes(other, 5 + 7 + 10) == "+OK\r\n$1\r\n1\r\n:1048576\r\n");
    const long grown = resident_kib(server) - before;
    MESSAGE("four clients that never read 2000 replies of 1 MiB each grew the server by " << grown / 1024 << " MiB");
    CHECK(grown < 64 * 1024);
    // The stalled replies come whole and in order once read.
    std::string head = co_await read_bytes(stalled[0], 9);
    CHECK(head == "$1048576\r");
}

} // namespace

BACKEND_TEST("examples: resp_server's memory stays bounded while clients never read their replies") {
    for (const std::string& io : io_modes) {
        CAPTURE(io);
        START_RESP_SERVER_IO(server, io);
        cosock::scheduler s{B::value};
        s.run(never_reads(s, server.port, server.proc.pid()));
        CHECK(server.proc.stop() == 128 + SIGTERM); // still running
    }
}

namespace {

// The examples are built as the tests are: with AddressSanitizer in the sanitizer builds.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool address_sanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool address_sanitizer = true;
#else
constexpr bool address_sanitizer = false;
#endif
#else
constexpr bool address_sanitizer = false;
#endif

// A 64 MiB value goes in and comes out again: the connection's input buffer
// grows for the request and its output buffer for the reply, and each lets go
// of that memory once done (64 MiB is above glibc's largest mmap threshold,
// so what is freed leaves the process).
cosock::task<> big_value(cosock::scheduler& s, int port, pid_t server) {
    cosock::socket c = co_await resp_connect(s, port);
    auto ping = [&]() -> cosock::task<> { // once answered, the batch before it has ended
        co_await c.sendall(std::string_view("PING\r\n"));
        CHECK(co_await read_bytes(c, 7) == "+PONG\r\n");
    };
    co_await ping();
    const long start = resident_kib(server);
    const std::string value(64 << 20, 'v');
    const std::string set =
        "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
    co_await c.sendall(set);
    CHECK(co_await read_bytes(c, 5) == "+OK\r\n");
    co_await ping();
    const long stored = resident_kib(server);
    co_await c.sendall(std::string_view("GET big\r\n"));
    const std::string head = "$" + std::to_string(value.size()) + "\r\n";
    std::string reply = co_await read_bytes(c, head.size() + value.size() + 2);
    CHECK(reply == head + value + "\r\n");
    co_await ping();
    const long after_get = resident_kib(server);
    co_await c.sendall(std::string_view("DEL big\r\n"));
    CHECK(co_await read_bytes(c, 4) == ":1\r\n");
    co_await ping();
    const long after_del = resident_kib(server);
    MESSAGE("resident KiB: " << start << " at first, " << stored << " with 64 MiB stored, " << after_get
                             << " after GET, " << after_del << " after DEL");
    if (address_sanitizer) {
        MESSAGE("SKIPPED the memory checks under AddressSanitizer: freed memory stays in its quarantine");
        co_return;
    }
    CHECK(stored - start < 80 * 1024);     // the value, not also the request's buffer
    CHECK(after_get - stored < 16 * 1024); // the reply's buffer is gone
    CHECK(after_del - start < 16 * 1024);
}

} // namespace

BACKEND_TEST("examples: resp_server lets go of a big request's and a big reply's memory") {
    START_RESP_SERVER(server);
    cosock::scheduler s{B::value};
    s.run(big_value(s, server.port, server.proc.pid()));
    CHECK(server.proc.stop() == 128 + SIGTERM);
}

BACKEND_TEST("examples: resp_server sleeps when idle") {
    START_RESP_SERVER(server);
    cosock::scheduler s{B::value};
    cosock::socket a = s.run(resp_connect(s, server.port)), b = s.run(resp_connect(s, server.port));
    s.run(exchange_in_pieces(s, server.port, "SET k v PX 100000\r\nGET k\r\n", {3}, "+OK\r\n$1\r\nv\r\n"));
    auto half = [&]() -> cosock::task<> { // half a request: the server waits for the rest
        co_await a.sendall(std::string_view("*2\r\n$3\r\nGET\r\n$1\r\n"));
        co_await b.sendall(std::string_view("GET "));
    };
    s.run(half());
    check_sleeps(server.proc);
    auto rest = [&]() -> cosock::task<> {
        co_await a.sendall(std::string_view("k\r\n"));
        CHECK(co_await read_bytes(a, 7) == "$1\r\nv\r\n");
        co_await b.sendall(std::string_view("k\r\n"));
        CHECK(co_await read_bytes(b, 7) == "$1\r\nv\r\n");
    };
    s.run(rest());
    CHECK(server.proc.stop() == 128 + SIGTERM);
}
