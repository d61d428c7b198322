/*
 * strlist.c: splitting a length-prefixed string list, the one place
 * both internal protocols check such a payload from an untrusted peer.
 */
#include <stdint.h>
#include <string.h>

#include "strlist.h"

/* Splits a string list into strs; -1 if a length overruns the payload. */
long
strlist_split(const char *payload, size_t len, struct str *strs, size_t max)
{
	size_t		off = 0;
	long		n = 0;
	uint32_t	slen;

	while (off < len) {
		if (len - off < sizeof(slen))
			return -1;
		memcpy(&slen, payload + off, sizeof(slen));
		off += sizeof(slen);
		if (slen > len - off)
			return -1;
		if (strs != NULL && (size_t)n < max) {
			strs[n].p = payload + off;
			strs[n].len = slen;
		}
		off += slen;
		if (n == INT32_MAX)
			return -1;
		n++;
	}
	return n;
}
