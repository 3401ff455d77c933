// The scheduler's timers: a binary min-heap of nodes that live in awaiters.
// Each node knows its index, so removing a timer that did not fire (the
// operation finished first) is O(log n) and nothing is ever allocated per timer
// beyond the heap's own vector.
#pragma once

#include <chrono>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace cosock::detail {

using clock = std::chrono::steady_clock;

/// now + d, saturated: a time too far for the clock is a time that never comes.
inline clock::time_point after(clock::duration d) noexcept {
    clock::time_point now = clock::now();
    if (d <= clock::duration::zero()) return now;
    return d >= clock::time_point::max() - now ? clock::time_point::max() : now + d;
}

/// `d` on the loop's clock, rounded up to its tick: zero or negative is zero,
/// beyond about 30 years the longest the clock can wait (never, in
/// practice). A NaN duration is an std::invalid_argument naming `what`.
template <class Rep, class Period>
clock::duration delay_of(std::chrono::duration<Rep, Period> d, const char* what) {
    long double seconds = std::chrono::duration<long double>(d).count(); // no overflow, whatever d
    if (seconds != seconds) throw std::invalid_argument(std::string(what) + ": the duration is NaN");
    if (seconds <= 0) return clock::duration::zero();
    if (seconds >= 1e9L) return clock::duration::max();
    return std::chrono::ceil<clock::duration>(d);
}

/// The deadline `d` from now (see delay_of).
template <class Rep, class Period>
clock::time_point deadline_after(std::chrono::duration<Rep, Period> d, const char* what) {
    return after(delay_of(d, what));
}

struct timer_node {
    static constexpr std::size_t npos = std::size_t(-1);
    clock::time_point when{};
    std::size_t index = npos;
    void (*fire)(timer_node&) noexcept = nullptr; // runs on the loop thread when due
    bool armed() const noexcept { return index != npos; }
};

class timer_heap {
  public:
    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }
    timer_node* top() const noexcept { return heap_.empty() ? nullptr : heap_.front(); }

    void push(timer_node& t) {
        heap_.push_back(&t);
        t.index = heap_.size() - 1;
        up(t.index);
    }

    /// Forgets every timer, each left disarmed (its owner finds nothing to
    /// cancel).
    void clear() noexcept {
        for (timer_node* t : heap_) t->index = timer_node::npos;
        heap_.clear();
    }

    void erase(timer_node& t) noexcept {
        std::size_t i = t.index;
        t.index = timer_node::npos;
        timer_node* last = heap_.back();
        heap_.pop_back();
        if (i == heap_.size()) return;
        heap_[i] = last;
        last->index = i;
        up(i);
        down(last->index);
    }

  private:
    void place(std::size_t i, timer_node* t) noexcept {
        heap_[i] = t;
        t->index = i;
    }
    void up(std::size_t i) noexcept {
        timer_node* t = heap_[i];
        while (i > 0 && t->when < heap_[(i - 1) / 2]->when) {
            place(i, heap_[(i - 1) / 2]);
            i = (i - 1) / 2;
        }
        place(i, t);
    }
    void down(std::size_t i) noexcept {
        timer_node* t = heap_[i];
        for (;;) {
            std::size_t c = 2 * i + 1;
            if (c >= heap_.size()) break;
            if (c + 1 < heap_.size() && heap_[c + 1]->when < heap_[c]->when) ++c;
            if (!(heap_[c]->when < t->when)) break;
            place(i, heap_[c]);
            i = c;
        }
        place(i, t);
    }

    std::vector<timer_node*> heap_;
};

} // namespace cosock::detail
