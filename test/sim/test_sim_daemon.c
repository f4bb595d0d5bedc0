/* test/sim/test_sim_daemon.c - lockstep-simd: start on demand, domain
 * control, deterministic digests, hostile clients, idle exit, and domains
 * that outlive the lockstep process that made them. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "backends/sim/proto.h"
#include "backends/sim/sim.h"
#include "lockstep/lockstep.h"
#include "simtest.h"

static struct ls_backend *open_be(void)
{
    return simtest_open();
}

static uint32_t create(struct ls_backend *be, enum ls_guest_type type, uint64_t kib,
                       unsigned vcpus, uint64_t seed, const char *name)
{
    struct ls_sim_create_args a = { .type = type, .memory_kib = kib, .vcpus = vcpus,
                                    .seed = seed, .name = name, .populate = true };
    struct ls_errbuf e;
    uint32_t id = 0;
    ls_err_clear(&e);
    if (ls_sim_create(be, &a, &id, &e) < 0)
        fail_msg("ls_sim_create: %s", e.msg);
    return id;
}

static enum ls_run_state state_of(struct ls_backend *be, uint32_t domid)
{
    struct ls_domain_info i;
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (be->ops->domain_info(be, domid, &i, &e) < 0)
        fail_msg("domain_info %u: %s", domid, e.msg);
    return i.state;
}

static void digest(struct ls_backend *be, uint32_t domid, char hex[65])
{
    struct ls_errbuf e;
    ls_err_clear(&e);
    if (be->ops->digest(be, domid, hex, &e) < 0)
        fail_msg("digest %u: %s", domid, e.msg);
}

/* ---- start on demand, stop cleanly --------------------------------------- */

static void test_start_on_demand(void **state)
{
    struct simtest_env *t = *state;
    assert_int_equal(simtest_daemon_pid(t), -1);

    struct ls_backend *be = open_be();
    int pid = simtest_daemon_pid(t), pid2 = 0;
    assert_true(pid > 0);
    assert_true(simtest_alive(pid));
    assert_true(simtest_file_exists(t, "simd.sock"));
    assert_true(simtest_file_exists(t, "simd.log"));
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_daemon_pid(be, &pid2, &e), 0);
    assert_int_equal(pid2, pid);

    /* A second client finds the same daemon rather than starting another. */
    struct ls_backend *be2 = open_be();
    assert_int_equal(ls_sim_daemon_pid(be2, &pid2, &e), 0);
    assert_int_equal(pid2, pid);
    be2->ops->close(be2);
    be->ops->close(be);

    /* SIGTERM: a clean exit that removes the socket and the pid file. */
    kill(pid, SIGTERM);
    assert_true(simtest_wait_gone(pid, 5000));
    assert_false(simtest_file_exists(t, "simd.sock"));
    assert_false(simtest_file_exists(t, "simd.pid"));
}

/* ---- domain control -------------------------------------------------------- */

