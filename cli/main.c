/* cli/main.c - the lockstep command line, built on include/lockstep/ only
 * (plus the sim backend's management calls for `lockstep sim`). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "lockstep/sim.h"
#include "cmd_colo.h"
#include "cmd_migrate.h"
#include "jsonl.h"
#include "run.h"
#include "sim_cmd.h"
#include "transport.h"
#include "lockstep/inspect.h"
#include "lockstep/lockstep.h"

#define EXIT_USAGE 2

static const char *prog = "lockstep";
/* --backend / $LOCKSTEP_BACKEND: auto = xen on a Xen dom0, sim elsewhere. */
static enum ls_backend_kind cli_backend = LS_BACKEND_AUTO;

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s %s: ", prog, cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s %s --help'.\n", prog, cmd);
    va_end(ap);
    return EXIT_USAGE;
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

/* ---- save ----------------------------------------------------------------- */

static const char save_help[] =
"Usage: lockstep save (--domid N | --domain NAME | --sim pv|hvm --memory SIZE [--vcpus N] [--seed S]\n"
"                      [--qemu PATH | --no-device-model])\n"
"                     [--format xl|libxl] [--keep] [--json] -o FILE|-\n"
"\n"
"Save a domain to a Xen migration v2 stream, as `xl save` does: the guest is\n"
"suspended, its memory, vCPU and device state written, and the domain destroyed\n"
"(unless --keep). On any failure the guest is resumed and keeps running.\n"
"\n"
"Device model: an HVM domain's device state comes from its QEMU, as libxl takes\n"
"it: once the guest is suspended, QEMU is stopped over QMP (stop, add-fd,\n"
"xen-save-devices-state into /dev/fdset/N, remove-fd) and its savevm image goes\n"
"into the EMULATOR_CONTEXT record (emulator qemu-upstream). If the save fails, the\n"
"guest is resumed and a QEMU that was running runs again (cont). A QEMU that\n"
"died is an error naming it (\"device model of domain N died: ...\").\n"
"\n"
"Options:\n"
"  --domid N          save the existing domain N (sim backend: see `lockstep sim`)\n"
"  --domain NAME      save the existing domain of this name\n"
"  --sim pv|hvm       create a one-off simulated domain of this type and save it\n"
"  --memory SIZE      its memory: bytes, or with a K, M or G suffix (e.g. 256M)\n"
"  --vcpus N          its vCPUs (default 1)\n"
"  --seed S           seed of its deterministic memory content (default 1)\n"
"  --qemu PATH        the one-off HVM domain's device model: this QEMU binary\n"
"                     (default: qemu-system-x86_64 from PATH), started headless\n"
"                     by the sim daemon as libxl starts a guest's QEMU\n"
"  --no-device-model  the one-off HVM domain gets no QEMU: lockstep writes its\n"
"                     in-process stand-in device state instead (hosts without QEMU)\n"
"  --format xl|libxl  xl (default): the xl save-file header with the JSON config,\n"
"                     then the libxl stream, as `xl save` writes; libxl: the bare\n"
"                     libxl stream, as libxl_domain_suspend writes\n"
"  --keep             resume the guest after the save instead of destroying it\n"
"  -o, --output FILE  where to write the stream; '-' is standard output\n"
"  --json             report as JSON lines instead of text: start, progress\n"
"                     (every 0.5 s), then the outcome with the digest or the\n"
"                     error (see JSON OUTPUT in lockstep(1))\n"
"  -h, --help         this help\n"
"\n"
"Output: the domain digest (hex) of the state the stream carries, on standard\n"
"output (standard error when the stream goes to standard output), or with\n"
"--json the JSON lines there. A progress line is shown on standard error when\n"
"it is a terminal (not with --json).\n"
"Exit status: 0 saved; 1 the save failed (the reason is printed); 2 usage.\n";

