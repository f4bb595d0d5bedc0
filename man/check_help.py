#!/usr/bin/env python3
"""man/check_help.py - each command's --help and its man page agree.

For lockstep and each of its commands, lockstep-simd and fsm-dot: the
options (--long anywhere, -x at the head of an option line) that the --help
text names are exactly those the man page names, in the command's own part
of the page (lockstep COMMAND: its subsection of COMMANDS; lockstep itself:
the page outside SYNOPSIS and COMMANDS). Examples are left out on both
sides. Every command the main help lists has a subsection and the reverse,
every `lockstep sim` subcommand an item of its subsection,
and liblockstep(3) names every function declared in include/lockstep/.
Pages are read as mandoc renders them (-Tascii)."""
import os
import re
import subprocess
import sys

BIN = os.environ["LOCKSTEP_BIN"]
SIMD = os.environ["LOCKSTEP_SIMD"]
FSM_DOT = os.environ["FSM_DOT"]
SRC = os.environ["LOCKSTEP_SOURCE_DIR"]
MAN = os.path.join(SRC, "man")
failures = 0

LONG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
SHORT_ITEM = re.compile(r"^\s+(-[a-zA-Z])(?:,|\s|$)")


def options(lines):
    opts = set()
    for line in lines:
        opts.update(LONG.findall(line))
        m = SHORT_ITEM.match(line)
        if m:
            opts.add(m.group(1))
    return opts


def drop_examples(lines):
    """Lines without an Examples/EXAMPLES block (heading, then indented lines)."""
    out, skipping = [], False
    for line in lines:
        if re.match(r"^(Examples:|EXAMPLES)\s*$", line):
            skipping = True
            continue
        if skipping and line.strip() and not line[0].isspace():
            skipping = False
        if not skipping:
            out.append(line)
    return out


def render(page):
    txt = subprocess.run(["mandoc", "-Tascii", os.path.join(MAN, page)], check=True,
                         capture_output=True, text=True).stdout
    return re.sub(r".\x08", "", txt).splitlines()


def sections(lines):
    """{section: {subsection or '': [lines]}} of a rendered page."""
    out, sec, sub = {}, "", ""
    for line in lines:
        if re.match(r"^[A-Z][A-Z ]+$", line):
            sec, sub = line.strip(), ""
        elif re.match(r"^   \S", line) and sec:
            sub = line.strip()
        out.setdefault(sec, {}).setdefault(sub, []).append(line)
    return out


def helptext(argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        check(f"{' '.join(argv)} exits 0", False, p.stderr)
    return p.stdout.splitlines()


def check(what, ok, detail=""):
    global failures
    print(("ok   - " if ok else "FAIL - ") + what + ("" if ok else f": {detail}"))
    failures += not ok


def agree(what, help_lines, man_lines):
    h, m = options(drop_examples(help_lines)), options(man_lines)
    check(f"{what}: --help and the man page name the same {len(h)} options", h == m,
          f"only in --help: {sorted(h - m)}; only in the man page: {sorted(m - h)}")


page = sections(render("lockstep.1"))
main_help = helptext([BIN, "--help"])
commands = []
in_cmds = False
for line in main_help:
    if line.startswith("Commands:"):
        in_cmds = True
    elif in_cmds and not line.strip():
        break
    elif in_cmds and re.match(r"^  [a-z]", line):
        commands.append(line.split()[0])
commands.remove("help")
subsections = [s for s in page.get("COMMANDS", {}) if s]
check("every command of `lockstep --help` has a subsection of COMMANDS and the reverse",
      sorted(commands) == sorted(subsections), f"{commands} vs {subsections}")
global_part = [l for sec, subs in page.items() if sec not in ("SYNOPSIS", "COMMANDS", "EXAMPLES")
               for ls in subs.values() for l in ls]
agree("lockstep", main_help, global_part)
for cmd in commands:
    agree(f"lockstep {cmd}", helptext([BIN, cmd, "--help"]),
          page.get("COMMANDS", {}).get(cmd, []))

# lockstep sim: every subcommand its help lists is an item of the subsection.
sim_help, subs = helptext([BIN, "sim", "--help"]), []
for line in sim_help[sim_help.index("Commands:") + 1:]:
    if not line.strip():
        break
    m = re.match(r"^  ([a-z][a-z-]*)\b", line)
    if m:
        subs.append(m.group(1))
# (the items are the .It Cm lines of the source's sim subsection)
src1 = open(os.path.join(MAN, "lockstep.1")).read()
sim_src = src1[src1.index("\n.Ss sim\n"):src1.index("\n.Sh JSON OUTPUT")]
items = set(re.findall(r"^\.It Cm ([a-z][a-z-]*)", sim_src, re.M))
check(f"lockstep sim: its {len(subs)} subcommands are the items of the subsection",
      set(subs) == items, f"only in --help: {sorted(set(subs) - items)}; "
      f"only in the man page: {sorted(items - set(subs))}")

for prog, man in ((SIMD, "lockstep-simd.8"), (FSM_DOT, "fsm-dot.1")):
    whole = [l for sec, subs in sections(render(man)).items() if sec != "EXAMPLES"
             for ls in subs.values() for l in ls]
    agree(os.path.basename(prog), helptext([prog, "--help"]), whole)

src = open(os.path.join(MAN, "liblockstep.3")).read()
declared = set()
inc = os.path.join(SRC, "include", "lockstep")
for h in sorted(os.listdir(inc)):
    text = open(os.path.join(inc, h)).read()
    # (a declaration may start with an export macro, as LS_API int ls_x(...))
    declared.update(re.findall(r"^(?:typedef )?[A-Za-z_][\w \*]*?\b(ls_\w+)\s*\(", text, re.M))
named = set(re.findall(r"^\.Fn (ls_\w+)", src, re.M))
check(f"liblockstep(3) names all {len(declared)} functions of include/lockstep/",
      declared <= named, f"missing: {sorted(declared - named)}")
check("liblockstep(3) names no function that is not declared", named <= declared,
      f"extra: {sorted(named - declared)}")
sys.exit(1 if failures else 0)
