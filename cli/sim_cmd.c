/* cli/sim_cmd.c - `lockstep sim create|list|info|pause|unpause|destroy|digest`. */
#include "sim_cmd.h"
#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lockstep/lockstep.h"
#include "lockstep/sim.h"

static const char sim_help[] =
"Usage: lockstep sim COMMAND [ARGS]\n"
"\n"
"Manage the domains of the simulated hypervisor (lockstep-simd). The daemon is\n"
"started on demand and holds domains outside any lockstep process, as Xen does:\n"
"killing lockstep leaves a domain where it was; killing the daemon is the host\n"
"dying.\n"
"\n"
"Commands:\n"
"  create --type pv|hvm|pvh --memory SIZE [--vcpus N] [--seed S] [--name NAME]\n"
"         [--dirty-rate PAGES/S] [--dirty-pattern PATTERN] [--net-every N [--net-nondet PPM]]\n"
"         [--disk FILE[,format=raw|qcow2] ... [--disk-every N] [--disk-block SIZE]]\n"
"         [--qemu PATH [--dm-load-state-in-place] | --no-device-model]\n"
"                   create a running domain with deterministic content; prints\n"
"                   its domid. With --dirty-rate its own vCPU (a thread of the\n"
"                   daemon) writes that many pages per second while it runs.\n"
"                   An HVM domain gets a real QEMU as its device model, started\n"
"                   by the daemon (headless, paused with -S, QMP on a socket in\n"
"                   <rundir>/domain-<domid>/): qemu-system-x86_64 from PATH, or\n"
"                   the binary --qemu names. --no-device-model: none (lockstep\n"
"                   then saves its in-process stand-in device state).\n"
"                   --dm-load-state-in-place declares that this QEMU can load a\n"
"                   device state while running (xen-load-devices-state); it is\n"
"                   never probed, since Debian's QEMU 7.2 aborts on it.\n"
"                   --net-every N gives it a network: see net\n"
"                   --disk FILE (up to 4, HVM) gives it disks: see disk\n"
"  workload DOMID [--rate PAGES/S] [--pattern PATTERN] [--seed S] [--replay N]\n"
"                   set the vCPU's writes (pattern and seed only before the\n"
"                   first write; --replay makes writes up to the N-th at once,\n"
"                   on a paused domain), then print: rate, pattern, writes made,\n"
"                   data pages\n"
"  net DOMID [--every N] [--nondet PPM] [--rng-seed S] [--read N]\n"
"                   the guest's network output: its vCPU sends one Ethernet/\n"
"                   IPv4/UDP frame every N writes, made from its memory (the\n"
"                   same state sends the same frames); PPM per million of them\n"
"                   are nondeterministic (a host-random value, stored in its\n"
"                   memory first). Prints: every, nondet_ppm, frames, nondet,\n"
"                   dropped, sent; with --read N, attaches as the reader (frames\n"
"                   find none are dropped) and prints N frames first, one line\n"
"                   each: seq, writes, word, nondet\n"
"  disk DOMID [--attach FILE[,format=raw|qcow2]] [--every N] [--block SIZE]\n"
"             [--top on|off]\n"
"                   the guest's disks: each is a drive of its block QEMU (a QEMU\n"
"                   beside its device model: lsdiskN, a quorum of one child, as\n"
"                   libxl's COLO primary drive); every\n"
"                   N vCPU writes it writes one block of SIZE (default 64K)\n"
"                   through QEMU: disk write j fills a block picked by (seed, j)\n"
"                   with the byte 1 + j % 255, so its disks follow from its seed\n"
"                   and write count; a pause or suspend returns once every owed\n"
"                   write is in QEMU. --top on writes lsdiskN-top (a COLO\n"
"                   replica's view). Prints: disks, every, block, top, owed,\n"
"                   written, failed, last_error, and the block QEMU's pid, qmp\n"
"                   and log\n"
"  list             one line per domain: domid, name, type, state, vcpus, memory\n"
"  info DOMID       the same for one domain\n"
"  pause DOMID      pause a running domain\n"
"  unpause DOMID    unpause a paused domain\n"
"  resume DOMID     resume a suspended domain (xc_domain_resume, not fast)\n"
"  destroy DOMID    destroy a domain\n"
"  digest DOMID     the digest of its memory, vCPU and HVM state (hex)\n"
"  dm DOMID         its device model, one 'key value' per line: state (none,\n"
"                   running, or how it died: a QEMU that exits on its own is\n"
"                   reported here, not replaced), pid, qemu, qmp (socket), log,\n"
"                   incoming (started on a restored state), load-state-in-place,\n"
"                   loads (device states it took), standby (pid of a waiting\n"
"                   standby QEMU, 0 = none)\n"
"  dm-standby DOMID start a standby QEMU (-incoming defer) for the domain's next\n"
"                   device state; it starts in the background\n"
"  dm-load DOMID FILE\n"
"                   the domain's device model takes the device state in FILE\n"
"                   (a QEMU savevm image): a QEMU configured load-state-in-place\n"
"                   loads it itself; otherwise the standby (started now if none\n"
"                   waits) loads it and replaces the domain's QEMU, paused\n"
"\n"
"PATTERN is uniform (any data page), hotset:PERCENT (that share of the data\n"
"pages, spread over memory) or sequential (each data page in turn). Write k is\n"
"a pure function of (seed, pattern, k): a fresh domain of the same seed given\n"
"--replay K holds exactly the state a running one had after K writes.\n"
"\n"
"Options:\n"
"  -h, --help       this help\n"
"\n"
"Environment: LOCKSTEP_RUNDIR selects the daemon (socket, pid file, log).\n"
"Exit status: 0 done; 1 the daemon refused or failed (reason printed); 2 usage.\n";