static int cmd_save(int argc, char **argv)
{
    static const struct option opts[] = {
        { "domid", required_argument, NULL, 'd' }, { "sim", required_argument, NULL, 's' },
        { "memory", required_argument, NULL, 'm' }, { "vcpus", required_argument, NULL, 'v' },
        { "seed", required_argument, NULL, 'S' }, { "format", required_argument, NULL, 'f' },
        { "keep", no_argument, NULL, 'k' }, { "output", required_argument, NULL, 'o' },
        { "domain", required_argument, NULL, 'n' }, { "qemu", required_argument, NULL, 'q' },
        { "no-device-model", no_argument, NULL, 'N' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' }, { 0 },
    };
    const char *out = NULL, *sim = NULL, *domain_name = NULL, *qemu = NULL;
    bool no_dm = false, json = false;
    unsigned long long domid = 0, vcpus = 1, seed = 1;
    uint64_t memory_kib = 0;
    bool have_domid = false, keep = false;
    enum ls_format format = LS_FORMAT_XL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            if (parse_uint(optarg, UINT32_MAX, &domid) < 0)
                return usage_error("save", "--domid: '%s' is not a domain id", optarg);
            have_domid = true;
            break;
        case 's': sim = optarg; break;
        case 'n': domain_name = optarg; have_domid = true; break;
        case 'm':
            if (parse_size_kib(optarg, &memory_kib) < 0)
                return usage_error("save", "--memory: '%s' is not a size in whole pages "
                                   "(e.g. 256M, 1G, 4096K)", optarg);
            break;
        case 'v':
            if (parse_uint(optarg, 128, &vcpus) < 0 || vcpus == 0)
                return usage_error("save", "--vcpus: '%s' is not 1..128", optarg);
            break;
        case 'S':
            if (parse_uint(optarg, UINT64_MAX, &seed) < 0)
                return usage_error("save", "--seed: '%s' is not a number", optarg);
            break;
        case 'f':
            if (strcmp(optarg, "xl") == 0)
                format = LS_FORMAT_XL;
            else if (strcmp(optarg, "libxl") == 0)
                format = LS_FORMAT_LIBXL;
            else
                return usage_error("save", "--format: '%s' is not xl or libxl", optarg);
            break;
        case 'k': keep = true; break;
        case 'o': out = optarg; break;
        case 'q': qemu = optarg; break;
        case 'N': no_dm = true; break;
        case 'j': json = true; break;
        case 'h': fputs(save_help, stdout); return 0;
        default: return usage_error("save", "unknown option");
        }
    }
    if (optind < argc)
        return usage_error("save", "unexpected argument '%s'", argv[optind]);
    if (!out)
        return usage_error("save", "-o FILE|- is required");
    if (have_domid == !!sim)
        return usage_error("save", "give exactly one of --domid N, --domain NAME and --sim pv|hvm");
    enum ls_guest_type type = LS_GUEST_UNSET;
    if (sim) {
        if (strcmp(sim, "pv") == 0)
            type = LS_GUEST_PV;
        else if (strcmp(sim, "hvm") == 0)
            type = LS_GUEST_HVM;
        else
            return usage_error("save", "--sim: '%s' is not pv or hvm", sim);
        if (!memory_kib)
            return usage_error("save", "--sim needs --memory SIZE");
    }
    if ((qemu || no_dm) && !sim)
        return usage_error("save", "--qemu and --no-device-model choose the device model of a "
                           "--sim domain (an existing domain has its own)");
    if (qemu && no_dm)
        return usage_error("save", "--qemu and --no-device-model exclude each other");
    if (isatty(STDOUT_FILENO) && strcmp(out, "-") == 0)
        return usage_error("save", "refusing to write a binary stream to a terminal");

    struct cli_run r;
    if (cli_run_open(&r, "save", sim ? LS_BACKEND_SIM : cli_backend) < 0)
        return 1;
    if (json)
        r.json = strcmp(out, "-") == 0 ? stderr : stdout;
    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = 0;
    bool created = false;   /* only a domain this command created may be destroyed by it */
    if (sim) {
        char name[64];
        snprintf(name, sizeof(name), "lockstep-save-%d", (int)getpid());
        struct ls_sim_create_args a = { .type = type, .memory_kib = memory_kib,
                                        .vcpus = (unsigned)vcpus, .seed = seed, .name = name,
                                        .populate = true, .qemu = qemu,
                                        .device_model = no_dm ? LS_DM_STANDIN : LS_DM_QEMU };
        uint32_t id = 0;
        rc = ls_sim_create(ls_ctx_backend(r.ctx), &a, &id, &err);
        if (rc == 0) {
            domid = id;
            created = true;
        }
    } else if (domain_name) {
        uint32_t id = 0;
        rc = ls_domain_find(r.ctx, domain_name, &id, &err);
        domid = id;
    }
    int fd = -1;
    if (rc == 0) {
        fd = strcmp(out, "-") == 0 ? STDOUT_FILENO
                                   : open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            rc = ls_err(&err, -errno, "cannot create '%s': %s", out, strerror(errno));
    }
    /* Only a regular file is removed after a failure: -o /dev/null or a
     * fifo is not this command's to delete (unlinking /dev/null as root
     * broke the whole host). */
    struct stat st;
    bool out_is_file = fd > STDERR_FILENO && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (rc == 0) {
        struct ls_save_opts so = { .domid = (uint32_t)domid, .fd = fd, .format = format,
                                   .keep_domain = keep };
        rc = ls_save_start(r.ctx, &so, cli_run_done, &r, &r.op, &err);
        if (rc == 0) {
            rc = cli_run_wait(&r);
            if (rc < 0)
                snprintf(err.msg, sizeof(err.msg), "%s", r.errmsg);
        }
    }
    if (rc < 0 && created) {
        /* The one-off domain exists only for this command. */
        struct ls_errbuf ignored;
        ls_err_clear(&ignored);
        ls_domain_destroy(r.ctx, (uint32_t)domid, &ignored);
    }
    if (rc == 0 && !json) {
        FILE *dst = fd == STDOUT_FILENO ? stderr : stdout;
        fprintf(dst, "%s\n", ls_op_digest(r.op));
    } else if (rc < 0) {
        fprintf(stderr, "%s save: %s\n", prog, err.msg[0] ? err.msg : strerror(-rc));
    }
    if (fd >= 0 && fd != STDOUT_FILENO && close(fd) < 0 && rc == 0) {
        rc = ls_err(&err, -errno, "closing '%s': %s", out, strerror(errno));
        fprintf(stderr, "%s save: %s\n", prog, err.msg);
    }
    if (rc < 0 && out_is_file)
        unlink(out);   /* a partial stream is not a save file */
    if (json) {
        struct jl j;
        uint64_t bytes = 0, total;
        if (r.op)
            ls_op_progress(r.op, &bytes, &total);
        jl_open(&j, r.json, "outcome", "save");
        jl_result(&j, rc, err.msg);
        if (domid)
            jl_u64(&j, "domid", domid);
        jl_str(&j, "digest", rc == 0 ? ls_op_digest(r.op) : NULL);
        jl_u64(&j, "bytes", bytes);
        jl_bool(&j, "guest_kept", rc == 0 && keep);
        jl_u64(&j, "exit_status", rc == 0 ? 0 : 1);
        jl_close(&j);
    }
    cli_run_close(&r);
    return rc == 0 ? 0 : 1;
}

