/* test/sim/test_sim_memory.c - the sim memory task without the state machines.
 *
 * save_memory of PV and HVM guests into a pipe, a socketpair or a file,
 * restore_memory from it into an empty domain, and the digests must match.
 * The streams must have the 4.17 saver's record order and batch shape and
 * pass Xen's verify-stream-v2; broken streams must be refused with the
 * offset and record named, without leaking fds or memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/sim/sim.h"
#include "backends/sim/sim_internal.h"
#include "io/records.h"
#include "simtest.h"

#define VERIFIER   "/usr/lib/xen-4.17/bin/verify-stream-v2"
#define XEN_PYPATH "/usr/lib/xen-4.17/lib/python"

struct fixture {
    struct simtest_env env;
    struct ls_backend *be;
    int fds_before;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct ls_errbuf e;
    simtest_env_init(&f->env, 0);
    ls_err_clear(&e);
    if (ls_sim_open(&f->be, &e) < 0)
        fail_msg("ls_sim_open: %s", e.msg);
    f->fds_before = simtest_count_fds();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int fds = simtest_count_fds(), before = f->fds_before;
    if (!f->be) {   /* skipped before it opened the backend */
        simtest_env_fini(&f->env);
        free(f);
        return 0;
    }
    f->be->ops->close(f->be);
    simtest_env_fini(&f->env);
    free(f);
    if (fds != before)
        fail_msg("fd leak: %d open fds after the test, %d before", fds, before);
    return 0;
}

/* ---- callbacks -------------------------------------------------------------- */

struct cbs {
    struct ls_backend *be;
    uint32_t domid;
    int suspends, progress, logdirty, sdd, results, policy;
    unsigned missing;
    uint64_t done, total, store, console;
    bool fail_suspend;
};

static int cb_suspend(void *d)
{
    struct cbs *c = d;
    struct ls_errbuf e;
    ls_err_clear(&e);
    c->suspends++;
    if (c->fail_suspend)
        return 0;
    return c->be->ops->suspend(c->be, c->domid, 1000, &e) == 0 ? 1 : 0;
}

static void cb_progress(uint64_t done, uint64_t total, void *d)
{
    struct cbs *c = d;
    c->progress++;
    c->done = done;
    c->total = total;
}

static int cb_logdirty(uint32_t domid, unsigned enable, void *d)
{
    ((struct cbs *)d)->logdirty++;
    return 0;
}

static int cb_policy(struct ls_precopy_stats st, void *d)
{
    ((struct cbs *)d)->policy++;
    return st.iteration >= 2 ? LS_POLICY_STOP_AND_COPY : LS_POLICY_CONTINUE_PRECOPY;
}

static int cb_sdd(unsigned missing, void *d)
{
    struct cbs *c = d;
    c->sdd++;
    c->missing = missing;
    return 0;
}

static void cb_results(uint64_t store, uint64_t console, void *d)
{
    struct cbs *c = d;
    c->results++;
    c->store = store;
    c->console = console;
}

static struct ls_save_callbacks save_cbs(struct cbs *c)
{
    return (struct ls_save_callbacks){ .suspend = cb_suspend, .progress = cb_progress,
                                       .switch_qemu_logdirty = cb_logdirty, .data = c };
}

static struct ls_restore_callbacks restore_cbs(struct cbs *c)
{
    return (struct ls_restore_callbacks){ .static_data_done = cb_sdd,
                                          .restore_results = cb_results,
                                          .progress = cb_progress, .data = c };
}

/* ---- helpers ------------------------------------------------------------------ */

static uint32_t create(struct ls_backend *be, enum ls_guest_type type, uint64_t kib,
                       unsigned vcpus, uint64_t seed)
{
    struct ls_sim_create_args a = { .type = type, .memory_kib = kib, .vcpus = vcpus,
                                    .seed = seed, .populate = true };
    struct ls_errbuf e;
    uint32_t id = 0;
    ls_err_clear(&e);
    if (ls_sim_create(be, &a, &id, &e) < 0)
        fail_msg("ls_sim_create: %s", e.msg);
    return id;
}

static uint32_t target(struct ls_backend *be, enum ls_guest_type type, uint64_t kib,
                       unsigned vcpus)
{
    struct ls_domain_config cfg = { .type = type, .memory_kib = kib, .vcpus = vcpus };
    struct ls_errbuf e;
    uint32_t id = 0;
    ls_err_clear(&e);
    if (be->ops->create_for_restore(be, &cfg, &id, &e) < 0)
        fail_msg("create_for_restore: %s", e.msg);
    return id;
}

static void digest(struct ls_backend *be, uint32_t domid, char hex[65])
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (be->ops->digest(be, domid, hex, &e) < 0)
        fail_msg("digest %u: %s", domid, e.msg);
}

static struct ls_domain_info info(struct ls_backend *be, uint32_t domid)
{
    struct ls_domain_info i;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (be->ops->domain_info(be, domid, &i, &e) < 0)
        fail_msg("domain_info %u: %s", domid, e.msg);
    return i;
}

static void destroy(struct ls_backend *be, uint32_t domid)
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(be->ops->destroy(be, domid, &e), 0);
}

struct saver {
    struct ls_backend *be;
    struct ls_save_params p;
    struct cbs cb;
    struct ls_errbuf e;
    int rc;
    bool close_fd;
};

static void *save_thread(void *arg)
{
    struct saver *s = arg;
    struct ls_save_callbacks c = save_cbs(&s->cb);
    if (s->cb.policy >= 0 && (s->p.flags & LS_SAVE_LIVE))
        c.precopy_policy = cb_policy;
    ls_err_clear(&s->e);
    s->rc = s->be->ops->save_memory(s->be, &s->p, &c, &s->e);
    if (s->close_fd)
        close(s->p.io_fd);
    return NULL;
}