static int size_kib(const char *s, uint64_t *kib)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mult = 0;
    if (end == s || v == 0)
        return -EINVAL;
    if (*end == 'K' || *end == 'k')
        mult = 1;
    else if (*end == 'M' || *end == 'm')
        mult = 1024;
    else if (*end == 'G' || *end == 'g')
        mult = 1024 * 1024;
    else if (*end == '\0') {
        *kib = v / 1024;
        return v % 4096 ? -EINVAL : 0;
    } else
        return -EINVAL;
    if (end[1] != '\0')
        return -EINVAL;
    *kib = v * mult;
    return *kib % 4 ? -EINVAL : 0;
}

static int parse_count(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-')
        return -EINVAL;
    *v = x;
    return 0;
}

static int parse_ppm(const char *s, unsigned *ppm)
{
    uint64_t v;
    if (parse_count(s, &v) < 0 || v > 1000000)
        return -EINVAL;
    *ppm = (unsigned)v;
    return 0;
}

static int parse_domid(const char *s, uint32_t *domid)
{
    char *end;
    unsigned long v = strtoul(s ? s : "", &end, 10);
    if (!s || end == s || *end || v > UINT32_MAX)
        return -EINVAL;
    *domid = (uint32_t)v;
    return 0;
}

static void print_info(const struct ls_domain_info *d)
{
    printf("%-6u %-24s %-5s %-10s %-5u %llu\n", d->domid, d->name, ls_guest_type_name(d->type),
           ls_run_state_name(d->state), d->vcpus, (unsigned long long)d->memory_kib);
}

