#include "backends.hpp"

#include <memory>
#include <stdexcept>

using cosock::task;

namespace {

task<int> answer() { co_return 42; }
task<> nothing() { co_return; }
task<int&> ref_to(int& x) { co_return x; }
task<std::unique_ptr<int>> boxed(int v) { co_return std::make_unique<int>(v); }
task<int> fails() {
    throw std::runtime_error("boom");
    co_return 0;
}

task<long> sum_sequential(long n) {
    long total = 0;
    for (long i = 0; i < n; ++i) total += co_await answer();
    co_return total;
}

task<long> nested(long depth) {
    if (depth == 0) co_return 0;
    co_return 1 + co_await nested(depth - 1);
}

struct counted {
    int* alive;
    explicit counted(int* a) : alive(a) { ++*alive; }
    counted(counted&& o) noexcept : alive(o.alive) { ++*alive; }
    ~counted() { --*alive; }
};

task<> holds(counted) { co_return; }

} // namespace

BACKEND_TEST("a task is lazy: its body runs only when awaited") {
    cosock::scheduler s{B::value};
    bool ran = false;
    auto body = [&]() -> task<> {
        ran = true;
        co_return;
    };
    s.run([&]() -> task<> {
        task<> t = body();
        CHECK_FALSE(ran);
        co_await std::move(t);
        CHECK(ran);
    }());
}

BACKEND_TEST("a task returns values, references, move-only values and void") {
    cosock::scheduler s{B::value};
    int x = 7;
    CHECK(s.run(answer()) == 42);
    int& r = s.run(ref_to(x));
    CHECK(&r == &x);
    CHECK(*s.run(boxed(5)) == 5);
    s.run(nothing());
}

BACKEND_TEST("an exception in a task reaches its awaiter and run()") {
    cosock::scheduler s{B::value};
    CHECK_THROWS_WITH_AS(s.run(fails()), "boom", std::runtime_error);
    bool caught = s.run([]() -> task<bool> {
        try {
            co_await fails();
        } catch (const std::runtime_error&) {
            co_return true;
        }
        co_return false;
    }());
    CHECK(caught);
}

BACKEND_TEST("a million sequential awaits of completed tasks do not grow the stack") {
    cosock::scheduler s{B::value};
    CHECK(s.run(sum_sequential(1'000'000)) == 42'000'000L);
}

BACKEND_TEST("a chain of 5000 nested awaits returns through every level") {
    cosock::scheduler s{B::value};
    CHECK(s.run(nested(5000)) == 5000);
}

BACKEND_TEST("awaiting an empty task or a task twice is a logic_error") {
    cosock::scheduler s{B::value};
    s.run([]() -> task<> {
        task<int> empty;
        CHECK_THROWS_AS(co_await empty, std::logic_error);
        task<int> t = answer();
        CHECK(co_await t == 42);
        CHECK_THROWS_AS(co_await t, std::logic_error);
    }());
    CHECK_THROWS_AS(s.run(task<int>{}), std::logic_error);
}

TEST_CASE("destroying a task that never ran destroys its frame and arguments") {
    int alive = 0;
    {
        task<> t = holds(counted(&alive));
        CHECK(alive == 1);
    }
    CHECK(alive == 0);
}

TEST_CASE("a task is move-only and moving transfers the frame") {
    static_assert(!std::is_copy_constructible_v<task<int>>);
    static_assert(std::is_nothrow_move_constructible_v<task<int>>);
    task<int> a = answer();
    task<int> b = std::move(a);
    CHECK_FALSE(a.valid());
    CHECK(b.valid());
    a = std::move(b);
    CHECK(a.valid());
}
