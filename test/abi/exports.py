#!/usr/bin/env python3
"""test/abi/exports.py SO INCLUDE_DIR: `nm -D --defined-only SO` lists
exactly the functions declared in INCLUDE_DIR/lockstep/*.h.

The declared list comes from the headers themselves: every prototype of an
ls_* function (static inline helpers are not library symbols and are left
out). A prototype without LS_API fails too: it would be declared for users
but hidden in the library."""
import os
import re
import subprocess
import sys

so, inc = sys.argv[1], os.path.join(sys.argv[2], "lockstep")
fails = 0


def check(what, ok, detail=""):
    global fails
    print(("ok   - " if ok else "FAIL - ") + what + ("" if ok else ": " + detail))
    fails += not ok


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


declared, unexported = set(), set()
for h in sorted(os.listdir(inc)):
    if not h.endswith(".h"):
        continue
    text = strip_comments(open(os.path.join(inc, h)).read())
    # Preprocessor lines (LS_API's own definition, continued ones too) and
    # the C++ linkage markers go; what is left is declarations.
    text = re.sub(r"^\s*#(?:[^\n]*\\\n)*[^\n]*$", " ", text, flags=re.M)
    text = re.sub(r"\bLS_(BEGIN|END)_DECLS\b", " ", text)
    # Top-level statements: split at ';' and at function bodies' braces.
    depth, stmt = 0, []
    for ch in text:
        if ch == "{":
            if depth == 0:
                s = "".join(stmt)
                if re.search(r"\bstatic\b", s) is None and re.search(r"\bls_\w+\s*\(", s):
                    declared.add(re.search(r"\b(ls_\w+)\s*\(", s).group(1))
                stmt = []
            depth += 1
            continue
        if ch == "}":
            depth -= 1
            stmt = []
            continue
        if depth:
            continue
        if ch == ";":
            s = " ".join("".join(stmt).split())
            stmt = []
            m = re.match(r"^(?!typedef\b)(?!static\b)(LS_API\s+)?[\w\s\*]*?\b(ls_\w+)\s*\(", s)
            if m:
                declared.add(m.group(2))
                if not m.group(1):
                    unexported.add(m.group(2))
            continue
        stmt.append(ch)

out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True,
                     check=True).stdout
exported = set()
other = set()
for line in out.splitlines():
    parts = line.split()
    if len(parts) < 3:
        continue
    kind, name = parts[1], parts[2].split("@")[0]
    if kind == "A":            # the version node (LOCKSTEP_0)
        continue
    (exported if kind in "TtWi" else other).add(name)

print(f"# {len(declared)} functions declared in {inc}, {len(exported)} exported by {so}")
check("every declared function is exported", declared <= exported,
      "not exported: " + ", ".join(sorted(declared - exported)))
check("every exported function is declared", exported <= declared,
      "exported but not declared: " + ", ".join(sorted(exported - declared)))
check("every declaration carries LS_API", not unexported,
      "without LS_API: " + ", ".join(sorted(unexported)))
check("no data symbols are exported", not other, ", ".join(sorted(other)))
check("the headers declare functions at all", len(declared) > 10, f"only {len(declared)} found")
sys.exit(1 if fails else 0)
