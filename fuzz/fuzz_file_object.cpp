// Fuzz target: the file_object reader. The input chooses binary or text mode,
// a newline value, a buffering size, the bytes on the wire, how they are cut
// into chunks on the way, and a sequence of reads. Every read is checked
// against a plain model of Python's rules; any difference aborts.
#include <cosock/file_object.hpp>
#include <cosock/scheduler.hpp>
#include <cosock/socket.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

[[noreturn]] void mismatch(const char* what, std::size_t at) {
    std::fprintf(stderr, "file_object fuzz: %s at offset %zu\n", what, at);
    std::abort();
}

// Python's universal newlines: "\r\n" and "\r" become "\n".
std::string translate_newlines(std::string_view in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        out += in[i] == '\r' ? '\n' : in[i];
        if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] == '\n') ++i;
    }
    return out;
}

// The length of the line starting at `at`: up to and including its end.
std::size_t line_length(std::string_view text, std::size_t at, std::optional<std::string_view> newline) {
    for (std::size_t i = at; i < text.size(); ++i) {
        bool next_lf = i + 1 < text.size() && text[i + 1] == '\n';
        if (!newline || newline->empty()) {
            if (text[i] == '\n') return i + 1 - at;
            if (text[i] == '\r') return i + (next_lf ? 2 : 1) - at;
        } else if (*newline == "\r\n") {
            if (text[i] == '\r' && next_lf) return i + 2 - at;
        } else if (text[i] == (*newline)[0]) {
            return i + 1 - at;
        }
    }
    return text.size() - at;
}

cosock::task<> send_chunks(cosock::socket out, std::string data, std::vector<std::size_t> cuts) {
    std::size_t at = 0;
    for (std::size_t n : cuts) {
        if (at >= data.size()) break;
        n = std::min(n, data.size() - at);
        co_await out.sendall(std::string_view(data).substr(at, n));
        at += n;
        co_await cosock::scheduler::current()->yield(); // the reader sees this chunk alone
    }
    if (at < data.size()) co_await out.sendall(std::string_view(data).substr(at));
} // `out` closes: the reader sees the end of the stream

struct step {
    int kind;
    std::ptrdiff_t n;
};

cosock::task<> read_all(cosock::file_object f, std::string expect, bool binary,
                        std::optional<std::string_view> newline, std::vector<step> steps) {
    std::size_t at = 0;
    auto take = [&](const std::string& got) {
        if (expect.compare(at, got.size(), got) != 0 || got.size() > expect.size() - at) mismatch("wrong bytes", at);
        at += got.size();
    };
    for (step s : steps) {
        std::size_t left = expect.size() - at;
        switch (s.kind) {
        case 0: { // read(n)
            std::string got = co_await f.read(s.n);
            if (got.size() != (s.n < 0 ? left : std::min(left, std::size_t(s.n)))) mismatch("read(n) length", at);
            take(got);
            break;
        }
        case 1: { // readline(n)
            std::string got = co_await f.readline(s.n);
            std::size_t want = line_length(expect, at, binary ? std::optional<std::string_view>("\n") : newline);
            if (s.n >= 0) want = std::min(want, std::size_t(s.n));
            if (got.size() != want) mismatch("readline length", at);
            take(got);
            break;
        }
        case 2: { // read1(n)
            std::string got = co_await f.read1(s.n);
            if (got.empty() && left > 0 && s.n != 0) mismatch("read1 empty before the end", at);
            if (s.n >= 0 && got.size() > std::size_t(s.n)) mismatch("read1 too long", at);
            take(got);
            break;
        }
        case 3: { // peek(n): a prefix of what is left, consuming nothing
            if (!binary) break;
            std::string got = co_await f.peek(s.n < 0 ? 0 : s.n);
            if (got.empty() && left > 0) mismatch("peek empty before the end", at);
            if (expect.compare(at, std::min(got.size(), left), got) != 0 || got.size() > left)
                mismatch("peek bytes", at);
            break;
        }
        default: { // readinto
            if (!binary) break;
            std::string buf(std::size_t(s.n < 0 ? 1 : s.n), '\0');
            std::size_t got = co_await f.readinto(buf);
            if (got == 0 && left > 0 && !buf.empty()) mismatch("readinto empty before the end", at);
            buf.resize(got);
            take(buf);
        }
        }
    }
    take(co_await f.read());
    if (at != expect.size()) mismatch("read() stopped before the end", at);
    if (!(co_await f.read()).empty()) mismatch("bytes after the end", at);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static cosock::scheduler sched{cosock::backend::poll};
    FuzzedDataProvider in(data, size);
    const bool binary = in.ConsumeBool();
    const std::optional<std::string_view> newlines[] = {std::nullopt, "", "\n", "\r", "\r\n"};
    std::optional<std::string_view> newline = binary ? std::nullopt : newlines[in.ConsumeIntegralInRange(0, 4)];
    const int bufferings[] = {0, -1, 1, 2, 3, 7, 64, 4096}; // 0: unbuffered, binary only
    int buffering = bufferings[in.ConsumeIntegralInRange(binary ? 0 : 1, 7)];
    std::vector<std::size_t> cuts(in.ConsumeIntegralInRange(0, 32));
    for (auto& c : cuts) c = in.ConsumeIntegralInRange<std::size_t>(1, 300);
    std::vector<step> steps(in.ConsumeIntegralInRange(0, 64));
    for (auto& s : steps) s = {in.ConsumeIntegralInRange(0, 4), in.ConsumeIntegralInRange<std::ptrdiff_t>(-1, 40)};
    std::string wire = in.ConsumeRemainingBytesAsString();

    auto [a, b] = cosock::socketpair(sched);
    std::string expect = binary || newline ? wire : translate_newlines(wire);
    sched.spawn(send_chunks(std::move(a), wire, std::move(cuts)));
    sched.run(read_all(b.makefile(binary ? "rb" : "r", buffering, {.newline = newline}), std::move(expect), binary,
                       newline, std::move(steps)));
    sched.run(); // the writer's last steps
    return 0;
}
