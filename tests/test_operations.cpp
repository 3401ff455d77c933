// Operation values: what a socket's methods return is the operation made but
// not started. It can be kept, moved and handed to with_timeout before it is
// awaited, and the socket it came from can move meanwhile.
#include "backends.hpp"

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using cosock::task;
using namespace std::chrono_literals;

BACKEND_TEST("an operation kept in a variable under with_timeout runs after the statement that made it") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    s.run([&]() -> task<> {
        std::array<char, 8> buf;
        // Nothing to read: the deadline ends it.
        auto quiet = cosock::with_timeout(b.recv(buf), 20ms);
        CHECK_THROWS_AS(co_await std::move(quiet), cosock::timeout_error);
        // Data sent after the operation was made, before it was awaited.
        auto later = cosock::with_timeout(b.recv(buf), 5s);
        co_await a.sendall(std::string_view("hello"));
        CHECK(co_await std::move(later) == 5);
        CHECK(std::string_view(buf.data(), 5) == "hello");
    }());
}

BACKEND_TEST("operations are values: moved, stored, awaited in any order, each runs when awaited") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    s.run([&]() -> task<> {
        std::array<char, 4> one, two;
        std::vector<cosock::recv_operation> reads;
        reads.push_back(b.recv(one));
        reads.push_back(b.recv(two));
        auto send = a.sendall(std::string_view("abcd"));
        CHECK(co_await std::move(send) == 4);
        CHECK(co_await std::move(reads[0]) == 4);
        CHECK(std::string_view(one.data(), 4) == "abcd");
        co_await a.sendall(std::string_view("efgh"));
        auto again = std::move(reads[1]);
        CHECK(co_await again == 4); // an lvalue is awaited too
        CHECK(std::string_view(two.data(), 4) == "efgh");
    }());
}

BACKEND_TEST("an operation made before its socket moves runs on the moved socket's descriptor") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    s.run([&]() -> task<> {
        std::array<char, 8> buf;
        auto op = b.recv(buf);
        auto moved = std::make_unique<cosock::socket>(std::move(b)); // the old object is now closed
        co_await a.sendall(std::string_view("xy"));
        CHECK(co_await std::move(op) == 2);
        CHECK(moved->fileno() >= 0);
    }());
}

BACKEND_TEST("sleep_for is an operation too: kept, given to with_timeout, awaited later") {
    cosock::scheduler s{B::value};
    s.run([&]() -> task<> {
        auto nap = cosock::sleep_for(1ms);
        auto bounded = cosock::with_timeout(cosock::sleep_for(10s), 10ms);
        co_await std::move(nap);
        CHECK_THROWS_AS(co_await std::move(bounded), cosock::timeout_error);
    }());
}

BACKEND_TEST("an operation on a closed socket is refused when it is made, naming it") {
    cosock::scheduler s{B::value};
    auto [a, b] = cosock::socketpair(s);
    b.close();
    std::array<char, 4> buf;
    CHECK_THROWS_WITH_AS((void)b.recv(buf), doctest::Contains("recv"), std::system_error);
    CHECK_THROWS_WITH_AS((void)b.sendall(std::string_view("x")), doctest::Contains("sendall"), std::system_error);
}

BACKEND_TEST("a stored sleep_for counts from each await, not from when it was made") {
    cosock::scheduler s{B::value};
    s.run([&]() -> task<> {
        auto nap = cosock::sleep_for(20ms);
        co_await cosock::sleep_for(30ms); // longer than the nap: it has not started yet
        auto start = std::chrono::steady_clock::now();
        co_await nap;
        co_await nap; // again: it sleeps again
        CHECK(std::chrono::steady_clock::now() - start >= 40ms);
    }());
}

BACKEND_TEST("an operation awaited on a scheduler other than its own is a logic_error, even once its own is gone") {
    std::array<char, 4> buf;
    std::optional<cosock::scheduler> first(std::in_place, B::value);
    auto [a, b] = cosock::socketpair(*first);
    auto op = b.recv(buf);
    auto nap = first->run(
        [&]() -> task<cosock::operation<cosock::detail::sleep_awaiter>> { co_return cosock::sleep_for(1ms); }());
    cosock::scheduler second{B::value};
    auto await_it = [](auto& o) -> task<> { co_await o; };
    CHECK_THROWS_WITH_AS(second.run(await_it(op)), doctest::Contains("outside the scheduler"), std::logic_error);
    CHECK_THROWS_WITH_AS(second.run(await_it(nap)), doctest::Contains("outside the scheduler"), std::logic_error);
    first.reset(); // the socket outlives it; the stored operation refers to it
    CHECK_THROWS_AS(second.run(await_it(op)), std::logic_error);
}

BACKEND_TEST("a task kept by the user, waiting when its scheduler is destroyed, can be destroyed afterwards") {
    for (bool with_deadline : {false, true}) {
        INFO("with_timeout: ", with_deadline);
        std::array<char, 16> buf{};
        std::optional<task<std::size_t>> kept;
        std::optional<cosock::socket> keep;
        {
            cosock::scheduler s{B::value};
            auto [x, y] = cosock::socketpair(s);
            auto read = [](cosock::socket& x, std::array<char, 16>& b) -> task<std::size_t> {
                co_return co_await x.recv(b);
            };
            if (with_deadline)
                kept.emplace(cosock::with_timeout(x.recv(buf), 5s));
            else
                kept.emplace(read(x, buf));
            auto waiter = [](task<std::size_t>& t) -> task<> {
                try {
                    (void)co_await std::move(t);
                } catch (...) {
                }
            };
            s.spawn(waiter(*kept));
            s.run([]() -> task<> { co_await cosock::sleep_for(5ms); }());
            keep.emplace(std::move(x));
        }
        kept.reset(); // under ASan: nothing of the scheduler is touched
        CHECK(keep->fileno() >= 0);
    }
}
