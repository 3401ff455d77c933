// Shared part of the readiness backends (select, poll, epoll): per-descriptor
// FIFO lists of waiting ops, one per direction. When a descriptor is ready its
// ops are performed in order until one says -EAGAIN again, so a spurious
// wake-up never reaches the coroutine, and an op started while others of its
// direction wait joins the end of their list instead of overtaking them.
//
// Per descriptor and direction the backend also keeps a guess, `drained`: an
// op found nothing to do (EAGAIN, or a recv came back short) and no readiness
// has been reported since. A new op then waits before trying, which saves the
// system call that would say EAGAIN. Every way an op ends teaches it: a failed
// first try (the op is armed `tried`), a failed try at dispatch, a short recv.
//
// Everything kept per descriptor (the guesses and both lists) is one entry of
// one table, indexed by the descriptor (sys::slot: on Windows a SOCKET / 4),
// one cache line each: an op's start,
// its arm and a dispatch each check one bound and touch one line.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <cosock/detail/foreign_fds.hpp>
#include <cosock/detail/io_backend.hpp>

namespace cosock::detail {

class readiness_backend : public io_backend {
  public:
    // Final: the scheduler calls it without a virtual call (see loop::first_step).
    [[gnu::always_inline]] start first_step(const io_op& op, bool) noexcept final {
        if (sys::slot(op.fd) >= fds_.size()) [[unlikely]]
            return start::now;
        const fd_state& st = fds_[sys::slot(op.fd)];
        direction d = op.type->dir;
        if (!st.of(d).empty()) return start::behind_others;
        // Urgent data raises no readiness: only a try tells.
        return (st.flags & drained_bit(d)) && !(op.flags & MSG_OOB) ? start::untried : start::now;
    }

    void arm(io_op& op) override {
        hold_fd(fds_, op.fd);
        fd_state& st = fds_[sys::slot(op.fd)];
        bool again = needs_recheck(op, st);
        op_fifo& list = st.of(op.type->dir);
        bool first = list.empty();
        if (op.foreign) foreign_.add(op.fd);
        list.push_back(op);
        if (first && follows_interest_) try {
                interest(op.fd, !st.readers.empty(), !st.writers.empty());
            } catch (...) {
                list.erase(op);
                if (op.foreign) foreign_.remove(op.fd);
                throw;
            }
        armed(op, st);
        if (again) recheck(st, op.fd);
    }

    void cancel(io_op& op, ready_queue&) noexcept override {
        fd_state& st = fds_[sys::slot(op.fd)];
        op_fifo& list = st.of(op.type->dir);
        list.erase(op);
        op.state = op_state::idle;
        left(op);
        if (list.empty() && follows_interest_) interest(op.fd, !st.readers.empty(), !st.writers.empty());
    }

    void abort(io_op& op, ready_queue& ready) noexcept override {
        cancel(op, ready);
        complete(op, -ECANCELED, ready);
    }

    void release_fd(int fd, bool, ready_queue& ready) noexcept override {
        if (fd < 0 || sys::slot(fd) >= fds_.size()) return;
        fail_all(fd, -ECANCELED, end_reason::closed, ready);
        fds_[sys::slot(fd)].flags = 0;
    }

    // A short read is only a guess that the queue is empty; after the end of
    // the stream or an error (sticky) no edge would come to correct it.
    void completed_at_once(const io_op& op, int res) noexcept override {
        if (drained_by(op, res) && sys::slot(op.fd) < fds_.size()) note_short_read(fds_[sys::slot(op.fd)].flags);
    }

    void cancel_all(ready_queue& ready) noexcept override {
        for (std::size_t at = 0; at < fds_.size() && waiting_ > 0; ++at)
            fail_all(sys::fd_at(at), -ECANCELED, end_reason::none, ready);
    }

    std::size_t waiting() const noexcept override { return waiting_; }

  protected:
    /// `follows_interest`: the backend is told (interest()) whenever the
    /// directions waited for on a descriptor change, as select and poll need;
    /// epoll registers each descriptor once and is not told.
    explicit readiness_backend(bool follows_interest = true) noexcept : follows_interest_(follows_interest) {}

    // fd_state::flags bits used here; a backend may use the bits from
    // first_free_bit up. drained_*: an op was told EAGAIN in that direction
    // (or a recv came back short) and no readiness has been reported since.
    static constexpr std::uint8_t drained_read = 1, drained_write = 2;
    // The descriptor reported its end or an error: a state, not an event, so
    // no further edge will come, and a short read is no reason to wait.
    static constexpr std::uint8_t sticky = 4;
    // The descriptor is in recheck_.
    static constexpr std::uint8_t queued = 8;
    static constexpr std::uint8_t first_free_bit = 16;

