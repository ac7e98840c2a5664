/* hosts.h - the supervisor's side of worker hosts: joins, heartbeats and results over sealed tcp */
#pragma once

#include <nanomsg/nn.h>
#include <stddef.h>

#include "buf.h"
#include "conf.h"

struct host;

/*
 * Listen for host agents at sv.opt.hosts (nothing when unset): one shared
 * nanomsg PULL for every host's joins, heartbeats and results, the cluster
 * key from sv.opt.cluster_key. After pool_init. Returns 0 or -1 after logging.
 */
int hosts_init(void);
/* Close every host's socket and the listener. */
void hosts_free(void);
/* 0 while h's socket is full (a send waits for room), else 1. */
int hosts_can_send(const struct host *h);
/* Seal the message iov[0..n) (a task) and send it to h. 0, or -EAGAIN. */
int hosts_send_task(struct host *h, const struct nn_iovec *iov, int n);
/* Append ,"hosts":[...] to the status object. */
void hosts_status(struct buf *b);
/*
 * The hash of a function table that supervisor and hosts compare on join:
 * BLAKE2b-128 of conf_json's text, as 32 hex digits and a NUL.
 */
int hosts_conf_hash(const struct conf *c, char out[33]);
