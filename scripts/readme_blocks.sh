#!/usr/bin/env bash
# README code blocks compile: each ```cpp block of README.md is a translation
# unit, checked with g++ -std=c++20 -fsyntax-only -Wall -Wextra -Werror -Iinclude
# (OpenSSL's headers found through pkg-config for the TLS blocks; nothing is
# linked). Diagnostics point at README.md's lines.
#
# A block is a complete program, or complete definitions with their includes:
# one without "int main(" gets an empty main appended. The line right before
# the opening ``` may say otherwise, sparingly:
#   <!-- compile: wrap-in-task -->  the block is a few statements: it becomes
#       the body (in a block of its own) of a coroutine
#           cosock::task<> f(cosock::scheduler& s, cosock::socket& sock, cosock::socket conn)
#       with std::array<char, 4096> buf, std::chrono_literals, and
#       cosock::task<> handle(cosock::socket) declared, after <cosock/cosock.hpp>.
#   <!-- compile: no -->  a deliberately partial snippet, not compiled (listed
#       as skipped).
# The compiles run in parallel, one per core. One line per failure; the last
# line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
readme=${1:-README.md}

cxx=${CXX:-g++}
flags=(-std=c++20 -fsyntax-only -Wall -Wextra -Werror -Iinclude)
if pkg-config --exists openssl 2>/dev/null; then flags+=($(pkg-config --cflags-only-I openssl)); fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Block N: $out/N.body (its lines), N.line (README line of its first line),
# N.mode (plain, wrap, no, or "bad: <the comment>"); N.open when unterminated.
awk -v out="$out" '
    !inside && /^```cpp[[:space:]]*$/ {
        inside = 1; n++
        mode = "plain"
        if (prev ~ /^<!-- *compile:/) {
            if (prev ~ /^<!-- *compile: *no *-->[[:space:]]*$/) mode = "no"
            else if (prev ~ /^<!-- *compile: *wrap-in-task *-->[[:space:]]*$/) mode = "wrap"
            else mode = "bad: " prev
        }
        print mode > (out "/" n ".mode"); close(out "/" n ".mode")
        print NR + 1 > (out "/" n ".line"); close(out "/" n ".line")
        printf "" > (out "/" n ".body")
        next
    }
    inside && /^```[[:space:]]*$/ { inside = 0; close(out "/" n ".body"); prev = $0; next }
    inside { print >> (out "/" n ".body"); next }
    { prev = $0 }
    END { if (inside) print "" > (out "/" n ".open") }
' "$readme"

blocks=$(find "$out" -name '*.mode' | wc -l)

# unit N: writes the translation unit of block N to $out/N.cpp.
unit() {
    local n=$1 line mode
    line=$(cat "$out/$n.line") mode=$(cat "$out/$n.mode")
    {
        if [ "$mode" = wrap ]; then
            cat <<'EOF'
#include <cosock/cosock.hpp>
#include <array>
#include <chrono>
#include <utility>
using namespace std::chrono_literals;
cosock::task<> handle(cosock::socket conn);
cosock::task<> readme_block([[maybe_unused]] cosock::scheduler& s, [[maybe_unused]] cosock::socket& sock,
                            [[maybe_unused]] cosock::socket conn) {
    [[maybe_unused]] std::array<char, 4096> buf{};
    {
EOF
        fi
        echo "#line $line \"$readme\""
        cat "$out/$n.body"
        if [ "$mode" = wrap ]; then
            printf '#line 1 "<wrapper>"\n    }\n    co_return;\n}\n'
        fi
        grep -q 'int main(' "$out/$n.body" || printf 'int main() {}\n'
    } >"$out/$n.cpp"
}

check() {
    local n=$1
    "$cxx" "${flags[@]}" "$out/$n.cpp" >"$out/$n.log" 2>&1
    echo $? >"$out/$n.status"
}

jobs_max=$(nproc 2>/dev/null || echo 2)
for ((n = 1; n <= blocks; n++)); do
    mode=$(cat "$out/$n.mode")
    [ "$mode" = plain ] || [ "$mode" = wrap ] || continue
    [ -e "$out/$n.open" ] && [ "$n" -eq "$blocks" ] && continue
    unit "$n"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
    check "$n" &
done
wait

passed=0 failed=0 skipped=0
for ((n = 1; n <= blocks; n++)); do
    line=$(cat "$out/$n.line") mode=$(cat "$out/$n.mode")
    where="$readme:$line"
    if [ -e "$out/$n.open" ] && [ "$n" -eq "$blocks" ]; then
        failed=$((failed + 1)); echo "FAIL  $where: the block never ends (no closing \`\`\`)"; continue
    fi
    case "$mode" in
    no) skipped=$((skipped + 1)); echo "skip  $where (compile: no)"; continue ;;
    bad:*) failed=$((failed + 1)); echo "FAIL  $where: unknown directive ${mode#bad: }"; continue ;;
    esac
    if [ "$(cat "$out/$n.status")" = 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        first=$(grep -m1 -E 'error' "$out/$n.log" || head -1 "$out/$n.log")
        echo "FAIL  block at $where: $first"
        [ -n "${README_VERBOSE:-}" ] && head -20 "$out/$n.log"
    fi
done
[ "$blocks" -gt 0 ] || { failed=$((failed + 1)); echo "FAIL  no \`\`\`cpp block in $readme"; }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
