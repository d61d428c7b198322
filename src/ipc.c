/*
 * ipc.c: building and checking the frames between workers and the hub.
 * No I/O here: the callers batch frames in a struct buf and write it out
 * once per loop iteration.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "ipc.h"
#include "log.h"
#include "strlist.h"
#include "talknetd.h"
#include "utf8.h"
#include "xmalloc.h"

/* How many strings each request carries: {min, max}. */
static const struct {
	long	min;
	long	max;
} ipc_request_strs[MSG_REQUEST_LAST + 1] = {
	[MSG_IDENTIFY]		= { 1, 1 },	/* username */
	[MSG_STATUS]		= { 1, 1 },	/* status */
	[MSG_USERS]		= { 0, 0 },
	[MSG_TEXT]		= { 2, 2 },	/* username, text */
	[MSG_PUBLIC_TEXT]	= { 1, 1 },	/* text */
	[MSG_NEW_ROOM]		= { 1, 1 },	/* roomname */
	[MSG_INVITE]		= { 2, INT32_MAX }, /* roomname, usernames */
	[MSG_JOIN_ROOM]		= { 1, 1 },	/* roomname */
	[MSG_ROOM_USERS]	= { 1, 1 },	/* roomname */
	[MSG_ROOM_TEXT]		= { 2, 2 },	/* roomname, text */
	[MSG_LEAVE_ROOM]	= { 1, 1 },	/* roomname */
	[MSG_DISCONNECT]	= { 0, 0 },
};

/* Appends one frame with a fixed payload to b. */
void
ipc_put(struct buf *b, uint16_t type, uint32_t peer, const void *payload,
    size_t len)
{
	struct ipc_hdr	h;

	if (len > IPC_MAX_PAYLOAD)
		fatalx("%s: payload of %zu bytes", __func__, len);
	memset(&h, 0, sizeof(h));
	h.version = IPC_VERSION;
	h.type = type;
	h.len = (uint32_t)len;
	h.peer = peer;
	xbuf_reserve(b, sizeof(h) + len);
	xbuf_append(b, &h, sizeof(h));
	if (len > 0)
		xbuf_append(b, payload, len);
}

/*
 * Starts a frame whose payload follows.  Returns the header's offset from
 * the first pending byte, which stays true if the buffer compacts.
 */
size_t
ipc_begin(struct buf *b, uint16_t type, uint32_t peer)
{
	ipc_put(b, type, peer, NULL, 0);
	return b->len - sizeof(struct ipc_hdr) - b->off;
}

/* Appends one length-prefixed string to the frame being built. */
void
ipc_put_str(struct buf *b, const char *p, size_t len)
{
	uint32_t	n;

	if (len > IPC_MAX_PAYLOAD)
		fatalx("%s: string of %zu bytes", __func__, len);
	n = (uint32_t)len;
	xbuf_reserve(b, sizeof(n) + len);
	xbuf_append(b, &n, sizeof(n));
	if (len > 0)
		xbuf_append(b, p, len);
}

/* Ends the frame started at hdroff by writing its payload length. */
void
ipc_end(struct buf *b, size_t hdroff)
{
	struct ipc_hdr	h;
	size_t		len;

	char		*hp = b->data + b->off + hdroff;

	memcpy(&h, hp, sizeof(h));
	len = b->len - b->off - hdroff - sizeof(h);
	if (len > IPC_MAX_PAYLOAD)
		fatalx("%s: payload of %zu bytes", __func__, len);
	h.len = (uint32_t)len;
	memcpy(hp, &h, sizeof(h));
}

/* Sets the seq of the frame whose header is at hdroff. */
void
ipc_set_seq(struct buf *b, size_t hdroff, uint32_t seq)
{
	struct ipc_hdr	 h;
	char		*hp = b->data + b->off + hdroff;

	memcpy(&h, hp, sizeof(h));
	h.seq = seq;
	memcpy(hp, &h, sizeof(h));
}

/* Checks a HELLO payload: exact size and a NUL-terminated address. */
int
ipc_get_hello(const char *payload, size_t len, struct ipc_hello *hello)
{
	if (len != sizeof(*hello))
		return -1;
	memcpy(hello, payload, sizeof(*hello));
	if (memchr(hello->addr, '\0', sizeof(hello->addr)) == NULL)
		return -1;
	return 0;
}

/* Takes the next frame from b, checking its header. */
int
ipc_get(struct buf *b, struct ipc_hdr *h, const char **payload)
{
	return ipc_get_max(b, IPC_MAX_PAYLOAD, h, payload);
}

/*
 * The frames of one read of n bytes at data (a scratch buffer the
 * caller reuses): they run straight from data unless keep holds a frame
 * that arrived in part, which data then completes.  Returns the buffer
 * to take frames from; view is the caller's storage for the first case.
 */
struct buf *
ipc_feed(struct buf *keep, struct buf *view, char *data, size_t n)
{
	if (n == 0 || buf_pending(keep) > 0) {
		xbuf_append(keep, data, n);
		return keep;
	}
	/* A buffer over data itself: never freed or grown past it. */
	buf_init_store(view, data, n);
	buf_commit(view, n);
	return view;
}