/* ---- restore -------------------------------------------------------------- */

static const char restore_help[] =
"Usage: lockstep restore -i FILE|- [--domid N] [--expect-digest HEX] [--paused] [--destroy]\n"
"                        [--qemu PATH | --no-device-model] [--json]\n"
"\n"
"Restore a domain from a Xen migration v2 stream, as `xl restore` does. Both\n"
"the xl save-file format and a bare libxl stream are accepted (detected). The\n"
"stream is checked record by record; on any error the partial domain is\n"
"destroyed (unless --domid gave it) and the reason, with the byte offset, is\n"
"printed.\n"
"\n"
"Device model: when an HVM stream's EMULATOR_CONTEXT holds a QEMU savevm image,\n"
"the domain's QEMU is started on it once the memory is in (-incoming fd:, the\n"
"way libxl restores; Debian's QEMU 7.2 cannot load a state into a running QEMU,\n"
"so lockstep never asks it to), checked to have loaded it (query-status\n"
"\"paused\"), and let run (cont) when the domain is unpaused. A stand-in's state\n"
"(saved with --no-device-model) restores without a QEMU.\n"
"\n"
"Options:\n"
"  -i, --input FILE      the stream; '-' is standard input (a pipe or socket works)\n"
"  --domid N             restore into domain N, which the toolstack created for it,\n"
"                        instead of creating one. It must be paused, never run and\n"
"                        hold no memory yet (Xen: created, its vCPUs and memory\n"
"                        limit set, not built), of the stream's guest type, with\n"
"                        its vCPUs and room for its memory. lockstep never destroys\n"
"                        it: refused, it is left as it was; failed later, it is left\n"
"                        paused, maybe partly restored, for the toolstack to destroy\n"
"  --qemu PATH           the QEMU binary to start (default: qemu-system-x86_64 from\n"
"                        PATH)\n"
"  --no-device-model     start no QEMU: a stream with a real QEMU's state is then\n"
"                        refused (its device state would be lost)\n"
"  --expect-digest HEX   fail (exit 1) unless the restored domain's digest is HEX\n"
"  --paused              leave the restored domain paused (xl restore -p)\n"
"  --destroy             destroy the domain after restoring and printing its digest\n"
"                        (to check a save file without keeping a guest)\n"
"  --json                report as JSON lines on standard output instead of text:\n"
"                        start, progress (every 0.5 s), then the outcome with the\n"
"                        domid and digest or the error (JSON OUTPUT in lockstep(1))\n"
"  -h, --help            this help\n"
"\n"
"Output: 'domid N' and the restored domain's digest (hex), on standard output.\n"
"Exit status: 0 restored; 1 the restore failed or the digest differs; 2 usage.\n";