static void test_lifecycle(void **state)
{
    (void)state;
    struct ls_backend *be = open_be();
    struct ls_errbuf e;
    ls_err_clear(&e);

    uint32_t pv = create(be, LS_GUEST_PV, 8192, 2, 1, "guest-pv");
    uint32_t hvm = create(be, LS_GUEST_HVM, 16384, 4, 1, NULL);
    uint32_t pvh = create(be, LS_GUEST_PVH, 4096, 1, 1, "guest-pvh");
    assert_true(pv >= 1 && hvm == pv + 1 && pvh == hvm + 1);

    struct ls_domain_info *v;
    size_t n;
    assert_int_equal(ls_sim_list(be, &v, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].domid, pv);
    assert_int_equal(v[0].type, LS_GUEST_PV);
    assert_string_equal(v[0].name, "guest-pv");
    assert_int_equal(v[0].vcpus, 2);
    assert_true(v[0].memory_kib > 8192);   /* page tables, p2m, start_info on top */
    assert_int_equal(v[1].type, LS_GUEST_HVM);
    assert_int_equal(v[1].vcpus, 4);
    assert_int_equal(v[1].memory_kib, 16384 + 16 * 4);   /* + 16 special pages */
    assert_int_equal(v[1].p2m_size, 0xFF000);
    char want[16];
    snprintf(want, sizeof(want), "sim%u", hvm);
    assert_string_equal(v[1].name, want);
    assert_int_equal(v[2].type, LS_GUEST_PVH);
    assert_int_equal(v[2].memory_kib, 4096 + 8 * 4);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(v[i].state, LS_RUN_RUNNING);
    free(v);

    uint32_t found = 0;
    assert_int_equal(ls_sim_find(be, "guest-pvh", &found, &e), 0);
    assert_int_equal(found, pvh);
    assert_int_equal(ls_sim_find(be, "nope", &found, &e), -ESRCH);
    ls_err_clear(&e);

    /* pause / unpause */
    assert_int_equal(be->ops->pause(be, pv, &e), 0);
    assert_int_equal(state_of(be, pv), LS_RUN_PAUSED);
    /* A paused guest cannot acknowledge a suspend request. */
    assert_int_equal(be->ops->suspend(be, pv, 1000, &e), -ETIMEDOUT);
    assert_non_null(strstr(e.msg, "paused"));
    ls_err_clear(&e);
    assert_int_equal(be->ops->unpause(be, pv, &e), 0);
    assert_int_equal(state_of(be, pv), LS_RUN_RUNNING);

    /* suspend / resume */
    assert_int_equal(be->ops->suspend(be, pv, 1000, &e), 0);
    assert_int_equal(state_of(be, pv), LS_RUN_SUSPENDED);
    assert_int_equal(be->ops->suspend(be, pv, 1000, &e), 0);
    assert_int_equal(be->ops->resume(be, pv, true, &e), 0);
    assert_int_equal(state_of(be, pv), LS_RUN_RUNNING);
    assert_int_equal(be->ops->suspend(be, hvm, 1000, &e), 0);
    assert_int_equal(be->ops->resume(be, hvm, false, &e), 0);
    assert_int_equal(state_of(be, hvm), LS_RUN_RUNNING);

    /* the toolstack config */
    char *json = NULL;
    assert_int_equal(be->ops->get_config_json(be, hvm, &json, &e), 0);
    assert_non_null(strstr(json, "\"c_info\":{\"type\":\"hvm\""));
    assert_non_null(strstr(json, "\"max_vcpus\":4"));
    assert_non_null(strstr(json, "\"max_memkb\":16384"));
    assert_non_null(strstr(json, "\"target_memkb\":16384"));
    free(json);
    assert_int_equal(ls_sim_set_config_json(be, hvm, "{\"c_info\":{\"type\":\"hvm\"}}", &e), 0);
    assert_int_equal(be->ops->get_config_json(be, hvm, &json, &e), 0);
    assert_string_equal(json, "{\"c_info\":{\"type\":\"hvm\"}}");
    free(json);

    /* a restore target: empty, paused, type decided later */
    struct ls_domain_config cfg = { .type = LS_GUEST_UNSET };
    uint32_t tgt;
    assert_int_equal(be->ops->create_for_restore(be, &cfg, &tgt, &e), 0);
    struct ls_domain_info ti;
    assert_int_equal(be->ops->domain_info(be, tgt, &ti, &e), 0);
    assert_int_equal(ti.state, LS_RUN_PAUSED);
    assert_int_equal(ti.type, LS_GUEST_UNSET);
    assert_int_equal(ti.memory_kib, 0);

    /* destroy */
    uint32_t all[] = { pv, hvm, pvh, tgt };
    for (int i = 0; i < 4; i++)
        assert_int_equal(be->ops->destroy(be, all[i], &e), 0);
    assert_int_equal(be->ops->domain_info(be, pv, &ti, &e), -ESRCH);
    assert_non_null(strstr(e.msg, "no domain"));
    ls_err_clear(&e);
    assert_int_equal(be->ops->pause(be, 4242, &e), -ESRCH);
    ls_err_clear(&e);
    assert_int_equal(ls_sim_list(be, &v, &n, &e), 0);
    assert_int_equal(n, 0);
    free(v);

    /* bad arguments are refused with a reason */
    struct ls_sim_create_args bad = { .type = LS_GUEST_HVM, .memory_kib = 6, .vcpus = 1,
                                      .populate = true };
    uint32_t id;
    assert_int_equal(ls_sim_create(be, &bad, &id, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "multiple of 4"));
    ls_err_clear(&e);
    bad.memory_kib = 4096;
    bad.vcpus = 0;
    assert_int_equal(ls_sim_create(be, &bad, &id, &e), -EINVAL);
    ls_err_clear(&e);
    bad.vcpus = 1;
    bad.name = "has space";
    assert_int_equal(ls_sim_create(be, &bad, &id, &e), -EINVAL);
    ls_err_clear(&e);
    be->ops->close(be);
}

