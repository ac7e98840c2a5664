/* proto.h - the client protocol: request parsing and reply encoding (no I/O) */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "json.h"

/* Bumped when a change could break an existing client; see PROTOCOL.md. */
#define PROTO_VERSION 1

/* The fixed list of error codes; proto_code_name() gives the wire name. */
enum proto_code {
	PROTO_OK = 0,
	PROTO_PARSE_ERROR,      /* the line is not one valid JSON object */
	PROTO_INVALID_REQUEST,  /* a field is missing, unknown or of the wrong type/range */
	PROTO_UNKNOWN_OP,       /* "op" names no operation */
	PROTO_UNKNOWN_FUNCTION, /* "fn" names no registered function */
	PROTO_BAD_ARITY,        /* wrong number of arguments for the function */
	PROTO_TOO_LARGE,        /* a line, item count or message over a limit */
	PROTO_BUSY,             /* the daemon or this connection is at a limit; retry later */
	PROTO_SHUTTING_DOWN,    /* the daemon is stopping */
	PROTO_DUPLICATE_ID,     /* the id is already in flight on this connection */
	PROTO_NOT_FOUND,        /* cancel: no such request in flight */
	PROTO_CANCELLED,        /* the request was cancelled */
	PROTO_FORBIDDEN,        /* the peer's uid may not use this daemon */
	PROTO_FUNCTION_ERROR,   /* item: the function raised an error */
	PROTO_TYPE_ERROR,       /* item: an argument of the wrong type */
	PROTO_OUT_OF_RANGE,     /* item: an integer argument or result beyond 2^53 */
	PROTO_WORKER_DIED,      /* item: the worker died on every attempt */
	PROTO_TIMEOUT,          /* item: ran past timeout_ms on every attempt */
	PROTO_RESULT_TOO_LARGE, /* item: the result does not fit in a message */
	PROTO_INTERNAL,         /* a bug or resource exhaustion in the daemon */
	PROTO_CODE_MAX
};

enum proto_op {
	OP_MAP,
	OP_APPLY,
	OP_PING,
	OP_STATUS,
	OP_FUNCTIONS,
	OP_CANCEL,
	OP_FEED, /* more items for a stream */
	OP_END,  /* a stream's last items were fed */
	OP_METRICS,
};

enum proto_on_error {
	ON_ERROR_FAIL,
	ON_ERROR_COLLECT,
};

/* Limits a parsed request must respect (daemon options). */
struct proto_limits {
	size_t max_items;
	uint32_t max_timeout_ms;
	uint32_t default_timeout_ms;
	const struct json_index *args; /* where args lies, when known (json_scan_index), or NULL */
};

/*
 * A parsed request. Spans point into the caller's line, which must outlive
 * the request. Items are counted and checked, not stored: the daemon cuts
 * them out of args when it needs them.
 */
struct proto_request {
	struct json_span id; /* raw JSON (integer or string); len 0 when absent */
	enum proto_op op;
	char fn[64];
	struct json_span args; /* the args array */
	int has_args;
	int star;
	int stream;      /* map: items come in later feed lines */
	int ordered;     /* stream: results in item order (default) */
	uint32_t window; /* stream: most items held at once */
	int end;         /* feed: the stream's last items */
	enum proto_on_error on_error;
	uint32_t chunksize; /* 0 = automatic */
	uint32_t retries;
	uint32_t timeout_ms; /* 0 = none */
	int has_retries;     /* retries and timeout_ms were given (not defaults) */
	int has_timeout;
	struct json_span target; /* cancel: the id to cancel */
	size_t n_items;          /* map, feed: elements of args */
	size_t line_len;         /* the line's length (set by the daemon, for its budget) */
};

struct proto_error {
	enum proto_code code;
	char message[200];
	long index; /* item index the error is about, -1 if none */
};

#define PROTO_MAX_ID_LEN 128
#define PROTO_MAX_RETRIES 100
#define PROTO_MAX_CHUNKSIZE 1000000
#define PROTO_DEFAULT_WINDOW 65536
#define PROTO_MAX_WINDOW 1000000

/*
 * Parse one request line (without its newline). Returns 0, or a negative
 * errno with *err filled; req->id is set whenever the line had a usable id so
 * the error reply can carry it. The arity of fn is not checked here.
 */
int proto_parse_request(const char *line, size_t len, const struct proto_limits *lim,
                        struct proto_request *req, struct proto_error *err);
/*
 * The same for a line already validated (by json_scan as it arrived): v is
 * its one JSON value. Spans point into v's text.
 */
int proto_parse_value(struct json_span v, const struct proto_limits *lim, struct proto_request *req,
                      struct proto_error *err);
/* Set err to the parse_error for malformed JSON at byte off (what: the scanner's message). */
int proto_error_malformed(struct proto_error *err, size_t off, const char *what);

const char *proto_code_name(enum proto_code code);
const char *proto_op_name(enum proto_op op);
/* Set err (printf-style message), return -EINVAL for chaining. */
int proto_error_set(struct proto_error *err, enum proto_code code, long index, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Append `{"id":ID,"ok":true` (the caller adds fields and closes with "}\n"). */
int proto_reply_ok_begin(struct buf *b, struct json_span id);
/* Append a whole error reply line, newline included. */
int proto_reply_error(struct buf *b, struct json_span id, const struct proto_error *err);
/* Append `{"code":..,"message":..[,"index":..]}`. */
int proto_error_object(struct buf *b, const struct proto_error *err);
