// Descriptors cosock does not own that operations wait on: raw numbers given
// to select(). The user may close one behind cosock's back, or close it and
// open another file under the same number; an epoll set silently forgets a
// closed descriptor, and an io_uring poll keeps the closed file alive. Each
// entry remembers which file it was (device and inode), so a backend can
// check, once before it blocks, which of them are gone, and end their ops.
// Used by every backend, from its arm, wait and op-removal paths.
#pragma once

#include <vector>

#include <cosock/detail/sys.hpp>

namespace cosock::detail {

class foreign_fds {
  public:
    bool empty() const noexcept { return list_.empty(); }

    /// One more op waits on `fd`. May throw (allocation) before recording.
    void add(int fd) {
        for (entry& e : list_)
            if (e.fd == fd) {
                ++e.ops;
                return;
            }
        gone_.reserve(list_.size() + 1);
        sys::file_identity id;
        (void)sys::identify(fd, id); // a bad descriptor fails the op's own registration
        list_.push_back({fd, id, 1});
    }

    /// One op fewer waits on `fd`.
    void remove(int fd) noexcept {
        for (entry& e : list_)
            if (e.fd == fd) {
                if (--e.ops == 0) {
                    e = list_.back();
                    list_.pop_back();
                }
                return;
            }
    }

    /// Calls `f(fd)` for each descriptor closed, or closed and reopened as
    /// another file, since it was added; `f` ends its ops (removing them).
    template <class F>
    void for_each_gone(F f) {
        gone_.clear();
        for (const entry& e : list_) {
            sys::file_identity id;
            if (!sys::identify(e.fd, id) || !(id == e.id)) gone_.push_back(e.fd);
        }
        for (int fd : gone_) f(fd);
    }

  private:
    struct entry {
        int fd;
        sys::file_identity id;
        unsigned ops;
    };
    std::vector<entry> list_;
    std::vector<int> gone_; // for_each_gone's, kept to spare an allocation per wait
};

} // namespace cosock::detail
