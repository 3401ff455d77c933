// Runs the example programs from the tests: start one with its stdout on a
// pipe, read the lines it prints (bounded by a generous deadline, never by a
// sleep), and stop it when the test is done.
#pragma once

#include <cosock/scheduler.hpp>
#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <linux/close_range.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#ifndef COSOCK_EXAMPLES_DIR
#define COSOCK_EXAMPLES_DIR ""
#endif

/// The path of a built example, or "" when the examples were not built.
inline std::string example_path(const std::string& name) {
    std::string dir = COSOCK_EXAMPLES_DIR;
    if (dir.empty()) return {};
    std::string p = dir + "/" + name;
    return ::access(p.c_str(), X_OK) == 0 ? p : std::string{};
}

/// The backend's name, as --backend takes it.
inline std::string backend_name(cosock::backend b) { return std::string(cosock::to_string(b)); }

/// The example's path; the caller returns at once (the test is skipped, loudly)
/// when the examples were not built.
inline std::string need_example(const char* name) {
    std::string p = example_path(name);
    if (p.empty()) MESSAGE("SKIPPED: example '" << name << "' not built (meson -Dexamples=false)");
    return p;
}

/// True when `program` is found on PATH (e.g. curl).
inline bool on_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::string all = path ? path : "/usr/bin:/bin";
    for (std::size_t start = 0; start <= all.size();) {
        std::size_t end = all.find(':', start);
        if (end == std::string::npos) end = all.size();
        std::string candidate = all.substr(start, end - start) + "/" + program;
        if (::access(candidate.c_str(), X_OK) == 0) return true;
        start = end + 1;
    }
    return false;
}

/// True when `program` is on PATH. Otherwise the caller skips the part that
/// needs it, and this says so loudly, naming the Debian package to install;
/// under CI=true a missing program fails the test instead, since a check CI is
/// meant to run must not vanish silently (scripts/deps.sh installs it).
inline bool need_program(const std::string& program, const std::string& package) {
    if (on_path(program)) return true;
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true")
        FAIL_CHECK(program << " is not on PATH, and CI=true: install " << package << " (scripts/deps.sh does)");
    else
        MESSAGE("SKIPPED: " << program << " is not on PATH (apt-get install " << package << ")");
    return false;
}

/// What a child is given besides its arguments, for tests of descriptor limits.
struct child_setup {
    /// When > 0, its RLIMIT_NOFILE soft limit: it runs out of descriptors there.
    rlim_t max_descriptors = 0;
    /// When > 3, descriptors 3 to this − 1 are already open (on /dev/null), so
    /// the program's own descriptors start here.
    int first_free_descriptor = 0;
};

class child_process {
public:
    /// Starts argv[0] (a path) with its stdout (and stderr, when `merge_stderr`) on a pipe.
    explicit child_process(std::vector<std::string> argv, bool merge_stderr = false, child_setup setup = {}) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe2");
        pid_ = ::fork();
        if (pid_ < 0) throw std::system_error(errno, std::generic_category(), "fork");
        if (pid_ == 0) {
            ::dup2(fds[1], 1);
            if (merge_stderr) ::dup2(fds[1], 2);
            // The program gets stdin, stdout and stderr, and nothing else a
            // test happened to leave open without close-on-exec.
            ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
            if (setup.first_free_descriptor > 3) {
                int null = ::open("/dev/null", O_RDONLY); // no O_CLOEXEC: the copies must outlive exec
                for (int fd = 3; fd < setup.first_free_descriptor; ++fd)
                    if (fd != null) ::dup2(null, fd);
                if (null >= setup.first_free_descriptor) ::close(null);
            }
            if (setup.max_descriptors > 0) {
                rlimit lim{};
                ::getrlimit(RLIMIT_NOFILE, &lim);
                lim.rlim_cur = setup.max_descriptors;
                if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) ::_exit(126);
            }
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(fds[1]);
        out_ = fds[0];
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() {
        if (pid_ > 0 && !status_) {
            ::kill(pid_, SIGKILL);
            int st;
            ::waitpid(pid_, &st, 0);
        }
        if (out_ >= 0) ::close(out_);
    }

    /// The next line of output without its newline; nullopt at end of output.
    /// Fails the test if nothing arrives within `limit`.
    std::optional<std::string> read_line(std::chrono::seconds limit = std::chrono::seconds(30)) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        for (;;) {
            if (auto nl = buffered_.find('\n'); nl != std::string::npos) {
                std::string line = buffered_.substr(0, nl);
                buffered_.erase(0, nl + 1);
                return line;
            }
            if (eof_) {
                if (buffered_.empty()) return std::nullopt;
                return std::exchange(buffered_, {});
            }
            fill(deadline);
        }
    }

    /// Everything the program prints until it exits (bounded by `limit`).
    std::string read_all(std::chrono::seconds limit = std::chrono::seconds(60)) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (!eof_) fill(deadline);
        return std::exchange(buffered_, {});
    }

    /// Waits for the program to exit (bounded by `limit`) and returns its
    /// exit status, or 128 + signal number when a signal ended it.
    int wait(std::chrono::seconds limit = std::chrono::seconds(60)) {
        if (status_) return *status_;
        auto deadline = std::chrono::steady_clock::now() + limit;
        // A pidfd says when the child exits; where there is none (valgrind does
        // not know the call) the loop looks again every 50 ms.
        int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
        for (;;) {
            int st = 0;
            if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                if (pidfd >= 0) ::close(pidfd);
                status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                return *status_;
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                if (pidfd >= 0) ::close(pidfd);
                FAIL("program " << pid_ << " did not exit in time");
                return -1;
            }
            // Drain output meanwhile, so a chatty program cannot block on a full pipe.
            pollfd p[2] = {{pidfd, POLLIN, 0}, {eof_ ? -1 : out_, POLLIN, 0}};
            ::poll(p, 2, pidfd >= 0 ? static_cast<int>(left.count()) : 50);
            if (p[1].revents) read_some();
        }
    }

    /// Sends SIGTERM and returns the exit status as wait() does.
    int stop() {
        if (!status_) ::kill(pid_, SIGTERM);
        return wait();
    }

    pid_t pid() const { return pid_; }

private:
    void fill(std::chrono::steady_clock::time_point deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{out_, POLLIN, 0};
        int r = ::poll(&p, 1, left.count() > 0 ? static_cast<int>(left.count()) : 0);
        if (r == 0) {
            FAIL("no output from program " << pid_ << " in time; so far: " << buffered_);
            eof_ = true;
            return;
        }
        read_some();
    }

    void read_some() {
        char buf[4096];
        ssize_t n = ::read(out_, buf, sizeof buf);
        if (n <= 0) eof_ = true;
        else buffered_.append(buf, static_cast<std::size_t>(n));
    }

    pid_t pid_ = -1;
    int out_ = -1;
    bool eof_ = false;
    std::string buffered_;
    std::optional<int> status_;
};

/// The port in a line such as "listening on 127.0.0.1:40123 (epoll)": the
/// digits after the last ':' before the first space that follows it.
inline int port_in(const std::string& line) {
    auto on = line.find(" on ");
    if (on == std::string::npos) return -1;
    auto end = line.find(' ', on + 4);
    std::string where = line.substr(on + 4, end == std::string::npos ? std::string::npos : end - on - 4);
    auto colon = where.rfind(':');
    if (colon == std::string::npos) return -1;
    return std::atoi(where.c_str() + colon + 1);
}