static int sim_create(struct ls_ctx *ctx, int argc, char **argv, struct ls_errbuf *e)
{
    struct ls_backend *be = ls_ctx_backend(ctx);
    static const struct option opts[] = {
        { "type", required_argument, NULL, 't' }, { "memory", required_argument, NULL, 'm' },
        { "vcpus", required_argument, NULL, 'v' }, { "seed", required_argument, NULL, 's' },
        { "name", required_argument, NULL, 'n' }, { "dirty-rate", required_argument, NULL, 'r' },
        { "dirty-pattern", required_argument, NULL, 'p' }, { "qemu", required_argument, NULL, 'q' },
        { "no-device-model", no_argument, NULL, 'N' },
        { "dm-load-state-in-place", no_argument, NULL, 'L' },
        { "net-every", required_argument, NULL, 'e' }, { "net-nondet", required_argument, NULL, 'D' },
        { "disk", required_argument, NULL, OPT_DISK },
        { "disk-every", required_argument, NULL, OPT_DISK_EVERY },
        { "disk-block", required_argument, NULL, OPT_DISK_BLOCK },
        { 0 },
    };
    struct ls_sim_create_args a = { .vcpus = 1, .seed = 1, .populate = true };
    struct guest_disks disks = { 0 };
    char why[300];
    struct ls_sim_workload w = { .pattern = LS_SIM_DIRTY_UNIFORM };
    struct ls_sim_net net = { 0 };
    bool workload = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            a.type = strcmp(optarg, "pv") == 0    ? LS_GUEST_PV
                   : strcmp(optarg, "hvm") == 0   ? LS_GUEST_HVM
                   : strcmp(optarg, "pvh") == 0   ? LS_GUEST_PVH : LS_GUEST_UNSET;
            if (a.type == LS_GUEST_UNSET)
                return ls_err(e, -EINVAL, "--type: '%s' is not pv, hvm or pvh", optarg);
            break;
        case 'm':
            if (size_kib(optarg, &a.memory_kib) < 0)
                return ls_err(e, -EINVAL, "--memory: '%s' is not a size in whole pages", optarg);
            break;
        case 'v': a.vcpus = (unsigned)strtoul(optarg, NULL, 10); break;
        case 's': a.seed = strtoull(optarg, NULL, 0); break;
        case 'n': a.name = optarg; break;
        case 'q': a.qemu = optarg; break;
        case 'N': a.device_model = LS_DM_STANDIN; break;
        case 'L': a.dm_load_state_in_place = true; break;
        case 'r':
            if (parse_count(optarg, &w.rate) < 0)
                return ls_err(e, -EINVAL, "--dirty-rate: '%s' is not a number of pages per second",
                              optarg);
            workload = true;
            break;
        case 'p':
            if (ls_sim_parse_pattern(optarg, &w.pattern, &w.hot_percent) < 0)
                return ls_err(e, -EINVAL, "--dirty-pattern: '%s' is not uniform, sequential or "
                              "hotset:PERCENT (1..100)", optarg);
            workload = true;
            break;
        case 'e':
            if (parse_count(optarg, &net.every) < 0 || net.every == 0)
                return ls_err(e, -EINVAL, "--net-every: '%s' is not a positive number of writes",
                              optarg);
            break;
        case 'D':
            if (parse_ppm(optarg, &net.nondet_ppm) < 0)
                return ls_err(e, -EINVAL, "--net-nondet: '%s' is not 0..1000000 per million",
                              optarg);
            break;
        case OPT_DISK: case OPT_DISK_EVERY: case OPT_DISK_BLOCK:
            if (guest_disks_opt(c, optarg, &disks, why, sizeof(why)) < 0)
                return ls_err(e, -EINVAL, "%s", why);
            break;
        default: return ls_err(e, -EINVAL, "create: unknown option");
        }
    }
    if (a.type == LS_GUEST_UNSET || !a.memory_kib)
        return ls_err(e, -EINVAL, "create needs --type and --memory");
    if (disks.n && a.type != LS_GUEST_HVM)
        return ls_err(e, -EINVAL, "--disk needs --type hvm (QEMU serves its disks, as qdisk)");
    if ((disks.cfg.every || disks.cfg.block) && !disks.n)
        return ls_err(e, -EINVAL, "--disk-every and --disk-block go with --disk FILE");
    if (net.nondet_ppm && !net.every)
        return ls_err(e, -EINVAL, "--net-nondet goes with --net-every");
    uint32_t domid = 0;
    int rc = ls_sim_create(be, &a, &domid, e);
    if (rc == 0 && disks.n && (rc = guest_disks_attach(be, domid, &disks, e)) < 0) {
        struct ls_errbuf ignored;
        ls_err_clear(&ignored);
        ls_domain_destroy(ctx, domid, &ignored);
    }
    if (rc == 0 && net.every)
        rc = ls_sim_set_net(be, domid, &net, e);
    if (rc == 0 && workload) {
        w.seed = a.seed;
        rc = ls_sim_set_workload(be, domid, &w, e);
        if (rc < 0) {
            struct ls_errbuf ignored;
            ls_err_clear(&ignored);
            ls_domain_destroy(ctx, domid, &ignored);
        }
    }
    if (rc == 0)
        printf("%u\n", domid);
    return rc;
}

