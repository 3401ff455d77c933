// Echo over AF_UNIX stream sockets: a server on a filesystem path or a Linux
// abstract name, and a client for it.
//
//   unix_echo [--backend NAME] --path PATH | --abstract NAME     (server)
//   unix_echo [--backend NAME] --client PATH|@NAME [MESSAGE...]   (client)
//
// The server prints "listening on PATH (BACKEND)" ("@NAME" for an abstract
// name) first, and stops cleanly on SIGINT or SIGTERM. A path is a file: a
// server that crashed leaves it behind and bind() then fails, so the server
// removes a socket file nobody answers on before binding, and its own file
// when it stops. An abstract name needs neither: it vanishes with its socket.
// The client sends each message (the arguments, or else the lines of stdin)
// and prints its echo; its exit status is 0 only when every echo matched.
#include <cosock/cosock.hpp>

#include "options.hpp"

#include <array>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>
#include <vector>

using cosock::task;

task<> handle(cosock::socket conn) {
    try {
        std::array<char, 16384> buf;
        while (std::size_t n = co_await conn.recv(buf)) co_await conn.sendall(std::string_view(buf.data(), n));
    } catch (const std::system_error& e) { // this client's trouble ends only its own task
        std::fprintf(stderr, "unix_echo: %s\n", e.what());
    }
}

// Out of descriptors, accepting pauses; the clients already here are served.
task<> accept_loop(cosock::scheduler& s, cosock::socket& srv) {
    for (;;) s.spawn(handle((co_await example::accept_patiently(srv, "unix_echo")).conn));
}

task<> until_signal(cosock::signal_set& stop_signals) {
    int sig = co_await stop_signals.wait();
    std::fprintf(stderr, "unix_echo: %s, stopping\n", ::strsignal(sig));
}

// A socket file left by a server that is gone refuses connections: remove it.
// Anything else at the path (a live server, a regular file) is not ours.
task<> remove_stale(cosock::scheduler& s, const cosock::address& where) {
    struct stat st;
    if (::lstat(where.path().c_str(), &st) != 0) co_return;
    if (!S_ISSOCK(st.st_mode)) throw std::runtime_error(where.path() + " exists and is not a socket");
    try {
        cosock::socket probe{s, cosock::af_unix};
        co_await probe.connect(where);
    } catch (const std::system_error& e) {
        if (e.code() != std::errc::connection_refused) throw;
        std::fprintf(stderr, "unix_echo: removing stale socket file %s\n", where.path().c_str());
        ::unlink(where.path().c_str());
        co_return;
    }
    throw std::runtime_error("a server is already listening on " + where.path());
}

task<> serve(cosock::scheduler& s, cosock::address where) {
    // Caught from here on (a set, not a single wait_signal): a signal sent as
    // soon as the listening line is out stops the server cleanly too.
    cosock::signal_set stop_signals{s, {SIGINT, SIGTERM}};
    if (!where.is_abstract()) co_await remove_stale(s, where);
    cosock::socket srv = cosock::create_server(s, where);
    struct remove_at_exit { // also when the loop fails: the file would be stale
        std::string path;
        ~remove_at_exit() {
            if (!path.empty()) ::unlink(path.c_str());
        }
    } guard{where.is_abstract() ? std::string() : where.path()};
    std::printf("listening on %s (%s)\n", where.to_string().c_str(), std::string(s.backend_name()).c_str());
    std::fflush(stdout); // the line goes down a pipe, where stdout is not line-buffered
    // Whichever ends first cancels the other: a signal stops the accept loop.
    std::vector<task<>> both;
    both.push_back(accept_loop(s, srv));
    both.push_back(until_signal(stop_signals));
    co_await cosock::when_any(std::move(both));
}

// One message at a time, sent whole before reading its echo: fine for lines;
// echo_client shows how to send and receive at once for messages bigger than
// the socket buffers.
task<int> client(cosock::scheduler& s, cosock::address server, std::vector<std::string> messages) {
    cosock::socket sock{s, cosock::af_unix};
    co_await sock.connect(server);
    // A stream may deliver the echo in pieces; a file object's read(n) waits
    // for all n bytes (fewer only if the server closes).
    cosock::file_object in = sock.makefile("rb");
    int failures = 0;
    for (std::size_t i = 0;; ++i) {
        std::string msg;
        if (i < messages.size())
            msg = messages[i];
        else if (!messages.empty() || !std::getline(std::cin, msg))
            break; // blocks: we are the only task
        if (msg.empty()) continue;
        co_await sock.sendall(msg);
        std::string echo = co_await in.read(static_cast<std::ptrdiff_t>(msg.size()));
        std::printf("%s\n", echo.c_str());
        failures += echo != msg;
    }
    co_return failures == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
    example::options opt(argc, argv, "--path PATH | --abstract NAME | --client PATH|@NAME [MESSAGE...]",
                         {"--path", "--abstract", "--client"});
    std::string path = opt.text("--path", ""), name = opt.text("--abstract", ""), server = opt.text("--client", "");
    if (path.empty() + name.empty() + server.empty() != 2) opt.fail("give one of --path, --abstract or --client");
    if (server.empty() && !opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    cosock::address where;
    try {
        if (!server.empty())
            where = server.starts_with('@') ? cosock::address::abstract(server.substr(1))
                                            : cosock::address::unix_path(server);
        else
            where = name.empty() ? cosock::address::unix_path(path) : cosock::address::abstract(name);
    } catch (const std::invalid_argument& e) {
        opt.fail(e.what());
    }
    try {
        cosock::scheduler s{opt.backend()};
        if (!server.empty()) return s.run(client(s, where, opt.positional()));
        s.spawn(example::report_stats_on_sigusr1(s)); // kill -USR1 prints the loop's counters
        s.run(serve(s, where));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "unix_echo: %s\n", e.what());
        return 1;
    }
}
