// io_uring: the completion backend. A waiting op becomes one SQE whose user
// data is the op itself; its CQE completes it. All SQEs of a loop iteration go
// to the kernel in the one io_uring_enter that also waits. Sends are submitted
// untried too while other tasks are ready: they ride that system call.
//
// The kernel serves two recvs (or sends) on one socket in no promised order,
// and a send it finishes in parts would interleave with another. So per
// descriptor and direction only the oldest op that moves data is submitted;
// the others wait in line in the backend and go to the kernel in turn.
//
// Ops the kernel cannot do in one step (finishing a connect, waiting for
// readiness, a retry after EAGAIN) run as a poll SQE followed by perform().
// An op is resumed only from its own CQE, so the kernel never writes into a
// buffer after its coroutine has moved on; abandoning an op (its frame is
// destroyed) cancels it and waits for that CQE before returning.
//
// Compiled only with COSOCK_HAS_LIBURING (the Meson dependency and cosock.pc
// define it and link -luring).
#pragma once

#ifdef COSOCK_HAS_LIBURING

#include <algorithm>
#include <liburing.h>
#include <poll.h>
#include <string>
#include <system_error>
#include <vector>

#include <cosock/detail/backend.hpp>

namespace cosock::detail {

class uring_backend final : public backend {
  public:
    /// Sets up a ring, preferring SINGLE_ISSUER | DEFER_TASKRUN and falling back
    /// to COOP_TASKRUN, then to no flags, for older kernels. Throws
    /// std::system_error saying why when the kernel refuses io_uring.
    explicit uring_backend(unsigned entries = 1024) {
        int r = -EINVAL;
        for (unsigned flags :
             {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, unsigned(IORING_SETUP_COOP_TASKRUN), 0u}) {
            io_uring_params p{};
            // A roomy completion queue: a burst of cancellations (each makes
            // two completions) would otherwise overflow into the kernel's
            // slow list.
            p.flags = flags | IORING_SETUP_CQSIZE;
            p.cq_entries = entries * 16;
            r = io_uring_queue_init_params(entries, &ring_, &p);
            if (r == 0) {
                flags_ = flags;
                break;
            }
            if (r != -EINVAL) break; // not about the flags: the kernel refuses io_uring
        }
        if (r < 0) throw refused(r);
        if (const char* missing = missing_opcode()) {
            io_uring_queue_exit(&ring_);
            throw std::system_error(ENOSYS, std::system_category(),
                                    std::string("io_uring backend unavailable: the kernel lacks ") + missing);
        }
        // A registered ring fd spares io_uring_enter its file lookup (5.18+);
        // older kernels refuse, and the ring works as before.
        (void)io_uring_register_ring_fd(&ring_);
    }
    ~uring_backend() override { io_uring_queue_exit(&ring_); }
    uring_backend(const uring_backend&) = delete;
    uring_backend& operator=(const uring_backend&) = delete;

    const char* name() const noexcept override { return "io_uring"; }
    /// The setup flags the kernel accepted.
    unsigned setup_flags() const noexcept { return flags_; }

    start first_step(const io_op& op, bool others_ready) noexcept override {
        bool send = op.kind == op_kind::send || op.kind == op_kind::sendall;
        if (std::size_t(op.fd) < fds_.size()) {
            const fd_ops& q = fds_[std::size_t(op.fd)];
            if (moves_data(op.kind) && !queue_of(q, op.kind).empty()) return start::behind_others;
            // After a short read the receive queue is likely empty: let the
            // kernel wait for data rather than try. Urgent data raises no readiness.
            if (op.kind == op_kind::recv && q.drained && op.len > 0 && !(op.flags & MSG_OOB)) return start::untried;
        }
        return send && others_ready ? start::untried : start::now;
    }

    void arm(io_op& op) override {
        hold_fd(fds_, op.fd);
        if (op.foreign) foreign_.reserve(foreign_.size() + 1);
        fd_ops& q = fds_[std::size_t(op.fd)];
        intrusive_list<io_op>& line = queue_of(q, op.kind);
        bool now = !moves_data(op.kind) || line.empty();
        if (now) prep(op); // may throw: nothing is linked yet
        line.push_back(op);
        op.submitted = now;
        op.state = op_state::waiting;
        ++waiting_;
        in_kernel_ += now;
        if (op.foreign && q.foreign_ops++ == 0) foreign_.push_back(op.fd);
    }

