/*
 * control.c: the control socket, in the master.  talknetctl connects,
 * sends one request and reads the answer (control.h).  Everything here
 * is non-blocking and bounded, so a stuck or hostile peer never holds
 * the master up: at most CONTROL_MAX_CONN connections (one more is told
 * so and closed), a request of at most CTL_MAX_REQUEST bytes, an idle
 * timeout, and long answers made a slice at a time as the peer reads
 * (control_cmd.c).
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "control.h"
#include "control_int.h"
#include "log.h"
#include "master.h"
#include "xmalloc.h"

#define CONTROL_BACKLOG		16
#define CONTROL_ACCEPT_BURST	16
/* No progress this long: closed (control-idle-ms, live: the master's). */
#define CONTROL_IDLE_MS		((int64_t)master.cfg->control_idle_ms)
#define CONTROL_STALL_MS	1000	/* not reading: may make room */
#define CONTROL_READ		(CTL_MAX_REQUEST + sizeof(struct ctl_hdr))

static void	control_write(struct ctl_conn *);

/* The control socket and its connections. */
static struct {
	int		 lfd;		/* -1: none */
	char		 path[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
	struct ctl_conn	 conns[CONTROL_MAX_CONN];
} ctl = { .lfd = -1 };

/*
 * Whether a daemon already answers on path: a socket we may not take
 * over.  A socket nobody listens on (ECONNREFUSED) is stale.
 */
static int
control_in_use(const struct sockaddr_un *sun)
{
	int	fd, r;

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		return 1;
	r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	if (r == -1 && errno == ECONNREFUSED) {
		close(fd);
		return 0;
	}
	close(fd);
	return 1;
}

/* Binds path, replacing a stale socket; -1 with errno, or why in *why. */
static int
control_bind(int fd, const struct sockaddr_un *sun, const char **why)
{
	struct stat	sb;

	if (bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0)
		return 0;
	if (errno != EADDRINUSE)
		return -1;
	if (lstat(sun->sun_path, &sb) == -1)
		return -1;
	if (!S_ISSOCK(sb.st_mode)) {
		*why = "exists and is not a socket";
		return -1;
	}
	if (control_in_use(sun)) {
		*why = "another program answers on it";
		return -1;
	}
	log_info("control socket %s: removing a stale socket", sun->sun_path);
	if (unlink(sun->sun_path) == -1 ||
	    bind(fd, (const struct sockaddr *)sun, sizeof(*sun)) == -1)
		return -1;
	return 0;
}

/* Creates the default path's directory (/run/talknetd) if missing. */
static void
control_mkdir(const char *path)
{
	char	 dir[sizeof(ctl.path)], *slash;

	(void)strlcpy(dir, path, sizeof(dir));
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return;
	*slash = '\0';
	/*
	 * Searchable by all: the socket's own mode guards it.  mkdir's mode
	 * goes through the umask, and under "umask 077" a 0700 directory of
	 * root's would keep the daemon's user from its own socket: chmod.
	 */
	if (mkdir(dir, 0755) == -1) {
		if (errno != EEXIST)
			log_debug("mkdir %s: %s", dir, strerror(errno));
		return;
	}
	if (chmod(dir, 0755) == -1)
		log_warn("chmod %s", dir);
}

/* Why control_chown refused: the path is not ours to remove then. */
static const char control_replaced[] =
    "replaced by something else just after it was bound";

/*
 * Gives the socket just bound at path to the daemon's user, through an
 * O_PATH descriptor of what is there now, checked to be that socket (a
 * socket of ours, 0660, one link): chown by name would follow a symlink
 * put in its place since bind, in a directory others may write, and
 * hand the daemon's user whatever it points to.  -1 with *why.
 */
static int
control_chown(const char *path, const char **why)
{
	struct stat	sb;
	int		fd, r = -1;

	if ((fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		*why = strerror(errno);
		return -1;
	}
	if (fstat(fd, &sb) == -1)
		*why = strerror(errno);
	else if (!S_ISSOCK(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_mode & 07777) != 0660 || sb.st_nlink != 1)
		*why = control_replaced;
	else if (!master.drop)
		r = 0;
	else if ((r = fchownat(fd, "", master.uid, master.gid,
	    AT_EMPTY_PATH)) == -1)
		*why = strerror(errno);
	close(fd);
	return r;
}

/*
 * Binds the control socket at path, mode 0660, owned by the user the
 * children run as, so that user and root may use it.  A default path
 * that cannot be used is a warning and the daemon runs without; an
 * explicitly set one is an error (-1).
 */
int
control_open(const char *path, int explicit_path)
{
	struct sockaddr_un	 sun;
	const char		*why = NULL;
	mode_t			 mask;
	int			 fd, i, r;

	for (i = 0; i < CONTROL_MAX_CONN; i++)
		ctl.conns[i].peer.fd = -1;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		why = "path too long";
		goto fail;
	}
	if (!explicit_path)
		control_mkdir(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) == -1)
		fatal("socket");
	/*
	 * Only root and the daemon's user: the peer's uid is checked too.
	 * The umask makes the socket 0660 as bind creates it: no chmod by
	 * name after, which would follow a symlink put there meanwhile.
	 */
	mask = umask(0117);
	r = control_bind(fd, &sun, &why);
	(void)umask(mask);
	if (r == -1) {
		if (why == NULL)
			why = strerror(errno);
		close(fd);
		goto fail;
	}
	(void)strlcpy(ctl.path, path, sizeof(ctl.path));
	if (control_chown(path, &why) == -1 ||
	    listen(fd, CONTROL_BACKLOG) == -1) {
		if (why == NULL)
			why = strerror(errno);
		close(fd);
		/* Not ours to remove: whatever took the path's place. */
		if (why == control_replaced)
			ctl.path[0] = '\0';
		control_close();
		goto fail;
	}
	ctl.lfd = fd;
	log_info("control socket %s", path);
	return 0;
fail:
	if (explicit_path) {
		log_warnx("control socket %s: %s", path, why);
		return -1;
	}
	log_warnx("control socket %s: %s; running without one (set another "
	    "path with --control PATH or \"control = PATH\")", path, why);
	return 0;
}

