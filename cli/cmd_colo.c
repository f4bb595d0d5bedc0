/* cli/cmd_colo.c - `lockstep colo-primary` and `lockstep colo-secondary`.
 *
 * The transports are cmd_migrate.c's; replication itself is the library's
 * (ls_colo_primary_start, ls_colo_secondary_start: states/colo_*.def). Each
 * checkpoint and role change is a line: words on a terminal's status line,
 * or one JSON object per line with --json, for toolstacks.
 */
#include "cmd_colo.h"
#include "hist.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "lockstep/colo.h"
#include "jsonl.h"
#include "run.h"
#include "lockstep/sim.h"
#include "transport.h"

#define EXIT_USAGE 2
#define EXIT_ATTENTION 3

static const char primary_help[] =
"Usage: lockstep colo-primary (--domid N | --sim pv|hvm --memory SIZE [--vcpus N] [--seed S]\n"
"                              [--dirty-rate PAGES/S] [--dirty-pattern PATTERN]\n"
"                              [--disk FILE[,format=F] [--disk-every N] [--disk-block SIZE]])\n"
"                             --to tcp:HOST:PORT|unix:PATH|- [--mode colo|remus]\n"
"                             [--disk-nbd unix:PATH|tcp:HOST:PORT]\n"
"                             [--interval MS] [--timeout SECONDS] [--checkpoints N]\n"
"                             [--digest] [--json] [--net-world PATH [--net-listen ADDR]\n"
"                             [--net-qemu PATH] [--net-every N [--net-nondet PPM]]]\n"
"\n"
"Replicate a running domain to `lockstep colo-secondary` with continuous\n"
"checkpoints, as `xl remus -c` (COLO) or `xl remus` (Remus) does, on Xen 4.17's\n"
"wire: the first checkpoint is a live migration, then at each interval the guest\n"
"is suspended, the pages it (and, in COLO, the secondary's guest) wrote are sent\n"
"with its vCPU state, and it runs again once the secondary has the checkpoint.\n"
"\n"
"If the secondary is lost, the guest runs on here, unprotected, and this says\n"
"so (exit status 3). SIGINT or SIGTERM (or --checkpoints N reached) stop in\n"
"order: the secondary is told and destroys its copy (exit status 0). SIGUSR1\n"
"takes a checkpoint now, whatever the interval.\n"
"\n"
"Options:\n"
"  --domid N              replicate the existing domain N\n"
"  --sim pv|hvm           create a one-off simulated domain first (HVM: with the\n"
"                         stand-in device model; destroyed at the end)\n"
"  --disk FILE[,format=raw|qcow2], --disk-every N, --disk-block SIZE\n"
"                         its disks, as for migrate (served by a block QEMU); COLO\n"
"                         replicates them (--disk-nbd). Their writer (--disk-every)\n"
"                         starts at the first checkpoint, once they are replicated\n"
"  --disk-nbd ADDR        COLO: replicate the guest's disks (QEMU's block replication)\n"
"                         to the secondary's NBD server at ADDR (its --disk-nbd):\n"
"                         unix:PATH on one host, tcp:HOST:PORT between hosts. Both\n"
"                         sides' disks must hold the same data at the start\n"
"  --to ENDPOINT          tcp:HOST:PORT or unix:PATH, where colo-secondary waits;\n"
"                         - is stdout (stream) and stdin (the secondary's messages)\n"
"  --mode colo|remus      COLO (both guests run; default) or Remus (the\n"
"                         secondary's copy stays paused)\n"
"  --interval MS          between checkpoints (default: COLO 5000, Remus 200)\n"
"  --timeout SECONDS      how long the secondary may stay silent (default 10)\n"
"  --checkpoints N        stop in order after N checkpoints\n"
"  --digest               the guest's digest at every suspend (costs a pass over memory)\n"
"  --json                 one JSON object per line on stdout: checkpoint, role, outcome\n"
"  --net-world PATH       the guest's network output goes to the outside world, a\n"
"                         listening SOCK_SEQPACKET unix socket at PATH: COLO\n"
"                         compares it with the secondary's in QEMU's colo-compare\n"
"                         (a divergence asks a checkpoint) and releases what agrees;\n"
"                         Remus holds it until the checkpoint covering it is sent\n"
"  --net-listen ADDR      COLO: where the secondary's proxy sends its guest's frames\n"
"                         (tcp:HOST:PORT or unix:PATH)\n"
"  --net-qemu PATH        the QEMU that runs colo-compare (default qemu-system-x86_64)\n"
"  --net-every N, --net-nondet PPM\n"
"                         sim: the guest sends a frame every N writes, PPM per\n"
"                         million of them nondeterministic (lockstep sim net)\n"
"  -h, --help             this help\n";

