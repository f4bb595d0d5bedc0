/* lib/inspect.c - `lockstep inspect` for toolstacks: the codec's printer. */
#include "io/inspect.h"
#include "lockstep/inspect.h"

int ls_inspect(int fd, FILE *out, bool json, struct ls_errbuf *e)
{
    return stream_inspect(fd, out, json, e);
}
