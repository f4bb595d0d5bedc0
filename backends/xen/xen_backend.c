/* backends/xen/xen_backend.c - domain control on real Xen (see xen.h).
 *
 * What libxl does for a device-less PV/PVH guest, done with libxenctrl and
 * libxenstore directly: info, pause, unpause, the xenstore suspend protocol
 * (and the guest's suspend event channel when it offers one), resume,
 * destroy with its xenstore and userdata clean-up, creating the empty domain
 * a restore fills (or taking over the toolstack's own), and announcing the restored domain to xenstored and
 * xenconsoled. The memory task itself is in xen_memtask.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xenguest.h>
#include <xenstore.h>
#include <yajl/yajl_tree.h>

#include "backends/xen/helper_proto.h"
#include "backends/xen/xen_internal.h"

#define SUSPEND_POLL_MS 10
#define MAXMEM_SLACK_KIB 1024            /* what libxl adds to max_memkb for Xen's own use */
#define CONSOLE_LIMIT "1048576"          /* xenconsoled's per-guest buffer, libxl's default */
#define USERDATA_DIR "/var/lib/xen"
/* xl's names for the two copies of a guest migrated within one host. */
#define INCOMING_SUFFIX "--incoming"
#define MIGRATEDAWAY_SUFFIX "--migratedaway"

static void guard_release(struct xen_backend *x, uint32_t domid);

bool ls_xen_available(void)
{
    return access(LS_XEN_PRIVCMD, F_OK) == 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

void xen_uuid_format(const uint8_t h[16], char out[37])
{
    snprintf(out, 37,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12],
             h[13], h[14], h[15]);
}

static bool uuid_parse(const char *s, uint8_t out[16])
{
    unsigned n = 0;
    for (const char *p = s; *p && n < 32; p++) {
        if (*p == '-')
            continue;
        int v;
        if (*p >= '0' && *p <= '9') v = *p - '0';
        else if (*p >= 'a' && *p <= 'f') v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F') v = *p - 'A' + 10;
        else return false;
        out[n / 2] = (uint8_t)(n % 2 ? out[n / 2] | v : v << 4);
        n++;
    }
    return n == 32;
}

/* ---- domain info ------------------------------------------------------ */

/* Xen's getinfo returns the next domain at or above domid: check it is this one. */
int xen_getinfo(struct xen_backend *x, uint32_t domid, xc_dominfo_t *info, struct ls_errbuf *e)
{
    int n = xc_domain_getinfo(x->xch, domid, 1, info);
    if (n < 0)
        return ls_err(e, -errno, "domain %u: cannot get its state from Xen: %s", domid,
                      strerror(errno));
    if (n == 0 || info->domid != domid)
        return ls_err(e, -ESRCH, "domain %u does not exist", domid);
    return 0;
}

enum ls_guest_type xen_type_of(const xc_dominfo_t *info)
{
    if (!info->hvm)
        return LS_GUEST_PV;
    /* A PVH guest is an HVM container with only the local APIC emulated. */
    return info->arch_config.emulation_flags == XEN_X86_EMU_LAPIC ? LS_GUEST_PVH : LS_GUEST_HVM;
}

static enum ls_run_state state_of(const xc_dominfo_t *info)
{
    if (info->dying)
        return LS_RUN_DYING;
    if (info->shutdown)
        return info->shutdown_reason == SHUTDOWN_suspend ? LS_RUN_SUSPENDED : LS_RUN_SHUTDOWN;
    return info->paused ? LS_RUN_PAUSED : LS_RUN_RUNNING;
}

static const char *shutdown_reason_name(unsigned reason)
{
    switch (reason) {
    case SHUTDOWN_poweroff: return "powered off";
    case SHUTDOWN_reboot: return "rebooting";
    case SHUTDOWN_suspend: return "suspended";
    case SHUTDOWN_crash: return "crashed";
    case SHUTDOWN_watchdog: return "stopped by its watchdog";
    default: return "shut down";
    }
}

char *xen_xs_read(struct xen_backend *x, const char *fmt, ...)
{
    char path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    unsigned len;
    return xs_read(x->xsh, XBT_NULL, path, &len);
}

static bool rename_domain(struct xen_backend *x, uint32_t domid, const char *name)
{
    char path[64];
    snprintf(path, sizeof(path), "/local/domain/%u/name", domid);
    if (!xs_write(x->xsh, XBT_NULL, path, name, strlen(name)))
        return false;
    char *vm = xen_xs_read(x, "/local/domain/%u/vm", domid);
    if (vm && strncmp(vm, "/vm/", 4) == 0) {
        char vpath[128];
        snprintf(vpath, sizeof(vpath), "%s/name", vm);
        xs_write(x->xsh, XBT_NULL, vpath, name, strlen(name));
    }
    free(vm);
    return true;
}

static int xen_domain_info(struct ls_backend *be, uint32_t domid, struct ls_domain_info *out,
                           struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    xc_dominfo_t info;
    int rc = xen_getinfo(x, domid, &info, e);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof(*out));
    out->domid = domid;
    out->type = xen_type_of(&info);
    out->state = state_of(&info);
    out->vcpus = info.max_vcpu_id + 1;
    out->memory_kib = (uint64_t)info.nr_pages * (XC_PAGE_SIZE / 1024);
    xen_pfn_t gpfns = 0;
    if (xc_domain_nr_gpfns(x->xch, domid, &gpfns) == 0)
        out->p2m_size = gpfns;
    char *name = xen_xs_read(x, "/local/domain/%u/name", domid);
    snprintf(out->name, sizeof(out->name), "%s", name ? name : "");
    free(name);
    return 0;
}

int ls_xen_find(struct ls_backend *be, const char *name, uint32_t *domid, struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    xc_domaininfo_t infos[256];
    uint32_t next = 0;
    for (;;) {
        int n = xc_domain_getinfolist(x->xch, next, 256, infos);
        if (n < 0)
            return ls_err(e, -errno, "cannot list Xen's domains: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            char *got = xen_xs_read(x, "/local/domain/%u/name", infos[i].domain);
            bool match = got && strcmp(got, name) == 0;
            free(got);
            if (match) {
                *domid = infos[i].domain;
                return 0;
            }
        }
        if (n < 256)
            break;
        next = infos[n - 1].domain + 1u;
    }
    return ls_err(e, -ESRCH, "no domain is named '%s'", name);
}