/* ---- digests ----------------------------------------------------------------- */

static void test_digest_deterministic(void **state)
{
    (void)state;
    struct ls_backend *be = open_be();
    char a[65], b[65], c[65], d[65], p[65], q[65];

    digest(be, create(be, LS_GUEST_HVM, 8192, 2, 42, "a"), a);
    digest(be, create(be, LS_GUEST_HVM, 8192, 2, 42, "b"), b);
    digest(be, create(be, LS_GUEST_HVM, 8192, 2, 43, "c"), c);
    digest(be, create(be, LS_GUEST_HVM, 8192, 1, 42, "d"), d);
    digest(be, create(be, LS_GUEST_PV, 8192, 2, 42, "p"), p);
    digest(be, create(be, LS_GUEST_PV, 8192, 2, 42, "q"), q);

    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_string_equal(a, b);        /* same seed and shape: same guest */
    assert_string_equal(p, q);
    assert_string_not_equal(a, c);    /* another seed */
    assert_string_not_equal(a, d);    /* another vcpu count */
    assert_string_not_equal(a, p);    /* another type */
    /* 256 real bits, not a 128-bit value written twice */
    assert_memory_not_equal(a, a + 32, 32);
    assert_memory_not_equal(p, p + 32, 32);

    /* A fresh daemon builds the same guest: content is a function of the seed. */
    struct ls_errbuf e;
    int pid;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_daemon_pid(be, &pid, &e), 0);
    be->ops->close(be);
    kill(pid, SIGKILL);
    assert_true(simtest_wait_gone(pid, 5000));
    be = open_be();
    char a2[65];
    digest(be, create(be, LS_GUEST_HVM, 8192, 2, 42, "a"), a2);
    assert_string_equal(a, a2);
    be->ops->close(be);
}

/* ---- hostile clients ------------------------------------------------------------ */

static int raw_connect(const struct simtest_env *t)
{
    int fd = simtest_raw_connect(t);
    if (fd < 0)
        fail_msg("connecting to the daemon: %s", strerror(-fd));
    return fd;
}

static struct simp_hdr req(unsigned op, uint32_t domid, unsigned kind, unsigned index, uint32_t len)
{
    return (struct simp_hdr){ .magic = SIMP_MAGIC, .version = SIMP_VERSION, .op = (uint16_t)op,
                              .domid = domid, .kind = (uint16_t)kind, .index = (uint16_t)index,
                              .len = len };
}

/* Sends h (+payload) and expects an error reply with `status`. */
static void expect_error(int fd, struct simp_hdr h, const void *payload, int status,
                         const char *needle)
{
    struct simp_hdr r;
    char msg[512];
    assert_int_equal(simp_send(fd, &h, payload, NULL, 0), 0);
    assert_int_equal(simtest_raw_reply(fd, &r, msg, sizeof(msg)), 0);
    assert_int_equal(r.status, status);
    if (needle && !strstr(msg, needle))
        fail_msg("error reply '%s' lacks '%s'", msg, needle);
}


