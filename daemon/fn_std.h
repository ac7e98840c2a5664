/* fn_std.h - the built-in "std" function set */
#pragma once

#include "registry.h"

extern const struct fn_set fn_std_set;
