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
// What an op's start needs (the guesses, whether ops wait in each direction)
// is one byte per descriptor in a table of its own, apart from the lists:
// with thousands of connections it stays in cache.
#pragma once

#include <cstdint>
#include <vector>

#include <cosock/detail/foreign_fds.hpp>
#include <cosock/detail/io_backend.hpp>

namespace cosock::detail {

class readiness_backend : public io_backend {
  public:
    start first_step(const io_op& op, bool) noexcept override {
        if (std::size_t(op.fd) >= flags_.size()) return start::now;
        std::uint8_t f = flags_[std::size_t(op.fd)];
        direction d = op.type->dir;
        if (f & (d == direction::read ? has_readers : has_writers)) return start::behind_others;
        if (op.flags & MSG_OOB) return start::now; // urgent data raises no readiness: only a try tells
        return f & drained_bit(d) ? start::untried : start::now;
    }

    void arm(io_op& op) override {
        hold(op.fd);
        if (op.foreign) foreign_.add(op.fd);
        fd_state& st = fds_[std::size_t(op.fd)];
        bool was_r = !st.readers.empty(), was_w = !st.writers.empty();
        intrusive_list<io_op>& list = st.of(op.type->dir);
        list.push_back(op);
        try {
            update(op.fd, st, was_r, was_w);
        } catch (...) {
            list.erase(op);
            if (op.foreign) foreign_.remove(op.fd);
            throw;
        }
        if (op.tried) flags_[std::size_t(op.fd)] |= drained_bit(op.type->dir);
        op.state = op_state::waiting;
        ++waiting_;
    }

    void cancel(io_op& op, ready_queue&) noexcept override {
        fd_state& st = fds_[std::size_t(op.fd)];
        bool was_r = !st.readers.empty(), was_w = !st.writers.empty();
        st.of(op.type->dir).erase(op);
        op.state = op_state::idle;
        left(op);
        update(op.fd, st, was_r, was_w);
    }

    void abort(io_op& op, ready_queue& ready) noexcept override {
        cancel(op, ready);
        complete(op, -ECANCELED, ready);
    }

    void release_fd(int fd, bool, ready_queue& ready) noexcept override {
        if (fd < 0 || std::size_t(fd) >= fds_.size()) return;
        fail_all(fd, -ECANCELED, end_reason::closed, ready);
        flags_[std::size_t(fd)] = 0;
    }

    // A short read is only a guess that the queue is empty; after the end of
    // the stream or an error (sticky) no edge would come to correct it.
    void completed_at_once(const io_op& op, int res) noexcept override {
        if (drained_by(op, res) && std::size_t(op.fd) < flags_.size()) note_short_read(flags_[std::size_t(op.fd)]);
    }

    void cancel_all(ready_queue& ready) noexcept override {
        for (std::size_t fd = 0; fd < fds_.size() && waiting_ > 0; ++fd)
            fail_all(int(fd), -ECANCELED, end_reason::none, ready);
    }

    std::size_t waiting() const noexcept override { return waiting_; }

  protected:
    /// `follows_interest`: the backend is told (interest()) whenever the
    /// directions waited for on a descriptor change, as select and poll need;
    /// epoll registers each descriptor once and is not told.
    explicit readiness_backend(bool follows_interest = true) noexcept : follows_interest_(follows_interest) {}

    // flags_ bits used here; a backend may use the bits from first_free_bit up.
    // drained_*: an op was told EAGAIN in that direction (or a recv came back
    // short) and no readiness has been reported since.
    static constexpr std::uint8_t drained_read = 1, drained_write = 2;
    // The descriptor reported its end or an error: a state, not an event, so
    // no further edge will come, and a short read is no reason to wait.
    static constexpr std::uint8_t sticky = 4;
    static constexpr std::uint8_t has_readers = 8, has_writers = 16; // its lists are not empty
    static constexpr std::uint8_t first_free_bit = 32;

    struct fd_state {
        intrusive_list<io_op> readers;
        intrusive_list<io_op> writers;
        intrusive_list<io_op>& of(direction d) noexcept { return d == direction::read ? readers : writers; }
    };

    static std::uint8_t drained_bit(direction d) noexcept {
        return d == direction::read ? drained_read : drained_write;
    }

    /// Makes both tables hold `fd`.
    void hold(int fd) {
        hold_fd(fds_, fd);
        hold_fd(flags_, fd);
    }

    /// The directions of interest changed for `fd`. Only adding interest may
    /// throw (allocation); removing it never does.
    virtual void interest(int /*fd*/, bool /*read*/, bool /*write*/) {}

