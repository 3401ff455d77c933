// cosock::select: Python's select.select(rlist, wlist, xlist, timeout) as an
// awaitable. It works on every backend (it is not tied to the select backend)
// and with any descriptor number the backend allows.
//
// The lists hold raw descriptors (int), or pointers to anything with a
// fileno() (cosock::socket*, …); the ready elements are returned as given.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <cosock/detail/platform.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include <cosock/detail/io_op.hpp>
#include <cosock/detail/ops/wait.hpp>
#include <cosock/detail/wait_slot.hpp>
#include <cosock/error.hpp>
#include <cosock/scheduler.hpp>
#include <cosock/task.hpp>
#include <cosock/time.hpp>

namespace cosock {

class socket;

/// The descriptor of a select() list element.
inline int fileno_of(int fd) noexcept { return fd; }
template <class T>
requires requires(const T& t) {
    { t.fileno() } -> std::convertible_to<int>;
}
int fileno_of(const T* p) { return p->fileno(); }

/// What select() gives back: the elements ready to read, to write, and with an
/// exceptional condition (TCP urgent data), in the order they were given.
template <class T>
struct select_result {
    std::vector<T> readable, writable, exceptional;
    bool empty() const noexcept { return readable.empty() && writable.empty() && exceptional.empty(); }
};

namespace detail {

// Waits until any of the descriptors is ready in its direction, or the deadline
// passes. One operation record per descriptor, allocated for this call; the
// first completion resumes the caller and the rest are taken back. The
// descriptors were just found not ready (the records are armed `tried`);
// `foreign`: they are raw numbers, which the caller may close behind cosock's
// back, so the backend keeps nothing of them once the wait ends.
class any_ready_awaiter {
  public:
    /// `closed` collects the descriptors found closed while waiting.
    any_ready_awaiter(scheduler& s, const std::vector<int>& readers, const std::vector<int>& writers,
                      std::optional<clock::time_point> deadline, bool foreign, std::vector<int>& closed)
        : slot_(loop_of(s)), ops_(readers.size() + writers.size()), deadline_(deadline), closed_(&closed) {
        std::size_t i = 0;
        for (int fd : readers) init(ops_[i++], fd, ops::wait_readable, foreign);
        for (int fd : writers) init(ops_[i++], fd, ops::wait_writable, foreign);
    }
    any_ready_awaiter(const any_ready_awaiter&) = delete;
    ~any_ready_awaiter() { settle(); }

    bool await_ready() const noexcept { return false; }
    template <class Promise>
    bool await_suspend(std::coroutine_handle<Promise> h) {
        const std::stop_token* token = stop_token_of(h);
        if (token && token->stop_requested()) return !(cancelled_ = true);
        slot_.node.handle = h;
        try {
            for (auto& o : ops_) slot_.owner_loop().io().arm(o);
            if (deadline_) slot_.start_deadline(this, *deadline_);
        } catch (...) {
            settle();
            throw;
        }
        slot_.listen(this, token);
        return true;
    }
    void await_resume() {
        settle();
        if (cancelled_) throw cancelled_error("select");
    }

    /// A descriptor is ready (none), the deadline passed, or a stop request came.
    void on_end(end_reason why) noexcept {
        if (woken_) return;
        woken_ = true;
        cancelled_ = why == end_reason::stop;
        slot_.resume_soon();
    }

  private:
    struct op : io_op {
        any_ready_awaiter* self;
    };

    void init(op& o, int fd, const op_type& type, bool foreign) {
        o.fd = fd;
        o.type = &type;
        o.tried = true;
        o.foreign = foreign;
        o.self = this;
        o.callback = [](ready_node& n) { static_cast<op&>(n).self->on_end(end_reason::none); };
    }

    void settle() noexcept {
        slot_.settle();
        for (auto& o : ops_) {
            if (o.state != op_state::waiting && ended_result(o) == -EBADF) try {
                    closed_->push_back(o.fd);
                } catch (...) { // out of memory: the next check may see the new file under its number
                }
            slot_.owner_loop().forget(o);
        }
    }

