/* reply.h - writing a request's answers: whole maps, stream parts, failures */
#pragma once

#include <stdint.h>

#include "buf.h"
#include "proto.h"

struct request;
struct task;

/* A stream part being written: {"id":..,"ok":true,"index":I,"results":[...]}. */
struct reply_part {
	int open;
	int first;         /* no value written yet */
	struct buf failed; /* collect mode: ",I,J" of the failed items */
};

/* Write the whole reply of a map or apply whose items are all answered. */
void reply_map(struct request *r);
/*
 * Fail r with the error of task t's item t->first_error, as Pool.map raises;
 * returns that error's code.
 */
enum proto_code reply_failure(struct request *r, struct task *t);
/* Start a part whose first item has index first. */
void reply_part_begin(struct reply_part *p, struct request *r, uint64_t first);
/* Add the first k answers of t (all of them moves the answer without copying). */
void reply_part_add(struct reply_part *p, struct request *r, struct task *t, uint32_t k);
void reply_part_end(struct reply_part *p, struct request *r);
/* The last line of a stream: {"id":..,"ok":true,"done":true,"items":N,"failed":K}. */
void reply_done(struct request *r);
