/* agent.h - poold --join: a host agent runs its own workers for a remote supervisor */
#pragma once

#include "supervisor.h"

/*
 * Run a host agent until SIGTERM: pre-fork opt->workers local workers (the
 * pool, as the supervisor runs it), bind the task endpoint, join the
 * supervisor at opt->join and relay its tasks to idle workers and their
 * answers back, every message sealed with the cluster key. Returns the exit status.
 */
int agent_main(const struct options *opt);
