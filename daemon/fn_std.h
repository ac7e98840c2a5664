/* fn_std.h - the built-in "std" module (square, echo, sleep_ms, the test hooks, ...) */
#pragma once

#include "poold/module.h"

extern const struct poold_module fn_std_module;
