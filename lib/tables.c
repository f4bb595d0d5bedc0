/* lib/tables.c - the public description of the tables (lockstep/tables.h),
 * built once from the engine's fsm_all_defs[] so that no engine type or
 * number reaches the public ABI. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "fsm/fsm.h"
#include "lockstep/tables.h"

static struct ls_table *tables;
static size_t ntables;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct ls_table *)a)->name, ((const struct ls_table *)b)->name);
}

static bool describe(struct ls_table *t, const struct fsm_def *d)
{
    struct ls_table_state *st = calloc((size_t)d->nstates, sizeof(*st));
    struct ls_table_event *ev = calloc((size_t)d->nevents, sizeof(*ev));
    struct ls_table_row *rw = calloc((size_t)d->nrows, sizeof(*rw));
    if (!st || !ev || !rw) {
        free(st);
        free(ev);
        free(rw);
        return false;
    }
    for (int i = 0; i < d->nstates; i++)
        st[i] = (struct ls_table_state){ d->state_names[i], d->state_docs[i], d->state_final[i] };
    for (int i = 0; i < d->nevents; i++)
        ev[i] = (struct ls_table_event){ d->event_names[i], d->event_docs[i] };
    for (int i = 0; i < d->nrows; i++) {
        const struct fsm_row *r = &d->rows[i];
        bool ignore = r->kind == FSM_CELL_IGNORE;
        rw[i] = (struct ls_table_row){
            .kind = r->state < 0 ? LS_ROW_ANY : ignore ? LS_ROW_IGNORE : LS_ROW_NORMAL,
            .state = r->state < 0 ? NULL : d->state_names[r->state],
            .event = d->event_names[r->event],
            .action = ignore ? NULL : r->action_name,
            .next = d->state_names[r->next],
            .reason = ignore ? r->reason : NULL,
            .line = r->line,
            .nofail = !ignore && fsm_row_nofail(d, r),
        };
        for (int k = 0; k < d->nunreachable; k++)
            if (d->unreachable[k].state == r->state && d->unreachable[k].event == r->event)
                rw[i].unreachable = d->unreachable[k].reason;
    }
    *t = (struct ls_table){
        .name = d->name, .doc = d->doc, .file = d->file,
        .initial = d->state_names[d->initial_state],
        .nstates = (size_t)d->nstates, .nevents = (size_t)d->nevents, .nrows = (size_t)d->nrows,
        .states = st, .events = ev, .rows = rw,
    };
    return true;
}

/* Kept for the process's life: callers hold pointers into it. */
static void build(void)
{
    struct ls_table *t = calloc(fsm_all_defs_count ? fsm_all_defs_count : 1, sizeof(*t));
    if (!t)
        return;
    for (size_t i = 0; i < fsm_all_defs_count; i++) {
        if (!describe(&t[i], fsm_all_defs[i])) {
            for (size_t k = 0; k < i; k++) {
                free((void *)t[k].states);
                free((void *)t[k].events);
                free((void *)t[k].rows);
            }
            free(t);
            return;
        }
    }
    qsort(t, fsm_all_defs_count, sizeof(*t), by_name);
    tables = t;
    ntables = fsm_all_defs_count;
}

const struct ls_table *ls_tables(size_t *count)
{
    pthread_once(&tables_once, build);
    *count = ntables;
    return tables;
}

const struct ls_table *ls_table_find(const char *name)
{
    size_t n;
    const struct ls_table *t = ls_tables(&n);
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return &t[i];
    return NULL;
}

/* ---- JSON ----------------------------------------------------------------- */

static void j_str(yajl_gen g, const char *s)
{
    if (s)
        yajl_gen_string(g, (const unsigned char *)s, strlen(s));
    else
        yajl_gen_null(g);
}

static void j_key(yajl_gen g, const char *k, const char *v)
{
    j_str(g, k);
    j_str(g, v);
}

