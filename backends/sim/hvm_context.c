/* backends/sim/hvm_context.c - checks of a Xen HVM save record list. */
#include "backends/sim/hvm_context.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "backends/sim/xen_abi.h"

int sim_hvm_context_check(const uint8_t *b, uint32_t len, unsigned vcpus,
                          unsigned *ncpus, struct ls_errbuf *e)
{
    uint32_t off = 0;
    unsigned n = 0, cpus = 0;
    bool ended = false;

    while (!ended) {
        struct hvm_save_descriptor dsc;
        if (len - off < sizeof(dsc))
            return ls_err(e, -EINVAL, "HVM context: %s at byte %u (no END record)",
                          off == len ? "ends" : "truncated descriptor", off);
        memcpy(&dsc, b + off, sizeof(dsc));
        off += sizeof(dsc);
        if (dsc.length > len - off)
            return ls_err(e, -EINVAL, "HVM context: record %u (typecode %u) of %u bytes overruns the %u-byte blob",
                          n, dsc.typecode, dsc.length, len);
        if (n == 0) {
            struct hvm_save_header hh;
            if (dsc.typecode != SIM_HVM_TYPE_HEADER || dsc.length != sizeof(hh))
                return ls_err(e, -EINVAL, "HVM context: first record is typecode %u length %u, want HEADER (1) of %zu bytes",
                              dsc.typecode, dsc.length, sizeof(hh));
            memcpy(&hh, b + off, sizeof(hh));
            if (hh.magic != SIM_HVM_MAGIC || hh.version != SIM_HVM_VERSION)
                return ls_err(e, -EINVAL, "HVM context: header magic 0x%x version %u, want 0x%x version %u",
                              hh.magic, hh.version, SIM_HVM_MAGIC, SIM_HVM_VERSION);
        } else if (dsc.typecode == SIM_HVM_TYPE_HEADER) {
            return ls_err(e, -EINVAL, "HVM context: second HEADER record (record %u)", n);
        } else if (dsc.typecode == SIM_HVM_TYPE_END) {
            if (dsc.length != 0)
                return ls_err(e, -EINVAL, "HVM context: END record with %u bytes", dsc.length);
            ended = true;
        } else if (dsc.typecode == SIM_HVM_TYPE_CPU) {
            if (dsc.length != sizeof(struct hvm_hw_cpu) &&
                dsc.length != sizeof(struct hvm_hw_cpu_compat))
                return ls_err(e, -EINVAL, "HVM context: CPU record %u has %u bytes, want %zu",
                              dsc.instance, dsc.length, sizeof(struct hvm_hw_cpu));
            if (vcpus && dsc.instance >= vcpus)
                return ls_err(e, -EINVAL, "HVM context: CPU record for vcpu %u but the domain has %u vcpus",
                              dsc.instance, vcpus);
            if ((unsigned)dsc.instance + 1 > cpus)
                cpus = (unsigned)dsc.instance + 1;
        }
        off += dsc.length;
        n++;
    }
    if (ncpus)
        *ncpus = cpus;
    return 0;
}
