/*
 * json.c: the strict JSON grammar of RFC 8259 that every line must match
 * before jsmn tokenizes it (jsmn alone accepts too much), and the
 * decoding of a checked string's escapes.  No allocation, no state.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "utf8.h"

#define JSON_MAX_DEPTH	64	/* nesting of objects and arrays */

/* Skips JSON whitespace (space, tab, CR, LF) from i. */
static size_t
json_ws(const char *p, size_t len, size_t i)
{
	while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' ||
	    p[i] == '\n'))
		i++;
	return i;
}

/* Value of the four hex digits at p[i..i+4), or -1. */
static long
json_hex4(const char *p, size_t len, size_t i)
{
	long	v = 0;
	size_t	k;
	char	c;

	if (len < 4 || i > len - 4)
		return -1;
	for (k = 0; k < 4; k++) {
		c = p[i + k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * Checks the string whose opening quote is at p[i]; returns the index
 * after its closing quote, or 0 if it is not a valid JSON string.
 */
static size_t
json_string(const char *p, size_t len, size_t i)
{
	unsigned char	c;
	long		cp, lo;

	for (i++; i < len; ) {
		c = (unsigned char)p[i];
		if (c == '"')
			return i + 1;
		if (c < 0x20)
			return 0;
		if (c != '\\') {
			i++;
			continue;
		}
		if (++i >= len)
			return 0;
		switch (p[i]) {
		case '"': case '\\': case '/':
		case 'b': case 'f': case 'n': case 'r': case 't':
			i++;
			break;
		case 'u':
			if ((cp = json_hex4(p, len, i + 1)) == -1)
				return 0;
			i += 5;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return 0;	/* lone low surrogate */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (i + 1 >= len || p[i] != '\\' ||
				    p[i + 1] != 'u')
					return 0;
				lo = json_hex4(p, len, i + 2);
				if (lo < 0xdc00 || lo > 0xdfff)
					return 0;
				i += 6;
			}
			break;
		default:
			return 0;
		}
	}
	return 0;
}

/* Checks the number at p[i]; returns the index after it, or 0. */
static size_t
json_number(const char *p, size_t len, size_t i)
{
	size_t	start;

	if (i < len && p[i] == '-')
		i++;
	if (i >= len)
		return 0;
	if (p[i] == '0')
		i++;
	else if (p[i] >= '1' && p[i] <= '9') {
		while (i < len && p[i] >= '0' && p[i] <= '9')
			i++;
	} else
		return 0;
	if (i < len && p[i] == '.') {
		start = ++i;
		while (i < len && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == start)
			return 0;
	}
	if (i < len && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < len && (p[i] == '+' || p[i] == '-'))
			i++;
		start = i;
		while (i < len && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == start)
			return 0;
	}
	return i;
}

/* Checks the literal word at p[i]; returns the index after it, or 0. */
static size_t
json_literal(const char *p, size_t len, size_t i, const char *word)
{
	size_t	n = strlen(word);

	if (len - i < n || memcmp(p + i, word, n) != 0)
		return 0;
	return i + n;
}

/*
 * Checks that p[0..len) is exactly one JSON object (RFC 8259), with
 * surrounding whitespace only and at most JSON_MAX_DEPTH levels of
 * nesting.  Non-recursive.  Sets *ntokp to the number of jsmn tokens
 * the text makes (one per value and one per key).  Returns 0 or -1.
 */
int
json_check(const char *p, size_t len, size_t *ntokp)
{
	enum { J_VALUE, J_FIRST_VALUE, J_KEY, J_FIRST_KEY, J_NEXT } state;
	char	 stack[JSON_MAX_DEPTH];
	size_t	 depth = 0, i, ntok = 0;

	i = json_ws(p, len, 0);
	if (i >= len || p[i] != '{')
		return -1;
	state = J_VALUE;
	for (;;) {
		i = json_ws(p, len, i);
		if (state == J_NEXT && depth == 0)
			break;
		if (i >= len)
			return -1;
		switch (state) {
		case J_FIRST_KEY:
		case J_FIRST_VALUE:
			/* An empty object or array closes at once. */
			if (p[i] == (state == J_FIRST_KEY ? '}' : ']')) {
				depth--;
				i++;
				state = J_NEXT;
			} else
				state = state == J_FIRST_KEY ? J_KEY : J_VALUE;
			break;
		case J_KEY:
			if (p[i] != '"' || (i = json_string(p, len, i)) == 0)
				return -1;
			ntok++;
			i = json_ws(p, len, i);
			if (i >= len || p[i] != ':')
				return -1;
			i++;
			state = J_VALUE;
			break;
		case J_VALUE:
			ntok++;
			state = J_NEXT;
			switch (p[i]) {
			case '{':
			case '[':
				if (depth == JSON_MAX_DEPTH)
					return -1;
				stack[depth++] = p[i];
				state = p[i] == '{' ? J_FIRST_KEY :
				    J_FIRST_VALUE;
				i++;
				break;
			case '"':
				i = json_string(p, len, i);
				break;
			case 't':
				i = json_literal(p, len, i, "true");
				break;
			case 'f':
				i = json_literal(p, len, i, "false");
				break;
			case 'n':
				i = json_literal(p, len, i, "null");
				break;
			default:
				i = json_number(p, len, i);
				break;
			}
			if (i == 0)
				return -1;
			break;
		case J_NEXT:
			if (p[i] == ',')
				state = stack[depth - 1] == '{' ? J_KEY :
				    J_VALUE;
			else if ((p[i] == '}' && stack[depth - 1] == '{') ||
			    (p[i] == ']' && stack[depth - 1] == '['))
				depth--;
			else
				return -1;
			i++;
			break;
		}
	}
	if (i != len)
		return -1;
	*ntokp = ntok;
	return 0;
}

/* The one-letter escapes of JSON, and the bytes they stand for. */
static const char json_esc[] = "bfnrt\"\\/";
static const char json_unesc[] = "\b\f\n\r\t\"\\/";

/* The letter that escapes byte c in a JSON string ('n' for '\n'), or 0. */
int
json_esc_letter(int c)
{
	const char	*e;

	if ((e = memchr(json_unesc, c, sizeof(json_unesc) - 1)) == NULL)
		return 0;
	return json_esc[e - json_unesc];
}

/*
 * Decodes the body of a checked JSON string (no quotes) into out, which
 * has room for len bytes; returns the decoded length (never above len).
 */
size_t
json_unescape(const char *p, size_t len, char *out)
{
	size_t		 i = 0, o = 0, run;
	uint32_t	 cp, lo;
	const char	*e;

	while (i < len) {
		for (run = i; run < len && p[run] != '\\'; run++)
			;
		if (run > i) {
			memcpy(out + o, p + i, run - i);
			o += run - i;
			i = run;
			continue;
		}
		if ((e = memchr(json_esc, p[i + 1], sizeof(json_esc) - 1)) !=
		    NULL) {
			out[o++] = json_unesc[e - json_esc];
			i += 2;
			continue;
		}
		/* A checked string has only \uXXXX left, maybe a pair. */
		cp = (uint32_t)json_hex4(p, len, i + 2);
		if (cp >= 0xd800 && cp <= 0xdbff) {
			lo = (uint32_t)json_hex4(p, len, i + 8);
			cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			i += 6;
		}
		o += utf8_encode(cp, out + o);
		i += 6;
	}
	return o;
}
