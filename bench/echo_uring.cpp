// A reference echo loop on io_uring (liburing 2.3): one ring, a multishot
// accept, and completions reaped in batches: each turn submits what the last
// batch of completions prepared and waits in the same call. Two modes:
//
//   echo_uring --port PORT [--max-seconds S] [--mode single|multishot]
//
// single (the default): per connection one operation in flight (recv, then
// send until the bytes are out, then recv again), into and out of a buffer
// the connection owns, as a coroutine frame would.
//
// multishot: per connection one multishot recv, armed once, that takes its
// buffers from a provided-buffer ring shared by all connections (4096 buffers
// of 16 KiB, buffer group 0). liburing 2.3 has no io_uring_setup_buf_ring, so
// the ring is set up by hand: mmap, io_uring_buf_ring_init,
// io_uring_register_buf_ring. Each filled buffer is echoed by a send straight
// from it. A connection keeps its filled buffers in a FIFO and has at most one
// send in flight, so its bytes go out in order; a buffer goes back to the ring
// once all its bytes are sent. When the ring runs dry the kernel ends a recv
// with ENOBUFS; that connection waits until buffers come back, then its recv
// is armed again.
//
// Memory in multishot mode: an idle connection owns no buffer, only a 24-byte
// record. The pool is 64 MiB of address space, of which RSS counts only the
// pages recvs have written. The ring hands its buffers out in turn, so once
// more than 4096 messages have arrived every buffer's first page has been
// touched: in the memory cell (10000 connections, one 64 B message each) that
// is 16 MiB, about 1.7 KB per connection: a fixed cost of the pool, not
// memory each connection holds.
//
// Ring flags, best first: SINGLE_ISSUER|DEFER_TASKRUN (6.1), COOP_TASKRUN
// (5.19), none. If the kernel refuses io_uring or buffer rings it exits with
// status 3 and the reason before announcing its port; a refused multishot recv
// (EINVAL in its first completion) ends it the same way, once connected.
#include "common.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <liburing.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void fail(const char* what, int err, int status = 1) {
    std::fprintf(stderr, "echo_uring: %s: %s\n", what, std::strerror(err));
    std::exit(status);
}

// The ring, with the best flags this kernel takes, and the loop. A completion
// whose user_data is 0 is the listener's multishot accept.
class uring {
  public:
    explicit uring(int lfd) : lfd_(lfd) {
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
            flags_ = m.name;
            if (r != -EINVAL) break; // EINVAL: a flag this kernel does not know; try fewer
        }
        if (r < 0) fail("io_uring_queue_init_params", -r, 3);
    }

    const char* flags() const { return flags_; }
    io_uring* get() { return &ring_; }

    // Calls `s.complete(user_data, res, flags)` for every completion and
    // `s.reaped()` after each batch, forever.
    template <class Server> [[noreturn]] void run(Server& s) {
        accept();
        for (;;) {
            int r = io_uring_submit_and_wait(&ring_, 1);
            if (r < 0 && r != -EINTR) fail("io_uring_submit_and_wait", -r);
            unsigned head, seen = 0;
            io_uring_cqe* cqe;
            io_uring_for_each_cqe(&ring_, head, cqe) {
                s.complete(cqe->user_data, cqe->res, cqe->flags);
                ++seen;
            }
            io_uring_cq_advance(&ring_, seen);
            s.reaped();
        }
    }

    io_uring_sqe* sqe(std::uint64_t data) {
        io_uring_sqe* s = io_uring_get_sqe(&ring_);
        if (!s) { // the queue is full: hand it to the kernel, then there is room
            io_uring_submit(&ring_);
            s = io_uring_get_sqe(&ring_);
        }
        io_uring_sqe_set_data64(s, data);
        return s;
    }

    // For an accept completion: the new connection's descriptor, with
    // TCP_NODELAY. Starts another multishot accept if this one ended.
    int accepted(int res, unsigned flags) {
        if (res < 0) fail("accept", -res);
        int one = 1;
        setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (!(flags & IORING_CQE_F_MORE)) accept();
        return res;
    }

  private:
    void accept() { io_uring_prep_multishot_accept(sqe(0), lfd_, nullptr, nullptr, 0); }

    io_uring ring_;
    int lfd_;
    const char* flags_ = "";
};

