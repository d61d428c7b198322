/*
 * worker.c: one process per client connection.  It frames and validates
 * what the client sends, answers INVALID and NOT_IDENTIFIED itself,
 * forwards valid requests to the hub as binary frames, and queues what
 * the hub routes back, up to --max-queue bytes, for the client.
 * This file is the process: setup, signals, limits, timers, the loop;
 * worker_in.c reads the client's lines, worker_out.c writes to it.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <netinet/in.h>

#include <linux/capability.h>
#include <linux/sockios.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "conf.h"
#include "frame.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "sandbox.h"
#include "shm.h"
#include "talknetd.h"
#include "title.h"
#include "worker.h"

/*
 * The state, in .bss and page-aligned: its first page holds the state
 * and the buffers' first storage, so a worker whose traffic fits
 * writes few pages it shares with the master (see worker.h).
 */
struct worker_state w __attribute__((aligned(4096)));

volatile sig_atomic_t	worker_stop;	/* SIGTERM came */

static int	worker_want_read(void);

/* Records SIGTERM; the loop flushes the queue, then exits. */
static void
worker_sigterm(int sig)
{
	(void)sig;
	worker_stop = 1;
}

/*
 * Stops serving without the hub: no more input, and the queue gets a
 * short while to reach the client before the worker exits.
 */
void
worker_wind_down(const char *why)
{
	log_debug("worker %s: %s", w.addr, why);
	w.flags |= WF_RD_DONE | WF_CLOSING | WF_CLOSED;
	w.final = RES_NONE;
	w.linger_ms = WORKER_STOP_MS;
}

/* The sooner of two poll timeouts (-1: none; 0 or less for b: none). */
static int
worker_min_timeout(int a, int b)
{
	if (b <= 0)
		return a;
	if (a < 0 || b < a)
		return b;
	return a;
}

/*
 * Notes that a read wrote n bytes of the scratch.  Past its first page
 * each page written is the worker's own copy of the master's; a quiet
 * while later they are given back (worker_scratch_release).
 */
void
worker_scratch_wrote(size_t n)
{
	if (n <= w.scratch_first)
		return;
	if (n > w.scratch_used)
		w.scratch_used = n;
	w.scratch_idle_at = clock_now_ms() + WORKER_SCRATCH_IDLE_MS;
}

/* Whether a queue's storage is past its store, in pages of its own. */
static int
worker_queues_grown(void)
{
	return w.out.data != w.out.store || w.hub.in.data != w.hub.in.store ||
	    w.in.in.data != w.in.in.store || w.hub.out.data != w.hub.out.store;
}

/*
 * Gives the pages of the queues that are empty back.  A batch from the
 * hub outgrows the queue's store when the client reads slower than it
 * comes; without this, a worker would keep up to WORKER_KEEP of each for
 * as long as its client stays.
 */
static void
worker_queues_release(void)
{
	buf_shrink(&w.out, 0);
	buf_shrink(&w.hub.in, 0);
	framer_shrink(&w.in, 0);
	if (w.hsent == 0)
		buf_shrink(&w.hub.out, 0);
}

/*
 * Gives the scratch's pages past the first back to the kernel; the next
 * read that reaches them gets zeroed pages.  Nothing stays in the
 * scratch between reads, so nothing is lost.  Called once the worker has
 * been quiet for a while, so a worker under steady load keeps them.
 */
static void
worker_scratch_release(void)
{
	uintptr_t	lo, hi, end;
	size_t		pg = (size_t)getpagesize();

	lo = (uintptr_t)w.scratch + w.scratch_first;
	hi = ((uintptr_t)w.scratch + w.scratch_used + pg - 1) & ~(pg - 1);
	/* struct worker_state is whole pages: its last page is its own. */
	end = (uintptr_t)&w + sizeof(w);
	if (hi > end)
		hi = end;
	if (hi > lo && madvise((void *)lo, hi - lo, MADV_DONTNEED) == -1)
		log_debug("worker %s: madvise: %s", w.addr, strerror(errno));
	w.scratch_used = 0;
	w.scratch_idle_at = 0;
	worker_queues_release();
}

/*
 * Ends the connection once the hub said CLOSE and the queue is flushed:
 * half-close, then read what the client still sends for a moment, so the
 * kernel does not answer the last lines with a reset.
 */
