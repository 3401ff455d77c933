// A reference echo loop on io_uring (liburing 2.3): one ring, a multishot
// accept, and per connection one operation in flight (recv, then send until
// the bytes are out, then recv again). Each turn submits what the last batch
// of completions prepared and waits in the same call.
//
//   echo_uring --port PORT [--max-seconds S]
//
// Ring flags, best first: SINGLE_ISSUER|DEFER_TASKRUN (6.1), COOP_TASKRUN
// (5.19), none. No buffer rings (liburing 2.3 has no io_uring_setup_buf_ring),
// so each connection owns its buffer, as a coroutine frame would.
// If the kernel refuses io_uring it exits with status 3 and the reason.
#include "common.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <liburing.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

namespace {

[[noreturn]] void fail(const char* what, int err, int status = 1) {
    std::fprintf(stderr, "echo_uring: %s: %s\n", what, std::strerror(err));
    std::exit(status);
}

struct conn {
    explicit conn(int f) : fd(f) {} // leaves buf untouched: its pages count only once used
    int fd;
    std::size_t len = 0;  // bytes in buf to echo; 0 while a recv is in flight
    std::size_t sent = 0; // of those, already sent
    char buf[bench::echo_buffer_size];
};

class ring_server {
  public:
    explicit ring_server(int lfd) : lfd_(lfd) {
        struct mode {
            unsigned flags;
            const char* name;
        };
        const mode modes[] = {{IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "defer_taskrun"},
                              {IORING_SETUP_COOP_TASKRUN, "coop_taskrun"},
                              {0, "plain"}};
        int r = -EINVAL;
        for (const mode& m : modes) {
            io_uring_params p{};
            p.flags = m.flags | IORING_SETUP_CQSIZE;
            p.cq_entries = 65536; // one completion per connection can be pending, 10000+ of them
            r = io_uring_queue_init_params(4096, &ring_, &p);
            mode_ = m.name;
            if (r != -EINVAL) break; // EINVAL: a flag this kernel does not know; try fewer
        }
        if (r < 0) fail("io_uring_queue_init_params", -r, 3);
    }

    const char* mode() const { return mode_; }

    void run() {
        accept();
        for (;;) {
            int r = io_uring_submit_and_wait(&ring_, 1);
            if (r < 0 && r != -EINTR) fail("io_uring_submit_and_wait", -r);
            unsigned head, seen = 0;
            io_uring_cqe* cqe;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                complete(static_cast<conn*>(io_uring_cqe_get_data(cqe)), cqe->res, cqe->flags);
                ++seen;
            }
            io_uring_cq_advance(&ring_, seen);
        }
    }

  private:
    io_uring_sqe* sqe(conn* c) {
        io_uring_sqe* s = io_uring_get_sqe(&ring_);
        if (!s) { // the queue is full: hand it to the kernel, then there is room
            io_uring_submit(&ring_);
            s = io_uring_get_sqe(&ring_);
        }
        io_uring_sqe_set_data(s, c);
        return s;
    }

    void accept() { io_uring_prep_multishot_accept(sqe(nullptr), lfd_, nullptr, nullptr, 0); }
    void recv(conn* c) {
        c->len = 0;
        io_uring_prep_recv(sqe(c), c->fd, c->buf, sizeof c->buf, 0);
    }
    void send(conn* c) { io_uring_prep_send(sqe(c), c->fd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL); }
    void drop(conn* c) {
        close(c->fd);
        delete c;
    }

    // `c` is null for the listener's accept completions.
    void complete(conn* c, int res, unsigned flags) {
        if (!c) {
            if (res < 0) fail("accept", -res);
            int one = 1;
            setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            recv(new conn(res));
            if (!(flags & IORING_CQE_F_MORE)) accept(); // the multishot ended; start another
        } else if (res <= 0) {
            drop(c); // end of stream or an error, either from recv or send
        } else if (c->len == 0) {
            c->len = std::size_t(res);
            c->sent = 0;
            send(c);
        } else if ((c->sent += std::size_t(res)) < c->len) {
            send(c);
        } else {
            recv(c);
        }
    }

    io_uring ring_;
    int lfd_;
    const char* mode_ = "";
};

} // namespace

int main(int argc, char** argv) {
    bench::options opt(argc, argv, {"port", "max-seconds"}, bench::server_usage);
    bench::prepare_server(opt);
    int lfd = bench::listen_loopback(int(opt.number("port", 0)));
    ring_server s(lfd);
    bench::announce(bench::local_port(lfd), std::string("raw-io_uring ") + s.mode());
    s.run();
}