// --mode single: one recv or send in flight per connection, through the
// connection's own buffer. user_data is the connection.
class single_server {
  public:
    explicit single_server(uring& r) : r_(r) {}

    void complete(std::uint64_t data, int res, unsigned flags) {
        conn* c = reinterpret_cast<conn*>(data);
        if (!c) {
            recv(new conn(r_.accepted(res, flags)));
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
    void reaped() {}

  private:
    struct conn {
        explicit conn(int f) : fd(f) {} // leaves buf untouched: its pages count only once used
        int fd;
        std::size_t len = 0;  // bytes in buf to echo; 0 while a recv is in flight
        std::size_t sent = 0; // of those, already sent
        char buf[bench::echo_buffer_size];
    };

    std::uint64_t tag(conn* c) { return reinterpret_cast<std::uintptr_t>(c); }
    void recv(conn* c) {
        c->len = 0;
        io_uring_prep_recv(r_.sqe(tag(c)), c->fd, c->buf, sizeof c->buf, 0);
    }
    void send(conn* c) {
        io_uring_prep_send(r_.sqe(tag(c)), c->fd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL);
    }
    void drop(conn* c) {
        close(c->fd);
        delete c;
    }

    uring& r_;
};

// --mode multishot: one multishot recv per connection into the shared
// provided-buffer ring, and at most one send in flight per connection, straight
// from a filled buffer. user_data is the connection, with the low bit set for
// its send.
class multishot_server {
  public:
    explicit multishot_server(uring& r) : r_(r), slots_(count) {
        void* ring = mmap(nullptr, count * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        void* pool = mmap(nullptr, count * bench::echo_buffer_size, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (ring == MAP_FAILED || pool == MAP_FAILED) fail("mmap", errno);
        br_ = static_cast<io_uring_buf_ring*>(ring);
        pool_ = static_cast<char*>(pool);
        io_uring_buf_ring_init(br_);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(br_);
        reg.ring_entries = count;
        reg.bgid = group;
        if (int e = io_uring_register_buf_ring(r_.get(), &reg, 0); e < 0) fail("io_uring_register_buf_ring", -e, 3);
        for (unsigned bid = 0; bid < count; ++bid)
            io_uring_buf_ring_add(br_, buffer(bid), bench::echo_buffer_size, std::uint16_t(bid), mask, int(bid));
        io_uring_buf_ring_advance(br_, int(count));
    }

    void complete(std::uint64_t data, int res, unsigned flags) {
        if (data == 0) return recv(new conn(r_.accepted(res, flags)));
        conn* c = reinterpret_cast<conn*>(data & ~send_tag);
        if (data & send_tag)
            sent(c, res);
        else
            received(c, res, flags);
    }

    // Arms again the recvs that ran out of buffers, one for each buffer the
    // ring now holds (each will fill at least one).
    void reaped() {
        for (unsigned free = count - held_; parked_ && free > 0; --free) {
            conn* c = parked_;
            parked_ = c->next_parked;
            c->parked = false;
            if (c->closing)
                close_when_idle(c);
            else
                recv(c);
        }
    }

  private:
    static constexpr unsigned count = 4096; // buffers in the ring: a power of two, at most 32768
    static constexpr int mask = int(count - 1);
    static constexpr std::uint16_t group = 0; // the buffer group id
    static constexpr std::uint16_t none = 0xffff;
    static constexpr std::uint64_t send_tag = 1;

    struct conn {
        explicit conn(int f) : fd(f) {}
        int fd;
        std::uint32_t sent = 0;                  // bytes of the first queued buffer already sent
        std::uint16_t first = none, last = none; // filled buffers to send, oldest first, through slot::next
        bool receiving = false;                  // the multishot recv is armed
        bool sending = false;                    // a send from the first queued buffer is in flight
        bool closing = false;                    // end of stream or an error: close once nothing is in flight
        bool parked = false;                     // waits for buffers in the parked list
        conn* next_parked = nullptr;
    };
    static_assert(alignof(conn) > send_tag, "the send tag needs a free low bit");

    // A filled buffer: its byte count and the next buffer in its connection's FIFO.
    struct slot {
        std::uint32_t len;
        std::uint16_t next;
    };

    char* buffer(unsigned bid) { return pool_ + std::size_t(bid) * bench::echo_buffer_size; }

    void recv(conn* c) {
        c->receiving = true;
        io_uring_sqe* s = r_.sqe(reinterpret_cast<std::uintptr_t>(c));
        io_uring_prep_recv_multishot(s, c->fd, nullptr, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = group;
    }
    void send(conn* c) {
        c->sending = true;
        io_uring_prep_send(r_.sqe(reinterpret_cast<std::uintptr_t>(c) | send_tag), c->fd, buffer(c->first) + c->sent,
                           slots_[c->first].len - c->sent, MSG_NOSIGNAL);
    }
    void give_back(std::uint16_t bid) {
        io_uring_buf_ring_add(br_, buffer(bid), bench::echo_buffer_size, bid, mask, 0);
        io_uring_buf_ring_advance(br_, 1);
        --held_;
    }

    void received(conn* c, int res, unsigned flags) {
        if (flags & IORING_CQE_F_BUFFER) {
            auto bid = std::uint16_t(flags >> IORING_CQE_BUFFER_SHIFT);
            ++held_;
            if (res > 0 && !c->closing) {
                slots_[bid] = {std::uint32_t(res), none};
                (c->first == none ? c->first : slots_[c->last].next) = bid;
                c->last = bid;
                if (!c->sending) send(c);
            } else {
                give_back(bid);
            }
        }
        if (flags & IORING_CQE_F_MORE) return; // the recv stays armed
        c->receiving = false;
        if (res == -EINVAL) fail("multishot recv with a buffer ring", EINVAL, 3);
        if (c->closing) {
            close_when_idle(c);
        } else if (res == -ENOBUFS) {
            park(c); // the ring ran dry: wait for buffers to come back
        } else if (res > 0) {
            recv(c); // the kernel ended the recv after data (e.g. a full CQ): arm it again
        } else {
            c->closing = true; // end of stream or an error
            close_when_idle(c);
        }
    }

    void sent(conn* c, int res) {
        c->sending = false;
        if (res <= 0) {
            c->closing = true;
        } else if ((c->sent += std::uint32_t(res)) < slots_[c->first].len) {
            return send(c); // a short send: the rest of this buffer
        } else {
            std::uint16_t bid = c->first;
            c->first = slots_[bid].next;
            c->sent = 0;
            give_back(bid);
            if (c->first != none && !c->closing) return send(c);
        }
        if (c->closing) close_when_idle(c);
    }

    void park(conn* c) {
        c->parked = true;
        c->next_parked = nullptr;
        (parked_ ? parked_last_->next_parked : parked_) = c;
        parked_last_ = c;
    }

    // Returns a closing connection's buffers (their bytes are dropped), and
    // closes it once nothing of it is in flight: the completion of its send or
    // recv, or leaving the parked list, calls this again.
    void close_when_idle(conn* c) {
        if (c->sending) return;
        for (; c->first != none; c->first = slots_[c->first].next) give_back(c->first);
        if (c->parked) return;
        if (c->receiving) {
            shutdown(c->fd, SHUT_RDWR); // ends the recv (after a send failed)
            return;
        }
        close(c->fd);
        delete c;
    }

    uring& r_;
    io_uring_buf_ring* br_ = nullptr;
    char* pool_ = nullptr;
    std::vector<slot> slots_;      // by buffer id
    unsigned held_ = 0;            // buffers the kernel handed out and the ring has not got back
    conn* parked_ = nullptr;       // connections whose recv ended with ENOBUFS, oldest first
    conn* parked_last_ = nullptr;
};

} // namespace

int main(int argc, char** argv) {
    const char* usage = "--port PORT (0: pick one) [--max-seconds S] [--mode single|multishot]";
    bench::options opt(argc, argv, {"port", "max-seconds", "mode"}, usage);
    std::string mode = opt.text("mode", "single");
    if (mode != "single" && mode != "multishot") {
        std::fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        return 2;
    }
    bench::prepare_server(opt);
    int lfd = bench::listen_loopback(int(opt.number("port", 0)));
    uring r(lfd);
    std::string what = std::string("raw-io_uring ") + r.flags() + " " + mode;
    if (mode == "single") {
        single_server s(r);
        bench::announce(bench::local_port(lfd), what);
        r.run(s);
    }
    multishot_server s(r);
    bench::announce(bench::local_port(lfd), what);
    r.run(s);
}
