/* cli/sim_cmd.c - `lockstep sim create|list|info|pause|unpause|destroy|digest`. */
#include "cli/sim_cmd.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/sim/sim.h"

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
"                   create a running domain with deterministic content; prints\n"
"                   its domid\n"
"  list             one line per domain: domid, name, type, state, vcpus, memory\n"
"  info DOMID       the same for one domain\n"
"  pause DOMID      pause a running domain\n"
"  unpause DOMID    unpause a paused domain\n"
"  destroy DOMID    destroy a domain\n"
"  digest DOMID     the digest of its memory, vCPU and HVM state (hex)\n"
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
    printf("%-6u %-24s %-5s %-10s %-5u %llu\n", d->domid, d->name, ls_sim_type_name(d->type),
           ls_sim_state_name(d->state), d->vcpus, (unsigned long long)d->memory_kib);
}

static int sim_create(struct ls_backend *be, int argc, char **argv, struct ls_errbuf *e)
{
    static const struct option opts[] = {
        { "type", required_argument, NULL, 't' }, { "memory", required_argument, NULL, 'm' },
        { "vcpus", required_argument, NULL, 'v' }, { "seed", required_argument, NULL, 's' },
        { "name", required_argument, NULL, 'n' }, { 0 },
    };
    struct ls_sim_create_args a = { .vcpus = 1, .seed = 1, .populate = true };
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
        default: return ls_err(e, -EINVAL, "create: unknown option");
        }
    }
    if (a.type == LS_GUEST_UNSET || !a.memory_kib)
        return ls_err(e, -EINVAL, "create needs --type and --memory");
    uint32_t domid;
    int rc = ls_sim_create(be, &a, &domid, e);
    if (rc == 0)
        printf("%u\n", domid);
    return rc;
}

int ls_sim_cli(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(sim_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    static const char *const known[] = { "create", "list", "info", "pause", "unpause",
                                         "destroy", "digest", NULL };
    bool ok = false;
    for (int i = 0; known[i]; i++)
        ok |= strcmp(cmd, known[i]) == 0;
    if (!ok) {
        fprintf(stderr, "lockstep sim: unknown command '%s'\n%s", cmd, sim_help);
        return 2;
    }
    uint32_t domid = 0;
    bool needs_domid = strcmp(cmd, "create") != 0 && strcmp(cmd, "list") != 0;
    if (needs_domid && (argc != 3 || parse_domid(argv[2], &domid) < 0)) {
        fprintf(stderr, "lockstep sim %s: give one domain id\nTry 'lockstep sim --help'.\n", cmd);
        return 2;
    }
    struct ls_errbuf e;
    ls_err_clear(&e);
    struct ls_backend *be;
    int rc = ls_sim_open(&be, &e);
    if (rc < 0) {
        fprintf(stderr, "lockstep sim %s: %s\n", cmd, e.msg);
        return 1;
    }
    if (strcmp(cmd, "create") == 0) {
        rc = sim_create(be, argc - 1, argv + 1, &e);
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
        if ((rc = be->ops->domain_info(be, domid, &d, &e)) == 0)
            print_info(&d);
    } else if (strcmp(cmd, "pause") == 0) {
        rc = be->ops->pause(be, domid, &e);
    } else if (strcmp(cmd, "unpause") == 0) {
        rc = be->ops->unpause(be, domid, &e);
    } else if (strcmp(cmd, "destroy") == 0) {
        rc = be->ops->destroy(be, domid, &e);
    } else {
        char hex[65];
        if ((rc = be->ops->digest(be, domid, hex, &e)) == 0)
            printf("%s\n", hex);
    }
    if (rc < 0)
        fprintf(stderr, "lockstep sim %s: %s\n", cmd, e.msg[0] ? e.msg : strerror(-rc));
    be->ops->close(be);
    return rc < 0 ? (rc == -EINVAL && !e.msg[0] ? 2 : 1) : 0;
}