    void cancel(io_op& op, ready_queue& ready) noexcept override {
        bool in_kernel = op.submitted && !orphaned_;
        int fd = op.fd;
        intrusive_list<io_op>& line = unlink(op);
        op.state = op_state::idle;
        if (!in_kernel) return; // never submitted: nothing to take back
        request_cancel(op);
        // The op's own CQE (cancelled, or completed just before) is the kernel
        // saying it is done with the buffer; only then may the frame go.
        for (bool released = false; !released;) {
            int r = io_uring_submit_and_wait(&ring_, 1);
            if (r < 0 && r != -EINTR && r != -EBUSY) std::terminate(); // cannot free the frame safely
            reap(ready, &op, released);
        }
        start_next(fd, line, ready);
    }

    // The op completes from its own CQE, -ECANCELED unless it finished first;
    // one still waiting its turn completes at once.
    void abort(io_op& op, ready_queue& ready) noexcept override {
        if (op.submitted && !orphaned_) {
            request_cancel(op);
            return;
        }
        unlink(op);
        complete(op, -ECANCELED, ready);
    }

    void release_fd(int fd, bool, ready_queue& ready) noexcept override {
        if (fd < 0 || std::size_t(fd) >= fds_.size()) return;
        fd_ops& q = fds_[std::size_t(fd)];
        q.drained = false;
        if (end_all(q, end_reason::closed, ready))
            // Submit now: the kernel must find the requests before close() drops
            // the descriptor, or they would hold the file open. The ops complete
            // with -ECANCELED from their CQEs.
            io_uring_submit(&ring_);
    }

    void recv_done(int fd, bool short_read) noexcept override {
        if (std::size_t(fd) < fds_.size()) fds_[std::size_t(fd)].drained = short_read;
    }

    void wait(ready_queue& ready, int timeout_ms) override {
        if (timeout_ms != 0 && !foreign_.empty()) end_closed_foreign(ready);
        int r;
        if (timeout_ms < 0) {
            r = io_uring_submit_and_wait(&ring_, 1);
        } else if (timeout_ms == 0) {
            r = io_uring_submit_and_get_events(&ring_);
        } else {
            __kernel_timespec ts{timeout_ms / 1000, (timeout_ms % 1000) * 1000000LL};
            io_uring_cqe* cqe = nullptr;
            r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        }
        if (r < 0 && r != -EINTR && r != -ETIME && r != -EBUSY)
            throw std::system_error(-r, std::system_category(), "io_uring_enter");
        bool unused = false;
        reap(ready, nullptr, unused);
    }

    // One request per op, all in one batch (submitted as the queue fills),
    // then the loop reaps until the kernel has answered for every op. (A
    // single IORING_ASYNC_CANCEL_ANY request costs the kernel a scan per op
    // it finds: seconds for tens of thousands.)
    void cancel_all(ready_queue& ready) noexcept override {
        bool any = false;
        for (fd_ops& q : fds_) any |= end_all(q, end_reason::none, ready);
        if (!any) return;
        while (in_kernel_ > 0) {
            int r = io_uring_submit_and_wait(&ring_, 1);
            if (r < 0 && r != -EINTR && r != -EBUSY) std::terminate(); // cannot free the frames safely
            bool unused = false;
            reap(ready, nullptr, unused);
        }
    }

    std::size_t waiting() const noexcept override { return waiting_; }

  private:
    static std::system_error refused(int r) {
        const char* why = r == -EPERM    ? " (refused: the kernel.io_uring_disabled sysctl or a seccomp profile)"
                          : r == -ENOSYS ? " (the kernel has no io_uring, or a seccomp profile hides it)"
                          : r == -ENOMEM ? " (out of memory or locked-memory limit: see ulimit -l)"
                                         : "";
        return std::system_error(-r, std::system_category(),
                                 std::string("io_uring backend unavailable: io_uring_setup failed") + why);
    }

