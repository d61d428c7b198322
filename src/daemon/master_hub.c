/*
 * master_hub.c: the master's side of the hub: forking it (again, when
 * it died) with its control pipe, and the frames the master sends down
 * that pipe (the limits a reload or a new log level changes).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <fcntl.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "master.h"
#include "shm.h"
#include "talknetd.h"
#include "tls_server.h"

/*
 * Forks the hub; it inherits the hub socket, the writable shm fd and the
 * read end of a new control pipe, on which the master sends it what a
 * reload changes.  The write end is the master's alone.
 */
void
master_start_hub(void)
{
	int	spares[2 * CEIL_MAX_SPARE];
	size_t	nspares, i;
	pid_t	pid;
	int	p[2];

	if (master.hub_ctl != -1) {
		close(master.hub_ctl);
		master.hub_ctl = -1;
	}
	if (pipe2(p, O_CLOEXEC) == -1) {
		log_warn("hub control pipe");
		return;
	}
	/* A hub that does not read must never block the master. */
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) == -1) {
		log_warn("hub control pipe");
		close(p[0]);
		close(p[1]);
		return;
	}
	master.rt.hub_ctl_fd = p[0];
	master.hub_ctl = p[1];
	/* On the stack: the list itself is in memory the hub never gets. */
	nspares = master_spare_fds(spares, sizeof(spares) / sizeof(spares[0]));
	master_signals_hold();
	switch (pid = fork()) {
	case -1:
		master_signals_release();
		log_warn("fork hub");
		break;
	case 0:
		master_child_setup();
		/* The hub never holds the TLS private key. */
		tls_server_forget();
		/* Only workers report a closed client. */
		close(master.rt.release_fd);
		/* Only the master hands spares their clients: a hub holding
		 * their sockets would also keep them from seeing a retire. */
		for (i = 0; i < nspares; i++)
			close(spares[i]);
		hub_main(master.cfg, &master.rt);
		/* NOTREACHED */
	default:
		master_signals_release();
		master.hub_pid = pid;
		master.hub_started = time(NULL);
		master.hub_starts++;
		log_info("hub started, pid %ld", (long)pid);
		break;
	}
	close(p[0]);
	master.rt.hub_ctl_fd = -1;
	if (pid == -1) {
		close(master.hub_ctl);
		master.hub_ctl = -1;
	}
}

/*
 * Sends the hub one control frame, smaller than PIPE_BUF, so it is
 * written whole or not at all: the pipe never blocks the master.
 */
int
master_hub_send(uint16_t type, const void *payload, size_t len)
{
	struct buf	b;
	char		store[sizeof(struct ipc_hdr) + sizeof(struct shm_live)];
	ssize_t		n;
	int		r = 0;

	if (master.hub_ctl == -1)
		return -1;
	buf_init_store(&b, store, sizeof(store));
	ipc_put(&b, type, 0, payload, len);
	n = write(master.hub_ctl, buf_head(&b), buf_pending(&b));
	if (n != (ssize_t)buf_pending(&b))
		r = -1;
	buf_free(&b);
	return r;
}

/*
 * Sends the hub the limits a reload changed.  The hub writes them into
 * the table, where every worker picks them up.
 */
void
master_send_limits(void)
{
	struct shm_live	l;

	if (master.hub_ctl == -1)
		return;
	conf_live_limits(master.cfg, &l);
	if (master_hub_send(IPC_LIMITS, &l, sizeof(l)) == -1)
		log_warnx("reload: the hub did not take the new limits; "
		    "they apply from its next start");
}

/* Sets the log level in every process (talknetctl log level). */
void
master_log_level(int level)
{
	master.cfg->log_level = level;
	log_set_level(level);
	master_send_limits();
}