static int cmd_restore(int argc, char **argv)
{
    static const struct option opts[] = {
        { "input", required_argument, NULL, 'i' }, { "expect-digest", required_argument, NULL, 'e' },
        { "paused", no_argument, NULL, 'p' }, { "destroy", no_argument, NULL, 'D' },
        { "domid", required_argument, NULL, 'd' }, { "qemu", required_argument, NULL, 'q' },
        { "no-device-model", no_argument, NULL, 'N' }, { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' }, { 0 },
    };
    const char *in = NULL, *expect = NULL, *qemu = NULL;
    bool paused = false, destroy = false, no_dm = false, json = false;
    unsigned long long domid = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'e': expect = optarg; break;
        case 'p': paused = true; break;
        case 'D': destroy = true; break;
        case 'd':
            if (parse_uint(optarg, UINT32_MAX, &domid) < 0 || domid == 0)
                return usage_error("restore", "--domid: '%s' is not a domain id (1 or more)",
                                   optarg);
            break;
        case 'q': qemu = optarg; break;
        case 'N': no_dm = true; break;
        case 'j': json = true; break;
        case 'h': fputs(restore_help, stdout); return 0;
        default: return usage_error("restore", "unknown option");
        }
    }
    if (optind < argc)
        return usage_error("restore", "unexpected argument '%s'", argv[optind]);
    if (!in)
        return usage_error("restore", "-i FILE|- is required");
    if (qemu && no_dm)
        return usage_error("restore", "--qemu and --no-device-model exclude each other");
    int fd = strcmp(in, "-") == 0 ? STDIN_FILENO : open(in, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s restore: cannot open '%s': %s\n", prog, in, strerror(errno));
        return 1;
    }
    struct cli_run r;
    if (cli_run_open(&r, "restore", cli_backend) < 0) {
        if (fd != STDIN_FILENO)
            close(fd);
        return 1;
    }
    if (json)
        r.json = stdout;
    struct ls_errbuf err;
    ls_err_clear(&err);
    struct ls_restore_opts ro = { .fd = fd, .unpause = !paused, .domid = (uint32_t)domid,
                                  .qemu = qemu, .device_model = no_dm ? LS_DM_STANDIN : LS_DM_QEMU };
    int rc = ls_restore_start(r.ctx, &ro, cli_run_done, &r, &r.op, &err);
    if (rc == 0) {
        rc = cli_run_wait(&r);
        if (rc < 0)
            snprintf(err.msg, sizeof(err.msg), "%s", r.errmsg);
    }
    bool restored = rc == 0, destroyed = false;
    if (rc == 0) {
        if (!json)
            printf("domid %u\n%s\n", ls_op_domid(r.op), ls_op_digest(r.op));
        if (expect && strcasecmp(expect, ls_op_digest(r.op)) != 0) {
            rc = ls_err(&err, -EBADMSG, "digest mismatch: expected %s, restored domain has %s",
                        expect, ls_op_digest(r.op));
            fprintf(stderr, "%s restore: %s\n", prog, err.msg);
        }
        if (destroy) {
            struct ls_errbuf derr;
            ls_err_clear(&derr);
            if (ls_domain_destroy(r.ctx, ls_op_domid(r.op), &derr) < 0) {
                fprintf(stderr, "%s restore: destroying domain %u: %s\n", prog,
                        ls_op_domid(r.op), derr.msg);
                rc = ls_err(&err, derr.rc, "destroying domain %u: %s", ls_op_domid(r.op),
                            derr.msg);
            } else {
                destroyed = true;
            }
        }
    } else {
        fprintf(stderr, "%s restore: %s\n", prog, err.msg[0] ? err.msg : strerror(-rc));
    }
    if (json) {
        struct jl j;
        jl_open(&j, r.json, "outcome", "restore");
        jl_result(&j, rc, err.msg);
        jl_bool(&j, "restored", restored);
        if (restored) {
            jl_u64(&j, "domid", ls_op_domid(r.op));
            jl_str(&j, "digest", ls_op_digest(r.op));
            jl_bool(&j, "destroyed", destroyed);
        }
        jl_u64(&j, "exit_status", rc == 0 ? 0 : 1);
        jl_close(&j);
    }
    if (fd != STDIN_FILENO)
        close(fd);
    cli_run_close(&r);
    return rc == 0 ? 0 : 1;
}