/* ---- pause, unpause, resume -------------------------------------------- */

static int xen_pause(struct ls_backend *be, uint32_t domid, struct ls_errbuf *e)
{
    if (xc_domain_pause(xen_of(be)->xch, domid) < 0)
        return ls_err(e, -errno, "domain %u: Xen refused to pause it: %s", domid,
                      strerror(errno));
    return 0;
}

/* A guest migrated within this host arrives as NAME--incoming while its
 * source still holds NAME, as with xl. When it is started, the source is
 * suspended for good: it becomes NAME--migratedaway and this one NAME. */
static void take_final_name(struct xen_backend *x, uint32_t domid)
{
    struct xen_target t;
    if (!xen_target_get(x, domid, &t))
        return;
    free(t.config_json);
    if (!t.final_name[0])
        return;
    struct ls_errbuf ignore;
    ls_err_clear(&ignore);
    uint32_t holder;
    xc_dominfo_t info;
    if (ls_xen_find(&x->be, t.final_name, &holder, &ignore) == 0 && holder != domid) {
        if (xen_getinfo(x, holder, &info, &ignore) < 0 || !info.shutdown ||
            info.shutdown_reason != SHUTDOWN_suspend)
            return;   /* the source still runs: keep NAME--incoming */
        char away[80];
        snprintf(away, sizeof(away), "%s" MIGRATEDAWAY_SUFFIX, t.final_name);
        if (!rename_domain(x, holder, away))
            return;
    }
    rename_domain(x, domid, t.final_name);
}

static int unpause_domain(struct ls_backend *be, uint32_t domid, bool keep_guard,
                          struct ls_errbuf *e)
{
    if (!keep_guard)
        xen_guard_disarm(xen_of(be), domid);
    take_final_name(xen_of(be), domid);
    if (xc_domain_unpause(xen_of(be)->xch, domid) < 0)
        return ls_err(e, -errno, "domain %u: Xen refused to unpause it: %s", domid,
                      strerror(errno));
    return 0;
}

static int xen_unpause(struct ls_backend *be, uint32_t domid, struct ls_errbuf *e)
{
    return unpause_domain(be, domid, false, e);
}

static int resume_domain(struct ls_backend *be, uint32_t domid, bool fast, bool keep_guard,
                         struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    if (!keep_guard)
        xen_guard_disarm(x, domid);
    xc_dominfo_t info;
    int rc = xen_getinfo(x, domid, &info, e);
    if (rc < 0)
        return rc;
    /* A guest that never got as far as suspending has nothing to resume;
     * a request it has not acted on yet is withdrawn. */
    char *req = xen_xs_read(x, "/local/domain/%u/control/shutdown", domid);
    if (req && strcmp(req, "suspend") == 0) {
        char path[64];
        snprintf(path, sizeof(path), "/local/domain/%u/control/shutdown", domid);
        xs_write(x->xsh, XBT_NULL, path, "", 0);
    }
    free(req);
    /* A migration that failed after the go-ahead gives the source its name back. */
    char *name = xen_xs_read(x, "/local/domain/%u/name", domid);
    size_t nl = name ? strlen(name) : 0, sl = strlen(MIGRATEDAWAY_SUFFIX);
    if (nl > sl && strcmp(name + nl - sl, MIGRATEDAWAY_SUFFIX) == 0) {
        name[nl - sl] = '\0';
        uint32_t holder;
        struct ls_errbuf ignore;
        ls_err_clear(&ignore);
        if (ls_xen_find(be, name, &holder, &ignore) < 0)
            rename_domain(x, domid, name);
    }
    free(name);
    if (!(info.shutdown && info.shutdown_reason == SHUTDOWN_suspend))
        return 0;
    if (xc_domain_resume(x->xch, domid, fast ? 1 : 0) < 0)
        return ls_err(e, -errno, "domain %u: Xen could not resume it: %s", domid,
                      strerror(errno));
    /* xenstored keeps a suspended domain's connection marked as shut down. */
    if (!xs_resume_domain(x->xsh, domid))
        return ls_err(e, -errno, "domain %u: xenstored did not take it back after the resume: "
                      "%s", domid, strerror(errno));
    return 0;
}

static int xen_resume(struct ls_backend *be, uint32_t domid, bool fast, struct ls_errbuf *e)
{
    return resume_domain(be, domid, fast, false, e);
}

/* The guard is a helper process watching ours: keeping it is not clearing it. */
static int xen_start_guarded(struct ls_backend *be, uint32_t domid, bool from_suspend,
                             struct ls_errbuf *e)
{
    return from_suspend ? resume_domain(be, domid, false, true, e)
                        : unpause_domain(be, domid, true, e);
}

/* ---- suspend ------------------------------------------------------------ */

/* The guest's own suspend channel (device/suspend/event-channel), if it
 * offers one: notify it and let the guest suspend itself. */
static int suspend_by_evtchn(struct xen_backend *x, uint32_t domid, int port,
                             xenevtchn_handle **xce_out, int *local_out, int *lockfd_out)
{
    xenevtchn_handle *xce = xenevtchn_open(NULL, 0);
    if (!xce)
        return -errno;
    int lockfd = -1;
    int local = xc_suspend_evtchn_init_exclusive(x->xch, xce, domid, port, &lockfd);
    if (local < 0) {
        xenevtchn_close(xce);
        return -EAGAIN;
    }
    if (xenevtchn_notify(xce, (evtchn_port_t)local) < 0) {
        int rc = -errno;
        xc_suspend_evtchn_release(x->xch, xce, domid, local, &lockfd);
        xenevtchn_close(xce);
        return rc;
    }
    *xce_out = xce;
    *local_out = local;
    *lockfd_out = lockfd;
    return 0;
}

