// The reference: the echo loop one writes by hand with epoll. Level-triggered,
// each connection registered once for reading; read, then write straight back
// from one shared buffer, and read again while reads fill the buffer. Only a
// short write (the peer's window is full) keeps bytes per connection and waits
// for writability instead.
//
//   echo_epoll --port PORT [--max-seconds S]
#include "common.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "echo_epoll: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

struct server {
    int ep = epoll_create1(0);
    std::vector<std::string> pending; // by fd: bytes a short write left behind
    char buf[bench::echo_buffer_size];

    void watch(int fd, unsigned events, int op) {
        epoll_event ev{events, {.fd = fd}};
        if (epoll_ctl(ep, op, fd, &ev) < 0) fail("epoll_ctl");
    }

    void accept_all(int lfd) {
        while (int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) {
            if (fd < 0) {
                if (errno == EAGAIN) return;
                fail("accept");
            }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (std::size_t(fd) >= pending.size()) pending.resize(std::size_t(fd) + 1);
            watch(fd, EPOLLIN, EPOLL_CTL_ADD);
        }
    }

    void drop(int fd) {
        pending[std::size_t(fd)].clear();
        close(fd); // also removes it from the epoll set
    }

    // Sends `data`; what does not fit waits in pending[fd], and the interest
    // is writability until it is out. `waiting` says what the interest is now.
    // True when all of it went out.
    bool echo(int fd, std::string_view data, bool waiting) {
        ssize_t w = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
            drop(fd);
            return false;
        }
        data.remove_prefix(w < 0 ? 0 : std::size_t(w));
        if (data.empty() && !waiting) return true; // the usual case
        pending[std::size_t(fd)].assign(data);
        if (data.empty() == waiting) watch(fd, waiting ? EPOLLIN : EPOLLOUT, EPOLL_CTL_MOD);
        return data.empty();
    }

    void on_event(int fd) {
        if (std::string& rest = pending[std::size_t(fd)]; !rest.empty()) {
            std::string out = std::move(rest);
            echo(fd, out, true);
            return;
        }
        // A full buffer means more may be waiting, so read on (at most 64
        // times, so one busy peer cannot starve the rest). A short read ends
        // the turn: another recv would most likely just say EAGAIN.
        for (int reads = 0; reads < 64; ++reads) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) {
                if (n == 0 || errno != EAGAIN) drop(fd);
                return;
            }
            if (!echo(fd, {buf, std::size_t(n)}, false) || std::size_t(n) < sizeof buf) return;
        }
    }
};

} // namespace

int main(int argc, char** argv) {
    bench::options opt(argc, argv, {"port", "max-seconds"}, bench::server_usage);
    bench::prepare_server(opt);
    int lfd = bench::listen_loopback(int(opt.number("port", 0)), SOCK_NONBLOCK);
    bench::announce(bench::local_port(lfd), "raw-epoll");
    static server s; // the buffer is large; keep it off the stack
    s.watch(lfd, EPOLLIN, EPOLL_CTL_ADD);
    epoll_event events[512];
    for (;;) {
        int n = epoll_wait(s.ep, events, 512, -1);
        if (n < 0 && errno != EINTR) fail("epoll_wait");
        for (int i = 0; i < n; ++i) {
            if (events[i].data.fd == lfd)
                s.accept_all(lfd);
            else
                s.on_event(events[i].data.fd);
        }
    }
}
