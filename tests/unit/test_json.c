/* test_json.c - unit tests for the JSON scanner (proto/json.c) */
#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Validate n bytes; returns json_validate's result and fills *v / *off. */
static int validate_n(const char *s, size_t n, struct json_span *v, size_t *off)
{
	const char *msg = NULL;
	size_t o = 12345;
	struct json_span tmp;
	int r = json_validate(s, s + n, v ? v : &tmp, &msg, &o);

	if (r < 0 && (!msg || !*msg))
		return -1000; /* an error must always come with a message */
	if (off)
		*off = o;
	return r;
}

/* Check that the string s (n bytes) is accepted as one JSON value. */
static void expect_valid(const char *file, int line, const char *s, size_t n)
{
	check_count++;
	if (validate_n(s, n, NULL, NULL) != 0) {
		check_fail(file, line, "rejected valid JSON");
		check_print_bytes("input", s, n);
	}
}

/* Check that the string s (n bytes) is rejected with -EINVAL. */
static void expect_invalid(const char *file, int line, const char *s, size_t n)
{
	check_count++;
	if (validate_n(s, n, NULL, NULL) != -EINVAL) {
		check_fail(file, line, "accepted invalid JSON (or no error message)");
		check_print_bytes("input", s, n);
	}
}

#define VALID(s) expect_valid(__FILE__, __LINE__, (s), strlen(s))
#define INVALID(s) expect_invalid(__FILE__, __LINE__, (s), strlen(s))
/* For literals holding NUL bytes: the size of the literal without its terminator. */
#define VALID_LIT(s) expect_valid(__FILE__, __LINE__, (s), sizeof(s) - 1)
#define INVALID_LIT(s) expect_invalid(__FILE__, __LINE__, (s), sizeof(s) - 1)

/* A span over a NUL-terminated string. */
static struct json_span span(const char *s)
{
	struct json_span v = {s, strlen(s)};

	return v;
}