static int restore_fd_at(struct ls_backend *be, uint32_t domid, int fd, uint64_t offset,
                         struct cbs *c, struct ls_errbuf *e)
{
    struct ls_restore_params p = { .domid = domid, .io_fd = fd, .send_back_fd = -1,
                                   .stream_type = LS_STREAM_PLAIN, .cancel_fd = -1,
                                   .stream_offset = offset };
    struct ls_restore_callbacks rc = restore_cbs(c);
    c->be = be;
    c->domid = domid;
    ls_err_clear(e);
    return be->ops->restore_memory(be, &p, &rc, e);
}

static int restore_fd(struct ls_backend *be, uint32_t domid, int fd, struct cbs *c,
                      struct ls_errbuf *e)
{
    return restore_fd_at(be, domid, fd, 0, c, e);
}

/* Saves src into a fresh file and returns its bytes (malloc'd). */
static uint8_t *save_to_buffer(struct ls_backend *be, uint32_t src, unsigned flags, size_t *len)
{
    char path[] = "/tmp/ls-simstream-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    struct saver s = { .be = be, .p = { .domid = src, .io_fd = fd, .recv_fd = -1,
                                        .flags = flags, .cancel_fd = -1 } };
    s.cb.be = be;
    s.cb.domid = src;
    save_thread(&s);
    if (s.rc < 0)
        fail_msg("save_memory: %s", s.e.msg);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *b = malloc((size_t)st.st_size);
    assert_int_equal(pread(fd, b, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return b;
}

/* A memfd holding these bytes, positioned at 0, as a stream to restore. */
static int stream_fd(const uint8_t *b, size_t len)
{
    int fd = memfd_create("stream", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* ---- the stream's shape --------------------------------------------------------- */

struct rec {
    uint32_t type, len;
    size_t off;                 /* of its header */
};

/* Splits a libxc stream into records (after the 40 header bytes). */
static size_t walk(const uint8_t *b, size_t len, struct rec *out, size_t cap)
{
    size_t off = 40, n = 0;
    assert_true(len >= 40);
    while (off + 8 <= len && n < cap) {
        uint32_t type, rl;
        stream_rec_header_decode(b + off, &type, &rl);
        out[n++] = (struct rec){ .type = type, .len = rl, .off = off };
        off += 8 + STREAM_ROUNDUP8(rl);
        if (type == LIBXC_REC_END)
            break;
    }
    assert_int_equal(off, len);   /* nothing after END */
    return n;
}

/* Checks the 4.17 order (spec 2.4) and the PAGE_DATA batches. */
static void check_shape(const uint8_t *b, size_t len, bool pv, unsigned vcpus, uint64_t populated)
{
    struct rec *r = calloc(200000, sizeof(*r));
    size_t n = walk(b, len, r, 200000), i = 0;
    uint32_t want_head_pv[] = { 0x02, 0x11, 0x12, 0x10, 0x03 };
    uint32_t want_head_hvm[] = { 0x11, 0x12, 0x10 };
    const uint32_t *head = pv ? want_head_pv : want_head_hvm;
    size_t nhead = pv ? 5 : 3;

    for (size_t k = 0; k < nhead; k++, i++)
        assert_int_equal(r[i].type, head[k]);
    uint64_t pages = 0, last_pfn = 0;
    bool first = true;
    size_t batches = 0;
    uint64_t first_count = 0;
    for (; i < n && r[i].type == LIBXC_REC_PAGE_DATA; i++, batches++) {
        uint32_t count;
        memcpy(&count, b + r[i].off + 8, 4);
        assert_true(count >= 1 && count <= 1024);
        if (batches == 0)
            first_count = count;
        /* Saved into a file (at offset 0): every batch but the last is as
         * large as it can be with its page data on a page boundary of the
         * file (1022 pfns once aligned; the first sizes itself to get there). */
        if (i + 1 < n && r[i + 1].type == LIBXC_REC_PAGE_DATA) {
            assert_int_equal((r[i].off + 16 + 8 * (uint64_t)count) % 4096, 0);
            assert_true(count > 1024 - 512);
            if (batches > 0)
                assert_int_equal(count, 1022);
        }
        for (uint32_t k = 0; k < count; k++) {
            uint64_t w;
            memcpy(&w, b + r[i].off + 16 + 8 * k, 8);
            uint64_t pfn = libxc_pfn_pfn(w);
            assert_true(first || pfn > last_pfn);  /* pfn order, no repeats */
            first = false;
            last_pfn = pfn;
            assert_true(LIBXC_PAGE_TYPE_HAS_DATA(libxc_pfn_type(w)));
        }
        assert_int_equal(r[i].len, 8 + 8 * (uint64_t)count + 4096 * (uint64_t)count);
        pages += count;
    }
    assert_int_equal(pages, populated);
    assert_int_equal(batches, populated <= first_count
                                  ? 1 : 1 + (populated - first_count + 1021) / 1022);
    assert_int_equal(r[i++].type, LIBXC_REC_X86_TSC_INFO);
    if (pv) {
        assert_int_equal(r[i++].type, LIBXC_REC_SHARED_INFO);
        for (unsigned v = 0; v < vcpus; v++) {
            uint32_t seq[] = { 0x04, 0x05, 0x06, 0x0C };
            for (int k = 0; k < 4; k++, i++) {
                uint32_t id;
                assert_int_equal(r[i].type, seq[k]);
                memcpy(&id, b + r[i].off + 8, 4);
                assert_int_equal(id, v);
            }
        }
    } else {
        assert_int_equal(r[i++].type, LIBXC_REC_HVM_CONTEXT);
        assert_int_equal(r[i++].type, LIBXC_REC_HVM_PARAMS);
    }
    assert_int_equal(r[i++].type, LIBXC_REC_END);
    assert_int_equal(i, n);
    free(r);
}

static void run_verifier(const uint8_t *b, size_t len)
{
    if (access(VERIFIER, X_OK) != 0) {
        print_message("verify-stream-v2 not installed: verifier check skipped\n");
        return;
    }
    char path[] = "/tmp/ls-simverify-XXXXXX", cmd[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
    snprintf(cmd, sizeof(cmd), "PYTHONPATH=%s %s -q -f libxc -i %s", XEN_PYPATH, VERIFIER, path);
    int st = system(cmd);
    unlink(path);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0)
        fail_msg("verify-stream-v2 -f libxc rejected the stream (exit %d)", WEXITSTATUS(st));
}

/* ---- round trips ------------------------------------------------------------------ */

enum transport { VIA_PIPE, VIA_SOCKETPAIR, VIA_TCP, VIA_FILE };

/* A connected pair over loopback TCP: fds[0] reads, fds[1] writes. */
static void tcp_pair(int fds[2])
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t alen = sizeof(a);
    assert_true(l >= 0);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &alen), 0);
    fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(fds[1], (struct sockaddr *)&a, sizeof(a)), 0);
    fds[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    assert_true(fds[0] >= 0);
    close(l);
}

