/*
 * fuzz_ipc.c: libFuzzer target for the frames a worker sends the hub.
 *
 * A compromised worker is hostile, so the hub must survive any bytes on
 * its channel.  The input is two control bytes and then the channel's
 * byte stream:
 *
 *   data[0]: how the stream is cut into reads (as data[1] of
 *            fuzz_codec.c: 0 one read, 1 one byte per read, 2 reads of
 *            1-8 bytes, 3 reads of 1-300 bytes; the other bits seed the
 *            read sizes);
 *   data[1]: the configured limits: max_name is 1 + (data[1] & 15) and
 *            max_room is 1 + (data[1] >> 4) code points.
 *
 * Each frame goes through what hub_read, hub_dispatch, hub_hello and
 * hub_request do with it: ipc_get, then the hub's own checks
 * (ipc_check_hello and ipc_addr_ok; ipc_get_request and
 * ipc_check_order), with its per-worker state reduced to its flags, its
 * name and its last seq.  A frame the hub would drop its worker for ends the
 * input, as hub_kill ends the channel.
 *
 * Checked: no crash or sanitizer report; ipc_get returns a payload
 * inside the buffer, right after the header it returns, and drains
 * exactly that frame; -1 from ipc_get stays -1 for that buffer even when
 * well-formed bytes follow; ipc_get_strs counts and splits alike and
 * every string lies inside the payload.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "ipc.h"
#include "proto.h"
#include "request.h"
#include "utf8.h"
#include "xmalloc.h"
#include "fuzz.h"

/* What the hub keeps per worker, as far as frame handling needs it. */
struct sim_conn {
	int		 hello;		/* HELLO received (c->slot set) */
	int		 identified;
	int		 parted;
	uint64_t	 last_seq;	/* the row's last_seq */
	char		 addr[64];
	char		 name[4 * 16];	/* its user name, if identified */
	size_t		 name_len;
	struct proto_limits lim;	/* hub.cfg->max_name, max_room */
	struct str	*args;		/* hub.args */
	size_t		 nargs;
};

/* hub_hello's checks, the hub's own; -1 to drop the worker. */
static int
sim_hello(struct sim_conn *c, const char *p, size_t len)
{
	struct ipc_hello	hello;

	if (ipc_check_hello(c->hello, p, len, &hello) != NULL ||
	    !ipc_addr_ok(hello.addr))
		return -1;
	FUZZ_CHECK(len == sizeof(hello));
	FUZZ_CHECK(memchr(hello.addr, '\0', sizeof(hello.addr)) != NULL);
	(void)strlcpy(c->addr, hello.addr, sizeof(c->addr));
	FUZZ_CHECK(utf8_valid(c->addr, strlen(c->addr)));
	/*
	 * The hub gives a returning worker its old row only if it belongs
	 * to the same process; this target accepts any slot so that the
	 * requests after it are explored as well.
	 */
	c->hello = 1;
	return 0;
}

/*
 * Splits the strings of a request frame as ipc_get_request does, and
 * checks they lie inside the payload, one after the other; -1 if they
 * run past it.
 */
static int
check_strs(struct sim_conn *c, const struct ipc_hdr *h, const char *p)
{
	const char	*end = p + h->len;
	long		 n, n2, i;

	if ((n = ipc_get_strs(p, h->len, NULL, 0)) == -1)
		return -1;
	FUZZ_CHECK(n >= 0 && (size_t)n <= h->len / sizeof(uint32_t));
	if ((size_t)n > c->nargs) {
		c->args = xreallocarray(c->args, (size_t)n,
		    sizeof(*c->args));
		c->nargs = (size_t)n;
	}
	n2 = ipc_get_strs(p, h->len, c->args, c->nargs);
	FUZZ_CHECK(n2 == n);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(c->args[i].p >= p + sizeof(uint32_t));
		FUZZ_CHECK(c->args[i].len <= (size_t)(end - c->args[i].p));
		if (i > 0)
			FUZZ_CHECK(c->args[i].p == c->args[i - 1].p +
			    c->args[i - 1].len + sizeof(uint32_t));
	}
	if (n > 0)
		FUZZ_CHECK(c->args[n - 1].p + c->args[n - 1].len == end);
	return 0;
}

