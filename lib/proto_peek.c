/*
 * proto_peek.c: a look at a server line's "type" without decoding it,
 * for clients that read many lines and fully parse only a few.
 */
#include <string.h>

#include "proto.h"

/*
 * Peeks at the type of a line a server wrote.  Every such line starts
 * {"type":"NAME" (the encoder writes "type" first); for one that does,
 * sets *t to NAME's type, or to MSG_NONE if NAME is unknown or not
 * closed by '"', and returns 0.  Returns -1 for a line in another shape,
 * which only proto_parse_reply() can read.
 */
int
proto_peek_type(const char *line, size_t len, enum msg_type *t)
{
	static const char	 head[] = "{\"type\":\"";
	const size_t		 hlen = sizeof(head) - 1;
	const char		*name, *q;
	const char		*cand;
	size_t			 nlen;
	int			 i;

	if (len <= hlen || memcmp(line, head, hlen) != 0)
		return -1;
	*t = MSG_NONE;
	name = line + hlen;
	if ((q = memchr(name, '"', len - hlen)) == NULL)
		return 0;
	nlen = (size_t)(q - name);
	/* The first letter rules out most names without a strlen(). */
	for (i = MSG_NONE + 1; i < MSG_TYPE_COUNT; i++) {
		cand = proto_type_name((enum msg_type)i);
		if (cand[0] == name[0] && strncmp(cand, name, nlen) == 0 &&
		    cand[nlen] == '\0') {
			*t = (enum msg_type)i;
			break;
		}
	}
	return 0;
}