static int sim_workload(struct ls_backend *be, uint32_t domid, int argc, char **argv,
                        struct ls_errbuf *e)
{
    static const struct option opts[] = {
        { "rate", required_argument, NULL, 'r' }, { "pattern", required_argument, NULL, 'p' },
        { "seed", required_argument, NULL, 's' }, { "replay", required_argument, NULL, 'R' },
        { 0 },
    };
    struct ls_sim_workload w;
    int rc = ls_sim_get_workload(be, domid, &w, e);
    if (rc < 0)
        return rc;
    bool change = false;
    w.writes = 0;
    int c;
    optind = 2;   /* after "workload DOMID" */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (parse_count(optarg, &w.rate) < 0)
                return ls_err(e, -EINVAL, "--rate: '%s' is not a number of pages per second", optarg);
            break;
        case 'p':
            if (ls_sim_parse_pattern(optarg, &w.pattern, &w.hot_percent) < 0)
                return ls_err(e, -EINVAL, "--pattern: '%s' is not uniform, sequential or "
                              "hotset:PERCENT (1..100)", optarg);
            break;
        case 's':
            if (parse_count(optarg, &w.seed) < 0)
                return ls_err(e, -EINVAL, "--seed: '%s' is not a number", optarg);
            break;
        case 'R':
            if (parse_count(optarg, &w.writes) < 0)
                return ls_err(e, -EINVAL, "--replay: '%s' is not a number of writes", optarg);
            break;
        default: return ls_err(e, -EINVAL, "workload: unknown option");
        }
        change = true;
    }
    if (optind < argc)
        return ls_err(e, -EINVAL, "workload: unexpected argument '%s'", argv[optind]);
    if (change && (rc = ls_sim_set_workload(be, domid, &w, e)) < 0)
        return rc;
    if ((rc = ls_sim_get_workload(be, domid, &w, e)) < 0)
        return rc;
    char pat[32];
    printf("rate %llu pattern %s writes %llu data_pages %llu\n", (unsigned long long)w.rate,
           ls_sim_pattern_name(w.pattern, w.hot_percent, pat, sizeof(pat)),
           (unsigned long long)w.writes, (unsigned long long)w.data_pages);
    return 0;
}

/* net DOMID [...]: configure, read frames, print the counters. */
static int sim_net_cmd(struct ls_backend *be, uint32_t domid, int argc, char **argv,
                       struct ls_errbuf *e)
{
    static const struct option opts[] = {
        { "every", required_argument, NULL, 'e' }, { "nondet", required_argument, NULL, 'D' },
        { "rng-seed", required_argument, NULL, 's' }, { "read", required_argument, NULL, 'R' },
        { 0 },
    };
    struct ls_sim_net n = { 0 };
    int rc = ls_sim_get_net(be, domid, &n, e);
    if (rc < 0 && rc != -ENODEV)
        return rc;
    ls_err_clear(e);
    bool change = false;
    uint64_t nread = 0;
    int c;
    optind = 2;   /* after "net DOMID" */
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e':
            if (parse_count(optarg, &n.every) < 0)
                return ls_err(e, -EINVAL, "--every: '%s' is not a number of writes", optarg);
            change = true;
            break;
        case 'D':
            if (parse_ppm(optarg, &n.nondet_ppm) < 0)
                return ls_err(e, -EINVAL, "--nondet: '%s' is not 0..1000000 per million", optarg);
            change = true;
            break;
        case 's':
            if (parse_count(optarg, &n.rng_seed) < 0)
                return ls_err(e, -EINVAL, "--rng-seed: '%s' is not a number", optarg);
            change = true;
            break;
        case 'R':
            if (parse_count(optarg, &nread) < 0)
                return ls_err(e, -EINVAL, "--read: '%s' is not a number of frames", optarg);
            break;
        default: return ls_err(e, -EINVAL, "net: unknown option");
        }
    }
    if (optind < argc)
        return ls_err(e, -EINVAL, "net: unexpected argument '%s'", argv[optind]);
    if (change && (rc = ls_sim_set_net(be, domid, &n, e)) < 0)
        return rc;
    int fd = -1;
    if (nread && (rc = ls_sim_net_attach(be, domid, &fd, e)) < 0)
        return rc;
    for (uint64_t i = 0; i < nread; i++) {
        uint8_t buf[256];
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        struct ls_sim_frame f;
        if (r <= 0) {
            rc = ls_err(e, r < 0 ? -errno : -ENODATA, "net: reading frame %llu: %s",
                        (unsigned long long)i, r < 0 ? strerror(errno) : "the guest's network closed");
            break;
        }
        if (ls_sim_frame_parse(buf, (size_t)r, &f) < 0) {
            rc = ls_err(e, -EPROTO, "net: frame %llu (%zd bytes) is not a sim frame",
                        (unsigned long long)i, r);
            break;
        }
        printf("seq %llu writes %llu word 0x%016llx nondet %d\n", (unsigned long long)f.seq,
               (unsigned long long)f.writes, (unsigned long long)f.word, f.nondet);
    }
    if (fd >= 0)
        close(fd);
    if (rc == 0 && (rc = ls_sim_get_net(be, domid, &n, e)) == 0)
        printf("every %llu nondet_ppm %u frames %llu nondet %llu dropped %llu sent %llu\n",
               (unsigned long long)n.every, n.nondet_ppm, (unsigned long long)n.frames,
               (unsigned long long)n.nondet, (unsigned long long)n.dropped,
               (unsigned long long)n.sent);
    return rc;
}

