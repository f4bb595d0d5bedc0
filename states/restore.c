/* states/restore.c - actions of the restore role (restore.def). */
#include "states/restore.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "io/work.h"
#include "states/dm_standin.h"

#define FSM_PREFIX RESTORE
#define FSM_DEF_FILE "states/restore.def"
#include "fsm/gen_table.h"

static struct ls_backend *be_of(struct restore_role *r) { return r->op.ctx->be; }

/* ---- config ------------------------------------------------------------- */

int restore_parse_config(const char *json, struct ls_domain_config *cfg, struct ls_errbuf *err)
{
    char why[256] = "";
    yajl_val root = yajl_tree_parse(json, why, sizeof(why));
    if (!root)
        return ls_err(err, -EINVAL, "xl header: the domain config is not valid JSON: %s", why);
    memset(cfg, 0, sizeof(*cfg));
    const char *type_path[] = { "c_info", "type", NULL };
    const char *name_path[] = { "c_info", "name", NULL };
    const char *vcpus_path[] = { "b_info", "max_vcpus", NULL };
    const char *mem_path[] = { "b_info", "max_memkb", NULL };
    yajl_val type = yajl_tree_get(root, type_path, yajl_t_string);
    yajl_val name = yajl_tree_get(root, name_path, yajl_t_string);
    yajl_val vcpus = yajl_tree_get(root, vcpus_path, yajl_t_number);
    yajl_val mem = yajl_tree_get(root, mem_path, yajl_t_number);
    int rc = 0;
    const char *t = type && YAJL_GET_STRING(type) ? YAJL_GET_STRING(type) : "";
    if (strcmp(t, "pv") == 0)
        cfg->type = LS_GUEST_PV;
    else if (strcmp(t, "hvm") == 0)
        cfg->type = LS_GUEST_HVM;
    else if (strcmp(t, "pvh") == 0)
        cfg->type = LS_GUEST_PVH;
    else
        rc = ls_err(err, -EINVAL, "xl header: the domain config's c_info.type is \"%s\", "
                    "not pv, pvh or hvm", t);
    if (name)
        snprintf(cfg->name, sizeof(cfg->name), "%s", YAJL_GET_STRING(name));
    if (vcpus && YAJL_IS_INTEGER(vcpus) && YAJL_GET_INTEGER(vcpus) > 0)
        cfg->vcpus = (unsigned)YAJL_GET_INTEGER(vcpus);
    if (mem && YAJL_IS_INTEGER(mem) && YAJL_GET_INTEGER(mem) > 0)
        cfg->memory_kib = (uint64_t)YAJL_GET_INTEGER(mem);
    yajl_tree_free(root);
    return rc;
}

/* ---- the memory task's thread and its callbacks ----------------------- */

static int cb_static_data_done(unsigned missing, void *data)
{
    struct restore_role *r = data;
    r->static_data_missing = missing;
    return io_helper_call(&r->mem.helper, &r->m, RESTORE_E_CB_STATIC_DATA_DONE, NULL, -1);
}

static void cb_restore_results(uint64_t store_gfn, uint64_t console_gfn, void *data)
{
    struct restore_role *r = data;
    r->store_gfn = store_gfn;
    r->console_gfn = console_gfn;
    io_helper_call(&r->mem.helper, &r->m, RESTORE_E_CB_RESTORE_RESULTS, NULL, 0);
}

static void cb_progress(uint64_t done, uint64_t total, void *data)
{
    struct restore_role *r = data;
    io_helper_progress(&r->mem.helper, done, total);
}

static int restore_memory_thread(struct io_helper *h, void *arg, struct ls_errbuf *err)
{
    struct restore_role *r = arg;
    struct ls_restore_params p = {
        .domid = r->domid, .io_fd = r->opts.fd, .send_back_fd = -1,
        .stream_type = LS_STREAM_PLAIN, .cancel_fd = h->cancel_fd, .stream_offset = r->offset,
    };
    struct ls_restore_callbacks cb = {
        .static_data_done = cb_static_data_done, .restore_results = cb_restore_results,
        .progress = cb_progress, .data = r,
    };
    return be_of(r)->ops->restore_memory(be_of(r), &p, &cb, err);
}

