/* test_buf.c - unit tests for the byte buffer and its JSON writers (proto/buf.c) */
#include "buf.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "digits.h"
#include "json.h"

/* 1 when the n bytes at p are exactly one valid JSON value. */
static int is_json(const char *p, size_t n)
{
	struct json_span v;
	const char *msg;
	size_t off;

	return json_validate(p, p + n, &v, &msg, &off) == 0;
}

/* buf_add_double(v) must give exactly want. */
static void expect_double(const char *file, int line, double v, const char *want)
{
	struct buf b = {0};
	int r = buf_add_double(&b, v);

	check_count++;
	if (r != 0 || !b.data || strcmp(b.data, want) != 0)
		check_fail(file, line, "buf_add_double(%.17g) = %d \"%s\", expected \"%s\"", v, r,
		           b.data ? b.data : "", want);
	buf_free(&b);
}

#define DOUBLE(v, want) expect_double(__FILE__, __LINE__, (v), (want))

/* buf_add_double: exact text for known values, round trip for others, no NaN/inf. */
static void test_buf_double(void)
{
	static const double roundtrip[] = {
	    0.1,
	    1.0 / 3.0,
	    2.0 / 3.0,
	    1e-7,
	    123456.789,
	    5e-324,
	    2.2250738585072014e-308,
	    1.7976931348623157e308,
	    4.35,
	    0.3,
	    1e21,
	    1e15 + 0.5,
	    -1e-300,
	    100.0,
	    6.02214076e23,
	    -273.15,
	    1e22,
	    9007199254740993.0,
	};
	struct buf b = {0};
	size_t i;

	DOUBLE(3.0, "3.0");
	DOUBLE(0.0, "0.0");
	DOUBLE(-0.0, "-0.0");
	DOUBLE(-3.0, "-3.0");
	DOUBLE(0.1, "0.1");
	DOUBLE(-2.5, "-2.5");
	DOUBLE(0.5, "0.5");
	DOUBLE(1.5, "1.5");
	DOUBLE(1e300, "1e+300");
	DOUBLE(-1e300, "-1e+300");
	DOUBLE(1e-300, "1e-300");
	DOUBLE(1.0 / 3.0, "0.3333333333333333");
	DOUBLE(0.1 + 0.2, "0.30000000000000004");
	DOUBLE(100.0, "100.0");
	DOUBLE(123456789.0, "123456789.0");
	DOUBLE(9007199254740992.0, "9007199254740992.0");
	DOUBLE(1e16, "1e+16");
	DOUBLE(1.7976931348623157e308, "1.7976931348623157e+308");
	/* every value reads back as itself and looks like a float */
	for (i = 0; i < sizeof(roundtrip) / sizeof(roundtrip[0]); i++) {
		double v = roundtrip[i];

		buf_reset(&b);
		CHECK(buf_add_double(&b, v) == 0);
		CHECK(strtod(b.data, NULL) == v);
		CHECK(strpbrk(b.data, ".e") != NULL);
		CHECK(is_json(b.data, b.len));
		buf_reset(&b);
		CHECK(buf_add_double(&b, -v) == 0);
		CHECK(strtod(b.data, NULL) == -v);
		CHECK(is_json(b.data, b.len));
	}
	/* no JSON for NaN and infinities; nothing is appended */
	buf_reset(&b);
	buf_adds(&b, "x");
	CHECK_INT(buf_add_double(&b, NAN), -EDOM);
	CHECK_INT(buf_add_double(&b, INFINITY), -EDOM);
	CHECK_INT(buf_add_double(&b, -INFINITY), -EDOM);
	CHECK_STR(b.data, "x");
	buf_free(&b);
}

/* buf_add_int(v) must give exactly want. */
static void expect_int(const char *file, int line, int64_t v, const char *want)
{
	struct buf b = {0};
	int r = buf_add_int(&b, v);

	check_count++;
	if (r != 0 || !b.data || strcmp(b.data, want) != 0)
		check_fail(file, line, "buf_add_int(%lld) = %d \"%s\", expected \"%s\"",
		           (long long)v, r, b.data ? b.data : "", want);
	buf_free(&b);
}

