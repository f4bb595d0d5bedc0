/* lib/version.c - the version of the library that was loaded. */
#include "lockstep/version.h"

const char *ls_version(void) { return LOCKSTEP_VERSION_STRING; }
