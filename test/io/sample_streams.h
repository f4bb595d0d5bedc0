/* test/io/sample_streams.h - realistic valid streams built with the encoders,
 * shared by the parser, inspect and verifier tests. */
#ifndef LOCKSTEP_TEST_IO_SAMPLE_STREAMS_H
#define LOCKSTEP_TEST_IO_SAMPLE_STREAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "io/record_body.h"

/* Plain xl save files (xl header, libxl, nested libxc v3, END). */
void sample_xl_hvm(struct stream_buf *b);
void sample_xl_pv(struct stream_buf *b);
/* A checkpointed HVM stream with `checkpoints` complete checkpoints, each
 * followed by CHECKPOINT_STATE(NEW) if colo; ends (cleanly) at EOF. */
void sample_xl_checkpointed(struct stream_buf *b, int checkpoints, bool colo);

/* Pieces, for crafting invalid streams around one bad record. */
void sample_outer_headers(struct stream_buf *b);             /* xl + libxl + LIBXC_CONTEXT */
void sample_hvm_static(struct stream_buf *b);                /* libxc hdrs .. STATIC_DATA_END */
void sample_pv_static(struct stream_buf *b);                 /* .. PV_INFO .. P2M_FRAMES */
void sample_hvm_memory(struct stream_buf *b, int batch);     /* PAGE_DATA records */
void sample_pv_memory(struct stream_buf *b);
void sample_hvm_tail(struct stream_buf *b);                  /* TSC, HVM_CONTEXT, HVM_PARAMS */
void sample_pv_tail(struct stream_buf *b);                   /* TSC, SHARED_INFO, vcpus */
void sample_emulator(struct stream_buf *b);                  /* EMULATOR_CONTEXT */
/* A record with any body length and padding bytes of value `pad`. */
void sample_put_raw(struct stream_buf *b, uint32_t type, const void *body, uint32_t len,
                    uint8_t pad);

#endif
