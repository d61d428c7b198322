/*
 * json.h: the strict JSON grammar the codec checks lines against.
 */
#ifndef TALKNET_JSON_H
#define TALKNET_JSON_H

#include <stddef.h>

/*
 * Checks that p[0..len) is exactly one JSON object (RFC 8259), with
 * surrounding whitespace only and limited nesting.  Sets *ntokp to the
 * number of jsmn tokens the text makes.  Returns 0 or -1.
 */
int	 json_check(const char *p, size_t len, size_t *ntokp);
/*
 * Decodes the body of a checked JSON string (no quotes) into out, which
 * has room for len bytes; returns the decoded length (never above len).
 */
size_t	 json_unescape(const char *p, size_t len, char *out);
/* The letter that escapes byte c in a JSON string ('n' for '\n'), or 0. */
int	 json_esc_letter(int c);

#endif
