#!/usr/bin/env bash
# API reference check: every public name is in docs/reference.md, under its
# header, and every public declaration has a comment right above it.
#
# The scan is line-based and relies on the headers' formatting (clang-format:
# namespace contents are not indented, one declaration starts a line):
# - Files: every .hpp under include/cosock/, detail/ included (a name a detail
#   header puts in namespace cosock is public too).
# - Public scope: the body of `namespace cosock {` (or cosock::X, X not
#   detail) at brace depth 0 of that namespace; `namespace detail {` blocks,
#   class bodies, function bodies and initializers are skipped. Members of
#   classes are documented with their class, not here.
# - Declarations, at the start of a statement in public scope, after an
#   optional `template <...>` / `requires` prefix:
#     class/struct/union NAME (a definition, not `class NAME;`)
#     enum [class] NAME; a one-line unscoped enum's enumerators are constants
#     concept NAME =        using NAME = (aliases; not `using namespace`)
#     [inline] constexpr/const TYPE NAME = / { / ;   (constants)
#     [[attr]] [inline] TYPE NAME(   (functions, overloads; not X::f(, which
#       is a member defined out of its class)
# - Documented: the line right above the declaration (above its template
#   prefix) is a `//` or `///` comment, or the declaration continues a group:
#   the line above ends a declaration of the same name (overloads) or, for
#   constants and aliases, of another of the same kind, and that one is
#   documented.
# - Listed: docs/reference.md has a line starting "- `NAME`" under the
#   heading "## cosock/HEADER" of each header that declares NAME; a listed
#   name no header declares is a failure too.
# One line per failure (a missing entry comes with a line to add, from the
# first sentence of the comment); the last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'EOF'
import os, re, sys

ROOT = 'include/cosock'
REFERENCE = 'docs/reference.md'


def strip_code(line, state):
    """The code of a line, without comments; literals become empty quotes."""
    out, i, n = [], 0, len(line)
    while i < n:
        if state['block']:
            j = line.find('*/', i)
            if j < 0:
                return ''.join(out)
            state['block'], i = False, j + 2
            continue
        c = line[i]
        if line.startswith('//', i):
            break
        if line.startswith('/*', i):
            state['block'], i = True, i + 2
            continue
        if c in '"\'':
            i += 1
            while i < n and line[i] != c:
                i += 2 if line[i] == '\\' else 1
            out.append(c + c)
            i += 1
            continue
        out.append(c)
        i += 1
    return ''.join(out)


SKIP = ('using namespace', 'static_assert', 'extern ', 'friend ', 'return ', 'typedef ')
DECLS = [
    ('concept', re.compile(r'^concept\s+(\w+)\s*=')),
    ('enum', re.compile(r'^enum\s+(?:class\s+|struct\s+)?(\w+)\b(?!\s*(?::\s*[\w:]+\s*)?;)')),
    ('class', re.compile(r'^(?:class|struct|union)\s+(?:\[\[.*?\]\]\s*)?(\w+)\b(?!\s*;)')),
    ('alias', re.compile(r'^using\s+(\w+)\s*=')),
    ('constant', re.compile(r'^(?:(?:inline|static)\s+)*(?:constexpr|const)\s+[\w:<>, ]+?\s+(\w+)\s*(?:=|\{|;)')),
    ('function', re.compile(r'^(?:\[\[.*?\]\]\s*)?(?:(?:inline|constexpr|static|consteval)\s+)*'
                            r'[^=;{}]*?[\w>&*)]\s+[&*]*(operator\s*[^\s(]+|\w+)\s*\(')),
]
NAMESPACE = re.compile(r'^(?:inline\s+)?namespace\s*([\w:]*)\s*\{')


def is_public_namespace(name, inside_public):
    parts = [p for p in name.split('::') if p]
    if not parts or 'detail' in parts:
        return False
    return inside_public or parts[0] == 'cosock'