/* ---- backend calls on the threadpool ---------------------------------- */

/* The toolstack's domain (opts.domid) instead of a new one: it must be what
 * create_for_restore would have made, an empty paused domain that fits the
 * stream. A refusal here leaves it exactly as it was. */
static int adopt_domain(struct restore_role *r, struct ls_errbuf *err)
{
    struct ls_backend *be = be_of(r);
    const struct ls_domain_config *c = &r->config;
    uint32_t d = r->opts.domid;
    struct ls_domain_info info;
    struct ls_errbuf why;
    ls_err_clear(&why);
    int rc = be->ops->domain_info(be, d, &info, &why);
    if (rc == -ESRCH) {
        r->given_missing = true;
        return ls_err(err, rc, "domain %u, given to restore into, does not exist", d);
    }
    if (rc < 0) {
        ls_err_copy(err, &why);
        return rc;
    }
    if (info.state != LS_RUN_PAUSED)
        return ls_err(err, -EBUSY, "domain %u is %s: lockstep restores only into a paused "
                      "domain that has never run", d, backend_run_state_name(info.state));
    if (info.memory_kib)
        return ls_err(err, -EBUSY, "domain %u already holds %" PRIu64 " KiB of memory: it was "
                      "built or has run, and lockstep restores only into an empty domain", d,
                      info.memory_kib);
    if (c->type != LS_GUEST_UNSET && info.type != LS_GUEST_UNSET && c->type != info.type)
        return ls_err(err, -EINVAL, "domain %u is a %s domain, but the stream holds a %s guest",
                      d, backend_guest_type_name(info.type), backend_guest_type_name(c->type));
    if (c->vcpus && info.vcpus && info.vcpus != c->vcpus)
        return ls_err(err, -EINVAL, "domain %u has %u vCPU%s, but the stream's guest has %u", d,
                      info.vcpus, info.vcpus == 1 ? "" : "s", c->vcpus);
    /* A backend that adopts checks the memory limit itself (an unbuilt Xen
     * domain has no address space yet); elsewhere the address space must
     * hold the guest's RAM. */
    if (!be->ops->adopt_for_restore && c->memory_kib && info.p2m_size &&
        info.p2m_size * 4 < c->memory_kib)
        return ls_err(err, -EINVAL, "domain %u has room for %" PRIu64 " KiB of memory, but the "
                      "stream's guest has %" PRIu64 " KiB", d, info.p2m_size * 4, c->memory_kib);
    if (be->ops->adopt_for_restore && (rc = be->ops->adopt_for_restore(be, d, c, err)) < 0)
        return rc;
    r->domid = d;
    r->given_adopted = true;
    r->domain_created = true;
    r->op.domid = d;
    return 0;
}

static int create_domain(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct restore_role *r = arg;
    if (r->opts.domid)
        return adopt_domain(r, err);
    r->config.guard = r->opts.guard;
    int rc = be_of(r)->ops->create_for_restore(be_of(r), &r->config, &r->domid, err);
    if (rc == 0) {
        r->domain_created = true;
        r->op.domid = r->domid;
    }
    return rc;
}

/* An HVM guest with a real device model gets its standby QEMU now, so that
 * QEMU's start runs beside the memory restore (a migration's pre-copy) and
 * not in the downtime. The stream's EMULATOR_CONTEXT, which says whether the
 * state is a real QEMU's, comes last: a stand-in's state discards it. */
