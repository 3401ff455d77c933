// signal_hub: the process's one sigaction handler for the signals cosock
// waits for, and the table through which it reaches the schedulers.
//
// Each slot of the table belongs to one scheduler while it has signal sets
// (its signal port, signal.hpp): the signals it wants, an eventfd its loop
// waits on like any descriptor, and per signal the arrivals its loop has not
// collected yet, with the sequence number of the first of them (so that
// signals are handed out in the order they came). The handler does only what
// is async-signal-safe: atomic operations on that fixed table and write(2) to
// the eventfd of every slot that wants the signal, so a signal that arrives
// on any thread wakes every scheduler waiting for it. Taking and giving back
// slots, installing the handler and restoring the disposition it replaced
// happen under a mutex, in ordinary code.
#pragma once

#include <cosock/detail/os_category.hpp>

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <mutex>
#include <sched.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <system_error>
#include <unistd.h>

namespace cosock::detail {

/// Signals 1 to 64: one bit each in a std::uint64_t.
inline constexpr int max_signal = 64;
static_assert(NSIG - 1 <= max_signal, "a signal number does not fit the 64-bit masks");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "the signal handler may use only lock-free atomics");

inline constexpr std::uint64_t signal_bit(int sig) noexcept { return std::uint64_t(1) << (sig - 1); }

/// The signals of `signals` (numbers) as a mask. Throws
/// std::invalid_argument naming the value for an empty list, a number that is
/// no signal, a signal that cannot be caught (SIGKILL, SIGSTOP) or one the C
/// library keeps for its threads (those between 31 and SIGRTMIN); `what`
/// names the caller.
template <class Numbers>
std::uint64_t signal_mask(const Numbers& signals, const char* what) {
    if (signals.begin() == signals.end()) throw std::invalid_argument(std::string(what) + ": no signal given");
    std::uint64_t mask = 0;
    for (int sig : signals) {
        if (sig < 1 || sig >= NSIG)
            throw std::invalid_argument(std::string(what) + ": " + std::to_string(sig) +
                                        " is not a signal number (1 to " + std::to_string(NSIG - 1) + ")");
        if (sig == SIGKILL || sig == SIGSTOP)
            throw std::invalid_argument(std::string(what) + ": signal " + std::to_string(sig) +
                                        (sig == SIGKILL ? " (SIGKILL)" : " (SIGSTOP)") + " cannot be caught");
        if (sig > 31 && sig < SIGRTMIN)
            throw std::invalid_argument(std::string(what) + ": signal " + std::to_string(sig) +
                                        " is reserved by the C library");
        mask |= signal_bit(sig);
    }
    return mask;
}

/// One scheduler's entry in the handler's table.
struct signal_slot {
    std::atomic<int> fd{-1};                                        // its eventfd; -1 while the slot is free
    std::atomic<std::uint64_t> wanted{0};                           // the signals it waits for
    std::atomic<std::uint32_t> handlers{0};                         // handlers running over this slot
    std::array<std::atomic<std::uint32_t>, max_signal + 1> count{}; // arrivals not collected yet
    std::array<std::atomic<std::uint64_t>, max_signal + 1> first{}; // sequence of the first of them, or 0
};

inline constexpr int signal_slots = 128; // schedulers waiting for signals at once

// Constant-initialized and trivially destructible: the handler may run
// before any constructor and after every destructor.
inline constinit std::array<signal_slot, signal_slots> signal_table{};
inline constinit std::atomic<int> signal_slots_used{0};         // slots ever taken: the handler looks no further
inline constinit std::atomic<std::uint64_t> signal_arrivals{0}; // numbers each arrival, from 1

