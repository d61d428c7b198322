/*
 * worker_hub.c: a worker's channel to the hub.  It connects (again after
 * a hub restart), sends HELLO and the requests the hub has not run,
 * reads the hub's frames and runs them: lines for the client, the
 * answers to IDENTIFY, WELCOME and CLOSE.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "peer.h"
#include "proto.h"
#include "request.h"
#include "shm.h"
#include "talknetd.h"
#include "title.h"
#include "worker.h"
#include "xmalloc.h"

static void	worker_hub_lost(void);

/*
 * Starts a request frame with the next seq.  The frame stays in hub.out
 * until the worker's row shows the hub ran it (worker_trim).
 */
static size_t
worker_request(enum msg_type t)
{
	size_t	hdr;

	hdr = ipc_begin(&w.hub.out, req_wire(t), 0);
	ipc_set_seq(&w.hub.out, hdr, ++w.seq);
	return hdr;
}

/* Asks the hub for the DISCONNECT semantics; the answer is CLOSE. */
void
worker_leave(enum result final)
{
	size_t	hdr;

	if (w.flags & WF_CLOSING)
		return;
	w.flags |= WF_CLOSING;
	w.final = final;
	w.flags |= WF_RD_DONE;
	hdr = worker_request(MSG_DISCONNECT);
	ipc_end(&w.hub.out, hdr);
}

/*
 * Drops the requests the hub has run, as the worker's row in the shared
 * table says; they need not be sent again after a hub restart.
 */
void
worker_trim(uint64_t last_seq)
{
	struct ipc_hdr	h;
	size_t		len;

	while (buf_pending(&w.hub.out) >= sizeof(h)) {
		memcpy(&h, buf_head(&w.hub.out), sizeof(h));
		if (h.seq > last_seq)
			break;
		len = sizeof(h) + h.len;
		buf_drain(&w.hub.out, len);
		w.hsent = w.hsent > len ? w.hsent - len : 0;
	}
}

/* The last request the hub ran, from the worker's row (read-only). */
uint64_t
worker_last_seq(void)
{
	if (w.slot == IPC_SLOT_NEW)
		return 0;
	return __atomic_load_n(&shm_user(&w.tab, w.slot)->last_seq,
	    __ATOMIC_ACQUIRE);
}

/* Forwards one valid request to the hub as a frame of strings. */
void
worker_forward(const struct msg *m)
{
	size_t	hdr;

	hdr = worker_request(m->type);
	ipc_put_args(&w.hub.out, m);
	ipc_end(&w.hub.out, hdr);
}

/* Ends a pending IDENTIFY; on success, the process title changes. */
static int
worker_ident_done(int ok)
{
	struct shm_user	*u;

	if (!ok) {
		w.ident = IDENT_NONE;
		return 0;
	}
	/*
	 * The row is read from the shared table, mapped read-only here; the
	 * name is printed from it with its length, not copied to the stack.
	 */
	u = shm_user(&w.tab, w.slot);
	if (u->name_len > 4 * CEIL_MAX_NAME ||
	    u->name_len > w.tab.hdr->name_bytes)
		return -1;
	title_set("worker %.*s %s", (int)u->name_len,
	    shm_user_name(&w.tab, u), w.addr);
	w.ident = IDENT_DONE;
	w.login_deadline = 0;
	return 0;
}

/* Takes the answer to IDENTIFY. */
static int
worker_identified(const char *p, size_t len)
{
	struct ipc_identified	 id;

	if (len != sizeof(id) || w.ident != IDENT_PENDING)
		return -1;
	memcpy(&id, p, sizeof(id));
	if (id.slot != w.slot)
		return -1;
	return worker_ident_done(id.ok);
}

/*
 * Takes the hub's WELCOME: the worker's row, and the last request that
 * ran.  After a hub restart, an IDENTIFY that ran but whose answer died
 * with the old hub is settled from the table, and the client gets the
 * RESPONSE the old hub would have sent.
 */
