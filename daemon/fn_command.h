/* fn_command.h - commands per item: spawned cheaply, output captured */
#pragma once

#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "json.h"
#include "proto.h"

/*
 * Run e's command (FN_COMMAND) on one item: substitute it into argv (or write
 * it to stdin with input = stdin), capture stdout and the last line of stderr.
 * Appends one JSON value to out (stdout as a string without its trailing
 * newline, or parsed as JSON with output = json) and returns 0; or returns -1
 * with err set: function_error naming the exit status or signal and the last
 * line of stderr. Spawned with posix_spawn in a process group of its own.
 */
int command_call(const struct fn_entry *e, struct json_span item, struct buf *out,
                 struct proto_error *err);
/* Kill the running command's process group, if any (the worker is exiting). */
void command_stop(void);