static void
worker_finish(void)
{
	struct pollfd	pfd;
	int64_t		end = clock_now_ms() + 500;
	int		i;

	/* The hub has nothing more for us: its row is free from now. */
	if (w.hub.fd != -1) {
		close(w.hub.fd);
		w.hub.fd = -1;
	}
	/* Its end line, and its report: the master frees its places. */
	worker_session_end();
	worker_tls_close();
	/* After the client's EOF nothing unread is left to cause a reset. */
	if (!(w.flags & (WF_WR_DEAD | WF_RD_EOF)) &&
	    shutdown(w.cfd, SHUT_WR) == 0) {
		for (i = 0; i < 64 && clock_now_ms() < end; i++) {
			pfd.fd = w.cfd;
			pfd.events = POLLIN;
			if (poll(&pfd, 1, (int)(end - clock_now_ms())) <= 0)
				break;
			if (read(w.cfd, w.scratch, sizeof(w.scratch)) <= 0)
				break;
		}
	}
	close(w.cfd);
	_exit(0);
}

/*
 * Keeps only stdio, the client socket (as fd 3) and the release socket
 * (as fd 4): a worker needs nothing else.  Both are first copied above
 * fd 4, so that moving one into place cannot close the other.
 */
static void
worker_close_fds(int fd, int release_fd)
{
	int	cfd, rfd;

	if ((cfd = fcntl(fd, F_DUPFD, WORKER_RELEASE_FD + 1)) == -1 ||
	    (rfd = fcntl(release_fd, F_DUPFD, WORKER_RELEASE_FD + 1)) == -1)
		fatal("worker: F_DUPFD");
	if (dup2(cfd, WORKER_CLIENT_FD) == -1 ||
	    dup2(rfd, WORKER_RELEASE_FD) == -1)
		fatal("worker: dup2");
	/* Listeners, the hub's socket and the writable shm fd all go. */
	closefrom(WORKER_RELEASE_FD + 1);
	w.cfd = WORKER_CLIENT_FD;
}

/*
 * Takes the limits in force from the table when a reload changed them:
 * the hub writes them there, and the worker applies them at once.
 */
static void
worker_live(void)
{
	struct shm_live	l;
	uint64_t	g;

	if (shm_live_gen(&w.tab) == w.live_gen)
		return;
	if (shm_live_get(&w.tab, &l, &g) == -1 || ipc_check_limits(&l) == -1)
		return;
	w.live_gen = g;
	/*
	 * A worker forked just after a reload has the new limits already,
	 * while the hub may not have written them yet: older ones in the
	 * table are not taken.
	 */
	if (l.reloads < w.lim.reloads)
		return;
	w.lim = l;
	w.in.max_line = (size_t)l.max_line;
	log_set_level((int)l.log_level);
	if (w.ident == IDENT_NONE && !(w.flags & WF_CLOSING))
		w.login_deadline = l.login_timeout == 0 ? 0 :
		    w.started_at + (int64_t)l.login_timeout * 1000;
	if (w.tokens > (double)l.rate_burst)
		w.tokens = (double)l.rate_burst;
	w.stall_check_at = 0;
	worker_stall_arm();
}

/*
 * --stall-timeout: a client whose TCP acknowledged nothing since the
 * last check, while bytes wait for it, takes nothing: it is cut.  The
 * kernel's send buffer holds megabytes, so the worker's own queue alone
 * would not show a client that stopped reading; SIOCOUTQ, the bytes the
 * socket holds unacknowledged, does.
 */
static void
worker_stall_check(int64_t now)
{
	uint64_t	acked;
	int		outq = 0;

	if ((w.flags & (WF_WR_DEAD | WF_CUT)) || w.lim.stall_timeout == 0) {
		w.stall_check_at = 0;
		return;
	}
	if (ioctl(w.cfd, SIOCOUTQ, &outq) == -1 || outq < 0)
		outq = 0;
	acked = w.sent - (uint64_t)outq;
	if (outq == 0 && worker_unsent() == 0) {
		w.stall_check_at = 0;
		return;
	}
	if (acked != w.acked_mark || w.acked_mark == UINT64_MAX) {
		w.acked_mark = acked;
		w.stall_check_at = now + (int64_t)w.lim.stall_timeout * 1000;
		return;
	}
	log_info("worker %s: client took nothing for %zu s, disconnecting",
	    w.addr, (size_t)w.lim.stall_timeout);
	worker_end(END_QUEUE, LIMIT_STALL);
	w.stall_check_at = 0;
	w.flags |= WF_CUT;
	worker_queue_keep_head();
	worker_leave(RES_NONE);
}

/*
 * The timers of one loop: the login timeout, a client that takes
 * nothing (--stall-timeout), and the scratch's pages given back.
 */