    const char* missing_opcode() {
        io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
        if (!probe) return "IORING_REGISTER_PROBE";
        const char* missing = nullptr;
        struct {
            int op;
            const char* name;
        } needed[] = {{IORING_OP_RECV, "IORING_OP_RECV"},         {IORING_OP_SEND, "IORING_OP_SEND"},
                      {IORING_OP_RECVMSG, "IORING_OP_RECVMSG"},   {IORING_OP_SENDMSG, "IORING_OP_SENDMSG"},
                      {IORING_OP_ACCEPT, "IORING_OP_ACCEPT"},     {IORING_OP_CONNECT, "IORING_OP_CONNECT"},
                      {IORING_OP_POLL_ADD, "IORING_OP_POLL_ADD"}, {IORING_OP_ASYNC_CANCEL, "IORING_OP_ASYNC_CANCEL"}};
        for (auto& n : needed)
            if (!missing && !io_uring_opcode_supported(probe, n.op)) missing = n.name;
        io_uring_free_probe(probe);
        return missing;
    }

    struct fd_ops {
        intrusive_list<io_op> reads, writes; // ops moving data, oldest first: only the oldest is submitted
        intrusive_list<io_op> others;        // accept, connect, readiness waits: all submitted
        unsigned foreign_ops = 0;            // ops on a descriptor cosock does not own
        bool drained = false;                // the last recv came back short
    };

    static intrusive_list<io_op>& queue_of(fd_ops& q, op_kind k) noexcept {
        if (!moves_data(k)) return q.others;
        return direction_of(k) == direction::read ? q.reads : q.writes;
    }
    static const intrusive_list<io_op>& queue_of(const fd_ops& q, op_kind k) noexcept {
        return queue_of(const_cast<fd_ops&>(q), k);
    }

    // Ends every op on a descriptor: those in the kernel are asked to cancel
    // (true if any was), the others complete at once.
    bool end_all(fd_ops& q, end_reason why, ready_queue& ready) noexcept {
        bool requested = false;
        for (auto* line : {&q.reads, &q.writes, &q.others}) {
            for (io_op* op = line->front(); op;) {
                io_op* next = intrusive_list<io_op>::next(*op);
                if (op->ended_by == end_reason::none) op->ended_by = why;
                if (op->submitted && !orphaned_) {
                    if (op->ended_by == end_reason::none) op->ended_by = end_reason::stop;
                    request_cancel(*op);
                    requested = true;
                } else {
                    unlink(*op);
                    complete(*op, -ECANCELED, ready);
                }
                op = next;
            }
        }
        return requested;
    }

    // Foreign descriptors closed behind the backend's back: their polls hold
    // the file and would never fire, so they are cancelled, reading as EBADF.
    void end_closed_foreign(ready_queue& ready) noexcept {
        probe_.clear();
        for (int fd : foreign_) probe_.push_back({fd, 0, 0});
        if (sys::poll(probe_.data(), probe_.size(), 0) <= 0) return;
        for (const pollfd& p : probe_)
            if (p.revents & POLLNVAL) end_all(fds_[std::size_t(p.fd)], end_reason::closed, ready);
    }

    // After the oldest op of a line ended, the next one goes to the kernel.
    void start_next(int fd, intrusive_list<io_op>& line, ready_queue& ready) noexcept {
        if (&line == &fds_[std::size_t(fd)].others || orphaned_) return;
        while (io_op* next = line.front()) {
            if (next->submitted) return;
            try {
                prep(*next);
                next->submitted = true;
                ++in_kernel_;
                return;
            } catch (const std::system_error& e) {
                unlink(*next);
                complete(*next, -e.code().value(), ready);
            }
        }
    }

    void request_cancel(io_op& op) noexcept {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel(sqe, &op, 0);
        io_uring_sqe_set_data(sqe, nullptr);
    }

    io_uring_sqe* get_sqe() {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (!sqe) { // the submission queue is full: hand it to the kernel first
            io_uring_submit(&ring_);
            sqe = io_uring_get_sqe(&ring_);
        }
        if (!sqe) throw std::system_error(EBUSY, std::system_category(), "io_uring_get_sqe");
        return sqe;
    }

    static bool needs_poll(const io_op& op) noexcept {
        return op.polled || op.kind == op_kind::connect_wait || op.kind == op_kind::wait_readable ||
               op.kind == op_kind::wait_writable;
    }