/// The handler. Async-signal-safe: lock-free atomics and write(2); errno is
/// kept for the code it interrupted.
inline void on_signal(int sig) noexcept {
    int saved_errno = errno;
    std::uint64_t bit = signal_bit(sig);
    std::uint64_t seq = signal_arrivals.fetch_add(1) + 1;
    int used = signal_slots_used.load();
    for (int i = 0; i < used; ++i) {
        signal_slot& slot = signal_table[std::size_t(i)];
        slot.handlers.fetch_add(1); // before reading fd: see signal_hub::give_back
        int fd = slot.fd.load();
        if (fd >= 0 && (slot.wanted.load() & bit)) {
            std::uint64_t none = 0;
            slot.first[std::size_t(sig)].compare_exchange_strong(none, seq);
            slot.count[std::size_t(sig)].fetch_add(1);
            std::uint64_t one = 1;
            ssize_t written = ::write(fd, &one, sizeof one); // only an overflowing counter fails: still readable
            (void)written;
        }
        slot.handlers.fetch_sub(1);
    }
    errno = saved_errno;
}

/// Slots and dispositions, changed under one mutex (never by the handler).
class signal_hub {
  public:
    /// The process's hub. Never destroyed: a scheduler with static storage
    /// duration may give its slot back after every other destructor ran.
    static signal_hub& get() {
        static signal_hub* hub = new signal_hub;
        return *hub;
    }

    /// A free slot for the eventfd `fd`, wanting no signal yet. Throws
    /// std::runtime_error when every slot is taken.
    int take_slot(int fd) {
        std::lock_guard lock(mutex_);
        for (int i = 0; i < signal_slots; ++i) {
            if (taken_[std::size_t(i)]) continue;
            taken_[std::size_t(i)] = true;
            signal_table[std::size_t(i)].fd.store(fd);
            if (signal_slots_used.load() <= i) signal_slots_used.store(i + 1);
            return i;
        }
        throw std::runtime_error("cosock: more than " + std::to_string(signal_slots) +
                                 " schedulers wait for signals at once");
    }

    /// Frees `slot`, which wants no signal any more. Once this returns no
    /// handler writes to its eventfd, which may then be closed: a handler
    /// that read the descriptor before it was cleared is waited for.
    void give_back(int slot) noexcept {
        std::lock_guard lock(mutex_);
        signal_slot& s = signal_table[std::size_t(slot)];
        s.wanted.store(0);
        s.fd.store(-1);
        while (s.handlers.load() != 0) ::sched_yield(); // a handler runs for microseconds
        taken_[std::size_t(slot)] = false;
    }

    /// `slot` wants `sig` from now on: the first slot to want it installs
    /// the handler, saving the disposition it replaces. Throws
    /// std::system_error if sigaction fails.
    void want(int slot, int sig) {
        std::lock_guard lock(mutex_);
        signal_slot& s = signal_table[std::size_t(slot)];
        s.count[std::size_t(sig)].store(0); // arrivals from an earlier wish are not for this one
        s.first[std::size_t(sig)].store(0);
        s.wanted.fetch_or(signal_bit(sig));
        if (users_[std::size_t(sig)] == 0) {
            struct sigaction sa {};
            sa.sa_handler = &on_signal;
            sigfillset(&sa.sa_mask);
            sa.sa_flags = SA_RESTART;
            if (::sigaction(sig, &sa, &saved_[std::size_t(sig)]) != 0) {
                int err = errno;
                s.wanted.fetch_and(~signal_bit(sig));
                throw std::system_error(err, os_category(), "sigaction(" + std::to_string(sig) + ")");
            }
        }
        ++users_[std::size_t(sig)];
    }

    /// `slot` no longer wants `sig`: the last slot to want it restores the
    /// disposition the handler replaced, unless the program has installed
    /// another one meanwhile (that one is kept).
    void unwant(int slot, int sig) noexcept {
        std::lock_guard lock(mutex_);
        signal_table[std::size_t(slot)].wanted.fetch_and(~signal_bit(sig));
        if (--users_[std::size_t(sig)] > 0) return;
        struct sigaction now {};
        if (::sigaction(sig, nullptr, &now) == 0 && !(now.sa_flags & SA_SIGINFO) && now.sa_handler == &on_signal)
            ::sigaction(sig, &saved_[std::size_t(sig)], nullptr);
    }

  private:
    signal_hub() = default;

    std::mutex mutex_;
    std::array<bool, signal_slots> taken_{};
    std::array<int, max_signal + 1> users_{};              // slots wanting each signal
    std::array<struct sigaction, max_signal + 1> saved_{}; // what the handler replaced
};

} // namespace cosock::detail