static int start_standby(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct restore_role *r = arg;
    struct ls_backend *be = be_of(r);
    struct ls_domain_info info;
    int rc = be->ops->domain_info(be, r->domid, &info, err);
    if (rc < 0 || info.type != LS_GUEST_HVM || r->opts.device_model == LS_DM_STANDIN ||
        !be->ops->dm_prepare_standby || !be->ops->dm_load_checkpoint ||
        !be->ops->dm_discard_standby)
        return rc;
    r->dm_started = true;   /* a given domain gets it stopped on failure */
    r->standby = true;
    return be->ops->dm_prepare_standby(be, r->domid, r->opts.qemu, err);
}

/* The device state: a real QEMU's goes to the standby (or, without one, a
 * QEMU started on it: libxl spawns the device model once the stream is in);
 * a stand-in's is checked. */
static int start_dm(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct restore_role *r = arg;
    struct ls_backend *be = be_of(r);
    struct ls_domain_info info;
    int rc = be->ops->domain_info(be, r->domid, &info, err);
    if (rc < 0)
        return rc;
    bool hvm = info.type == LS_GUEST_HVM;
    if (!hvm && (r->emulator_context || r->seen_xenstore_data))
        return ls_err(err, -EINVAL, "the stream carries device-model records for a %s guest, "
                      "which has no device model", info.type == LS_GUEST_PV ? "PV" : "PVH");
    if (!hvm)
        return 0;
    if (!r->emulator_context)
        return ls_err(err, -EINVAL, "the HVM stream has no EMULATOR_CONTEXT record: there is no "
                      "device model state to start the guest's QEMU from");
    if (!dm_state_is_qemu(r->emulator_context, r->emulator_context_len)) {
        if (r->standby && (rc = be->ops->dm_discard_standby(be, r->domid, err)) < 0)
            return rc;
        return dm_standin_check(r->emulator_context, r->emulator_context_len, err);
    }
    if (r->opts.device_model == LS_DM_STANDIN)
        return ls_err(err, -EINVAL, "the stream's EMULATOR_CONTEXT holds a real QEMU's device "
                      "state (%zu bytes), but this restore has no device model to load it into "
                      "(--no-device-model): restore it with a QEMU", r->emulator_context_len);
    if (!be->ops->dm_start_incoming || !be->ops->dm_info)
        return ls_err(err, -EOPNOTSUPP, "the %s backend cannot start a device model on a saved "
                      "QEMU state", be->ops->name);
    int fd = memfd_create("lockstep-incoming-device-state", MFD_CLOEXEC);
    if (fd < 0)
        return ls_err(err, -errno, "memfd for the device state: %s", strerror(errno));
    size_t done = 0;
    while (done < r->emulator_context_len) {
        ssize_t w = write(fd, r->emulator_context + done, r->emulator_context_len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = ls_err(err, -errno, "writing the device state to a memfd: %s", strerror(errno));
            close(fd);
            return rc;
        }
        done += (size_t)w;
    }
    lseek(fd, 0, SEEK_SET);
    r->dm_started = true;   /* even a start that fails may leave a QEMU behind */
    if (r->standby)
        rc = be->ops->dm_load_checkpoint(be, r->domid, fd, err);
    else
        rc = be->ops->dm_start_incoming(be, r->domid, fd, r->opts.qemu, err);
    close(fd);
    if (rc < 0)
        return rc;
    if ((rc = be->ops->dm_info(be, r->domid, &r->dm, err)) < 0)
        return rc;
    r->dm_qemu = true;
    return 0;
}

static int finish_domain(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct restore_role *r = arg;
    int rc;
    if (be_of(r)->ops->digest && !r->opts.no_digest &&
        (rc = be_of(r)->ops->digest(be_of(r), r->domid, r->op.digest, err)) < 0)
        return rc;
    if (r->opts.unpause)
        return be_of(r)->ops->unpause(be_of(r), r->domid, err);
    return 0;
}