static void test_hostile_requests(void **state)
{
    struct simtest_env *t = *state;
    struct ls_backend *be = open_be();
    uint32_t pv = create(be, LS_GUEST_PV, 1024, 1, 5, "victim");
    uint32_t hvm = create(be, LS_GUEST_HVM, 1024, 1, 5, "victim2");
    char before[65];
    digest(be, pv, before);
    int pid = simtest_daemon_pid(t);

    int fd = raw_connect(t);
    /* Errors that keep the framing: the connection stays usable. */
    expect_error(fd, req(99, 0, 0, 0, 0), NULL, -EOPNOTSUPP, "unknown request op");
    expect_error(fd, req(SIMP_OP_INFO, 777, 0, 0, 0), NULL, -ESRCH, "no domain 777");
    expect_error(fd, req(SIMP_OP_CREATE, 0, 0, 0, 3), "abc", -EINVAL, "payload of 3 bytes");
    expect_error(fd, req(SIMP_OP_GET, pv, 200, 0, 0), NULL, -EINVAL, "unknown state kind");
    expect_error(fd, req(SIMP_OP_GET, pv, SIMP_K_VCPU_BASIC, 9, 0), NULL, -EINVAL, "out of range");
    expect_error(fd, req(SIMP_OP_GET, hvm, SIMP_K_VCPU_BASIC, 0, 0), NULL, -EINVAL, "not PV");
    uint8_t junk[100] = { 1, 2, 3 };
    expect_error(fd, req(SIMP_OP_SET, pv, SIMP_K_VCPU_BASIC, 0, sizeof(junk)), junk, -EINVAL, "want 5168");
    expect_error(fd, req(SIMP_OP_SET, hvm, SIMP_K_HVM_CONTEXT, 0, sizeof(junk)), junk, -EINVAL, "HVM context");
    expect_error(fd, req(SIMP_OP_SET, hvm, SIMP_K_HVM_PARAMS, 0, 16),
                 (uint64_t[2]){ 1000, 1 }, -EINVAL, "out of range");
    expect_error(fd, req(SIMP_OP_SET, pv, SIMP_K_P2M_FRAMES, 0, 16),
                 (uint32_t[4]){ 0, 0xFFFFFFF, 0, 0 }, -EINVAL, "p2m size");
    expect_error(fd, req(SIMP_OP_SET, pv, SIMP_K_DOMAIN_TYPE, 0, 4), (uint32_t[1]){ 2 }, -EPERM, "already pv");
    struct simp_create cr = { .type = 9, .vcpus = 1, .memory_kib = 4096, .flags = 1 };
    expect_error(fd, req(SIMP_OP_CREATE, 0, 0, 0, sizeof(cr)), &cr, -EINVAL, "bad guest type");
    cr = (struct simp_create){ .type = 2, .vcpus = 1, .memory_kib = UINT64_C(1) << 40, .flags = 1 };
    expect_error(fd, req(SIMP_OP_CREATE, 0, 0, 0, sizeof(cr)), &cr, -EINVAL, "memory");
    cr = (struct simp_create){ .type = 2, .vcpus = 1, .memory_kib = 4096, .flags = 1 };
    memset(cr.name, 'x', sizeof(cr.name));   /* no NUL */
    expect_error(fd, req(SIMP_OP_CREATE, 0, 0, 0, sizeof(cr)), &cr, -EINVAL, "name");
    struct simp_hdr ok = req(SIMP_OP_HELLO, 0, 0, 0, 0), r;
    char msg[128];
    assert_int_equal(simp_send(fd, &ok, NULL, NULL, 0), 0);
    assert_int_equal(simtest_raw_reply(fd, &r, msg, sizeof(msg)), 0);
    assert_int_equal(r.status, 0);
    close(fd);

    /* Errors that lose the framing: an error reply, then the daemon hangs up. */
    fd = raw_connect(t);
    struct simp_hdr bad = req(SIMP_OP_HELLO, 0, 0, 0, 0);
    bad.magic = 0xdeadbeef;
    expect_error(fd, bad, NULL, -EPROTO, "bad magic");
    assert_true(simtest_conn_closed(fd));
    close(fd);
    fd = raw_connect(t);
    bad = req(SIMP_OP_HELLO, 0, 0, 0, 0);
    bad.version = 77;
    expect_error(fd, bad, NULL, -EPROTO, "version 77");
    assert_true(simtest_conn_closed(fd));
    close(fd);
    fd = raw_connect(t);
    bad = req(SIMP_OP_SET, pv, SIMP_K_CONFIG_JSON, 0, 0);
    bad.len = 0xFFFFFFF0u;    /* claims 4 GiB of payload */
    expect_error(fd, bad, NULL, -E2BIG, "exceeds");
    assert_true(simtest_conn_closed(fd));
    close(fd);

    /* Half a header, then gone; half a payload, then gone. */
    fd = raw_connect(t);
    assert_int_equal(send(fd, "LSIM", 4, MSG_NOSIGNAL), 4);
    close(fd);
    fd = raw_connect(t);
    struct simp_hdr part = req(SIMP_OP_SET, pv, SIMP_K_CONFIG_JSON, 0, 1000);
    assert_int_equal(send(fd, &part, sizeof(part), MSG_NOSIGNAL), (ssize_t)sizeof(part));
    assert_int_equal(send(fd, "{}", 2, MSG_NOSIGNAL), 2);
    close(fd);

    /* Garbage of every size. */
    for (int i = 1; i < 64; i += 7) {
        uint8_t g[64];
        for (int k = 0; k < i; k++)
            g[k] = (uint8_t)(k * 37 + i);
        fd = raw_connect(t);
        /* cppcheck-suppress uninitvar ; only the first i bytes are sent, all set */
        assert_int_equal(send(fd, g, (size_t)i, MSG_NOSIGNAL), i);
        close(fd);
    }

    /* The daemon survived, and so did the domains. */
    assert_int_equal(simtest_daemon_pid(t), pid);
    assert_true(simtest_alive(pid));
    char after[65];
    digest(be, pv, after);
    assert_string_equal(before, after);
    be->ops->close(be);
}