static int xen_suspend(struct ls_backend *be, uint32_t domid, unsigned timeout_ms,
                       struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    xc_dominfo_t info;
    int rc = xen_getinfo(x, domid, &info, e);
    if (rc < 0)
        return rc;
    if (info.shutdown && info.shutdown_reason == SHUTDOWN_suspend)
        return 0;
    if (info.shutdown || info.dying)
        return ls_err(e, -ESRCH, "domain %u cannot be suspended: it has %s", domid,
                      info.dying ? "died" : shutdown_reason_name(info.shutdown_reason));

    xenevtchn_handle *xce = NULL;
    int local = -1, lockfd = -1;
    char *port_s = xen_xs_read(x, "/local/domain/%u/device/suspend/event-channel", domid);
    bool by_evtchn = port_s && *port_s &&
                     suspend_by_evtchn(x, domid, atoi(port_s), &xce, &local, &lockfd) == 0;
    free(port_s);
    char ctl[64];
    snprintf(ctl, sizeof(ctl), "/local/domain/%u/control/shutdown", domid);
    if (!by_evtchn && !xs_write(x->xsh, XBT_NULL, ctl, "suspend", strlen("suspend")))
        return ls_err(e, -errno, "domain %u: cannot ask it to suspend (xenstore %s): %s",
                      domid, ctl, strerror(errno));

    uint64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        if ((rc = xen_getinfo(x, domid, &info, e)) < 0)
            break;
        if (info.shutdown && info.shutdown_reason == SHUTDOWN_suspend)
            break;
        if (info.shutdown || info.dying) {
            rc = ls_err(e, -ESRCH, "domain %u %s instead of suspending", domid,
                        info.dying ? "died" : shutdown_reason_name(info.shutdown_reason));
            break;
        }
        if (now_ms() >= deadline) {
            char *req = by_evtchn ? NULL : xen_xs_read(x, "%s", ctl);
            bool acked = by_evtchn || !req || strcmp(req, "suspend") != 0;
            free(req);
            rc = ls_err(e, -ETIMEDOUT, "domain %u did not suspend within %u s (%s)", domid,
                        timeout_ms / 1000,
                        acked ? "it took the request but did not finish suspending"
                              : "it never took the request: no PV drivers, or the guest hangs");
            /* Withdraw a request the guest never took, so it will not act on it later. */
            if (!acked)
                xs_write(x->xsh, XBT_NULL, ctl, "", 0);
            break;
        }
        sleep_ms(SUSPEND_POLL_MS);
    }
    if (by_evtchn) {
        xc_suspend_evtchn_release(x->xch, xce, domid, local, &lockfd);
        xenevtchn_close(xce);
    }
    return rc;
}

/* ---- destroy -------------------------------------------------------------- */

static void remove_userdata(uint32_t domid)
{
    char pattern[128];
    snprintf(pattern, sizeof(pattern), USERDATA_DIR "/userdata-d.%u.*", domid);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
    }
    globfree(&g);
}

/* Everything xenstore holds for the domain: its own tree, its /vm entry,
 * libxl's private tree and the backend directories dom0 keeps for it. */
static void remove_xenstore(struct xen_backend *x, uint32_t domid)
{
    char *vm = xen_xs_read(x, "/local/domain/%u/vm", domid);
    char path[256];
    if (vm && strncmp(vm, "/vm/", 4) == 0)
        xs_rm(x->xsh, XBT_NULL, vm);
    free(vm);
    snprintf(path, sizeof(path), "/local/domain/%u", domid);
    xs_rm(x->xsh, XBT_NULL, path);
    snprintf(path, sizeof(path), "/libxl/%u", domid);
    xs_rm(x->xsh, XBT_NULL, path);
    unsigned n = 0;
    char **kinds = xs_directory(x->xsh, XBT_NULL, "/local/domain/0/backend", &n);
    for (unsigned i = 0; kinds && i < n; i++) {
        snprintf(path, sizeof(path), "/local/domain/0/backend/%s/%u", kinds[i], domid);
        xs_rm(x->xsh, XBT_NULL, path);
    }
    free(kinds);
}

static int xen_destroy(struct ls_backend *be, uint32_t domid, struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    if (domid == 0)
        return ls_err(e, -EPERM, "refusing to destroy domain 0");
    guard_release(x, domid);
    xc_dominfo_t info;
    int rc = xen_getinfo(x, domid, &info, e);
    if (rc < 0)
        return rc;
    xc_domain_pause(x->xch, domid);
    remove_xenstore(x, domid);
    if (xc_domain_destroy(x->xch, domid) < 0)
        return ls_err(e, -errno, "domain %u: Xen refused to destroy it: %s", domid,
                      strerror(errno));
    remove_userdata(domid);
    xen_target_forget(x, domid);
    return 0;
}

/* ---- the config for the xl header ------------------------------------- */

static char *read_file(const char *path, size_t max)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size < max && (buf = malloc((size_t)st.st_size + 1))) {
        ssize_t n = read(fd, buf, (size_t)st.st_size);
        if (n != st.st_size) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    close(fd);
    return buf;
}

static const char *type_name(enum ls_guest_type t)
{
    return t == LS_GUEST_PV ? "pv" : t == LS_GUEST_PVH ? "pvh" : "hvm";
}

static const char *tsc_mode_name(uint32_t mode)
{
    static const char *names[] = { "default", "always_emulate", "native", "native_paravirt" };
    return mode < 4 ? names[mode] : "default";
}

/* A config libxl accepts for `xl restore`, from what Xen knows of a domain
 * that no libxl created. JSON strings here are names and UUIDs: plain ASCII
 * without quotes (xenstore names with a quote are refused below). */
