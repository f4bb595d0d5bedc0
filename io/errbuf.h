/* io/errbuf.h - kept for code written before the error buffer became part
 * of the public API: the definitions are in include/lockstep/errbuf.h. */
#include "lockstep/errbuf.h"