/* hub_request's checks, the hub's own; -1 to drop the worker. */
static int
sim_request(struct sim_conn *c, const struct ipc_hdr *h, const char *p)
{
	struct ipc_chan	 ch;
	struct msg	 m;
	enum ipc_step	 step;

	FUZZ_CHECK(req_of_wire(h->type) != MSG_NONE);
	if (check_strs(c, h, p) == -1 ||
	    ipc_get_request(h, p, &c->lim, &c->args, &c->nargs, &m) != NULL)
		return -1;
	FUZZ_CHECK(m.type == req_of_wire(h->type));
	memset(&ch, 0, sizeof(ch));
	ch.last_seq = c->last_seq;
	ch.identified = c->identified;
	ch.parted = c->parted;
	ch.name.p = c->name;
	ch.name.len = c->name_len;
	if (ipc_check_order(&ch, h->seq, &m, &step) != NULL)
		return -1;
	if (step == IPC_STEP_SKIP) {
		if (m.type == MSG_DISCONNECT)
			c->parted = 1;
		return 0;
	}
	/* The handlers: only the state frame handling depends on. */
	if (step == IPC_STEP_RUN && m.type == MSG_IDENTIFY) {
		FUZZ_CHECK(m.username.len <= sizeof(c->name));
		memcpy(c->name, m.username.p, m.username.len);
		c->name_len = m.username.len;
		c->identified = 1;
	} else if (m.type == MSG_DISCONNECT)
		c->parted = 1;
	c->last_seq = h->seq;
	return 0;
}

/* Mirrors hub_dispatch: one frame from a worker; -1 to drop it. */
static int
sim_dispatch(struct sim_conn *c, const struct ipc_hdr *h, const char *p)
{
	switch (h->type) {
	case IPC_HELLO:
		return sim_hello(c, p, h->len);
	default:
		if (!c->hello || req_of_wire(h->type) == MSG_NONE)
			return -1;
		return sim_request(c, h, p);
	}
}

/* Checks that a bad header keeps failing, whatever follows it. */
static void
check_sticky(struct buf *b)
{
	struct ipc_hdr		 h;
	struct ipc_hello	 hello;
	const char		*p;

	FUZZ_CHECK(ipc_get(b, &h, &p) == -1);
	memset(&hello, 0, sizeof(hello));
	hello.slot = IPC_SLOT_NEW;
	ipc_put(b, IPC_HELLO, 0, &hello, sizeof(hello));
	FUZZ_CHECK(ipc_get(b, &h, &p) == -1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sim_conn	 c;
	struct buf	 b;
	struct ipc_hdr	 h;
	const char	*p, *head;
	size_t		 fed = 0, chunk, want, avail, n, pending;
	uint32_t	 rng;
	int		 mode, r, dropped = 0;

	if (size < 2)
		return 0;
	memset(&c, 0, sizeof(c));
	c.lim.max_name = 1 + (data[1] & 15);
	c.lim.max_room = 1 + (data[1] >> 4);
	mode = data[0] & 3;
	rng = ((uint32_t)data[0] << 8 | data[1]) ^ ((uint32_t)size << 16) ^
	    0x9e3779b9U;
	if (rng == 0)
		rng = 1;
	data += 2;
	size -= 2;
	buf_init(&b);

	while (fed < size && !dropped) {
		chunk = fuzz_chunk(mode, &rng, size - fed);
		/* Read as hub_read does: reserve, then fill part of it. */
		want = 1 + xorshift32(&rng) % 512;
		xbuf_reserve(&b, want);
		avail = b.cap - b.len;
		FUZZ_CHECK(avail >= want);
		n = chunk < avail ? chunk : avail;
		memcpy(b.data + b.len, data + fed, n);
		buf_commit(&b, n);
		fed += n;

		for (;;) {
			head = buf_head(&b);
			pending = buf_pending(&b);
			p = NULL;
			r = ipc_get(&b, &h, &p);
			if (r == 0) {
				FUZZ_CHECK(buf_pending(&b) == pending);
				break;
			}
			if (r == -1) {
				FUZZ_CHECK(pending >= IPC_HDR_LEN);
				FUZZ_CHECK(buf_pending(&b) == pending);
				check_sticky(&b);
				dropped = 1;
				break;
			}
			FUZZ_CHECK(r == 1);
			FUZZ_CHECK(h.version == IPC_VERSION &&
			    h.len <= IPC_MAX_PAYLOAD);
			FUZZ_CHECK(pending >= IPC_HDR_LEN &&
			    h.len <= pending - IPC_HDR_LEN);
			FUZZ_CHECK(memcmp(&h, head, sizeof(h)) == 0);
			FUZZ_CHECK(p == head + IPC_HDR_LEN);
			FUZZ_CHECK(p >= b.data &&
			    (size_t)(p - b.data) + h.len <= b.cap);
			FUZZ_CHECK(buf_pending(&b) ==
			    pending - IPC_HDR_LEN - h.len);
			if (sim_dispatch(&c, &h, p) == -1) {
				dropped = 1;	/* hub_kill */
				break;
			}
		}
	}

	free(c.args);
	buf_free(&b);
	return 0;
}
