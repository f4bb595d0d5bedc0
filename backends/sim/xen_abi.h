/* backends/sim/xen_abi.h - Xen's public x86_64 structures the sim reproduces.
 *
 * The sim lays guest state out exactly as Xen 4.17 hands it to libxc
 * (vcpu_guest_context, start_info, shared_info, the HVM save record list), so
 * streams it writes are real streams. We take the layouts from the installed
 * Xen public headers (libxen-dev) rather than restating them; the static
 * asserts pin the sizes the stream format depends on.
 */
#ifndef LOCKSTEP_BACKENDS_SIM_XEN_ABI_H
#define LOCKSTEP_BACKENDS_SIM_XEN_ABI_H

#ifndef __XEN_TOOLS__
#define __XEN_TOOLS__ 1   /* exposes the toolstack-only structures */
#endif
#include <stddef.h>
#include <stdint.h>
#include <xen/xen.h>
#include <xen/hvm/params.h>
#include <xen/hvm/save.h>

#include "io/stream_format.h"

#if !defined(__x86_64__)
#error "the sim backend models 64-bit x86 guests and builds on x86_64 hosts only"
#endif

_Static_assert(sizeof(struct vcpu_guest_context) == LIBXC_X86_64_VCPU_BASIC_SIZE,
               "64-bit vcpu_guest_context must be the 5168 bytes libxc sends");
_Static_assert(sizeof(struct shared_info) <= STREAM_PAGE_SIZE, "shared_info fits a page");
_Static_assert(sizeof(struct start_info) <= STREAM_PAGE_SIZE, "start_info fits a page");
_Static_assert(sizeof(struct hvm_save_descriptor) == 8, "hvm save descriptor");
_Static_assert(sizeof(struct hvm_save_header) == 24, "hvm save header");

#define SIM_HVM_TYPE_END    0   /* hvm_save_descriptor typecodes */
#define SIM_HVM_TYPE_HEADER 1
#define SIM_HVM_TYPE_CPU    2
#define SIM_HVM_MAGIC       0x54381286u   /* HVM_FILE_MAGIC */
#define SIM_HVM_VERSION     1u            /* HVM_FILE_VERSION */

/* 64-bit PTE frame bits and the present bit, as libxc's pte_to_frame. */
#define SIM_PTE_FRAME_MASK UINT64_C(0x000ffffffffff000)
#define SIM_PTE_PRESENT    UINT64_C(0x1)

/* HVM special pages as libxl/libxenguest place them below 0xff000. */
#define SIM_HVM_SPECIAL_END    0xFF000u
#define SIM_HVM_SPECIAL_PAGING (SIM_HVM_SPECIAL_END - 8 + 0)
#define SIM_HVM_SPECIAL_ACCESS (SIM_HVM_SPECIAL_END - 8 + 1)
#define SIM_HVM_SPECIAL_SHARING (SIM_HVM_SPECIAL_END - 8 + 2)
#define SIM_HVM_SPECIAL_BUFIOREQ (SIM_HVM_SPECIAL_END - 8 + 3)
#define SIM_HVM_SPECIAL_XENSTORE (SIM_HVM_SPECIAL_END - 8 + 4)
#define SIM_HVM_SPECIAL_IOREQ  (SIM_HVM_SPECIAL_END - 8 + 5)
#define SIM_HVM_SPECIAL_IDENT_PT (SIM_HVM_SPECIAL_END - 8 + 6)
#define SIM_HVM_SPECIAL_CONSOLE (SIM_HVM_SPECIAL_END - 8 + 7)
#define SIM_HVM_IOREQ_SERVER_PFN (SIM_HVM_SPECIAL_END - 16)
#define SIM_HVM_IOREQ_SERVER_PAGES 8u

/* Event channels the sim's "toolstack" binds at domain build. */
#define SIM_STORE_EVTCHN   1u
#define SIM_CONSOLE_EVTCHN 2u

/* The HVM params the 4.17 saver sends when non-zero (write_hvm_params), in
 * its order. Returns the list and its length. */
static inline const uint32_t *sim_hvm_saved_params(size_t *n)
{
    static const uint32_t list[] = {
        HVM_PARAM_STORE_PFN,          HVM_PARAM_IOREQ_PFN,
        HVM_PARAM_BUFIOREQ_PFN,       HVM_PARAM_PAGING_RING_PFN,
        HVM_PARAM_MONITOR_RING_PFN,   HVM_PARAM_SHARING_RING_PFN,
        HVM_PARAM_VM86_TSS_SIZED,     HVM_PARAM_CONSOLE_PFN,
        HVM_PARAM_ACPI_IOPORTS_LOCATION, HVM_PARAM_VIRIDIAN,
        HVM_PARAM_IDENT_PT,           HVM_PARAM_VM_GENERATION_ID_ADDR,
        HVM_PARAM_IOREQ_SERVER_PFN,   HVM_PARAM_NR_IOREQ_SERVER_PAGES,
        HVM_PARAM_X87_FIP_WIDTH,      HVM_PARAM_MCA_CAP,
    };
    *n = sizeof(list) / sizeof(list[0]);
    return list;
}

static inline int sim_hvm_param_is_saved(uint64_t idx)
{
    size_t n;
    const uint32_t *l = sim_hvm_saved_params(&n);
    for (size_t i = 0; i < n; i++)
        if (l[i] == idx)
            return 1;
    return 0;
}

#endif