/* ---- inspect -------------------------------------------------------------- */

static const char inspect_help[] =
"Usage: lockstep inspect [--json] FILE|-\n"
"\n"
"Decode every record of a Xen migration v2 stream (xl save file, libxl stream or\n"
"bare libxc stream, detected), including checkpointed Remus/COLO streams that\n"
"Xen's verify-stream-v2 cannot follow, and check it with the rules of Xen's\n"
"restore code and verifier. Prints offset, layer, type, length and decoded\n"
"fields of each record, then a summary of records and pages by type.\n"
"\n"
"Options:\n"
"  --json      one JSON document instead of text\n"
"  -h, --help  this help\n"
"\n"
"Exit status: 0 the stream is valid; 1 it is not (the error names the byte offset,\n"
"the record type and the rule); 2 usage.\n";

static int cmd_inspect(int argc, char **argv)
{
    static const struct option opts[] = {
        { "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { 0 },
    };
    bool json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': json = true; break;
        case 'h': fputs(inspect_help, stdout); return 0;
        default: return usage_error("inspect", "unknown option");
        }
    }
    if (optind != argc - 1)
        return usage_error("inspect", "give exactly one FILE or -");
    const char *in = argv[optind];
    int fd = strcmp(in, "-") == 0 ? STDIN_FILENO : open(in, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s inspect: cannot open '%s': %s\n", prog, in, strerror(errno));
        return 1;
    }
    struct ls_errbuf err;
    ls_err_clear(&err);
    int rc = ls_inspect(fd, stdout, json, &err);
    fflush(stdout);
    if (rc < 0)
        fprintf(stderr, "%s inspect: %s\n", prog, err.msg[0] ? err.msg : strerror(-rc));
    if (fd != STDIN_FILENO)
        close(fd);
    return rc < 0 ? 1 : 0;
}

/* ---- main ----------------------------------------------------------------- */

