#!/bin/sh
# test/xen/suite.sh - lockstep on a real Xen 4.17, run inside the nested dom0
# (scripts/xen/run.sh boots it). Guests are made with `xl create` and print
# GUEST-TICK n each second on their console (xenconsoled logs it); a guest
# "really continued" when, after its save and restore, the first new tick
# follows the last one seen before (and it did not boot again: no GUEST-UP).
# Prints one line per check and ends with `N passed, N failed`.
LS=/opt/lockstep/bin/lockstep
CFG=/opt/lockstep
CONS=/var/log/xen/console
export LOCKSTEP_BACKEND=xen
# The guests' size (pv.cfg, pvh.cfg): every save, restore, copy and verify
# of the suite moves it through the emulated machine.
MIB=$(awk '$1 == "memory" { print $3 }' $CFG/pv.cfg)
PASS=0; FAIL=0
up() { cut -d' ' -f1 /proc/uptime; }
# dom0's available memory at each mark (no process started): a dom0 short of
# memory would show here before a malloc failure in lockstep or libxc did.
avail() { while read -r k v _; do [ "$k" = MemAvailable: ] && { echo $((v / 1024)); return; }; done < /proc/meminfo; }
mark() { echo "=== $* uptime=$(up) dom0_avail_mib=$(avail) ==="; }
ok()   { PASS=$((PASS + 1)); echo "ok   - $*"; }
# A failure shows at once whether lockstep crashed (crashes, below): the
# suite may not get as far as its own calls if the boot stalls later.
bad()  { FAIL=$((FAIL + 1)); echo "FAIL - $*"; [ -n "${IN_CRASHES:-}" ] || crashes; }
verify() { PYTHONPATH=/usr/lib/xen-4.17/lib/python /usr/lib/xen-4.17/bin/verify-stream-v2 -q -f xl -i "$1"; }
lasttick() { grep -a 'GUEST-TICK' "$CONS/guest-$1.log" 2>/dev/null | tail -n 1 | tr -dc '0-9'; }
exists() { xl domid "$1" >/dev/null 2>&1; }
# What xl printed (/root/xl.out) when it failed: its own reason, not only ours.
xlsaid() { tr '\r' '\n' < /root/xl.out | grep -av '^ *$' | tail -n 12 | sed 's/^/    xl: /'; }
ndomains() { xl list | tail -n +2 | grep -c .; }
# settled N: wait (up to 10 s) until N domains are left: a destroyed one
# lingers as "dying" until Xen has freed its memory.
settled() { i=0; while [ "$(ndomains)" != "$1" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done; [ "$(ndomains)" = "$1" ]; }

create() {  # create TYPE: a fresh guest g$TYPE, ticking
  rm -f "$CONS/guest-g$1.log"
  timeout 120 xl create "$CFG/$1.cfg" >/root/xl.out 2>&1 || { bad "$1: xl create failed (exit $?):"; xlsaid; return 1; }
  i=0; while [ -z "$(lasttick g$1)" ] && [ $i -lt 90 ]; do sleep 1; i=$((i + 1)); done
  [ -n "$(lasttick g$1)" ] || { bad "$1: the guest never ticked"; tail -n 5 "$CONS/guest-g$1.log"; xl destroy g$1; return 1; }
}

# continued NAME BEFORE_TICK WHAT: after a save and restore, the console goes
# on from the tick seen before (no GUEST-UP: the guest did not boot again).
continued() {
  i=0; while [ "$(lasttick $1)" = "" ] || [ "$(lasttick $1)" -le $(( $2 + 1 )) ]; do
    [ $i -ge 30 ] && break; sleep 1; i=$((i + 1)); done
  # Read the console up to three times, 2 s apart: under TCG a dom0 tool now
  # and then returns garbage without crashing (seen: awk's answer empty while
  # the log's tail showed the ticks). A guest that did not go on fails all three.
  for reading in 1 2 3; do
    # What the console printed after the last "GUEST-TICK BEFORE" line (all of it
    # if that line is no longer in the log).
    new=$(awk -v t="GUEST-TICK $2" '{ sub(/\r$/, "") } $0 == t { buf = ""; seen = 1; next } { buf = buf $0 "\n" }
          END { printf "%s", buf }' "$CONS/guest-$1.log" 2>/dev/null)
    first=$(echo "$new" | grep -a GUEST-TICK | head -n 1 | tr -dc '0-9')
    last=$(lasttick $1)
    if echo "$new" | grep -q GUEST-UP; then
      verdict=rebooted
    elif [ -n "$first" ] && [ "$first" -gt "$2" ] && [ "$first" -le $(( $2 + 10 )) ] && [ "$last" -gt "$first" ]; then
      verdict=ok; break
    else verdict=stuck; fi
    sleep 2
  done
  case $verdict in
    ok) at=""; [ "$reading" = 1 ] || at=", at reading $reading"
        ok "$3: counter went on ($2 -> $first -> $last$at)";;
    rebooted) bad "$3: the guest booted again instead of continuing";;
    *) bad "$3: counter did not go on (before $2, first after ${first:-none}, last ${last:-none}; read 3 times)"
       tail -n 5 "$CONS/guest-$1.log";;
  esac
}