/* dm-standby DOMID / dm-load DOMID FILE: the backend's standby device model. */
static int sim_dm_standby_load(struct ls_ctx *ctx, uint32_t domid, int argc, char **argv,
                               struct ls_errbuf *e)
{
    bool load = strcmp(argv[0], "dm-load") == 0;
    if (load ? argc != 3 : argc != 2)
        return ls_err(e, -EINVAL, "usage: lockstep sim %s", load ? "dm-load DOMID FILE"
                                                                : "dm-standby DOMID");
    if (!load)
        return ls_domain_dm_prepare_standby(ctx, domid, NULL, e);
    int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ls_err(e, -errno, "%s: %s", argv[2], strerror(errno));
    int rc = ls_domain_dm_load(ctx, domid, fd, e);
    close(fd);
    return rc;
}

static int sim_disk_cmd(struct ls_backend *be, uint32_t domid, int argc, char **argv,
                        struct ls_errbuf *e)
{
    static const struct option opts[] = {
        { "attach", required_argument, NULL, OPT_DISK },
        { "every", required_argument, NULL, OPT_DISK_EVERY },
        { "block", required_argument, NULL, OPT_DISK_BLOCK },
        { "top", required_argument, NULL, 'T' }, { 0 },
    };
    struct guest_disks d = { 0 };
    struct ls_sim_disks cur;
    bool set = false;
    char why[300];
    int c, rc = ls_sim_get_disks(be, domid, &cur, e);
    if (rc == -ENODEV)
        cur = (struct ls_sim_disks){ 0 };
    else if (rc < 0)
        return rc;
    d.cfg = (struct ls_sim_disks){ .every = cur.every, .block = cur.block, .top = cur.top };
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'T') {
            if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
                return ls_err(e, -EINVAL, "--top: '%s' is not on or off", optarg);
            d.cfg.top = strcmp(optarg, "on") == 0;
            set = true;
        } else if (c == OPT_DISK || c == OPT_DISK_EVERY || c == OPT_DISK_BLOCK) {
            if (guest_disks_opt(c, optarg, &d, why, sizeof(why)) < 0)
                return ls_err(e, -EINVAL, "%s", why);
            set |= c != OPT_DISK;
        } else {
            return ls_err(e, -EINVAL, "disk: unknown option");
        }
    }
    for (unsigned i = 0; i < d.n && rc >= 0; i++)
        rc = ls_sim_attach_disk(be, domid, d.disk[i].path, d.disk[i].format, e);
    if (rc >= 0 && set)
        rc = ls_sim_set_disks(be, domid, &d.cfg, e);
    if (rc >= 0)
        rc = ls_sim_get_disks(be, domid, &cur, e);
    if (rc < 0)
        return rc;
    printf("disks %u\nevery %" PRIu64 "\nblock %u\ntop %d\nowed %" PRIu64 "\nwritten %" PRIu64
           "\nfailed %u\nlast_error %s\npid %d\nqmp %s\nlog %s\n", cur.ndisks, cur.every,
           cur.block, cur.top, cur.owed, cur.written, cur.failed,
           cur.last_error[0] ? cur.last_error : "-", cur.pid, cur.qmp_path[0] ? cur.qmp_path : "-",
           cur.log_path[0] ? cur.log_path : "-");
    return 0;
}

