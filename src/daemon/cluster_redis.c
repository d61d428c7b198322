/*
 * cluster_redis.c: hiredis's async API on the hub's own epoll loop.
 * hiredis asks, through five hooks, to watch its fd for reading or
 * writing; here each hook is one epoll_ctl on the hub's epoll set, and
 * the hub hands the events back (cluster_redis_event).  hiredis 0.14
 * has no timers of its own: the connect timeout and the reconnecting
 * backoff are timers of this file, which the hub runs with its own.
 *
 * A connection authenticates and selects its database before it calls
 * itself ready; the commands are pipelined behind the connect, and a
 * last PING's reply says all of them went through.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/time.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "cluster.h"
#include "cluster_int.h"
#include "log.h"

/* Registers the fd for the events hiredis wants now, or none. */
static void
cluster_redis_watch(struct cluster_redis *r, uint32_t events)
{
	struct epoll_event	ev;

	if (r->registered && r->events == events)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.ptr = r;
	if (epoll_ctl(r->epfd, r->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
	    r->fd, &ev) == -1)
		fatal("cluster: epoll_ctl");
	r->registered = 1;
	r->events = events;
}

/* hiredis wants to read. */
static void
cluster_redis_add_read(void *p)
{
	struct cluster_redis	*r = p;

	cluster_redis_watch(r, r->events | EPOLLIN);
}

/* hiredis does not want to read any more. */
static void
cluster_redis_del_read(void *p)
{
	struct cluster_redis	*r = p;

	cluster_redis_watch(r, r->events & ~(uint32_t)EPOLLIN);
}

/* hiredis has bytes to write (or a connect to finish). */
static void
cluster_redis_add_write(void *p)
{
	struct cluster_redis	*r = p;

	cluster_redis_watch(r, r->events | EPOLLOUT);
}

/* hiredis has written everything. */
static void
cluster_redis_del_write(void *p)
{
	struct cluster_redis	*r = p;

	cluster_redis_watch(r, r->events & ~(uint32_t)EPOLLOUT);
}

/*
 * The context is being freed: its fd leaves the epoll set before
 * hiredis closes it, or a later fd of the same number would be watched
 * for a stale pointer.
 */
static void
cluster_redis_cleanup(void *p)
{
	struct cluster_redis	*r = p;

	if (r->registered && epoll_ctl(r->epfd, EPOLL_CTL_DEL, r->fd,
	    NULL) == -1)
		fatal("cluster: epoll_ctl del");
	r->registered = 0;
	r->events = 0;
	r->fd = -1;
}

/*
 * The connection is gone, or never came: forget the context (hiredis
 * frees it) and reconnect after the backoff.  Idempotent: hiredis may
 * report one loss twice (connect callback, then our own free).
 */
static void
cluster_redis_lost(struct cluster_redis *r, const char *why)
{
	int	was_ready = r->ready;

	if (r->ac == NULL)
		return;
	r->ac = NULL;
	r->ready = 0;
	r->retry_at = clock_now_ms() + r->backoff;
	if (!r->warned)
		log_warnx("cluster: redis (%s): %s; reconnecting", r->role,
		    why);
	r->warned = 1;
	r->backoff = r->backoff * 2 > CLUSTER_BACKOFF_MAX_MS ?
	    CLUSTER_BACKOFF_MAX_MS : r->backoff * 2;
	if (was_ready && r->on_lost != NULL)
		r->on_lost(r);
}

/* The connect finished, or failed (then hiredis frees the context). */
static void
cluster_redis_connected(const redisAsyncContext *ac, int status)
{
	struct cluster_redis	*r = ac->data;

	if (status != REDIS_OK)
		cluster_redis_lost(r, ac->errstr);
}

/* A connected context was lost; hiredis frees it after this. */
static void
cluster_redis_disconnected(const redisAsyncContext *ac, int status)
{
	struct cluster_redis	*r = ac->data;

	cluster_redis_lost(r, status == REDIS_OK ? "disconnected" :
	    ac->errstr);
}

/* AUTH or SELECT answered: an error drops the connection. */
static void
cluster_redis_setup_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply	*rep = reply;
	const char	*what = arg;

	if (rep == NULL || rep->type != REDIS_REPLY_ERROR)
		return;
	log_warnx("cluster: redis %s: %s", what, rep->str);
	redisAsyncDisconnect(ac);
}

/* The PING behind AUTH and SELECT answered: the connection is ready. */
static void
cluster_redis_ready(redisAsyncContext *ac, void *reply, void *arg)
{
	struct cluster_redis	*r = arg;
	redisReply		*rep = reply;

	if (rep == NULL || rep->type == REDIS_REPLY_ERROR || r->ac != ac)
		return;
	r->ready = 1;
	r->backoff = CLUSTER_BACKOFF_MIN_MS;
	if (r->warned)
		log_info("cluster: redis (%s): connected again", r->role);
	else
		log_debug("cluster: redis (%s): connected", r->role);
	r->warned = 0;
	if (r->on_ready != NULL)
		r->on_ready(r);
}