def scan(path):
    lines = open(path, encoding='utf-8').read().split('\n')
    state = {'block': False}
    stack = []              # per open brace: 'public', 'private' or 'other'
    decls = []
    continuing = False      # inside a statement that spans lines
    prefix = None           # first line of a template/requires prefix
    stmt = []               # declarations found in the current statement
    last = None             # (decl, line index where its statement ended)
    opened = None           # (decl, depth) of a declaration whose body is open
    for idx, raw in enumerate(lines):
        code = strip_code(raw, state).strip()
        public = bool(stack) and stack[-1] == 'public'
        if public and code and not code.startswith('#') and not continuing:
            if NAMESPACE.match(code):
                prefix = None
            elif code.startswith('template') and code.endswith('>') or code.startswith('requires'):
                if prefix is None:
                    prefix = idx
            elif not code.startswith(SKIP):
                start = idx if prefix is None else prefix
                for kind, rx in DECLS:
                    m = rx.match(code)
                    if not m:
                        continue
                    above = lines[start - 1].strip() if start > 0 else ''
                    comment, j = [], start - 1
                    while j >= 0 and lines[j].strip().startswith('//'):
                        comment.insert(0, re.sub(r'^//+<?\s?', '', lines[j].strip()))
                        j -= 1
                    d = dict(name=m.group(1).replace(' ', ''), kind=kind, line=start + 1,
                             documented=above.startswith('//'), comment=' '.join(comment))
                    if not d['documented'] and last and last[1] == start - 1 and (
                            last[0]['name'] == d['name'] or kind in ('constant', 'alias') and kind == last[0]['kind']):
                        d['documented'], d['comment'] = last[0]['documented'], last[0]['comment']
                    decls.append(d)
                    stmt.append(d)
                    if kind == 'enum':
                        body = re.search(r'\{([^}]*)\}', code)
                        if body and not re.match(r'^enum\s+(class|struct)\b', code):
                            for e in body.group(1).split(','):
                                e = e.split('=')[0].strip()
                                if e:
                                    decls.append(dict(name=e, kind='constant', line=start + 1,
                                                      documented=d['documented'], comment=d['comment']))
                    break
                prefix = None
        depth_before = len(stack)
        for ch in code:
            if ch == '{':
                kind = 'other'
                m = NAMESPACE.match(code)
                if m and (not stack or stack[-1] in ('public', 'private')):
                    inside = bool(stack) and stack[-1] == 'public'
                    kind = 'public' if is_public_namespace(m.group(1), inside) else 'private'
                elif not stack:
                    kind = 'private'
                stack.append(kind)
            elif ch == '}' and stack:
                stack.pop()
        if public and code and not code.startswith('#'):
            if prefix is not None and not stmt:
                continuing = False          # a template prefix: its declaration follows
            elif code.endswith((';', '{', '}')):
                continuing = False
                if stmt and len(stack) > depth_before:
                    opened = (stmt[-1], depth_before)   # it ends where its body closes
                elif stmt:
                    last = (stmt[-1], idx)
                stmt = []
            else:
                continuing = True
        elif public and not code and not state['block']:
            last = None                     # a blank line ends a group
        if opened and len(stack) == opened[1] and depth_before > opened[1]:
            last, opened = (opened[0], idx), None
    return decls


def first_sentence(text):
    """The comment's first sentence, for a draft entry."""
    text = re.sub(r'\s+', ' ', text).strip()
    m = re.match(r'(.+?\.)(\s|$)', text)
    return m.group(1) if m else text


def reference_entries():
    entries, header = {}, None
    if not os.path.exists(REFERENCE):
        return entries
    for line in open(REFERENCE, encoding='utf-8'):
        m = re.match(r'^## (cosock/\S+)', line)
        if m:
            header = m.group(1)
            continue
        m = re.match(r'^- `([^`]+)`', line)
        if m and header:
            entries.setdefault(header, set()).add(m.group(1))
    return entries


def main():
    headers = sorted(os.path.relpath(os.path.join(d, f), 'include')
                     for d, _, fs in os.walk(ROOT) for f in fs if f.endswith('.hpp'))
    listed = reference_entries()
    passed = failed = 0
    declared = {}
    draft = '--draft' in sys.argv
    for h in headers:
        seen = set()
        for d in scan(os.path.join('include', h)):
            where = f'include/{h}:{d["line"]}'
            if d['documented']:
                passed += 1
            else:
                failed += 1
                print(f'FAIL  {where}: {d["kind"]} {d["name"]} has no // or /// comment right above it')
            declared.setdefault(h, set()).add(d['name'])
            if d['name'] in seen:
                continue
            seen.add(d['name'])
            line = f'- `{d["name"]}` ({d["kind"]}) — {first_sentence(d["comment"])}'
            if draft:
                print(f'{h}\t{line}')
            elif d['name'] in listed.get(h, set()):
                passed += 1
            else:
                failed += 1
                print(f'FAIL  {where}: {d["name"]} is not in {REFERENCE} under "## {h}"; add: {line}')
    for h, names in sorted(listed.items()):
        for name in sorted(names - declared.get(h, set())):
            failed += 1
            print(f'FAIL  {REFERENCE}: `{name}` under "## {h}" is declared by no public part of that header')
    if not draft:
        print(f'{passed} passed, {failed} failed')
    return 1 if failed else 0


sys.exit(main())
EOF