    /// The ops waiting in one direction, oldest first (linked through their
    /// list_node, which no other list uses while they wait).
    class op_fifo {
      public:
        bool empty() const noexcept { return head_ == nullptr; }
        io_op* front() const noexcept { return static_cast<io_op*>(head_); }
        static io_op* next(io_op& op) noexcept { return static_cast<io_op*>(op.next); }
        void push_back(io_op& op) noexcept {
            op.prev = tail_;
            op.next = nullptr;
            (tail_ ? tail_->next : head_) = &op;
            tail_ = &op;
        }
        /// Unlinks the front op, leaving its links for the next list to set.
        void drop_front() noexcept {
            head_ = head_->next;
            (head_ ? head_->prev : tail_) = nullptr;
        }
        void erase(io_op& op) noexcept {
            (op.prev ? op.prev->next : head_) = op.next;
            (op.next ? op.next->prev : tail_) = op.prev;
            op.prev = op.next = nullptr;
        }
        io_op* pop_front() noexcept {
            io_op* op = front();
            if (op) erase(*op);
            return op;
        }

      private:
        list_node* head_ = nullptr;
        list_node* tail_ = nullptr;
    };

    struct alignas(64) fd_state {
        op_fifo readers;
        op_fifo writers;
        std::uint8_t flags = 0; // the bits above
        op_fifo& of(direction d) noexcept { return d == direction::read ? readers : writers; }
        const op_fifo& of(direction d) const noexcept { return d == direction::read ? readers : writers; }
        bool idle() const noexcept { return readers.empty() && writers.empty(); }
    };

    static std::uint8_t drained_bit(direction d) noexcept {
        return d == direction::read ? drained_read : drained_write;
    }

    /// The end of an arm: `op`, just linked into its list in `st`, waits.
    [[gnu::always_inline]] void armed(io_op& op, fd_state& st) noexcept {
        if (op.tried) st.flags |= drained_bit(op.type->dir);
        op.state = op_state::waiting;
        ++waiting_;
    }

    /// An op on a descriptor cosock does not own is about to wait on it. May
    /// throw (allocation) before recording it.
    [[gnu::noinline]] void add_foreign(int fd) { foreign_.add(fd); }

    /// The directions of interest changed for `fd`. Only adding interest may
    /// throw (allocation); removing it never does.
    virtual void interest(int /*fd*/, bool /*read*/, bool /*write*/) {}

    /// Performs the ops of a descriptor reported ready; errors count as both
    /// directions. `fresh`: the kernel has just reported it ready, so an op
    /// that still says EAGAIN is checked for a dead end (see dead_end).
    [[gnu::always_inline]] void dispatch(int fd, bool readable, bool writable, ready_queue& ready,
                                         bool fresh) noexcept {
        dispatch(fds_[sys::slot(fd)], fd, readable, writable, ready, fresh);
    }
    [[gnu::always_inline]] void dispatch(fd_state& st, int fd, bool readable, bool writable, ready_queue& ready,
                                         bool fresh) noexcept {
        bool was_r = !st.readers.empty(), was_w = !st.writers.empty();
        if (readable) {
            st.flags &= std::uint8_t(~drained_read);
            if (was_r) run<direction::read>(st, ready, fresh);
        }
        if (writable) {
            st.flags &= std::uint8_t(~drained_write);
            if (was_w) run<direction::write>(st, ready, fresh);
        }
        if (follows_interest_) update(fd, st, was_r, was_w);
    }

    /// Completes every op waiting on `fd` with `res`, ended by `why`.
    void fail_all(int fd, int res, end_reason why, ready_queue& ready) noexcept {
        fd_state& st = fds_[sys::slot(fd)];
        bool was_r = !st.readers.empty(), was_w = !st.writers.empty();
        for (auto* list : {&st.readers, &st.writers})
            while (io_op* op = list->pop_front()) {
                left(*op);
                if (op->ended_by == end_reason::none) op->ended_by = why;
                complete(*op, res, ready);
            }
        if (follows_interest_) update(fd, st, was_r, was_w);
    }