static const char secondary_help[] =
"Usage: lockstep colo-secondary [--listen tcp:HOST:PORT|unix:PATH] [--mode colo|remus]\n"
"                               [--fence CMD] [--timeout SECONDS] [--digest] [--json]\n"
"                               [--dirty-rate PAGES/S] [--dirty-pattern P] [--seed S]\n"
"                               [--net-world PATH --net-peer ADDR\n"
"                               [--net-every N [--net-nondet PPM]]]\n"
"                               [--disk FILE[,format=F] ... --disk-nbd ADDR\n"
"                               [--disk-images DIR]]\n"
"\n"
"Receive a replicated domain from `lockstep colo-primary` and hold its last\n"
"checkpoint; in COLO mode the copy runs between checkpoints as a replica.\n"
"When the primary is lost (the connection ends or resets, or it is silent for\n"
"--timeout seconds) the copy is paused, CMD is run by /bin/sh (exit status 0:\n"
"the primary is fenced, it cannot run any more), and only then does the copy\n"
"run as the only one (exit status 0). If CMD fails the copy stays paused and\n"
"this says why (exit status 3). Without --fence the copy takes over at once,\n"
"as xl does, which risks two running copies when only the link failed.\n"
"SIGUSR1 takes over now (fencing first); SIGINT stops being the secondary and\n"
"destroys the copy.\n"
"\n"
"Options:\n"
"  --listen ENDPOINT      wait there (default: the stream on stdin, messages on stdout)\n"
"  --mode colo|remus      as the primary's\n"
"  --fence CMD            the fencing command\n"
"  --timeout SECONDS      the deadline for the primary's next word (default 10)\n"
"  --digest               the copy's digest at every applied checkpoint\n"
"  --json                 one JSON object per line on stdout\n"
"  --dirty-rate, --dirty-pattern, --seed\n"
"                         sim: the replica's own vCPU writes its memory so, from the\n"
"                         first checkpoint on (COLO; seed default 2)\n"
"  --net-world PATH       COLO: the outside world (as the primary's); our guest's\n"
"                         frames go there once we took over, the ones it has not\n"
"                         had first\n"
"  --net-peer ADDR        COLO: the primary's --net-listen; our guest's frames go\n"
"                         there to be compared\n"
"  --net-every N, --net-nondet PPM\n"
"                         sim: the replica's network (as the primary's guest's), from\n"
"                         the first checkpoint on\n"
"  --disk FILE[,format=raw|qcow2]\n"
"                         COLO: our copy's disks (up to 4, in the primary's order),\n"
"                         holding what the primary's held when replication started;\n"
"                         its QEMU exports them at --disk-nbd ADDR (unix:PATH or\n"
"                         tcp:HOST:PORT) and every checkpoint is applied to them;\n"
"                         after a failover they are the copy's own\n"
"  --disk-images DIR      where the active and hidden qcow2 images go (default: a\n"
"                         new directory under $TMPDIR, removed unless our copy\n"
"                         outlives us: taken over, or left paused)\n"
"  -h, --help             this help\n";

/* ---- one run -------------------------------------------------------------------------- */

struct colo_run {
    struct cli_run run;        /* first: the loop, signals, --json and the status line */
    uv_signal_t sigusr1;       /* the secondary's manual failover */
    const char *cmd;
    bool json, secondary;
    unsigned stop_after;
    FILE *out;
    struct hist pauses;        /* every checkpoint's pause, for the median and p99 */
    uint64_t pages, bytes;
    struct ls_colo_checkpoint last;
    /* sim: the replica's own workload, set once its guest first runs */
    bool workload;
    struct ls_sim_workload w;
    /* the guest's network */
    struct ls_colo_net_opts net;
    struct ls_sim_net guest_net;
    /* the guest's disks */
    struct ls_colo_disk_opts disks;
    struct guest_disks files;      /* secondary: --disk */
    struct ls_sim_disks writer;    /* primary (sim): its disk writer, from the first checkpoint */
    uint32_t writer_domid;
};

