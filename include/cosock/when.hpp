// Running tasks side by side, as asyncio.TaskGroup and asyncio.wait do, with
// structured concurrency: neither call returns before every task it started
// has ended, and each gives its tasks a stop token of its own, linked to the
// caller's, so stopping the caller (a stop request, with_timeout) stops them
// all.
//
// when_all waits for every task; the first one to fail stops the others (as a
// TaskGroup does), and that failure is rethrown. when_any returns when the
// first task ends and stops the others; whatever another task completed with
// before its stop reached it is reported too, never dropped.
#pragma once

#include <array>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <cosock/error.hpp>
#include <cosock/task.hpp>

namespace cosock {

namespace detail {

// Shared by the children of one when_all/when_any.
struct join_state {
    std::size_t pending = 0; // children running, plus one for the parent until it has started them
    std::coroutine_handle<> parent;
    linked_stop_source* stop = nullptr; // the children's
    bool stop_on_value = false;         // when_any: the first child to end stops the others
    bool stopped = false;               // a child ended that way: the rest need not start
    std::size_t ended = 0;              // children ended so far
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
            std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> child) noexcept {
                join_state& s = *child.promise().state;
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
    bool cancelled = false; // error is a cancelled_error
    std::size_t ended = 0;  // its place among its siblings' ends (1: first); 0: it never ran
    outcome_value<T> get() {
        if (error) std::rethrow_exception(error);
        return std::move(*value);
    }
};

template <class T>
join_child run_child(task<T> t, outcome<T>& out, join_state& st) {
    // A task that has a stop token of its own is stopped by either.
    std::optional<linked_stop_source> both;
    if (t.valid() && stop_token_of(t).stop_possible()) {
        both.emplace(st.stop->get_token(), stop_token_of(t));
        (void)std::move(t).with_stop_token(both->get_token());
    } else {
        (void)std::move(t).with_stop_token(st.stop->get_token());
    }
    try {
        if constexpr (std::is_void_v<T>) {
            co_await std::move(t);
            out.value.emplace();
        } else {
            out.value.emplace(co_await std::move(t));
        }
    } catch (const cancelled_error&) {
        out.error = std::current_exception();
        out.cancelled = true;
    } catch (...) {
        out.error = std::current_exception();
    }
    out.ended = ++st.ended;
    if (out.error || st.stop_on_value) {
        st.stopped = true;
        st.stop->request_stop();
    }
}

// Starts the children in order and suspends the parent until all that started
// have ended. Once one has stopped the others, the rest are not started.
struct join_awaiter {
    std::vector<join_child>& children;
    join_state& state;
    bool await_ready() const noexcept { return children.empty(); }
    bool await_suspend(std::coroutine_handle<> parent) noexcept {
        state.parent = parent;
        state.pending = 1;
        for (auto& c : children) {
            if (state.stopped) break;
            ++state.pending;
            c.h.promise().state = &state;
            c.h.resume(); // runs until it first waits (or ends)
        }
        return --state.pending != 0; // all ended already: do not suspend
    }
    void await_resume() const noexcept {}
};

// What when_all rethrows, from outcomes (each with error, cancelled and
// ended): the first failure to happen that is not a cancellation (the others
// were most likely caused by it), else the first cancellation. Null when every
// child completed.
template <class Range>
std::exception_ptr first_failure(const Range& outcomes) {
    const auto* pick = static_cast<const std::ranges::range_value_t<Range>*>(nullptr);
    for (const auto& o : outcomes)
        if (o.error &&
            (!pick || (pick->cancelled && !o.cancelled) || (pick->cancelled == o.cancelled && o.ended < pick->ended)))
            pick = &o;
    return pick ? pick->error : nullptr;
}

struct failure {
    std::exception_ptr error;
    bool cancelled;
    std::size_t ended;
};

} // namespace detail

/// Runs every task concurrently and returns their results in order (void
/// tasks give std::monostate). The first task to fail (throw) stops the others
/// through their stop token, and when they have all ended its exception is
/// rethrown (a failure other than cancellation is preferred, as the
/// cancellations it caused are not news). Stopping the caller stops every
/// task: the co_await then throws cancelled_error (timeout_error under
/// with_timeout), unless every task completed all the same.
template <class T>
task<std::vector<detail::outcome_value<T>>> when_all(std::vector<task<T>> tasks) {
    std::stop_token caller = co_await detail::current_stop_token{};
    detail::linked_stop_source stop(caller);
    std::vector<detail::outcome<T>> outcomes(tasks.size());
    detail::join_state state;
    state.stop = &stop;
    std::vector<detail::join_child> children;
    children.reserve(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i)
        children.push_back(detail::run_child(std::move(tasks[i]), outcomes[i], state));
    co_await detail::join_awaiter{children, state};
    if (std::exception_ptr e = detail::first_failure(outcomes)) std::rethrow_exception(e);
    std::vector<detail::outcome_value<T>> results;
    results.reserve(outcomes.size());
    for (auto& o : outcomes) results.push_back(o.get());
    co_return results;
}

/// The same for tasks of different types: → std::tuple of their results.
template <class... Ts>
task<std::tuple<detail::outcome_value<Ts>...>> when_all(task<Ts>... tasks) {
    std::stop_token caller = co_await detail::current_stop_token{};
    detail::linked_stop_source stop(caller);
    std::tuple<detail::outcome<Ts>...> outcomes;
    detail::join_state state;
    state.stop = &stop;
    std::vector<detail::join_child> children;
    children.reserve(sizeof...(Ts));
    [&]<std::size_t... I>(std::index_sequence<I...>) {
        (children.push_back(detail::run_child(std::move(tasks), std::get<I>(outcomes), state)), ...);
    }
    (std::index_sequence_for<Ts...>{});
    co_await detail::join_awaiter{children, state};
    auto failures = std::apply(
        [](auto&... o) {
            return std::array<detail::failure, sizeof...(Ts)>{{{o.error, o.cancelled, o.ended}...}};
        },
        outcomes);
    if (std::exception_ptr e = detail::first_failure(failures)) std::rethrow_exception(e);
    co_return std::apply([](auto&... o) { return std::tuple<detail::outcome_value<Ts>...>(o.get()...); }, outcomes);
}

/// What when_any gives: the task that ended first with a value, its value, and
/// any other task that also completed with a value before its stop reached it
/// (its bytes are not lost: as asyncio.wait can return several done tasks).
template <class T>
struct any_result {
    std::size_t index;
    detail::outcome_value<T> value;
    std::vector<std::pair<std::size_t, detail::outcome_value<T>>> others; // by index
};

/// Runs the tasks concurrently; when the first ends, the others are stopped
/// through their stop token (their waiting operations fail with
/// cancelled_error) and awaited. Returns the first task that ended with a
/// value, with every other value (any_result::others); when none did, rethrows
/// the exception of the first to end. Stopping the caller stops all of them.
/// An empty list is an std::invalid_argument.
template <class T>
task<any_result<T>> when_any(std::vector<task<T>> tasks) {
    if (tasks.empty()) throw std::invalid_argument("when_any: no tasks");
    std::stop_token caller = co_await detail::current_stop_token{};
    detail::linked_stop_source stop(caller);
    std::vector<detail::outcome<T>> outcomes(tasks.size());
    detail::join_state state;
    state.stop = &stop;
    state.stop_on_value = true;
    std::vector<detail::join_child> children;
    children.reserve(tasks.size());
    for (std::size_t i = 0; i < tasks.size(); ++i)
        children.push_back(detail::run_child(std::move(tasks[i]), outcomes[i], state));
    co_await detail::join_awaiter{children, state};

    std::optional<std::size_t> winner, first_ended;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        const auto& o = outcomes[i];
        if (o.ended == 0) continue;
        if (!first_ended || o.ended < outcomes[*first_ended].ended) first_ended = i;
        if (o.value && (!winner || o.ended < outcomes[*winner].ended)) winner = i;
    }
    if (!winner) std::rethrow_exception(outcomes[*first_ended].error);
    any_result<T> r{*winner, std::move(*outcomes[*winner].value), {}};
    for (std::size_t i = 0; i < outcomes.size(); ++i)
        if (i != *winner && outcomes[i].value) r.others.emplace_back(i, std::move(*outcomes[i].value));
    co_return r;
}

