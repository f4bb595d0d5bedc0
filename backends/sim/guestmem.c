/* backends/sim/guestmem.c - guest memory files: memfds, or a private
 * huge-page tmpfs (see guestmem.h). */
#include "backends/sim/guestmem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <unistd.h>

static int huge_mount_fd = -1;

int sim_guestmem_use_huge_pages(char *why, size_t cap)
{
    if (huge_mount_fd >= 0)
        return 0;
    /* size 0: no limit of its own, as memfds have none; huge=always: every
     * 2 MiB-aligned extent is one huge page when the kernel can find one. */
    static const char *const options[][2] = {
        { "huge", "always" }, { "size", "0" }, { "mode", "0700" },
    };
    char step[64] = "fsopen(tmpfs)";
    int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
    int rc = fs < 0 ? -errno : 0;
    for (size_t i = 0; rc == 0 && i < sizeof(options) / sizeof(options[0]); i++)
        if (fsconfig(fs, FSCONFIG_SET_STRING, options[i][0], options[i][1], 0) < 0) {
            rc = -errno;
            snprintf(step, sizeof(step), "tmpfs option %s=%s", options[i][0], options[i][1]);
        }
    if (rc == 0 && fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
        rc = -errno;
        snprintf(step, sizeof(step), "creating the tmpfs");
    }
    int mnt = -1;
    if (rc == 0) {
        mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        if (mnt < 0) {
            rc = -errno;
            snprintf(step, sizeof(step), "fsmount");
        }
    }
    if (fs >= 0)
        close(fs);
    /* Probe: an unnamed file must be possible (O_TMPFILE). */
    if (rc == 0) {
        int probe = openat(mnt, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (probe < 0) {
            rc = -errno;
            snprintf(step, sizeof(step), "O_TMPFILE in the tmpfs");
        } else {
            close(probe);
        }
    }
    if (rc < 0) {
        if (mnt >= 0)
            close(mnt);
        snprintf(why, cap, "huge pages: %s: %s%s", step, strerror(-rc),
                 rc == -EPERM    ? " (a private tmpfs needs CAP_SYS_ADMIN: run as root, or without --huge-pages)"
                 : rc == -ENOSYS ? " (no fsopen in this kernel or sandbox: run without --huge-pages)"
                                 : "");
        return rc;
    }
    huge_mount_fd = mnt;
    return 0;
}

bool sim_guestmem_huge_pages(void)
{
    return huge_mount_fd >= 0;
}

int sim_guestmem_new(const char *name)
{
    if (huge_mount_fd >= 0)
        return openat(huge_mount_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    return memfd_create(name, MFD_CLOEXEC);
}