/* Starts connecting; the setup commands wait in hiredis's buffer. */
static void
cluster_redis_connect(struct cluster_redis *r)
{
	redisAsyncContext	*ac;
	char			 db[16];

	r->retry_at = 0;
	if (r->addr->unix_path)
		ac = redisAsyncConnectUnix(r->addr->host);
	else
		ac = redisAsyncConnect(r->addr->host, r->addr->port);
	if (ac == NULL)
		fatalx("cluster: out of memory");
	if (ac->err) {
		r->ac = ac;
		cluster_redis_lost(r, ac->errstr);
		redisAsyncFree(ac);
		return;
	}
	r->ac = ac;
	r->fd = ac->c.fd;
	ac->data = r;
	ac->ev.data = r;
	ac->ev.addRead = cluster_redis_add_read;
	ac->ev.delRead = cluster_redis_del_read;
	ac->ev.addWrite = cluster_redis_add_write;
	ac->ev.delWrite = cluster_redis_del_write;
	ac->ev.cleanup = cluster_redis_cleanup;
	(void)redisAsyncSetConnectCallback(ac, cluster_redis_connected);
	(void)redisAsyncSetDisconnectCallback(ac, cluster_redis_disconnected);
	r->connect_by = clock_now_ms() + CLUSTER_CONNECT_MS;
	/* Written once the connect completes, in this order. */
	if (r->password[0] != '\0')
		(void)redisAsyncCommand(ac, cluster_redis_setup_reply, "AUTH",
		    "AUTH %s", r->password);
	if (r->addr->db != 0) {
		(void)snprintf(db, sizeof(db), "%d", r->addr->db);
		(void)redisAsyncCommand(ac, cluster_redis_setup_reply,
		    "SELECT", "SELECT %s", db);
	}
	(void)redisAsyncCommand(ac, cluster_redis_setup_reply, "CLIENT",
	    "CLIENT SETNAME %s", r->client_name);
	(void)redisAsyncCommand(ac, cluster_redis_ready, r, "PING");
}

/* Sets a connection up and starts connecting. */
void
cluster_redis_init(struct cluster_redis *r, const char *role,
    const struct cluster_addr *addr, const char *password,
    const char *node_id, int epfd, cluster_redis_fn on_ready,
    cluster_redis_fn on_lost)
{
	const char	*c;
	size_t		 i;

	memset(r, 0, sizeof(*r));
	r->role = role;
	r->addr = addr;
	r->password = password;
	r->epfd = epfd;
	r->fd = -1;
	r->backoff = CLUSTER_BACKOFF_MIN_MS;
	r->on_ready = on_ready;
	r->on_lost = on_lost;
	/* CLIENT LIST shows who is who; a name has no spaces. */
	(void)snprintf(r->client_name, sizeof(r->client_name),
	    "talknetd:%s:%s", node_id, role);
	for (i = 0, c = r->client_name; *c != '\0'; c++, i++)
		if (*c == ' ')
			r->client_name[i] = '_';
	cluster_redis_connect(r);
}

/* Sends one command on a ready connection; -1 if it is not ready. */
int
cluster_redis_cmd(struct cluster_redis *r, redisCallbackFn *fn, void *arg,
    const char *fmt, ...)
{
	va_list	ap;
	int	rc;

	if (!r->ready || r->ac == NULL)
		return -1;
	va_start(ap, fmt);
	rc = redisvAsyncCommand(r->ac, fn, arg, fmt, ap);
	va_end(ap);
	return rc == REDIS_OK ? 0 : -1;
}

/* Sends one command given as argv; -1 if the connection is not ready. */
int
cluster_redis_argv(struct cluster_redis *r, redisCallbackFn *fn, void *arg,
    int argc, const char **argv, const size_t *argvlen)
{
	if (!r->ready || r->ac == NULL)
		return -1;
	return redisAsyncCommandArgv(r->ac, fn, arg, argc, argv,
	    argvlen) == REDIS_OK ? 0 : -1;
}

/*
 * Handles an event of the fd.  Reading may free the context (a closed
 * connection), so it is looked at again before writing.
 */
