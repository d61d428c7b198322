/*
 * worker_in.c: the client's side in: reading its socket into the
 * framer, cutting lines, the rate limit's hold on them, and checking
 * each line before it goes to the hub (or fails the client).
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "frame.h"
#include "log.h"
#include "proto.h"
#include "worker.h"
#include "xmalloc.h"

/* Checks one line from the client and forwards it, or fails the client. */
static void
worker_line(const char *line, size_t len)
{
	struct msg	m;

	if (proto_parse_request(&w.parser, line, len, &m) == -1) {
		log_debug("worker %s: invalid message", w.addr);
		worker_end(END_INVALID, LIMIT_LAST);
		worker_leave(RES_INVALID);
		return;
	}
	if (w.ident == IDENT_NONE && m.type != MSG_IDENTIFY) {
		worker_end(END_INVALID, LIMIT_LAST);
		worker_leave(RES_NOT_IDENTIFIED);
		return;
	}
	if (w.ident == IDENT_DONE && m.type == MSG_IDENTIFY) {
		worker_end(END_INVALID, LIMIT_LAST);
		worker_leave(RES_INVALID);
		return;
	}
	if (m.type == MSG_DISCONNECT) {
		worker_end(END_QUIT, LIMIT_LAST);
		worker_leave(RES_NONE);
		return;
	}
	worker_forward(&m);
	if (m.type == MSG_IDENTIFY) {
		w.ident = IDENT_PENDING;
		w.ident_seq = w.seq;
		/* Kept to answer the client if the hub dies mid-answer. */
		buf_reset(&w.ident_name);
		xbuf_append(&w.ident_name, m.username.p, m.username.len);
	}
}

/*
 * Runs the complete lines buffered from the client.  While an IDENTIFY
 * is pending the rest waits: whether they are allowed depends on it.
 */
void
worker_input(void)
{
	const char		*line;
	size_t			 len;
	enum frame_result	 r;

	while (!(w.flags & WF_CLOSING) && w.ident != IDENT_PENDING) {
		worker_refill();
		if (worker_token_wait_ms() > 0) {
			/* Bytes wait: the line they make waits for a token. */
			if (framer_pending(&w.in) > 0)
				worker_rate_held(1);
			break;
		}
		r = framer_next(&w.in, &line, &len);
		if (r == FRAME_NONE)
			break;
		worker_rate_held(0);
		w.rep.lines_in++;
		if (r == FRAME_TOOLONG) {
			log_debug("worker %s: line over %zu bytes", w.addr,
			    (size_t)w.lim.max_line);
			worker_end(END_INVALID, LIMIT_MAX_LINE);
			worker_leave(RES_INVALID);
			break;
		}
		if (w.lim.rate_limit != 0)
			w.tokens -= 1.0;
		worker_line(line, len);
	}
	if ((w.flags & (WF_RD_DONE | WF_CLOSING)) == WF_RD_DONE &&
	    w.ident != IDENT_PENDING &&
	    (framer_pending(&w.in) == 0 || worker_token_wait_ms() == 0)) {
		worker_end(END_CLIENT_CLOSED, LIMIT_LAST);
		worker_leave(RES_NONE);
	}
}

/* Reads from the client into the framer. */
void
worker_client_read(void)
{
	ssize_t	n;

	/*
	 * Read into the scratch and keep only what arrived: an idle
	 * worker's buffers stay as small as its last lines, not as big as
	 * a read.
	 */
	n = read(w.cfd, w.scratch, sizeof(w.scratch));
	if (n == -1) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		log_debug("worker %s: read: %s", w.addr, strerror(errno));
		w.flags |= WF_RD_DONE | WF_WR_DEAD;
	} else if (n == 0) {
		w.flags |= WF_RD_DONE | WF_RD_EOF;
	} else {
		w.rep.bytes_in += (uint64_t)n;
		worker_scratch_wrote((size_t)n);
		if (framer_feed(&w.in, w.scratch, (size_t)n) == -1)
			fatal("framer_feed");
	}
	worker_input();
}
