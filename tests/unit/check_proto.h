/*
 * check_proto.h: what the codec's unit tests share: a sample line and a
 * comparison of a decoded string.
 */
#ifndef TALKNET_CHECK_PROTO_H
#define TALKNET_CHECK_PROTO_H

#include <stddef.h>
#include <string.h>

#include "proto.h"

struct sample {
	const char	*s;
	size_t		 len;
};

#define S(x)	{ x, sizeof(x) - 1 }

/* Eight and nine two-byte characters: the user name limit is 8. */
#define E8	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" \
	"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
#define E9	E8 "\xc3\xa9"

/* Returns 1 if s holds exactly the NUL-terminated want. */
static inline int
str_is(struct str s, const char *want)
{
	size_t	n = strlen(want);

	return s.len == n && (n == 0 || memcmp(s.p, want, n) == 0);
}

#endif
