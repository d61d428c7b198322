/*
 * worker_out.c: the client's side out: the queue, up to --max-queue,
 * lines gathered in the scratch and written at once, the send pipe
 * spliced to the socket, the bytes the socket took (which start the
 * stall check), and the final reply after CLOSE.
 */
#include "config.h"

#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "proto.h"
#include "worker.h"
#include "xmalloc.h"

static ssize_t	worker_send(const char *, size_t);

/*
 * Ends gathering: the lines gathered at the front of the scratch go to
 * the client in one write, and only what the socket does not take is
 * copied to the queue.
 */
void
worker_gather_flush(void)
{
	ssize_t	n = 0;

	if (!(w.flags & WF_GATHERING))
		return;
	w.flags &= ~WF_GATHERING;
	if (w.gathered == 0)
		return;
	/* The queue was empty when gathering began, so order holds. */
	if (!(w.flags & WF_WR_DEAD) &&
	    (n = worker_send(w.scratch, w.gathered)) == -1)
		n = 0;	/* the loop's own write meets the error again */
	if ((size_t)n < w.gathered)
		xbuf_append(&w.out, w.scratch + n, w.gathered - (size_t)n);
	w.gathered = 0;
}

/*
 * Drops the queue but for its first line, whose start may already be on
 * its way to the client: the client never gets a line cut short.
 */
void
worker_queue_keep_head(void)
{
	const char	*head, *nl;
	size_t		 keep = 0;

	/* A TLS write that waits is retried with at least its bytes. */
	if (w.tls_wlen > 0 && w.tls_wlen <= buf_pending(&w.out))
		keep = w.tls_wlen - 1;
	head = buf_head(&w.out);
	if ((nl = memchr(head + keep, '\n', buf_pending(&w.out) - keep)) !=
	    NULL)
		w.out.len = w.out.off + (size_t)(nl - head) + 1;
	else
		buf_reset(&w.out);
}

/*
 * The most the client queue may hold.  The worker reads the hub only
 * while less than max-queue is unsent, and one read adds at most a line
 * and a read's worth: only a hub channel that hung up, read to its end,
 * can take the queue past this.
 */
static size_t
worker_queue_cap(void)
{
	return (size_t)(w.lim.max_queue + 2 * w.lim.max_line) +
	    2 * WORKER_READ_SIZE;
}

/* Queues a line for the client; a full queue disconnects the client. */
void
worker_queue(const char *p, size_t len)
{
	if (w.flags & (WF_WR_DEAD | WF_CUT))
		return;
	if ((w.flags & WF_GATHERING) && w.gathered + len > w.lim.max_queue) {
		worker_gather_flush();
		/* What the client took is no longer queued: gather on. */
		worker_flag(WF_GATHERING, buf_pending(&w.out) == 0 &&
		    len <= w.lim.max_queue);
	}
	if (w.flags & WF_GATHERING) {
		/*
		 * p lies in the scratch past the lines gathered so far and
		 * the frame headers between them, so moving it down never
		 * overwrites a frame still to be read.
		 */
		memmove(w.scratch + w.gathered, p, len);
		w.gathered += len;
		worker_stall_arm();
		return;
	}
	/* A channel that hung up holds at most its socket buffer. */
	if (!(w.flags & WF_HUB_HUP) &&
	    buf_pending(&w.out) + len > worker_queue_cap()) {
		log_info("worker %s: output queue over %zu bytes, "
		    "disconnecting", w.addr, worker_queue_cap());
		worker_end(END_QUEUE, LIMIT_MAX_QUEUE);
		w.flags |= WF_CUT;
		worker_queue_keep_head();
		worker_leave(RES_NONE);
		return;
	}
	xbuf_append(&w.out, p, len);
	worker_stall_arm();
}

/*
 * Opens the send pipe.  What a process write()s to a TCP socket is
 * copied into a page the kernel keeps for that process until it exits:
 * 32 KiB unless net.core.high_order_alloc_disable is set.  With one
 * process per client that is one such page per client.  Bytes written
 * into a pipe and spliced to the socket travel in the pipe's own pages,
 * which the kernel frees once they are sent.  Without a pipe (no
 * splice(2), or no pipe to be had) the worker writes to the socket.
 */