    wait_slot<any_ready_awaiter> slot_;
    std::vector<op> ops_; // never resized once armed: the backend holds their addresses
    std::optional<clock::time_point> deadline_;
    std::vector<int>* closed_;
    bool woken_ = false;
    bool cancelled_ = false;
};

// One poll(2) with timeout 0 over all three lists: the exact answer now. An
// element closed since the call began (fileno() is -1 now, or its descriptor
// is in `closed`, perhaps reused already by another file) counts as ready in
// every list, on every backend: the next operation on it says EBADF.
template <class T>
select_result<T> check_now(const std::vector<T>& r, const std::vector<T>& w, const std::vector<T>& x,
                           const std::vector<int>& closed) {
    std::vector<pollfd> fds;
    fds.reserve(r.size() + w.size() + x.size());
    for (const T& e : r) fds.push_back(sys::make_pollfd(fileno_of(e), POLLIN));
    for (const T& e : w) fds.push_back(sys::make_pollfd(fileno_of(e), POLLOUT));
    for (const T& e : x) fds.push_back(sys::make_pollfd(fileno_of(e), sys::poll_urgent));
    int n;
    while ((n = sys::poll(fds.data(), fds.size(), 0)) == -EINTR) { // PEP 475: a signal is not an answer
    }
    if (!fds.empty()) check(n, "select");
    select_result<T> out;
    std::size_t i = 0;
    // Errors and hang-ups count as ready, as in select(2): the next call reports them.
    auto ready = [&](int want) {
        const pollfd& p = fds[i++];
        return int(p.fd) < 0 || (p.revents & (want | sys::poll_failed)) != 0 ||
               std::find(closed.begin(), closed.end(), int(p.fd)) != closed.end();
    };
    for (const T& e : r)
        if (ready(POLLIN | sys::poll_read_ended)) out.readable.push_back(e);
    for (const T& e : w)
        if (ready(POLLOUT)) out.writable.push_back(e);
    for (const T& e : x)
        if (ready(sys::poll_urgent)) out.exceptional.push_back(e);
    return out;
}

template <class T>
std::vector<int> filenos(const std::vector<T>& list) {
    std::vector<int> fds;
    fds.reserve(list.size());
    for (const T& e : list) {
        int fd = fileno_of(e);
        if (fd < 0) throw std::invalid_argument("select: invalid file descriptor " + std::to_string(fd));
        fds.push_back(fd);
    }
    return fds;
}

} // namespace detail

/// `co_await select(rlist, wlist, xlist, timeout)`: waits until an element is
/// ready, or `timeout` passes (std::nullopt: no limit; zero: just poll), and
/// returns the ready elements. Empty lists are allowed. The exceptional list
/// is checked on entry and at every wake-up (readiness of another element or
/// the timeout), so waiting on it alone needs a timeout. A descriptor or socket
/// closed while select() waits is returned at once as ready, on every
/// backend. A negative descriptor or timeout is an std::invalid_argument; the
/// task's stop token cancels (cancelled_error).
template <class T>
task<select_result<T>> select(std::vector<T> rlist, std::vector<T> wlist, std::vector<T> xlist,
                              std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
    if (timeout && timeout->count() < 0) throw std::invalid_argument("select: negative timeout");
    std::vector<int> r = detail::filenos(rlist), w = detail::filenos(wlist);
    detail::filenos(xlist);
    if (r.empty() && w.empty() && !timeout)
        throw std::invalid_argument("select: nothing to wait for (no read or write list, no timeout)");
    std::optional<detail::clock::time_point> deadline;
    if (timeout) deadline = detail::deadline_after(*timeout, "select");
    scheduler& s = detail::running_scheduler("select");
    std::vector<int> closed;
    for (;;) {
        select_result<T> now = detail::check_now(rlist, wlist, xlist, closed);
        if (!now.empty() || (deadline && detail::clock::now() >= *deadline)) co_return now;
        co_await detail::any_ready_awaiter(s, r, w, deadline, std::is_same_v<T, int>, closed);
    }
}

/// A list given as braces to select(), `{&a, &b}` or `{}`: up to 16
/// elements, held inline. It exists for GCC before 13, which refuses an
/// std::initializer_list inside a co_await expression ("array used as
/// initializer") and copies a temporary that owns memory bytewise (see task.hpp);
/// more elements, or descriptors and file objects, go in a std::vector.
template <class T>
class select_list {
  public:
    static constexpr std::size_t capacity = 16;
    select_list() noexcept = default;
    template <class... U>
    requires(sizeof...(U) >= 1 && sizeof...(U) <= capacity && (std::is_convertible_v<U, T> && ...))
    select_list(U... items) noexcept : items_{T(items)...}, size_(sizeof...(U)) {}
    std::vector<T> to_vector() const {
        return std::vector<T>(items_.begin(), items_.begin() + std::ptrdiff_t(size_));
    }

  private:
    std::array<T, capacity> items_{};
    std::size_t size_ = 0;
};

/// `co_await select({&a, &b}, {}, {}, timeout)`: select() over braced lists of
/// sockets, as Python writes it (descriptors go in a std::vector<int>).
template <class S = socket>
requires std::is_class_v<S> // select<int>(...) names the vector form
task<select_result<S*>> select(select_list<S*> rlist, select_list<S*> wlist, select_list<S*> xlist,
                               std::optional<std::chrono::nanoseconds> timeout = std::nullopt) {
    return select(rlist.to_vector(), wlist.to_vector(), xlist.to_vector(), timeout);
}

} // namespace cosock