/*
 * The path a fatal signal's handler unlinks: a static array, written
 * only before the socket is bound and after it is removed.
 */
const char *
control_path(void)
{
	return ctl.path;
}

/* Frees one connection. */
static void
control_drop(struct ctl_conn *c)
{
	close(c->peer.fd);
	c->peer.fd = -1;
	buf_free(&c->peer.in);
	buf_free(&c->peer.out);
}

/* Closes every control fd and removes the socket (the master's exit). */
void
control_close(void)
{
	int	i;

	for (i = 0; i < CONTROL_MAX_CONN; i++)
		if (ctl.conns[i].peer.fd != -1)
			control_drop(&ctl.conns[i]);
	if (ctl.lfd != -1) {
		close(ctl.lfd);
		ctl.lfd = -1;
	}
	if (ctl.path[0] != '\0') {
		if (unlink(ctl.path) == -1 && errno != ENOENT)
			log_warn("unlink %s", ctl.path);
		ctl.path[0] = '\0';
	}
}

/*
 * A child keeps no control fd.  Only reads here: a write would copy the
 * page of ctl into every worker.  It never unlinks the socket either:
 * master_atexit runs the clean-up in the master alone.
 */
void
control_child(void)
{
	int	i;

	for (i = 0; i < CONTROL_MAX_CONN; i++)
		if (ctl.conns[i].peer.fd != -1)
			(void)close(ctl.conns[i].peer.fd);
	if (ctl.lfd != -1)
		(void)close(ctl.lfd);
}

/* Turns a peer away at once with one END frame, best effort. */
static void
control_turn_away(int fd, const char *why)
{
	struct buf	b;
	struct str	s[2];

	buf_init(&b);
	s[0].p = "refused";
	s[0].len = strlen(s[0].p);
	s[1].p = why;
	s[1].len = strlen(why);
	ctl_put(&b, CTL_END, s, 2);
	peer_say(fd, &b);
	buf_free(&b);
	close(fd);
}

/* Whether a uid may use the socket: root, or the daemon's user. */
static int
control_allowed(uid_t uid)
{
	return uid == 0 || uid == (master.drop ? master.uid : geteuid());
}

/*
 * Whether pid is one of the master's own children: a worker (which
 * serves the internet and is taken as compromised) or the hub.  They
 * run as the daemon's user, which the socket lets in, and the workers'
 * filter allows AF_UNIX connects (to reach the hub): the uid alone
 * would let a compromised worker kick, reload and list every address.
 * A child's pid stays its own until the master reaps it.
 */
static int
control_from_child(pid_t pid)
{
	struct child	key;

	key.pid = pid;
	return pid == master.hub_pid ||
	    RB_FIND(child_tree, &live->children, &key) != NULL;
}

