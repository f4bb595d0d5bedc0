/* test/fuzz/fuzz_inspect.c - the stream reader as `lockstep inspect` runs it.
 *
 * The input is a whole file given to ls_inspect, in text and in JSON. The
 * same bytes then go through the push parser in chunks whose sizes the input
 * itself picks (its first byte seeds them), since the network hands a
 * migration's receiver any split: every split must give the same verdict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz/fuzz_common.h"
#include "io/stream_parser.h"
#include "lockstep/inspect.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    devnull = fopen("/dev/null", "w");
    if (!devnull)
        abort();
    return 0;
}

static int count_item(void *data, const struct stream_item *it, struct ls_errbuf *e)
{
    (*(unsigned *)data)++;
    return 0;
}

static int parse_chunked(const uint8_t *d, size_t n, unsigned seed, unsigned *items,
                         struct ls_errbuf *e)
{
    struct stream_parser p;
    stream_parser_init(&p, STREAM_FORMAT_AUTO, count_item, items);
    int rc = 0;
    size_t at = 0;
    while (at < n && rc == 0) {
        seed = seed * 1103515245u + 12345u;
        size_t len = 1 + (seed >> 16) % 97;
        if (len > n - at)
            len = n - at;
        rc = stream_parser_feed(&p, d + at, len, e);
        at += len;
    }
    if (rc == 0)
        rc = stream_parser_finish(&p, e);
    stream_parser_destroy(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int rcs[2];
    for (int json = 0; json < 2; json++) {
        int fd = fuzz_memfd(data, size);
        struct ls_errbuf e = { 0 };
        rcs[json] = ls_inspect(fd, devnull, json, &e);
        close(fd);
        if (rcs[json] < 0 && !e.msg[0]) {
            fprintf(stderr, "inspect failed (%d) with no reason\n", rcs[json]);
            abort();
        }
    }
    if (rcs[0] != rcs[1])
        abort();   /* the output format cannot change the verdict */

    unsigned whole = 0, split = 0;
    struct ls_errbuf e1 = { 0 }, e2 = { 0 };
    struct stream_parser p;
    stream_parser_init(&p, STREAM_FORMAT_AUTO, count_item, &whole);
    whole = 0;
    int rc = stream_parser_feed(&p, data, size, &e1);
    if (rc == 0)
        rc = stream_parser_finish(&p, &e1);
    stream_parser_destroy(&p);
    int rc2 = parse_chunked(data, size, size ? data[0] : 0, &split, &e2);
    if (rc != rc2 || whole != split || strcmp(e1.msg, e2.msg) != 0) {
        fprintf(stderr, "whole: %d (%u items) '%s'\nsplit: %d (%u items) '%s'\n", rc, whole,
                e1.msg, rc2, split, e2.msg);
        abort();
    }
    return 0;
}
