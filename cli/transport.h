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

struct endpoint {
    enum { EP_STDIO, EP_TCP, EP_UNIX } kind;
    bool tls;                  /* tls:HOST:PORT: TCP, then TLS (the library's handshake) */
    char host[256], port[16];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* 0, or -EINVAL when s is not a number <= max. */
int parse_u64(const char *s, uint64_t max, uint64_t *out);
/* "256M", "1G", "4096" (bytes, whole pages) -> KiB; 0 or -EINVAL. */
int parse_size_kib(const char *s, uint64_t *kib);
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