static int generate_config(struct xen_backend *x, uint32_t domid, const xc_dominfo_t *info,
                           char **json, struct ls_errbuf *e)
{
    char *name = xen_xs_read(x, "/local/domain/%u/name", domid);
    char uuid[37];
    xen_uuid_format(info->handle, uuid);
    for (const char *p = name; p && *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) {
            free(name);
            return ls_err(e, -EINVAL, "domain %u: its name cannot be written into a config",
                          domid);
        }
    uint32_t tsc_mode = 0, khz = 0, incarnation = 0;
    uint64_t elapsed = 0;
    xc_domain_get_tsc_info(x->xch, domid, &tsc_mode, &elapsed, &khz, &incarnation);
    enum ls_guest_type t = xen_type_of(info);
    uint64_t maxkb = info->max_memkb > MAXMEM_SLACK_KIB ? info->max_memkb - MAXMEM_SLACK_KIB
                                                         : info->max_memkb;
    uint64_t target = (uint64_t)info->nr_pages * 4;
    char *buf = NULL;
    int n = asprintf(&buf,
                     "{\n"
                     "    \"c_info\": {\n"
                     "        \"type\": \"%s\",\n"
                     "        \"name\": \"%s\",\n"
                     "        \"uuid\": \"%s\"\n"
                     "    },\n"
                     "    \"b_info\": {\n"
                     "        \"max_vcpus\": %u,\n"
                     "        \"max_memkb\": %" PRIu64 ",\n"
                     "        \"target_memkb\": %" PRIu64 ",\n"
                     "        \"tsc_mode\": \"%s\",\n"
                     "        \"type.%s\": {\n"
                     "        }\n"
                     "    }\n"
                     "}\n",
                     type_name(t), name ? name : "", uuid, info->max_vcpu_id + 1, maxkb,
                     target < maxkb ? target : maxkb, tsc_mode_name(tsc_mode), type_name(t));
    free(name);
    if (n < 0)
        return ls_err(e, -ENOMEM, "out of memory");
    *json = buf;
    return 0;
}

static int xen_get_config_json(struct ls_backend *be, uint32_t domid, char **json,
                               struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    xc_dominfo_t info;
    int rc = xen_getinfo(x, domid, &info, e);
    if (rc < 0)
        return rc;
    /* libxl keeps the config of every domain it built (or restored) here. */
    char uuid[37], path[256];
    xen_uuid_format(info.handle, uuid);
    snprintf(path, sizeof(path), USERDATA_DIR "/userdata-d.%u.%s.libxl-json", domid, uuid);
    char *stored = read_file(path, 16u << 20);
    if (stored) {
        *json = stored;
        return 0;
    }
    return generate_config(x, domid, &info, json, e);
}

/* ---- creating the domain a restore fills ------------------------------- */

struct parsed_config {
    uint8_t uuid[16];
    bool have_uuid;
    int tsc_mode;              /* -1: not given */
    int64_t shadow_memkb, max_grant_frames, max_maptrack_frames;   /* -1: not given */
};

static int64_t json_int(yajl_val root, const char *a, const char *b)
{
    const char *path[] = { a, b, NULL };
    yajl_val v = yajl_tree_get(root, path, yajl_t_number);
    return v && YAJL_IS_INTEGER(v) ? YAJL_GET_INTEGER(v) : -1;
}

static void parse_extra(const char *json, struct parsed_config *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->tsc_mode = -1;
    pc->shadow_memkb = pc->max_grant_frames = pc->max_maptrack_frames = -1;
    if (!json)
        return;
    yajl_val root = yajl_tree_parse(json, NULL, 0);
    if (!root)
        return;
    const char *uuid_path[] = { "c_info", "uuid", NULL };
    yajl_val u = yajl_tree_get(root, uuid_path, yajl_t_string);
    const char *us = u ? YAJL_GET_STRING(u) : NULL;
    if (us && uuid_parse(us, pc->uuid))
        pc->have_uuid = true;
    const char *tsc_path[] = { "b_info", "tsc_mode", NULL };
    yajl_val t = yajl_tree_get(root, tsc_path, yajl_t_string);
    static const char *modes[] = { "default", "always_emulate", "native", "native_paravirt" };
    const char *tsc = t ? YAJL_GET_STRING(t) : NULL;
    for (int i = 0; tsc && i < 4; i++)
        if (strcmp(tsc, modes[i]) == 0)
            pc->tsc_mode = i;
    pc->shadow_memkb = json_int(root, "b_info", "shadow_memkb");
    pc->max_grant_frames = json_int(root, "b_info", "max_grant_frames");
    pc->max_maptrack_frames = json_int(root, "b_info", "max_maptrack_frames");
    yajl_tree_free(root);
}

static void random_uuid(uint8_t u[16])
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, u, 16) != 16) {
        uint64_t t = now_ms() ^ ((uint64_t)getpid() << 32);
        memcpy(u, &t, 8);
        memcpy(u + 8, &t, 8);
    }
    if (fd >= 0)
        close(fd);
    u[6] = (uint8_t)((u[6] & 0x0f) | 0x40);
    u[8] = (uint8_t)((u[8] & 0x3f) | 0x80);
}

