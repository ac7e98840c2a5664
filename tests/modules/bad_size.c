/* bad_size.c - a descriptor that claims fewer bytes than ABI 1.0 has: refused */
#include <poold/module.h>

POOLD_EXPORT const struct poold_module poold_module = {
    POOLD_MODULE_MAGIC, POOLD_MODULE_ABI_MAJOR, 0, 16, "bad_size", "1.0", NULL, NULL, NULL, NULL};
