// cosock::channel: FIFO, backpressure, close, cancellation and hand-over of
// reservations, on one scheduler and across threads.
#include "alloc_count.hpp"
#include "backends.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using cosock::task;

BACKEND_TEST("channel: values arrive in order, and a full channel makes the sender wait") {
    cosock::scheduler s{B::value};
    cosock::channel<int> ch(4);
    std::vector<int> got;
    std::size_t most_held = 0;
    auto producer = [&]() -> task<> {
        for (int i = 0; i < 1000; ++i) {
            co_await ch.send(i);
            most_held = std::max(most_held, ch.size());
        }
        ch.close();
    };
    auto consumer = [&]() -> task<> {
        co_await cosock::sleep_for(1ms); // the producer fills the channel and waits
        CHECK(ch.size() == 4);
        while (std::optional<int> v = co_await ch.receive()) got.push_back(*v);
    };
    s.spawn(producer());
    s.run(consumer());
    REQUIRE(got.size() == 1000);
    for (int i = 0; i < 1000; ++i) CHECK(got[std::size_t(i)] == i);
    CHECK(most_held <= 4);
}

BACKEND_TEST("channel: several threads send and receive; every value arrives once, each sender's in order") {
    constexpr int senders = 3, per_sender = 20000;
    cosock::channel<std::pair<int, int>> ch(16);
    std::mutex m;
    std::map<int, std::vector<int>> seen; // sender -> values in the order received, per receiver merged below
    std::atomic<int> senders_done{0};
    cosock::scheduler_group g(senders + 2, {.which = B::value});
    g.run([&](cosock::scheduler&, std::size_t i) -> task<> {
        if (i < senders) {
            for (int k = 0; k < per_sender; ++k) co_await ch.send({int(i), k});
            if (++senders_done == senders) ch.close();
            co_return;
        }
        std::map<int, std::vector<int>> mine;
        while (auto v = co_await ch.receive()) mine[v->first].push_back(v->second);
        std::lock_guard lock(m);
        for (auto& [from, values] : mine) {
            // One receiver's share of one sender's values keeps that sender's order.
            CHECK(std::is_sorted(values.begin(), values.end()));
            seen[from].insert(seen[from].end(), values.begin(), values.end());
        }
    });
    REQUIRE(seen.size() == std::size_t(senders));
    for (auto& [from, values] : seen) {
        std::sort(values.begin(), values.end());
        REQUIRE(values.size() == std::size_t(per_sender));
        for (int k = 0; k < per_sender; ++k) CHECK(values[std::size_t(k)] == k);
    }
}

BACKEND_TEST(
    "channel: close wakes waiting receivers with nullopt after what is left, and waiting senders with channel_closed") {
    cosock::scheduler s{B::value};
    cosock::channel<std::string> ch(1);
    int ended_receivers = 0, refused_senders = 0;
    auto receiver = [&]() -> task<> {
        auto v = co_await ch.receive();
        CHECK(!v);
        ++ended_receivers;
    };
    auto main = [&]() -> task<> {
        s.spawn(receiver());
        s.spawn(receiver());
        co_await s.yield();
        ch.close();
        co_await s.yield();
        CHECK(ended_receivers == 2);
        cosock::channel<std::string> full(1);
        CHECK(full.try_send(*std::make_unique<std::string>("kept")));
        std::string second = "second";
        CHECK(!full.try_send(second));
        CHECK(second == "second"); // not moved from when refused
        CHECK(ch.closed());
        CHECK_THROWS_AS(co_await ch.send("late"), cosock::channel_closed);
    };
    s.run(main());
    // senders waiting on a full channel that closes
    cosock::channel<std::string> c2(1);
    auto main2 = [&]() -> task<> {
        co_await c2.send("first");
        auto blocked = [&](std::string w) -> task<> {
            try {
                co_await c2.send(std::move(w));
            } catch (const cosock::channel_closed&) {
                ++refused_senders;
            }
        };
        s.spawn(blocked("a"));
        s.spawn(blocked("b"));
        co_await s.yield();
        c2.close();
        co_await s.yield();
        auto v = co_await c2.receive(); // what was in before the close is still there
        CHECK(v == std::optional<std::string>("first"));
        CHECK(!(co_await c2.receive()));
    };
    s.run(main2());
    CHECK(refused_senders == 2);
}

