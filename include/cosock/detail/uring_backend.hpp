// io_uring: the completion backend. A waiting op becomes one SQE whose user
// data is the op itself; its CQE completes it. All SQEs of a loop iteration go
// to the kernel in the one io_uring_enter that also waits. Small sends are
// submitted untried too while other tasks are ready: they ride that system
// call. A large send is tried at once: a submission the socket buffer cannot
// take whole goes to the kernel's worker threads, which costs more than the
// direct call and a poll for the rest.
//
// The kernel serves two recvs (or sends) on one socket in no promised order,
// and a send it finishes in parts would interleave with another. So per
// descriptor and direction only the oldest op that moves data is submitted;
// the others wait in line in the backend and go to the kernel in turn.
//
// Ops the kernel cannot do in one step (finishing a connect, waiting for
// readiness, a retry after EAGAIN) run as a readiness wait followed by
// perform(). A read wait is a poll SQE. A write wait is not: io_uring's poll
// always reports a peer's half-close (POLLRDHUP), even to a poll for POLLOUT,
// and would fire for ever once the peer has shut its side. Write waits are
// parked in an epoll set of the backend's own instead (one shot each), whose
// descriptor one poll SQE watches.
//
// An op is resumed only from its own CQE, so the kernel never writes into a
// buffer after its coroutine has moved on; abandoning an op (its frame is
// destroyed) cancels it and waits for that CQE before returning.
//
// Compiled only with COSOCK_HAS_LIBURING (the Meson dependency and cosock.pc
// define it and link -luring).
#pragma once

#include <cosock/detail/os_category.hpp>

#ifdef COSOCK_HAS_LIBURING

#include <cstdio>
#include <cstdlib>
#include <liburing.h>
#include <poll.h>
#include <string>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

#include <cosock/detail/foreign_fds.hpp>
#include <cosock/detail/io_backend.hpp>