static int
worker_welcome(const char *p, size_t len)
{
	struct ipc_welcome	 wel;
	struct msg		 m;
	int			 ok;

	if (len != sizeof(wel))
		return -1;
	memcpy(&wel, p, sizeof(wel));
	if (wel.slot >= w.tab.hdr->max_users ||
	    (w.slot != IPC_SLOT_NEW && wel.slot != w.slot))
		return -1;
	w.slot = wel.slot;
	/* A hub that welcomed it: the next loss starts a fresh wait. */
	w.hub_lost_at = 0;
	worker_trim(wel.last_seq);
	if (w.ident != IDENT_PENDING || wel.last_seq < w.ident_seq)
		return 0;
	ok = shm_user(&w.tab, w.slot)->state == USER_IDENTIFIED;
	memset(&m, 0, sizeof(m));
	m.type = MSG_RESPONSE;
	m.op = MSG_IDENTIFY;
	m.res = ok ? RES_SUCCESS : RES_USER_ALREADY_EXISTS;
	m.extra.p = buf_head(&w.ident_name);
	m.extra.len = buf_pending(&w.ident_name);
	m.has_extra = 1;
	worker_gather_flush();
	if (!(w.flags & WF_WR_DEAD) && proto_encode(&w.out, &m) == -1)
		fatal("proto_encode");
	return worker_ident_done(ok);
}

/*
 * Takes the hub's CLOSE: the answer to DISCONNECT, or the hub dropping
 * the worker on purpose, which closes the client.  Either way the worker
 * flushes its queue and exits; it never reconnects after a CLOSE.
 */
static int
worker_close_frame(const char *p, size_t len)
{
	uint32_t	reason;

	if ((reason = ipc_get_close(p, len)) == 0)
		return -1;
	if (reason == CLOSE_QUIT && !(w.flags & WF_CLOSING))
		return -1;
	if (reason != CLOSE_QUIT) {
		/* The end line names a kick or a queue cut already. */
		if (reason == CLOSE_KICKED || reason == CLOSE_QUEUE)
			log_debug("worker %s: closed by the hub: %s", w.addr,
			    ipc_close_reason_name(reason));
		else
			log_info("worker %s: closed by the hub: %s", w.addr,
			    ipc_close_reason_name(reason));
		worker_end(session_end_of_close(reason), reason ==
		    CLOSE_QUEUE ? LIMIT_MAX_QUEUE : LIMIT_LAST);
		w.flags |= WF_CLOSING | WF_RD_DONE;
		if (reason == CLOSE_QUEUE && !(w.flags & WF_CUT)) {
			w.flags |= WF_CUT;
			worker_queue_keep_head();
		}
	}
	w.flags |= WF_CLOSED;
	return 0;
}

/* Runs one frame from the hub; returns -1 on a bad frame. */
static int
worker_run_frame(const struct ipc_hdr *h, const char *p)
{
	switch (h->type) {
	case IPC_LINE:
		if (h->len == 0 || p[h->len - 1] != '\n')
			return -1;
		worker_queue(p, h->len);
		return 0;
	case IPC_IDENTIFIED:
		return worker_identified(p, h->len);
	case IPC_WELCOME:
		return worker_welcome(p, h->len);
	case IPC_CLOSE:
		return worker_close_frame(p, h->len);
	default:
		return -1;
	}
}

/* The dispatcher: one frame from the hub; NULL, or what was wrong. */
static const char *
worker_dispatch(struct peer *p, const void *hdr, const char *payload)
{
	static char	why[32];
	struct ipc_hdr	h;

	(void)p;
	memcpy(&h, hdr, sizeof(h));
	if (worker_run_frame(&h, payload) == 0)
		return NULL;
	(void)snprintf(why, sizeof(why), "bad frame 0x%04x", h.type);
	return why;
}

/* The hub is trusted: a bad frame from it is a bug, and fatal. */
static void
worker_hub_bad(struct peer *p, const char *why)
{
	(void)p;
	fatalx("worker %s: %s from the hub", w.addr, why);
}

/*
 * A read from the hub came.  A batch read whole sends its lines from
 * the scratch itself.  A burst then never grows the queue onto the
 * heap: each heap page a worker writes is one it no longer shares with
 * the master.  The channel's input keeps only a frame that arrived in
 * part, never a batch.
 */