static int xen_create_for_restore(struct ls_backend *be, const struct ls_domain_config *cfg,
                                  uint32_t *domid_out, struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    if (cfg->type == LS_GUEST_UNSET)
        return ls_err(e, -EINVAL, "the stream carries no domain config (a bare libxl stream): "
                      "a Xen domain can only be restored from the xl format, whose header "
                      "says the guest's type, vCPUs and memory");
    if (cfg->type == LS_GUEST_HVM)
        return ls_err(e, -ENOTSUP, "HVM guests need a device model, which the Xen backend "
                      "does not start: only PV and PVH guests can be restored");
    if (!cfg->vcpus || !cfg->memory_kib)
        return ls_err(e, -EINVAL, "the domain config does not give the guest's vCPUs and "
                      "memory (b_info.max_vcpus, b_info.max_memkb)");
    uint32_t existing;
    struct ls_errbuf ignore;
    ls_err_clear(&ignore);
    char name[64];
    snprintf(name, sizeof(name), "%s", cfg->name[0] ? cfg->name : "lockstep-restored");
    if (ls_xen_find(be, name, &existing, &ignore) == 0) {
        /* A migration within this host: the source still holds the name. */
        if (!cfg->guard)
            return ls_err(e, -EEXIST, "a domain named '%s' already exists (domain %u)", name,
                          existing);
        snprintf(name, sizeof(name), "%.*s" INCOMING_SUFFIX,
                 (int)(sizeof(name) - sizeof(INCOMING_SUFFIX)), cfg->name);
    }

    struct parsed_config pc;
    parse_extra(cfg->config_json, &pc);
    struct xen_domctl_createdomain create = {
        .max_vcpus = cfg->vcpus,
        .max_evtchn_port = 1023,
        .max_grant_frames = pc.max_grant_frames > 0 ? (int32_t)pc.max_grant_frames : 64,
        .max_maptrack_frames = pc.max_maptrack_frames >= 0 ? (int32_t)pc.max_maptrack_frames
                                                            : 1024,
    };
    xc_physinfo_t phys = { 0 };
    unsigned grant_version = 1;
    if (xc_physinfo(x->xch, &phys) == 0 && (phys.capabilities & XEN_SYSCTL_PHYSCAP_gnttab_v2))
        grant_version = 2;
    create.grant_opts = XEN_DOMCTL_GRANT_version(grant_version);
    if (cfg->type == LS_GUEST_PVH) {
        create.flags = XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap;
        create.arch.emulation_flags = XEN_X86_EMU_LAPIC;
    }
    if (pc.have_uuid)
        memcpy(create.handle, pc.uuid, 16);
    else
        random_uuid(create.handle);

    uint32_t domid = 0;
    if (xc_domain_create(x->xch, &domid, &create) < 0)
        return ls_err(e, -errno, "Xen refused to create a %s domain with %u vCPUs: %s",
                      type_name(cfg->type), cfg->vcpus, strerror(errno));
    int rc = 0;
    const char *step = NULL;
    /* createdomain only bounds the vCPUs; this creates them. */
    if (xc_domain_max_vcpus(x->xch, domid, cfg->vcpus) < 0)
        step = "create its vCPUs";
    else if (xc_domain_setmaxmem(x->xch, domid, cfg->memory_kib + MAXMEM_SLACK_KIB) < 0)
        step = "set its memory limit";
    else if (cfg->type == LS_GUEST_PV &&
             xc_domain_set_memmap_limit(x->xch, domid, cfg->memory_kib) < 0)
        step = "set its memory map limit";
    else if (cfg->type == LS_GUEST_PVH) {
        /* The HAP page-table pool, sized as libxl sizes it by default. */
        uint64_t kb = pc.shadow_memkb > 0 ? (uint64_t)pc.shadow_memkb
                                          : 4 * (256u * cfg->vcpus + 2 * (cfg->memory_kib / 1024));
        if (xc_set_paging_mempool_size(x->xch, domid, kb * 1024) < 0)
            step = "size its paging pool";
    }
    if (!step && pc.tsc_mode >= 0 &&
        xc_domain_set_tsc_info(x->xch, domid, (uint32_t)pc.tsc_mode, 0, 0, 0) < 0)
        step = "set its TSC mode";
    int store_port = -1, console_port = -1;
    if (!step && (store_port = xc_evtchn_alloc_unbound(x->xch, domid, 0)) < 0)
        step = "allocate its xenstore event channel";
    if (!step && (console_port = xc_evtchn_alloc_unbound(x->xch, domid, 0)) < 0)
        step = "allocate its console event channel";
    if (!step)
        rc = xen_target_add(x, domid, cfg, name, create.handle, store_port, console_port, e);
    if (step)
        rc = ls_err(e, -errno, "new domain %u: Xen refused to %s: %s", domid, step,
                    strerror(errno));
    if (rc == 0 && cfg->guard && (rc = xen_set_guard(be, domid, LS_GUARD_DESTROY, e)) < 0)
        xen_target_forget(x, domid);
    if (rc < 0) {
        xc_domain_destroy(x->xch, domid);
        return rc;
    }
    *domid_out = domid;
    return 0;
}

/* ---- restoring into the toolstack's own domain -------------------------- */

/* What xc_domain_restore needs of a domain (as libxl leaves one between
 * libxl__domain_make and the restore helper): created, its vCPUs allocated
 * (XEN_DOMCTL_max_vcpus) and its memory limit set, never run, nothing
 * populated. states/restore.c has checked it is paused, empty, of the
 * stream's type and has enough vCPUs; everything is checked before anything
 * is changed, so a refusal leaves the domain as it was. Then what libxl's
 * build step sets that creation does not: the PV memory map limit, the TSC
 * mode, a PVH paging pool if it has none, and the two unbound event channels
 * xc_domain_restore binds the xenstore and console rings to. */