namespace cosock::detail {

class uring_backend final : public io_backend {
  public:
    /// Sets up a ring, preferring SINGLE_ISSUER | DEFER_TASKRUN and falling back
    /// to COOP_TASKRUN, then to no flags, for older kernels. Throws
    /// std::system_error saying why when the kernel refuses io_uring.
    explicit uring_backend(unsigned entries = 1024) {
        int r = -EINVAL;
        for (unsigned flags : {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED,
                               unsigned(IORING_SETUP_COOP_TASKRUN), 0u}) {
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
        probe_ = io_uring_get_probe_ring(&ring_);
        if (const char* missing = missing_opcode()) {
            if (probe_) io_uring_free_probe(probe_);
            io_uring_queue_exit(&ring_);
            throw std::system_error(ENOSYS, os_category(),
                                    std::string("io_uring backend unavailable: the kernel lacks ") + missing);
        }
        // Made now, not when first needed: running out of descriptors later
        // would fail an operation for a reason of the backend's own.
        aux_epfd_ = sys::epoll_create();
        if (aux_epfd_ < 0) {
            int err = -aux_epfd_;
            io_uring_free_probe(probe_);
            io_uring_queue_exit(&ring_);
            throw std::system_error(err, os_category(), "io_uring backend: epoll_create1");
        }
    }
    ~uring_backend() override {
        sys::close(aux_epfd_);
        io_uring_free_probe(probe_);
        io_uring_queue_exit(&ring_);
    }
    uring_backend(const uring_backend&) = delete;
    uring_backend& operator=(const uring_backend&) = delete;

    const char* name() const noexcept override { return "io_uring"; }
    /// The setup flags the kernel accepted.
    unsigned setup_flags() const noexcept { return flags_; }

    start first_step(const io_op& op, bool others_ready) noexcept override {
        const op_type& t = *op.type;
        bool send = t.dir == direction::write && t.moves_data;
        if (std::size_t(op.fd) < fds_.size()) {
            const fd_ops& q = fds_[std::size_t(op.fd)];
            if (t.moves_data && !queue_of(q, t).empty()) return start::behind_others;
            // After a short read the receive queue is likely empty: let the
            // kernel wait for data rather than try (the guess is used once).
            // Urgent data raises no readiness.
            if (t.short_means_drained && q.drained && op.len > 0 && !(op.flags & MSG_OOB)) {
                fds_[std::size_t(op.fd)].drained = false;
                return start::untried;
            }
        }
        return send && others_ready && op.len - op.done <= small_send ? start::untried : start::now;
    }

    void arm(io_op& op) override {
        if (orphaned()) refuse_after_fork();
        hold_fd(fds_, op.fd);
        if (op.foreign) foreign_.add(op.fd);
        fd_ops& q = fds_[std::size_t(op.fd)];
        intrusive_list<io_op>& line = queue_of(q, *op.type);
        bool now = !op.type->moves_data || line.empty();
        try {
            if (now) issue(op);
        } catch (...) {
            if (op.foreign) foreign_.remove(op.fd);
            throw;
        }
        line.push_back(op);
        op.submitted = now;
        op.state = op_state::waiting;
        ++waiting_;
    }

    void cancel(io_op& op, ready_queue& ready) noexcept override {
        bool in_ring = in_ring_now(op), head = op.submitted;
        int fd = op.fd;
        intrusive_list<io_op>& line = unlink(op);
        op.state = op_state::idle;
        if (in_ring) {
            if (!on_issuer_thread()) wrong_thread("an operation's frame destroyed");
            request_cancel(op);
            // The op's own CQE (cancelled, or completed just before) is the
            // kernel saying it is done with the buffer; only then may the
            // frame go.
            for (bool released = false; !released;) {
                int r = io_uring_submit_and_wait(&ring_, 1);
                if (r < 0 && r != -EINTR && r != -EBUSY) std::terminate(); // cannot free the frame safely
                reap(ready, &op, released);
            }
        }
        if (head) start_next(fd, line, ready);
    }

    // The op completes from its own CQE, -ECANCELED unless it finished first;
    // one not in the ring completes at once.
    void abort(io_op& op, ready_queue& ready) noexcept override {
        if (in_ring_now(op)) {
            request_cancel(op);
            return;
        }
        bool head = op.submitted;
        int fd = op.fd;
        intrusive_list<io_op>& line = unlink(op);
        complete(op, -ECANCELED, ready);
        if (head) start_next(fd, line, ready);
    }

    void release_fd(int fd, bool, ready_queue& ready) noexcept override {
        if (fd < 0 || std::size_t(fd) >= fds_.size()) return;
        fd_ops& q = fds_[std::size_t(fd)];
        q.drained = false;
        if (end_ops(q, end_reason::closed, false, ready))
            // Submit now: the kernel must find the requests before close() drops
            // the descriptor, or they would hold the file open. The ops complete
            // with -ECANCELED from their CQEs.
            io_uring_submit(&ring_);
    }

    void completed_at_once(const io_op& op, int res) noexcept override {
        if (drained_by(op, res) && std::size_t(op.fd) < fds_.size()) fds_[std::size_t(op.fd)].drained = true;
    }

    void wait(ready_queue& ready, int timeout_ms) override {
        if (orphaned()) refuse_after_fork();
        if (timeout_ms != 0)
            // Foreign descriptors closed behind the backend's back: their
            // polls hold the old file and would never fire.
            foreign_.for_each_gone([&](int fd) { end_ops(fds_[std::size_t(fd)], end_reason::closed, true, ready); });
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
            throw std::system_error(-r, os_category(), "io_uring_enter");
        bool unused = false;
        reap(ready, nullptr, unused);
    }

    // One request per op, all in one batch (submitted as the queue fills),
    // then the loop reaps until the kernel has answered for every op. (A
    // single IORING_ASYNC_CANCEL_ANY request costs the kernel a scan per op
    // it finds: seconds for tens of thousands.)
    void cancel_all(ready_queue& ready) noexcept override {
        bool any = false;
        for (fd_ops& q : fds_) any |= end_ops(q, end_reason::none, false, ready);
        if (!any) return;
        if (!on_issuer_thread()) wrong_thread("destroyed");
        while (in_kernel_ > 0) {
            int r = io_uring_submit_and_wait(&ring_, 1);
            if (r < 0 && r != -EINTR && r != -EBUSY) std::terminate(); // cannot free the frames safely
            bool unused = false;
            reap(ready, nullptr, unused);
        }
    }

    std::size_t waiting() const noexcept override { return waiting_; }

    // The ring is made disabled and enabled by the first thread that runs
    // it, which becomes its single issuer: a scheduler may be made on one
    // thread and run on another (scheduler_group makes each on its own).
    void bind_thread() override {
        if (issuer_ == std::thread::id()) {
            if (flags_ & IORING_SETUP_R_DISABLED)
                // (the system call: liburing 2.3 declares io_uring_enable_rings but does not export it)
                if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0)
                    throw std::system_error(errno, os_category(), "io_uring_register(ENABLE_RINGS)");
            // A registered ring fd spares io_uring_enter its file lookup
            // (5.18+); it is the registering thread's, so it is registered
            // here. Older kernels refuse, and the ring works as before.
            (void)io_uring_register_ring_fd(&ring_);
            issuer_ = std::this_thread::get_id();
        } else if (issuer_ != std::this_thread::get_id()) {
            throw std::logic_error("cosock::scheduler: its io_uring backend runs on the thread that first ran it; "
                                   "run each scheduler on one thread (scheduler_group makes one per thread)");
        }
    }