/* --net-* options both commands take; 0 taken, -1 not one of them, else the usage status. */
static int usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int net_opt(const char *cmd, int c, const char *arg, struct colo_run *r)
{
    uint64_t v;
    switch (c) {
    case 'W': r->net.world = arg; return 0;
    case 'L': r->net.listen = arg; return 0;
    case 'P': r->net.peer = arg; return 0;
    case 'Q': r->net.qemu = arg; return 0;
    case 'e':
        if (parse_u64(arg, UINT32_MAX, &r->guest_net.every) < 0 || r->guest_net.every == 0)
            return usage(cmd, "--net-every: '%s' is not a positive number of writes", arg);
        return 0;
    case 'D':
        if (parse_u64(arg, 1000000, &v) < 0)
            return usage(cmd, "--net-nondet: '%s' is not 0..1000000 per million", arg);
        r->guest_net.nondet_ppm = (unsigned)v;
        return 0;
    default:
        return -1;
    }
}

/* The status line's and JSON's network part. */
static void net_status(struct colo_run *r, struct ls_colo_net_stats *st)
{
    *st = (struct ls_colo_net_stats){ 0 };
    if (r->run.op)
        ls_colo_net_stats(r->run.op, st);
}

static int usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lockstep %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see lockstep %s --help)\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

/* The p-th percentile (0..100) of the pauses so far, in µs. */
static double pause_pct(const struct colo_run *r, double p)
{
    return (double)hist_pct(&r->pauses, p) / 1e3;
}

