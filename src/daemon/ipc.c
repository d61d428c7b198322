/*
 * ipc.c: building and checking the frames between workers and the hub.
 * No I/O here: the callers batch frames in a struct buf and write it out
 * once per loop iteration.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "control_wire.h"
#include "ipc.h"
#include "log.h"
#include "request.h"
#include "strlist.h"
#include "talknetd.h"
#include "utf8.h"
#include "xmalloc.h"

/* wire_get finds the version and the length where struct wire_hdr has them. */
_Static_assert(offsetof(struct ipc_hdr, version) ==
    offsetof(struct wire_hdr, version) &&
    offsetof(struct ipc_hdr, len) == offsetof(struct wire_hdr, len),
    "struct ipc_hdr must start as struct wire_hdr");

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
	wire_put_str(b, p, len, IPC_MAX_PAYLOAD);
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

/* Ends the frame started at hdroff by writing its payload length. */
void
ipc_end(struct buf *b, size_t hdroff)
{
	wire_end(b, hdroff, sizeof(struct ipc_hdr), IPC_MAX_PAYLOAD);
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

/* Takes the next frame from b, of at most max payload bytes. */
int
ipc_get_max(struct buf *b, uint32_t max, struct ipc_hdr *h,
    const char **payload)
{
	return wire_get(b, sizeof(*h), IPC_VERSION,
	    max < IPC_MAX_PAYLOAD ? max : IPC_MAX_PAYLOAD, h, payload);
}

/* Splits a string-list payload into strs; -1 if it is malformed. */
long
ipc_get_strs(const char *payload, size_t len, struct str *strs, size_t max)
{
	return strlist_split(payload, len, strs, max);
}

/* Appends the strings of request m, in the order of its row. */
void
ipc_put_args(struct buf *b, const struct msg *m)
{
	const struct req_row	*row = req_row(m->type);
	struct str		 s;
	size_t			 i, j;

	if (row == NULL)
		fatalx("%s: not a request: %d", __func__, m->type);
	for (i = 0; i < row->nargs; i++) {
		if (row->args[i] == ARG_NAMES) {
			for (j = 0; j < m->nlist; j++)
				ipc_put_str(b, m->list[j].p, m->list[j].len);
			continue;
		}
		s = req_get(m, row->args[i]);
		ipc_put_str(b, s.p, s.len);
	}
}

/*
 * Checks a request frame and decodes it into *m: its strings, split
 * into *args (grown as needed, *nargs entries), must be as many as its
 * row says and each good for its kind.  m's strings and list point into
 * the payload and *args.  Returns NULL, or why the worker must be
 * dropped.
 */
const char *
ipc_get_request(const struct ipc_hdr *h, const char *p,
    const struct proto_limits *lim, struct str **args, size_t *nargs,
    struct msg *m)
{
	const struct req_row	*row;
	enum msg_type		 t = req_of_wire(h->type);
	long			 n;
	size_t			 i;

	if ((row = req_row(t)) == NULL)
		return "a frame of unknown type";
	if ((n = ipc_get_strs(p, h->len, NULL, 0)) == -1)
		return "request strings run past the frame";
	if (!req_nstrs_ok(t, n))
		return "request with a wrong number of strings";
	if ((size_t)n > *nargs) {
		*args = xreallocarray(*args, (size_t)n, sizeof(**args));
		*nargs = (size_t)n;
	}
	(void)ipc_get_strs(p, h->len, *args, *nargs);
	if (!req_args_valid(t, *args, (size_t)n, lim))
		return "request with a bad name, text or status";
	memset(m, 0, sizeof(*m));
	m->type = t;
	for (i = 0; i < row->nargs; i++) {
		if (row->args[i] == ARG_NAMES) {
			m->list = *args + i;
			m->nlist = (size_t)n - i;
			break;
		}
		req_set(m, row->args[i], (*args)[i]);
		if (row->args[i] == ARG_STATUS)
			m->st = (enum user_status)proto_status_lookup(
			    (*args)[i].p, (*args)[i].len);
	}
	return NULL;
}

/*
 * The hub's checks of a decoded request against its channel's state.
 * A request at or below the last seq that ran was resent after a hub
 * restart: IPC_STEP_SKIP.  An IDENTIFY with the name the row already
 * has is one the dead hub ran without storing its seq: IPC_STEP_AGAIN.
 * Returns NULL with *step set, or why the worker must be dropped.
 */
const char *
ipc_check_order(const struct ipc_chan *ch, uint32_t seq,
    const struct msg *m, enum ipc_step *step)
{
	const struct req_row	*row = req_row(m->type);

	*step = IPC_STEP_SKIP;
	if (seq <= ch->last_seq)
		return NULL;
	if (seq != ch->last_seq + 1)
		return "request out of sequence";
	if (ch->parted)
		return "request after DISCONNECT";
	*step = IPC_STEP_RUN;
	/* The worker answers NOT_IDENTIFIED and double IDENTIFY itself. */
	if (m->type == MSG_IDENTIFY && ch->identified) {
		if (ch->name.len != m->username.len || (m->username.len > 0 &&
		    memcmp(ch->name.p, m->username.p, m->username.len) != 0))
			return "IDENTIFY when identified";
		*step = IPC_STEP_AGAIN;
	} else if (!(row->flags & REQ_ANON) && !ch->identified)
		return "request before IDENTIFY";
	return NULL;
}

/* The hub's checks of a HELLO: NULL and *hello filled, or why to drop. */
const char *
ipc_check_hello(int had_hello, const char *p, size_t len,
    struct ipc_hello *hello)
{
	if (had_hello)
		return "a second HELLO";
	if (ipc_get_hello(p, len, hello) == -1)
		return "a malformed HELLO";
	return NULL;
}

/*
 * Whether a HELLO's address is made of what sockaddr_fmt writes for an
 * honest worker: "192.0.2.1:80", "[2001:db8::1]:80", "[fe80::1%eth0]:80"
 * (an interface name: letters, digits, '-', '_', '.'), or "?".
 */
int
ipc_addr_ok(const char *a)
{
	unsigned char	ch;

	if (*a == '\0')
		return 0;
	for (; *a != '\0'; a++) {
		ch = (unsigned char)*a;
		if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= 'A' && ch <= 'Z'))
			continue;
		if (strchr(".:[]%-_?", ch) == NULL)
			return 0;
	}
	return 1;
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
	if (l->pace_min_rate < 1024 || l->pace_min_rate > 1073741824 ||
	    l->pace_window_ms < 100 || l->pace_window_ms > 60000)
		return -1;
	return 0;
}
