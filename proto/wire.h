/* wire.h - messages between the supervisor and its workers (over nanomsg, no I/O here) */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define WIRE_MAGIC 0x31504f50u /* "POP1" little-endian */
#define WIRE_HDR_SIZE 64
#define WIRE_NO_ERROR UINT32_MAX

enum wire_type {
	WIRE_TASK = 1,    /* supervisor -> worker: run fn over the items of payload */
	WIRE_WELCOME = 2, /* supervisor -> worker: your hello arrived */
	WIRE_HELLO = 3,   /* worker -> supervisor: I am up (repeated until welcomed) */
	WIRE_READY = 4,   /* worker -> supervisor: welcome received, send tasks */
	WIRE_RESULT = 5,  /* worker -> supervisor: results of one task */
	/* Between a supervisor and its host agents (sealed, see seal.h and PROTOCOL.md). */
	WIRE_JOIN = 6,   /* host -> supervisor: count workers, fn its task endpoint, payload JSON */
	WIRE_ACCEPT = 7, /* supervisor -> host: joined as slot, generation gen */
	WIRE_REFUSE = 8, /* supervisor -> host: not joined, payload says why */
	WIRE_BEAT = 9,   /* both ways: alive; from a host, payload = ids of tasks it holds (u64) */
	WIRE_LOST = 10,  /* host -> supervisor: task_id was lost; flags charge, attempt code */
};

enum wire_flags {
	WIRE_STAR = 1,      /* task: each item is an argument list */
	WIRE_FAIL_FAST = 2, /* task: stop at the first failing item */
	WIRE_APPLY = 4,     /* task: one item which is the argument list */
};

/*
 * One message: a fixed little-endian header, then fn (fn_len bytes), then
 * n_errors u32 item indices (results only), then the payload. A task's payload
 * is a JSON array of items; a result's payload is the items' results as JSON
 * values joined by ',' (a failed item stands as {"error":{...}}).
 */
struct wire_msg {
	uint16_t type;
	uint16_t flags;
	uint32_t slot;
	uint32_t gen;
	uint32_t pid;
	uint32_t count;       /* task: items; result: items answered */
	uint32_t first_error; /* result: index of the first failed item, or WIRE_NO_ERROR */
	uint64_t task_id;
	uint32_t attempt;    /* task: 0 on an item's first try */
	uint64_t busy_ns;    /* result: time the worker spent running the items */
	uint32_t timeout_ms; /* task: per-item timeout, 0 = none (a host agent enforces it) */
	uint32_t budget_ms;  /* task: how long the whole chunk may run (see ledger.h) */
	const char *fn;
	size_t fn_len;
	uint32_t n_errors;
	const unsigned char *errors; /* n_errors little-endian u32 */
	const char *payload;
	size_t payload_len;
};

/* Serialise m into b (b is reset first). Returns 0 or -ENOMEM. */
int wire_encode(struct buf *b, const struct wire_msg *m);
/* Header + fn + error list, for callers that add the payload themselves. */
int wire_encode_head(struct buf *b, const struct wire_msg *m);
/* Parse a received message; pointers refer into data. Returns 0 or -EBADMSG. */
int wire_decode(const void *data, size_t len, struct wire_msg *m);
/* Error index i of a decoded result. */
uint32_t wire_error_at(const struct wire_msg *m, uint32_t i);