/* The states an ANY row covers: the engine's own lookup decides. */
static void j_applies_to(yajl_gen g, const struct ls_table *t, const struct ls_table_row *row)
{
    const struct fsm_def *d = fsm_def_find(t->name);
    int ev = -1;
    for (int e = 0; d && e < d->nevents; e++)
        if (strcmp(d->event_names[e], row->event) == 0)
            ev = e;
    j_str(g, "applies_to");
    yajl_gen_array_open(g);
    for (int s = 0; ev >= 0 && s < d->nstates; s++) {
        const struct fsm_row *r = fsm_def_lookup(d, s, ev);
        if (r && r->state < 0 && r->line == row->line)
            j_str(g, d->state_names[s]);
    }
    yajl_gen_array_close(g);
}

static void j_machine(yajl_gen g, const struct ls_table *t)
{
    static const char *const kinds[] = { "row", "ignore", "any" };
    yajl_gen_map_open(g);
    j_key(g, "name", t->name);
    j_key(g, "doc", t->doc);
    j_key(g, "file", t->file);
    j_key(g, "initial", t->initial);
    j_str(g, "states");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < t->nstates; i++) {
        yajl_gen_map_open(g);
        j_key(g, "name", t->states[i].name);
        j_key(g, "doc", t->states[i].doc);
        j_str(g, "final");
        yajl_gen_bool(g, t->states[i].final);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    j_str(g, "events");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < t->nevents; i++) {
        yajl_gen_map_open(g);
        j_key(g, "name", t->events[i].name);
        j_key(g, "doc", t->events[i].doc);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    j_str(g, "rows");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < t->nrows; i++) {
        const struct ls_table_row *r = &t->rows[i];
        yajl_gen_map_open(g);
        j_key(g, "kind", kinds[r->kind]);
        j_key(g, "state", r->state);
        j_key(g, "event", r->event);
        j_key(g, "action", r->action);
        j_key(g, "next", r->next);
        if (r->kind == LS_ROW_IGNORE)
            j_key(g, "reason", r->reason);
        j_key(g, "file", t->file);
        j_str(g, "line");
        yajl_gen_integer(g, r->line);
        j_str(g, "nofail");
        yajl_gen_bool(g, r->nofail);
        j_key(g, "unreachable", r->unreachable);
        if (r->kind == LS_ROW_ANY)
            j_applies_to(g, t, r);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

char *ls_tables_json(const char *machine, struct ls_errbuf *err)
{
    size_t n;
    const struct ls_table *all = ls_tables(&n);
    if (!all && fsm_all_defs_count) {
        ls_err(err, -ENOMEM, "describing the tables: out of memory");
        return NULL;
    }
    const struct ls_table *one = machine ? ls_table_find(machine) : NULL;
    if (machine && !one) {
        char known[512] = "";
        size_t len = 0;
        for (size_t i = 0; i < n && len < sizeof(known); i++)
            len += (size_t)snprintf(known + len, sizeof(known) - len, " %s", all[i].name);
        ls_err(err, -ENOENT, "unknown machine '%s'; known machines:%s", machine, known);
        return NULL;
    }
    yajl_gen g = yajl_gen_alloc(NULL);
    if (!g) {
        ls_err(err, -ENOMEM, "describing the tables: out of memory");
        return NULL;
    }
    yajl_gen_config(g, yajl_gen_beautify, 1);
    yajl_gen_map_open(g);
    j_str(g, "format");
    yajl_gen_integer(g, 1);
    j_str(g, "machines");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n; i++)
        if (!one || &all[i] == one)
            j_machine(g, &all[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    const unsigned char *buf;
    size_t len;
    char *out = NULL;
    if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok && (out = malloc(len + 1))) {
        memcpy(out, buf, len);
        out[len] = '\0';
    } else {
        ls_err(err, -ENOMEM, "describing the tables: out of memory");
    }
    yajl_gen_free(g);
    return out;
}
