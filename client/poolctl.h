/* poolctl.h - poolctl's printers of daemon information (status, ping, functions) */
#pragma once

#include <cJSON.h>

/* Print v as one JSON line on stdout; 0 or -ENOMEM. */
int poolctl_print_json(const cJSON *v);
/* Print a status object as a summary and a table of slots; 0 or -ENOMEM. */
int poolctl_print_status(const cJSON *status);
/* Print a ping reply (id and ok removed) on one line; 0. */
int poolctl_print_ping(const cJSON *ping);
/* Print the functions array as a table; 0. */
int poolctl_print_functions(const cJSON *list);