# 5. live migration to a lockstep migrate-receive in this dom0 (PVH: Xen has
# log-dirty for HAP guests only here), of the PVH guest of steps 1-3. The new
# copy arrives as gpvh--incoming and takes the name gpvh when started, as with xl.
domid_of() { xl domid "$1" 2>/dev/null; }
receiver() {  # receiver SOCKET: start lockstep migrate-receive, wait until it listens
  rm -f "$1"; $LS migrate-receive --listen "unix:$1" > /root/recv.out 2>&1 &
  RPID=$!
  i=0; while ! grep -q "listening on" /root/recv.out && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
}
# Across gpvh's console logs (a migrated copy may log under gpvh--incoming).
maxtick() { cat $CONS/guest-gpvh*.log 2>/dev/null | grep -a GUEST-TICK | tr -dc '0-9\n' | sort -n | tail -n 1; }
upcount() { cat $CONS/guest-gpvh*.log 2>/dev/null | grep -ac GUEST-UP; }
migrate_tests() {
if $LS migrate --help >/dev/null 2>&1; then
  mark PVH-MIGRATE
  if exists gpvh; then
    old=$(domid_of gpvh); pre=$(maxtick); ups=$(upcount)
    receiver /root/mig.sock
    timeout 300 $LS migrate --domid "$old" --to unix:/root/mig.sock > /root/send.out 2>&1; src=$?
    wait $RPID; dst=$?
    tail -n 2 /root/recv.out
    new=$(domid_of gpvh)
    if [ $src -ne 0 ] || [ $dst -ne 0 ]; then
      bad "pvh: lockstep migrate (sender exit $src, receiver exit $dst); sender said:"
      tr '\r' '\n' < /root/send.out | grep -av '^migrate: ' | tail -n 8
      xl list
    elif [ -z "$new" ] || [ "$new" = "$old" ] || xl list | awk '{print $2}' | grep -qx "$old"; then
      bad "pvh: after the migration the old domain $old should be gone and gpvh be a new one (now: ${new:-none})"; xl list
    else
      ok "pvh: lockstep migrate: domain $old gone, gpvh is domain $new"
      # The source is gone, so a counter still rising is the new domain's; it
      # goes on above the count from before, and the guest did not boot again.
      sleep 3; mid=$(maxtick); sleep 3; post=$(maxtick)
      if [ "$(upcount)" = "$ups" ] && [ -n "$mid" ] && [ "$mid" -gt "$pre" ] && [ "$post" -gt "$mid" ]; then
        ok "pvh: lockstep migrate -> the counter goes on on the new domain ($pre -> $mid -> $post)"
      else
        bad "pvh: lockstep migrate -> counter ($pre -> ${mid:-none} -> ${post:-none}, GUEST-UP lines $ups -> $(upcount))"
        tail -n 3 $CONS/guest-gpvh*.log
      fi
    fi
    # The receiver dies mid-stream: the source guest keeps running.
    mark PVH-MIGRATE-RECEIVER-KILLED
    N=gpvh; src_dom=$(domid_of $N)
    receiver /root/mig2.sock
    timeout 300 $LS migrate --domid "$src_dom" --to unix:/root/mig2.sock > /root/send.out 2>&1 &
    SPID=$!
    sleep 4; kill -9 $RPID; wait $RPID 2>/dev/null
    wait $SPID; src=$?
    echo "  lockstep: $(tail -n 1 /root/send.out)"
    before=$(lasttick $N)
    if [ $src -eq 0 ]; then bad "pvh: a migration whose receiver was killed succeeded"
    elif [ "$(domid_of $N)" != "$src_dom" ]; then bad "pvh: the source guest is gone after its receiver died"; xl list
    else continued "$(basename $(ls -t $CONS/guest-gpvh*.log | head -n 1) .log | sed 's/^guest-//')" "$before" "pvh: receiver killed mid-stream, source guest runs on"
    fi
    sleep 2   # the killed receiver's guard destroys its partial domain
    left=$(xl list | awk '$1 ~ /--incoming$/ {print $1}')
    if [ -z "$left" ]; then ok "pvh: the killed receiver's partial domain was destroyed by its guard"
    else bad "pvh: the killed receiver left $left behind"; for d in $left; do xl destroy $d; done; fi
  fi
else
  echo "skipped: lockstep migrate (issue 4) has not landed; PVH migrate not tested"
fi

}