namespace detail {

// Task I of a variadic when_any, its value made alternative I of `V` (a void
// task's is std::monostate), so that the tasks can share one vector.
template <std::size_t I, class V, class T>
task<V> as_alternative(task<T> t) {
    if constexpr (std::is_void_v<T>) {
        co_await std::move(t);
        co_return V(std::in_place_index<I>);
    } else {
        T value = co_await std::move(t); // named (see GCC before 13 in task.hpp)
        co_return V(std::in_place_index<I>, std::move(value));
    }
}

} // namespace detail

/// `co_await when_any(a, b, ...)`: the same as the vector form, for tasks
/// given one by one. Tasks of one type give that type's any_result; tasks of
/// several give any_result<std::variant<...>> whose alternative i is task i's
/// value (std::monostate for a void task), so `value.index() == index`.
template <class T0, class... Ts>
auto when_any(task<T0> first, task<Ts>... rest) {
    if constexpr ((std::is_same_v<T0, Ts> && ...)) {
        std::vector<task<T0>> tasks;
        tasks.reserve(1 + sizeof...(Ts));
        tasks.push_back(std::move(first));
        (tasks.push_back(std::move(rest)), ...);
        return when_any(std::move(tasks));
    } else {
        using V = std::variant<detail::outcome_value<T0>, detail::outcome_value<Ts>...>;
        std::vector<task<V>> tasks;
        tasks.reserve(1 + sizeof...(Ts));
        tasks.push_back(detail::as_alternative<0, V>(std::move(first)));
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (tasks.push_back(detail::as_alternative<I + 1, V>(std::move(rest))), ...);
        }(std::index_sequence_for<Ts...>{});
        return when_any(std::move(tasks));
    }
}

} // namespace cosock
