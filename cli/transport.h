/* cli/transport.h - what the commands that talk to a peer share (cmd_migrate.c):
 * number parsing, the transports (tcp:, unix:, - for stdin/stdout) and the
 * fd-leak check tests ask for. */
#ifndef LOCKSTEP_CLI_TRANSPORT_H
#define LOCKSTEP_CLI_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/un.h>

#include "lockstep/sim.h"

struct endpoint {
    enum { EP_STDIO, EP_TCP, EP_UNIX } kind;
    bool tls;                  /* tls:HOST:PORT: TCP, then TLS (the library's handshake) */
    char host[256], port[16];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* 0, or -EINVAL when s is not a number <= max. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);
/* "256M", "1G", "4096" (bytes) -> KiB, whole 4 KiB pages only; 0 or -EINVAL. */
int parse_size_kib(const char *s, uint64_t *kib);

/* The guest options migrate and colo-primary share: --domid N, or a new sim
 * guest (--sim pv|hvm --memory SIZE [--vcpus N] [--seed S]) that may dirty
 * its memory (--dirty-rate N, --dirty-pattern P). */
/* --disk FILE[,format=raw|qcow2] (up to GUEST_DISKS_MAX), --disk-every N,
 * --disk-block SIZE: an HVM sim guest's disks, written by its vCPU. */
#define GUEST_DISKS_MAX 4u
#define OPT_DISK       0x100
#define OPT_DISK_EVERY 0x101
#define OPT_DISK_BLOCK 0x102
struct guest_disks {
    struct { char path[256]; enum ls_sim_disk_format format; } disk[GUEST_DISKS_MAX];
    unsigned n;
    struct ls_sim_disks cfg;       /* every, block */
};
/* One of the three options above: 0 taken, or -EINVAL with why filled. */
int guest_disks_opt(int c, const char *arg, struct guest_disks *d, char *why, size_t wl);
/* Attach them to domain domid and set its writes; 0 or -errno with err. */
int guest_disks_attach(struct ls_backend *be, uint32_t domid, const struct guest_disks *d,
                       struct ls_errbuf *err);

struct guest_args {
    const char *sim;
    uint64_t domid, vcpus, seed, memory_kib;
    bool have_domid, workload;
    bool created;                  /* set by guest_args_create: this command's to destroy */
    struct ls_sim_workload w;
    enum ls_guest_type type;       /* from sim, set by guest_args_check */
    struct guest_disks disks;
};
#define GUEST_ARGS_INIT { .vcpus = 1, .seed = 1, .w = { .pattern = LS_SIM_DIRTY_UNIFORM } }
/* Their getopt_long entries, once for every command that takes them. */
#define GUEST_ARGS_OPTIONS                                                                  \
    { "domid", required_argument, NULL, 'd' }, { "sim", required_argument, NULL, 's' },     \
    { "memory", required_argument, NULL, 'm' }, { "vcpus", required_argument, NULL, 'v' },  \
    { "seed", required_argument, NULL, 'S' }, { "dirty-rate", required_argument, NULL, 'r' }, \
    { "dirty-pattern", required_argument, NULL, 'p' },                                      \
    { "disk", required_argument, NULL, OPT_DISK },                                          \
    { "disk-every", required_argument, NULL, OPT_DISK_EVERY },                              \
    { "disk-block", required_argument, NULL, OPT_DISK_BLOCK }
/* getopt's option c (one of d s m v S r p, OPT_DISK*) with its argument: 0 when taken,
 * -1 when c is not one of these, or the usage exit status for a bad value. */
int guest_args_opt(const char *cmd, int c, const char *arg, struct guest_args *a);
/* After the options: exactly one of --domid and --sim, and what goes with
 * --sim; 0 or the usage exit status. */
int guest_args_check(const char *cmd, struct guest_args *a);
/* Create the --sim guest (populated, named PREFIX-PID, with device model dm)
 * and start its workload: a->domid and a->created once it exists. 0 or
 * -errno with err filled. */
int guest_args_create(struct ls_backend *be, struct guest_args *a, const char *prefix,
                      enum ls_device_model dm, struct ls_errbuf *err);
/* "tcp:HOST:PORT", "tls:HOST:PORT", "unix:PATH" or "-"; 0 or -EINVAL. */
int parse_endpoint(const char *s, struct endpoint *ep);
/* A connected socket (non-blocking, tuned), or -errno with why filled. */
int ep_connect(const struct endpoint *ep, unsigned timeout_ms, char *why, size_t wl);
/* Listen (saying where on stderr, and as a JSON "listening" event on json
 * unless NULL), accept one connection, stop listening. */
int ep_accept(const struct endpoint *ep, unsigned timeout_ms, FILE *json, char *why, size_t wl);
/* LOCKSTEP_CHECK_FDS=1: a leaked fd turns status into 97. */
int check_fds(int status);

#endif