    void prep(io_op& op) {
        io_uring_sqe* sqe = get_sqe();
        char* buf = static_cast<char*>(op.buf);
        if (needs_poll(op)) {
            io_uring_prep_poll_add(sqe, op.fd, wants_read(op.kind) ? POLLIN : POLLOUT);
        } else {
            switch (op.kind) {
            case op_kind::recv:
                io_uring_prep_recv(sqe, op.fd, buf, sys::cap(op.len), op.flags);
                break;
            case op_kind::send:
                io_uring_prep_send(sqe, op.fd, buf, sys::cap(op.len), op.flags | MSG_NOSIGNAL);
                break;
            case op_kind::sendall:
                io_uring_prep_send(sqe, op.fd, buf + op.done, sys::cap(op.len - op.done), op.flags | MSG_NOSIGNAL);
                break;
            case op_kind::recvmsg:
                op.msg->msg_namelen = op.addrcap;
                io_uring_prep_recvmsg(sqe, op.fd, op.msg, unsigned(op.flags));
                break;
            case op_kind::sendmsg:
                io_uring_prep_sendmsg(sqe, op.fd, op.msg, unsigned(op.flags | MSG_NOSIGNAL));
                break;
            case op_kind::accept:
                op.addrlen = op.addrcap;
                io_uring_prep_accept(sqe, op.fd, op.addr, &op.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
                break;
            case op_kind::connect:
                io_uring_prep_connect(sqe, op.fd, op.addr, op.addrlen);
                break;
            default:
                break; // the poll kinds are handled above
            }
        }
        io_uring_sqe_set_data(sqe, &op);
    }

    // Turns a CQE into the op's result, or starts the op's next step (a retry
    // through poll, the rest of a sendall). Returns true when the op completed.
    bool finish(io_op& op, int& res) {
        bool more = false;
        if (needs_poll(op)) {
            if (res >= 0) res = perform(op); // ready (or an error to collect)
            more = res == -EAGAIN;
            if (more && read_side_shut(op)) res = 0, more = false;
        } else if (res == -EAGAIN || res == -EINPROGRESS || res == -EALREADY) {
            // Not done in one step: finish through readiness, as poll would.
            if (op.kind == op_kind::connect) op.kind = op_kind::connect_wait;
            op.polled = more = true;
        } else if (op.kind == op_kind::sendall && res >= 0) {
            op.done += std::size_t(res);
            more = op.done < op.len && res > 0;
            if (!more) res = 0;
        }
        if (!more) return true;
        if (op.ended_by != end_reason::none) { // a cancel raced with this step's completion
            res = -ECANCELED;
            return true;
        }
        prep(op);
        return false;
    }

    // Processes every available CQE. A CQE for `abandoned` is only noted.
    void reap(ready_queue& ready, const io_op* abandoned, bool& seen) noexcept {
        unsigned head, count = 0;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            ++count;
            if (cqe->user_data == LIBURING_UDATA_TIMEOUT) continue;
            auto* op = static_cast<io_op*>(io_uring_cqe_get_data(cqe));
            if (!op) continue; // a cancel request's own completion
            if (op == abandoned) {
                seen = true;
                continue;
            }
            int res = cqe->res;
            bool done;
            try {
                done = finish(*op, res);
            } catch (const std::system_error& e) {
                res = -e.code().value();
                done = true;
            }
            if (!done) continue;
            int fd = op->fd;
            intrusive_list<io_op>& line = unlink(*op);
            complete(*op, res, ready);
            start_next(fd, line, ready);
        }
        io_uring_cq_advance(&ring_, count);
    }

    // Takes `op` out of its line; → the line.
    intrusive_list<io_op>& unlink(io_op& op) noexcept {
        fd_ops& q = fds_[std::size_t(op.fd)];
        intrusive_list<io_op>& line = queue_of(q, op.kind);
        line.erase(op);
        --waiting_;
        if (op.submitted) --in_kernel_;
        op.submitted = false;
        if (op.foreign && --q.foreign_ops == 0) {
            auto it = std::find(foreign_.begin(), foreign_.end(), op.fd);
            *it = foreign_.back();
            foreign_.pop_back();
        }
        return line;
    }

    io_uring ring_{};
    unsigned flags_ = 0;
    std::vector<fd_ops> fds_;
    std::size_t waiting_ = 0;   // ops known to the backend
    std::size_t in_kernel_ = 0; // of those, the ones submitted
    std::vector<int> foreign_;  // descriptors with ops on them that cosock does not own
    std::vector<pollfd> probe_;
};

} // namespace cosock::detail

#endif // COSOCK_HAS_LIBURING