/* After ipc_feed's frames were taken: keeps a partial frame from data. */
void
ipc_keep_rest(struct buf *keep, const struct buf *src)
{
	if (src != keep && buf_pending(src) > 0)
		xbuf_append(keep, buf_head(src), buf_pending(src));
}

/* Takes the next frame from b, of at most max payload bytes. */
int
ipc_get_max(struct buf *b, uint32_t max, struct ipc_hdr *h,
    const char **payload)
{
	size_t	avail = buf_pending(b);

	if (avail < sizeof(*h))
		return 0;
	memcpy(h, buf_head(b), sizeof(*h));
	if (h->version != IPC_VERSION || h->len > max ||
	    h->len > IPC_MAX_PAYLOAD)
		return -1;
	if (avail - sizeof(*h) < h->len)
		return 0;
	*payload = buf_head(b) + sizeof(*h);
	buf_drain(b, sizeof(*h) + h->len);
	return 1;
}

/* Splits a string-list payload into strs; -1 if it is malformed. */
long
ipc_get_strs(const char *payload, size_t len, struct str *strs, size_t max)
{
	return strlist_split(payload, len, strs, max);
}

/* Checks the number of strings a request frame carries. */
int
ipc_check_request(uint16_t type, long nstrs)
{
	enum msg_type	m = ipc_request_msg(type);

	if (m == MSG_NONE)
		return -1;
	if (nstrs < ipc_request_strs[m].min || nstrs > ipc_request_strs[m].max)
		return -1;
	return 0;
}

/* Checks the strings of a request as the protocol requires. */
int
ipc_check_args(enum msg_type t, const struct str *a, size_t n,
    size_t max_name, size_t max_room)
{
	size_t	i;

	switch (t) {
	case MSG_IDENTIFY:
		return utf8_name_valid(a[0].p, a[0].len, max_name);
	case MSG_STATUS:
		return proto_status_lookup(a[0].p, a[0].len) != -1;
	case MSG_TEXT:
		return utf8_name_valid(a[0].p, a[0].len, max_name) &&
		    utf8_valid(a[1].p, a[1].len);
	case MSG_PUBLIC_TEXT:
		return utf8_valid(a[0].p, a[0].len);
	case MSG_INVITE:
		for (i = 1; i < n; i++)
			if (!utf8_name_valid(a[i].p, a[i].len, max_name))
				return 0;
		return utf8_name_valid(a[0].p, a[0].len, max_room);
	case MSG_NEW_ROOM:
	case MSG_JOIN_ROOM:
	case MSG_ROOM_USERS:
	case MSG_LEAVE_ROOM:
		return utf8_name_valid(a[0].p, a[0].len, max_room);
	case MSG_ROOM_TEXT:
		return utf8_name_valid(a[0].p, a[0].len, max_room) &&
		    utf8_valid(a[1].p, a[1].len);
	case MSG_USERS:
	case MSG_DISCONNECT:
		return 1;
	default:
		return 0;
	}
}

/* The protocol request a request frame type stands for, or MSG_NONE. */
enum msg_type
ipc_request_msg(uint16_t type)
{
	if (type < IPC_REQ_BASE + MSG_REQUEST_FIRST ||
	    type > IPC_REQ_BASE + MSG_REQUEST_LAST)
		return MSG_NONE;
	return (enum msg_type)(type - IPC_REQ_BASE);
}

/* Checks a CLOSE payload; returns its reason, or 0 if it is bad. */
uint32_t
ipc_get_close(const char *payload, size_t len)
{
	struct ipc_close	c;

	if (len != sizeof(c))
		return 0;
	memcpy(&c, payload, sizeof(c));
	if (c.reason == 0 || c.reason > CLOSE_REASON_LAST || c.pad != 0)
		return 0;
	return c.reason;
}

/* What a close reason means, for logs. */
const char *
ipc_close_reason_name(uint32_t reason)
{
	switch (reason) {
	case CLOSE_QUIT:
		return "quit";
	case CLOSE_PROTOCOL:
		return "protocol error";
	case CLOSE_QUEUE:
		return "queue over the limit";
	case CLOSE_REFUSED:
		return "refused";
	case CLOSE_TIMEOUT:
		return "no HELLO in time";
	case CLOSE_GONE:
		return "did not come back";
	case CLOSE_KICKED:
		return "kicked";
	default:
		return "unknown reason";
	}
}

/* Checks reloaded limits against the ceilings the options allow. */
int
ipc_check_limits(const struct shm_live *l)
{
	if (l->log_level > 3 || l->max_gather > CEIL_MAX_GATHER)
		return -1;
	if (l->max_line < 64 || l->max_line > CEIL_MAX_LINE)
		return -1;
	if (l->max_queue < 4096 || l->max_queue > CEIL_MAX_QUEUE)
		return -1;
	if (l->login_timeout > 86400 || l->stall_timeout > 86400)
		return -1;
	if (l->rate_limit > 1000000 || l->rate_burst < 1 ||
	    l->rate_burst > 1000000)
		return -1;
	return 0;
}
