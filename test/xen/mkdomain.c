/* test/xen/mkdomain.c - lockstep-xen-mkdomain pv|pvh VCPUS MEMORY_MIB
 *
 * What a toolstack that builds its own domains does before it hands one to
 * `lockstep restore --domid N` (ls_restore_opts.domid), and nothing more:
 * create the domain (paused, as Xen creates every domain), allocate its
 * vCPUs and set its memory limit (the guest's memory plus libxl's 1 MiB
 * slack). It is not built: no memory, no xenstore entries, no event
 * channels, no TSC mode, no paging pool; those are lockstep's to set up.
 * Prints the new domain's id. For test/xen/suite.sh, inside the nested dom0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xenctrl.h>

int main(int argc, char **argv)
{
    char *end1 = NULL, *end2 = NULL;
    unsigned long vcpus = argc == 4 ? strtoul(argv[2], &end1, 10) : 0;
    unsigned long mib = argc == 4 ? strtoul(argv[3], &end2, 10) : 0;
    bool pvh = argc == 4 && strcmp(argv[1], "pvh") == 0;
    if (argc != 4 || (!pvh && strcmp(argv[1], "pv") != 0) || *end1 || *end2 || !vcpus ||
        vcpus > 128 || !mib) {
        fprintf(stderr, "usage: lockstep-xen-mkdomain pv|pvh VCPUS MEMORY_MIB\n");
        return 2;
    }
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    if (!xch) {
        fprintf(stderr, "lockstep-xen-mkdomain: cannot open the hypervisor: %s\n",
                strerror(errno));
        return 1;
    }
    struct xen_domctl_createdomain create = {
        .max_vcpus = (uint32_t)vcpus,
        .max_evtchn_port = 1023,
        .max_grant_frames = 64,
        .max_maptrack_frames = 1024,
        .grant_opts = XEN_DOMCTL_GRANT_version(1),
    };
    if (pvh) {
        create.flags = XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap;
        create.arch.emulation_flags = XEN_X86_EMU_LAPIC;
    }
    /* A UUID of its own, as any toolstack gives its domains. */
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, create.handle, sizeof(create.handle)) != sizeof(create.handle)) {
        fprintf(stderr, "lockstep-xen-mkdomain: /dev/urandom: %s\n", strerror(errno));
        return 1;
    }
    close(fd);
    create.handle[6] = (uint8_t)((create.handle[6] & 0x0f) | 0x40);
    create.handle[8] = (uint8_t)((create.handle[8] & 0x3f) | 0x80);

    uint32_t domid = 0;
    const char *step = NULL;
    if (xc_domain_create(xch, &domid, &create) < 0)
        step = "create the domain";
    else if (xc_domain_max_vcpus(xch, domid, (unsigned)vcpus) < 0)
        step = "create its vCPUs";
    else if (xc_domain_setmaxmem(xch, domid, (uint64_t)mib * 1024 + 1024) < 0)
        step = "set its memory limit";
    if (step) {
        fprintf(stderr, "lockstep-xen-mkdomain: Xen refused to %s: %s\n", step, strerror(errno));
        if (domid)
            xc_domain_destroy(xch, domid);
        xc_interface_close(xch);
        return 1;
    }
    printf("%u\n", domid);
    xc_interface_close(xch);
    return 0;
}
