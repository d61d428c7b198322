/*
 * utf8.h: strict UTF-8 checks and the name rules of the protocol.
 */
#ifndef TALKNET_UTF8_H
#define TALKNET_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Returns 1 if p[0..len) is valid UTF-8: shortest form only, no UTF-16
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequence.  NUL bytes are valid UTF-8.  Returns 0 otherwise.
 */
int	 utf8_valid(const char *p, size_t len);
/* Counts the code points of valid UTF-8. */
size_t	 utf8_count(const char *p, size_t len);
/* Writes cp (<= U+10FFFF, not a surrogate) as UTF-8 into out; returns 1-4. */
size_t	 utf8_encode(uint32_t cp, char *out);
/*
 * Returns 1 if p[0..len) is a valid user or room name: valid UTF-8,
 * 1 to max_cp code points, and no control character (U+0000..U+001F,
 * U+007F..U+009F).
 */
int	 utf8_name_valid(const char *p, size_t len, size_t max_cp);

#endif