/* save(src) | restore(new target) concurrently; returns the target's domid. */
static uint32_t round_trip(struct fixture *f, uint32_t src, enum transport how, unsigned flags)
{
    struct ls_domain_info si = info(f->be, src);
    uint32_t dst = target(f->be, si.type, 0, 0);   /* sizes "as they come" */
    int fds[2];
    if (how == VIA_PIPE) {
        assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
    } else if (how == VIA_SOCKETPAIR) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    } else if (how == VIA_TCP) {
        tcp_pair(fds);
    } else {   /* saved whole, then restored: one file, two descriptors */
        fds[1] = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        assert_true(fds[1] >= 0);
        fds[0] = fcntl(fds[1], F_DUPFD_CLOEXEC, 0);
    }

    struct saver s = { .be = f->be, .close_fd = true,
                       .p = { .domid = src, .io_fd = fds[1], .recv_fd = -1, .flags = flags,
                              .cancel_fd = -1 } };
    s.cb.be = f->be;
    s.cb.domid = src;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, save_thread, &s), 0);
    if (how == VIA_FILE) {
        pthread_join(th, NULL);
        assert_int_equal(lseek(fds[0], 0, SEEK_SET), 0);
    }
    struct cbs rc = { 0 };
    struct ls_errbuf e;
    int r = restore_fd(f->be, dst, fds[0], &rc, &e);
    if (how != VIA_FILE)
        pthread_join(th, NULL);
    close(fds[0]);
    if (s.rc < 0)
        fail_msg("save_memory: %s", s.e.msg);
    if (r < 0)
        fail_msg("restore_memory: %s", e.msg);

    /* libxc's callback contract */
    assert_int_equal(s.cb.suspends, 1);
    assert_true(s.cb.progress >= 1);
    assert_int_equal(s.cb.done, s.cb.total);
    assert_int_equal(s.cb.total, si.memory_kib * 1024);
    /* On at setup, off at cleanup, for every HVM/PVH save (live or not), as
     * xc_domain_save does on Xen 4.17. */
    assert_int_equal(s.cb.logdirty, si.type != LS_GUEST_PV ? 2 : 0);
    assert_int_equal(rc.sdd, 1);
    assert_int_equal(rc.missing, 0);
    assert_int_equal(rc.results, 1);
    assert_true(rc.progress >= 2);
    assert_int_equal(rc.done, si.memory_kib * 1024);
    if (si.type == LS_GUEST_HVM) {
        assert_int_equal(rc.store, 0xFEFFC);
        assert_int_equal(rc.console, 0xFEFFF);
    } else {
        assert_true(rc.store != 0 && rc.console != 0 && rc.store != rc.console);
    }
    assert_int_equal(info(f->be, src).state, LS_RUN_SUSPENDED);

    struct ls_domain_info di = info(f->be, dst);
    assert_int_equal(di.type, si.type);
    assert_int_equal(di.vcpus, si.vcpus);
    assert_int_equal(di.memory_kib, si.memory_kib);
    assert_int_equal(di.state, LS_RUN_PAUSED);
    char a[65], b[65];
    digest(f->be, src, a);
    digest(f->be, dst, b);
    assert_string_equal(a, b);
    return dst;
}

static void sizes_for(struct fixture *f, enum ls_guest_type type)
{
    /* RAM pages; HVM's 1008/1009 make 1024/1025 populated with the special pages. */
    static const uint64_t pages[] = { 1, 1008, 1009, 1023, 1024, 1025, 4099 };
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        unsigned vcpus = 1 + (unsigned)(i % 3);
        uint32_t src = create(f->be, type, pages[i] * 4, vcpus, 1000 + i);
        struct ls_domain_info si = info(f->be, src);

        size_t len;
        uint8_t *b = save_to_buffer(f->be, src, 0, &len);
        check_shape(b, len, type == LS_GUEST_PV, vcpus, si.memory_kib / 4);
        if (pages[i] <= 1025 || i == 6)
            run_verifier(b, len);
        free(b);

        /* save_to_buffer suspended it; resume for the live transports. */
        struct ls_errbuf e;
        ls_err_clear(&e);
        assert_int_equal(f->be->ops->resume(f->be, src, true, &e), 0);
        uint32_t d1 = round_trip(f, src, VIA_PIPE, 0);
        assert_int_equal(f->be->ops->resume(f->be, src, true, &e), 0);
        uint32_t d2 = round_trip(f, src, VIA_SOCKETPAIR, 0);
        destroy(f->be, d1);
        destroy(f->be, d2);
        destroy(f->be, src);
    }
}

static void test_round_trip_pv(void **state)
{
    sizes_for(*state, LS_GUEST_PV);
}

