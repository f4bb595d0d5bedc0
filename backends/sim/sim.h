/* backends/sim/sim.h - the simulated-Xen backend, client side (internal).
 *
 * The public part (creating and driving sim domains) is lockstep/sim.h.
 * ls_sim_open() connects to lockstep-simd, starting it when it is not
 * running (see lockstep/sim.h for where it is found). The returned backend
 * implements every struct ls_backend_ops function; all calls are
 * thread-safe (one connection, one request at a time). The memory task maps
 * guest memory straight from the daemon (memfds over SCM_RIGHTS), as Xen's
 * privcmd maps foreign pages.
 */
#ifndef LOCKSTEP_BACKENDS_SIM_SIM_H
#define LOCKSTEP_BACKENDS_SIM_SIM_H

#include "backends/backend.h"
#include "lockstep/errbuf.h"
#include "lockstep/sim.h"

int ls_sim_open(struct ls_backend **out, struct ls_errbuf *e);

/* The work behind lockstep/sim.h's ls_sim_* (lib/sim.c), same contracts. */
int sim_create_domain(struct ls_backend *be, const struct ls_sim_create_args *a, uint32_t *domid,
                      struct ls_errbuf *e);
int sim_list_domains(struct ls_backend *be, struct ls_domain_info **out, size_t *n,
                     struct ls_errbuf *e);
int sim_find_domain(struct ls_backend *be, const char *name, uint32_t *domid, struct ls_errbuf *e);
int sim_set_config_json(struct ls_backend *be, uint32_t domid, const char *json,
                        struct ls_errbuf *e);
int sim_set_workload(struct ls_backend *be, uint32_t domid, const struct ls_sim_workload *w,
                     struct ls_errbuf *e);
int sim_get_workload(struct ls_backend *be, uint32_t domid, struct ls_sim_workload *w,
                     struct ls_errbuf *e);
/* The guest's network: set (in), get (out) or attach (fd), exactly one given. */
int sim_net(struct ls_backend *be, uint32_t domid, const struct ls_sim_net *in,
            struct ls_sim_net *out, int *fd, struct ls_errbuf *e);
/* The guest's disks: attach (path), set (in) or get (out), exactly one given. */
int sim_disk(struct ls_backend *be, uint32_t domid, const char *path, unsigned format,
             const struct ls_sim_disks *in, struct ls_sim_disks *out, struct ls_errbuf *e);
int sim_parse_pattern(const char *s, enum ls_sim_dirty_pattern *p, unsigned *hot_percent);
const char *sim_pattern_name(enum ls_sim_dirty_pattern p, unsigned hot_percent, char *buf,
                             size_t len);
int sim_daemon_pid(struct ls_backend *be, int *pid, struct ls_errbuf *e);
int sim_rundir(char *buf, size_t len);

int sim_pool_status(struct ls_backend *be, struct ls_sim_pool_status *st, struct ls_errbuf *e);
int sim_map_memory(struct ls_backend *be, uint32_t domid, bool writable, struct ls_sim_memory *out,
                   struct ls_errbuf *e);
void sim_unmap_memory(struct ls_sim_memory *m);
int sim_dm_standby_info(struct ls_backend *be, uint32_t domid, struct ls_dm_info *out,
                        struct ls_errbuf *e);

#endif
