/* tools/fsm-dot/fsm_graph.h - a machine's table as a Graphviz digraph.
 *
 * One node per state (finals doublecircle, the initial state bold with an
 * arrow from a point; tooltip = the state's doc), one edge per action row
 * labelled "EVENT / action" ("EVENT" alone for fsm_nop). FAIL and CANCEL edges
 * are red; FSM_ANY rows are expanded to every non-final state lacking its own
 * row and drawn dashed; IGNORE rows appear only with FSM_DOT_IGNORED, as gray
 * dotted self-loops whose tooltip is the reason.
 */
#ifndef LOCKSTEP_FSM_GRAPH_H
#define LOCKSTEP_FSM_GRAPH_H

#include <stdio.h>

#include "fsm/fsm.h"

enum {
    FSM_DOT_IGNORED = 1u << 0,   /* also draw IGNORE rows */
};

/* Write def to out as DOT. Returns 0, or -EIO if writing failed. */
int fsm_dot_write(FILE *out, const struct fsm_def *def, unsigned flags);

#endif