static int destroy_domain(void *arg, int cancel_fd, struct ls_errbuf *err)
{
    struct restore_role *r = arg;
    struct ls_backend *be = be_of(r);
    if (!r->domain_created)
        return 0;   /* nothing of ours exists: never touch a domain id we did not get */
    if (r->opts.domid) {
        /* The toolstack's: it decides what becomes of it, and gets it back as
         * it came, without the QEMU this restore started (a destroyed domain
         * takes its QEMU with it; a released one would keep it running). */
        if (r->dm_started && be->ops->dm_stop) {
            struct ls_errbuf why;
            ls_err_clear(&why);
            int rc = be->ops->dm_stop(be, r->domid, &why);
            if (rc < 0)
                return ls_err(err, rc, "the restore failed and the device model it started for "
                              "domain %u could not be stopped: %s", r->domid, why.msg);
            r->dm_started = false;
        }
        if (be->ops->release_for_restore)
            be->ops->release_for_restore(be, r->domid);
        r->domain_created = false;
        return 0;
    }
    struct ls_errbuf mine;
    ls_err_clear(&mine);
    int rc = be->ops->destroy(be, r->domid, &mine);
    if (rc < 0)
        return ls_err(err, rc, "the restore failed and its partial domain %u could not be "
                      "destroyed: %s", r->domid, mine.msg);
    r->domain_created = false;
    return 0;
}

/* ---- actions ------------------------------------------------------------ */

static int rst_start_tasks(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    fsm_init(&r->srx, &stream_rx_fsm_def, m->sched, NULL, r, "stream_rx");
    memtask_init(&r->mem, m->sched, "memtask[restore]", restore_memory_thread, r, &r->srx,
                 STREAM_RX_E_MEMORY_DONE);
    r->op.progress_of = &r->mem.helper;
    fsm_join_begin(&r->tasks, m, RESTORE_E_TASKS_DONE, RESTORE_E_TASKS_FAILED);
    fsm_join_add(&r->tasks, &r->srx);
    fsm_join_add(&r->tasks, &r->mem.m);
    fsm_join_arm(&r->tasks);
    fsm_post(&r->srx, STREAM_RX_E_START, 0, NULL);
    return fsm_defer(m, fsm_join_undo, &r->tasks, "stream and memory tasks");
}

static int rst_create_domain(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, RESTORE_E_DOMAIN_CREATED, create_domain, m->owner,
                         "create the domain");
}

/* Once the domain exists every row knows it: a step that cannot even start
 * takes its row and fails from the next state, whose FAIL row destroys the
 * domain (failing the action would stay in a state that knows of none). */
static int start_or_fail(struct fsm *m, int ev, io_work_fn *fn, const char *what)
{
    if (io_work_start(m, ev, fn, m->owner, what) < 0)
        fsm_post(m, m->def->fail_event, fsm_rc(m), NULL);
    return 0;
}

static int rst_start_standby(struct fsm *m, const struct fsm_ev *ev)
{
    return start_or_fail(m, RESTORE_E_DM_STANDBY_STARTED, start_standby,
                         "start the standby device model");
}

static int rst_release_reader(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    fsm_post(&r->srx, STREAM_RX_E_DOMAIN_READY, 0, NULL);
    return 0;
}

static int rst_answer_static_data(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    /* A v2 stream without CPUID/MSR policy: libxl would apply its legacy
     * policy here; the sim's guests keep the policy they were built with. */
    io_helper_reply(&r->mem.helper, 0);
    return 0;
}

static int rst_store_results(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    io_helper_reply(&r->mem.helper, 0);
    return 0;
}

static int rst_start_dm(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, RESTORE_E_DM_STARTED, start_dm, m->owner, "start the device model");
}

/* A devmodel child doing job ev (or, with no QEMU to talk to, an empty join
 * that reports ok at once), reporting ok_ev or DM_FAILED. */
