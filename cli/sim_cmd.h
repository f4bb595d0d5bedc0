/* cli/sim_cmd.h - `lockstep sim ...`: manage simulated domains. */
#ifndef LOCKSTEP_CLI_SIM_CMD_H
#define LOCKSTEP_CLI_SIM_CMD_H
int ls_sim_cli(int argc, char **argv);
#endif