/*
 * Whether the peer is gone already.  A worker can connect, send a
 * request and exit before the master takes the connection (the master
 * busy); reaped first, its pid is no child's any more, and its uid
 * would let the request in.  A peer gone cannot read an answer anyway.
 * (A pid reused by then is another process: that needs a wrap of
 * pid_max within the wait.)
 */
static int
control_peer_gone(pid_t pid)
{
	/* 0: a peer in a pid namespace the master cannot see, as before. */
	return pid > 0 && kill(pid, 0) == -1 && errno == ESRCH;
}

/*
 * All places taken: the connection to close for a new one.  talknetctl
 * sends its request as soon as it connects, so the oldest one that has
 * sent none is a peer that holds a place and does nothing; failing
 * that, one that has not read its answer for CONTROL_STALL_MS.  Idle
 * peers, however many, never keep talknetctl out.
 */
static struct ctl_conn *
control_victim(void)
{
	struct ctl_conn	*c, *v = NULL;
	int64_t		 now = clock_now_ms();
	int		 i;

	for (i = 0; i < CONTROL_MAX_CONN; i++) {
		c = &ctl.conns[i];
		if (!c->asked && (v == NULL || v->asked || c->last < v->last))
			v = c;
		else if (c->asked && now - c->last >= CONTROL_STALL_MS &&
		    (v == NULL || (v->asked && c->last < v->last)))
			v = c;
	}
	return v;
}

/* The request: its words run once it is whole; NULL, or why to close. */
static const char *
control_dispatch(struct peer *p, const void *hdr, const char *payload)
{
	struct ctl_conn	*c = p->arg;
	struct ctl_hdr	 h;
	struct str	 w[CTL_MAX_WORDS];
	long		 nw;

	memcpy(&h, hdr, sizeof(h));
	if (h.type != CTL_REQUEST)
		return "a frame that is not a request";
	nw = ctl_get_strs(payload, h.len, w, CTL_MAX_WORDS);
	if (nw < 1 || nw > CTL_MAX_WORDS)
		return nw == -1 ? "a request whose strings overrun it" :
		    "a request with no words, or too many";
	c->asked = 1;
	control_run(c, w, (size_t)nw);
	return NULL;
}

/* Closes a connection that broke the protocol (control_fail). */
static void
control_bad(struct peer *p, const char *why)
{
	control_fail(p->arg, why);
}

/* One request a connection: after it, nothing more is read. */
static enum peer_want
control_want(const struct peer *p)
{
	const struct ctl_conn	*c = p->arg;

	return c->asked || p->fd == -1 ? PEER_GONE : PEER_MORE;
}

/* A talknetctl connection, as the master reads it. */
static const struct peer_role control_role = {
	sizeof(struct ctl_hdr), CTL_VERSION, "a frame of another version",
	"a request too long", control_dispatch, control_bad, control_want,
	NULL
};

/* Takes one accepted peer in, or turns it away. */
static void
control_take(int fd)
{
	struct ucred	 cred;
	socklen_t	 len = sizeof(cred);
	struct ctl_conn	*c = NULL;
	int		 i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
		log_warn("control: SO_PEERCRED");
		close(fd);
		return;
	}
	if (control_peer_gone(cred.pid)) {
		log_warnx("control: pid %ld gone before it was taken, refused",
		    (long)cred.pid);
		close(fd);
		return;
	}
	if (control_from_child(cred.pid)) {
		log_warnx("control: pid %ld, talknetd's own %s, refused",
		    (long)cred.pid, cred.pid == master.hub_pid ? "hub" :
		    "worker");
		control_turn_away(fd, "permission denied");
		return;
	}
	if (!control_allowed(cred.uid)) {
		log_warnx("control: uid %lu (pid %ld) refused: permission "
		    "denied", (unsigned long)cred.uid, (long)cred.pid);
		control_turn_away(fd, "permission denied");
		return;
	}
	for (i = 0; i < CONTROL_MAX_CONN && c == NULL; i++)
		if (ctl.conns[i].peer.fd == -1)
			c = &ctl.conns[i];
	if (c == NULL && (c = control_victim()) != NULL)
		control_fail(c, "idle while all places were taken");
	if (c == NULL) {
		log_warnx("control: uid %lu (pid %ld) refused: %d control "
		    "connections already", (unsigned long)cred.uid,
		    (long)cred.pid, CONTROL_MAX_CONN);
		control_turn_away(fd, "too many control connections; "
		    "try again");
		return;
	}
	memset(c, 0, sizeof(*c));
	peer_init(&c->peer, &control_role, c, fd, CTL_MAX_REQUEST);
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->last = clock_now_ms();
}