static int xen_adopt_for_restore(struct ls_backend *be, uint32_t domid,
                                 const struct ls_domain_config *cfg, struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    if (domid == 0)
        return ls_err(e, -EPERM, "refusing to restore into domain 0");
    xc_dominfo_t info;
    int rc = xen_getinfo(x, domid, &info, e);
    if (rc < 0)
        return rc;
    enum ls_guest_type type = xen_type_of(&info);
    if (type == LS_GUEST_HVM)
        return ls_err(e, -ENOTSUP, "domain %u is an HVM domain, which needs a device model the "
                      "Xen backend does not start: only PV and PVH guests can be restored", domid);
    if (info.cpu_time)
        return ls_err(e, -EBUSY, "domain %u has already run (%" PRIu64 " ns of CPU time): "
                      "lockstep restores only into a domain that has never run", domid,
                      info.cpu_time);
    unsigned vcpus = cfg->vcpus ? cfg->vcpus : info.max_vcpu_id + 1;
    for (unsigned v = 0; v < vcpus; v++) {
        xc_vcpuinfo_t vi;
        if (xc_vcpu_getinfo(x->xch, domid, v, &vi) < 0)
            return ls_err(e, -EINVAL, "domain %u has no vCPU %u (the stream's guest has %u): "
                          "the toolstack must create its vCPUs (xc_domain_max_vcpus) before "
                          "handing it over", domid, v, vcpus);
    }
    uint64_t need_kib = cfg->memory_kib + MAXMEM_SLACK_KIB;
    if (info.max_memkb < need_kib)
        return ls_err(e, -EINVAL, "domain %u may have at most %lu KiB of memory, but the "
                      "stream's guest needs %" PRIu64 " KiB (its %" PRIu64 " KiB plus libxl's "
                      "%u KiB slack): set its limit with xc_domain_setmaxmem", domid,
                      info.max_memkb, need_kib, cfg->memory_kib, MAXMEM_SLACK_KIB);
    char name[64];
    char *given = xen_xs_read(x, "/local/domain/%u/name", domid);
    snprintf(name, sizeof(name), "%s", given && given[0] ? given
                                       : cfg->name[0] ? cfg->name : "lockstep-restored");
    free(given);
    uint32_t holder;
    struct ls_errbuf ignore;
    ls_err_clear(&ignore);
    if (ls_xen_find(be, name, &holder, &ignore) == 0 && holder != domid)
        return ls_err(e, -EEXIST, "domain %u would be named '%s', which domain %u already "
                      "has: name it in xenstore (/local/domain/%u/name) first", domid, name,
                      holder, domid);

    /* The stream decides what the config does not say. */
    struct ls_domain_config full = *cfg;
    full.type = type;
    full.vcpus = vcpus;
    if (!full.memory_kib)
        full.memory_kib = info.max_memkb - MAXMEM_SLACK_KIB;
    full.guard = false;
    snprintf(full.name, sizeof(full.name), "%s", name);   /* kept when unpaused */
    struct parsed_config pc;
    parse_extra(cfg->config_json, &pc);
    const char *step = NULL;
    if (type == LS_GUEST_PV && xc_domain_set_memmap_limit(x->xch, domid, full.memory_kib) < 0)
        step = "set its memory map limit";
    if (!step && pc.tsc_mode >= 0 &&
        xc_domain_set_tsc_info(x->xch, domid, (uint32_t)pc.tsc_mode, 0, 0, 0) < 0)
        step = "set its TSC mode";
    uint64_t pool = 0;
    if (!step && type == LS_GUEST_PVH && xc_get_paging_mempool_size(x->xch, domid, &pool) == 0 &&
        pool == 0) {
        uint64_t kb = pc.shadow_memkb > 0 ? (uint64_t)pc.shadow_memkb
                                          : 4 * (256u * vcpus + 2 * (full.memory_kib / 1024));
        if (xc_set_paging_mempool_size(x->xch, domid, kb * 1024) < 0)
            step = "size its paging pool";
    }
    int store_port = -1, console_port = -1;
    if (!step && (store_port = xc_evtchn_alloc_unbound(x->xch, domid, 0)) < 0)
        step = "allocate its xenstore event channel";
    if (!step && (console_port = xc_evtchn_alloc_unbound(x->xch, domid, 0)) < 0)
        step = "allocate its console event channel";
    if (step)
        return ls_err(e, -errno, "domain %u: Xen refused to %s: %s", domid, step,
                      strerror(errno));
    xen_target_forget(x, domid);   /* an earlier, failed restore into it */
    return xen_target_add(x, domid, &full, name, info.handle, store_port, console_port, e);
}

static void xen_release_for_restore(struct ls_backend *be, uint32_t domid)
{
    xen_target_forget(xen_of(be), domid);
}

/* ---- announcing a restored domain ------------------------------------- */

struct xs_batch {
    struct xen_backend *x;
    xs_transaction_t t;
    bool failed;
    int err;
};

static void xs_put(struct xs_batch *b, struct xs_permissions *perms, unsigned nperms,
                   const char *value, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void xs_put(struct xs_batch *b, struct xs_permissions *perms, unsigned nperms,
                   const char *value, const char *fmt, ...)
{
    if (b->failed)
        return;
    char path[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    bool ok = value ? xs_write(b->x->xsh, b->t, path, value, strlen(value))
                    : xs_mkdir(b->x->xsh, b->t, path);
    if (ok && perms)
        ok = xs_set_permissions(b->x->xsh, b->t, path, perms, nperms);
    if (!ok) {
        b->failed = true;
        b->err = errno;
    }
}

/* The keys libxl writes for a device-less guest, in one transaction. */
static int write_domain_tree(struct xen_backend *x, const struct xen_target *t,
                             uint64_t store_mfn, uint64_t console_mfn, struct ls_errbuf *e)
{
    uint32_t d = t->domid;
    struct xs_permissions ro[2] = { { .id = 0, .perms = XS_PERM_NONE },
                                    { .id = d, .perms = XS_PERM_READ } };
    struct xs_permissions rw[1] = { { .id = d, .perms = XS_PERM_NONE } };
    char uuid[37], vm[64], num[32];
    xen_uuid_format(t->uuid, uuid);
    snprintf(vm, sizeof(vm), "/vm/%s", uuid);
    for (int attempt = 0; attempt < 10; attempt++) {
        struct xs_batch b = { .x = x, .t = xs_transaction_start(x->xsh) };
        if (b.t == XBT_NULL)
            return ls_err(e, -errno, "domain %u: cannot start a xenstore transaction: %s", d,
                          strerror(errno));
        const char *dp = "/local/domain";
        xs_put(&b, ro, 2, NULL, "%s/%u", dp, d);
        xs_put(&b, ro, 2, NULL, "%s", vm);
        xs_put(&b, NULL, 0, uuid, "%s/uuid", vm);
        xs_put(&b, NULL, 0, t->name, "%s/name", vm);
        xs_put(&b, NULL, 0, vm, "%s/%u/vm", dp, d);
        xs_put(&b, NULL, 0, t->name, "%s/%u/name", dp, d);
        snprintf(num, sizeof(num), "%u", d);
        xs_put(&b, NULL, 0, num, "%s/%u/domid", dp, d);
        xs_put(&b, ro, 2, NULL, "%s/%u/control", dp, d);
        xs_put(&b, rw, 1, "", "%s/%u/control/shutdown", dp, d);
        xs_put(&b, rw, 1, "", "%s/%u/control/sysrq", dp, d);
        static const char *guest_dirs[] = { "data", "drivers", "feature", "attr", "error" };
        for (size_t i = 0; i < sizeof(guest_dirs) / sizeof(guest_dirs[0]); i++)
            xs_put(&b, rw, 1, NULL, "%s/%u/%s", dp, d, guest_dirs[i]);
        xs_put(&b, ro, 2, NULL, "%s/%u/device", dp, d);
        xs_put(&b, ro, 2, NULL, "%s/%u/memory", dp, d);
        snprintf(num, sizeof(num), "%" PRIu64, t->memory_kib);
        xs_put(&b, NULL, 0, num, "%s/%u/memory/static-max", dp, d);
        xs_put(&b, NULL, 0, num, "%s/%u/memory/target", dp, d);
        xs_put(&b, NULL, 0, "-1", "%s/%u/memory/videoram", dp, d);
        for (unsigned c = 0; c < t->vcpus; c++)
            xs_put(&b, ro, 2, "online", "%s/%u/cpu/%u/availability", dp, d, c);
        snprintf(num, sizeof(num), "%" PRIu64, store_mfn);
        xs_put(&b, NULL, 0, num, "%s/%u/store/ring-ref", dp, d);
        snprintf(num, sizeof(num), "%d", t->store_port);
        xs_put(&b, NULL, 0, num, "%s/%u/store/port", dp, d);
        xs_put(&b, ro, 2, NULL, "%s/%u/console", dp, d);
        snprintf(num, sizeof(num), "%" PRIu64, console_mfn);
        xs_put(&b, NULL, 0, num, "%s/%u/console/ring-ref", dp, d);
        snprintf(num, sizeof(num), "%d", t->console_port);
        xs_put(&b, NULL, 0, num, "%s/%u/console/port", dp, d);
        xs_put(&b, NULL, 0, CONSOLE_LIMIT, "%s/%u/console/limit", dp, d);
        xs_put(&b, NULL, 0, "xenconsoled", "%s/%u/console/type", dp, d);
        xs_put(&b, NULL, 0, "pty", "%s/%u/console/output", dp, d);
        xs_put(&b, NULL, 0, type_name(t->type), "/libxl/%u/type", d);
        if (b.failed) {
            xs_transaction_end(x->xsh, b.t, true);
            return ls_err(e, -b.err, "domain %u: writing its xenstore entries: %s", d,
                          strerror(b.err));
        }
        if (xs_transaction_end(x->xsh, b.t, false))
            return 0;
        if (errno != EAGAIN)
            return ls_err(e, -errno, "domain %u: committing its xenstore entries: %s", d,
                          strerror(errno));
    }
    return ls_err(e, -EAGAIN, "domain %u: xenstore kept aborting the transaction", d);
}

/* libxl's per-domain config, so that xl treats the domain as one of its own. */
static void write_userdata(const struct xen_target *t)
{
    if (!t->config_json)
        return;
    char uuid[37], path[256], tmp[272];
    xen_uuid_format(t->uuid, uuid);
    snprintf(path, sizeof(path), USERDATA_DIR "/userdata-d.%u.%s.libxl-json", t->domid, uuid);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    mkdir(USERDATA_DIR, 0755);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    size_t len = strlen(t->config_json);
    bool ok = write(fd, t->config_json, len) == (ssize_t)len;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) < 0)
        unlink(tmp);
}