  private:
    static constexpr std::size_t small_send = 4096;

    bool on_issuer_thread() const noexcept {
        return issuer_ == std::thread::id() || issuer_ == std::this_thread::get_id();
    }
    // Only the ring's thread can reap the completions that say the kernel is
    // done with an operation's buffer; freeing it without them is not safe.
    [[noreturn]] static void wrong_thread(const char* what) noexcept {
        std::fprintf(stderr,
                     "cosock: io_uring backend %s on another thread than the one that ran it, with operations in "
                     "flight: a scheduler is made, run and destroyed on one thread\n",
                     what);
        std::abort();
    }

    static std::system_error refused(int r) {
        const char* why = r == -EPERM    ? " (refused: the kernel.io_uring_disabled sysctl or a seccomp profile)"
                          : r == -ENOSYS ? " (the kernel has no io_uring, or a seccomp profile hides it)"
                          : r == -ENOMEM ? " (out of memory or locked-memory limit: see ulimit -l)"
                                         : "";
        return std::system_error(-r, os_category(),
                                 std::string("io_uring backend unavailable: io_uring_setup failed") + why);
    }

    // What the backend itself needs; an operation whose own opcode the
    // kernel lacks runs through a poll and perform() (see needs_poll).
    const char* missing_opcode() const noexcept {
        if (!probe_) return "IORING_REGISTER_PROBE";
        if (!io_uring_opcode_supported(probe_, IORING_OP_POLL_ADD)) return "IORING_OP_POLL_ADD";
        if (!io_uring_opcode_supported(probe_, IORING_OP_ASYNC_CANCEL)) return "IORING_OP_ASYNC_CANCEL";
        return nullptr;
    }

    struct fd_ops {
        intrusive_list<io_op> reads, writes; // ops moving data, oldest first: only the oldest has its turn
        intrusive_list<io_op> others;        // accept, connect, readiness waits: all at once
        unsigned parked = 0;                 // ops parked in the epoll set (see park)
        bool drained = false;                // the last recv came back short
    };

    static intrusive_list<io_op>& queue_of(fd_ops& q, const op_type& t) noexcept {
        if (!t.moves_data) return q.others;
        return t.dir == direction::read ? q.reads : q.writes;
    }
    static const intrusive_list<io_op>& queue_of(const fd_ops& q, const op_type& t) noexcept {
        return queue_of(const_cast<fd_ops&>(q), t);
    }

    // Whether the op's current step is an SQE the kernel holds.
    bool in_ring_now(const io_op& op) const noexcept { return op.submitted && !op.parked && !orphaned(); }