# 6. Remus (issue 15) of the PVH guest that ran on through step 5, in this
# dom0: lockstep's primary and secondary, then Xen's own `xl remus` as the
# primary with a lockstep secondary (xl's -s "" runs its host argument in
# place of ssh; tee keeps the stream for inspect). Each ends as a lost
# primary host does: the primary's side killed; the secondary fences (its
# command destroys the primary's domain, as a power switch would) and takes
# over from the last checkpoint, and the guest's counter goes on there.
checkpoints() { n=$(grep -ac '"event": *"checkpoint"' "$1" 2>/dev/null); echo "${n:-0}"; }
# waited I FILE: every 30 waits a line on the console, so that a loaded host's
# slow first checkpoint (a whole memory) is not taken for a hang by run.sh's
# stall check; the wait's own bound (90) still fails a replication that stops.
waited() { [ "$1" -gt 0 ] && [ $(( $1 % 30 )) = 0 ] && echo "  waiting for checkpoints: $(checkpoints "$2") after $1 waits"; }
# The guest's console before replication is moved aside: the copy that takes
# over logs afresh (xenconsoled appends to a name's log: older ones go).
console_aside() {
  cur=$(ls -t $CONS/guest-gpvh*.log 2>/dev/null | head -n 1)
  [ -n "$cur" ] && mv "$cur" $CONS/primary.log
  rm -f $CONS/guest-gpvh*.log
}
# failed_over WHAT OLD_DOMID PRE LAST: after the primary's side was killed:
# the secondary ends as active (exit 0, in /root/sec.rc), the primary's domain
# is gone, gpvh is the copy that took over, and its counter goes on from the
# last checkpoint: above PRE (the tick before replication), at most LAST + 1
# (the primary's last), rising, and the guest did not boot again.
failed_over() {
  i=0; while [ ! -s /root/sec.rc ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
  rc=$(cat /root/sec.rc 2>/dev/null); new=$(domid_of gpvh)
  if [ "$rc" != 0 ]; then
    bad "$1: the secondary ${rc:+exited $rc}${rc:-did not end within 60 s}:"; tail -n 4 /root/sec.out; xl list
    ps -eo pid,ppid,stat,wchan:24,args | grep -aE 'lockstep|tee|xl ' | grep -v grep; ls -la /root
    for p in $(pgrep -f 'lockstep colo-secondary'); do kill -9 $p; done; return 1
  fi
  if xl list | awk '{print $2}' | grep -qx "$2" || [ -z "$new" ] || [ "$new" = "$2" ]; then
    bad "$1: after failover domain $2 should be fenced and gpvh a new one (now ${new:-none})"; xl list; return 1
  fi
  # Read up to three times, 2 s apart, as continued() does: a dom0 tool now
  # and then returns nothing under TCG (or is killed spinning at its start).
  for reading in 1 2 3; do
    sleep 2
    log=$(ls -t $CONS/guest-gpvh*.log 2>/dev/null | head -n 1)
    first=$(grep -a GUEST-TICK "$log" 2>/dev/null | head -n 1 | tr -dc '0-9')
    now=$(grep -a GUEST-TICK "$log" 2>/dev/null | tail -n 1 | tr -dc '0-9')
    [ -n "$first" ] && [ -n "$now" ] && [ "$now" -gt "$first" ] && break
  done
  if grep -aq GUEST-UP "$log" 2>/dev/null; then bad "$1: the copy that took over booted again"
  elif [ -n "$first" ] && [ "$first" -gt "$3" ] && [ "$first" -le $(( $4 + 1 )) ] && [ "${now:-0}" -gt "$first" ]; then
    ok "$1: primary's side killed, domain $2 fenced, gpvh runs on as domain $new from the last checkpoint (counter $3 -> $4 on the primary, $first -> $now after)"
  else
    bad "$1: counter after failover ($3 -> $4 on the primary, ${first:-none} -> ${now:-none} on domain $new)"; tail -n 3 "$log"
  fi
}
lasttick_primary() { grep -a GUEST-TICK $CONS/primary.log | tail -n 1 | tr -dc '0-9'; }
remus_tests() {
  mark PVH-REMUS
  exists gpvh || { bad "pvh: Remus: no guest left from the steps before"; return; }
  old=$(domid_of gpvh)
  # COLO proper needs a QEMU with block replication, which Debian's lacks:
  # both roles refuse it before they connect or listen, and say why.
  timeout 20 $LS colo-primary --domid "$old" --to unix:/root/none.sock > /root/pri.out 2>&1; p=$?
  timeout 20 $LS colo-secondary --listen unix:/root/none.sock > /root/sec.out 2>&1; q=$?
  if [ $p -ne 0 ] && [ $q -ne 0 ] && grep -q "QEMU with block replication" /root/pri.out &&
     grep -q "QEMU with block replication" /root/sec.out && ! grep -q "listening on" /root/sec.out && exists gpvh; then
    ok "pvh: COLO refused by both roles: $(grep -o 'COLO on Xen needs[^;]*' /root/pri.out | head -n 1)"
  else bad "pvh: COLO on Xen (primary exit $p, secondary exit $q):"; tail -n 2 /root/pri.out /root/sec.out; fi
  console_aside; pre=$(lasttick_primary)
  rm -f /root/remus.sock /root/sec.rc /root/sec.out /root/pri.out
  { $LS colo-secondary --mode remus --listen unix:/root/remus.sock --fence "xl destroy $old" --json > /root/sec.out 2>&1; echo $? > /root/sec.rc; } &
  i=0; while ! grep -q "listening on" /root/sec.out && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
  $LS colo-primary --domid "$old" --mode remus --to unix:/root/remus.sock --json > /root/pri.out 2>&1 &
  PRI=$!
  i=0; while [ "$(checkpoints /root/pri.out)" -lt 2 ] && kill -0 $PRI 2>/dev/null && [ $i -lt 90 ]; do waited $i /root/pri.out; sleep 1; i=$((i + 1)); done
  n=$(checkpoints /root/pri.out)
  kill -9 $PRI; wait $PRI 2>/dev/null
  last=$(lasttick_primary)
  if [ "$n" -lt 2 ]; then
    bad "pvh: lockstep Remus: $n checkpoints in 90 s; the primary said:"; tail -n 4 /root/pri.out
    for p in $(pgrep -f 'lockstep colo-secondary'); do kill -9 $p; done; tail -n 4 /root/sec.out; xl list
    exists gpvh || return
  else
    ok "pvh: lockstep Remus, colo-primary -> colo-secondary: $n checkpoints"
    failed_over "pvh: lockstep Remus" "$old" "$pre" "$last" || return
  fi

  mark PVH-XL-REMUS
  exists gpvh || return
  old=$(domid_of gpvh); console_aside; pre=$(lasttick_primary)
  rm -f /root/xlremus.cap /root/sec.rc /root/sec.out
  xl remus -F -n -d -s "" gpvh "tee /root/xlremus.cap | { $LS colo-secondary --mode remus --json \
    --fence 'xl destroy $old' 2>/root/sec.out; echo \$? > /root/sec.rc; }" > /root/xl.out 2>&1 &
  XLP=$!
  i=0; while [ "$(checkpoints /root/sec.out)" -lt 2 ] && kill -0 $XLP 2>/dev/null && [ $i -lt 90 ]; do waited $i /root/sec.out; sleep 1; i=$((i + 1)); done
  n=$(checkpoints /root/sec.out)
  kill -9 $XLP; wait $XLP 2>/dev/null
  last=$(lasttick_primary)
  if [ "$n" -lt 2 ]; then
    bad "pvh: xl remus -> lockstep colo-secondary: $n checkpoints in 90 s; xl and lockstep said:"
    xlsaid; tail -n 4 /root/sec.out; for p in $(pgrep -f 'lockstep colo-secondary'); do kill -9 $p; done; xl list
  else
    ok "pvh: xl remus -> lockstep colo-secondary: $n checkpoints"
    failed_over "pvh: xl remus -> lockstep" "$old" "$pre" "$last"
  fi
  # xl's own stream as it was on the wire, decoded by inspect: its checkpoints,
  # and an end where xl was killed (after a whole checkpoint, or inside the
  # next: inside a record or between two).
  $LS inspect /root/xlremus.cap > /root/inspect.out 2>&1; irc=$?
  k=$(sed -n 's/^summary: .*, \([0-9]*\) checkpoints, end: .*/\1/p' /root/inspect.out)
  if [ "${k:-0}" -ge 2 ] && { [ $irc -eq 0 ] || tail -n 1 /root/inspect.out | grep -q "stream truncated"; }; then
    ok "pvh: lockstep inspect decodes xl remus's stream: $k checkpoints, $(wc -c < /root/xlremus.cap) bytes, $(grep -a '^summary' /root/inspect.out | sed 's/.*end: //')$([ $irc -eq 0 ] || echo ', cut inside the next')"
  else bad "pvh: lockstep inspect of xl remus's stream (exit $irc, ${k:-no} checkpoints):"; tail -n 4 /root/inspect.out; fi
  rm -f /root/xlremus.cap
}

mark SUITE-START
# A lockstep process that crashes leaves a core (name, pid, signal in its
# file name); crashes() says which process died of which signal where, what
# the kernel saw, and the tail of what lockstep printed before.
ulimit -c unlimited; mkdir -p /root/cores; echo '/root/cores/core.%e.%p.%s' > /proc/sys/kernel/core_pattern
touch /root/.crashes-seen
crashes() {
  IN_CRASHES=1
  for c in /root/cores/core.*; do
    [ -e "$c" ] || continue
    f=${c#/root/cores/core.}; sig=${f##*.}; f=${f%.*}; pid=${f##*.}; name=${f%.*}
    signame=SIG$(kill -l "$sig" 2>/dev/null || echo "$sig")
    # Only lockstep's own crashes count: under TCG other dom0 processes
    # (grep, xl, sh) are now and then hit by the emulation's memory corruption.
    case "$name" in
      lockstep-xen-he*) exe=/opt/lockstep/bin/lockstep-xen-helper; who=lockstep-xen-helper;;
      lockstep) exe=$LS; who=lockstep;;
      *) echo "  note: $name (pid $pid) died of $signame: a dom0 tool crashed (emulation flakiness, not counted)"
         rm -f "$c"; continue;;
    esac
    # gdb's first bt is the thread that took the signal; then all threads.
    timeout 60 gdb -batch -ex 'bt 20' -ex 'thread apply all bt 20' "$exe" "$c" > /root/gdb.txt 2>&1
    cmd=$(sed -n "s/^Core was generated by .\(.*\).\.$/\1/p" /root/gdb.txt | head -n 1)
    own=$(awk '/^Thread /{exit} /^#/ && !seen[$0]++' /root/gdb.txt)
    where=$(echo "$own" | grep -a ' at [^ ]*:[0-9]' | head -n 1 | sed 's/^#[0-9]* *\(0x[0-9a-f]* in \)\{0,1\}//')
    # A crash with no frame of lockstep's code (nor main) on the thread that
    # took the signal happened before lockstep ran: at its start, in the
    # dynamic loader's initialisation of a library (seen: gnutls's
    # constructor in bindtextdomain), as the emulator's corrupted dom0 tools do.
    if [ -z "$where" ] && ! echo "$own" | grep -qa ' main ('; then
      echo "  note: $who (pid $pid: $cmd) died of $signame before its main(), in the libraries' start-up (no lockstep code ran: the emulation's corruption, not counted)"
    else
      bad "$who (pid $pid: $cmd) died of $signame in ${where:-$(echo "$own" | head -n 1)}"
    fi
    dmesg 2>/dev/null | grep -a "\[$pid\]" | tail -n 2 | sed 's/^/    kernel: /'
    echo "$own" | head -n 12 | sed 's/^/    /'
    grep -aE '^Thread|^#' /root/gdb.txt | awk '/^Thread /{n++} n' | head -n 40 | sed 's/^/    /'
    for o in $(find /root -maxdepth 1 \( -name '*.out' -o -name err \) -newer /root/.crashes-seen 2>/dev/null); do
      echo "    tail of $o:"; tr '\r' '\n' < "$o" | grep -av '^ *$' | tail -n 4 | sed 's/^/      /'
    done
    rm -f "$c"
  done
  touch /root/.crashes-seen
  IN_CRASHES=
}
xl info | grep -E 'xen_version|free_memory' || { bad "xl info"; echo "$PASS passed, $FAIL failed"; exit 1; }
$LS --help >/dev/null 2>&1 || { bad "lockstep does not run in dom0"; }