/* ---- idle exit ------------------------------------------------------------------- */

static int setup_idle(void **state)
{
    struct simtest_env *t = calloc(1, sizeof(*t));
    simtest_env_init(t, 1);
    *state = t;
    return 0;
}

static void test_idle_exit(void **state)
{
    struct simtest_env *t = *state;
    struct ls_backend *be = open_be();
    int pid = simtest_daemon_pid(t);
    assert_true(pid > 0);

    /* A domain keeps the daemon alive even with no client... */
    uint32_t id = create(be, LS_GUEST_HVM, 1024, 1, 1, NULL);
    be->ops->close(be);
    sleep(2);
    assert_true(simtest_alive(pid));

    /* ...a client keeps it alive with no domain... */
    be = open_be();
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(be->ops->destroy(be, id, &e), 0);
    sleep(2);
    assert_true(simtest_alive(pid));

    /* ...and with neither it goes away by itself. */
    be->ops->close(be);
    assert_true(simtest_wait_gone(pid, 5000));
    assert_false(simtest_file_exists(t, "simd.pid"));
    assert_false(simtest_file_exists(t, "simd.sock"));

    /* The next client just starts a new one. */
    be = open_be();
    int pid2 = simtest_daemon_pid(t);
    assert_true(pid2 > 0 && pid2 != pid);
    be->ops->close(be);
}

/* ---- killing lockstep leaves the guest; killing the daemon is the host dying ----- */

static void test_guest_outlives_lockstep(void **state)
{
    (void)state;
    struct ls_backend *be = open_be();   /* the daemon is up before we fork */
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(p[0]);
        struct ls_backend *cb = NULL;
        struct ls_errbuf e;
        ls_err_clear(&e);
        uint32_t id = 0;
        struct ls_sim_create_args a = { .type = LS_GUEST_PV, .memory_kib = 4096, .vcpus = 1,
                                        .seed = 9, .name = "orphan", .populate = true };
        if (ls_sim_open(&cb, &e) == 0 && ls_sim_create(cb, &a, &id, &e) == 0 &&
            cb->ops->pause(cb, id, &e) == 0)
            (void)!write(p[1], &id, sizeof(id));
        for (;;)
            pause();          /* killed here, connection still open */
    }
    close(p[1]);
    uint32_t id = 0;
    assert_int_equal(read(p[0], &id, sizeof(id)), (ssize_t)sizeof(id));
    close(p[0]);
    kill(child, SIGKILL);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFSIGNALED(st));

    struct ls_domain_info i;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(be->ops->domain_info(be, id, &i, &e), 0);
    assert_string_equal(i.name, "orphan");
    assert_int_equal(i.state, LS_RUN_PAUSED);
    be->ops->close(be);

    /* A new lockstep process sees it too. */
    be = open_be();
    assert_int_equal(ls_sim_find(be, "orphan", &id, &e), 0);
    assert_int_equal(state_of(be, id), LS_RUN_PAUSED);
    be->ops->close(be);
}

/* Starting a domain clears its guard unless it is started guarded: a COLO
 * secondary's copy must be destroyed if its lockstep dies at any instant
 * after the start, a restored or resumed guest must not be. */