    // Ends the ops on a descriptor (only the foreign ones if `foreign_only`):
    // those in the ring are asked to cancel (true if any was), the others
    // complete at once.
    bool end_ops(fd_ops& q, end_reason why, bool foreign_only, ready_queue& ready) noexcept {
        bool requested = false;
        for (auto* line : {&q.reads, &q.writes, &q.others}) {
            for (io_op* op = line->front(); op;) {
                io_op* next = intrusive_list<io_op>::next(*op);
                if (!foreign_only || op->foreign) {
                    if (op->ended_by == end_reason::none)
                        op->ended_by = why == end_reason::none ? end_reason::stop : why;
                    if (in_ring_now(*op)) {
                        request_cancel(*op);
                        requested = true;
                    } else {
                        unlink(*op);
                        complete(*op, -ECANCELED, ready);
                    }
                }
                op = next;
            }
        }
        return requested;
    }

    // After the op whose turn it was in a line ended, the next one's turn comes.
    void start_next(int fd, intrusive_list<io_op>& line, ready_queue& ready) noexcept {
        if (&line == &fds_[std::size_t(fd)].others || orphaned()) return;
        while (io_op* next = line.front()) {
            if (next->submitted) return;
            try {
                issue(*next);
                next->submitted = true;
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
        if (!sqe) throw std::system_error(EBUSY, os_category(), "io_uring_get_sqe");
        return sqe;
    }

    // Whether the op's next step is a readiness wait and perform(): it has
    // no submission of its own, the kernel lacks its opcode, or it must
    // finish through readiness (see finish).
    bool needs_poll(const io_op& op) const noexcept {
        return op.polled || !op.type->prepare || op.type->opcode < 0 ||
               !io_uring_opcode_supported(probe_, op.type->opcode);
    }

    // The op's next step as an SQE, or, for a write-readiness wait, parked.
    void issue(io_op& op) {
        bool poll = needs_poll(op);
        if (poll && op.type->dir == direction::write) return park(op);
        io_uring_sqe* sqe = get_sqe();
        if (poll)
            io_uring_prep_poll_add(sqe, op.fd, POLLIN);
        else
            op.type->prepare(op, sqe);
        io_uring_sqe_set_data(sqe, &op);
        ++in_kernel_;
    }

    // A write-readiness wait goes to the backend's epoll set, one shot: the
    // descriptor is registered there (or re-enabled) for EPOLLOUT only.
    void park(io_op& op) {
        epoll_event ev{};
        ev.events = EPOLLOUT | EPOLLONESHOT;
        ev.data.fd = op.fd;
        int r = sys::epoll_ctl(aux_epfd_, EPOLL_CTL_MOD, op.fd, &ev);
        if (r == -ENOENT) r = sys::epoll_ctl(aux_epfd_, EPOLL_CTL_ADD, op.fd, &ev);
        if (r < 0) throw std::system_error(-r, os_category(), "epoll_ctl(" + std::to_string(op.fd) + ")");
        if (!aux_polled_) {
            io_uring_sqe* sqe = get_sqe();
            io_uring_prep_poll_add(sqe, aux_epfd_, POLLIN);
            io_uring_sqe_set_data(sqe, &aux_epfd_);
            aux_polled_ = true;
        }
        op.parked = true;
        ++parked_;
        ++fds_[std::size_t(op.fd)].parked;
    }

    // The backend's epoll set has writable descriptors: their parked ops take
    // their next step.
    void run_parked(ready_queue& ready) noexcept {
        aux_polled_ = false;
        epoll_event events[64];
        int n = sys::epoll_wait(aux_epfd_, events, 64, 0);
        for (int i = 0; i < n; ++i) {
            fd_ops& q = fds_[std::size_t(events[i].data.fd)];
            for (auto* line : {&q.writes, &q.others})
                for (io_op* op = line->front(); op;) {
                    io_op* next = intrusive_list<io_op>::next(*op);
                    if (op->parked) { // the one shot has fired: nothing to unregister
                        op->parked = false;
                        --parked_;
                        --q.parked;
                        step(*op, 0, ready);
                    }
                    op = next;
                }
        }
        if (parked_ > 0 && !aux_polled_) { // ops still parked (or parked again) need the poll again
            try {
                io_uring_sqe* sqe = get_sqe();
                io_uring_prep_poll_add(sqe, aux_epfd_, POLLIN);
                io_uring_sqe_set_data(sqe, &aux_epfd_);
                aux_polled_ = true;
            } catch (...) {
            }
        }
    }

    // Turns a step's result into the op's result, or starts its next step (a
    // retry through readiness, the rest of a sendall); completes the op when
    // it is done.
    void step(io_op& op, int res, ready_queue& ready) noexcept {
        bool done;
        try {
            done = finish(op, res);
        } catch (const std::system_error& e) {
            res = -e.code().value();
            done = true;
        }
        if (!done) return;
        int fd = op.fd;
        if (drained_by(op, res)) fds_[std::size_t(fd)].drained = true;
        intrusive_list<io_op>& line = unlink(op);
        complete(op, res, ready);
        start_next(fd, line, ready);
    }

    // Returns true when the op completed (`res` its result); else its next
    // step has been issued.
    bool finish(io_op& op, int& res) {
        const op_type& t = *op.type;
        bool more = false;
        if (needs_poll(op)) {
            if (res >= 0) res = t.perform(op); // ready (or an error to collect)
            more = res == -EAGAIN && !(t.dead_end && t.dead_end(op, res));
        } else if (res == -EAGAIN && !t.waits_on_eagain) {
            // nothing to wait for: the op fails with EAGAIN
        } else if (res == -EAGAIN || res == -EINPROGRESS || res == -EALREADY) {
            // Not done in one step: finish through readiness, as poll would.
            if (t.in_progress) op.type = t.in_progress;
            op.polled = more = true;
        } else if (t.progress) {
            more = !t.progress(op, res);
        }
        if (!more) return true;
        if (op.ended_by != end_reason::none) { // a cancel raced with this step's completion
            res = -ECANCELED;
            return true;
        }
        issue(op);
        return false;
    }

    // Processes every available CQE. A CQE for `abandoned` is only noted (an
    // accepted descriptor it brings is closed: nobody will take it).
    void reap(ready_queue& ready, const io_op* abandoned, bool& seen) noexcept {
        unsigned head, count = 0;
        bool parked_ready = false;
        io_uring_cqe* cqe;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            ++count;
            void* data = io_uring_cqe_get_data(cqe);
            if (data == &aux_epfd_) {
                parked_ready = true;
                continue;
            }
            auto* op = static_cast<io_op*>(data);
            if (!op) continue; // a cancel request's own completion
            --in_kernel_;
            if (op == abandoned) {
                seen = true;
                if (op->type->yields_fd && cqe->res >= 0) sys::close(cqe->res);
                continue;
            }
            step(*op, cqe->res, ready);
        }
        io_uring_cq_advance(&ring_, count);
        if (parked_ready) run_parked(ready);
    }

    // Takes `op` out of its line (and the epoll set, if parked); → the line.
    intrusive_list<io_op>& unlink(io_op& op) noexcept {
        fd_ops& q = fds_[std::size_t(op.fd)];
        intrusive_list<io_op>& line = queue_of(q, *op.type);
        line.erase(op);
        --waiting_;
        op.submitted = false;
        if (op.parked) {
            op.parked = false;
            --parked_;
            if (--q.parked == 0 && !orphaned()) sys::epoll_ctl(aux_epfd_, EPOLL_CTL_DEL, op.fd, nullptr);
        }
        if (op.foreign) foreign_.remove(op.fd);
        return line;
    }

    io_uring ring_{};
    io_uring_probe* probe_ = nullptr; // the opcodes this kernel has
    unsigned flags_ = 0;
    std::thread::id issuer_; // the thread that runs the ring; none until the first run()
    std::vector<fd_ops> fds_;
    std::size_t waiting_ = 0;   // ops known to the backend
    std::size_t in_kernel_ = 0; // SQEs of ops the kernel has not answered yet
    foreign_fds foreign_;       // descriptors of ops that cosock does not own
    int aux_epfd_ = -1;         // write-readiness waits (see the top); its address is its poll's user data
    bool aux_polled_ = false;   // a poll SQE watches aux_epfd_
    std::size_t parked_ = 0;    // ops parked there
};

} // namespace cosock::detail

#endif // COSOCK_HAS_LIBURING
