/* cli/cmd_colo.h - `lockstep colo-primary` and `lockstep colo-secondary`. */
#ifndef LOCKSTEP_CLI_CMD_COLO_H
#define LOCKSTEP_CLI_CMD_COLO_H

#include "lockstep/lockstep.h"

/* argv[0] is the command name; return the process exit status. */
int ls_cmd_colo_primary(int argc, char **argv, enum ls_backend_kind backend);
int ls_cmd_colo_secondary(int argc, char **argv, enum ls_backend_kind backend);

#endif