static void
worker_timers(void)
{
	int64_t	now = clock_now_ms();

	if (w.login_deadline != 0 && !(w.flags & WF_CLOSING) &&
	    now >= w.login_deadline) {
		/* The end line says "login timeout": this is the detail. */
		log_debug("worker %s: not identified after %zu s, closing",
		    w.addr, (size_t)w.lim.login_timeout);
		worker_end(END_LOGIN_TIMEOUT, LIMIT_LOGIN_TIMEOUT);
		w.login_deadline = 0;
		worker_leave(RES_NONE);
	}
	if (w.stall_check_at != 0 && now >= w.stall_check_at)
		worker_stall_check(now);
	if (w.scratch_idle_at != 0 && now >= w.scratch_idle_at)
		worker_scratch_release();
}

/* Milliseconds until the sooner of the loop's deadlines, or -1. */
static int
worker_timeout(int64_t deadline)
{
	int64_t	now = clock_now_ms();
	int	timeout = -1;

	if (deadline != 0)
		timeout = (int)(deadline - now) + 1;
	if (w.hub.fd == -1 && !(w.flags & WF_CLOSED))
		timeout = worker_min_timeout(timeout,
		    w.hub_retry_at > now ? (int)(w.hub_retry_at - now) : 1);
	timeout = worker_min_timeout(timeout, worker_token_wait_ms());
	if (w.scratch_idle_at != 0)
		timeout = worker_min_timeout(timeout, w.scratch_idle_at > now ?
		    (int)(w.scratch_idle_at - now) + 1 : 1);
	if (w.login_deadline != 0)
		timeout = worker_min_timeout(timeout,
		    (int)(w.login_deadline - now) + 1);
	/*
	 * The stall check wakes the worker only while bytes wait in it.
	 * When the socket took them all, it runs at the next wake-up
	 * (worker_timers): an idle client's line otherwise costs two
	 * wake-ups, the line's and the check's, stall-timeout apart.
	 */
	if (w.stall_check_at != 0 && worker_unsent() > 0)
		timeout = worker_min_timeout(timeout, w.stall_check_at > now ?
		    (int)(w.stall_check_at - now) + 1 : 1);
	/* Bytes left inside libtls: poll would not wake for them. */
	if (w.tls_more && worker_want_read())
		timeout = 0;
	return timeout;
}

/*
 * Whether the loop reads the client.  Back-pressure counts what is not
 * yet written to the hub: requests written but not yet seen to run are
 * trimmed on a later round, and nothing wakes the worker for that.
 */
static int
worker_want_read(void)
{
	return !(w.flags & WF_RD_DONE) && w.ident != IDENT_PENDING &&
	    worker_token_wait_ms() == 0 &&
	    buf_pending(&w.hub.out) - w.hsent < WORKER_HUB_HIGH;
}

/*
 * What to wait for.  The hub is read only while less than max-queue is
 * unsent: a client that reads slowly slows down its hub channel, and the
 * hub paces the senders or cuts the client (hub.c).  The hub channel
 * stays in the set even when not read, so a hang-up is still seen.
 */
static void
worker_poll_set(struct pollfd *pfd)
{
	pfd[0].fd = w.cfd;
	pfd[0].events = 0;
	if (worker_want_read())
		pfd[0].events |= POLLIN;
	if (!(w.flags & WF_WR_DEAD) && worker_unsent() > 0)
		pfd[0].events |= POLLOUT;
	/* TLS: what libtls waits for, its handshake first. */
	if (w.tls != NULL)
		pfd[0].events = worker_tls_events(pfd[0].events & POLLIN,
		    pfd[0].events & POLLOUT);
	/* Not watched at all, so a hung-up socket cannot spin us. */
	if (pfd[0].events == 0)
		pfd[0].fd = -1;
	pfd[1].fd = w.hub.fd;
	pfd[1].events = 0;
	/* Once closing, only CLOSE matters: read on to find it. */
	if (!(w.flags & WF_CLOSED) && ((w.flags & WF_CLOSING) ||
	    worker_unsent() < w.lim.max_queue))
		pfd[1].events |= POLLIN;
	if (!(w.flags & WF_CLOSED) && (buf_pending(&w.hctl) > 0 ||
	    w.hsent < buf_pending(&w.hub.out)))
		pfd[1].events |= POLLOUT;
	if (w.flags & WF_CLOSED)
		pfd[1].fd = -1;
}