static void print_status(struct cli_run *run, bool final)
{
    struct colo_run *r = run->status_data;
    fprintf(stderr, "\r%s: %u checkpoints, pause last %.2f median %.2f p99 %.2f ms, "
            "last %" PRIu64 " pages, %.1f MiB   ", r->cmd, r->last.number,
            (double)r->last.pause_ns / 1e6, pause_pct(r, 50) / 1e3, pause_pct(r, 99) / 1e3,
            r->last.pages, (double)r->bytes / (1 << 20));
    if (r->net.world) {
        struct ls_colo_net_stats st;
        net_status(r, &st);
        fprintf(stderr, "packets compared %" PRIu64 " released %" PRIu64 " held %" PRIu64,
                st.compared, st.released, st.held);
        if (!r->secondary)
            fprintf(stderr, ", checkpoints periodic %u divergence %u manual %u   ",
                    st.checkpoints_periodic, st.checkpoints_divergence, st.checkpoints_manual);
    }
    if (r->disks.nbd) {
        struct ls_colo_disk_stats d;
        if (r->run.op && ls_colo_disk_stats(r->run.op, &d) == 0)
            fprintf(stderr, "disks %s, checkpoint %.2f ms   ", ls_colo_disk_state_name(d.state),
                    (double)d.checkpoint_ns / 1e6);
    }
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* The disks' part of a JSON line. */
static void disk_json(struct colo_run *r, struct jl *j, bool outcome)
{
    struct ls_colo_disk_stats d;
    if (!r->disks.nbd || !r->run.op || ls_colo_disk_stats(r->run.op, &d) < 0)
        return;
    jl_str(j, "disk_state", ls_colo_disk_state_name(d.state));
    jl_u64(j, "disks", d.ndisks);
    jl_u64(j, "disk_checkpoints", d.checkpoints);
    jl_dbl(j, "disk_checkpoint_us", (double)d.checkpoint_ns / 1e3);
    if (outcome || d.note[0])
        jl_str(j, "disk_note", d.note);
}

static void net_json(struct colo_run *r, struct jl *j)
{
    struct ls_colo_net_stats st;
    net_status(r, &st);
    jl_u64(j, "packets_compared", st.compared);
    jl_u64(j, "packets_secondary", st.secondary);
    jl_u64(j, "packets_released", st.released);
    jl_u64(j, "packets_held", st.held);
    jl_u64(j, "divergences", st.divergences);
    jl_u64(j, "packets_direct", st.direct);
    jl_u64(j, "packets_stale", st.stale);
    if (!r->secondary) {
        jl_u64(j, "checkpoints_periodic", st.checkpoints_periodic);
        jl_u64(j, "checkpoints_divergence", st.checkpoints_divergence);
        jl_u64(j, "checkpoints_manual", st.checkpoints_manual);
    }
}

static void on_checkpoint(struct ls_op *op, const struct ls_colo_checkpoint *c, void *data)
{
    struct colo_run *r = data;
    r->last = *c;
    r->pages += c->pages;
    r->bytes += c->bytes;
    if (c->pause_ns)
        hist_add(&r->pauses, c->pause_ns);
    if (r->json) {
        struct jl j;
        jl_open(&j, r->out, "checkpoint", r->cmd);
        jl_u64(&j, "n", c->number);
        jl_u64(&j, "domid", c->domid);
        jl_u64(&j, "pages", c->pages);
        jl_u64(&j, "bytes", c->bytes);
        jl_dbl(&j, "pause_us", (double)c->pause_ns / 1e3);
        jl_str(&j, "digest", c->digest);
        struct ls_colo_dm_state dm;
        if (ls_colo_dm_state(op, &dm) == 0) {
            jl_str(&j, "dm_digest", dm.digest);
            jl_u64(&j, "dm_bytes", dm.bytes);
            jl_u64(&j, "dm_pid", (uint64_t)dm.pid);
            jl_dbl(&j, "dm_us", (double)dm.ns / 1e3);
        }
        if (r->net.world)
            net_json(r, &j);
        disk_json(r, &j, false);
        jl_close(&j);
    }
    /* The primary's disk writer starts once its disks are replicated. */
    if (!r->secondary && r->writer.every && c->number == 1) {
        struct ls_errbuf err;
        ls_err_clear(&err);
        if (ls_sim_set_disks(ls_ctx_backend(r->run.ctx), r->writer_domid, &r->writer, &err) < 0)
            fprintf(stderr, "lockstep %s: the guest's disk writer: %s\n", r->cmd, err.msg);
    }
    /* The replica's own vCPU (and network) starts with its guest (the first checkpoint). */
    if (r->secondary && r->guest_net.every && c->number == 1) {
        struct ls_errbuf err;
        ls_err_clear(&err);
        if (ls_sim_set_net(ls_ctx_backend(r->run.ctx), c->domid, &r->guest_net, &err) < 0)
            fprintf(stderr, "lockstep %s: the replica's network: %s\n", r->cmd, err.msg);
    }
    if (r->secondary && r->workload && c->number == 1) {
        struct ls_errbuf err;
        ls_err_clear(&err);
        if (ls_sim_set_workload(ls_ctx_backend(r->run.ctx), c->domid, &r->w, &err) < 0)
            fprintf(stderr, "lockstep %s: the replica's workload: %s\n", r->cmd, err.msg);
    }
    if (r->stop_after && c->number == r->stop_after && !r->run.done)
        ls_op_cancel(op);
}

static void on_role(struct ls_op *op, enum ls_colo_role role, const char *why, void *data)
{
    struct colo_run *r = data;
    if (r->json) {
        struct jl j;
        jl_open(&j, r->out, "role", r->cmd);
        jl_str(&j, "role", ls_colo_role_name(role));
        jl_str(&j, "why", why);
        jl_close(&j);
    } else {
        if (r->run.show_progress)
            fputc('\n', stderr);
        fprintf(r->out, "role %s: %s\n", ls_colo_role_name(role), why);
    }
    fflush(r->out);
}

/* SIGUSR1: the secondary takes over, the primary takes a checkpoint now. */
static void sigusr1_cb(uv_signal_t *s, int signum)
{
    struct colo_run *r = s->data;
    if (!r->run.op || r->run.done)
        return;
    if (r->secondary ? ls_colo_failover(r->run.op) == 0 : ls_colo_checkpoint(r->run.op) == 0)
        fprintf(stderr, "\nlockstep %s: %s requested (SIGUSR1)\n", r->cmd,
                r->secondary ? "failover" : "checkpoint");
}

static void op_done(struct ls_op *op, int rc, const char *msg, void *data)
{
    struct colo_run *r = data;
    uv_close((uv_handle_t *)&r->sigusr1, NULL);
    cli_run_done(op, rc, msg, &r->run);
}

/* Run the started operation to its end (SIGUSR1: a manual failover or checkpoint). */
static int run_wait(struct colo_run *r)
{
    r->run.json = r->json ? r->out : NULL;
    r->run.status_line = print_status;
    r->run.status_data = r;
    uv_signal_init(&r->run.loop, &r->sigusr1);
    r->sigusr1.data = r;
    uv_signal_start(&r->sigusr1, sigusr1_cb, SIGUSR1);
    return cli_run_wait(&r->run);
}

/* The end: a line (or JSON object) with the role, and the exit status. */
static int finish(struct colo_run *r, int rc, const char *err)
{
    struct ls_op *op = r->run.op;
    enum ls_colo_role role = op ? ls_op_colo_role(op) : LS_COLO_ENDED;
    if (rc < 0 && err[0] && !r->json)
        fprintf(stderr, "lockstep %s: %s\n", r->cmd, err);
    if (r->json) {
        struct jl j;
        jl_open(&j, r->out, "outcome", r->cmd);
        jl_str(&j, "role", ls_colo_role_name(role));
        if (op && ls_op_domid(op))
            jl_u64(&j, "domid", ls_op_domid(op));
        jl_u64(&j, "checkpoints", r->last.number);
        jl_dbl(&j, "pause_median_us", pause_pct(r, 50));
        jl_dbl(&j, "pause_p99_us", pause_pct(r, 99));
        jl_u64(&j, "pages", r->pages);
        jl_u64(&j, "bytes", r->bytes);
        if (r->net.world)
            net_json(r, &j);
        disk_json(r, &j, true);
        jl_result(&j, rc, err);
        jl_close(&j);
    } else {
        fprintf(r->out, "checkpoints %u pause_median_us %.1f pause_p99_us %.1f pages %" PRIu64
                " bytes %" PRIu64 "\n", r->last.number, pause_pct(r, 50), pause_pct(r, 99),
                r->pages, r->bytes);
        struct ls_colo_disk_stats d;
        if (r->disks.nbd && op && ls_colo_disk_stats(op, &d) == 0)
            fprintf(r->out, "disks %s%s%s\n", ls_colo_disk_state_name(d.state),
                    d.note[0] ? ": " : "", d.note);
        fprintf(r->out, "outcome %s\n", ls_colo_role_name(role));
    }
    fflush(r->out);
    switch (role) {
    case LS_COLO_STOPPED: case LS_COLO_ACTIVE: return 0;
    case LS_COLO_UNPROTECTED: case LS_COLO_FENCE_FAILED: return EXIT_ATTENTION;
    default: return 1;
    }
}

static int parse_mode(const char *s, enum ls_colo_mode *m)
{
    if (strcmp(s, "colo") == 0)
        *m = LS_COLO_MODE_COLO;
    else if (strcmp(s, "remus") == 0)
        *m = LS_COLO_MODE_REMUS;
    else
        return -EINVAL;
    return 0;
}

/* ---- colo-primary ------------------------------------------------------------------- */

int ls_cmd_colo_primary(int argc, char **argv, enum ls_backend_kind backend)
{
    static const struct option opts[] = {
        GUEST_ARGS_OPTIONS, { "to", required_argument, NULL, 't' },
        { "mode", required_argument, NULL, 'M' }, { "interval", required_argument, NULL, 'i' },
        { "timeout", required_argument, NULL, 'o' }, { "checkpoints", required_argument, NULL, 'c' },
        { "digest", no_argument, NULL, 'g' }, { "json", no_argument, NULL, 'j' },
        { "net-world", required_argument, NULL, 'W' }, { "net-listen", required_argument, NULL, 'L' },
        { "net-qemu", required_argument, NULL, 'Q' }, { "net-every", required_argument, NULL, 'e' },
        { "net-nondet", required_argument, NULL, 'D' },
        { "disk-nbd", required_argument, NULL, 'B' },
        { "help", no_argument, NULL, 'h' }, { 0 },
    };
    const char *to = NULL, *cmd = "colo-primary";
    uint64_t timeout_s = 10, interval = 0, v;
    struct guest_args g = GUEST_ARGS_INIT;
    struct ls_colo_primary_opts po = { .mode = LS_COLO_MODE_COLO };
    struct colo_run r = { .out = stdout };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int taken = guest_args_opt(cmd, c, optarg, &g);
        if (taken > 0)
            return taken;
        if (taken == 0)
            continue;
        if ((taken = net_opt(cmd, c, optarg, &r)) > 0)
            return taken;
        if (taken == 0)
            continue;
        switch (c) {
        case 't': to = optarg; break;
        case 'M':
            if (parse_mode(optarg, &po.mode) < 0)
                return usage(cmd, "--mode: '%s' is not colo or remus", optarg);
            break;
        case 'i':
            if (parse_u64(optarg, 3600000, &interval) < 0 || interval == 0)
                return usage(cmd, "--interval: '%s' is not 1..3600000 ms", optarg);
            break;
        case 'o':
            if (parse_u64(optarg, 86400, &timeout_s) < 0 || timeout_s == 0)
                return usage(cmd, "--timeout: '%s' is not 1..86400 seconds", optarg);
            break;
        case 'c':
            if (parse_u64(optarg, UINT32_MAX, &v) < 0 || v == 0)
                return usage(cmd, "--checkpoints: '%s' is not a positive number", optarg);
            r.stop_after = (unsigned)v;
            break;
        case 'g': po.digest = true; break;
        case 'j': r.json = true; break;
        case 'B': r.disks.nbd = optarg; break;
        case 'h': fputs(primary_help, stdout); return 0;
        default: return usage(cmd, "unknown option");
        }
    }
    if (optind < argc)
        return usage(cmd, "unexpected argument '%s'", argv[optind]);
    int bad = guest_args_check(cmd, &g);
    if (bad)
        return bad;
    if (!to)
        return usage(cmd, "--to tcp:HOST:PORT|unix:PATH|- is required");
    if (r.net.world && po.mode == LS_COLO_MODE_COLO && !r.net.listen)
        return usage(cmd, "--net-world: COLO needs --net-listen too (the secondary's frames)");
    if ((r.net.listen || r.net.qemu) && !r.net.world)
        return usage(cmd, "--net-listen and --net-qemu go with --net-world");
    if (r.guest_net.every && !g.sim)
        return usage(cmd, "--net-every goes with --sim (an existing domain has its network)");
    if (r.guest_net.nondet_ppm && !r.guest_net.every)
        return usage(cmd, "--net-nondet goes with --net-every");
    if (r.disks.nbd && po.mode != LS_COLO_MODE_COLO)
        return usage(cmd, "--disk-nbd: Remus does not replicate disks (libxl leaves them to "
                     "the storage)");
    if (g.disks.n && po.mode == LS_COLO_MODE_COLO && !r.disks.nbd)
        return usage(cmd, "--disk: COLO replicates the guest's disks: give --disk-nbd ADDR too "
                     "(the secondary's --disk-nbd)");
    if (r.disks.nbd && g.disks.n) {
        /* Written from the first checkpoint on: every write is then replicated. */
        r.writer = g.disks.cfg;
        g.disks.cfg.every = 0;
    }
    struct endpoint ep;
    if (parse_endpoint(to, &ep) < 0)
        return usage(cmd, "--to: '%s' is not tcp:HOST:PORT, unix:PATH or -", to);
    if (ep.kind == EP_STDIO && isatty(STDOUT_FILENO))
        return usage(cmd, "--to -: refusing to write a binary stream to a terminal");
    if (ep.kind == EP_STDIO)
        r.out = stderr;

    unsigned timeout_ms = (unsigned)timeout_s * 1000;
    if (cli_run_open(&r.run, cmd, g.sim ? LS_BACKEND_SIM : backend) < 0)
        return 1;
    r.cmd = cmd;
    struct ls_backend *be = ls_ctx_backend(r.run.ctx);
    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = ls_colo_mode_supported(r.run.ctx, po.mode, &err);   /* before connecting */
    if (rc == 0 && g.sim)
        rc = guest_args_create(be, &g, "lockstep-colo", LS_DM_STANDIN, &err);
    if (rc == 0 && r.guest_net.every)
        rc = ls_sim_set_net(be, (uint32_t)g.domid, &r.guest_net, &err);
    int fd = -1;
    char why[512] = "";
    if (rc == 0 && ep.kind != EP_STDIO) {
        fd = ep_connect(&ep, timeout_ms, why, sizeof(why));
        if (fd < 0)
            rc = ls_err(&err, fd, "%s", why);
    }
    if (rc == 0) {
        po.domid = (uint32_t)g.domid;
        po.send_fd = ep.kind == EP_STDIO ? STDOUT_FILENO : fd;
        po.recv_fd = ep.kind == EP_STDIO ? STDIN_FILENO : fd;
        po.interval_ms = (unsigned)interval;
        po.timeout_ms = timeout_ms;
        po.on_checkpoint = on_checkpoint;
        po.on_role = on_role;
        po.cb_data = &r;
        r.writer_domid = po.domid;
        rc = ls_colo_primary_start_disks(r.run.ctx, &po, r.net.world ? &r.net : NULL,
                                         r.disks.nbd ? &r.disks : NULL, op_done, &r, &r.run.op,
                                         &err);
        if (rc == 0 && (rc = run_wait(&r)) < 0)
            snprintf(err.msg, sizeof(err.msg), "%s", r.run.errmsg);
    }
    int status = finish(&r, rc, err.msg);
    /* A one-off domain is this command's to remove, wherever replication ended. */
    if (g.created) {
        struct ls_errbuf ignored;
        ls_err_clear(&ignored);
        ls_domain_destroy(r.run.ctx, (uint32_t)g.domid, &ignored);
    }
    if (fd > STDERR_FILENO)
        close(fd);
    cli_run_close(&r.run);
    return check_fds(status);
}