/* Accepts control connections. */
static void
control_accept(void)
{
	int	fd, i;

	for (i = 0; i < CONTROL_ACCEPT_BURST; i++) {
		fd = peer_accept(ctl.lfd, NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno != EAGAIN)
				log_warn("control: accept");
			return;
		}
		control_take(fd);
	}
}

/* Closes a connection that broke the protocol, saying why in the log. */
void
control_fail(struct ctl_conn *c, const char *why)
{
	log_warnx("control: uid %lu (pid %ld): %s; closed",
	    (unsigned long)c->uid, (long)c->pid, why);
	control_drop(c);
}

/* Reads the request; runs it once it is whole. */
static void
control_read(struct ctl_conn *c)
{
	char	rb[CONTROL_READ];
	int	r;

	if ((r = peer_read(&c->peer, rb, sizeof(rb))) == 0)
		return;
	if (r == -1) {
		control_drop(c);	/* gone before asking: nothing to say */
		return;
	}
	c->last = clock_now_ms();
	if (c->peer.fd == -1)
		return;
	if (!c->asked) {
		if (buf_pending(&c->peer.in) > CONTROL_READ)
			control_fail(c, "request too long");
		return;
	}
	buf_reset(&c->peer.in);
	control_write(c);
}

/* Writes what is queued, making more of a long answer as it drains. */
static void
control_write(struct ctl_conn *c)
{
	ssize_t	n;

	for (;;) {
		if (buf_pending(&c->peer.out) < CONTROL_OUT_LOW && !c->done)
			control_more(c);
		if (buf_pending(&c->peer.out) == 0)
			break;
		n = send(c->peer.fd, buf_head(&c->peer.out),
		    buf_pending(&c->peer.out), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n == -1) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			log_debug("control: uid %lu (pid %ld): %s",
			    (unsigned long)c->uid, (long)c->pid,
			    strerror(errno));
			control_drop(c);
			return;
		}
		c->last = clock_now_ms();
		buf_drain(&c->peer.out, (size_t)n);
	}
	buf_shrink(&c->peer.out, CONTROL_OUT_LOW);
	if (c->done)
		control_drop(c);
}

/* Fills pfd with the listener and each connection. */
size_t
control_pollfds(struct pollfd *pfd, size_t max)
{
	size_t	n = 0;
	int	i;

	if (ctl.lfd != -1 && n < max) {
		pfd[n].fd = ctl.lfd;
		pfd[n++].events = POLLIN;
	}
	for (i = 0; i < CONTROL_MAX_CONN && n < max; i++) {
		if (ctl.conns[i].peer.fd == -1)
			continue;
		pfd[n].fd = ctl.conns[i].peer.fd;
		pfd[n++].events = ctl.conns[i].asked ? POLLOUT : POLLIN;
	}
	return n;
}

/* Finds the connection of an fd. */
static struct ctl_conn *
control_find(int fd)
{
	int	i;

	for (i = 0; i < CONTROL_MAX_CONN; i++)
		if (ctl.conns[i].peer.fd == fd)
			return &ctl.conns[i];
	return NULL;
}

/* Handles what poll said, then closes connections idle too long. */
void
control_events(const struct pollfd *pfd, size_t n)
{
	struct ctl_conn	*c;
	int64_t		 now;
	size_t		 k;
	int		 i;

	for (k = 0; k < n; k++) {
		if (pfd[k].revents == 0)
			continue;
		if (pfd[k].fd == ctl.lfd) {
			control_accept();
			continue;
		}
		if ((c = control_find(pfd[k].fd)) == NULL)
			continue;
		if (!c->asked)
			control_read(c);
		else
			control_write(c);
	}
	now = clock_now_ms();
	for (i = 0; i < CONTROL_MAX_CONN; i++) {
		c = &ctl.conns[i];
		if (c->peer.fd != -1 && now - c->last >= CONTROL_IDLE_MS)
			control_fail(c, c->asked ? "did not read its answer "
			    "in time" : "sent no request in time");
	}
}

/* ms until the first connection idles out, or -1. */
int
control_timeout(void)
{
	int64_t	now = clock_now_ms(), left, best = -1;
	int	i;

	for (i = 0; i < CONTROL_MAX_CONN; i++) {
		if (ctl.conns[i].peer.fd == -1)
			continue;
		left = ctl.conns[i].last + CONTROL_IDLE_MS - now;
		if (left < 0)
			left = 0;
		if (best == -1 || left < best)
			best = left;
	}
	return best == -1 ? -1 : (int)best + 1;
}
