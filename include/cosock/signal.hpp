// Signals as awaitables, on every backend: `co_await wait_signal({SIGINT,
// SIGTERM})` (asyncio's add_signal_handler) and signal_set, which catches its
// signals from construction on and queues them between waits (Asio's
// signal_set).
//
// How: one process-wide sigaction handler (detail/signal_hub.hpp) counts
// each arrival and writes to an eventfd per scheduler that waits for the
// signal. A scheduler's signal port (below) owns that eventfd while it has
// signal sets, waits on it through its backend while a task waits for a
// signal, and hands what arrived to its sets, then to their waiters. The
// disposition a signal had is restored when its last set goes.
#pragma once

#include <cosock/detail/platform.hpp>
#if COSOCK_WINDOWS
#error "cosock/signal.hpp: POSIX signals; Windows has no signal sets (see docs/windows.md)"
#endif

#include <algorithm>
#include <array>
#include <concepts>
#include <coroutine>
#include <cstdint>
#include <new>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <system_error>
#include <utility>

#include <cosock/detail/intrusive_list.hpp>
#include <cosock/detail/io_op.hpp>
#include <cosock/detail/os_category.hpp>
#include <cosock/detail/ops/wait.hpp>
#include <cosock/detail/signal_hub.hpp>
#include <cosock/detail/sys.hpp>
#include <cosock/detail/wait_slot.hpp>
#include <cosock/error.hpp>
#include <cosock/operation.hpp>
#include <cosock/scheduler.hpp>
#include <cosock/time.hpp>

namespace cosock {

class signal_set;

/// The signals to wait for, written as a braced list of numbers:
/// `{SIGINT, SIGTERM}`. (Not an std::initializer_list: GCC before 13 cannot
/// have one in a co_await expression, and `co_await wait_signal({...})` is
/// the way it is written.)
class signal_list {
  public:
    template <std::convertible_to<int>... Numbers>
    signal_list(Numbers... signals) noexcept : numbers_{int(signals)...}, size_(sizeof...(Numbers)) {
        static_assert(sizeof...(Numbers) <= detail::max_signal, "more numbers than there are signals");
    }

    const int* begin() const noexcept { return numbers_.data(); }
    const int* end() const noexcept { return numbers_.data() + size_; }

  private:
    std::array<int, detail::max_signal> numbers_{};
    int size_;
};

namespace detail {
class signal_port;
class signal_awaiter;
class one_signal_awaiter;

/// How a signal_set knows a task waiting on it.
struct signal_waiter_link : list_node {
    signal_awaiter* self = nullptr;
};
} // namespace detail

/// Signals caught from construction on, for one scheduler: each arrival of
/// one of them is queued (a count per signal) until `co_await set.wait()`
/// takes it, so a program that handles one signal after another misses none
/// between two waits. Every set that has a signal gets each of its arrivals,
/// whichever thread the signal arrived on; a signal must not be blocked in
/// every thread.
///
/// While any set has a signal, cosock's handler is its disposition; when the
/// last set for it goes, the disposition it had before comes back. A set is
/// made, awaited and destroyed on its scheduler's thread, and is neither
/// copied nor moved. It may outlive its scheduler: it then catches nothing.
class signal_set {
  public:
    /// Catches `signals` for `s` from now on. Throws std::invalid_argument,
    /// naming the value, for an empty list, a number outside 1 to NSIG - 1,
    /// SIGKILL or SIGSTOP; std::system_error when no eventfd can be made;
    /// std::runtime_error when 128 other schedulers wait for signals already.
    signal_set(scheduler& s, signal_list signals)
        : signal_set(&detail::loop_of(s), detail::signal_mask(signals, "cosock::signal_set")) {}
    signal_set(const signal_set&) = delete;
    signal_set& operator=(const signal_set&) = delete;
    /// Tasks still waiting on the set end with std::system_error (EBADF).
    ~signal_set();

    /// `co_await set.wait()`: the number of the next signal caught, at once
    /// when one is queued. Waiters are served in the order they came. The
    /// task's stop token ends the wait with cancelled_error (and so do
    /// with_timeout, which makes it timeout_error, and when_any); a signal
    /// already handed to the waiter is returned instead. Awaited elsewhere
    /// than on the set's running scheduler: std::logic_error.
    operation<detail::signal_awaiter> wait() noexcept;

    /// Whether `sig` is one of the set's signals.
    bool contains(int sig) const noexcept {
        return sig >= 1 && sig <= detail::max_signal && (mask_ & detail::signal_bit(sig));
    }

  private:
    friend class detail::signal_port;
    friend class detail::signal_awaiter;
    friend class detail::one_signal_awaiter;

    struct port_link : detail::list_node {
        signal_set* set = nullptr;
    };

    signal_set(detail::loop* l, std::uint64_t mask); // a pointer: no overload for a scheduler&

