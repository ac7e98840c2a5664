/* bad_magic.c - a poold_module that is not a descriptor: poold must refuse it */
#include <poold/module.h>

POOLD_EXPORT const struct poold_module poold_module = {0x1234,
                                                       POOLD_MODULE_ABI_MAJOR,
                                                       POOLD_MODULE_ABI_MINOR,
                                                       sizeof(struct poold_module),
                                                       "bad_magic",
                                                       "1.0",
                                                       NULL,
                                                       NULL,
                                                       NULL,
                                                       NULL};