static void test_start_guarded(void **state)
{
    (void)state;
    struct ls_backend *be = open_be();
    uint32_t running[2] = { create(be, LS_GUEST_PV, 4096, 1, 5, "resumed"),
                            create(be, LS_GUEST_PV, 4096, 1, 6, "resumed-guarded") };
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(p[0]);
        struct ls_backend *cb = simtest_open();
        struct ls_errbuf e;
        ls_err_clear(&e);
        struct ls_domain_config cfg = { .type = LS_GUEST_PV, .vcpus = 1, .memory_kib = 4096,
                                        .guard = true };
        uint32_t made[2];
        if (cb->ops->create_for_restore(cb, &cfg, &made[0], &e) < 0 ||
            cb->ops->create_for_restore(cb, &cfg, &made[1], &e) < 0 ||
            cb->ops->unpause(cb, made[0], &e) < 0 ||
            cb->ops->start_guarded(cb, made[1], false, &e) < 0)
            _exit(2);
        for (int i = 0; i < 2; i++)
            if (cb->ops->set_guard(cb, running[i], LS_GUARD_DESTROY, &e) < 0 ||
                cb->ops->suspend(cb, running[i], 1000, &e) < 0)
                _exit(3);
        if (cb->ops->resume(cb, running[0], false, &e) < 0 ||
            cb->ops->start_guarded(cb, running[1], true, &e) < 0)
            _exit(4);
        (void)!write(p[1], made, sizeof(made));
        for (;;)
            pause();          /* SIGKILLed here, its connection open */
    }
    close(p[1]);
    uint32_t made[2];
    assert_int_equal(read(p[0], made, sizeof(made)), (ssize_t)sizeof(made));
    close(p[0]);
    struct ls_errbuf e;
    ls_err_clear(&e);
    /* Both guarded ones run before the kill: the guard is no pause. */
    assert_int_equal(state_of(be, made[1]), LS_RUN_RUNNING);
    assert_int_equal(state_of(be, running[1]), LS_RUN_RUNNING);
    kill(child, SIGKILL);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    struct ls_domain_info i;
    for (int tries = 0; tries < 100; tries++) {   /* the daemon sees the client go */
        if (be->ops->domain_info(be, made[1], &i, &e) < 0 &&
            be->ops->domain_info(be, running[1], &i, &e) < 0)
            break;
        usleep(20000);
    }
    assert_int_equal(state_of(be, made[0]), LS_RUN_RUNNING);
    assert_int_equal(state_of(be, running[0]), LS_RUN_RUNNING);
    assert_int_not_equal(be->ops->domain_info(be, made[1], &i, &e), 0);
    assert_int_not_equal(be->ops->domain_info(be, running[1], &i, &e), 0);
    struct ls_errbuf d;
    ls_err_clear(&d);
    assert_int_equal(be->ops->destroy(be, made[0], &d), 0);
    assert_int_equal(be->ops->destroy(be, running[0], &d), 0);
    be->ops->close(be);
}

static void test_host_dies(void **state)
{
    struct simtest_env *t = *state;
    struct ls_backend *be = open_be();
    uint32_t id = create(be, LS_GUEST_HVM, 1024, 1, 1, NULL);
    int pid = simtest_daemon_pid(t);
    kill(pid, SIGKILL);
    assert_true(simtest_wait_gone(pid, 5000));

    struct ls_domain_info i;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(be->ops->domain_info(be, id, &i, &e), -ECONNRESET);
    assert_non_null(strstr(e.msg, "lost the connection"));
    be->ops->close(be);

    /* Next boot of the "host": a new daemon, no domains. */
    be = open_be();
    assert_true(simtest_daemon_pid(t) != pid);
    struct ls_domain_info *v;
    size_t n;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_list(be, &v, &n, &e), 0);
    assert_int_equal(n, 0);
    free(v);
    be->ops->close(be);
}

static void test_no_daemon_binary(void **state)
{
    (void)state;
    char *old = strdup(getenv("LOCKSTEP_SIMD"));
    setenv("LOCKSTEP_SIMD", "/nonexistent/lockstep-simd", 1);
    struct ls_backend *be = NULL;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_open(&be, &e), -ENOENT);
    assert_null(be);
    assert_non_null(strstr(e.msg, "LOCKSTEP_SIMD=/nonexistent/lockstep-simd"));
    setenv("LOCKSTEP_SIMD", old, 1);
    free(old);
}

/* The public calls the benchmarks prepare guests with: a domain's memory as
 * a save maps it (the frame array says which pfns hold memory, the file is
 * the guest's: a write through the mapping changes the guest's digest), the
 * memory pool's status, and a standby's info where there is none. Not on a
 * backend that is not sim. And ls_parse_size, the one size parser. */