int xen_announce_domain(struct xen_backend *x, uint32_t domid, uint64_t store_mfn,
                        uint64_t console_mfn, struct ls_errbuf *e)
{
    struct xen_target t;
    if (!xen_target_get(x, domid, &t))
        return ls_err(e, -ESRCH, "domain %u was not created by this lockstep for a restore",
                      domid);
    int rc = write_domain_tree(x, &t, store_mfn, console_mfn, e);
    if (rc == 0 && !xs_introduce_domain(x->xsh, domid, store_mfn, (unsigned)t.store_port))
        rc = ls_err(e, -errno, "domain %u: xenstored refused to introduce it: %s", domid,
                    strerror(errno));
    if (rc == 0)
        write_userdata(&t);
    free(t.config_json);
    return rc;
}

/* ---- restore targets ---------------------------------------------------- */

int xen_target_add(struct xen_backend *x, uint32_t domid, const struct ls_domain_config *cfg,
                   const char *name, const uint8_t uuid[16], int store_port,
                   int console_port, struct ls_errbuf *e)
{
    struct xen_target *t = calloc(1, sizeof(*t));
    if (!t)
        return ls_err(e, -ENOMEM, "out of memory");
    t->domid = domid;
    t->type = cfg->type;
    t->vcpus = cfg->vcpus;
    t->memory_kib = cfg->memory_kib;
    snprintf(t->name, sizeof(t->name), "%s", name);
    if (strcmp(name, cfg->name) != 0 && cfg->name[0])
        snprintf(t->final_name, sizeof(t->final_name), "%s", cfg->name);
    memcpy(t->uuid, uuid, 16);
    t->store_port = store_port;
    t->console_port = console_port;
    if (cfg->config_json && !(t->config_json = strdup(cfg->config_json))) {
        free(t);
        return ls_err(e, -ENOMEM, "out of memory");
    }
    pthread_mutex_lock(&x->lock);
    t->next = x->targets;
    x->targets = t;
    pthread_mutex_unlock(&x->lock);
    return 0;
}

bool xen_target_get(struct xen_backend *x, uint32_t domid, struct xen_target *copy)
{
    pthread_mutex_lock(&x->lock);
    struct xen_target *t = x->targets;
    while (t && t->domid != domid)
        t = t->next;
    if (t) {
        *copy = *t;
        copy->next = NULL;
        copy->config_json = t->config_json ? strdup(t->config_json) : NULL;
    }
    pthread_mutex_unlock(&x->lock);
    return t != NULL;
}

void xen_target_forget(struct xen_backend *x, uint32_t domid)
{
    pthread_mutex_lock(&x->lock);
    for (struct xen_target **p = &x->targets; *p; p = &(*p)->next) {
        if ((*p)->domid == domid) {
            struct xen_target *t = *p;
            *p = t->next;
            free(t->config_json);
            free(t);
            break;
        }
    }
    pthread_mutex_unlock(&x->lock);
}

/* ---- guards ------------------------------------------------------------- */

/* The domain's guard process, taken off the list (NULL: none). */
static struct xen_guard *guard_take(struct xen_backend *x, uint32_t domid)
{
    pthread_mutex_lock(&x->lock);
    struct xen_guard *g = NULL;
    for (struct xen_guard **p = &x->guards; *p; p = &(*p)->next) {
        if ((*p)->domid == domid) {
            g = *p;
            *p = g->next;
            break;
        }
    }
    pthread_mutex_unlock(&x->lock);
    return g;
}