/* The number grammar: accepted and rejected literals. */
static void test_numbers(void)
{
	static const char *const good[] = {
	    "0",        "-0",       "1",
	    "-1",       "123",      "1234567890",
	    "0.5",      "-0.5",     "10.25",
	    "1e5",      "1E5",      "1e+5",
	    "1e-5",     "1.5e10",   "0e0",
	    "-0.0e-0",  "0.0",      "1E+0",
	    "1e0001",   "-12.5E-3", "99999999999999999999",
	    "1e400",    "-1e400",   "1e-400",
	    "0.000001", "3.14159",
	};
	static const char *const bad[] = {
	    "-",    "+1",       "01",        "-01",  "00",       "1.",   ".5",   "-.5",
	    "1e",   "1e+",      "1E-",       "1.e5", "0x10",     "0X1",  "1f",   "NaN",
	    "nan",  "Infinity", "-Infinity", "inf",  "--1",      "1-",   "1..2", "1e5.0",
	    "1ee5", "1e+-5",    "- 1",       "1 2",  "\xd9\xa1", "0.e1", ".",    "e5",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		VALID(good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		INVALID(bad[i]);
	/* a long digit string is still grammatical */
	{
		char big[5001];

		memset(big, '7', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		VALID(big);
	}
}

/* Literals, arrays, objects, whitespace and trailing garbage. */
static void test_literals_and_structure(void)
{
	static const char *const good[] = {
	    "true",
	    "false",
	    "null",
	    "\"\"",
	    "\"abc\"",
	    "[]",
	    "{}",
	    "[ ]",
	    "{ }",
	    "[1,2,3]",
	    "{\"a\":1}",
	    "{\"a\":1,\"b\":[true,false,null],\"c\":{\"d\":\"e\"}}",
	    " [ 1 , { \"a\" : [ ] } ] ",
	    "\t\r\n 1 \n",
	    "[[],[[]],{}]",
	    "{\"\":\"\"}",
	    "{\"a\":1,\"a\":2}", /* duplicate keys are grammatical */
	    "[\"]\",\"}\",\"[\",\"{\",\",\",\":\"]",
	};
	static const char *const bad[] = {
	    "",
	    " ",
	    "\n",
	    "\t \r\n",
	    "tru",
	    "nul",
	    "fals",
	    "True",
	    "NULL",
	    "nulll",
	    "truefalse",
	    "[",
	    "]",
	    "{",
	    "}",
	    "[1,]",
	    "[,1]",
	    "[1 2]",
	    "[,]",
	    "{\"a\"}",
	    "{\"a\":}",
	    "{\"a\" 1}",
	    "{a:1}",
	    "{'a':1}",
	    "'a'",
	    "{\"a\":1,}",
	    "{,}",
	    "[}",
	    "{]",
	    "[1}",
	    "{\"a\":1]",
	    "[1]]",
	    "[[1]",
	    "{\"a\":1}}",
	    "{1:1}",
	    "{null:1}",
	    "[1]x",
	    "{} {}",
	    "1 /* c */",
	    "// c\n1",
	    "[1,,2]",
	    "{\"a\"::1}",
	    "{\"a\":1 \"b\":2}",
	    "\f1",
	    "\v1",
	    "1\f",
	    "[1]\xc2\xa0",
	    "\xef\xbb\xbf{}",
	    "[\"a\" \"b\"]",
	    "{\"a\":1,\"b\"}",
	    "{\"a\",1}",
	    "[:]",
	    "{:1}",
	    "[true false]",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		VALID(good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		INVALID(bad[i]);
}

/* Escapes, UTF-8 validity, control characters and NUL bytes. */
static void test_strings(void)
{
	/* escapes */
	VALID("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
	VALID("\"\\u0041\"");
	VALID("\"\\u00e9\\u00E9\"");
	VALID("\"\\uD83D\\uDE00\"");
	VALID("\"\\uDEAD\"");        /* a lone surrogate escape is grammatical */
	VALID("\"\\uD800\\u0041\""); /* so is an unpaired high one */
	VALID("\"\\uabcdEF01\"");
	VALID("\"\\u0000\"");
	INVALID("\"\\x41\"");
	INVALID("\"\\u12\"");
	INVALID("\"\\u12g4\"");
	INVALID("\"\\u\"");
	INVALID("\"\\U0041\"");
	INVALID("\"\\'\"");
	INVALID("\"\\a\"");
	INVALID("\"\\0\"");
	INVALID("\"\\");
	INVALID("\"\\\"");
	INVALID("\"\\u004");
	INVALID("\"\\u0041");
	INVALID_LIT("\"\\\0\"");
	INVALID("\"abc");
	INVALID("\"");
	INVALID("'abc'");
	INVALID("[\"abc]");

	/* valid UTF-8, at every length boundary */
	VALID("\"\xc2\x80\"");         /* U+0080 */
	VALID("\"\xc3\xa9\"");         /* U+00E9 */
	VALID("\"\xdf\xbf\"");         /* U+07FF */
	VALID("\"\xe0\xa0\x80\"");     /* U+0800 */
	VALID("\"\xe2\x82\xac\"");     /* U+20AC */
	VALID("\"\xed\x9f\xbf\"");     /* U+D7FF */
	VALID("\"\xee\x80\x80\"");     /* U+E000 */
	VALID("\"\xef\xbf\xbf\"");     /* U+FFFF */
	VALID("\"\xf0\x90\x80\x80\""); /* U+10000 */
	VALID("\"\xf0\x9f\x98\x80\""); /* U+1F600 */
	VALID("\"\xf4\x8f\xbf\xbf\""); /* U+10FFFF */
	VALID("\"\x7f\"");             /* DEL is not a control character in JSON */
	VALID("{\"\xc3\xa9\":\"\xe2\x82\xac\"}");

	/* invalid UTF-8 */
	INVALID("\"\x80\""); /* lone continuation */
	INVALID("\"\xbf\"");
	INVALID("\"a\x80z\"");
	INVALID("\"\xc0\x80\"");                 /* overlong NUL */
	INVALID("\"\xc0\xaf\"");                 /* overlong '/' */
	INVALID("\"\xc1\xbf\"");                 /* overlong U+007F */
	INVALID("\"\xe0\x80\x80\"");             /* overlong 3-byte */
	INVALID("\"\xe0\x9f\xbf\"");             /* overlong U+07FF */
	INVALID("\"\xf0\x80\x80\x80\"");         /* overlong 4-byte */
	INVALID("\"\xf0\x8f\xbf\xbf\"");         /* overlong U+FFFF */
	INVALID("\"\xed\xa0\x80\"");             /* U+D800 */
	INVALID("\"\xed\xbf\xbf\"");             /* U+DFFF */
	INVALID("\"\xed\xa0\xbd\xed\xb8\x80\""); /* CESU-8 surrogate pair */
	INVALID("\"\xf4\x90\x80\x80\"");         /* U+110000 */
	INVALID("\"\xf5\x80\x80\x80\"");
	INVALID("\"\xf7\xbf\xbf\xbf\"");
	INVALID("\"\xf8\x88\x80\x80\x80\""); /* 5-byte form */
	INVALID("\"\xfc\x84\x80\x80\x80\x80\"");
	INVALID("\"\xfe\"");
	INVALID("\"\xff\"");
	INVALID("\"\xc3\""); /* truncated before the quote */
	INVALID("\"\xe2\x82\"");
	INVALID("\"\xf0\x9f\x98\"");
	INVALID("\"\xc3"); /* truncated at the end of input */
	INVALID("\"\xe2\x82");
	INVALID("\"\xf0\x9f\x98");
	INVALID("\"\xc3\x28\""); /* bad continuation bytes */
	INVALID("\"\xe2\x28\xa1\"");
	INVALID("\"\xe2\x82\x28\"");
	INVALID("\"\xf0\x28\x8c\xbc\"");
	INVALID("\"\xf0\x90\x28\xbc\"");
	INVALID("\"\xf0\x90\x8c\x28\"");
	INVALID("\xc3\xa9"); /* non-ASCII outside a string */
	INVALID("[\xff]");
	INVALID("{\"a\xff\":1}"); /* in a key */

	/* control characters must be escaped */
	{
		char s[4] = {'"', 0, '"', 0};
		int c;

		for (c = 1; c < 0x20; c++) {
			s[1] = (char)c;
			INVALID(s);
		}
	}
	/* NUL bytes, inside and outside strings */
	INVALID_LIT("\"a\0b\"");
	INVALID_LIT("\"\0\"");
	INVALID_LIT("\0");
	INVALID_LIT("[1,\0 2]");
	INVALID_LIT("1\0");
	INVALID_LIT("{\"a\":1}\0");
	INVALID_LIT("\0{\"a\":1}");
	INVALID_LIT("{\"a\0\":1}");
	INVALID_LIT("tr\0ue");
	/* the scanner stops at end, not at a NUL: a valid value followed by NUL outside [p,end) */
	{
		static const char s[] = "[1]\0garbage";

		expect_valid(__FILE__, __LINE__, s, 3);
	}
}

/* Build "[[[...]]]" (or objects when obj) with depth levels; the caller frees. */
static char *nest(int depth, int obj, int closed)
{
	char *s = malloc((size_t)depth * 6 + 8);
	char *p = s;
	int i;

	for (i = 0; i < depth; i++) {
		if (obj) {
			memcpy(p, "{\"a\":", 5);
			p += 5;
		} else {
			*p++ = '[';
		}
	}
	if (obj)
		*p++ = '1';
	for (i = 0; closed && i < depth; i++)
		*p++ = obj ? '}' : ']';
	*p = '\0';
	return s;
}

/* Nesting at, just beyond and far beyond JSON_MAX_DEPTH. */
static void test_depth(void)
{
	static const int depths[] = {1, 2, 255, JSON_MAX_DEPTH};
	struct json_span v;
	const char *msg;
	size_t off, i;
	char *s;

	for (i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		s = nest(depths[i], 0, 1);
		VALID(s);
		free(s);
		s = nest(depths[i], 1, 1);
		VALID(s);
		free(s);
		s = nest(depths[i], 0, 0);
		INVALID(s);
		free(s);
	}
	s = nest(JSON_MAX_DEPTH + 1, 0, 1);
	INVALID(s);
	CHECK(json_validate(s, s + strlen(s), &v, &msg, &off) == -EINVAL);
	CHECK(strstr(msg, "deep") != NULL);
	CHECK_INT(off, JSON_MAX_DEPTH);
	free(s);
	s = nest(JSON_MAX_DEPTH + 1, 1, 1);
	INVALID(s);
	free(s);
	/* 10,000 deep, closed and unclosed, arrays and objects */
	s = nest(10000, 0, 1);
	INVALID(s);
	CHECK(json_validate(s, s + strlen(s), &v, &msg, &off) == -EINVAL);
	CHECK(strstr(msg, "deep") != NULL);
	free(s);
	s = nest(10000, 0, 0);
	INVALID(s);
	free(s);
	s = nest(10000, 1, 1);
	INVALID(s);
	free(s);
	/* depth is about nesting, not the number of containers */
	{
		size_t n = 20000 * 3 + 3, k;
		char *w = malloc(n), *p = w;

		*p++ = '[';
		for (k = 0; k < 20000; k++) {
			memcpy(p, k ? ",[]" : "[] ", 3);
			p += 3;
		}
		*p++ = ']';
		*p = '\0';
		VALID(w);
		free(w);
	}
	/* depth 256 inside an object inside an array: 258 levels */
	{
		char *inner = nest(JSON_MAX_DEPTH, 0, 1);
		size_t n = strlen(inner) + 16;
		char *w = malloc(n);

		snprintf(w, n, "[{\"k\":%s}]", inner);
		INVALID(w);
		free(w);
		free(inner);
	}
}

/* The value span and the error offsets json_validate reports. */
static void test_validate_details(void)
{
	struct json_span v;
	size_t off;
	const char *s;

	s = "  {\"a\":1}  \n";
	CHECK(validate_n(s, strlen(s), &v, &off) == 0);
	CHECK_MEM(v.p, v.len, "{\"a\":1}");
	CHECK(v.p == s + 2);
	s = " 42 ";
	CHECK(validate_n(s, strlen(s), &v, &off) == 0);
	CHECK_MEM(v.p, v.len, "42");
	s = "\"x\"";
	CHECK(validate_n(s, strlen(s), &v, &off) == 0);
	CHECK_MEM(v.p, v.len, "\"x\"");
	/* error offsets where the scanner knows them */
	s = "[1,]";
	CHECK(validate_n(s, strlen(s), &v, &off) == -EINVAL);
	CHECK_INT(off, 3);
	s = "[1 2]";
	CHECK(validate_n(s, strlen(s), &v, &off) == -EINVAL);
	CHECK_INT(off, 3);
	s = "1 2";
	CHECK(validate_n(s, strlen(s), &v, &off) == -EINVAL);
	CHECK_INT(off, 2);
	s = "{\"a\" 1}";
	CHECK(validate_n(s, strlen(s), &v, &off) == -EINVAL);
	CHECK_INT(off, 5);
	s = "[1,";
	CHECK(validate_n(s, strlen(s), &v, &off) == -EINVAL);
	CHECK_INT(off, 3);
	s = "";
	CHECK(validate_n(s, 0, &v, &off) == -EINVAL);
	CHECK_INT(off, 0);
}

/* Errors inside literals, numbers and strings name the byte at fault (issue 9 item 10). */
static void test_error_offsets(void)
{
	static const struct {
		const char *s;
		size_t off;
		const char *msg;
	} cases[] = {
	    {"[tru]", 4, "bad literal (true, false or null)"},
	    {"[nul", 4, "unexpected end of input"},
	    {"[1.]", 3, "bad number"},
	    {"[1e]", 3, "bad number"},
	    {"[1e+]", 4, "bad number"},
	    {"-}", 1, "bad number"},
	    {"[-", 2, "bad number"},
	    {"[01]", 2, "expected ',' or ']'"},
	    {"[\"\\x\"]", 3, "bad escape in string"},
	    {"[\"ab\\u12g4\"]", 8, "bad \\u escape"},
	    {"[\"\xc3\x28\"]", 3, "invalid UTF-8 in string"},
	    {"[\"\xed\xa0\x80\"]", 3, "invalid UTF-8 in string"},
	    {"[\"\xff\"]", 2, "invalid UTF-8 in string"},
	    {"[\"a\tb\"]", 3, "control character in string"},
	    {"\"abc", 4, "unterminated string"},
	    {"{\"a\":1,2}", 7, "expected a string key"},
	    {"[1] x", 4, "trailing characters after the value"},
	};
	size_t i, off;
	const char *msg;
	struct json_span v;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		msg = NULL;
		check_count++;
		if (json_validate(cases[i].s, cases[i].s + strlen(cases[i].s), &v, &msg, &off) !=
		        -EINVAL ||
		    off != cases[i].off || !msg || strcmp(msg, cases[i].msg) != 0)
			check_fail(__FILE__, __LINE__, "%s: got byte %zu '%s', want byte %zu '%s'",
			           cases[i].s, off, msg ? msg : "(none)", cases[i].off,
			           cases[i].msg);
	}
}

/* Feed s in slices cut at cuts[0..n): the result must equal json_validate's. */
static void check_sliced(const char *s, const size_t *cuts, size_t n)
{
	struct json_scan sc;
	struct json_span v = {NULL, 0};
	const char *msg = NULL;
	size_t len = strlen(s), off = 0, at = 0, i;
	int want = json_validate(s, s + len, &v, &msg, &off), got = 0;

	json_scan_init(&sc);
	for (i = 0; i <= n && got == 0; i++) {
		size_t to = i < n ? cuts[i] : len;

		got = json_scan_feed(&sc, s + at, to - at);
		at = to;
	}
	if (got == 0)
		got = json_scan_end(&sc);
	check_count++;
	if (got != want ||
	    (got == 0 && (sc.vstart != (size_t)(v.p - s) || sc.vend - sc.vstart != v.len)) ||
	    (got < 0 && (sc.erroff != off || strcmp(sc.err, msg) != 0)))
		check_fail(__FILE__, __LINE__,
		           "%s cut at %zu (%zu cuts): %d at %zu '%s', whole: %d "
		           "at %zu '%s'",
		           s, n ? cuts[0] : 0, n, got, sc.erroff, sc.err ? sc.err : "", want, off,
		           msg ? msg : "");
}

/* json_scan fed in any slices gives json_validate's answer, error offsets included. */
static void test_scan_slices(void)
{
	static const char *const inputs[] = {
	    " {\"a\":[1,-2.5e+3,true,false,null],\"b\":{\"c\":\"\\u00e9\\n\\\"\"}} ",
	    "[\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\",0,-0.0E-1,{}, [ ] ]",
	    "\"plain\"",
	    "12345",
	    "-0",
	    "[tru]",
	    "[1.]",
	    "[\"\\x\"]",
	    "[\"\xe2\x82\"]",
	    "{\"a\" 1}",
	    "[1,",
	    "[1] 2",
	    "{\"k\":\"v\",}",
	    "nul",
	    "[\"\\ud83d\\ude00\"]",
	};
	size_t i, a, b, len;

	for (i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		size_t *every;

		len = strlen(inputs[i]);
		for (a = 0; a <= len; a++) {
			check_sliced(inputs[i], &a, 1);
			for (b = a; b <= len; b += 3) {
				size_t two[2] = {a, b};

				check_sliced(inputs[i], two, 2);
			}
		}
		every = malloc(len * sizeof(*every));
		for (a = 0; a < len; a++)
			every[a] = a + 1;
		check_sliced(inputs[i], every, len); /* byte by byte */
		free(every);
	}
}

/* json_type for each kind of value. */
static void test_types(void)
{
	CHECK_INT(json_type(span("null")), JSON_NULL);
	CHECK_INT(json_type(span("true")), JSON_TRUE);
	CHECK_INT(json_type(span("false")), JSON_FALSE);
	CHECK_INT(json_type(span("0")), JSON_NUMBER);
	CHECK_INT(json_type(span("-1.5")), JSON_NUMBER);
	CHECK_INT(json_type(span("\"s\"")), JSON_STRING);
	CHECK_INT(json_type(span("[1]")), JSON_ARRAY);
	CHECK_INT(json_type(span("{}")), JSON_OBJECT);
}

/* Array iteration: element spans, counts, empty, big and nested arrays. */
static void test_iterate_array(void)
{
	static const char *const want[] = {
	    "1",     "\"a,b]\"", "[2,[3]]", "{\"k\":\"}\"}", "true",
	    "false", "null",     "-1.5e3",  "\"q\\\"]\"",    "[]",
	};
	const char *s = "[1, \"a,b]\" , [2,[3]],{\"k\":\"}\"},true,false , null,-1.5e3\n,"
	                "\"q\\\"]\",[]]";
	struct json_span v, e;
	struct json_iter it;
	size_t i = 0;

	CHECK(validate_n(s, strlen(s), &v, NULL) == 0);
	CHECK_INT(json_array_count(v), 10);
	json_iter_init(&it, v);
	while (json_array_next(&it, &e)) {
		if (i < 10)
			CHECK_MEM(e.p, e.len, want[i]);
		i++;
	}
	CHECK_INT(i, 10);
	CHECK(json_array_next(&it, &e) == 0); /* stays at the end */

	/* empty arrays, with and without whitespace */
	CHECK(validate_n("[]", 2, &v, NULL) == 0);
	CHECK_INT(json_array_count(v), 0);
	json_iter_init(&it, v);
	CHECK(json_array_next(&it, &e) == 0);
	CHECK(validate_n("[ \n ]", 5, &v, NULL) == 0);
	CHECK_INT(json_array_count(v), 0);
	/* a single element with whitespace */
	CHECK(validate_n("[ 7 ]", 5, &v, NULL) == 0);
	json_iter_init(&it, v);
	CHECK(json_array_next(&it, &e) == 1);
	CHECK_MEM(e.p, e.len, "7");
	CHECK(json_array_next(&it, &e) == 0);

	/* a big flat array */
	{
		size_t n = 100000, k;
		char *big = malloc(n * 2 + 2), *p = big;

		*p++ = '[';
		for (k = 0; k < n; k++) {
			*p++ = (char)('0' + k % 10);
			*p++ = k + 1 < n ? ',' : ']';
		}
		*p = '\0';
		CHECK(validate_n(big, strlen(big), &v, NULL) == 0);
		CHECK_INT(json_array_count(v), n);
		free(big);
	}
	/* strings ending in an escaped backslash, brackets and commas inside strings and
	 * nested containers: none of them ends or splits an element */
	s = "[\"a\\\\\",\"\\\\\\\"],{ , [\",[{\"x\":[1,2],\"y\":\",\"}],3 ,\n\"\\u005d\"]";
	CHECK(validate_n(s, strlen(s), &v, NULL) == 0);
	CHECK_INT(json_array_count(v), 5);
	json_iter_init(&it, v);
	CHECK(json_array_next(&it, &e) == 1);
	CHECK_MEM(e.p, e.len, "\"a\\\\\"");
	CHECK(json_array_next(&it, &e) == 1);
	CHECK_MEM(e.p, e.len, "\"\\\\\\\"],{ , [\"");
	CHECK(json_array_next(&it, &e) == 1);
	CHECK_INT(json_array_count(e), 1);
	CHECK(json_array_next(&it, &e) == 1);
	CHECK_MEM(e.p, e.len, "3");
	CHECK(json_array_next(&it, &e) == 1);
	CHECK_MEM(e.p, e.len, "\"\\u005d\"");
	CHECK(json_array_next(&it, &e) == 0);
	/* nested arrays: iterate the inner one from an element span */
	s = "[[10,20],[30]]";
	CHECK(validate_n(s, strlen(s), &v, NULL) == 0);
	json_iter_init(&it, v);
	CHECK(json_array_next(&it, &e) == 1);
	{
		struct json_iter in;
		struct json_span x;

		CHECK_INT(json_array_count(e), 2);
		json_iter_init(&in, e);
		CHECK(json_array_next(&in, &x) == 1);
		CHECK_MEM(x.p, x.len, "10");
		CHECK(json_array_next(&in, &x) == 1);
		CHECK_MEM(x.p, x.len, "20");
		CHECK(json_array_next(&in, &x) == 0);
	}
}

/* Object iteration: key and value spans, whitespace, empty objects. */
static void test_iterate_object(void)
{
	static const char *const keys[] = {"\"a\"", "\"b c\"", "\"q\\\"\"", "\"\"", "\"n\""};
	static const char *const vals[] = {"1", "[1,{\"x\":2}]", "\"v:,}\"", "{}", "null"};
	const char *s =
	    "{ \"a\" : 1 ,\"b c\":[1,{\"x\":2}],\"q\\\"\":\"v:,}\", \"\":{}\n,\"n\" :null }";
	struct json_span v, k, val;
	struct json_iter it;
	size_t i = 0;

	CHECK(validate_n(s, strlen(s), &v, NULL) == 0);
	json_iter_init(&it, v);
	while (json_object_next(&it, &k, &val)) {
		if (i < 5) {
			CHECK_MEM(k.p, k.len, keys[i]);
			CHECK_MEM(val.p, val.len, vals[i]);
		}
		i++;
	}
	CHECK_INT(i, 5);
	CHECK(json_object_next(&it, &k, &val) == 0);

	CHECK(validate_n("{}", 2, &v, NULL) == 0);
	json_iter_init(&it, v);
	CHECK(json_object_next(&it, &k, &val) == 0);
	CHECK(validate_n("{ }", 3, &v, NULL) == 0);
	json_iter_init(&it, v);
	CHECK(json_object_next(&it, &k, &val) == 0);
}

/* json_int: the 2^53 boundary, fractions, exponents and huge digit strings. */
static void test_int(void)
{
	static const struct {
		const char *s;
		int r;
		int64_t v;
	} cases[] = {
	    {"0", 0, 0},
	    {"-0", 0, 0},
	    {"7", 0, 7},
	    {"-7", 0, -7},
	    {"123456789", 0, 123456789},
	    {"9007199254740991", 0, 9007199254740991LL},
	    {"9007199254740992", 0, 9007199254740992LL},
	    {"-9007199254740992", 0, -9007199254740992LL},
	    {"9007199254740993", -ERANGE, 0},
	    {"-9007199254740993", -ERANGE, 0},
	    {"9007199254740999", -ERANGE, 0},
	    {"9007199254741000", -ERANGE, 0},
	    {"9007199254741009", -ERANGE, 0},
	    {"90071992547409920", -ERANGE, 0},
	    {"9223372036854775807", -ERANGE, 0},
	    {"9223372036854775808", -ERANGE, 0},
	    {"-9223372036854775808", -ERANGE, 0},
	    {"18446744073709551616", -ERANGE, 0},
	    {"99999999999999999999", -ERANGE, 0},
	    {"1.0", -EINVAL, 0},
	    {"1.5", -EINVAL, 0},
	    {"-0.0", -EINVAL, 0},
	    {"1e2", -EINVAL, 0},
	    {"1E2", -EINVAL, 0},
	    {"1e400", -EINVAL, 0},
	    {"-1e-2", -EINVAL, 0},
	    {"\"1\"", -EINVAL, 0},
	    {"true", -EINVAL, 0},
	    {"null", -EINVAL, 0},
	    {"[1]", -EINVAL, 0},
	    {"{}", -EINVAL, 0},
	    {"", -EINVAL, 0},
	    {"-", -EINVAL, 0},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = 42;
		int r = json_int(span(cases[i].s), &v);

		check_count++;
		if (r != cases[i].r || (r == 0 && v != cases[i].v))
			check_fail(__FILE__, __LINE__, "json_int(%s) = %d, %lld; expected %d, %lld",
			           cases[i].s, r, (long long)v, cases[i].r, (long long)cases[i].v);
	}
	/* huge digit strings saturate instead of overflowing */
	{
		char big[1001];
		int64_t v;

		memset(big, '9', 1000);
		big[1000] = '\0';
		CHECK_INT(json_int(span(big), &v), -ERANGE);
		big[0] = '-';
		CHECK_INT(json_int(span(big), &v), -ERANGE);
		memset(big, '0', 1000);
		big[999] = '5';
		CHECK_INT(json_int(span(big), &v), 0); /* not JSON, but json_int copes */
		CHECK_INT(v, 5);
	}
	/* every power of ten up to 10^15 and its negation */
	{
		char tmp[32];
		int64_t p = 1, v;
		int k;

		for (k = 0; k <= 15; k++, p *= 10) {
			snprintf(tmp, sizeof(tmp), "%lld", (long long)p);
			CHECK(json_int(span(tmp), &v) == 0 && v == p);
			snprintf(tmp, sizeof(tmp), "%lld", (long long)-p);
			CHECK(json_int(span(tmp), &v) == 0 && v == -p);
		}
		CHECK(json_int(span("10000000000000000"), &v) == -ERANGE);
	}
}

/* json_double: values, overflow, underflow, long literals, non-numbers. */
static void test_double(void)
{
	double d;
	char big[200];

	CHECK(json_double(span("0"), &d) == 0 && d == 0.0 && !signbit(d));
	CHECK(json_double(span("-0"), &d) == 0 && d == 0.0 && signbit(d));
	CHECK(json_double(span("1.5"), &d) == 0 && d == 1.5);
	CHECK(json_double(span("-2.25e2"), &d) == 0 && d == -225.0);
	CHECK(json_double(span("0.1"), &d) == 0 && d == 0.1);
	CHECK(json_double(span("1e300"), &d) == 0 && d == 1e300);
	CHECK(json_double(span("1E-300"), &d) == 0 && d == 1e-300);
	CHECK(json_double(span("5e-324"), &d) == 0 && d > 0 && d < 1e-323);
	CHECK(json_double(span("9007199254740993"), &d) == 0 && d == 9007199254740992.0);
	CHECK(json_double(span("1e-400"), &d) == 0 && d == 0.0);
	{
		int r = json_double(span("1e400"), &d);

		/* overflow: either an infinity or -ERANGE, never a finite value */
		CHECK(r == -ERANGE || (r == 0 && isinf(d) && d > 0));
		r = json_double(span("-1e400"), &d);
		CHECK(r == -ERANGE || (r == 0 && isinf(d) && d < 0));
	}
	/* literals longer than the scanner's stack buffer */
	memset(big, '0', sizeof(big) - 1);
	big[0] = '1';
	big[sizeof(big) - 1] = '\0';
	CHECK(json_double(span(big), &d) == 0 && d == 1e198);
	memcpy(big, "0.", 2);
	memset(big + 2, '5', sizeof(big) - 3);
	CHECK(json_double(span(big), &d) == 0 && fabs(d - 5.0 / 9.0) < 1e-15);
	big[63] = '\0'; /* exactly 63 chars */
	CHECK(json_double(span(big), &d) == 0 && fabs(d - 5.0 / 9.0) < 1e-15);
	big[63] = '5';
	big[64] = '\0'; /* exactly 64 chars */
	CHECK(json_double(span(big), &d) == 0 && fabs(d - 5.0 / 9.0) < 1e-15);
	/* non-numbers */
	CHECK(json_double(span("\"1\""), &d) == -EINVAL);
	CHECK(json_double(span("true"), &d) == -EINVAL);
	CHECK(json_double(span("false"), &d) == -EINVAL);
	CHECK(json_double(span("null"), &d) == -EINVAL);
	CHECK(json_double(span("[1]"), &d) == -EINVAL);
	CHECK(json_double(span("{}"), &d) == -EINVAL);
	CHECK(json_double(span(""), &d) == -EINVAL);
}

/* Decode the quoted string s and compare with want (n bytes). */
static void expect_decode(const char *file, int line, const char *s, const char *want, size_t n)
{
	struct buf b = {0};
	int r = json_string_decode(span(s), &b);

	check_count++;
	if (r != 0 || b.len != n || memcmp(b.data, want, n) != 0 || b.data[b.len] != '\0') {
		check_fail(file, line, "json_string_decode(%s) = %d", s, r);
		check_print_bytes("got", b.data ? b.data : "", b.len);
		check_print_bytes("expected", want, n);
	}
	buf_free(&b);
}

#define DECODE(s, want) expect_decode(__FILE__, __LINE__, (s), (want), sizeof(want) - 1)

/* json_string_decode: escapes, \u, surrogate pairs and lone surrogates. */
static void test_string_decode(void)
{
	struct buf b = {0};

	DECODE("\"\"", "");
	DECODE("\"abc\"", "abc");
	DECODE("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t");
	DECODE("\"a\\nb\\tc\"", "a\nb\tc");
	DECODE("\"\\u0041\"", "A");
	DECODE("\"\\u0000\"", "\0");
	DECODE("\"a\\u0000b\"", "a\0b");
	DECODE("\"\\u001f\"", "\x1f");
	DECODE("\"\\u007f\"", "\x7f");
	DECODE("\"\\u0080\"", "\xc2\x80");
	DECODE("\"\\u00e9\\u00E9\"", "\xc3\xa9\xc3\xa9");
	DECODE("\"\\u07FF\"", "\xdf\xbf");
	DECODE("\"\\u0800\"", "\xe0\xa0\x80");
	DECODE("\"\\u20ac\"", "\xe2\x82\xac");
	DECODE("\"\\uFFFF\"", "\xef\xbf\xbf");
	DECODE("\"\\uD83D\\uDE00\"", "\xf0\x9f\x98\x80");
	DECODE("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80");
	DECODE("\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80");
	DECODE("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf");
	/* unpaired surrogates become U+FFFD */
	DECODE("\"\\uD800\"", "\xef\xbf\xbd");
	DECODE("\"\\uDC00\"", "\xef\xbf\xbd");
	DECODE("\"\\uDFFF\\uD800\"", "\xef\xbf\xbd\xef\xbf\xbd");
	DECODE("\"\\uD800\\u0041\"", "\xef\xbf\xbd"
	                             "A");
	DECODE("\"\\uD800x\"", "\xef\xbf\xbdx");
	DECODE("\"\\uD800\\n\"", "\xef\xbf\xbd\n");
	DECODE("\"\\uD800\\uD800\\uDC00\"", "\xef\xbf\xbd\xf0\x90\x80\x80");
	DECODE("\"\\uDC00\\uD800\\uDC00\"", "\xef\xbf\xbd\xf0\x90\x80\x80");
	/* raw UTF-8 passes through */
	DECODE("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	DECODE("\"x\\\\u0041\"", "x\\u0041");

	/* not strings */
	CHECK(json_string_decode(span("1"), &b) == -EINVAL);
	CHECK(json_string_decode(span("null"), &b) == -EINVAL);
	CHECK(json_string_decode(span("[\"a\"]"), &b) == -EINVAL);
	CHECK(json_string_decode(span(""), &b) == -EINVAL);
	CHECK(json_string_decode(span("\""), &b) == -EINVAL);
	/* the buffer is reset, not appended to */
	CHECK(json_string_decode(span("\"first\""), &b) == 0);
	CHECK(json_string_decode(span("\"2nd\""), &b) == 0);
	CHECK_STR(b.data, "2nd");
	CHECK(json_string_decode(span("7"), &b) == -EINVAL);
	CHECK_INT(b.len, 0);
	/* a long string with escapes spread through it */
	{
		size_t n = 100000, k;
		char *s = malloc(n * 2 + 3), *p = s;

		*p++ = '"';
		for (k = 0; k < n; k++) {
			*p++ = '\\';
			*p++ = 'n';
		}
		*p++ = '"';
		*p = '\0';
		CHECK(validate_n(s, strlen(s), NULL, NULL) == 0);
		CHECK(json_string_decode(span(s), &b) == 0);
		CHECK_INT(b.len, n);
		CHECK(b.data[0] == '\n' && b.data[n - 1] == '\n' && b.data[n] == '\0');
		free(s);
	}
	buf_free(&b);
}

/* json_string_eq compares unescaped strings only. */
static void test_string_eq(void)
{
	CHECK(json_string_eq(span("\"id\""), "id") == 1);
	CHECK(json_string_eq(span("\"\""), "") == 1);
	CHECK(json_string_eq(span("\"id\""), "i") == 0);
	CHECK(json_string_eq(span("\"id\""), "idx") == 0);
	CHECK(json_string_eq(span("\"id\""), "ID") == 0);
	CHECK(json_string_eq(span("\"id\""), "\"id\"") == 0);
	CHECK(json_string_eq(span("\"\xc3\xa9\""), "\xc3\xa9") == 1);
	/* escaped strings never compare equal (the protocol's names are plain) */
	CHECK(json_string_eq(span("\"i\\u0064\""), "id") == 0);
	CHECK(json_string_eq(span("\"a\\\"b\""), "a\"b") == 0);
	CHECK(json_string_eq(span("\"a\\\\b\""), "a\\\\b") == 0);
	/* only strings */
	CHECK(json_string_eq(span("1"), "1") == 0);
	CHECK(json_string_eq(span("null"), "null") == 0);
	CHECK(json_string_eq(span("[\"a\"]"), "a") == 0);
}

/* Run every test; non-zero exit on any failure. */
/* json_int_array: the compact integer-array fast path, and what it leaves to the scanner. */
static void test_int_array(void)
{
	static const char *const yes[] = {"[]",
	                                  "[0]",
	                                  "[-0]",
	                                  "[1,-2,30]",
	                                  "[9007199254740993]",
	                                  "[-9007199254740992,9007199254740992]",
	                                  "[10,0,-10]"};
	static const char *const no[] = {
	    "",      "[",     "]",     "[,]",    "[1,]", "[,1]",   "[01]",    "[-01]",
	    "[-]",   "[1.0]", "[1e3]", "[1E3]",  "[ 1]", "[1 ]",   "[1,\n2]", "[\"1\"]",
	    "[[1]]", "[1]]",  "[[1]",  "[1,,2]", "[+1]", "[null]", "{}",      "1",
	    "[1-]",  "[0-1]", "[--1]", "[1]x",   "x[1]", "[1] ",   "[]]",     "[0x1]"};
	size_t i, n;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		struct json_span v;

		n = 999;
		if (!json_int_array(yes[i], yes[i] + strlen(yes[i]), &n))
			check_fail(__FILE__, __LINE__, "json_int_array refused %s", yes[i]);
		CHECK(validate_n(yes[i], strlen(yes[i]), &v, NULL) == 0);
		CHECK_INT(n, json_array_count(v));
	}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (json_int_array(no[i], no[i] + strlen(no[i]), &n))
			check_fail(__FILE__, __LINE__, "json_int_array accepted '%s'", no[i]);
	/* digit runs of every length around the 8-byte steps, cut at every place */
	{
		char t[64];
		size_t len, j;

		for (len = 2; len <= 26; len++)
			for (j = 1; j < len; j++) {
				struct json_span v;
				size_t k;

				t[0] = '[';
				for (k = 0; k < len; k++)
					t[1 + k] = (char)('1' + k % 9);
				t[1 + len] = ']';
				t[2 + len] = '\0';
				CHECK(json_int_array(t, t + len + 2, &n) == 1 && n == 1);
				t[1 + j] = ',';
				if (j + 1 < len) {
					CHECK(json_int_array(t, t + len + 2, &n) == 1 && n == 2);
					CHECK(validate_n(t, len + 2, &v, NULL) == 0);
					CHECK_INT(json_array_count(v), 2);
				} else {
					CHECK(json_int_array(t, t + len + 2, &n) == 0);
					CHECK(validate_n(t, len + 2, &v, NULL) != 0);
				}
				t[1 + j] = 'a';
				CHECK(json_int_array(t, t + len + 2, &n) == 0);
				CHECK(validate_n(t, len + 2, &v, &k) != 0);
				CHECK_INT(k, 1 + j);
				t[1 + j] = '.';
				CHECK(json_int_array(t, t + len + 2, &n) == 0);
				CHECK(validate_n(t, len + 2, &v, NULL) ==
				      (j + 1 < len ? 0 : -EINVAL));
			}
	}
	/* a big array, and the same with one float inside */
	{
		size_t k, big_n = 200000;
		char *big = malloc(big_n * 12 + 2), *p = big;

		*p++ = '[';
		for (k = 0; k < big_n; k++)
			p += sprintf(p, "%s%zu", k ? "," : "", k * 7919 % 1000003);
		*p++ = ']';
		CHECK(json_int_array(big, p, &n) == 1);
		CHECK_INT(n, big_n);
		big[big_n / 2 * 6] = '.';
		CHECK(json_int_array(big, p, &n) == 0);
		free(big);
	}
}

/* json_validate_prefix: the value at the start, whatever follows it. */
static void test_validate_prefix(void)
{
	static const struct {
		const char *in, *want;
	} ok[] = {{"1,2", "1"},
	          {"-0.5e3]", "-0.5e3"},
	          {"\"a,\\\"b\"  ,x", "\"a,\\\"b\""},
	          {"[1,[2]] junk", "[1,[2]]"},
	          {"{\"a\":1}}", "{\"a\":1}"},
	          {" true,", "true"},
	          {"null", "null"},
	          {"123", "123"},
	          {"\"\\u00e9\"x", "\"\\u00e9\""}};
	static const char *const bad[] = {"",     " ",       "-",     "1.",      "[1,", "\"abc",
	                                  "tru,", "{\"a\"}", "[1 2]", "\"\\x\"", ","};
	struct json_span v;
	const char *msg;
	size_t i, off;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		msg = NULL;
		if (json_validate_prefix(ok[i].in, ok[i].in + strlen(ok[i].in), &v, &msg, &off) !=
		    0) {
			check_fail(__FILE__, __LINE__, "prefix of '%s' refused: %s", ok[i].in, msg);
			continue;
		}
		CHECK_MEM(v.p, v.len, ok[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg = NULL;
		off = 999;
		if (json_validate_prefix(bad[i], bad[i] + strlen(bad[i]), &v, &msg, &off) == 0)
			check_fail(__FILE__, __LINE__, "prefix of '%s' accepted", bad[i]);
		else
			CHECK(msg != NULL && off <= strlen(bad[i]));
	}
}

/* json_object_next_count: members as json_object_next, arrays counted. */
static void test_object_count(void)
{
	const char *s = "{\"a\" : [1, [2,3], \"x,]\"] ,\"b\":[ ],\"c\":\"[1,2]\",\"d\":[7],"
	                "\"e\":{\"f\":[1,2]}}";
	static const size_t want[] = {3, 0, 0, 1, 0};
	static const char *const vals[] = {"[1, [2,3], \"x,]\"]", "[ ]", "\"[1,2]\"", "[7]",
	                                   "{\"f\":[1,2]}"};
	struct json_span v, k, val;
	struct json_iter it;
	size_t i = 0, n;

	CHECK(validate_n(s, strlen(s), &v, NULL) == 0);
	json_iter_init(&it, v);
	while (json_object_next_count(&it, &k, &val, &n)) {
		if (i < 5) {
			CHECK_INT(n, want[i]);
			CHECK_MEM(val.p, val.len, vals[i]);
		}
		i++;
	}
	CHECK_INT(i, 5);
}

/* json_array_take: chunks of elements by count and by bytes, whitespace between them. */
static void test_array_take(void)
{
	const char *s = "[1, \"a,b\" ,[2,[3]],{\"k\":\"]\"}, 45678 ,6]";
	struct json_span v, span;
	struct json_iter it;

	CHECK(validate_n(s, strlen(s), &v, NULL) == 0);
	json_iter_init(&it, v);
	CHECK_INT(json_array_take(&it, 2, 1000, &span), 2);
	CHECK_MEM(span.p, span.len, "1, \"a,b\"");
	/* bytes: the first element always, then only while the span fits */
	CHECK_INT(json_array_take(&it, 10, 3, &span), 1);
	CHECK_MEM(span.p, span.len, "[2,[3]]");
	CHECK_INT(json_array_take(&it, 10, 15, &span), 1);
	CHECK_MEM(span.p, span.len, "{\"k\":\"]\"}");
	CHECK_INT(json_array_take(&it, 0, 100, &span), 0);
	CHECK_INT(json_array_take(&it, 10, 9, &span), 2);
	CHECK_MEM(span.p, span.len, "45678 ,6");
	CHECK_INT(json_array_take(&it, 10, 100, &span), 0);
	CHECK(validate_n("[ ]", 3, &v, NULL) == 0);
	json_iter_init(&it, v);
	CHECK_INT(json_array_take(&it, 10, 100, &span), 0);
}

/* A deterministic generator for the generated cases below (xorshift64). */
static uint64_t rng_state = 88172645463325252ULL;

static unsigned rnd(unsigned n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned)(rng_state % n);
}

/* Scan [p, p+n) fed in slices of step bytes (0: all at once), indexing into ix when not NULL. */
static int scan_sliced(struct json_scan *s, const char *p, size_t n, size_t step,
                       struct json_index *ix)
{
	size_t at = 0;
	int r = 0;

	json_scan_init(s);
	if (ix)
		json_scan_index(s, ix);
	if (step == 0)
		step = n ? n : 1;
	while (r == 0 && at < n) {
		size_t k = n - at < step ? n - at : step;

		r = json_scan_feed(s, p + at, k);
		at += k;
	}
	return r == 0 ? json_scan_end(s) : r;
}

/*
 * The fast paths against the slow one: [p, p+n) scanned whole (integer runs,
 * 16-byte blocks) and one byte at a time (the byte-wise state machine, as
 * it always was) give the same verdict, span, message and offset, with and
 * without an index.
 */
static void expect_same_scan(const char *file, int line, const char *p, size_t n)
{
	static size_t room[JSON_INDEX_MARKS];
	struct json_index ix = {.mark = room};
	struct json_scan whole, bytes, indexed;
	int rw = scan_sliced(&whole, p, n, 0, NULL), rb = scan_sliced(&bytes, p, n, 1, NULL);
	int ri = scan_sliced(&indexed, p, n, 0, &ix);

	check_count++;
	if (rw != rb || rw != ri ||
	    (rw == 0 && (whole.vstart != bytes.vstart || whole.vend != bytes.vend ||
	                 whole.vstart != indexed.vstart || whole.vend != indexed.vend)) ||
	    (rw != 0 && (whole.erroff != bytes.erroff || strcmp(whole.err, bytes.err) != 0 ||
	                 whole.erroff != indexed.erroff || strcmp(whole.err, indexed.err) != 0))) {
		check_fail(file, line,
		           "fast and byte-wise scans differ: %d/%d/%d, %s at %zu, %s at %zu", rw,
		           rb, ri, rw ? whole.err : "-", rw ? whole.erroff : 0,
		           rb ? bytes.err : "-", rb ? bytes.erroff : 0);
		check_print_bytes("input", p, n);
	}
}

#define SAME_SCAN(s) expect_same_scan(__FILE__, __LINE__, (s), strlen(s))

/* Elements the generated arrays are made of: the edges of the number grammar and the others. */
static const char *const elems[] = {
    "0",
    "-0",
    "7",
    "-7",
    "10",
    "100200",
    "-123456",
    "9007199254740992",
    "-9007199254740992",
    "9007199254740993",
    "123456789012345678901234567890",
    "1.5",
    "-0.5",
    "1e5",
    "-1E-5",
    "2e+10",
    "0.0",
    "\"a,b\"",
    "\"q\\\"\\u00e9,\"",
    "\"\xc3\xa9\"",
    "[1,-2]",
    "[]",
    "{\"a\":[0]}",
    "true",
    "null",
    "false",
};

/* A generated array of n elements: mostly short integers, commas with or without spaces. */
static void gen_array(struct buf *b, size_t n, int ints_only)
{
	size_t i;

	buf_addc(b, '[');
	for (i = 0; i < n; i++) {
		unsigned k = rnd(100);

		if (i)
			buf_adds(b, k < 3 ? " , " : k < 5 ? ",\n" : ",");
		if (ints_only || k < 70)
			buf_printf(b, "%s%u", rnd(4) ? "" : "-", rnd(8) ? rnd(1000000) : rnd(10));
		else
			buf_adds(b, elems[rnd(sizeof(elems) / sizeof(elems[0]))]);
	}
	buf_addc(b, ']');
}

/*
 * The integer fast path on the number grammar's edges: every element alone
 * and in runs, each byte of generated arrays replaced by the bytes that
 * break or bend the grammar (leading zeros, a lone or doubled '-', empty
 * elements, fractions, exponents, whitespace, the end), and each prefix
 * (truncated input): whole scans match byte-wise ones.
 */
static void test_fast_scan_edges(void)
{
	static const char subst[] = "0-,.eE ]a19\"[";
	struct buf b = {0}, t = {0};
	size_t i, j, round;

	for (i = 0; i < sizeof(elems) / sizeof(elems[0]); i++) {
		buf_reset(&b);
		buf_printf(&b, "[%s,%s,%s,%s,%s,%s]", elems[i], elems[i], elems[i], elems[i],
		           elems[i], elems[i]);
		expect_same_scan(__FILE__, __LINE__, b.data, b.len);
	}
	SAME_SCAN("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]");
	SAME_SCAN("[1,2,3,4,5,6,7,00,9,10,11,12,13,14,15,16,17]");
	SAME_SCAN("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,-]");
	SAME_SCAN("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,,16,17]");
	SAME_SCAN("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,1-5,16,17]");
	SAME_SCAN("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,--5,16,17]");
	SAME_SCAN("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,-05,16,17]");
	SAME_SCAN("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,]");
	SAME_SCAN("[1234567890123456,1234567890123456,1234567890123456]");
	SAME_SCAN("[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,-0,-0,-0,-0,-0,-0,-0,-0]");
	SAME_SCAN("{\"id\":1,\"args\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17],\"x\":0}");
	for (round = 0; round < 12; round++) {
		buf_reset(&b);
		gen_array(&b, 40, round % 2);
		expect_same_scan(__FILE__, __LINE__, b.data, b.len);
		for (i = 0; i < b.len; i++) {
			expect_same_scan(__FILE__, __LINE__, b.data, i);
			for (j = 0; j < sizeof(subst) - 1; j++) {
				buf_reset(&t);
				buf_add(&t, b.data, b.len);
				t.data[i] = subst[j];
				expect_same_scan(__FILE__, __LINE__, t.data, t.len);
			}
		}
	}
	buf_free(&b);
	buf_free(&t);
}

/*
 * The index a scan leaves for v's "args" against a walk of the text: span,
 * count, each mark on its comma, the member walk skipping args, and cuts
 * by the index equal to cuts by walking, for several chunk shapes.
 */
static void expect_index(const char *file, int line, const char *p, size_t n, size_t step,
                         int found)
{
	static size_t room[JSON_INDEX_MARKS];
	struct json_index ix = {.mark = room};
	struct json_span v, k, val, k2, v2, args = {NULL, 0};
	struct json_scan s;
	struct json_iter it, it2;
	size_t count, count2, i, j, want_marks;
	int bad = 0;

	check_count++;
	if (scan_sliced(&s, p, n, step, &ix) != 0 || validate_n(p, n, &v, NULL) != 0) {
		check_fail(file, line, "the input does not validate");
		return;
	}
	ix.base = p;
	if (json_type(v) == JSON_OBJECT) {
		json_iter_init(&it, v);
		while (json_object_next(&it, &k, &val))
			if (json_string_eq(k, "args")) {
				args = val;
				break;
			}
	}
	if (!found) {
		if (ix.end)
			check_fail(file, line, "an index where none was expected");
		return;
	}
	if (!args.p || json_type(args) != JSON_ARRAY || !ix.end) {
		check_fail(file, line, "no index for args");
		return;
	}
	count = json_array_count(args);
	want_marks = count ? (count - 1) / ix.stride : 0;
	if (ix.base + ix.start != args.p || ix.end - ix.start != args.len || ix.count != count ||
	    ix.n_marks != want_marks || ix.stride % JSON_INDEX_STRIDE ||
	    (ix.stride > JSON_INDEX_STRIDE && ix.n_marks < JSON_INDEX_MARKS / 2))
		bad = 1;
	json_iter_init(&it, args);
	for (i = 0, j = 0; !bad && json_array_next(&it, &val); i++) {
		const char *c = val.p + val.len;

		while (*c == ' ' || *c == '\n')
			c++;
		if ((i + 1) % ix.stride == 0 && j < ix.n_marks && (size_t)(c - p) != ix.mark[j++])
			bad = 1;
	}
	if (bad) {
		check_fail(file, line, "index: count %zu marks %zu stride %zu, want count %zu",
		           ix.count, ix.n_marks, ix.stride, count);
		return;
	}
	/* the member walk: the same members, args skipped by the index */
	json_iter_init(&it, v);
	json_iter_init(&it2, v);
	while (json_object_next_count(&it, &k, &val, &count)) {
		check_count++;
		if (!json_object_next_known(&it2, &k2, &v2, &count2, &ix) || k2.p != k.p ||
		    v2.p != val.p || v2.len != val.len || count2 != count || it2.p != it.p)
			check_fail(file, line, "json_object_next_known differs");
	}
	CHECK(!json_object_next_known(&it2, &k2, &v2, &count2, &ix));
	/* chunks: small, around the stride, big, limited by bytes */
	for (i = 0; i < 6; i++) {
		static const size_t maxes[] = {1, 63, 64, 65, 1000, 100000};
		size_t bytes = i % 2 ? SIZE_MAX : 3000, idx = 0, a, b2;
		struct json_span sa, sb;

		json_iter_init(&it, args);
		json_iter_init(&it2, args);
		do {
			size_t max = maxes[(i + idx) % 6];

			a = json_array_take(&it, max, bytes, &sa);
			b2 = json_array_take_indexed(&it2, &ix, idx, max, bytes, &sb);
			check_count++;
			if (a != b2 || (a && (sa.p != sb.p || sa.len != sb.len)) || it.p != it2.p) {
				check_fail(file, line,
				           "indexed take differs at %zu (max %zu): %zu %zu", idx,
				           max, a, b2);
				break;
			}
			idx += a;
		} while (a);
	}
}

#define INDEX(s, step) expect_index(__FILE__, __LINE__, (s), strlen(s), (step), 1)
#define NO_INDEX(s, step) expect_index(__FILE__, __LINE__, (s), strlen(s), (step), 0)

/* json_scan_index: which member is indexed, whatever the slices, and big arrays. */
static void test_scan_index(void)
{
	struct buf b = {0};
	size_t steps[] = {0, 1, 3, 7, 16, 4096}, i, round;

	INDEX("{\"args\":[]}", 0);
	INDEX("{\"args\":[ ]}", 1);
	INDEX("{\"id\":1,\"op\":\"map\",\"fn\":\"f\",\"args\":[1,2,3]}", 0);
	INDEX("{ \"args\" : [ [1,2] , \"a,b\" ] , \"args2\":[1,2]}", 1);
	INDEX("{\"x\":{\"args\":[9]},\"args\":[1,2,3],\"args\":[4]}", 0);
	NO_INDEX("{\"x\":{\"args\":[1,2]}}", 0);
	NO_INDEX("[{\"args\":[1,2]}]", 0);
	NO_INDEX("{\"\\u0061rgs\":[1,2]}", 0);
	NO_INDEX("{\"args\":5,\"b\":[1]}", 0);
	NO_INDEX("{\"arg\":[1],\"argss\":[2]}", 0);
	NO_INDEX("[1,2,3]", 0);
	for (round = 0; round < 40; round++) {
		size_t n = round < 20 ? rnd(300) : round < 38 ? rnd(20000) : 70000 + rnd(10000);

		buf_reset(&b);
		buf_adds(&b, rnd(2) ? "{\"id\":\"x\",\"args\":" : "{ \"args\" : ");
		gen_array(&b, n, round % 3 == 0);
		buf_adds(&b, ",\"fn\":\"square\"}");
		for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
			if (steps[i] != 1 || n < 2000)
				expect_index(__FILE__, __LINE__, b.data, b.len, steps[i], 1);
	}
	buf_free(&b);
}

int main(void)
{
	test_fast_scan_edges();
	test_scan_index();
	test_array_take();
	test_object_count();
	test_int_array();
	test_validate_prefix();
	test_numbers();
	test_literals_and_structure();
	test_strings();
	test_depth();
	test_validate_details();
	test_error_offsets();
	test_scan_slices();
	test_types();
	test_iterate_array();
	test_iterate_object();
	test_int();
	test_double();
	test_string_decode();
	test_string_eq();
	return check_exit("test_json");
}