void
worker_pipe_open(void)
{
	int	p[2];

	w.pipe_r = w.pipe_w = -1;
#ifdef HAVE_SPLICE
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_debug("worker %s: pipe2: %s", w.addr, strerror(errno));
		return;
	}
	/* Smaller than the default: what a stuck client pins is less,
	 * and the user's pipe quota (fs.pipe-user-pages-soft) lasts for
	 * more clients.  A refusal leaves the default, which works too. */
	(void)fcntl(p[1], F_SETPIPE_SZ, WORKER_PIPE_SIZE);
	w.pipe_r = p[0];
	w.pipe_w = p[1];
#else
	(void)p;
#endif
}

/*
 * Starts the stall check when bytes wait for the client and none runs:
 * its first look only notes what was acknowledged (the mark is unknown).
 */
void
worker_stall_arm(void)
{
	if (w.stall_check_at != 0 || w.lim.stall_timeout == 0)
		return;
	w.acked_mark = UINT64_MAX;
	w.stall_check_at = clock_now_ms() +
	    (int64_t)w.lim.stall_timeout * 1000;
}

/*
 * Counts bytes the client's socket took.  The first after a quiet time
 * starts the stall check: everything sent before them was acked then.
 */
static void
worker_sent(ssize_t n)
{
	if (n <= 0)
		return;
	if (w.stall_check_at == 0 && w.lim.stall_timeout != 0) {
		w.acked_mark = w.sent;
		w.stall_check_at = clock_now_ms() +
		    (int64_t)w.lim.stall_timeout * 1000;
	}
	w.sent += (uint64_t)n;
}

/*
 * Sends bytes to the client, through the send pipe when there is one,
 * and returns how many the kernel took: 0 when the socket is full, -1
 * when it is dead.  Bytes taken may wait in the pipe: they go first on
 * the next call, which may be made with len 0 just to push them.
 */
static ssize_t
worker_send(const char *p, size_t len)
{
	size_t	off = 0;
	ssize_t	n;
	int	i;

	if (w.tls != NULL)
		return worker_tls_send(p, len);
	if (w.pipe_w == -1) {
		if (len == 0)
			return 0;
		if ((n = write(w.cfd, p, len)) == -1)
			return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
		worker_count_out(p, (size_t)n);
		worker_sent(n);
		return n;
	}
#ifdef HAVE_SPLICE
	for (i = 0; i < WORKER_SEND_ROUNDS; i++) {
		if (off < len) {
			n = write(w.pipe_w, p + off, len - off);
			if (n == -1 && errno != EAGAIN && errno != EINTR)
				return -1;
			if (n > 0) {
				worker_count_out(p + off, (size_t)n);
				off += (size_t)n;
				w.piped += (size_t)n;
			}
		}
		if (w.piped == 0)
			break;
		n = splice(w.pipe_r, NULL, w.cfd, NULL, w.piped,
		    SPLICE_F_NONBLOCK);
		if (n == -1)
			return (errno == EAGAIN || errno == EINTR) ?
			    (ssize_t)off : -1;
		w.piped -= (size_t)n;
		worker_sent(n);
		/* The socket is full, or everything went. */
		if (n == 0 || w.piped > 0 || off == len)
			break;
	}
#else
	(void)i;
	(void)n;
#endif
	return (ssize_t)off;
}

/* Bytes for the client not yet in its socket: the queue and the pipe. */
size_t
worker_unsent(void)
{
	return buf_pending(&w.out) + w.piped;
}

/* Sends as much of the queue as the socket takes; -1 on a dead socket. */
int
worker_write(void)
{
	ssize_t	n;

	if (worker_unsent() == 0)
		return 0;
	if ((n = worker_send(buf_head(&w.out), buf_pending(&w.out))) == -1)
		return -1;
	buf_drain(&w.out, (size_t)n);
	return 0;
}

/* Appends the final INVALID or NOT_IDENTIFIED reply after CLOSE. */
void
worker_final_reply(void)
{
	struct msg	m;

	if (w.final == RES_NONE)
		return;
	memset(&m, 0, sizeof(m));
	m.type = MSG_RESPONSE;
	m.operation = str_c("INVALID");
	m.res = w.final;
	w.final = RES_NONE;
	/* The reply comes after whole lines only, whatever the limit. */
	worker_queue_keep_head();
	if (proto_encode(&w.out, &m) == -1)
		fatal("proto_encode");
}
