// A doubly linked list whose nodes live inside the objects they link (awaiters,
// promises), so queueing and waiting never allocate. The list only holds head
// and tail, so it can be moved (e.g. inside a growing std::vector).
#pragma once

#include <cstddef>

namespace cosock::detail {

struct list_node {
    list_node* prev = nullptr;
    list_node* next = nullptr;
};

/// FIFO of T (which derives from list_node); a node is in at most one list.
template <class T>
class intrusive_list {
  public:
    bool empty() const noexcept { return head_ == nullptr; }
    std::size_t size() const noexcept { return size_; }
    T* front() const noexcept { return static_cast<T*>(head_); }
    static T* next(T& node) noexcept { return static_cast<T*>(node.next); }

    void push_back(T& item) noexcept {
        list_node& n = item;
        n.prev = tail_;
        n.next = nullptr;
        (tail_ ? tail_->next : head_) = &n;
        tail_ = &n;
        ++size_;
    }
    T* pop_front() noexcept {
        T* item = front();
        if (item) erase(*item);
        return item;
    }
    void erase(T& item) noexcept {
        list_node& n = item;
        (n.prev ? n.prev->next : head_) = n.next;
        (n.next ? n.next->prev : tail_) = n.prev;
        n.prev = n.next = nullptr;
        --size_;
    }

  private:
    list_node* head_ = nullptr;
    list_node* tail_ = nullptr;
    std::size_t size_ = 0;
};

} // namespace cosock::detail