    // `n` more arrivals of `sig`; a signal not queued yet goes last.
    void queue(int sig, std::uint32_t n) noexcept {
        std::uint32_t& c = count_[std::size_t(sig)];
        if (c == 0) order_[std::size_t(queued_++)] = std::uint8_t(sig);
        c = c > UINT32_MAX - n ? UINT32_MAX : c + n;
    }
    // The next signal, or 0. A signal that arrived more than once goes
    // behind the others again, so arrivals come out in about the order they
    // came.
    int take() noexcept {
        if (queued_ == 0) return 0;
        int sig = order_[0];
        std::copy(order_.begin() + 1, order_.begin() + queued_, order_.begin());
        --queued_;
        if (--count_[std::size_t(sig)] > 0) order_[std::size_t(queued_++)] = std::uint8_t(sig);
        return sig;
    }
    // A signal taken for a waiter that went away without it: first again.
    void put_back(int sig) noexcept {
        std::uint32_t& c = count_[std::size_t(sig)];
        auto end = order_.begin() + queued_;
        auto at = std::find(order_.begin(), end, std::uint8_t(sig));
        if (at == end) { // not queued: it goes in last, then to the front
            *at = std::uint8_t(sig);
            ++queued_;
        }
        std::rotate(order_.begin(), at, at + 1);
        c = c == UINT32_MAX ? c : c + 1;
    }
    // Hands queued signals to waiters, first come first served.
    void serve() noexcept;

    detail::loop* loop_;
    detail::signal_port* port_; // nullptr once the scheduler is gone
    std::uint64_t mask_;
    port_link link_;
    std::array<std::uint32_t, detail::max_signal + 1> count_{};  // queued arrivals per signal
    std::array<std::uint8_t, detail::max_signal> order_{};       // the signals queued, next first
    int queued_ = 0;                                             // entries of order_ in use
    detail::intrusive_list<detail::signal_waiter_link> waiters_; // waiting, first come first
    detail::intrusive_list<detail::signal_waiter_link> holders_; // handed a signal, not resumed yet
};

namespace detail {

/// A scheduler's side of the hub: its slot and eventfd while it has signal
/// sets, the sets, and the wait on the eventfd, armed while a task waits.
class signal_port final : public loop_service {
  public:
    explicit signal_port(loop& l) noexcept : loop_(l) {
        op_.type = &ops::wait_readable;
        op_.tried = true; // every arm follows a read of the eventfd
        op_.port = this;
        op_.callback = [](ready_node& n) { static_cast<port_op&>(n).port->on_ready(); };
    }

    /// The scheduler goes: its sets catch nothing more, their signals' dispositions come back.
    ~signal_port() override {
        loop_.forget(op_);
        std::uint64_t all = 0;
        while (signal_set::port_link* l = sets_.pop_front()) {
            all |= l->set->mask_;
            l->set->port_ = nullptr;
        }
        for (int sig = 1; sig <= max_signal; ++sig)
            if (all & signal_bit(sig)) signal_hub::get().unwant(slot_, sig);
        if (fd_ >= 0) close();
    }

    /// Registers `set`; arrivals already counted go to the sets that were
    /// there before it. Throws, leaving nothing registered, when no eventfd
    /// or slot can be had.
    void add(signal_set& set) {
        if (fd_ < 0)
            open();
        else
            collect();
        sets_.push_back(set.link_);
        int sig = 1;
        try {
            for (; sig <= max_signal; ++sig)
                if (set.mask_ & signal_bit(sig)) {
                    if (users_[std::size_t(sig)] == 0) signal_hub::get().want(slot_, sig);
                    ++users_[std::size_t(sig)];
                }
        } catch (...) {
            drop(set, signal_bit(sig) - 1);
            throw;
        }
    }

    void remove(signal_set& set) noexcept { drop(set, ~std::uint64_t(0)); }

    /// Reads the eventfd and hands what arrived to the sets, in the order
    /// it came, then to their waiters.
    void collect() noexcept {
        if (fd_ < 0) return;
        sys::drain({fd_}); // before the counts: a later arrival writes again
        struct arrival {
            std::uint64_t first;
            std::uint32_t count;
            int sig;
        };
        std::array<arrival, max_signal> got{};
        int n = 0;
        signal_slot& slot = signal_table[std::size_t(slot_)];
        for (int sig = 1; sig <= max_signal; ++sig) {
            if (users_[std::size_t(sig)] == 0) continue;
            std::uint32_t count = slot.count[std::size_t(sig)].exchange(0);
            if (count == 0) continue;
            std::uint64_t first = slot.first[std::size_t(sig)].exchange(0);
            // 0: its handler is still running; it came after those numbered.
            arrival a{first ? first : UINT64_MAX, count, sig};
            int i = n++;
            for (; i > 0 && got[std::size_t(i - 1)].first > a.first; --i) got[std::size_t(i)] = got[std::size_t(i - 1)];
            got[std::size_t(i)] = a;
        }
        if (n == 0) return;
        for (int i = 0; i < n; ++i)
            for (signal_set::port_link* l = sets_.front(); l; l = intrusive_list<signal_set::port_link>::next(*l))
                if (l->set->mask_ & signal_bit(got[std::size_t(i)].sig))
                    l->set->queue(got[std::size_t(i)].sig, got[std::size_t(i)].count);
        for (signal_set::port_link* l = sets_.front(); l; l = intrusive_list<signal_set::port_link>::next(*l))
            l->set->serve();
    }

