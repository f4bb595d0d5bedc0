/* lib/sim.c - the simulated hypervisor for toolstacks: backends/sim/'s client. */
#include "backends/sim/proto.h"
#include "backends/sim/sim.h"
#include "lockstep/sim.h"

int ls_sim_create(struct ls_backend *be, const struct ls_sim_create_args *a, uint32_t *domid,
                  struct ls_errbuf *e)
{
    return sim_create_domain(be, a, domid, e);
}

int ls_sim_list(struct ls_backend *be, struct ls_domain_info **out, size_t *n,
                struct ls_errbuf *e)
{
    return sim_list_domains(be, out, n, e);
}

int ls_sim_find(struct ls_backend *be, const char *name, uint32_t *domid, struct ls_errbuf *e)
{
    return sim_find_domain(be, name, domid, e);
}

int ls_sim_set_config_json(struct ls_backend *be, uint32_t domid, const char *json,
                           struct ls_errbuf *e)
{
    return sim_set_config_json(be, domid, json, e);
}

int ls_sim_set_workload(struct ls_backend *be, uint32_t domid, const struct ls_sim_workload *w,
                        struct ls_errbuf *e)
{
    return sim_set_workload(be, domid, w, e);
}

int ls_sim_get_workload(struct ls_backend *be, uint32_t domid, struct ls_sim_workload *w,
                        struct ls_errbuf *e)
{
    return sim_get_workload(be, domid, w, e);
}

int ls_sim_set_net(struct ls_backend *be, uint32_t domid, const struct ls_sim_net *n,
                   struct ls_errbuf *e)
{
    return sim_net(be, domid, n, NULL, NULL, e);
}

int ls_sim_get_net(struct ls_backend *be, uint32_t domid, struct ls_sim_net *n,
                   struct ls_errbuf *e)
{
    return sim_net(be, domid, NULL, n, NULL, e);
}

int ls_sim_net_attach(struct ls_backend *be, uint32_t domid, int *fd, struct ls_errbuf *e)
{
    return sim_net(be, domid, NULL, NULL, fd, e);
}

int ls_sim_attach_disk(struct ls_backend *be, uint32_t domid, const char *path,
                       enum ls_sim_disk_format format, struct ls_errbuf *e)
{
    return sim_disk(be, domid, path, (unsigned)format, NULL, NULL, e);
}

int ls_sim_set_disks(struct ls_backend *be, uint32_t domid, const struct ls_sim_disks *d,
                     struct ls_errbuf *e)
{
    return sim_disk(be, domid, NULL, 0, d, NULL, e);
}

int ls_sim_get_disks(struct ls_backend *be, uint32_t domid, struct ls_sim_disks *d,
                     struct ls_errbuf *e)
{
    return sim_disk(be, domid, NULL, 0, NULL, d, e);
}

void ls_sim_disk_write_at(uint64_t seed, uint64_t j, unsigned block, unsigned ndisks,
                          const uint64_t *sizes, unsigned *disk, uint64_t *offset, uint8_t *fill)
{
    simp_disk_write_at(seed, j, block, ndisks, sizes, disk, offset, fill);
}

int ls_sim_frame_parse(const void *buf, size_t len, struct ls_sim_frame *f)
{
    int nondet = 0;
    int rc = simp_frame_parse(buf, len, &f->seq, &f->writes, &f->word, &nondet);
    f->nondet = nondet;
    return rc;
}

int ls_sim_parse_pattern(const char *s, enum ls_sim_dirty_pattern *p, unsigned *hot_percent)
{
    return sim_parse_pattern(s, p, hot_percent);
}

const char *ls_sim_pattern_name(enum ls_sim_dirty_pattern p, unsigned hot_percent, char *buf,
                                size_t len)
{
    return sim_pattern_name(p, hot_percent, buf, len);
}

int ls_sim_daemon_pid(struct ls_backend *be, int *pid, struct ls_errbuf *e)
{
    return sim_daemon_pid(be, pid, e);
}

int ls_sim_rundir(char *buf, size_t len)
{
    return sim_rundir(buf, len);
}

int ls_sim_pool_status(struct ls_backend *be, struct ls_sim_pool_status *st, struct ls_errbuf *e)
{
    return sim_pool_status(be, st, e);
}

int ls_sim_map_memory(struct ls_backend *be, uint32_t domid, bool writable,
                      struct ls_sim_memory *out, struct ls_errbuf *e)
{
    return sim_map_memory(be, domid, writable, out, e);
}

void ls_sim_unmap_memory(struct ls_sim_memory *m)
{
    sim_unmap_memory(m);
}

int ls_sim_dm_standby_info(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                           struct ls_errbuf *e)
{
    return sim_dm_standby_info(be, domid, out, e);
}