/* Handles what poll reported. */
static void
worker_events(const struct pollfd *pfd)
{
	/* A dead hub's lines are delivered, not counted against the
	 * queue: the channel is read to its end, then reconnected. */
	if (pfd[1].fd != -1 && (pfd[1].revents & (POLLHUP | POLLERR)))
		w.flags |= WF_HUB_HUP;
	if (pfd[1].fd != -1 && (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
		worker_hub_read();
	if (w.tls != NULL)
		worker_tls_ready(pfd[0].revents, worker_want_read());
	else if (pfd[0].revents & POLLIN)
		worker_client_read();
	else if (pfd[0].revents & (POLLHUP | POLLERR)) {
		w.flags |= WF_RD_DONE;
		if (pfd[0].revents & POLLERR)
			w.flags |= WF_WR_DEAD;
		worker_input();
	}
	if (!(w.flags & WF_CLOSED))
		worker_hub_write();
	if (!(w.flags & WF_WR_DEAD) && worker_write() == -1) {
		log_debug("worker %s: write: %s", w.addr, strerror(errno));
		worker_end(END_CLIENT_CLOSED, LIMIT_LAST);
		w.flags |= WF_WR_DEAD;
		buf_reset(&w.out);
		w.piped = 0;
		worker_leave(RES_NONE);
	}
	/* An idle worker holds no more than a little of each, and after a
	 * quiet while nothing past the stores (worker_queues_release). */
	if (worker_queues_grown()) {
		if (w.scratch_idle_at == 0)
			w.scratch_idle_at = clock_now_ms() +
			    WORKER_SCRATCH_IDLE_MS;
	}
	buf_shrink(&w.out, WORKER_KEEP);
	buf_shrink(&w.hub.in, WORKER_KEEP);
	framer_shrink(&w.in, WORKER_KEEP);
	if (w.hsent == 0)
		buf_shrink(&w.hub.out, WORKER_KEEP);
}

/*
 * SIGTERM is blocked but while the worker waits (worker_wait): a signal
 * that comes between the check of worker_stop and the wait is taken
 * by the wait itself, never missed until the master's SIGKILL.
 */
static void
worker_signals(void)
{
	sigset_t	block;

	if (master_sig_set(SIGTERM, worker_sigterm, 0) == -1)
		fatal("worker: sigaction");
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &block, &w.wait_mask) == -1)
		fatal("worker: sigprocmask");
	sigdelset(&w.wait_mask, SIGTERM);
}

/*
 * Drops every capability, keeping the uid.  Without -u a worker is
 * root: CAP_SYS_ADMIN would let it put another worker's pid in the
 * credentials of a release datagram (SCM_CREDENTIALS), and the master
 * would free that client's places and kill its worker as lingering.
 * A worker needs no privilege: it was handed every fd it uses.  One
 * that holds none (-u, or systemd's empty CapabilityBoundingSet) makes
 * no capset, which the shipped unit's SystemCallFilter=~@privileged
 * refuses.
 */
static void
worker_drop_caps(void)
{
	struct __user_cap_header_struct	hdr;
	struct __user_cap_data_struct	data[_LINUX_CAPABILITY_U32S_3];
	size_t				i;
	uint32_t			held = 0;

	memset(&hdr, 0, sizeof(hdr));
	memset(data, 0, sizeof(data));
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (syscall(SYS_capget, &hdr, data) == -1)
		fatal("worker: capget");
	for (i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
		held |= data[i].effective | data[i].permitted |
		    data[i].inheritable;
	if (!held)
		return;
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) == -1)
		fatal("worker: capset");
}

/* Sets up the buffers, the parser and the limits, mostly in w itself. */
static void
worker_setup(const struct config *cfg)
{
	struct proto_limits lim;

	conf_live_limits(cfg, &w.lim);
	framer_init_store(&w.in, (size_t)w.lim.max_line, w.store_in,
	    sizeof(w.store_in));
	buf_init_store(&w.out, w.store_out, sizeof(w.store_out));
	worker_hub_init();
	buf_init_store(&w.hctl, w.store_hctl, sizeof(w.store_hctl));
	lim.max_name = cfg->max_name;
	lim.max_room = cfg->max_room;
	proto_parser_init(&w.parser, &lim);
	proto_parser_store(&w.parser, w.store_tok, sizeof(w.store_tok),
	    w.store_str, sizeof(w.store_str));
	buf_init_store(&w.ident_name, w.store_name, sizeof(w.store_name));
	/* The scratch's bytes before the next page boundary. */
	w.scratch_first = (size_t)(-(uintptr_t)w.scratch &
	    ((uintptr_t)getpagesize() - 1));
	w.started_at = clock_now_ms();
	w.hub_lost_at = w.started_at;
	w.hub_backoff_ms = WORKER_HUB_TICK_MS;
	w.tokens = (double)w.lim.rate_burst;
	w.tokens_at = w.started_at;
	if (w.lim.login_timeout > 0)
		w.login_deadline = w.started_at +
		    (int64_t)w.lim.login_timeout * 1000;
	worker_live();
}

