// The pre-fork pattern: a parent process accepts connections and hands each
// to one of N worker processes over a Unix socket (cosock::send_fds), which
// serves it. The workers here are line echo servers that first say who they
// are.
//
//   prefork_server [--backend NAME] [--host IP] [--port N] [--workers N]
//
// --workers N (default 2) worker processes take connections in turn; one that
// dies leaves the rotation, and the parent stops when none is left. The
// parent learns of a death when its next hand-over fails: a connection handed
// over just as a worker dies (before its socket is closed) is lost with it. A client
// gets "worker I pid P" on a line, then each line it sends comes back. The
// first line printed is "listening on HOST:PORT (BACKEND)". SIGINT or SIGTERM
// stops the parent, which closes its ends of the workers' sockets: each
// worker's recv_fds then ends and the worker exits, closing its clients' sockets.
// The parent waits for them all before it exits.
//
// Each process has its own scheduler, made after the fork (a scheduler does
// not cross fork). A descriptor sent is a new descriptor in the worker for the
// same connection; the parent closes its own at once.
#include <cosock/cosock.hpp>

#include "options.hpp"

#include <csignal>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

using cosock::task;

namespace {

task<> echo_lines(cosock::socket conn, std::string hello) {
    try {
        auto f = conn.makefile("rwb");
        co_await f.write(hello);
        co_await f.flush();
        for (;;) {
            std::string line = co_await f.readline();
            if (line.empty()) break;
            co_await f.write(line);
            if (f.buffered() == 0) co_await f.flush();
        }
        co_await f.close();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "prefork_server worker: %s\n", e.what());
    }
}

// A worker: takes connections from the parent until it closes its end.
task<> work(cosock::scheduler& s, cosock::socket parent, std::string hello) {
    for (;;) {
        cosock::recv_fds_result got = co_await cosock::recv_fds(parent, 1, 1);
        if (got.data.empty()) co_return; // the parent is gone
        for (cosock::unique_fd& fd : got.fds) s.spawn(echo_lines(cosock::socket::from_fd(s, fd.release()), hello));
    }
}

int run_worker(const example::options& opt, int fd, std::size_t index) {
    cosock::scheduler s{opt.backend()};
    cosock::socket parent = cosock::socket::from_fd(s, fd);
    s.run(work(s, std::move(parent), "worker " + std::to_string(index) + " pid " + std::to_string(::getpid()) + "\n"));
    return 0;
}

// The parent: accepts, and sends each connection to the next worker. A
// worker that is gone (its socket says EPIPE) leaves the rotation and the
// connection goes to the next; with none left the parent stops.
task<> hand_out(cosock::socket srv, std::vector<cosock::socket>& workers) {
    std::size_t next = 0;
    const std::string_view one = "c";
    std::vector<std::string_view> data{one};
    while (!workers.empty()) {
        auto [conn, peer] = co_await example::accept_patiently(srv, "prefork_server");
        std::vector<int> fds{conn.fileno()};
        while (!workers.empty()) {
            next %= workers.size();
            try {
                co_await cosock::send_fds(workers[next], data, fds);
                ++next;
                break;
            } catch (const std::system_error& e) {
                std::fprintf(stderr, "prefork_server: a worker is gone (%s); %zu left\n", e.what(), workers.size() - 1);
                workers.erase(workers.begin() + std::ptrdiff_t(next));
            }
        }
    } // conn closes here: the worker holds its own descriptor for it
    std::fprintf(stderr, "prefork_server: no worker left\n");
}

task<> until_stopped() {
    co_await cosock::wait_signal({SIGINT, SIGTERM});
}

} // namespace

int main(int argc, char** argv) {
    example::options opt(argc, argv, "[--host IP] [--port N] [--workers N]", {"--host", "--port", "--workers"});
    if (!opt.positional().empty()) opt.fail("unexpected argument '" + opt.positional()[0] + "'");
    const cosock::address where = opt.server_address(7000);
    auto count = std::size_t(opt.number("--workers", 2, 1, 256));

    // The workers first, before this process makes its scheduler.
    std::vector<int> ends;
    std::vector<pid_t> children;
    for (std::size_t i = 0; i < count; ++i) {
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
            std::perror("prefork_server: socketpair");
            return 1;
        }
        pid_t pid = ::fork();
        if (pid < 0) {
            std::perror("prefork_server: fork");
            return 1;
        }
        if (pid == 0) {
            ::close(pair[0]);
            for (int e : ends) ::close(e); // the other workers' parent ends
            try {
                return run_worker(opt, pair[1], i);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "prefork_server worker %zu: %s\n", i, e.what());
                return 1;
            }
        }
        ::close(pair[1]);
        ends.push_back(pair[0]);
        children.push_back(pid);
    }

    int status = 0;
    try {
        cosock::scheduler s{opt.backend()};
        std::vector<cosock::socket> workers;
        for (int e : ends) workers.push_back(cosock::socket::from_fd(s, e));
        cosock::socket srv = cosock::create_server(s, where);
        example::announce(srv, s);
        s.run([](cosock::socket srv, std::vector<cosock::socket>& workers) -> task<> {
            co_await cosock::when_any(hand_out(std::move(srv), workers), until_stopped());
        }(std::move(srv), workers));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "prefork_server: %s\n", e.what());
        status = 1;
    }
    // The scheduler and the workers' sockets are gone: each worker's recv_fds ends.
    for (pid_t pid : children) ::waitpid(pid, nullptr, 0);
    return status;
}