/* ---- colo-secondary ------------------------------------------------------------------- */

int ls_cmd_colo_secondary(int argc, char **argv, enum ls_backend_kind backend)
{
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' }, { "mode", required_argument, NULL, 'M' },
        { "fence", required_argument, NULL, 'f' }, { "timeout", required_argument, NULL, 'o' },
        { "digest", no_argument, NULL, 'g' }, { "json", no_argument, NULL, 'j' },
        { "dirty-rate", required_argument, NULL, 'r' },
        { "dirty-pattern", required_argument, NULL, 'p' }, { "seed", required_argument, NULL, 'S' },
        { "net-world", required_argument, NULL, 'W' }, { "net-peer", required_argument, NULL, 'P' },
        { "net-every", required_argument, NULL, 'e' }, { "net-nondet", required_argument, NULL, 'D' },
        { "disk", required_argument, NULL, OPT_DISK }, { "disk-nbd", required_argument, NULL, 'B' },
        { "disk-images", required_argument, NULL, 'I' },
        { "help", no_argument, NULL, 'h' }, { 0 },
    };
    const char *listen_at = NULL, *cmd = "colo-secondary";
    uint64_t timeout_s = 10;
    struct ls_colo_secondary_opts so = { .mode = LS_COLO_MODE_COLO };
    struct colo_run r = { .out = stdout, .secondary = true,
                          .w = { .pattern = LS_SIM_DIRTY_UNIFORM, .seed = 2 } };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        int taken = net_opt(cmd, c, optarg, &r);
        if (taken > 0)
            return taken;
        if (taken == 0)
            continue;
        switch (c) {
        case 'l': listen_at = optarg; break;
        case 'M':
            if (parse_mode(optarg, &so.mode) < 0)
                return usage(cmd, "--mode: '%s' is not colo or remus", optarg);
            break;
        case 'f': so.fence_cmd = optarg; break;
        case 'o':
            if (parse_u64(optarg, 86400, &timeout_s) < 0 || timeout_s == 0)
                return usage(cmd, "--timeout: '%s' is not 1..86400 seconds", optarg);
            break;
        case 'g': so.digest = true; break;
        case 'j': r.json = true; break;
        case 'r':
            if (parse_u64(optarg, UINT64_MAX, &r.w.rate) < 0)
                return usage(cmd, "--dirty-rate: '%s' is not a number of pages per second", optarg);
            r.workload = true;
            break;
        case 'p':
            if (ls_sim_parse_pattern(optarg, &r.w.pattern, &r.w.hot_percent) < 0)
                return usage(cmd, "--dirty-pattern: '%s' is not uniform, sequential or "
                             "hotset:PERCENT (1..100)", optarg);
            r.workload = true;
            break;
        case 'S':
            if (parse_u64(optarg, UINT64_MAX, &r.w.seed) < 0)
                return usage(cmd, "--seed: '%s' is not a number", optarg);
            break;
        case OPT_DISK: {
            char why[300];
            if (guest_disks_opt(c, optarg, &r.files, why, sizeof(why)) < 0)
                return usage(cmd, "%s", why);
            break;
        }
        case 'B': r.disks.nbd = optarg; break;
        case 'I': r.disks.image_dir = optarg; break;
        case 'h': fputs(secondary_help, stdout); return 0;
        default: return usage(cmd, "unknown option");
        }
    }
    if (optind < argc)
        return usage(cmd, "unexpected argument '%s'", argv[optind]);
    struct endpoint ep = { .kind = EP_STDIO };
    if (listen_at && (parse_endpoint(listen_at, &ep) < 0 || ep.kind == EP_STDIO))
        return usage(cmd, "--listen: '%s' is not tcp:HOST:PORT or unix:PATH", listen_at);
    if (!listen_at && isatty(STDIN_FILENO))
        return usage(cmd, "the stream would come from a terminal: give --listen, or pipe the "
                     "primary's stream in");
    if (r.workload && so.mode == LS_COLO_MODE_REMUS)
        return usage(cmd, "--dirty-rate: a Remus secondary's copy does not run");
    if (r.net.world && so.mode == LS_COLO_MODE_COLO && !r.net.peer)
        return usage(cmd, "--net-world: COLO needs --net-peer too (the primary's --net-listen)");
    if (r.net.peer && !r.net.world)
        return usage(cmd, "--net-peer goes with --net-world");
    if (r.guest_net.nondet_ppm && !r.guest_net.every)
        return usage(cmd, "--net-nondet goes with --net-every");
    if (!r.files.n != !r.disks.nbd)
        return usage(cmd, "--disk and --disk-nbd go together (our copy's disks, and where its "
                     "QEMU serves them to the primary)");
    if (r.disks.image_dir && !r.disks.nbd)
        return usage(cmd, "--disk-images goes with --disk-nbd");
    if (r.disks.nbd && so.mode != LS_COLO_MODE_COLO)
        return usage(cmd, "--disk-nbd: Remus does not replicate disks (libxl leaves them to "
                     "the storage)");
    r.disks.ndisks = r.files.n;
    for (unsigned i = 0; i < r.files.n; i++) {
        r.disks.files[i] = r.files.disk[i].path;
        r.disks.formats[i] = (unsigned)r.files.disk[i].format;
    }
    if (ep.kind == EP_STDIO)
        r.out = stderr;
    if (!so.fence_cmd)
        fprintf(stderr, "lockstep %s: warning: no --fence command: after a lost link this copy "
                "takes over at once, as xl does, and if the primary still runs there are two\n",
                cmd);

    unsigned timeout_ms = (unsigned)timeout_s * 1000;
    if (cli_run_open(&r.run, cmd, backend) < 0)
        return 1;
    r.cmd = cmd;
    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = ls_colo_mode_supported(r.run.ctx, so.mode, &err), fd = -1;   /* before listening */
    if (rc == 0 && ep.kind != EP_STDIO) {
        char why[512] = "";
        fd = ep_accept(&ep, 60000, NULL, why, sizeof(why));
        if (fd < 0)
            rc = ls_err(&err, fd, "%s", why);
    }
    if (rc == 0) {
        so.recv_fd = ep.kind == EP_STDIO ? STDIN_FILENO : fd;
        so.send_fd = ep.kind == EP_STDIO ? STDOUT_FILENO : fd;
        so.timeout_ms = timeout_ms;
        so.on_checkpoint = on_checkpoint;
        so.on_role = on_role;
        so.cb_data = &r;
        rc = ls_colo_secondary_start_disks(r.run.ctx, &so, r.net.world ? &r.net : NULL,
                                           r.disks.nbd ? &r.disks : NULL, op_done, &r,
                                           &r.run.op, &err);
        if (rc == 0 && (rc = run_wait(&r)) < 0)
            snprintf(err.msg, sizeof(err.msg), "%s", r.run.errmsg);
    }
    int status = finish(&r, rc, err.msg);
    if (fd > STDERR_FILENO)
        close(fd);
    cli_run_close(&r.run);
    return check_fds(status);
}
