/* conn.h - one client connection: line framing, ops, backpressure */
#pragma once

#include <event2/event.h>
#include <sys/types.h>

#include "proto.h"

struct conn;
struct request_list;

/* Take over an accepted socket (its peer's uid already checked). */
void conn_new(evutil_socket_t fd);
/*
 * Take over an accepted TCP socket of a remote client at address peer: over
 * the TLS session t (taken; its handshake runs before any line is read), or
 * plain when t is NULL (a loopback tcp:// listener).
 */
struct tls;
void conn_new_remote(evutil_socket_t fd, struct tls *t, const char *peer);
/* The list of requests in flight on c. */
struct request_list *conn_requests(struct conn *c);
struct evbuffer *conn_output(struct conn *c);
/*
 * The memory budget (--max-memory, 0 = 256 MiB): bytes buffered for clients
 * in all, input and output buffers (counted by conn.c itself) and what
 * requests hold (their text and results, counted through conn_mem).
 */
size_t conn_max_memory(void);
/* A request of c holds delta more bytes (negative: releases them). */
void conn_mem(struct conn *c, ssize_t delta);
/* 1 while streams must not take more: over --max-memory or --max-pending-items. */
int conn_over_budget(void);
/* Append the connections' fields of the status object: ,"memory":N,... */
void conn_status(struct buf *b);
/* Send an error reply line. */
void conn_send_error(struct conn *c, struct json_span id, const struct proto_error *err);
/* Bookkeeping hooks called by request.c. */
struct request;
void conn_request_added(struct conn *c, struct request *r);
void conn_request_removed(struct conn *c, struct request *r);
void conn_reply_sent(struct conn *c);
/* A stream went over (+1) or back under (-1) its window: stop or resume reading. */
void conn_block(struct conn *c, int delta);
/* Answer every request in flight with an error. */
void conn_abort_all(enum proto_code code, const char *why);
/* Graceful stop: answer no more requests, close every connection once flushed. */
void conn_close_all_flushed(void);