static void
worker_hub_arrived(struct peer *p, size_t n)
{
	worker_scratch_wrote(n);
	worker_flag(WF_GATHERING, buf_pending(&p->in) == 0 &&
	    buf_pending(&w.out) == 0);
}

/* The channel to the hub, as the worker reads it. */
static const struct peer_role worker_hub_role = {
	sizeof(struct ipc_hdr), IPC_VERSION, "bad frame header",
	"bad frame header", worker_dispatch, worker_hub_bad, NULL,
	worker_hub_arrived
};

/* Sets up the channel to the hub, its buffers in w itself. */
void
worker_hub_init(void)
{
	peer_init(&w.hub, &worker_hub_role, NULL, -1, IPC_MAX_PAYLOAD);
	buf_init_store(&w.hub.in, w.store_hin, sizeof(w.store_hin));
	buf_init_store(&w.hub.out, w.store_hout, sizeof(w.store_hout));
}

/* Reads frames from the hub and runs them. */
void
worker_hub_read(void)
{
	int	r;

	/* The lines sit below any partial frame, which is kept first. */
	if ((r = peer_read(&w.hub, w.scratch, sizeof(w.scratch))) == 0)
		return;
	if (r == -1) {
		worker_hub_lost();
		return;
	}
	worker_gather_flush();
	/* An IDENTIFY answer may let buffered lines run. */
	worker_input();
}

/*
 * Tries to connect to the hub's socket and queues HELLO, naming the row
 * the worker had if it had one.  Everything the hub has not run is sent
 * again after it.  Returns 0, or -1 to try again later.
 */
static int
worker_hub_connect(void)
{
	struct sockaddr_un	sun;
	struct ipc_hello	hello;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, w.rt->hubpath, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		fatalx("worker: hub path too long");
	/* Non-blocking: a full backlog is EAGAIN, tried again later, not
	 * a wait that only SIGKILL would end (SIGTERM waits for the wait). */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0)) == -1) {
		log_warn("worker %s: socket", w.addr);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1) {
		close(fd);
		return -1;
	}
	w.hub.fd = fd;
	/* A new channel, even if its fd number is the last one's. */
	w.hub_conn++;
	w.hsent = 0;
	w.flags &= ~WF_HUB_HUP;
	buf_reset(&w.hub.in);
	buf_reset(&w.hctl);
	memset(&hello, 0, sizeof(hello));
	hello.slot = w.slot;
	(void)strlcpy(hello.addr, w.addr, sizeof(hello.addr));
	ipc_put(&w.hctl, IPC_HELLO, 0, &hello, sizeof(hello));
	return 0;
}

/*
 * Whether the hub dropped this worker on purpose: it frees the worker's
 * row before it closes the channel, so a row that is free or another
 * process's means the hub is done with it.  A hub that died leaves the
 * row as it was.
 */
static int
worker_dropped(void)
{
	struct shm_user	*u;

	if (w.slot == IPC_SLOT_NEW)
		return 0;
	u = shm_user(&w.tab, w.slot);
	return __atomic_load_n(&u->state, __ATOMIC_ACQUIRE) == USER_FREE ||
	    __atomic_load_n(&u->pid, __ATOMIC_ACQUIRE) != w.pid;
}

/*
 * The hub channel closed without a CLOSE.  If the hub dropped the worker
 * on purpose, the worker closes its client and exits.  Otherwise the hub
 * died: the master starts another, and the worker keeps its client and
 * what the hub has not run, and reconnects once the new hub is there
 * (worker_hub_retry); past WORKER_HUB_RETRY_MS it gives up.
 */
