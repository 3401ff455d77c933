// cosock::operation: what a socket's recv, send, sendall, recvfrom, sendto,
// connect and accept return, and sleep_for and sleep_until too. It is the
// operation made but not started: `co_await` runs it. It can be kept in a
// variable, moved, and given to with_timeout before it is awaited; it does
// nothing until then, so a call that is not awaited is a mistake the compiler
// reports ([[nodiscard]]).
//
// An operation on a socket takes the socket's descriptor, scheduler and
// timeout when it is made, not the socket: moving the socket before or while
// it runs is safe. Await it while the socket is still open, and keep the
// buffers it was given alive until it has ended.
#pragma once

#include <type_traits>
#include <utility>

#include <cosock/task.hpp>

namespace cosock {

/// An operation made but not started (recv, send, accept, sleep_for, …):
/// `co_await` runs it; it may be moved or given to with_timeout first.
template <class Awaiter>
class [[nodiscard("an operation does nothing until it is awaited: co_await it")]] operation {
  public:
    using args_type = typename Awaiter::args;
    explicit operation(args_type args) noexcept(std::is_nothrow_move_constructible_v<args_type>)
        : args_(std::move(args)) {}

    /// Starts the operation; awaiting the same value again runs it again.
    Awaiter operator co_await()&& { return Awaiter(std::move(args_)); }
    Awaiter operator co_await()& { return Awaiter(args_); }

  private:
    args_type args_;
};

namespace detail {
// An operation (or any awaitable) as a task: the operation is moved into the
// task's frame, so the task may outlive the expression that made it.
template <class Operation>
auto as_task(Operation op) -> task<decltype(std::move(op).operator co_await().await_resume())> {
    co_return co_await std::move(op);
}
} // namespace detail

} // namespace cosock