    /// A task waits on one of the sets: the loop waits on the eventfd.
    void waiter_added() {
        if (op_.state == op_state::idle) loop_.io().arm(op_);
        ++waiting_;
    }
    /// A task no longer waits (served, stopped or gone): with none left the
    /// loop stops waiting on the eventfd, so that it can run out of work.
    void waiter_left() noexcept {
        if (--waiting_ == 0) loop_.forget(op_);
    }

  private:
    struct port_op : io_op {
        signal_port* port = nullptr;
    };

    void open() {
        sys::waker w;
        if (int r = sys::open_waker(w); r < 0) throw std::system_error(-r, os_category(), "cosock: eventfd for signals");
        try {
            slot_ = signal_hub::get().take_slot(w.fd);
        } catch (...) {
            sys::close_waker(w);
            throw;
        }
        fd_ = op_.fd = w.fd;
    }

    void close() noexcept {
        loop_.forget(op_);
        signal_hub::get().give_back(slot_); // no handler writes to the eventfd after this
        loop_.io().release_fd(fd_, true, loop_.ready());
        sys::close(fd_);
        fd_ = op_.fd = slot_ = -1;
    }

    // Takes `set` away, with the signals of `signals` it registered.
    void drop(signal_set& set, std::uint64_t signals) noexcept {
        sets_.erase(set.link_);
        for (int sig = 1; sig <= max_signal; ++sig)
            if (set.mask_ & signals & signal_bit(sig))
                if (--users_[std::size_t(sig)] == 0) signal_hub::get().unwant(slot_, sig);
        if (sets_.empty()) close();
    }

    void on_ready() {
        collect();
        if (waiting_ > 0) loop_.io().arm(op_);
    }

    loop& loop_;
    int fd_ = -1;
    int slot_ = -1;
    intrusive_list<signal_set::port_link> sets_;
    std::array<int, max_signal + 1> users_{}; // sets per signal
    std::size_t waiting_ = 0;                 // tasks waiting on any set
    port_op op_;
};

/// `co_await set.wait()`.
class signal_awaiter {
  public:
    struct args {
        signal_set* set;
        const char* what;
    };
    explicit signal_awaiter(const args& a) noexcept : set_(a.set), what_(a.what), slot_(*a.set->loop_) {
        link_.self = this;
    }
    signal_awaiter(const signal_awaiter&) = delete;
    signal_awaiter& operator=(const signal_awaiter&) = delete;
    /// A frame destroyed while it waits leaves the set; one that was handed a
    /// signal gives it back.
    ~signal_awaiter() {
        if (!set_) return;
        if (state_ == state::waiting) {
            set_->waiters_.erase(link_);
            if (set_->port_) set_->port_->waiter_left();
        } else if (state_ == state::holding) {
            set_->holders_.erase(link_);
            set_->put_back(signal_);
            set_->serve();
        }
    }

    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        const std::stop_token* token = stop_token_of(h);
        if (token && token->stop_requested()) return !(cancelled_ = true);
        slot_.node.handle = h;
        if (!begin()) return false;
        slot_.listen(this, token);
        return true;
    }
    int await_resume() {
        slot_.settle();
        if (cancelled_) throw cancelled_error(what_);
        if (state_ == state::holding) {
            set_->holders_.erase(link_);
            state_ = state::done;
            return signal_;
        }
        if (state_ == state::done) return signal_;
        throw std::system_error(detail::os_error(std::errc::bad_file_descriptor),
                                std::string(what_) + ": the signal_set was destroyed");
    }

    /// A stop request: a task still waiting ends with cancelled_error; one
    /// already handed a signal returns it.
    void on_end(end_reason) noexcept {
        if (state_ != state::waiting || !set_->port_) return;
        set_->waiters_.erase(link_);
        state_ = state::done;
        cancelled_ = true;
        set_->port_->waiter_left();
        slot_.resume_soon();
    }

  private:
    friend class cosock::signal_set;
    enum class state : std::uint8_t { idle, waiting, holding, done };

