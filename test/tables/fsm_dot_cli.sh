#!/bin/bash
# test/tables/fsm_dot_cli.sh - the fsm-dot command line: help, errors, exit
# codes, and a drawable, clean graph for every registered machine.
set -u
fail() { echo "FAIL: $*" >&2; exit 1; }
dot_bin=${FSM_DOT:?FSM_DOT is set by ctest}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$dot_bin" --help >"$tmp/help" || fail "--help exited $?"
for section in NAME SYNOPSIS DESCRIPTION OPTIONS CHECKS "EXIT STATUS" EXAMPLES; do
    grep -q "^$section" "$tmp/help" || fail "--help lacks section $section"
done

"$dot_bin" no_such_machine >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "unknown machine exited $rc, want 2"
grep -q "unknown machine 'no_such_machine'" "$tmp/err" || fail "unclear error: $(cat "$tmp/err")"
[ -s "$tmp/out" ] && fail "unknown machine wrote to stdout"

"$dot_bin" >/dev/null 2>&1; [ $? -eq 2 ] || fail "no argument must be a usage error"
"$dot_bin" --bogus >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad option must be a usage error"
"$dot_bin" --list --check >/dev/null 2>&1; [ $? -eq 2 ] || fail "--list --check must be refused"
"$dot_bin" --list -o /nonexistent/dir/x >/dev/null 2>&1; [ $? -eq 2 ] || fail "unwritable -o must fail"
if [ -w /dev/full ]; then
    "$dot_bin" --list >/dev/full 2>/dev/null; [ $? -eq 2 ] || fail "a full disk must not pass"
fi

"$dot_bin" --list >"$tmp/list" || fail "--list exited $?"
head -1 "$tmp/list" | grep -q '^MACHINE' || fail "--list has no header"
"$dot_bin" --list --names >"$tmp/names" || fail "--list --names exited $?"
n=$(wc -l <"$tmp/names")
echo "registered machines: $n"

while read -r m; do
    grep -q "^$m " "$tmp/list" || fail "--list lacks $m"
    "$dot_bin" --ignored -o "$tmp/$m.dot" "$m" || fail "fsm-dot $m exited $?"
    grep -q "^digraph \"$m\" {" "$tmp/$m.dot" || fail "$m.dot is not a digraph"
    if command -v dot >/dev/null; then
        dot -Tsvg "$tmp/$m.dot" -o "$tmp/$m.svg" || fail "dot rejected $m.dot"
    fi
    "$dot_bin" --check "$m" >"$tmp/check" || fail "--check $m: $(cat "$tmp/check")"
    grep -q "^$m: ok (" "$tmp/check" || fail "--check $m printed no summary"
done <"$tmp/names"

"$dot_bin" --check >"$tmp/check" || fail "--check (all): $(cat "$tmp/check")"
echo "fsm-dot command line: ok"