/* buf_add_int at the int64 and 2^53 edges. */
static void test_buf_int(void)
{
	expect_int(__FILE__, __LINE__, 0, "0");
	expect_int(__FILE__, __LINE__, 1, "1");
	expect_int(__FILE__, __LINE__, -1, "-1");
	expect_int(__FILE__, __LINE__, 10, "10");
	expect_int(__FILE__, __LINE__, -10, "-10");
	expect_int(__FILE__, __LINE__, JSON_INT_MAX, "9007199254740992");
	expect_int(__FILE__, __LINE__, -JSON_INT_MAX, "-9007199254740992");
	expect_int(__FILE__, __LINE__, INT64_MAX, "9223372036854775807");
	expect_int(__FILE__, __LINE__, INT64_MIN, "-9223372036854775808");
	expect_int(__FILE__, __LINE__, INT64_MIN + 1, "-9223372036854775807");
	expect_int(__FILE__, __LINE__, INT32_MAX, "2147483647");
	expect_int(__FILE__, __LINE__, INT32_MIN, "-2147483648");
	expect_int(__FILE__, __LINE__, 1000000, "1000000");
	/* two digits per step: odd and even lengths, each pair boundary */
	expect_int(__FILE__, __LINE__, 9, "9");
	expect_int(__FILE__, __LINE__, 99, "99");
	expect_int(__FILE__, __LINE__, 100, "100");
	expect_int(__FILE__, __LINE__, -100, "-100");
	expect_int(__FILE__, __LINE__, 909, "909");
	expect_int(__FILE__, __LINE__, 1001, "1001");
	expect_int(__FILE__, __LINE__, 99999, "99999");
	expect_int(__FILE__, __LINE__, 1000000000000, "1000000000000");
	expect_int(__FILE__, __LINE__, 999998000001, "999998000001");
	/* every digit count: 10^k - 1, 10^k and 10^k + 1, both signs, against printf */
	{
		uint64_t p10 = 1;
		int k;

		for (k = 0; k <= 19; k++, p10 *= 10) {
			int64_t c[3] = {(int64_t)(p10 - 1), (int64_t)p10, (int64_t)(p10 + 1)};
			char want[32];
			int j;

			if (p10 > (uint64_t)INT64_MAX)
				break;
			for (j = 0; j < 3; j++) {
				snprintf(want, sizeof(want), "%lld", (long long)c[j]);
				expect_int(__FILE__, __LINE__, c[j], want);
				snprintf(want, sizeof(want), "%lld", -(long long)c[j]);
				expect_int(__FILE__, __LINE__, -c[j], want);
			}
		}
	}
	/* appends */
	{
		struct buf b = {0};

		buf_add_int(&b, 12);
		buf_addc(&b, ',');
		buf_add_int(&b, -34);
		CHECK_STR(b.data, "12,-34");
		buf_free(&b);
	}
}

/* A reproducible 64-bit generator (splitmix64). */
static uint64_t next_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/*
 * buf_fmt_int against printf on random values of every length, written one
 * after the other: what it stores past its end never reaches back.
 */
static void test_buf_fmt_int(void)
{
	char out[64 * 24], want[64 * 24];
	uint64_t seed = 42;
	int round, i;

	for (round = 0; round < 20000; round++) {
		char *p = out;
		size_t wl = 0;

		for (i = 0; i < 64; i++) {
			uint64_t r = next_rand(&seed);
			int64_t v = (int64_t)(r >> (r % 64));

			if (r & 1)
				v = -v;
			if (i == 0 && round == 0)
				v = INT64_MIN;
			p = buf_fmt_int(p, v);
			*p++ = ',';
			wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%lld,", (long long)v);
		}
		check_count++;
		if ((size_t)(p - out) != wl || memcmp(out, want, wl) != 0) {
			check_fail(__FILE__, __LINE__, "buf_fmt_int round %d: %.*s, expected %.*s",
			           round, (int)(p - out), out, (int)wl, want);
			return;
		}
	}
}

/* digits.h: counting, reading and writing eight digits, against byte-by-byte loops. */
static void test_digits(void)
{
	uint64_t seed = 7;
	int round;

	for (round = 0; round < 200000; round++) {
		uint64_t r = next_rand(&seed);
		char text[8];
		unsigned n = 0, k, want_n;
		uint32_t want_v = 0;

		/* mostly digits, sometimes any byte, at a random place */
		for (k = 0; k < 8; k++)
			text[k] = (char)('0' + (r >> (4 * k)) % 10);
		if (r >> 60)
			text[(r >> 32) % 8] = (char)(r >> 40);
		for (want_n = 0; want_n < 8 && text[want_n] >= '0' && text[want_n] <= '9'; want_n++)
			want_v = want_v * 10 + (uint32_t)(text[want_n] - '0');
		n = digits_count8(digits_load8(text));
		CHECK(n == want_n);
		if (n > 0 && n == want_n)
			CHECK(digits_value8(digits_load8(text), n) == want_v);
	}
	for (round = 0; round < 200000; round++) {
		uint32_t v = (uint32_t)(next_rand(&seed) % 100000000);
		char want[16];
		uint64_t w;

		if (round < 1000)
			v = (uint32_t)round * (round % 2 ? 99991u : 1u);
		w = digits_text8(v);
		snprintf(want, sizeof(want), "%08u", (unsigned)v);
		check_count++;
		if (memcmp(&w, want, 8) != 0)
			check_fail(__FILE__, __LINE__, "digits_text8(%u) = %.8s", (unsigned)v,
			           (const char *)&w);
	}
	for (round = 0; round < 200000; round++) {
		uint64_t u = next_rand(&seed) % 10000000000000000ULL, w[2];
		char want[24];

		if (round < 2000) /* every place value, each digit */
			u = (uint64_t)(round % 10) * (uint64_t)pow(10, round / 10 % 16);
		digits_text16(u, &w[0], &w[1]);
		snprintf(want, sizeof(want), "%016llu", (unsigned long long)u);
		check_count++;
		if (memcmp(w, want, 16) != 0)
			check_fail(__FILE__, __LINE__, "digits_text16(%llu) = %.16s",
			           (unsigned long long)u, (const char *)w);
	}
}

