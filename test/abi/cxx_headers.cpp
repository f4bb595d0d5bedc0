// Every public header from C++ (extern "C" linkage, nothing C-only), and the
// version the headers say is the version of the library that runs.
#include "lockstep/domain.h"
#include "lockstep/errbuf.h"
#include "lockstep/inspect.h"
#include "lockstep/lockstep.h"
#include "lockstep/qmp.h"
#include "lockstep/sim.h"
#include "lockstep/tables.h"
#include "lockstep/version.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

int main()
{
    if (std::strcmp(ls_version(), LOCKSTEP_VERSION_STRING) != 0) {
        std::printf("FAIL - ls_version() is %s, the headers say %s\n", ls_version(),
                    LOCKSTEP_VERSION_STRING);
        return 1;
    }
    struct ls_errbuf e;
    ls_err_clear(&e);
    ls_err(&e, -EINVAL, "%s %d", "from C++", 1);
    size_t n = 0;
    const struct ls_table *t = ls_tables(&n);
    if (e.rc != -EINVAL || std::strcmp(e.msg, "from C++ 1") != 0 || !t || n == 0) {
        std::printf("FAIL - the C API from C++: rc %d msg '%s', %zu tables\n", e.rc, e.msg, n);
        return 1;
    }
    std::printf("ok   - C++: headers compile, ls_version() %s, %zu tables\n", ls_version(), n);
    return 0;
}