static void test_round_trip_hvm(void **state)
{
    sizes_for(*state, LS_GUEST_HVM);
}

static void test_round_trip_pvh_and_restored(void **state)
{
    struct fixture *f = *state;
    /* PVH travels as HVM; a target created as PVH keeps its type. */
    uint32_t src = create(f->be, LS_GUEST_PVH, 4096, 2, 77);
    uint32_t dst = target(f->be, LS_GUEST_PVH, 4096, 2);
    size_t len;
    uint8_t *b = save_to_buffer(f->be, src, 0, &len);
    int fd = stream_fd(b, len);
    struct cbs c = { 0 };
    struct ls_errbuf e;
    if (restore_fd(f->be, dst, fd, &c, &e) < 0)
        fail_msg("restore: %s", e.msg);
    close(fd);
    free(b);
    char x[65], y[65];
    digest(f->be, src, x);
    digest(f->be, dst, y);
    assert_string_equal(x, y);

    /* A restored domain saves again to the same guest (second generation). */
    assert_int_equal(f->be->ops->unpause(f->be, dst, &e), 0);
    uint32_t dst2 = round_trip(f, dst, VIA_SOCKETPAIR, 0);
    digest(f->be, dst2, y);
    assert_string_equal(x, y);

    /* 64 MiB PV through a pipe, live flag: one round, the policy asked, same guest. */
    uint32_t big = create(f->be, LS_GUEST_PV, 65536, 2, 5);
    uint32_t d3 = round_trip(f, big, VIA_PIPE, LS_SAVE_LIVE);
    uint32_t hbig = create(f->be, LS_GUEST_HVM, 65536, 2, 5);
    uint32_t d4 = round_trip(f, hbig, VIA_SOCKETPAIR, LS_SAVE_LIVE);
    uint32_t all[] = { src, dst, dst2, big, d3, hbig, d4 };
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        destroy(f->be, all[i]);
}

/* The restored memory stays as sparse as the stream: only its pages exist. */
static void test_restore_is_sparse(void **state)
{
    struct fixture *f = *state;
    uint32_t src = create(f->be, LS_GUEST_HVM, 1024, 1, 3);
    uint32_t dst = round_trip(f, src, VIA_PIPE, 0);
    struct sim_map m;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(sim_map_domain((struct sim_backend *)f->be, dst, false, &m, &e), 0);
    size_t npages = m.p2m_size;
    unsigned char *vec = malloc(npages);
    assert_int_equal(mincore(m.mem, npages * 4096, vec), 0);
    size_t resident = 0, populated = 0;
    for (size_t i = 0; i < npages; i++) {
        resident += vec[i] & 1;
        populated += m.finfo[i] != SIMP_FRAME_ABSENT;
    }
    assert_int_equal(populated, 256 + 16);
    assert_true(resident <= populated);
    free(vec);
    sim_unmap_domain(&m);
    destroy(f->be, dst);
    destroy(f->be, src);
}

/* ---- the daemon's memory pool ------------------------------------------------------ */

static int setup_pool(void **state)
{
    setenv("LOCKSTEP_SIMD_MEMORY_POOL", "64M", 1);   /* read when the daemon starts */
    int rc = setup(state);
    unsetenv("LOCKSTEP_SIMD_MEMORY_POOL");
    return rc;
}

/* The pool once no refill runs (a destroy's refill is on a thread of its own). */
static struct ls_sim_pool_status pool_settled(struct ls_backend *be)
{
    struct ls_sim_pool_status ps;
    struct ls_errbuf e;
    for (int i = 0; i < 1000; i++) {
        ls_err_clear(&e);
        if (sim_pool_status(be, &ps, &e) < 0)
            fail_msg("sim_pool_status: %s", e.msg);
        if (ps.filling == 0)
            return ps;
        usleep(10000);
    }
    fail_msg("the daemon's pool refill did not end in 10 s");
    return ps;
}

/* With --memory-pool, a destroyed domain's memory comes back allocated for
 * the next one, and a restore into it gives the same digest, whatever guest
 * had the memory before: the pool hands out only memory nobody had. */
static void test_restore_from_pool(void **state)
{
    struct fixture *f = *state;
    uint32_t hvm = create(f->be, LS_GUEST_HVM, 8192, 1, 11);
    uint32_t pv = create(f->be, LS_GUEST_PV, 8192, 2, 12);
    uint32_t first = round_trip(f, hvm, VIA_PIPE, 0);
    assert_int_equal(pool_settled(f->be).ready, 0);   /* nothing destroyed yet */

    destroy(f->be, first);
    struct ls_sim_pool_status ps = pool_settled(f->be);
    assert_int_equal(ps.ready, 1);
    assert_true(ps.ready_mib >= 8 && ps.ready_mib <= 9);   /* the guest's pages, not its p2m span */

    assert_int_equal(ps.taken, 0);
    uint32_t second = round_trip(f, hvm, VIA_SOCKETPAIR, 0);
    ps = pool_settled(f->be);
    assert_int_equal(ps.ready, 0);                     /* the restore target took it */
    assert_int_equal(ps.taken, 1);

    destroy(f->be, second);
    assert_int_equal(pool_settled(f->be).ready, 1);
    uint32_t third = round_trip(f, pv, VIA_PIPE, 0);   /* another guest, same memory */
    ps = pool_settled(f->be);
    assert_int_equal(ps.ready, 0);
    assert_int_equal(ps.taken, 2);

    destroy(f->be, third);
    destroy(f->be, pv);
    destroy(f->be, hvm);
    ps = pool_settled(f->be);
    assert_true(ps.ready >= 1);
    assert_true(ps.ready_mib <= 64);                   /* never above its capacity */
}

/* With --huge-pages the daemon needs CAP_SYS_ADMIN and fsopen for its
 * private tmpfs; without them it refuses to start, saying so, and the test
 * skips. */