static void test_public_memory_calls(void **state)
{
    struct ls_backend *be = open_be();
    uint32_t d = create(be, LS_GUEST_PV, 8192, 1, 5, "mapped");
    struct ls_sim_memory m;
    struct ls_errbuf e;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_map_memory(be, d, true, &m, &e), 0);
    assert_true(m.p2m_size >= 2048);
    uint64_t present = 0;
    for (uint64_t pfn = 0; pfn < m.p2m_size; pfn++)
        present += m.frame[pfn] != LS_SIM_FRAME_ABSENT;
    assert_true(present >= 2048);   /* 8 MiB of RAM, page tables on top */
    struct stat st;
    assert_int_equal(fstat(m.fd, &st), 0);
    assert_true((uint64_t)st.st_size >= m.p2m_size * 4096);
    char before[65], after[65];
    digest(be, d, before);
    uint64_t pfn = 0;
    while (m.frame[pfn] == LS_SIM_FRAME_ABSENT)
        pfn++;
    m.mem[pfn * 4096 + 17] ^= 0x5a;
    digest(be, d, after);
    assert_string_not_equal(before, after);
    ls_sim_unmap_memory(&m);
    assert_int_equal(m.fd, -1);
    assert_null(m.mem);

    ls_err_clear(&e);
    assert_int_equal(ls_sim_map_memory(be, 999, false, &m, &e), -ESRCH);

    struct ls_sim_pool_status ps;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_pool_status(be, &ps, &e), 0);
    assert_int_equal(ps.filling, 0);   /* no pool configured: nothing refills */

    struct ls_dm_info sb;
    ls_err_clear(&e);
    assert_int_equal(ls_sim_dm_standby_info(be, d, &sb, &e), 0);
    assert_false(sb.present);   /* a PV domain: no device model, no standby */

    struct ls_backend_ops fake_ops = { .name = "xen" };
    struct ls_backend fake = { .ops = &fake_ops };
    ls_err_clear(&e);
    assert_int_equal(ls_sim_map_memory(&fake, d, false, &m, &e), -EOPNOTSUPP);
    assert_int_equal(m.fd, -1);
    assert_int_equal(ls_sim_pool_status(&fake, &ps, &e), -EOPNOTSUPP);
    assert_int_equal(ls_sim_dm_standby_info(&fake, d, &sb, &e), -EOPNOTSUPP);
    be->ops->close(be);

    static const struct { const char *s; int rc; uint64_t bytes; } sizes[] = {
        { "4096", 0, 4096 },           { "512M", 0, 512ull << 20 },   { "4G", 0, 4ull << 30 },
        { "1GiB", 0, 1ull << 30 },     { "64k", 0, 64 << 10 },        { "2Ki", 0, 2048 },
        { "3MB", 0, 3ull << 20 },      { "1T", 0, 1ull << 40 },       { "0", 0, 0 },
        { "", -EINVAL, 0 },            { "M", -EINVAL, 0 },           { "-1M", -EINVAL, 0 },
        { " 1M", -EINVAL, 0 },         { "1X", -EINVAL, 0 },          { "1MiBs", -EINVAL, 0 },
        { "1.5G", -EINVAL, 0 },        { "16777216T", -ERANGE, 0 },
        { "99999999999999999999", -ERANGE, 0 },
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t b = 12345;
        int rc = ls_parse_size(sizes[i].s, &b);
        if (rc != sizes[i].rc || (rc == 0 && b != sizes[i].bytes))
            fail_msg("ls_parse_size(\"%s\"): rc %d, %llu bytes; expected rc %d, %llu", sizes[i].s,
                     rc, (unsigned long long)b, sizes[i].rc, (unsigned long long)sizes[i].bytes);
        if (rc < 0)
            assert_int_equal(b, 12345);   /* untouched on an error */
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_start_on_demand, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_digest_deterministic, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_hostile_requests, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_idle_exit, setup_idle, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_guest_outlives_lockstep, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_start_guarded, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_host_dies, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_no_daemon_binary, simtest_setup, simtest_teardown),
        cmocka_unit_test_setup_teardown(test_public_memory_calls, simtest_setup, simtest_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
