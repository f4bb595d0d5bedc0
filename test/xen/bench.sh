#!/bin/sh
# test/xen/bench.sh - lockstep against xl on the same nested Xen, same run:
# save a 128 MiB and a 256 MiB PVH guest to a file (and restore it), and
# live-migrate the PVH guest to localhost. Prints both times and the ratio
# lockstep/xl (below 1: lockstep is faster). The emulated machine is slow:
# the ratio is what counts, not the seconds.
LS=/opt/lockstep/bin/lockstep
export LOCKSTEP_BACKEND=xen
CONS=/var/log/xen/console
now() { cut -d' ' -f1 /proc/uptime; }
lasttick() { grep -a 'GUEST-TICK' "$CONS/guest-$1.log" 2>/dev/null | tail -n 1 | tr -dc '0-9'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
report() { echo "bench $1: lockstep $2 s, xl $3 s, ratio $(ratio "$2" "$3")"; }
min() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || a == "n/a") print b; else if (b == "n/a" || a + 0 <= b + 0) print a; else print b }'; }
# timed CMD...: its run time in seconds on stdout; a failure is said on stderr.
timed() { t=$(now); "$@" >/dev/null 2>/root/err || { echo "bench: failed: $* ($(tail -n 1 /root/err))" >&2; echo "n/a"; return 1; }; awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# fresh: a new gpvh from /root/bench.cfg, ticking
fresh() {
  rm -f $CONS/guest-gpvh*.log
  xl create /root/bench.cfg >/dev/null 2>&1 || { echo "bench: xl create failed"; status=1; return 1; }
  i=0; while [ -z "$(lasttick gpvh)" ] && [ $i -lt 90 ]; do sleep 1; i=$((i + 1)); done
  sleep 2
}
status=0
for MEM in 128 256; do
  sed "s/^memory = .*/memory = $MEM/" /opt/lockstep/pvh.cfg > /root/bench.cfg
  fresh || continue
  # Each tool saves and restores the same running guest, in turns, three
  # times: the best is kept (the emulated machine is noisy); all are shown.
  xs=""; xr=""; ls_s=""; ls_r=""
  for round in 1 2 3; do
    a=$(timed xl save gpvh /root/b.xl) || status=1; xs=$(min "$xs" "$a")
    b=$(timed xl restore /root/b.xl) || status=1; xr=$(min "$xr" "$b")
    rm -f /root/b.xl; sleep 2
    c=$(timed $LS save --domain gpvh -o /root/b.xl) || status=1; ls_s=$(min "$ls_s" "$c")
    size=$(wc -c < /root/b.xl)
    d=$(timed $LS restore -i /root/b.xl) || status=1; ls_r=$(min "$ls_r" "$d")
    rm -f /root/b.xl; sleep 2
    echo "bench round $round, $MEM MiB: save xl $a s, lockstep $c s; restore xl $b s, lockstep $d s"
  done
  report "save PVH $MEM MiB ($size bytes)" "$ls_s" "$xs"
  report "restore PVH $MEM MiB" "$ls_r" "$xr"
  if [ $MEM = 128 ]; then
    # Live migration to this same dom0, each of a freshly created guest:
    # xl's (to xl migrate-receive), then lockstep's (to lockstep migrate-receive).
    xl destroy gpvh; fresh
    xm=$(timed xl migrate -s "" gpvh "xl migrate-receive") || status=1
    sleep 3; xl destroy gpvh; fresh
    rm -f /root/b.sock
    $LS migrate-receive --listen unix:/root/b.sock > /root/recv.out 2>&1 &
    rpid=$!
    i=0; while ! grep -q "listening on" /root/recv.out && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
    lm=$(timed $LS migrate --domid "$(xl domid gpvh)" --to unix:/root/b.sock) ||
      { status=1; tr '\r' '\n' < /root/err | grep -av '^migrate: ' | tail -n 8 >&2; }
    wait $rpid || { echo "bench: migrate-receive: $(tail -n 1 /root/recv.out)"; status=1; }
    report "live migrate PVH $MEM MiB to localhost" "$lm" "$xm"
  fi
  xl destroy gpvh 2>/dev/null
done
echo "bench: done"
exit $status