void
cluster_redis_event(struct cluster_redis *r, uint32_t events)
{
	if (r->ac != NULL && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		redisAsyncHandleRead(r->ac);
	if (r->ac != NULL && (events & (EPOLLOUT | EPOLLERR)))
		redisAsyncHandleWrite(r->ac);
}

/* Reconnects when the backoff is over; gives up a connect too slow. */
void
cluster_redis_timers(struct cluster_redis *r, int64_t now)
{
	redisAsyncContext	*ac;

	if (r->ac == NULL && r->retry_at != 0 && now >= r->retry_at) {
		cluster_redis_connect(r);
		return;
	}
	if (r->ac != NULL && !r->ready && now >= r->connect_by) {
		ac = r->ac;
		cluster_redis_lost(r, "no answer in time");
		redisAsyncFree(ac);
	}
}

/* Its next timer, or 0. */
int64_t
cluster_redis_next(const struct cluster_redis *r)
{
	if (r->ac == NULL)
		return r->retry_at;
	return r->ready ? 0 : r->connect_by;
}

/*
 * Drops the connection on purpose; it reconnects after the backoff.
 * At once: redisAsyncDisconnect would wait for the replies pending,
 * which a Redis that hangs never sends.  In a callback hiredis frees
 * the context once the callback returns.
 */
void
cluster_redis_drop(struct cluster_redis *r, const char *why)
{
	redisAsyncContext	*ac = r->ac;

	if (ac == NULL)
		return;
	cluster_redis_lost(r, why);
	redisAsyncFree(ac);
}

/* Sends one setup command on a blocking context; -1 with err. */
static int
cluster_redis_sync_cmd(redisContext *c, const char *what, char *err,
    size_t errlen, const char *fmt, const char *arg)
{
	redisReply	*rep;
	int		 rc = 0;

	if ((rep = redisCommand(c, fmt, arg)) == NULL) {
		(void)snprintf(err, errlen, "%s: %s", what, c->errstr);
		return -1;
	}
	if (rep->type == REDIS_REPLY_ERROR) {
		(void)snprintf(err, errlen, "%s: %s", what, rep->str);
		rc = -1;
	}
	freeReplyObject(rep);
	return rc;
}

/*
 * AUTH on a synchronous connection, written from a buffer of ours that
 * is wiped after: hiredis would format it in the heap and free it, and
 * the master's freed heap is every worker's (design.md, the password).
 */
static int
cluster_redis_sync_auth(redisContext *c, const char *password, char *err,
    size_t errlen)
{
	char		 cmd[256 + 64];	/* a password of the configuration's 255 */
	redisReply	*rep = NULL;
	size_t		 len = strlen(password);
	ssize_t		 n;
	int		 w, rc = -1;

	w = snprintf(cmd, sizeof(cmd), "*2\r\n$4\r\nAUTH\r\n$%zu\r\n%s\r\n",
	    len, password);
	if (w < 0 || (size_t)w >= sizeof(cmd)) {
		(void)snprintf(err, errlen, "AUTH: password too long");
		goto out;
	}
	n = write(c->fd, cmd, (size_t)w);
	explicit_bzero(cmd, sizeof(cmd));
	if (n != w) {
		(void)snprintf(err, errlen, "AUTH: %s", n == -1 ?
		    strerror(errno) : "short write");
		goto out;
	}
	if (redisGetReply(c, (void **)&rep) != REDIS_OK || rep == NULL)
		(void)snprintf(err, errlen, "AUTH: %s", c->errstr);
	else if (rep->type == REDIS_REPLY_ERROR)
		(void)snprintf(err, errlen, "AUTH: %s", rep->str);
	else
		rc = 0;
out:
	if (rep != NULL)
		freeReplyObject(rep);
	return rc;
}

/* Connects synchronously, AUTH and SELECT done; NULL with err. */
redisContext *
cluster_redis_sync(const struct cluster_addr *a, const char *password,
    char *err, size_t errlen)
{
	struct timeval	 tv = { CLUSTER_CONNECT_MS / 1000,
			    (CLUSTER_CONNECT_MS % 1000) * 1000 };
	redisContext	*c;
	char		 db[16];

	if (a->unix_path)
		c = redisConnectUnixWithTimeout(a->host, tv);
	else
		c = redisConnectWithTimeout(a->host, a->port, tv);
	if (c == NULL) {
		(void)snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (c->err) {
		(void)snprintf(err, errlen, "cannot reach redis at %s%s%s%d: %s",
		    a->unix_path ? "unix:" : "", a->host,
		    a->unix_path ? "" : ":", a->unix_path ? 0 : a->port,
		    c->errstr);
		redisFree(c);
		return NULL;
	}
	/* Replies must not wait forever either. */
	if (redisSetTimeout(c, tv) != REDIS_OK)
		goto fail;
	if (password[0] != '\0' && cluster_redis_sync_auth(c, password, err,
	    errlen) == -1)
		goto fail;
	(void)snprintf(db, sizeof(db), "%d", a->db);
	if (a->db != 0 && cluster_redis_sync_cmd(c, "SELECT", err, errlen,
	    "SELECT %s", db) == -1)
		goto fail;
	return c;
fail:
	if (err[0] == '\0')
		(void)snprintf(err, errlen, "redis: %s", c->errstr);
	redisFree(c);
	return NULL;
}
