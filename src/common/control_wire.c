/*
 * control_wire.c: building and checking control frames, for the master
 * and for talknetctl alike.  No I/O here.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "control_wire.h"
#include "log.h"
#include "strlist.h"
#include "xmalloc.h"

/* Appends a frame of n strings to b. */
void
ctl_put(struct buf *b, uint16_t type, const struct str *s, size_t n)
{
	size_t	off, i;

	off = ctl_begin(b, type);
	for (i = 0; i < n; i++)
		ctl_put_str(b, s[i].p, s[i].len);
	ctl_end(b, off);
}

/* Starts a frame; the offset stays true if the buffer compacts. */
size_t
ctl_begin(struct buf *b, uint16_t type)
{
	struct ctl_hdr	h;

	memset(&h, 0, sizeof(h));
	h.version = CTL_VERSION;
	h.type = type;
	xbuf_append(b, &h, sizeof(h));
	return b->len - sizeof(h) - b->off;
}

/* Appends one length-prefixed string. */
void
ctl_put_str(struct buf *b, const char *p, size_t len)
{
	wire_put_str(b, p, len, CTL_MAX_ANSWER);
}

/* Writes the payload length of the frame started at hdroff. */
void
ctl_end(struct buf *b, size_t hdroff)
{
	wire_end(b, hdroff, sizeof(struct ctl_hdr), CTL_MAX_ANSWER);
}

/* Appends one string of at most max bytes: its uint32_t length, then it. */
void
wire_put_str(struct buf *b, const char *p, size_t len, uint32_t max)
{
	uint32_t	n;

	if (len > max)
		fatalx("%s: string of %zu bytes", __func__, len);
	n = (uint32_t)len;
	xbuf_reserve(b, sizeof(n) + len);
	xbuf_append(b, &n, sizeof(n));
	if (len > 0)
		xbuf_append(b, p, len);
}

/*
 * Ends the frame whose hdrlen-byte header is at hdroff from the first
 * pending byte: its len is what follows, of at most max bytes.
 */
void
wire_end(struct buf *b, size_t hdroff, size_t hdrlen, uint32_t max)
{
	struct wire_hdr	 h;
	char		*hp = b->data + b->off + hdroff;
	size_t		 len;

	memcpy(&h, hp, sizeof(h));
	len = b->len - b->off - hdroff - hdrlen;
	if (len > max)
		fatalx("%s: payload of %zu bytes", __func__, len);
	h.len = (uint32_t)len;
	memcpy(hp, &h, sizeof(h));
}

/* Takes the next frame of at most max payload bytes. */
int
ctl_get(struct buf *b, uint32_t max, struct ctl_hdr *h, const char **payload)
{
	return wire_get(b, sizeof(*h), CTL_VERSION, max, h, payload);
}

/* Takes the next frame whose header starts as struct wire_hdr. */
int
wire_get(struct buf *b, size_t hdrlen, uint16_t version, uint32_t max,
    void *h, const char **payload)
{
	struct wire_hdr	wh;
	size_t		avail = buf_pending(b);

	if (avail < hdrlen)
		return 0;
	memcpy(h, buf_head(b), hdrlen);
	memcpy(&wh, h, sizeof(wh));
	if (wh.version != version || wh.len > max)
		return -1;
	if (avail - hdrlen < wh.len)
		return 0;
	*payload = buf_head(b) + hdrlen;
	buf_drain(b, hdrlen + wh.len);
	return 1;
}

/* Splits a payload into strings; -1 if a length overruns it. */
long
ctl_get_strs(const char *payload, size_t len, struct str *s, size_t max)
{
	return strlist_split(payload, len, s, max);
}