static const char main_help[] =
"Usage: lockstep [--backend sim|xen|auto] COMMAND [OPTIONS]\n"
"\n"
"Save, restore, live-migrate and inspect Xen guests in Xen 4.17's migration v2\n"
"stream format, driven by table-driven state machines. The default backend is\n"
"`sim`, a simulated hypervisor daemon (lockstep-simd) that holds guests outside\n"
"this process; on a Xen dom0 (/dev/xen/privcmd exists) it is `xen`, the real\n"
"hypervisor.\n"
"\n"
"Commands:\n"
"  save      save a domain to a stream (see lockstep save --help)\n"
"  restore   restore a domain from a stream\n"
"  inspect   decode and check a stream\n"
"  migrate   live-migrate a domain to `lockstep migrate-receive` (xl migrate)\n"
"  migrate-receive  receive a live-migrated domain (xl migrate-receive)\n"
"  colo-primary     replicate a running domain with continuous checkpoints (xl remus [-c])\n"
"  colo-secondary   receive replication; take over when the primary is lost\n"
"  sim       manage simulated domains: create, list, info, pause, unpause,\n"
"            resume, destroy, digest, workload, dm\n"
"  help      this help\n"
"\n"
"Options:\n"
"  --backend sim|xen|auto  the hypervisor (before COMMAND; default auto, or\n"
"                    $LOCKSTEP_BACKEND)\n"
"  -h, --help        this help\n"
"\n"
"The long commands (save, restore, migrate, migrate-receive) take --json: one\n"
"JSON object per line (start, progress, pre-copy rounds, the outcome with its\n"
"error) instead of text, for toolstacks driving the command line.\n"
"\n"
"Environment:\n"
"  LOCKSTEP_BACKEND  sim, xen or auto (the default), as --backend\n"
"  LOCKSTEP_RUNDIR   the sim daemon's runtime directory (socket, pid file, log)\n"
"  LOCKSTEP_TRACE    when set, every state-machine dispatch is traced on stderr\n"
"  LOCKSTEP_SIMD     the lockstep-simd binary to start (default: next to lockstep)\n"
"  LOCKSTEP_SIMD_IDLE_EXIT, LOCKSTEP_SIMD_MEMORY_POOL, LOCKSTEP_SIMD_HUGE_PAGES\n"
"                    passed to a daemon lockstep starts, as its --idle-exit SECONDS,\n"
"                    --memory-pool SIZE and (when set and not 0) --huge-pages;\n"
"                    see lockstep-simd --help\n"
"\n"
#ifdef LOCKSTEP_FAULT_HOOKS
"Fault injection (this build has the test hooks, -DLOCKSTEP_FAULT_HOOKS=ON;\n"
"dispatches are numbered as LOCKSTEP_TRACE shows them):\n"
"  FSM_FAULT=SPEC[,SPEC...]  SPEC is SEQ:ERRNO (dispatch SEQ fails as if its action\n"
"                    returned -ERRNO) or SEQ:cancel (the operation is cancelled\n"
"                    right after dispatch SEQ, as by SIGINT)\n"
"  FSM_STOP=SEQ      stop the process (SIGSTOP) right after dispatch SEQ, for tests\n"
"                    that kill it or break its connections at that point\n"
"  LOCKSTEP_SIM_FAULT=OP[,OP...]  the sim backend refuses these calls (suspend,\n"
"                    resume, destroy, create, unpause, ...) as a hypervisor might\n"
"  LOCKSTEP_DM_FAULT_KILL=N  SIGKILL the device model before the N-th QMP command\n"
"  LOCKSTEP_CHECK_FDS=1  migrate: exit 97 if any fd but 0-2 is left open\n"
"\n"
#endif
"Examples:\n"
"  lockstep save --sim hvm --memory 256M -o guest.xl    save a one-off sim guest\n"
"  lockstep restore -i guest.xl                         restore it; prints the digest\n"
"  lockstep inspect guest.xl                            list its records\n"
"  lockstep migrate --domid 3 --to - | ssh HOST lockstep migrate-receive\n"
"\n"
"Signals: SIGINT or SIGTERM stop an operation cleanly through its tables (a saved\n"
"guest keeps running, a partial restore is destroyed); a second one forces exit.\n"
"Exit status of every command: 0 success; 1 the operation failed (the reason is\n"
"printed); 2 usage error.\n";

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);   /* a closed reader is an EPIPE error, not a death */
    if (argc < 2) {
        fputs(main_help, stderr);
        return EXIT_USAGE;
    }
    const char *kind = getenv("LOCKSTEP_BACKEND");
    if (argc >= 3 && strcmp(argv[1], "--backend") == 0) {
        kind = argv[2];
        argc -= 2;
        argv += 2;
    }
    if (kind && *kind) {
        if (strcmp(kind, "sim") == 0)
            cli_backend = LS_BACKEND_SIM;
        else if (strcmp(kind, "xen") == 0)
            cli_backend = LS_BACKEND_XEN;
        else if (strcmp(kind, "auto") != 0) {
            fprintf(stderr, "%s: unknown backend '%s' (sim, xen or auto)\n", prog, kind);
            return EXIT_USAGE;
        }
    }
    if (argc < 2) {
        fputs(main_help, stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "save") == 0)
        return cmd_save(argc - 1, argv + 1);
    if (strcmp(cmd, "restore") == 0)
        return cmd_restore(argc - 1, argv + 1);
    if (strcmp(cmd, "migrate") == 0)
        return ls_cmd_migrate(argc - 1, argv + 1, cli_backend);
    if (strcmp(cmd, "migrate-receive") == 0)
        return ls_cmd_migrate_receive(argc - 1, argv + 1, cli_backend);
    if (strcmp(cmd, "colo-primary") == 0)
        return ls_cmd_colo_primary(argc - 1, argv + 1, cli_backend);
    if (strcmp(cmd, "colo-secondary") == 0)
        return ls_cmd_colo_secondary(argc - 1, argv + 1, cli_backend);
    if (strcmp(cmd, "inspect") == 0)
        return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "sim") == 0)
        return ls_sim_cli(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        fputs(main_help, stdout);
        return 0;
    }
    fprintf(stderr, "%s: unknown command '%s'\n\n", prog, cmd);
    fputs(main_help, stderr);
    return EXIT_USAGE;
}
