/* test_corpus.c - run the bad-input corpus (tests/data/bad) through the request parser */
#include "proto.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

#define MAX_ENTRIES 1000

struct entry {
	char name[128];
	char code[32];
	int seen; /* the file exists in the directory */
};

static const struct proto_limits limits = {
    .max_items = 10000000,
    .max_timeout_ms = 86400000,
    .default_timeout_ms = 0,
};

/* Read the whole file at path into a malloc'd buffer; NULL on error. */
static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t cap = 0, n = 0;

	if (!f)
		return NULL;
	for (;;) {
		size_t got;

		if (cap - n < 4096) {
			char *p = realloc(data, cap + 65536);

			if (!p) {
				free(data);
				fclose(f);
				return NULL;
			}
			data = p;
			cap += 65536;
		}
		got = fread(data + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(data);
		data = NULL;
	}
	fclose(f);
	*len = n;
	return data;
}

/* Parse dir/EXPECT into e[]; returns the number of entries or -1. */
static int read_expect(const char *dir, struct entry *e, int max)
{
	char path[4096], line[512];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/EXPECT", dir);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char name[128], code[32], extra[2];
		int k;

		if (line[0] == '#' || strspn(line, " \t\r\n") == strlen(line))
			continue;
		k = sscanf(line, "%127s %31s %1s", name, code, extra);
		if (k != 2 || n >= max) {
			check_fail(__FILE__, __LINE__, "bad EXPECT line: %s", line);
			continue;
		}
		snprintf(e[n].name, sizeof(e[n].name), "%s", name);
		snprintf(e[n].code, sizeof(e[n].code), "%s", code);
		e[n].seen = 0;
		n++;
	}
	fclose(f);
	return n;
}

/* The code name must be one of the contract's fixed list. */
static int known_code(const char *code)
{
	int i;

	for (i = 1; i < PROTO_CODE_MAX; i++)
		if (strcmp(proto_code_name((enum proto_code)i), code) == 0)
			return 1;
	return 0;
}

/* Run one corpus file through the parser and compare with its expected code. */
static void run_entry(const char *dir, const struct entry *e)
{
	struct proto_request req;
	struct proto_error err;
	struct buf reply = {0};
	char path[4096];
	size_t len;
	char *data;
	int r, daemon_check;

	snprintf(path, sizeof(path), "%s/%s", dir, e->name);
	data = read_file(path, &len);
	check_count++;
	if (!data) {
		check_fail(__FILE__, __LINE__, "%s: cannot read: %s", e->name, strerror(errno));
		return;
	}
	/* one request line each: no newline but (usually) the last byte */
	if (len == 0 || memchr(data, '\n', len - 1))
		check_fail(__FILE__, __LINE__, "%s: not exactly one line", e->name);
	if (len && data[len - 1] == '\n')
		len--;
	CHECK(known_code(e->code));
	daemon_check = !strcmp(e->code, "unknown_function") || !strcmp(e->code, "bad_arity");
	r = proto_parse_request(data, len, &limits, &req, &err);
	if (daemon_check) {
		if (r != 0)
			check_fail(__FILE__, __LINE__,
			           "%s: expected to parse (the daemon says %s), "
			           "got %s: %s",
			           e->name, e->code, proto_code_name(err.code), err.message);
	} else if (r == 0) {
		check_fail(__FILE__, __LINE__, "%s: parsed, expected %s", e->name, e->code);
	} else {
		struct json_span v;
		const char *msg;
		size_t off;

		if (strcmp(proto_code_name(err.code), e->code) != 0)
			check_fail(__FILE__, __LINE__, "%s: got %s (%s), expected %s", e->name,
			           proto_code_name(err.code), err.message, e->code);
		proto_reply_error(&reply, req.id, &err);
		if (json_validate(reply.data, reply.data + reply.len - 1, &v, &msg, &off) != 0)
			check_fail(__FILE__, __LINE__, "%s: error reply is not JSON: %s", e->name,
			           reply.data);
	}
	buf_free(&reply);
	free(data);
}

/* Check every corpus file of argv[1] against EXPECT, and that both list the same files. */
int main(int argc, char **argv)
{
	static struct entry e[MAX_ENTRIES];
	struct dirent *de;
	DIR *d;
	int n, i, daemon_checks = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	n = read_expect(argv[1], e, MAX_ENTRIES);
	if (n < 0)
		return 1;
	CHECK(n >= 45);
	for (i = 0; i < n; i++) {
		int j;

		for (j = 0; j < i; j++)
			if (!strcmp(e[i].name, e[j].name))
				check_fail(__FILE__, __LINE__, "%s listed twice in EXPECT",
				           e[i].name);
		if (!strcmp(e[i].code, "unknown_function") || !strcmp(e[i].code, "bad_arity"))
			daemon_checks++;
		run_entry(argv[1], &e[i]);
	}
	/* every file in the directory is listed */
	d = opendir(argv[1]);
	CHECK(d != NULL);
	while (d && (de = readdir(d))) {
		int found = 0;

		if (de->d_name[0] == '.' || !strcmp(de->d_name, "EXPECT") ||
		    !strcmp(de->d_name, "README"))
			continue;
		for (i = 0; i < n; i++)
			if (!strcmp(e[i].name, de->d_name)) {
				e[i].seen = 1;
				found = 1;
			}
		if (!found)
			check_fail(__FILE__, __LINE__, "%s is not listed in EXPECT", de->d_name);
	}
	if (d)
		closedir(d);
	for (i = 0; i < n; i++)
		if (!e[i].seen)
			check_fail(__FILE__, __LINE__, "%s is in EXPECT but not a file", e[i].name);
	fprintf(stderr, "test_corpus: %d files, %d checked by the daemon only\n", n, daemon_checks);
	return check_exit("test_corpus");
}