    /// Performs the ops of a descriptor reported ready; errors count as both
    /// directions. `fresh`: the kernel has just reported it ready, so an op
    /// that still says EAGAIN is checked for a dead end (see dead_end).
    [[gnu::always_inline]] void dispatch(int fd, bool readable, bool writable, ready_queue& ready,
                                         bool fresh) noexcept {
        fd_state& st = fds_[std::size_t(fd)];
        std::uint8_t& f = flags_[std::size_t(fd)];
        bool was_r = !st.readers.empty(), was_w = !st.writers.empty();
        if (readable) {
            f &= std::uint8_t(~drained_read);
            bool short_read = false;
            if (run(st.readers, ready, fresh, short_read))
                f |= drained_read;
            else if (short_read)
                note_short_read(f);
        }
        if (writable) {
            f &= std::uint8_t(~drained_write);
            bool unused = false;
            if (run(st.writers, ready, fresh, unused)) f |= drained_write;
        }
        update(fd, st, was_r, was_w);
    }

    /// Completes every op waiting on `fd` with `res`, ended by `why`.
    void fail_all(int fd, int res, end_reason why, ready_queue& ready) noexcept {
        fd_state& st = fds_[std::size_t(fd)];
        bool was_r = !st.readers.empty(), was_w = !st.writers.empty();
        for (auto* list : {&st.readers, &st.writers})
            while (io_op* op = list->pop_front()) {
                left(*op);
                if (op->ended_by == end_reason::none) op->ended_by = why;
                complete(*op, res, ready);
            }
        update(fd, st, was_r, was_w);
    }

    /// Before the loop blocks: ends with EBADF the ops on foreign descriptors
    /// that were closed (or closed and reopened) behind cosock's back, which
    /// would otherwise never be woken; true if any was.
    bool end_gone_foreign(ready_queue& ready) noexcept {
        if (foreign_.empty()) return false;
        bool ended = false;
        foreign_.for_each_gone([&](int fd) {
            fd_state& st = fds_[std::size_t(fd)];
            bool was_r = !st.readers.empty(), was_w = !st.writers.empty();
            for (auto* list : {&st.readers, &st.writers})
                for (io_op* op = list->front(); op;) {
                    io_op* next = intrusive_list<io_op>::next(*op);
                    if (op->foreign) {
                        list->erase(*op);
                        left(*op);
                        complete(*op, -EBADF, ready);
                    }
                    op = next;
                }
            update(fd, st, was_r, was_w);
            forget_gone(fd);
            ended = true;
        });
        return ended;
    }

    /// A foreign descriptor's ops were ended by end_gone_foreign.
    virtual void forget_gone(int /*fd*/) noexcept {}

    std::vector<fd_state> fds_;
    std::vector<std::uint8_t> flags_; // per descriptor: the bits above

  private:
    // True when an op found the direction not ready after all; `short_read`
    // when a recv emptied the receive queue (see op_type::short_means_drained).
    bool run(intrusive_list<io_op>& list, ready_queue& ready, bool fresh, bool& short_read) noexcept {
        while (io_op* op = list.front()) {
            const op_type& t = *op->type;
            int res = t.perform(*op);
            if (res == -EAGAIN && !(fresh && t.dead_end && t.dead_end(*op, res))) return true; // FIFO: later ops wait
            list.erase(*op);
            left(*op);
            complete(*op, res, ready);
            short_read = drained_by(*op, res);
        }
        return false;
    }

    static void note_short_read(std::uint8_t& f) noexcept {
        if (!(f & sticky)) f |= drained_read;
    }

    // `op` no longer waits.
    void left(const io_op& op) noexcept {
        --waiting_;
        if (op.foreign) foreign_.remove(op.fd);
    }

    // The lists of `fd` changed: keeps has_readers and has_writers, and tells
    // the backend when the directions waited for changed.
    void update(int fd, fd_state& st, bool was_r, bool was_w) {
        bool r = !st.readers.empty(), wr = !st.writers.empty();
        if (r == was_r && wr == was_w) return;
        std::uint8_t& f = flags_[std::size_t(fd)];
        f = std::uint8_t((f & ~(has_readers | has_writers)) | (r ? has_readers : 0) | (wr ? has_writers : 0));
        if (follows_interest_) interest(fd, r, wr);
    }

    std::size_t waiting_ = 0;
    foreign_fds foreign_;
    const bool follows_interest_;
};

} // namespace cosock::detail