    // False when a signal is there already (it is the result).
    bool begin() {
        slot_.check_running(what_);
        signal_port* port = set_->port_;
        if (!port) throw std::logic_error(std::string("cosock::") + what_ + ": the set's scheduler is gone");
        port->collect();
        if ((signal_ = set_->take()) != 0) {
            state_ = state::done;
            return false;
        }
        set_->waiters_.push_back(link_);
        try {
            port->waiter_added();
        } catch (...) {
            set_->waiters_.erase(link_);
            throw;
        }
        state_ = state::waiting;
        return true;
    }

    // From the set: `sig` is the result (the waiter has left waiters_).
    void hand(int sig) noexcept {
        signal_ = sig;
        state_ = state::holding;
        set_->holders_.push_back(link_);
        slot_.resume_soon();
    }

    // From the set's destructor: the waiter ends with EBADF, or keeps the
    // signal it was handed.
    void orphan() noexcept {
        if (state_ == state::waiting) {
            state_ = state::idle;
            if (set_->port_) {
                set_->port_->waiter_left();
                slot_.resume_soon();
            }
        } else if (state_ == state::holding) {
            state_ = state::done;
        }
        set_ = nullptr;
    }

    signal_set* set_;
    const char* what_;
    signal_waiter_link link_;
    wait_slot<signal_awaiter> slot_;
    int signal_ = 0;
    state state_ = state::idle;
    bool cancelled_ = false;
};

/// `co_await wait_signal(...)`: a signal_set of its own, made when the wait
/// starts and gone with it.
class one_signal_awaiter {
  public:
    struct args {
        loop* where;
        std::uint64_t mask;
    };
    explicit one_signal_awaiter(const args& a) noexcept : args_(a) {}
    one_signal_awaiter(const one_signal_awaiter&) = delete;
    one_signal_awaiter& operator=(const one_signal_awaiter&) = delete;
    ~one_signal_awaiter() {
        wait_.reset(); // leaves the set first
        if (made_) std::destroy_at(&set_.value);
    }

    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        const std::stop_token* token = stop_token_of(h);
        if (token && token->stop_requested()) return !(cancelled_ = true); // before any sigaction
        make_set();
        return wait_->await_suspend(h);
    }
    int await_resume() {
        if (cancelled_) throw cancelled_error("wait_signal");
        return wait_->await_resume();
    }

  private:
    void make_set() {
        scheduler* s = scheduler::current();
        if (!s || &loop_of(*s) != args_.where)
            throw std::logic_error("cosock: wait_signal: awaited outside the scheduler it was made on (is that "
                                   "scheduler running on this thread, or was it destroyed?)");
        ::new (static_cast<void*>(&set_.value)) signal_set(args_.where, args_.mask);
        made_ = true;
        wait_.emplace(signal_awaiter::args{&set_.value, "wait_signal"});
    }

    union set_storage {
        set_storage() noexcept {}
        ~set_storage() {}
        signal_set value;
    };

    args args_;
    set_storage set_;
    bool made_ = false;
    bool cancelled_ = false;
    std::optional<signal_awaiter> wait_;
};

} // namespace detail

inline signal_set::signal_set(detail::loop* l, std::uint64_t mask) : loop_(l), port_(nullptr), mask_(mask) {
    link_.set = this;
    detail::signal_port& port = l->service<detail::signal_port>();
    port.add(*this);
    port_ = &port;
}

inline signal_set::~signal_set() {
    for (auto* list : {&waiters_, &holders_})
        while (detail::signal_waiter_link* w = list->pop_front()) w->self->orphan();
    if (port_) port_->remove(*this);
}

inline operation<detail::signal_awaiter> signal_set::wait() noexcept {
    return operation<detail::signal_awaiter>({this, "signal_set::wait"});
}

inline void signal_set::serve() noexcept {
    if (!port_) return;
    while (queued_ > 0 && !waiters_.empty()) {
        detail::signal_waiter_link* w = waiters_.pop_front();
        port_->waiter_left();
        w->self->hand(take());
    }
}

/// `co_await wait_signal({SIGINT, SIGTERM})`: waits on the running scheduler
/// until one of the signals arrives and returns its number. The signals are
/// caught from the moment the wait starts until it ends; to miss none between
/// two waits, keep a signal_set. The task's stop token ends the wait with
/// cancelled_error (with_timeout: timeout_error; when_any's losers). Throws
/// std::invalid_argument, naming the value, for an empty list, a number
/// outside 1 to NSIG - 1, SIGKILL or SIGSTOP; std::logic_error outside a
/// running scheduler.
inline operation<detail::one_signal_awaiter> wait_signal(signal_list signals) {
    std::uint64_t mask = detail::signal_mask(signals, "cosock::wait_signal");
    detail::loop& l = detail::loop_of(detail::running_scheduler("wait_signal"));
    return operation<detail::one_signal_awaiter>({&l, mask});
}

} // namespace cosock