# GUEST_TYPES=pvh and ONLY=remus on dom0's command line (scripts/xen/boot.sh's
# arguments) narrow a run while working on one part; the suite runs all.
# PARTS ('+'-separated, from scripts/xen/run.sh; all when unset): which parts
# run. TYPE-interop is steps 1-2, TYPE-roundtrip 3-3b, pv-faults 4,
# pvh-migrate 5 and pvh-remus 6; `make test` runs a seeded sample of them.
PARTS=${PARTS:-all}
echo "parts: $PARTS"
part() { [ "$PARTS" = all ] && return 0; case "+$PARTS+" in *"+$1+"*) return 0;; esac; return 1; }
for T in $(echo "${GUEST_TYPES:-pv+pvh}" | tr '+' ' '); do
  N=g$T; F=/root/$N.xl
  [ "$PARTS" = all ] || case "+$PARTS+" in *"+$T-"*) ;; *) continue;; esac
  mark $T-CREATE
  create $T || continue
  sleep 2
  if [ "${ONLY:-}" = remus ]; then remus_tests; xl destroy $N 2>/dev/null; crashes; continue; fi

  if part $T-interop; then
  # 1. lockstep save -> Xen's verifier -> xl restore. The PV guest's xl header
  # carries the config xl stored when it created the guest; the PVH guest's
  # per-domain config is removed first (a guest libxl knows nothing of), so its
  # header carries a config lockstep generates, and xl restores from that.
  how="xl's config"
  if [ $T = pvh ]; then rm -f /var/lib/xen/userdata-d.$(domid_of $N).*; how="config generated by lockstep"; fi
  before=$(lasttick $N)
  mark $T-LOCKSTEP-SAVE tick=$before
  if ! timeout 300 $LS save --domain $N -o $F; then bad "$T: lockstep save"; xl destroy $N 2>/dev/null; continue; fi
  if exists $N; then bad "$T: the saved guest still exists"; else ok "$T: lockstep save ($(wc -c < $F) bytes), guest gone"; fi
  mark $T-VERIFY
  if verify $F; then ok "$T: verify-stream-v2 -f xl accepts lockstep's file"; else bad "$T: verify-stream-v2 rejects lockstep's file"; fi
  mark $T-XL-RESTORE
  if timeout 300 xl restore $F >/root/xl.out 2>&1; then continued $N "$before" "$T: lockstep save ($how) -> xl restore"
  else bad "$T: xl restore of lockstep's file (exit $?):"; xlsaid; continue; fi
  rm -f $F

  # 2. xl save -> lockstep restore
  before=$(lasttick $N)
  mark $T-XL-SAVE tick=$before
  timeout 300 xl save $N $F >/root/xl.out 2>&1; rc=$?
  if [ $rc -ne 0 ]; then bad "$T: xl save (exit $rc):"; xlsaid; xl list; xl destroy $N; continue; fi
  mark $T-LOCKSTEP-RESTORE
  if timeout 300 $LS restore -i $F; then continued $N "$before" "$T: xl save -> lockstep restore"
  else bad "$T: lockstep restore of xl's file"; continue; fi
  rm -f $F

  fi

  if part $T-roundtrip; then
  # 3. lockstep save -> lockstep restore
  before=$(lasttick $N)
  mark $T-LOCKSTEP-ROUNDTRIP tick=$before
  if timeout 300 $LS save --domain $N -o $F && timeout 300 $LS restore -i $F; then
    continued $N "$before" "$T: lockstep save -> lockstep restore"
  else bad "$T: lockstep save -> lockstep restore"; xl destroy $N 2>/dev/null; rm -f $F; continue; fi

  # 3b. restore into a domain the toolstack made (lockstep restore --domid N):
  # an empty one from lockstep-xen-mkdomain (created, vCPUs and memory limit
  # set, nothing else). Refused first, and left alone: the running guest
  # itself, and an empty domain of the other type.
  mark $T-RESTORE-INTO
  other=pv; [ $T = pv ] && other=pvh
  D=$(domid_of $N)
  if timeout 120 $LS restore -i $F --domid "$D" 2>/root/err; then bad "$T: restored into the running guest"
  elif grep -q "is running" /root/err && grep -q "left it as it was" /root/err && exists $N; then
    ok "$T: --domid of a running guest refused, guest left: $(tail -n 1 /root/err | cut -c1-120)"
  else bad "$T: --domid of a running guest: $(tail -n 1 /root/err)"; fi
  W=$(lockstep-xen-mkdomain $other 1 $MIB)
  if [ -z "$W" ]; then bad "$T: lockstep-xen-mkdomain $other failed"
  elif timeout 120 $LS restore -i $F --domid "$W" 2>/root/err; then bad "$T: restored into a $other domain"
  elif grep -q "is a $other domain" /root/err && xl list "$W" >/dev/null 2>&1; then
    ok "$T: --domid of an empty $other domain refused, domain $W left to the toolstack"
  else bad "$T: --domid of a $other domain: $(tail -n 1 /root/err)"; fi
  [ -n "$W" ] && xl destroy "$W"
  before=$(lasttick $N)
  mark $T-RESTORE-INTO-GIVEN tick=$before
  if ! timeout 300 $LS save --domain $N -o $F; then bad "$T: lockstep save"; xl destroy $N 2>/dev/null; continue; fi
  # A failure mid-stream (the file cut in half): the toolstack's domain is
  # not destroyed. (While the guest is saved: its name is free.)
  head -c $(( $(wc -c < $F) / 2 )) $F > /root/trunc.xl
  E=$(lockstep-xen-mkdomain $T 1 $MIB)
  if timeout 120 $LS restore -i /root/trunc.xl --domid "$E" 2>/root/err; then bad "$T: a truncated file restored into domain $E"
  elif grep -q "lockstep did not destroy it" /root/err && xl list "$E" >/dev/null 2>&1; then
    ok "$T: truncated file into domain $E failed, the domain left to the toolstack: $(tail -n 1 /root/err | cut -c1-100)"
  else bad "$T: truncated file into domain $E: $(tail -n 1 /root/err)"; xl list; fi
  [ -n "$E" ] && xl destroy "$E"
  rm -f /root/trunc.xl
  if E=$(lockstep-xen-mkdomain $T 1 $MIB) && timeout 300 $LS restore -i $F --domid "$E" > /root/out; then
    if [ "$(head -n 1 /root/out)" = "domid $E" ] && [ "$(domid_of $N)" = "$E" ]; then
      continued $N "$before" "$T: lockstep save -> lockstep restore --domid $E (the toolstack's empty domain)"
    else bad "$T: restore --domid $E: said '$(head -n 1 /root/out)', $N is domain $(domid_of $N)"; fi
  else bad "$T: lockstep restore --domid ${E:-?}"; xl list; xl destroy $N 2>/dev/null; rm -f $F; continue; fi

  fi

  # 4. faults, on the file of step 3b (the guest runs from it), or of a
  # lockstep save and restore of its own when 3b did not run.
  if [ $T = pv ] && part pv-faults; then
    mark $T-FAULTS
    if [ ! -s $F ] && ! { timeout 300 $LS save --domain $N -o $F && timeout 300 $LS restore -i $F; }; then
      bad "$T: lockstep save and restore before the faults"; xl destroy $N 2>/dev/null; rm -f $F; continue
    fi
    # The reader of the stream dies mid-way: the save fails, the guest goes on.
    sleep 1; before=$(lasttick $N)
    { timeout 300 $LS save --domain $N -o - 2>/root/err; echo $? > /root/rc; } | head -c 20000000 >/dev/null
    if [ "$(cat /root/rc)" = 0 ]; then
      bad "$T: a save whose reader died succeeded"
    else
      echo "  lockstep: $(tail -n 1 /root/err)"
      if exists $N; then continued $N "$before" "$T: reader killed mid-stream, guest resumed"
      else bad "$T: the guest is gone after a failed save"; fi
    fi
    # Xen refuses to live-migrate a PV guest here (no shadow paging, so no
    # log-dirty for PV): lockstep says why in plain words; the guest runs on.
    if $LS migrate --help >/dev/null 2>&1; then
      before=$(lasttick $N)
      receiver /root/pvmig.sock
      timeout 120 $LS migrate --domid "$(domid_of $N)" --to unix:/root/pvmig.sock > /root/send.out 2>&1; src=$?
      wait $RPID
      why=$(tr '\r' '\n' < /root/send.out | grep -a "cannot be live-migrated" | head -n 1)
      echo "  lockstep: $why"
      if [ $src -ne 0 ] && [ -n "$why" ] && exists $N; then
        continued $N "$before" "$T: live migration refused by Xen, reason reported, guest runs on"
      else
        bad "$T: live migration of a PV guest: exit $src, reason '${why:-none}'"
        tr '\r' '\n' < /root/send.out | tail -n 4
      fi
    fi
    xl destroy $N
    settled 1; doms=$(ndomains)
    size=$(wc -c < $F)
    head -c $((size / 2)) $F > /root/trunc.xl
    if timeout 120 $LS restore -i /root/trunc.xl 2>/root/err; then bad "$T: a truncated file restored"
    else
      echo "  lockstep: $(tail -n 1 /root/err)"
      if settled "$doms" && ! exists $N; then ok "$T: truncated file refused, no domain left"
      else bad "$T: truncated file left a domain"; xl list; fi
    fi
    rm -f /root/trunc.xl
    # Corrupt the type of a record in the libxc stream (the TSC info's).
    at=$($LS inspect $F | awk '$3 == "X86_TSC_INFO" {print $1; exit}')
    cp $F /root/bad.xl
    printf '\377\377\377\177' | dd of=/root/bad.xl bs=1 seek="$at" conv=notrunc 2>/dev/null
    if timeout 120 $LS restore -i /root/bad.xl 2>/root/err; then bad "$T: a corrupted file restored"
    else
      echo "  lockstep: $(tail -n 1 /root/err)"
      if settled "$doms" && ! exists $N; then ok "$T: corrupted file refused, no domain left"
      else bad "$T: corrupted file left a domain"; xl list; fi
    fi
    rm -f /root/bad.xl
  fi
  rm -f $F
  [ $T = pvh ] && part pvh-migrate && migrate_tests
  [ $T = pvh ] && part pvh-remus && remus_tests
  xl destroy $N 2>/dev/null
  crashes
  mark $T-DONE
done

crashes
xl list
echo "$PASS passed, $FAIL failed"
[ $FAIL -eq 0 ]