static int start_dm_job(struct fsm *m, struct dm_task *t, struct fsm_join *j, int job, int ok_ev,
                        bool needed)
{
    struct restore_role *r = m->owner;
    r->dm_join = j;
    fsm_join_begin(j, m, ok_ev, RESTORE_E_DM_FAILED);
    if (!needed) {
        fsm_join_arm(j);
        return 0;
    }
    dm_task_init(t, m->sched, r->domid, r->dm.pid, r->dm.qmp_path);
    dm_task_set_log(t, r->dm.log_path);
    fsm_join_add(j, &t->m);
    fsm_join_arm(j);
    fsm_post(&t->m, job, 0, NULL);
    return fsm_defer(m, fsm_join_undo, j, "device model job");
}

static int rst_check_dm(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    return start_dm_job(m, &r->dm_check, &r->dm_check_join, DEVMODEL_E_CHECK,
                        RESTORE_E_DM_LOADED, r->dm_qemu);
}

static int rst_cont_dm(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    /* libxl lets the device model run when the domain is unpaused. A
     * migration's receiver (guard) unpauses at the sender's go-ahead, in the
     * step that reads it, so its QEMU runs from here: a failed migration
     * destroys the domain with it. */
    return start_dm_job(m, &r->dm_cont, &r->dm_cont_join, DEVMODEL_E_CONT,
                        RESTORE_E_DM_CONTINUED,
                        r->dm_qemu && (r->opts.unpause || r->opts.guard));
}

static int rst_cancel_dm(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    fsm_join_cancel(r->dm_join, -ECANCELED);
    return 0;
}

static int rst_finish_domain(struct fsm *m, const struct fsm_ev *ev)
{
    return io_work_start(m, RESTORE_E_FINISHED, finish_domain, m->owner, "finish the domain");
}

static int rst_destroy_domain(struct fsm *m, const struct fsm_ev *ev)
{
    return start_or_fail(m, RESTORE_E_DOMAIN_DESTROYED, destroy_domain,
                         "destroy the partial domain");
}

static int rst_cancel_tasks(struct fsm *m, const struct fsm_ev *ev)
{
    struct restore_role *r = m->owner;
    fsm_join_cancel(&r->tasks, -ECANCELED);
    return 0;
}

/* ---- the API ------------------------------------------------------------ */

static void restore_done(struct fsm *m, int rc)
{
    struct restore_role *r = m->owner;
    if (rc == 0 || !r->opts.domid || r->given_missing) {
        op_finish(&r->op, rc, fsm_errmsg(m));
        return;
    }
    char msg[LS_ERRBUF_LEN + 160];
    if (r->given_adopted)
        snprintf(msg, sizeof(msg), "%s (domain %u is the toolstack's: lockstep did not destroy "
                 "it; it is paused and may hold part of the guest)", fsm_errmsg(m),
                 r->opts.domid);
    else
        snprintf(msg, sizeof(msg), "%s (domain %u is the toolstack's: lockstep left it as it "
                 "was)", fsm_errmsg(m), r->opts.domid);
    op_finish(&r->op, rc, msg);
}

static void restore_free(struct ls_op *op)
{
    struct restore_role *r = (struct restore_role *)op;
    free(r->config_json);
    free(r->emulator_context);
    free(r);
}

int restore_role_start(struct ls_ctx *ctx, const struct ls_restore_opts *opts,
                       ls_op_done_fn *done, void *data, struct ls_op **out,
                       struct ls_errbuf *err)
{
    if (opts->domid && opts->guard)
        return ls_err(err, -EINVAL, "restore: a domain the toolstack gave (domid %u) is never "
                      "destroyed by lockstep, so it cannot be guarded", opts->domid);
    struct restore_role *r = calloc(1, sizeof(*r));
    if (!r)
        return ls_err(err, -ENOMEM, "out of memory");
    r->op = (struct ls_op){ .ctx = ctx, .root = &r->m, .done = done, .data = data,
                            .free_role = restore_free };
    r->opts = *opts;
    fsm_init(&r->m, &restore_fsm_def, &ctx->sched.sched, restore_done, r, "restore");
    ctx->live_ops++;
    fsm_post(&r->m, RESTORE_E_START, 0, NULL);
    *out = &r->op;
    return 0;
}