/* buf_add_json_string over n bytes of s must give exactly want. */
static void expect_jstr(const char *file, int line, const char *s, size_t n, const char *want)
{
	struct buf b = {0};
	int r = buf_add_json_string(&b, s, n);

	check_count++;
	if (r != 0 || !b.data || strcmp(b.data, want) != 0) {
		check_fail(file, line, "buf_add_json_string = %d", r);
		check_print_bytes("got", b.data ? b.data : "", b.len);
		check_print_bytes("expected", want, strlen(want));
	}
	buf_free(&b);
}

#define JSTR(s, want) expect_jstr(__FILE__, __LINE__, (s), sizeof(s) - 1, (want))

/* buf_add_json_string escaping, and a round trip through the scanner. */
static void test_buf_json_string(void)
{
	struct buf b = {0}, d = {0};
	char all[128];
	int i;

	JSTR("", "\"\"");
	JSTR("abc", "\"abc\"");
	JSTR("a\"b\\c", "\"a\\\"b\\\\c\"");
	JSTR("\n\t", "\"\\n\\t\"");
	JSTR("\r\b\f", "\"\\u000d\\u0008\\u000c\"");
	JSTR("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"");
	JSTR("a\0b", "\"a\\u0000b\"");
	JSTR("/", "\"/\"");
	JSTR("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	JSTR("</script>", "\"</script>\"");
	/* n is honoured: only the first two bytes */
	expect_jstr(__FILE__, __LINE__, "abcdef", 2, "\"ab\"");
	/* every ASCII byte round-trips through the scanner */
	for (i = 0; i < 128; i++)
		all[i] = (char)i;
	CHECK(buf_add_json_string(&b, all, sizeof(all)) == 0);
	CHECK(is_json(b.data, b.len));
	{
		struct json_span v = {b.data, b.len};

		CHECK(json_string_decode(v, &d) == 0);
		CHECK(d.len == sizeof(all) && memcmp(d.data, all, sizeof(all)) == 0);
	}
	/* appending to existing content, and a big string forcing growth */
	buf_reset(&b);
	buf_adds(&b, "[");
	buf_add_json_string(&b, "x", 1);
	buf_adds(&b, "]");
	CHECK_STR(b.data, "[\"x\"]");
	{
		size_t n = 1 << 20;
		char *big = malloc(n);

		memset(big, '"', n);
		buf_reset(&b);
		CHECK(buf_add_json_string(&b, big, n) == 0);
		CHECK_INT(b.len, 2 * n + 2);
		CHECK(is_json(b.data, b.len));
		free(big);
	}
	buf_free(&b);
	buf_free(&d);
}

/* buf_printf, growth, reset, steal and a refused reservation. */
static void test_buf_misc(void)
{
	struct buf b = {0};
	char *s;
	size_t n;
	int i;

	CHECK(buf_printf(&b, "%d-%s", 42, "x") == 0);
	CHECK_STR(b.data, "42-x");
	CHECK_INT(b.len, 4);
	CHECK(buf_printf(&b, "%s", "") == 0);
	CHECK_INT(b.len, 4);
	for (i = 0; i < 1000; i++)
		buf_printf(&b, "%04d", i);
	CHECK_INT(b.len, 4004);
	CHECK(memcmp(b.data + 4000, "0999", 4) == 0);
	CHECK(b.data[b.len] == '\0');
	CHECK(b.cap > b.len);
	buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	buf_add(&b, "abc", 3);
	s = buf_steal(&b, &n);
	CHECK_INT(n, 3);
	CHECK_STR(s, "abc");
	CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
	free(s);
	/* stealing an empty buffer gives an empty string */
	s = buf_steal(&b, &n);
	CHECK(s != NULL && n == 0 && s[0] == '\0');
	free(s);
	/* an absurd reservation fails cleanly */
	CHECK_INT(buf_reserve(&b, SIZE_MAX - 10), -ENOMEM);
	CHECK(buf_add(&b, "", 0) == 0);
	CHECK(b.data != NULL && b.data[0] == '\0');
	buf_free(&b);
	buf_free(&b);
	buf_reset(&b); /* on a freed buffer */
}

/* Run every test; non-zero exit on any failure. */
int main(void)
{
	test_buf_double();
	test_buf_int();
	if (DIGITS_SWAR)
		test_digits();
	test_buf_fmt_int();
	test_buf_json_string();
	test_buf_misc();
	return check_exit("test_buf");
}