int ls_sim_cli(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(sim_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    static const char *const known[] = { "create", "list", "info", "pause", "unpause",
                                         "resume", "destroy", "digest", "workload", "dm", "net", "disk",
                                         "dm-standby", "dm-load", NULL };
    bool ok = false;
    for (int i = 0; known[i]; i++)
        ok |= strcmp(cmd, known[i]) == 0;
    if (!ok) {
        fprintf(stderr, "lockstep sim: unknown command '%s'\n%s", cmd, sim_help);
        return 2;
    }
    uint32_t domid = 0;
    bool needs_domid = strcmp(cmd, "create") != 0 && strcmp(cmd, "list") != 0;
    bool more_args = strcmp(cmd, "workload") == 0 || strcmp(cmd, "dm-load") == 0 ||
                     strcmp(cmd, "net") == 0 || strcmp(cmd, "disk") == 0;
    if (needs_domid && ((more_args ? argc < 3 : argc != 3) || parse_domid(argv[2], &domid) < 0)) {
        fprintf(stderr, "lockstep sim %s: give one domain id\nTry 'lockstep sim --help'.\n", cmd);
        return 2;
    }
    struct ls_errbuf e;
    ls_err_clear(&e);
    /* The calls below block on the daemon; the loop is only the context's. */
    uv_loop_t loop;
    struct ls_ctx *ctx;
    int rc = uv_loop_init(&loop);
    if (rc < 0) {
        fprintf(stderr, "lockstep sim %s: %s\n", cmd, uv_strerror(rc));
        return 1;
    }
    rc = ls_ctx_new(&ctx, &loop, LS_BACKEND_SIM, &e);
    if (rc < 0) {
        fprintf(stderr, "lockstep sim %s: %s\n", cmd, e.msg);
        uv_loop_close(&loop);
        return 1;
    }
    struct ls_backend *be = ls_ctx_backend(ctx);
    if (strcmp(cmd, "create") == 0) {
        rc = sim_create(ctx, argc - 1, argv + 1, &e);
    } else if (strcmp(cmd, "list") == 0) {
        struct ls_domain_info *d = NULL;
        size_t n = 0;
        rc = ls_sim_list(be, &d, &n, &e);
        if (rc == 0) {
            printf("%-6s %-24s %-5s %-10s %-5s %s\n", "domid", "name", "type", "state", "vcpus",
                   "memory_kib");
            for (size_t i = 0; i < n; i++)
                print_info(&d[i]);
        }
        free(d);
    } else if (strcmp(cmd, "info") == 0) {
        struct ls_domain_info d;
        if ((rc = ls_domain_info(ctx, domid, &d, &e)) == 0)
            print_info(&d);
    } else if (strcmp(cmd, "pause") == 0) {
        rc = ls_domain_pause(ctx, domid, &e);
    } else if (strcmp(cmd, "unpause") == 0) {
        rc = ls_domain_unpause(ctx, domid, &e);
    } else if (strcmp(cmd, "resume") == 0) {
        rc = ls_domain_resume(ctx, domid, false, &e);
    } else if (strcmp(cmd, "workload") == 0) {
        rc = sim_workload(be, domid, argc - 1, argv + 1, &e);
    } else if (strcmp(cmd, "net") == 0) {
        rc = sim_net_cmd(be, domid, argc - 1, argv + 1, &e);
    } else if (strcmp(cmd, "disk") == 0) {
        rc = sim_disk_cmd(be, domid, argc - 1, argv + 1, &e);
    } else if (strcmp(cmd, "dm") == 0) {
        struct ls_dm_info dm;
        char st[64];
        if ((rc = ls_domain_dm_info(ctx, domid, &dm, &e)) == 0)
            printf("state %s\npid %d\nqemu %s\nqmp %s\nlog %s\nincoming %d\n"
                   "load-state-in-place %d\nloads %u\nstandby %d\n",
                   ls_dm_status_text(&dm, st, sizeof(st)),
                   dm.present ? dm.pid : 0, dm.present ? dm.qemu : "-",
                   dm.present ? dm.qmp_path : "-", dm.present ? dm.log_path : "-",
                   dm.incoming, dm.load_state_in_place, dm.loads, dm.standby_pid);
    } else if (strcmp(cmd, "dm-standby") == 0 || strcmp(cmd, "dm-load") == 0) {
        rc = sim_dm_standby_load(ctx, domid, argc - 1, argv + 1, &e);
    } else if (strcmp(cmd, "destroy") == 0) {
        rc = ls_domain_destroy(ctx, domid, &e);
    } else {
        char hex[65];
        if ((rc = ls_domain_digest(ctx, domid, hex, &e)) == 0)
            printf("%s\n", hex);
    }
    if (rc < 0)
        fprintf(stderr, "lockstep sim %s: %s\n", cmd, e.msg[0] ? e.msg : strerror(-rc));
    ls_ctx_free(ctx);
    uv_run(&loop, UV_RUN_DEFAULT);   /* the context's handles close on the loop */
    uv_loop_close(&loop);
    return rc < 0 ? (rc == -EINVAL && !e.msg[0] ? 2 : 1) : 0;
}