static void guard_put(struct xen_backend *x, struct xen_guard *g)
{
    pthread_mutex_lock(&x->lock);
    g->next = x->guards;
    x->guards = g;
    pthread_mutex_unlock(&x->lock);
}

/* The guard ends: the domain is destroyed, or lockstep lets it go. */
static void guard_release(struct xen_backend *x, uint32_t domid)
{
    struct xen_guard *g = guard_take(x, domid);
    if (g) {
        xen_guard_release(g->pid, g->wfd);
        free(g);
    }
}

/* Resumed or unpaused: nothing to resume or destroy if lockstep dies now,
 * but the process stays for the next arming (a COLO or Remus checkpoint). */
void xen_guard_disarm(struct xen_backend *x, uint32_t domid)
{
    struct xen_guard *g = guard_take(x, domid);
    if (!g)
        return;
    if (xen_guard_send(g->wfd, XH_GUARD_DISARM) == 0) {
        guard_put(x, g);
        return;
    }
    xen_guard_release(g->pid, g->wfd);   /* gone: reaped */
    free(g);
}

int xen_set_guard(struct ls_backend *be, uint32_t domid, enum ls_guard guard, struct ls_errbuf *e)
{
    struct xen_backend *x = xen_of(be);
    if (guard == LS_GUARD_NONE) {
        guard_release(x, domid);
        return 0;
    }
    struct xen_guard *g = guard_take(x, domid);
    if (g && xen_guard_send(g->wfd, guard == LS_GUARD_DESTROY ? XH_GUARD_DESTROY
                                                               : XH_GUARD_RESUME) == 0) {
        guard_put(x, g);
        return 0;
    }
    if (g) {   /* it died since: a new one */
        xen_guard_release(g->pid, g->wfd);
        free(g);
    }
    g = calloc(1, sizeof(*g));
    if (!g)
        return ls_err(e, -ENOMEM, "out of memory");
    g->domid = domid;
    int rc = xen_guard_spawn(x, domid, guard == LS_GUARD_DESTROY, &g->pid, &g->wfd, e);
    if (rc < 0) {
        free(g);
        return rc;
    }
    guard_put(x, g);
    return 0;
}

/* ---- open / close ------------------------------------------------------- */

static void xen_close(struct ls_backend *be)
{
    struct xen_backend *x = xen_of(be);
    while (x->targets)
        xen_target_forget(x, x->targets->domid);
    /* A guard still armed at close means lockstep gave its domain up: closing
     * its socket fires it, as lockstep's death would; a disarmed one exits. */
    while (x->guards) {
        struct xen_guard *g = x->guards;
        x->guards = g->next;
        close(g->wfd);
        free(g);
    }
    if (x->xsh)
        xs_close(x->xsh);
    if (x->xch)
        xc_interface_close(x->xch);
    if (x->quiet)
        x->quiet->destroy(x->quiet);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

/* COLO runs both copies, so their disks and network must be replicated by
 * the device model: QEMU's block replication and COLO proxy, driven by
 * libxl's COLO. Debian's qemu-system-xen 7.2 has neither (no 'replication'
 * driver, no xen-set-replication) and its libxl is built without COLO. */
static int xen_colo_refusal(struct ls_backend *be, struct ls_errbuf *e)
{
    (void)be;
    return ls_err(e, -EOPNOTSUPP, "COLO on Xen needs a QEMU with block replication and the "
                  "COLO proxy for the two running copies' disks and network; Debian's "
                  "qemu-system-xen 7.2 has neither (\"Unknown driver 'replication'\"), so "
                  "lockstep does not run COLO on Xen: use --mode remus on both sides (the "
                  "secondary's copy stays paused and takes over at failover)");
}

static const struct ls_backend_ops xen_ops = {
    .name = "xen",
    .close = xen_close,
    .domain_info = xen_domain_info,
    .pause = xen_pause,
    .unpause = xen_unpause,
    .suspend = xen_suspend,
    .resume = xen_resume,
    .destroy = xen_destroy,
    .get_config_json = xen_get_config_json,
    .create_for_restore = xen_create_for_restore,
    .adopt_for_restore = xen_adopt_for_restore,
    .release_for_restore = xen_release_for_restore,
    .save_memory = xen_save_memory,
    .restore_memory = xen_restore_memory,
    .set_guard = xen_set_guard,
    .start_guarded = xen_start_guarded,
    .colo_refusal = xen_colo_refusal,
    .digest = NULL,
};

int ls_xen_open(struct ls_backend **out, struct ls_errbuf *e)
{
    if (!ls_xen_available())
        return ls_err(e, -ENODEV, "no Xen hypervisor here: %s does not exist (the Xen backend "
                      "needs a Xen dom0 with the privcmd driver loaded)", LS_XEN_PRIVCMD);
    struct xen_backend *x = calloc(1, sizeof(*x));
    if (!x)
        return ls_err(e, -ENOMEM, "out of memory");
    x->be.ops = &xen_ops;
    pthread_mutex_init(&x->lock, NULL);
    int rc = xen_find_helper(x->helper, sizeof(x->helper), e);
    if (rc == 0) {
        /* libxc's own messages go to stderr only when asked for. */
        x->quiet = (xentoollog_logger *)xtl_createlogger_stdiostream(
            stderr, getenv("LOCKSTEP_XEN_DEBUG") ? XTL_DEBUG : XTL_CRITICAL, 0);
        x->xch = xc_interface_open(x->quiet, x->quiet, 0);
        if (!x->xch)
            rc = ls_err(e, errno ? -errno : -ENODEV, "cannot open %s: %s", LS_XEN_PRIVCMD,
                        strerror(errno ? errno : ENODEV));
    }
    if (rc == 0 && !(x->xsh = xs_open(0)))
        rc = ls_err(e, errno ? -errno : -ENOENT, "cannot reach xenstored: %s (is it running?)",
                    strerror(errno ? errno : ENOENT));
    if (rc < 0) {
        xen_close(&x->be);
        return rc;
    }
    *out = &x->be;
    return 0;
}
