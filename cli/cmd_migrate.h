/* cli/cmd_migrate.h - `lockstep migrate` and `lockstep migrate-receive`. */
#ifndef LOCKSTEP_CLI_CMD_MIGRATE_H
#define LOCKSTEP_CLI_CMD_MIGRATE_H

#include "lockstep/lockstep.h"

/* argv[0] is the command name; return the process exit status. */
int ls_cmd_migrate(int argc, char **argv, enum ls_backend_kind backend);
int ls_cmd_migrate_receive(int argc, char **argv, enum ls_backend_kind backend);

#endif