    /// Before the loop blocks: ends with EBADF the ops on foreign descriptors
    /// that were closed (or closed and reopened) behind cosock's back, which
    /// would otherwise never be woken; true if any was.
    bool end_gone_foreign(ready_queue& ready) noexcept {
        if (foreign_.empty()) return false;
        bool ended = false;
        foreign_.for_each_gone([&](int fd) {
            fd_state& st = fds_[sys::slot(fd)];
            bool was_r = !st.readers.empty(), was_w = !st.writers.empty();
            for (auto* list : {&st.readers, &st.writers})
                for (io_op* op = list->front(); op;) {
                    io_op* next = op_fifo::next(*op);
                    if (op->foreign) {
                        list->erase(*op);
                        left(*op);
                        complete(*op, -EBADF, ready);
                    }
                    op = next;
                }
            if (follows_interest_) update(fd, st, was_r, was_w);
            forget_gone(fd);
            ended = true;
        });
        return ended;
    }

    /// A foreign descriptor's ops were ended by end_gone_foreign.
    virtual void forget_gone(int /*fd*/) noexcept {}

    // Rechecks. An op armed untried on a descriptor not known to be drained
    // (its first try was put off, to keep the loop turn fair, or it joined a
    // list whose front had not tried either) is tried after the next wait,
    // which then does not block. Readiness cannot stand in for that try: a
    // connect must call connect() before anything is reported, Windows
    // reports nothing for a socket neither connected nor listening, and
    // epoll reports an edge only once.

    /// Whether `op`, about to be linked into `st`, must be rechecked; if so,
    /// makes room for it first (the only step that may throw).
    [[gnu::always_inline]] bool needs_recheck(const io_op& op, const fd_state& st) {
        if (op.tried || (st.flags & drained_bit(op.type->dir))) [[likely]]
            return false;
        if (recheck_.size() == recheck_.capacity()) recheck_.reserve(recheck_.size() * 2 + 16);
        return true;
    }
    void recheck(fd_state& st, int fd) noexcept {
        if (st.flags & queued) return;
        recheck_.push_back(fd); // room was made before the op was linked
        st.flags |= queued;
    }
    /// True while a recheck waits: the next wait must not block.
    bool rechecks_pending() const noexcept { return !recheck_.empty(); }
    /// Tries, after a wait, the ops of the descriptors queued by recheck().
    void run_rechecks(ready_queue& ready) noexcept {
        if (recheck_.empty()) return;
        std::vector<int> again = std::exchange(recheck_, std::move(spare_));
        for (int fd : again) {
            fd_state& st = fds_[sys::slot(fd)];
            st.flags = std::uint8_t(st.flags & ~queued);
            run_recheck(st, fd, ready);
        }
        again.clear();
        spare_ = std::move(again);
    }
    /// Performs the ops of the directions of `fd` not known to be drained.
    virtual void run_recheck(fd_state& st, int fd, ready_queue& ready) noexcept {
        dispatch(st, fd, !(st.flags & drained_read), !(st.flags & drained_write), ready, false);
    }

    std::vector<fd_state> fds_; // per descriptor; grown by hold_fd

    // Performs the ops of one direction in order, from the first (there is
    // one), until one says the direction is not ready after all (which marks
    // it drained) or none is left. A recv that emptied the receive queue as
    // the last one marks it drained too (see op_type::short_means_drained).
    template <direction D>
    [[gnu::always_inline]] void run(fd_state& st, ready_queue& ready, bool fresh) noexcept {
        op_fifo& list = st.of(D);
        io_op* op = list.front();
        bool short_read = false;
        do {
            const op_type& t = *op->type;
            int res = t.perform(*op);
            // (A connect in progress has become its wait: op->type, not t.)
            if (res == -EAGAIN && op->type->waits_on_eagain && !(fresh && t.dead_end && t.dead_end(*op, res)))
                [[unlikely]] {
                st.flags |= drained_bit(D); // FIFO: later ops wait
                return;
            }
            list.drop_front();
            left(*op);
            complete(*op, res, ready);
            if constexpr (D == direction::read) short_read = drained_by(*op, res);
            op = list.front();
        } while (op);
        if (short_read) note_short_read(st.flags);
    }

    static void note_short_read(std::uint8_t& f) noexcept {
        if (!(f & sticky)) f |= drained_read;
    }

  private:
    // `op` no longer waits.
    void left(const io_op& op) noexcept {
        --waiting_;
        if (op.foreign) [[unlikely]]
            foreign_.remove(op.fd);
    }

    // The lists of `fd` changed (a backend that follows interest): tells it
    // when the directions waited for changed. Removing interest never throws.
    void update(int fd, const fd_state& st, bool was_r, bool was_w) noexcept {
        bool r = !st.readers.empty(), wr = !st.writers.empty();
        if (r != was_r || wr != was_w) interest(fd, r, wr);
    }

    std::size_t waiting_ = 0;
    foreign_fds foreign_;
    std::vector<int> recheck_, spare_;
    const bool follows_interest_;
};

} // namespace cosock::detail