static void
worker_hub_lost(void)
{
	if (w.hub.fd == -1)
		return;
	close(w.hub.fd);
	w.hub.fd = -1;
	buf_reset(&w.hub.in);
	if ((w.flags & WF_CLOSED) || worker_stop)
		return;
	if (worker_dropped()) {
		log_info("worker %s: dropped by the hub, closing", w.addr);
		/*
		 * The hub says CLOSE and why only on a channel with nothing
		 * pending: one backed up while this worker read no more of
		 * it, its client's queue full, was cut for that queue.
		 */
		if ((w.flags & WF_CUT) ||
		    buf_pending(&w.out) + w.piped >= w.lim.max_queue)
			worker_end(END_QUEUE, LIMIT_MAX_QUEUE);
		else
			worker_end(END_SERVER_ERROR, LIMIT_LAST);
		worker_wind_down("dropped by the hub");
		return;
	}
	/*
	 * A channel closed before its WELCOME (over the hub's cap, say)
	 * does not start the wait again: the retries keep backing off and
	 * the 10 s still run out, so such closes cannot make a loop.
	 */
	if (w.hub_lost_at != 0) {
		w.hub_retry_at = clock_now_ms() + w.hub_backoff_ms;
		if (w.hub_backoff_ms < WORKER_HUB_TICK_MAX_MS)
			w.hub_backoff_ms *= 2;
		return;
	}
	w.hub_lost_at = clock_now_ms();
	w.hub_retry_at = w.hub_lost_at;
	w.hub_backoff_ms = WORKER_HUB_TICK_MS;
	log_info("worker %s: hub channel closed, waiting for a new hub",
	    w.addr);
}

/*
 * Without a hub: connects once a hub of a new generation runs, never
 * again to the one that closed the channel, with a growing wait between
 * tries; gives up WORKER_HUB_RETRY_MS after losing it.
 */
void
worker_hub_retry(void)
{
	int64_t		now;
	uint64_t	gen;

	if (w.hub.fd != -1 || (w.flags & WF_CLOSED))
		return;
	now = clock_now_ms();
	if (now - w.hub_lost_at > WORKER_HUB_RETRY_MS) {
		log_warnx("worker %s: no hub for %d ms", w.addr,
		    WORKER_HUB_RETRY_MS);
		worker_end(END_SERVER_ERROR, LIMIT_LAST);
		worker_wind_down("no hub");
		return;
	}
	if (now < w.hub_retry_at)
		return;
	/*
	 * The hub that closed the channel is tried again only by a worker
	 * it gave no row: its channel may have been over the hub's cap.  A
	 * refusal on purpose says CLOSE, and the worker is gone by then.
	 */
	gen = __atomic_load_n(&w.tab.hdr->hub_gen, __ATOMIC_ACQUIRE);
	if (gen != 0 && (gen != w.hub_gen || w.slot == IPC_SLOT_NEW) &&
	    worker_hub_connect() == 0) {
		w.hub_gen = gen;
		return;
	}
	w.hub_retry_at = now + w.hub_backoff_ms;
	if (w.hub_backoff_ms < WORKER_HUB_TICK_MAX_MS)
		w.hub_backoff_ms *= 2;
}

/*
 * Writes HELLO, then the requests not yet written, to the hub: one
 * writev, so a new worker's HELLO and first request wake the hub once.
 */
void
worker_hub_write(void)
{
	struct iovec	iov[2];
	size_t		ctl;
	ssize_t		n;
	int		niov = 0;

	if (w.hub.fd == -1)
		return;
	if ((ctl = buf_pending(&w.hctl)) > 0) {
		iov[niov].iov_base = buf_head(&w.hctl);
		iov[niov++].iov_len = ctl;
	}
	if (w.hsent < buf_pending(&w.hub.out)) {
		iov[niov].iov_base = buf_head(&w.hub.out) + w.hsent;
		iov[niov++].iov_len = buf_pending(&w.hub.out) - w.hsent;
	}
	if (niov == 0)
		return;
	n = writev(w.hub.fd, iov, niov);
	if (n == -1) {
		if (errno != EAGAIN && errno != EINTR)
			worker_hub_lost();
		return;
	}
	/* HELLO goes first and whole before any request counts as sent. */
	if ((size_t)n < ctl) {
		buf_drain(&w.hctl, (size_t)n);
		return;
	}
	buf_drain(&w.hctl, ctl);
	w.hsent += (size_t)n - ctl;
}