BACKEND_TEST(
    "channel: a stop request or with_timeout ends a waiting send or receive and leaves the channel as it was") {
    cosock::scheduler s{B::value};
    cosock::channel<int> ch(1);
    auto main = [&]() -> task<> {
        CHECK_THROWS_AS(co_await cosock::with_timeout(ch.receive(), 5ms), cosock::timeout_error);
        co_await ch.send(1);
        CHECK_THROWS_AS(co_await cosock::with_timeout(ch.send(2), 5ms), cosock::timeout_error);
        std::stop_source stop;
        auto waiting = [&]() -> task<> { co_await ch.send(3); };
        bool cancelled = false;
        auto watch = [&]() -> task<> {
            try {
                co_await waiting().with_stop_token(stop.get_token());
            } catch (const cosock::cancelled_error&) {
                cancelled = true;
            }
        };
        s.spawn(watch());
        co_await s.yield();
        stop.request_stop();
        co_await s.yield();
        CHECK(cancelled);
        CHECK(ch.size() == 1);
        CHECK(co_await ch.receive() == std::optional<int>(1));
        CHECK(ch.size() == 0);
    };
    s.run(main());
}

BACKEND_TEST("channel: a receiver woken but destroyed before it ran hands its value to the next receiver") {
    cosock::channel<int> ch(4);
    std::atomic<int> waiting{0};
    int got_by_survivor = 0;
    {
        cosock::scheduler s{B::value};
        auto receiver = [&]() -> task<> {
            ++waiting;
            auto v = co_await ch.receive();
            FAIL("a receiver destroyed before it ran received " << v.value_or(-1));
        };
        s.spawn(receiver());
        s.spawn(receiver());
        auto wait_both = [&]() -> task<> {
            while (waiting.load() < 2) co_await s.yield();
        };
        s.run(wait_both());
        // From another thread: the first receiver is granted the value and
        // posted to s, which never runs again; both frames go with s.
        std::thread([&] { CHECK(ch.try_send(*std::make_unique<int>(42))); }).join();
    }
    CHECK(ch.size() == 1); // nothing lost: the value went back for the next one
    cosock::scheduler s2{B::value};
    auto survivor = [&]() -> task<> { got_by_survivor = *(co_await ch.receive()); };
    s2.run(survivor());
    CHECK(got_by_survivor == 42);
}

BACKEND_TEST("channel: no allocation per message once warmed") {
    SKIP_UNLESS_ALLOCATIONS_COUNTED();
    cosock::scheduler s{B::value};
    cosock::channel<int> ch(8);
    std::size_t during = 0;
    auto producer = [&]() -> task<> {
        for (int i = 0; i < 10000; ++i) co_await ch.send(i);
        ch.close();
    };
    auto consumer = [&]() -> task<> {
        for (int i = 0; i < 100; ++i) co_await ch.receive(); // warm up
        std::size_t before = allocations_so_far();
        while (co_await ch.receive()) {
        }
        during = allocations_so_far() - before;
    };
    s.spawn(producer());
    s.run(consumer());
    CHECK(during == 0);
}

TEST_CASE("channel: bad input and misuse are refused, naming them") {
    CHECK_THROWS_WITH_AS(cosock::channel<int>(0), doctest::Contains("not 0"), std::invalid_argument);
    cosock::channel<int> ch(1);
    auto op = ch.receive();
    auto outside = [&] { (void)std::move(op).operator co_await(); };
    CHECK_THROWS_AS(outside(), std::logic_error); // no scheduler runs on this thread
}

BACKEND_TEST("channel: a receiver fed from a plain thread keeps its loop asleep until the value comes") {
    cosock::scheduler s{B::value};
    cosock::channel<int> ch(1);
    std::atomic<bool> receiving{false};
    std::thread feeder([&] {
        while (!receiving.load()) std::this_thread::yield();
        std::this_thread::sleep_for(20ms); // the loop goes to sleep meanwhile
        int v = 7;
        while (!ch.try_send(v)) std::this_thread::yield();
    });
    auto main = [&]() -> task<int> {
        receiving = true;
        co_return *(co_await ch.receive());
    };
    auto waits_before = s.stats().waits;
    CHECK(s.run(main()) == 7);
    feeder.join();
    CHECK(s.stats().waits - waits_before <= 4); // woken once, not polling
}

BACKEND_TEST("channel: a sender given a place before close but run after it is refused, so nothing is lost unseen") {
    cosock::scheduler s{B::value};
    cosock::channel<int> ch(1);
    std::string second;
    std::vector<int> got;
    auto sender = [&](int v, std::string& out) -> task<> {
        try {
            co_await ch.send(v);
            out = "sent";
        } catch (const cosock::channel_closed&) {
            out = "refused";
        }
    };
    std::string first;
    auto consumer = [&]() -> task<> {
        while (auto v = co_await ch.receive()) {
            got.push_back(*v);
            ch.close(); // the second sender was just given the place
        }
    };
    s.spawn(sender(1, first));
    s.spawn(sender(2, second));
    s.spawn(consumer());
    s.run();
    CHECK(got == std::vector<int>{1});
    CHECK(first == "sent");
    CHECK(second == "refused");
    CHECK(ch.size() == 0);
}
