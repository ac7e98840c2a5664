/* floor.h - the round trips poold's design cannot go below */
#pragma once

/*
 * Time n (after warm untimed) round trips of a 53-byte message through a
 * nanomsg ipc PUSH/PULL echo process (endpoints in dir) and through a Unix
 * socketpair echo process; print p50/p99 of each and the sum of the p50s.
 */
int cmd_floor(const char *dir, long n, long warm);