static int setup_huge_pages(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct ls_errbuf e;
    simtest_env_init(&f->env, 0);
    setenv("LOCKSTEP_SIMD_HUGE_PAGES", "1", 1);   /* read when the daemon starts */
    ls_err_clear(&e);
    int rc = ls_sim_open(&f->be, &e);
    unsetenv("LOCKSTEP_SIMD_HUGE_PAGES");
    *state = f;
    if (rc < 0 && (strstr(e.msg, "CAP_SYS_ADMIN") || strstr(e.msg, "no fsopen"))) {
        print_message("skipped: %s\n", e.msg);
        f->be = NULL;
        return 0;
    }
    if (rc < 0)
        fail_msg("ls_sim_open with huge pages: %s", e.msg);
    f->fds_before = simtest_count_fds();
    return 0;
}

/* KiB of this process's mapping at `addr` mapped by PMDs (2 MiB pages of a
 * tmpfs file), from /proc/self/smaps; -1 when the mapping is not found. */
static long shmem_pmd_mapped_kib(const void *addr)
{
    FILE *sm = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false;
    long kib = -1;
    assert_non_null(sm);
    while (fgets(line, sizeof(line), sm)) {
        unsigned long lo, hi;
        /* A mapping's header starts with its address range in lower-case
         * hex; its fields start with a capitalised name. */
        bool header = (line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f');
        if (header && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
            in = lo == (unsigned long)addr;
            continue;
        }
        if (in && sscanf(line, "ShmemPmdMapped: %ld kB", &kib) == 1)
            break;
    }
    fclose(sm);
    return kib;
}

/* --huge-pages: guest memory really is in 2 MiB pages (the client's mapping
 * of it is PMD-mapped), and saves through every path the saver picks for it
 * (writev from the mapping into a file and a TCP socket, sendfile into a
 * unix socket and a pipe) restore to the same digest, live or not. */
static void test_huge_pages(void **state)
{
    struct fixture *f = *state;
    if (!f->be)
        skip();
    struct ls_sim_pool_status ps;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(sim_pool_status(f->be, &ps, &e), 0);
    assert_true(ps.huge_pages);

    uint32_t hvm = create(f->be, LS_GUEST_HVM, 16384, 2, 21);   /* 16 MiB */
    struct sim_map m;
    ls_err_clear(&e);
    assert_int_equal(sim_map_domain((struct sim_backend *)f->be, hvm, false, &m, &e), 0);
    struct stat st;
    assert_int_equal(fstat(m.mem_fd, &st), 0);
    assert_int_equal(st.st_blksize, 2 << 20);
    sim_map_populate(&m, MADV_POPULATE_READ);
    long pmd_kib = shmem_pmd_mapped_kib(m.mem);
    print_message("16 MiB HVM guest: %ld KiB of its mapping in 2 MiB pages\n", pmd_kib);
    assert_true(pmd_kib >= 8 * 1024);   /* at least the RAM below the VGA hole's 2 MiB pages */
    sim_unmap_domain(&m);

    uint32_t pv = create(f->be, LS_GUEST_PV, 8192, 2, 22);
    static const struct { enum transport via; bool pv; unsigned flags; } runs[] = {
        { VIA_FILE, false, 0 },   { VIA_FILE, true, 0 },
        { VIA_TCP, false, 0 },    { VIA_TCP, true, LS_SAVE_LIVE },
        { VIA_SOCKETPAIR, false, LS_SAVE_LIVE }, { VIA_PIPE, true, 0 },
    };
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        uint32_t src = runs[i].pv ? pv : hvm;
        ls_err_clear(&e);
        if (info(f->be, src).state == LS_RUN_SUSPENDED)   /* by the last save of it */
            assert_int_equal(f->be->ops->resume(f->be, src, true, &e), 0);
        destroy(f->be, round_trip(f, src, runs[i].via, runs[i].flags));
    }
    destroy(f->be, pv);
    destroy(f->be, hvm);
}

/* ---- rejects ------------------------------------------------------------------- */

static int restore_bytes(struct fixture *f, uint32_t dst, const uint8_t *b, size_t len,
                         struct ls_errbuf *e)
{
    struct cbs c = { 0 };
    int fd = stream_fd(b, len);
    int rc = restore_fd(f->be, dst, fd, &c, e);
    close(fd);
    return rc;
}

/* Copy of the stream without record k. */
static uint8_t *drop_record(const uint8_t *b, size_t len, const struct rec *r, size_t *out_len)
{
    size_t rl = 8 + STREAM_ROUNDUP8(r->len);
    uint8_t *o = malloc(len);
    memcpy(o, b, r->off);
    memcpy(o + r->off, b + r->off + rl, len - r->off - rl);
    *out_len = len - rl;
    return o;
}

