// The TLS reference: the echo loop one writes by hand with OpenSSL 3 and
// level-triggered epoll, on one thread. Each connection is a non-blocking
// socket given to OpenSSL with SSL_set_fd; SSL_accept, SSL_read and SSL_write
// are called when epoll says the socket is ready and, when they cannot go on,
// say what they wait for (SSL_ERROR_WANT_READ or SSL_ERROR_WANT_WRITE), which
// becomes the connection's interest. The interest is writability only while a
// write is pending; that write is retried with the same bytes (kept per
// connection: the read buffer is shared). Read-ahead is on, so one recv brings
// as many records as are there; records OpenSSL holds then do not wake epoll,
// so a turn reads on while SSL_has_pending() says some are buffered.
// TLS settings: bench/tls_common.hpp (TLS 1.3, TLS_AES_128_GCM_SHA256, X25519,
// no session tickets).
//
//   echo_tls_epoll --port PORT --cert FILE --key FILE [--max-seconds S]
#include "common.hpp"
#include "tls_common.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <netinet/tcp.h>
#include <string>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "echo_tls_epoll: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

struct conn {
    SSL* ssl = nullptr;
    bool accepted = false;       // the handshake is done
    std::string pending;         // a write OpenSSL could not finish, to retry as is
    unsigned interest = EPOLLIN; // what the connection is registered for
};

struct server {
    int ep = epoll_create1(0);
    SSL_CTX* ctx = nullptr;
    std::vector<conn> conns; // by fd
    char buf[bench::echo_buffer_size];

    void watch(int fd, unsigned events, int op) {
        epoll_event ev{events, {.fd = fd}};
        if (epoll_ctl(ep, op, fd, &ev) < 0) fail("epoll_ctl");
    }

    void set_interest(int fd, unsigned events) {
        conn& c = conns[std::size_t(fd)];
        if (c.interest == events) return;
        watch(fd, events, EPOLL_CTL_MOD);
        c.interest = events;
    }

    void accept_all(int lfd) {
        while (int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) {
            if (fd < 0) {
                if (errno == EAGAIN) return;
                if (errno == ECONNABORTED || errno == EINTR) continue;
                fail("accept");
            }
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            SSL* ssl = SSL_new(ctx);
            if (!ssl || SSL_set_fd(ssl, fd) != 1) bench::tls::die("echo_tls_epoll", "SSL_new");
            SSL_set_accept_state(ssl);
            if (std::size_t(fd) >= conns.size()) conns.resize(std::size_t(fd) + 1);
            conns[std::size_t(fd)] = conn{ssl, false, {}, EPOLLIN};
            watch(fd, EPOLLIN, EPOLL_CTL_ADD); // the ClientHello may not be here yet
        }
    }

    // The peer left (at any point, even mid-handshake or mid-record) or broke
    // the protocol: forget the connection, and OpenSSL's error queue with it.
    void drop(int fd) {
        conn& c = conns[std::size_t(fd)];
        SSL_free(c.ssl);
        ERR_clear_error();
        close(fd); // also removes it from the epoll set
        c = conn{};
    }

    // An SSL call on fd returned `ret` without finishing: wait for what it
    // needs, or drop the connection if it failed. False if dropped.
    bool wait_for(int fd, int ret) {
        switch (SSL_get_error(conns[std::size_t(fd)].ssl, ret)) {
        case SSL_ERROR_WANT_READ:
            set_interest(fd, EPOLLIN);
            return true;
        case SSL_ERROR_WANT_WRITE:
            set_interest(fd, EPOLLOUT);
            return true;
        default:
            drop(fd);
            return false; // closed, reset, unexpected EOF, bad record
        }
    }

    // Writes data; what OpenSSL cannot take now is kept in `pending` and
    // retried when the socket is ready. True when all of it went out.
    bool write(int fd, const char* data, std::size_t size) {
        conn& c = conns[std::size_t(fd)];
        while (size > 0) {
            int w = SSL_write(c.ssl, data, int(size)); // partial writes: w may be < size
            if (w <= 0) {
                if (c.pending.data() != data) c.pending.assign(data, size);
                wait_for(fd, w); // or dropped
                return false;
            }
            data += w;
            size -= std::size_t(w);
        }
        return true;
    }

    void on_event(int fd) {
        conn& c = conns[std::size_t(fd)];
        if (!c.accepted) {
            int r = SSL_accept(c.ssl);
            if (r != 1) {
                wait_for(fd, r);
                return;
            }
            c.accepted = true;
            set_interest(fd, EPOLLIN); // the client's first record may be here already: read on
        }
        if (!c.pending.empty()) {
            if (!write(fd, c.pending.data(), c.pending.size())) return;
            c.pending.clear();
            set_interest(fd, EPOLLIN); // and read on: OpenSSL may hold records already read
        }
        // Read while OpenSSL holds buffered records (epoll cannot see them),
        // or while reads fill the buffer (at most 64 times, so one busy peer
        // cannot starve the rest).
        for (int reads = 0;; ++reads) {
            int n = SSL_read(c.ssl, buf, int(sizeof buf));
            if (n <= 0) {
                wait_for(fd, n);
                return;
            }
            if (!write(fd, buf, std::size_t(n))) return;
            if (!SSL_has_pending(c.ssl) && (std::size_t(n) < sizeof buf || reads >= 64)) return;
        }
    }
};

} // namespace

int main(int argc, char** argv) {
    bench::options opt(argc, argv, {"port", "max-seconds", "cert", "key"}, bench::tls::server_usage);
    bench::prepare_server(opt);
    static server s; // the buffer is large; keep it off the stack
    s.ctx = SSL_CTX_new(TLS_server_method());
    if (!s.ctx) bench::tls::die("echo_tls_epoll", "SSL_CTX_new");
    bench::tls::configure_server(s.ctx, opt, "echo_tls_epoll");
    SSL_CTX_set_read_ahead(s.ctx, 1);
    int lfd = bench::listen_loopback(int(opt.number("port", 0)), SOCK_NONBLOCK);
    bench::announce(bench::local_port(lfd), "raw-epoll-tls");
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
