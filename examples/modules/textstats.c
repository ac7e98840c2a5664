/*
 * textstats.c - an example poold module: hashes, word counts, a Mandelbrot row
 *
 *   [function sha256]
 *   kind = module
 *   module = /path/to/textstats.so
 *
 * sha256("abc")            -> "ba7816bf...f20015ad"  (hex digest of the UTF-8 bytes)
 * fnv1a64("abc")           -> "e71fa2190541574b"     (64-bit FNV-1a, hex)
 * wordcount("a b\nc")      -> {"lines":1,"words":3,"bytes":5}   (as wc counts them)
 * mandelbrot_row(y, w, h, max_iter) -> [n0, n1, ...]  (escape counts of row y of a
 *                             w x h picture of [-2,1] x [-1.5,1.5]; max_iter if inside)
 */
#include <poold/module.h>
#include <stdint.h>
#include <string.h>

/* ---- SHA-256 (FIPS 180-4) ---- */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
	uint32_t w[64], a, b, c, d, e, f, g, k, t1, t2;
	int i;

	for (i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (i = 16; i < 64; i++)
		w[i] = w[i - 16] + (ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3)) +
		       w[i - 7] + (ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10));
	a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
	for (i = 0; i < 64; i++) {
		t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
		t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
	}
	h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

static void sha256(const unsigned char *p, size_t n, unsigned char out[32])
{
	uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	unsigned char tail[128] = {0};
	uint64_t bits = (uint64_t)n * 8;
	size_t rest, tlen, i;

	for (; n >= 64; p += 64, n -= 64)
		sha256_block(h, p);
	rest = n;
	memcpy(tail, p, rest);
	tail[rest] = 0x80;
	tlen = rest < 56 ? 64 : 128;
	for (i = 0; i < 8; i++)
		tail[tlen - 1 - i] = (unsigned char)(bits >> (8 * i));
	for (i = 0; i < tlen; i += 64)
		sha256_block(h, tail + i);
	for (i = 0; i < 32; i++)
		out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static int out_hex(struct poold_call *c, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char s[64];
	size_t i;

	for (i = 0; i < n; i++) {
		s[2 * i] = hex[p[i] >> 4];
		s[2 * i + 1] = hex[p[i] & 15];
	}
	return poold_out_string(c, s, 2 * n);
}

static int fn_sha256(struct poold_call *c)
{
	const char *s;
	size_t len;
	unsigned char d[32];

	if (poold_arg_string(c, 0, &s, &len) < 0)
		return -1;
	sha256((const unsigned char *)s, len, d);
	return out_hex(c, d, sizeof(d));
}

static int fn_fnv1a64(struct poold_call *c)
{
	const char *s;
	size_t len, i;
	uint64_t h = 0xcbf29ce484222325ull;
	unsigned char d[8];

	if (poold_arg_string(c, 0, &s, &len) < 0)
		return -1;
	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ull;
	}
	for (i = 0; i < 8; i++)
		d[i] = (unsigned char)(h >> (56 - 8 * i));
	return out_hex(c, d, sizeof(d));
}

/* Lines, words and bytes as wc(1) counts them: words are runs of non-blanks. */
static int fn_wordcount(struct poold_call *c)
{
	const char *s;
	size_t len, i;
	int64_t lines = 0, words = 0;
	int in_word = 0;

	if (poold_arg_string(c, 0, &s, &len) < 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		int blank =
		    ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';

		lines += ch == '\n';
		words += !blank && !in_word;
		in_word = !blank;
	}
	if (poold_out_object_begin(c) < 0 || poold_out_key(c, "lines", 5) < 0 ||
	    poold_out_int(c, lines) < 0 || poold_out_key(c, "words", 5) < 0 ||
	    poold_out_int(c, words) < 0 || poold_out_key(c, "bytes", 5) < 0 ||
	    poold_out_int(c, (int64_t)len) < 0)
		return -1;
	return poold_out_object_end(c);
}

static int fn_mandelbrot_row(struct poold_call *c)
{
	int64_t y, w, h, max_iter, x, n;

	if (poold_arg_int(c, 0, &y) < 0 || poold_arg_int(c, 1, &w) < 0 ||
	    poold_arg_int(c, 2, &h) < 0 || poold_arg_int(c, 3, &max_iter) < 0)
		return -1;
	if (w < 1 || w > 100000 || h < 1 || h > 100000 || y < 0 || y >= h)
		return poold_fail(
		    c, POOLD_OUT_OF_RANGE,
		    "mandelbrot_row takes 0 <= y < height, 1 <= width, height <= 100000");
	if (max_iter < 1 || max_iter > 1000000)
		return poold_fail(c, POOLD_OUT_OF_RANGE, "max_iter must be 1 to 1000000");
	if (poold_out_array_begin(c) < 0)
		return -1;
	for (x = 0; x < w; x++) {
		double cr = -2.0 + 3.0 * (double)x / (double)w;
		double ci = -1.5 + 3.0 * (double)y / (double)h;
		double zr = 0, zi = 0, t;

		for (n = 0; n < max_iter && zr * zr + zi * zi <= 4.0; n++) {
			t = zr * zr - zi * zi + cr;
			zi = 2.0 * zr * zi + ci;
			zr = t;
		}
		if (poold_out_int(c, n) < 0)
			return -1;
	}
	return poold_out_array_end(c);
}

static const struct poold_function functions[] = {
    {"sha256", 1, 1, "SHA-256 of a string's UTF-8 bytes, as 64 hex digits", fn_sha256},
    {"fnv1a64", 1, 1, "64-bit FNV-1a hash of a string's UTF-8 bytes, as 16 hex digits", fn_fnv1a64},
    {"wordcount", 1, 1, "{\"lines\":L,\"words\":W,\"bytes\":B} of a text, as wc counts them",
     fn_wordcount},
    {"mandelbrot_row", 4, 4,
     "escape counts of row y of a width x height Mandelbrot picture: [y, width, height, max_iter]",
     fn_mandelbrot_row},
    {NULL, 0, 0, NULL, NULL},
};

POOLD_MODULE_DEFINE("textstats", "1.0", functions, NULL, NULL);