static void test_reject_pv_without_vcpu0(void **state)
{
    struct fixture *f = *state;
    uint32_t src = create(f->be, LS_GUEST_PV, 1024, 2, 1);
    size_t len, n2;
    uint8_t *b = save_to_buffer(f->be, src, 0, &len);
    struct rec r[64];
    size_t n = walk(b, len, r, 64), k;
    for (k = 0; k < n; k++) {
        uint32_t id;
        memcpy(&id, b + r[k].off + 8, 4);
        if (r[k].type == LIBXC_REC_X86_PV_VCPU_BASIC && id == 0)
            break;
    }
    assert_true(k < n);
    uint8_t *bad = drop_record(b, len, &r[k], &n2);
    uint32_t dst = target(f->be, LS_GUEST_PV, 1024, 2);
    struct ls_errbuf e;
    int rc = restore_bytes(f, dst, bad, n2, &e);
    assert_true(rc < 0);
    print_message("no vcpu0 BASIC: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "offset"));
    assert_non_null(strstr(e.msg, "BASIC"));
    free(bad);

    /* cr3 naming a data page instead of the pinned L4 */
    uint8_t *c3 = malloc(len);
    memcpy(c3, b, len);
    uint64_t cr3;
    size_t at = r[k].off + 16 + 5008;    /* header, vcpu header, ctrlreg[3] */
    memcpy(&cr3, c3 + at, 8);
    cr3 += 4096 * 40;
    memcpy(c3 + at, &cr3, 8);
    uint32_t dst2 = target(f->be, LS_GUEST_PV, 1024, 2);
    ls_err_clear(&e);
    rc = restore_bytes(f, dst2, c3, len, &e);
    assert_int_equal(rc, -EINVAL);
    print_message("bad cr3: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "cr3"));
    char want[64];
    snprintf(want, sizeof(want), "offset %zu", r[k].off);
    assert_non_null(strstr(e.msg, want));
    free(c3);
    free(b);
    destroy(f->be, dst);
    destroy(f->be, dst2);
    destroy(f->be, src);
}

static void test_reject_type_mismatch(void **state)
{
    struct fixture *f = *state;
    uint32_t src = create(f->be, LS_GUEST_PV, 1024, 1, 1);
    size_t len;
    uint8_t *b = save_to_buffer(f->be, src, 0, &len);
    uint32_t dst = target(f->be, LS_GUEST_HVM, 1024, 1);
    struct ls_errbuf e;
    assert_int_equal(restore_bytes(f, dst, b, len, &e), -EINVAL);
    print_message("type mismatch: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "offset 24"));
    assert_non_null(strstr(e.msg, "does not match"));
    assert_int_equal(info(f->be, dst).type, LS_GUEST_HVM);

    /* A PV target too small for the stream is refused at P2M_FRAMES. */
    uint32_t small = target(f->be, LS_GUEST_PV, 64, 1);
    assert_int_equal(restore_bytes(f, small, b, len, &e), -EINVAL);
    print_message("too small: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "X86_PV_P2M_FRAMES"));
    free(b);
    destroy(f->be, dst);
    destroy(f->be, small);
    destroy(f->be, src);
}

static void test_reject_truncated(void **state)
{
    struct fixture *f = *state;
    uint32_t src = create(f->be, LS_GUEST_HVM, 8192, 1, 1);
    size_t len;
    uint8_t *b = save_to_buffer(f->be, src, 0, &len);
    struct rec r[64];
    size_t n = walk(b, len, r, 64);
    assert_int_equal(r[3].type, LIBXC_REC_PAGE_DATA);
    size_t cuts[] = { 0, 10, 30, 44, r[3].off + 20, r[3].off + 16 + 8 * 1024 + 100,
                      r[4].off - 1, r[n - 1].off, r[n - 1].off + 4, len - 1 };
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        uint32_t dst = target(f->be, LS_GUEST_HVM, 8192, 1);
        struct ls_errbuf e;
        int fds = simtest_count_fds();
        int rc = restore_bytes(f, dst, b, cuts[i], &e);
        assert_int_equal(simtest_count_fds(), fds);
        assert_int_equal(rc, -ENODATA);
        print_message("cut at %zu: %s\n", cuts[i], e.msg);
        assert_non_null(strstr(e.msg, "stream ended"));
        char want[32];
        snprintf(want, sizeof(want), "offset %zu", cuts[i]);
        assert_non_null(strstr(e.msg, want));
        destroy(f->be, dst);
    }

    /* Offsets are absolute: the libxc stream starting 5000 bytes into the
     * whole stream shifts every reported offset by 5000. */
    uint32_t dst = target(f->be, LS_GUEST_HVM, 8192, 1);
    struct ls_errbuf e;
    struct cbs c = { 0 };
    int fd = stream_fd(b, r[3].off + 20);
    assert_int_equal(restore_fd_at(f->be, dst, fd, 5000, &c, &e), -ENODATA);
    close(fd);
    char want[160];
    snprintf(want, sizeof(want), "offset %zu: stream ended inside the pfn array of libxc record PAGE_DATA (record at offset %zu)",
             5000 + r[3].off + 20, 5000 + r[3].off);
    if (!strstr(e.msg, want))
        fail_msg("'%s' lacks '%s'", e.msg, want);
    destroy(f->be, dst);
    free(b);
    destroy(f->be, src);
}

static void test_reject_corrupt(void **state)
{
    struct fixture *f = *state;
    uint32_t src = create(f->be, LS_GUEST_HVM, 1024, 1, 1);
    size_t len;
    uint8_t *b = save_to_buffer(f->be, src, 0, &len);
    struct rec r[64];
    size_t n = walk(b, len, r, 64);
    struct ls_errbuf e;

    /* a reserved bit in a pfn word */
    uint8_t *c = malloc(len);
    memcpy(c, b, len);
    c[r[3].off + 16 + 6] |= 0x10;
    uint32_t dst = target(f->be, LS_GUEST_HVM, 1024, 1);
    assert_true(restore_bytes(f, dst, c, len, &e) < 0);
    print_message("reserved pfn bits: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "PAGE_DATA"));
    destroy(f->be, dst);

    /* a broken HVM context header */
    memcpy(c, b, len);
    size_t k;
    for (k = 0; k < n && r[k].type != LIBXC_REC_HVM_CONTEXT; k++)
        ;
    c[r[k].off + 8 + 8] ^= 0xFF;    /* magic of the HEADER entry */
    dst = target(f->be, LS_GUEST_HVM, 1024, 1);
    ls_err_clear(&e);
    assert_int_equal(restore_bytes(f, dst, c, len, &e), -EINVAL);
    print_message("bad HVM context: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "HVM_CONTEXT"));
    destroy(f->be, dst);

    /* a record after END would be ignored by the reader: none may precede it */
    size_t l2;
    uint8_t *noend = drop_record(b, len, &r[n - 1], &l2);
    dst = target(f->be, LS_GUEST_HVM, 1024, 1);
    assert_int_equal(restore_bytes(f, dst, noend, l2, &e), -ENODATA);
    destroy(f->be, dst);
    free(noend);
    free(c);
    free(b);
    destroy(f->be, src);
}

/* VERIFY (the DEBUG mode of xc_domain_save): pages after it are compared
 * with the restored ones, not written. */
static void test_verify_record(void **state)
{
    struct fixture *f = *state;
    uint32_t src = create(f->be, LS_GUEST_HVM, 1024, 1, 4);
    size_t len;
    uint8_t *b = save_to_buffer(f->be, src, 0, &len);
    struct rec r[64];
    size_t n = walk(b, len, r, 64);
    assert_int_equal(r[3].type, LIBXC_REC_PAGE_DATA);
    size_t pd = 8 + r[3].len, endoff = r[n - 1].off;
    /* stream = everything before END, VERIFY, the first PAGE_DATA again, END */
    size_t l2 = endoff + 8 + pd + 8;
    uint8_t *v = malloc(l2);
    memcpy(v, b, endoff);
    stream_rec_header_encode(v + endoff, LIBXC_REC_VERIFY, 0);
    memcpy(v + endoff + 8, b + r[3].off, pd);
    memcpy(v + endoff + 8 + pd, b + endoff, 8);
    uint32_t dst = target(f->be, LS_GUEST_HVM, 1024, 1);
    struct ls_errbuf e;
    if (restore_bytes(f, dst, v, l2, &e) < 0)
        fail_msg("verify stream: %s", e.msg);
    char x[65], y[65];
    digest(f->be, src, x);
    digest(f->be, dst, y);
    assert_string_equal(x, y);

    /* One byte off in the re-sent copy of the batch's first page. */
    uint32_t count;
    memcpy(&count, b + r[3].off + 8, 4);
    v[endoff + 8 + 16 + 8 * (size_t)count + 100] ^= 0x5A;
    uint32_t dst2 = target(f->be, LS_GUEST_HVM, 1024, 1);
    ls_err_clear(&e);
    assert_int_equal(restore_bytes(f, dst2, v, l2, &e), -EIO);
    print_message("verify mismatch: %s\n", e.msg);
    assert_non_null(strstr(e.msg, "verify"));
    free(v);
    free(b);
    destroy(f->be, dst);
    destroy(f->be, dst2);
    destroy(f->be, src);
}

static void test_cancel_and_failed_suspend(void **state)
{
    struct fixture *f = *state;
    uint32_t src = create(f->be, LS_GUEST_HVM, 4096, 1, 1);
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    int cfd = eventfd(1, EFD_CLOEXEC);     /* already cancelled */
    struct saver s = { .be = f->be, .p = { .domid = src, .io_fd = pfd[1], .recv_fd = -1,
                                           .cancel_fd = cfd } };
    s.cb.be = f->be;
    s.cb.domid = src;
    save_thread(&s);
    assert_int_equal(s.rc, -ECANCELED);
    assert_non_null(strstr(s.e.msg, "cancelled"));

    /* A suspend callback that fails stops the save before any page. */
    struct saver s2 = { .be = f->be, .p = { .domid = src, .io_fd = pfd[1], .recv_fd = -1,
                                            .cancel_fd = -1 } };
    s2.cb.be = f->be;
    s2.cb.domid = src;
    s2.cb.fail_suspend = true;
    int fl = fcntl(pfd[1], F_GETFL);
    fcntl(pfd[1], F_SETFL, fl | O_NONBLOCK);
    save_thread(&s2);
    assert_int_equal(s2.rc, -ECANCELED);
    assert_non_null(strstr(s2.e.msg, "suspend callback"));
    assert_int_equal(info(f->be, src).state, LS_RUN_RUNNING);
    close(cfd);
    close(pfd[0]);
    close(pfd[1]);

    /* The reader goes away mid-stream: the save fails cleanly with EPIPE. */
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    close(pfd[0]);
    struct saver s3 = { .be = f->be, .p = { .domid = src, .io_fd = pfd[1], .recv_fd = -1,
                                            .cancel_fd = -1 } };
    s3.cb.be = f->be;
    s3.cb.domid = src;
    save_thread(&s3);
    assert_int_equal(s3.rc, -EPIPE);
    assert_non_null(strstr(s3.e.msg, "libxc stream byte"));
    close(pfd[1]);
    destroy(f->be, src);
}

/* ---- checkpointed streams ------------------------------------------------------ */

/* A Remus primary's guest runs on (and writes) once a checkpoint is sent,
 * before its peer has read it: the postcopy callback writes every page of
 * the suspended guest, as its resumed vCPU would. */
struct remus_cbs {
    struct cbs c;
    struct sim_map m;
    uint8_t *snap;          /* the guest's memory at the checkpoint */
    int postcopies;
};

static int remus_postcopy(void *d)
{
    struct remus_cbs *r = d;
    r->postcopies++;
    memcpy(r->snap, r->m.mem, r->m.p2m_size * STREAM_PAGE_SIZE);
    for (uint64_t pfn = 0; pfn < r->m.p2m_size; pfn++)
        if (r->m.finfo[pfn] != SIMP_FRAME_ABSENT)
            r->m.mem[pfn * STREAM_PAGE_SIZE + 8] ^= 0x5a;
    return 0;    /* replication ends here: the checkpoint is all there is */
}

static int remus_checkpoint(void *d)
{
    (void)d;
    return 0;
}

/* Reads a libxc stream (after its 40-byte image header) from fd to its end:
 * how many of its data pages differ from snap (pages: how many it holds). */
static uint64_t stale_pages(int fd, const uint8_t *snap, uint64_t *pages)
{
    size_t cap = 2 << 20, len = 0;
    uint8_t *b = malloc(cap);
    assert_non_null(b);
    for (ssize_t n; (n = read(fd, b + len, cap - len)) > 0;)
        len += (size_t)n;
    uint64_t stale = 0;
    *pages = 0;
    for (size_t off = 40; off + 8 <= len;) {
        uint32_t type, rl;
        stream_rec_header_decode(b + off, &type, &rl);
        const uint8_t *body = b + off + 8;
        if (type == LIBXC_REC_PAGE_DATA) {
            uint32_t count;
            memcpy(&count, body, 4);
            const uint8_t *page = body + 8 + 8 * (size_t)count;
            for (uint32_t i = 0; i < count; i++) {
                uint64_t w;
                memcpy(&w, body + 8 + 8 * (size_t)i, 8);
                if (!LIBXC_PAGE_TYPE_HAS_DATA(libxc_pfn_type(w)))
                    continue;
                uint64_t pfn = libxc_pfn_pfn(w);
                stale += memcmp(page, snap + pfn * STREAM_PAGE_SIZE, STREAM_PAGE_SIZE) != 0;
                page += STREAM_PAGE_SIZE;
                (*pages)++;
            }
        }
        off += 8 + STREAM_ROUNDUP8(rl);
    }
    free(b);
    return stale;
}

/* The pages of a checkpoint are the guest's at that checkpoint, however late
 * the peer reads them: sendfile into a pipe only lends the memfd's pages, so
 * a write after the checkpoint showed in the stream (issue 15: a Remus
 * secondary under load applied writes made after the checkpoint). */
static void test_checkpoint_pages_copied(void **state)
{
    struct fixture *f = *state;
    uint32_t src = create(f->be, LS_GUEST_PV, 512, 1, 31);
    struct remus_cbs r = { .c = { .be = f->be, .domid = src } };
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(sim_map_domain((struct sim_backend *)f->be, src, true, &r.m, &e), 0);
    r.snap = malloc(r.m.p2m_size * STREAM_PAGE_SIZE);
    assert_non_null(r.snap);

    /* The whole checkpoint fits in the pipe: nothing is read before the
     * guest writes again. */
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    assert_true(fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20) >= (int)(r.m.p2m_size + 64) * 4096);
    struct ls_save_params p = { .domid = src, .io_fd = pfd[1], .recv_fd = -1,
                                .cancel_fd = -1, .stream_type = LS_STREAM_REMUS };
    struct ls_save_callbacks cb = save_cbs(&r.c);
    cb.postcopy = remus_postcopy;
    cb.checkpoint = remus_checkpoint;
    cb.data = &r;
    ls_err_clear(&e);
    assert_int_equal(f->be->ops->save_memory(f->be, &p, &cb, &e), -ECANCELED);
    assert_non_null(strstr(e.msg, "postcopy callback"));
    assert_int_equal(r.postcopies, 1);
    close(pfd[1]);

    uint64_t pages = 0, stale = stale_pages(pfd[0], r.snap, &pages);
    close(pfd[0]);
    print_message("Remus checkpoint into a pipe: %" PRIu64 " pages, %" PRIu64 " written after "
                  "the checkpoint\n", pages, stale);
    assert_true(pages >= r.m.p2m_size / 2);
    assert_int_equal(stale, 0);
    free(r.snap);
    sim_unmap_domain(&r.m);
    destroy(f->be, src);
}

/* The same for a kept guest (save --keep, LS_SAVE_RESUMES): it runs again
 * once save_memory returns, while its stream may still sit unread in a pipe. */
static void test_kept_guest_pages_copied(void **state)
{
    struct fixture *f = *state;
    uint32_t src = create(f->be, LS_GUEST_PV, 512, 1, 32);
    struct cbs c = { .be = f->be, .domid = src };
    struct sim_map m;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(sim_map_domain((struct sim_backend *)f->be, src, true, &m, &e), 0);
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    assert_true(fcntl(pfd[1], F_SETPIPE_SZ, 1 << 20) >= (int)(m.p2m_size + 64) * 4096);
    struct ls_save_params p = { .domid = src, .io_fd = pfd[1], .recv_fd = -1, .cancel_fd = -1,
                                .stream_type = LS_STREAM_PLAIN, .flags = LS_SAVE_RESUMES };
    struct ls_save_callbacks cb = save_cbs(&c);
    assert_int_equal(f->be->ops->save_memory(f->be, &p, &cb, &e), 0);
    close(pfd[1]);
    /* The guest as saved, then as resumed: every page written again. */
    uint8_t *snap = malloc(m.p2m_size * STREAM_PAGE_SIZE);
    assert_non_null(snap);
    memcpy(snap, m.mem, m.p2m_size * STREAM_PAGE_SIZE);
    for (uint64_t pfn = 0; pfn < m.p2m_size; pfn++)
        if (m.finfo[pfn] != SIMP_FRAME_ABSENT)
            m.mem[pfn * STREAM_PAGE_SIZE + 8] ^= 0x5a;
    uint64_t pages = 0, stale = stale_pages(pfd[0], snap, &pages);
    close(pfd[0]);
    print_message("kept guest's save into a pipe: %" PRIu64 " pages, %" PRIu64 " written after "
                  "the save\n", pages, stale);
    assert_true(pages >= m.p2m_size / 2);
    assert_int_equal(stale, 0);
    free(snap);
    sim_unmap_domain(&m);
    destroy(f->be, src);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_pv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_hvm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_pvh_and_restored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_is_sparse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_from_pool, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_huge_pages, setup_huge_pages, teardown),
        cmocka_unit_test_setup_teardown(test_reject_pv_without_vcpu0, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_type_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reject_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_and_failed_suspend, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_pages_copied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kept_guest_pages_copied, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
