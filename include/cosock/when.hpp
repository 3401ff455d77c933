// Running tasks side by side: when_all waits for every task, when_any for the
// first one, cancelling the others (through their stop token) and waiting
// for them to finish before it returns, so no task outlives the call.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <cosock/task.hpp>

namespace cosock {

namespace detail {

// Shared by the children of one when_all/when_any: counts the children still
// running, plus one for the parent until it has started them all.
struct join_state {
    std::size_t pending;
    std::coroutine_handle<> parent;
};

// A child: awaits one task, stores its outcome, and resumes the parent when
// it is the last to finish.
struct join_child {
    struct promise_type {
        join_state* state = nullptr;
        join_child get_return_object() noexcept {
            return join_child{std::coroutine_handle<promise_type>::from_promise(*this)};
        }
        std::suspend_always initial_suspend() const noexcept { return {}; }
        struct last_out {
            bool await_ready() const noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
                join_state& s = *h.promise().state;
                return --s.pending == 0 ? s.parent : std::noop_coroutine();
            }
            void await_resume() const noexcept {}
        };
        last_out final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        void unhandled_exception() const noexcept { std::terminate(); } // outcomes are caught in the body
    };
    std::coroutine_handle<promise_type> h;
    explicit join_child(std::coroutine_handle<promise_type> handle) noexcept : h(handle) {}
    join_child(join_child&& o) noexcept : h(std::exchange(o.h, {})) {}
    ~join_child() {
        if (h) h.destroy();
    }
};

template <class T>
using outcome_value = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
struct outcome {
    std::optional<outcome_value<T>> value;
    std::exception_ptr error;
    outcome_value<T> get() {
        if (error) std::rethrow_exception(error);
        return std::move(*value);
    }
};

template <class T>
join_child run_child(task<T> t, outcome<T>& out, std::size_t index, linked_stop_source* first,
                     std::optional<std::size_t>* winner) {
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(t);
            out.value.emplace();
        } else {
            out.value.emplace(co_await std::move(t));
        }
    } catch (...) {
        out.error = std::current_exception();
    }
    if (winner && !*winner) { // when_any: the first to finish wins and stops the rest
        *winner = index;
        first->request_stop();
    }
}

// Starts every child and suspends the parent until all have finished.
struct join_awaiter {
    std::vector<join_child>& children;
    join_state& state;
    bool await_ready() const noexcept { return children.empty(); }
    bool await_suspend(std::coroutine_handle<> parent) noexcept {
        state.parent = parent;
        state.pending = children.size() + 1;
        for (auto& c : children) {
            c.h.promise().state = &state;
            c.h.resume(); // runs until it first waits (or finishes)
        }
        return --state.pending != 0; // all finished already: do not suspend
    }
    void await_resume() const noexcept {}
};

} // namespace detail

/// Runs every task concurrently and returns their results in order (void
/// tasks give std::monostate). Waits for all of them even when one throws,
/// then rethrows the first exception in argument order.
template <class T>
task<std::vector<detail::outcome_value<T>>> when_all(std::vector<task<T>> tasks) {
    std::vector<detail::outcome<T>> outcomes(tasks.size());
    std::vector<detail::join_child> children;
    children.reserve(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i)
        children.push_back(detail::run_child(std::move(tasks[i]), outcomes[i], i, nullptr, nullptr));
    detail::join_state state{};
    co_await detail::join_awaiter{children, state};
    std::vector<detail::outcome_value<T>> results;
    results.reserve(outcomes.size());
    for (auto& o : outcomes) results.push_back(o.get());
    co_return results;
}

/// The same for tasks of different types: → std::tuple of their results.
template <class... Ts>
task<std::tuple<detail::outcome_value<Ts>...>> when_all(task<Ts>... tasks) {
    std::tuple<detail::outcome<Ts>...> outcomes;
    std::vector<detail::join_child> children;
    children.reserve(sizeof...(Ts));
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (children.push_back(detail::run_child(std::move(tasks), std::get<I>(outcomes), I, nullptr, nullptr)), ...);
    }
    (std::index_sequence_for<Ts...>{});
    detail::join_state state{};
    co_await detail::join_awaiter{children, state};
    co_return std::apply([](auto&... o) { return std::tuple<detail::outcome_value<Ts>...>(o.get()...); }, outcomes);
}

/// What when_any gives: which task finished first, and its result.
template <class T>
struct any_result {
    std::size_t index;
    detail::outcome_value<T> value;
};

/// Runs the tasks concurrently; when the first finishes, the others are
/// cancelled through their stop token (their waiting operations fail with
/// operation_canceled) and awaited, then the winner's result is returned or
/// its exception rethrown. The caller's own stop token cancels all of them.
/// An empty list is an std::invalid_argument.
template <class T>
task<any_result<T>> when_any(std::vector<task<T>> tasks) {
    if (tasks.empty()) throw std::invalid_argument("when_any: no tasks");
    detail::linked_stop_source first(co_await detail::current_stop_token{});

    std::vector<detail::outcome<T>> outcomes(tasks.size());
    std::optional<std::size_t> winner;
    std::vector<detail::join_child> children;
    children.reserve(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i)
        children.push_back(
            detail::run_child(std::move(tasks[i]).with_stop_token(first.get_token()), outcomes[i], i, &first, &winner));
    detail::join_state state{};
    co_await detail::join_awaiter{children, state};
    co_return any_result<T>{*winner, outcomes[*winner].get()};
}

} // namespace cosock