/*
 * What every worker sets up before it has a client, ending with its
 * sandbox: a spare does it ahead, off the connect path.  fd goes to
 * WORKER_CLIENT_FD: the client's socket, or a spare's hand-off socket
 * until the client's replaces it there.
 */
void
worker_prepare(const struct config *cfg, const struct runtime *rt, int fd,
    int tls)
{
	w.cfg = cfg;
	w.rt = rt;
	w.pid = getpid();
	w.hub.fd = -1;
	w.slot = IPC_SLOT_NEW;
	w.linger_ms = WORKER_LINGER_MS;
	/* glibc's syslog fd is about to be closed and its number reused
	 * (the send pipe, the hub channel): forget it, so syslog()
	 * reconnects rather than write to, or close, one of those. */
	if (!cfg->foreground)
		closelog();
	worker_close_fds(fd, rt->release_fd);
	/* Die with the master, so no worker outlives the service. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1)
		fatal("worker: prctl");

	/* Inherited PROT_READ mapping of an O_RDONLY fd: cannot be made
	 * writable here, so a worker cannot corrupt the table. */
	w.tab.hdr = (struct shm_hdr *)(uintptr_t)rt->shm_ro;
	w.tab.size = rt->shm_size;
	/* libtls writes the socket itself: a TLS worker splices nothing. */
	if (tls)
		w.pipe_r = w.pipe_w = -1;
	else
		worker_pipe_open();
	worker_wait_open();
	/* A TLS session's state, made ahead: it needs no client yet. */
	if (tls)
		worker_tls_start();
	worker_signals();
	worker_drop_caps();
	/*
	 * Set up: from here on the worker can only serve a client, the
	 * one it has or, for a spare, the one the master will send.  A
	 * spare loads the filter before it waits, so the load (some 50 us
	 * of the kernel's) is not on any client's connect.
	 */
	sandbox_worker();
}

/*
 * Takes the client at WORKER_CLIENT_FD.  Its socket is set up already:
 * the master made it non-blocking and set its options before the
 * hand-off (master_client_socket), as the filter allows neither here.
 */
static void
worker_take(const char *addr)
{
	/* The master formatted the address already: no resolver code here. */
	(void)strlcpy(w.addr, addr, sizeof(w.addr));
	title_set("worker (unidentified) %s", w.addr);
	worker_setup(w.cfg);
	/*
	 * A batch from the hub that the client is slow to take outgrows the
	 * queue's store.  Past it, a buffer gets pages of its own rather than
	 * malloc's: the heap the worker shares with the master stays shared,
	 * and the pages go back when the queue empties after a quiet while
	 * (worker_queues_release).
	 */
	buf_map_storage();
}

/* Serves the client at WORKER_CLIENT_FD until it leaves. */
void
worker_serve(const char *addr)
{
	struct pollfd	 pfd[2];
	int64_t		 deadline = 0;

	worker_take(addr);
	for (;;) {
		if (worker_stop && !(w.flags & WF_CLOSED)) {
			worker_end(END_SHUTDOWN, LIMIT_LAST);
			worker_wind_down("SIGTERM");
		}
		worker_live();
		worker_hub_retry();
		/* The client is gone and no hub is there to tell: done. */
		if (w.hub.fd == -1 &&
		    (w.flags & (WF_CLOSED | WF_WR_DEAD)) == WF_WR_DEAD) {
			worker_end(END_CLIENT_CLOSED, LIMIT_LAST);
			worker_finish();
		}
		worker_trim(worker_last_seq());
		worker_timers();
		/* Lines held back by the rate limit may run now. */
		worker_refill();
		if (framer_pending(&w.in) > 0)
			worker_input();
		if (w.flags & WF_CLOSED) {
			worker_final_reply();
			if ((w.flags & WF_WR_DEAD) || worker_unsent() == 0)
				worker_finish();
			if (deadline == 0)
				deadline = clock_now_ms() + w.linger_ms;
			else if (clock_now_ms() >= deadline)
				worker_finish();
		}
		worker_poll_set(pfd);
		if (worker_wait(pfd, worker_timeout(deadline)) == -1) {
			if (errno == EINTR)
				continue;
			fatal("worker: wait");
		}
		worker_events(pfd);
	}
}

/* The worker process of a connection the master forked it for. */
void
worker_main(const struct config *cfg, const struct runtime *rt, int fd,
    const char *addr, int tls)
{
	/* Known already: the set-up's own log lines name the client. */
	(void)strlcpy(w.addr, addr, sizeof(w.addr));
	worker_prepare(cfg, rt, fd, tls);
	worker_serve(addr);
}
