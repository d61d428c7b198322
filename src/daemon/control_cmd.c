/*
 * control_cmd.c: the commands of the control socket.  One table says
 * each command's words and its handler.  The users and rooms come from
 * the shared table, read as a reader (the hub is its writer: gen is a
 * seqlock), so a row is either as the hub left it or skipped; the
 * workers' addresses and start times are the master's own.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "clock.h"
#include "control.h"
#include "control_int.h"
#include "ipc.h"
#include "log.h"
#include "master.h"
#include "proto.h"
#include "session.h"
#include "shm.h"
#include "talknetd.h"
#include "xmalloc.h"

#define CTL_SNAP_TRIES		1000	/* seqlock retries per row */
#define CTL_NAME_MAX		(CEIL_MAX_NAME * 4 + 1)
#define CTL_STATS_MAX		64
#define CTL_KICKS		8	/* kicks the hub may not have read */
#define CTL_KICK_MS		1000	/* one of them that old is lost */

/* One figure of "show stats". */
struct ctl_stat {
	char		key[48];
	uint64_t	value;
};

/* One user row, copied whole as of one table generation. */
struct ctl_user {
	struct shm_user	u;
	char		name[CTL_NAME_MAX];
};

/* The master's read-only view of the table. */
static struct shm_table *
ctl_tab(void)
{
	static struct shm_table	t;

	t.hdr = (struct shm_hdr *)(uintptr_t)master.rt.shm_ro;
	t.size = master.rt.shm_size;
	return &t;
}

/* The table's generation, even when it is consistent. */
static uint64_t
ctl_gen(const struct shm_table *t)
{
	return __atomic_load_n(&t->hdr->gen, __ATOMIC_ACQUIRE);
}

/* Whether the table is still at generation g1 after a copy. */
static int
ctl_same(const struct shm_table *t, uint64_t g1)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&t->hdr->gen, __ATOMIC_RELAXED) == g1;
}

/*
 * Copies a row's name of len bytes from the table to dst, NUL-terminated;
 * empty if len is over the table's max or dst's size (a torn read).
 */
static void
ctl_name(char *dst, size_t size, const char *src, size_t len, size_t max)
{
	if (len > max || len >= size)
		len = 0;
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* Copies user row i consistently; 0, or -1 if the hub kept changing it. */
static int
ctl_user_get(const struct shm_table *t, uint32_t i, struct ctl_user *cu)
{
	uint64_t	g1;
	int		k;

	for (k = 0; k < CTL_SNAP_TRIES; k++) {
		if ((g1 = ctl_gen(t)) & 1)
			continue;
		memcpy(&cu->u, shm_user(t, i), sizeof(cu->u));
		ctl_name(cu->name, sizeof(cu->name),
		    shm_user_name(t, shm_user(t, i)), cu->u.name_len,
		    t->hdr->name_bytes);
		if (ctl_same(t, g1))
			return 0;
	}
	return -1;
}

/* Copies room r's name and whether user u is in it; -1 if not in use. */
static int
ctl_room_get(const struct shm_table *t, uint32_t r, uint32_t u,
    char *name, size_t namelen, struct shm_room *copy, int *member)
{
	struct shm_room	*row = shm_room(t, r);
	uint64_t	 g1;
	int		 k;

	for (k = 0; k < CTL_SNAP_TRIES; k++) {
		if ((g1 = ctl_gen(t)) & 1)
			continue;
		memcpy(copy, row, sizeof(*copy));
		if (!copy->in_use) {
			if (ctl_same(t, g1))
				return -1;
			continue;
		}
		ctl_name(name, namelen, shm_room_name(t, row), copy->name_len,
		    t->hdr->room_bytes);
		*member = u != UINT32_MAX &&
		    shm_bit_test(shm_room_members(t, row), u);
		if (ctl_same(t, g1))
			return 0;
	}
	return -1;
}

/* Queues the END frame: the status and the message, one line a string. */
static void
ctl_finish(struct ctl_conn *c, int ok, const char *msg)
{
	const char	*p, *nl;
	size_t		 off;

	off = ctl_begin(&c->peer.out, CTL_END);
	ctl_put_str(&c->peer.out, ok ? "ok" : "refused", ok ? 2 : 7);
	for (p = msg; p != NULL && *p != '\0'; p = nl != NULL ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		ctl_put_str(&c->peer.out, p, nl != NULL ? (size_t)(nl - p) :
		    strlen(p));
	}
	ctl_end(&c->peer.out, off);
	c->done = 1;
}

/* Queues the COLUMNS frame: kind, then "T:name" for each column. */
static void
ctl_columns(struct ctl_conn *c, const char *kind, const char *const *cols,
    size_t n)
{
	size_t	off, i;

	off = ctl_begin(&c->peer.out, CTL_COLUMNS);
	ctl_put_str(&c->peer.out, kind, strlen(kind));
	for (i = 0; i < n; i++)
		ctl_put_str(&c->peer.out, cols[i], strlen(cols[i]));
	ctl_end(&c->peer.out, off);
}

/* Appends a number as one string of the frame being built. */
static void
ctl_put_num(struct buf *b, uint64_t v)
{
	char	s[32];
	int	n;

	n = snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
	ctl_put_str(b, s, (size_t)n);
}

/* Adds one figure to the stats. */
static void
ctl_stat(struct ctl_stat *st, size_t *n, const char *prefix,
    const char *name, uint64_t v)
{
	char	*p;

	if (*n >= CTL_STATS_MAX)
		return;
	(void)snprintf(st[*n].key, sizeof(st[*n].key), "%s%s", prefix, name);
	/* Keys are one word for scripts: "ended_client_closed". */
	for (p = st[*n].key; *p != '\0'; p++)
		if (*p == ' ' || *p == '-')
			*p = '_';
	st[*n].value = v;
	(*n)++;
}

/* Gathers the "show stats" figures; returns how many. */
static size_t
ctl_stats(struct ctl_stat *st)
{
	const struct shm_hdr	*h = ctl_tab()->hdr;
	uint64_t		 ident, clients = live->nchildren;
	size_t			 n = 0;
	unsigned int		 i;

	ident = __atomic_load_n(&h->nidentified, __ATOMIC_RELAXED);
	ctl_stat(st, &n, "", "uptime", (uint64_t)(time(NULL) - master.started));
	ctl_stat(st, &n, "", "clients", clients);
	ctl_stat(st, &n, "", "identified", ident);
	ctl_stat(st, &n, "", "unidentified", clients > ident ?
	    clients - ident : 0);
	ctl_stat(st, &n, "", "rooms", __atomic_load_n(&h->nrooms,
	    __ATOMIC_RELAXED));
	ctl_stat(st, &n, "", "messages_in", h->counters.msgs_in);
	ctl_stat(st, &n, "", "messages_out", h->counters.msgs_out);
	ctl_stat(st, &n, "", "bytes_in", h->counters.bytes_in);
	ctl_stat(st, &n, "", "bytes_out", h->counters.bytes_out);
	ctl_stat(st, &n, "", "sessions", live->totals.sessions);
	for (i = 1; i < END_LAST; i++)
		ctl_stat(st, &n, "ended_", session_end_name(i),
		    live->totals.ends[i]);
	ctl_stat(st, &n, "", "hub_restarts", master.hub_starts > 0 ?
	    master.hub_starts - 1 : 0);
	for (i = 0; i < LIMIT_LAST; i++)
		ctl_stat(st, &n, "hits_", limit_name(i), live->totals.hits[i]);
	ctl_stat(st, &n, "", "cluster_refused", live->cluster_refused);
	ctl_stat(st, &n, "", "spares_idle", live->nspare[0] + live->nspare[1]);
	ctl_stat(st, &n, "", "spares_forked", live->spare_forks);
	ctl_stat(st, &n, "", "spares_handed", live->spare_handoffs);
	ctl_stat(st, &n, "", "spares_missed", live->spare_misses);
	ctl_stat(st, &n, "", "spares_lost", live->spare_lost);
	return n;
}

/* SIGUSR1: the "show stats" figures as one log line. */
void
control_log_stats(void)
{
	struct ctl_stat	st[CTL_STATS_MAX];
	char		line[2048];
	size_t		n, i, len = 0;
	int		w;

	n = ctl_stats(st);
	line[0] = '\0';
	for (i = 0; i < n && len < sizeof(line); i++) {
		w = snprintf(line + len, sizeof(line) - len, "%s%s=%llu",
		    i > 0 ? " " : "", st[i].key,
		    (unsigned long long)st[i].value);
		if (w < 0)
			break;
		len += (size_t)w;
	}
	log_info("stats: %s cluster=%s", line, master_cluster_name());
}

/* show stats: one record. */
static void
cmd_stats(struct ctl_conn *c, const struct str *w, size_t nw)
{
	struct ctl_stat	 st[CTL_STATS_MAX];
	char		 cols[CTL_STATS_MAX][52];
	const char	*colp[CTL_STATS_MAX + 1], *cl;
	size_t		 n, i, off;

	(void)w;
	(void)nw;
	n = ctl_stats(st);
	for (i = 0; i < n; i++) {
		(void)snprintf(cols[i], sizeof(cols[i]), "n:%.47s",
		    st[i].key);
		colp[i] = cols[i];
	}
	/* The one word among the figures: none, ok or degraded. */
	colp[n] = "s:cluster";
	ctl_columns(c, "record", colp, n + 1);
	off = ctl_begin(&c->peer.out, CTL_ROW);
	for (i = 0; i < n; i++)
		ctl_put_num(&c->peer.out, st[i].value);
	cl = master_cluster_name();
	ctl_put_str(&c->peer.out, cl, strlen(cl));
	ctl_end(&c->peer.out, off);
	ctl_finish(c, 1, NULL);
}

/*
 * Whether a node row the hub wrote is sane: an id that ends within its
 * field, known flags, times of -1 or more.  The hub is trusted less
 * than the master: a bad row is left out, and counted.
 */
static int
ctl_node_ok(const struct shm_node *n)
{
	size_t	len = strnlen(n->id, sizeof(n->id)), i;

	if (len == 0 || len == sizeof(n->id) ||
	    (n->flags & ~(uint32_t)(SHM_NODE_SELF | SHM_NODE_LIVE)) != 0 ||
	    n->beat_ms < -1 || n->lag_ms < -1)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)n->id[i] < 0x20 || n->id[i] == 0x7f)
			return 0;
	return 1;
}

/* A number, or "-" for -1 (unknown), as one string of the row. */
static void
ctl_put_ms(struct buf *b, int64_t v)
{
	if (v < 0)
		ctl_put_str(b, "-", 1);
	else
		ctl_put_num(b, (uint64_t)v);
}

/* show cluster: the nodes, as the hub last read them from Redis. */
static void
cmd_cluster(struct ctl_conn *c, const struct str *w, size_t nw)
{
	static const char *const cols[] = { "s:node", "s:here", "s:state",
	    "n:clients", "n:lag_ms", "n:heartbeat_ms" };
	static struct shm_nodes	 ns;
	const struct shm_node	*n;
	char			 msg[160];
	size_t			 i, off, bad = 0;
	int64_t			 age;

	(void)w;
	(void)nw;
	if (master.cfg->cluster[0] == '\0') {
		ctl_finish(c, 0, "not in a cluster (no --cluster)");
		return;
	}
	if (shm_nodes_get(ctl_tab(), &ns) == -1 || ns.version !=
	    SHM_NODES_VERSION || ns.n > SHM_NODES_MAX || ns.total < ns.n) {
		ctl_finish(c, 0, ns.version == 0 ? "the hub has not read the "
		    "cluster from Redis yet; try again" : "the hub's node list "
		    "is not readable");
		return;
	}
	ctl_columns(c, "table", cols, sizeof(cols) / sizeof(cols[0]));
	for (i = 0; i < ns.n; i++) {
		n = &ns.node[i];
		if (!ctl_node_ok(n)) {
			bad++;
			continue;
		}
		off = ctl_begin(&c->peer.out, CTL_ROW);
		ctl_put_str(&c->peer.out, n->id, strlen(n->id));
		ctl_put_str(&c->peer.out, n->flags & SHM_NODE_SELF ? "yes" :
		    "", n->flags & SHM_NODE_SELF ? 3 : 0);
		ctl_put_str(&c->peer.out, n->flags & SHM_NODE_LIVE ? "live" :
		    "lapsed", n->flags & SHM_NODE_LIVE ? 4 : 6);
		ctl_put_num(&c->peer.out, n->clients);
		ctl_put_ms(&c->peer.out, n->lag_ms);
		ctl_put_ms(&c->peer.out, n->beat_ms);
		ctl_end(&c->peer.out, off);
	}
	age = (int64_t)time(NULL) - ns.at;
	(void)snprintf(msg, sizeof(msg), "%u %s, read from Redis %lld s ago "
	    "(cluster %s)", ns.total, ns.total == 1 ? "node" : "nodes",
	    (long long)(age > 0 ? age : 0), master_cluster_name());
	if (ns.total > ns.n - bad)
		(void)snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
		    "; %zu shown", ns.n - bad);
	ctl_finish(c, 1, msg);
}

/* show users: the columns; control_more makes the rows. */
static void
cmd_users(struct ctl_conn *c, const struct str *w, size_t nw)
{
	static const char *const cols[] = { "s:name", "s:status",
	    "s:address", "s:since", "l:rooms", "n:queue" };

	(void)w;
	(void)nw;
	ctl_columns(c, "table", cols, sizeof(cols) / sizeof(cols[0]));
	c->cmd = CMD_USERS;
}

/* show rooms: the columns; control_more makes the rows. */
static void
cmd_rooms(struct ctl_conn *c, const struct str *w, size_t nw)
{
	static const char *const cols[] = { "s:name", "n:members",
	    "n:invited", "l:users" };

	(void)w;
	(void)nw;
	ctl_columns(c, "table", cols, sizeof(cols) / sizeof(cols[0]));
	c->cmd = CMD_ROOMS;
}

/* The rooms user u is a member of, as one list cell ('\n' between). */
static void
ctl_user_rooms(const struct shm_table *t, uint32_t u, struct buf *cell)
{
	struct shm_room	copy;
	char		name[CTL_NAME_MAX];
	uint32_t	r;
	int		member;

	for (r = 0; r < t->hdr->max_rooms; r++) {
		if (!shm_room(t, r)->in_use)
			continue;
		if (ctl_room_get(t, r, u, name, sizeof(name), &copy,
		    &member) == -1 || !member)
			continue;
		if (buf_pending(cell) > 0)
			xbuf_append(cell, "\n", 1);
		xbuf_append(cell, name, strlen(name));
	}
}

/* Queues one user's row. */
static void
ctl_user_row(struct ctl_conn *c, const struct shm_table *t, uint32_t i,
    const struct ctl_user *cu)
{
	struct child	 key, *ch;
	struct buf	 cell;
	struct tm	 tm;
	char		 since[32] = "-";
	const char	*addr = "-", *status;
	size_t		 off;

	key.pid = cu->u.pid;
	if ((ch = RB_FIND(child_tree, &live->children, &key)) != NULL) {
		addr = ch->addr;
		if (gmtime_r(&ch->since, &tm) != NULL)
			(void)strftime(since, sizeof(since),
			    "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	status = cu->u.state == USER_IDENTIFIED ?
	    proto_status_name((enum user_status)cu->u.status) : "connecting";
	if (status == NULL)
		status = "?";
	buf_init(&cell);
	if (cu->u.state == USER_IDENTIFIED)
		ctl_user_rooms(t, i, &cell);
	off = ctl_begin(&c->peer.out, CTL_ROW);
	if (cu->u.state == USER_IDENTIFIED)
		ctl_put_str(&c->peer.out, cu->name, strlen(cu->name));
	else
		ctl_put_str(&c->peer.out, "-", 1);
	ctl_put_str(&c->peer.out, status, strlen(status));
	ctl_put_str(&c->peer.out, addr, strlen(addr));
	ctl_put_str(&c->peer.out, since, strlen(since));
	ctl_put_str(&c->peer.out, buf_head(&cell), buf_pending(&cell));
	ctl_put_num(&c->peer.out, cu->u.queued);
	ctl_end(&c->peer.out, off);
	buf_free(&cell);
	c->count++;
}

/* Queues one room's row. */
static void
ctl_room_row(struct ctl_conn *c, const struct shm_table *t, uint32_t r)
{
	struct shm_room	 copy;
	struct ctl_user	 cu;
	struct buf	 cell;
	char		 name[CTL_NAME_MAX];
	uint64_t	 invited = 0;
	uint32_t	 u;
	int		 member;
	size_t		 off;

	if (ctl_room_get(t, r, UINT32_MAX, name, sizeof(name), &copy,
	    &member) == -1)
		return;
	buf_init(&cell);
	for (u = 0; u < t->hdr->max_users; u++) {
		if (shm_room_is_invited(t, r, u))
			invited++;
		if (!shm_room_is_member(t, r, u) ||
		    ctl_user_get(t, u, &cu) == -1 ||
		    cu.u.state != USER_IDENTIFIED)
			continue;
		if (buf_pending(&cell) > 0)
			xbuf_append(&cell, "\n", 1);
		xbuf_append(&cell, cu.name, strlen(cu.name));
	}
	off = ctl_begin(&c->peer.out, CTL_ROW);
	ctl_put_str(&c->peer.out, name, strlen(name));
	ctl_put_num(&c->peer.out, copy.nmembers);
	ctl_put_num(&c->peer.out, invited);
	ctl_put_str(&c->peer.out, buf_head(&cell), buf_pending(&cell));
	ctl_end(&c->peer.out, off);
	buf_free(&cell);
	c->count++;
}

/*
 * Queues the next slice of "show users" or "show rooms": rows until
 * CONTROL_OUT_LOW bytes wait, so 10,000 users never sit in memory at
 * once; END after the last.
 */
void
control_more(struct ctl_conn *c)
{
	const struct shm_table	*t = ctl_tab();
	struct ctl_user		 cu;
	char			 msg[64];
	uint32_t		 max;

	if (c->done || c->cmd == CMD_NONE)
		return;
	max = c->cmd == CMD_USERS ? t->hdr->max_users : t->hdr->max_rooms;
	while (c->cursor < max && buf_pending(&c->peer.out) < CONTROL_OUT_LOW) {
		if (c->cmd == CMD_USERS) {
			if (shm_user(t, c->cursor)->state != USER_FREE &&
			    ctl_user_get(t, c->cursor, &cu) == 0 &&
			    cu.u.state != USER_FREE)
				ctl_user_row(c, t, c->cursor, &cu);
		} else if (shm_room(t, c->cursor)->in_use)
			ctl_room_row(c, t, c->cursor);
		c->cursor++;
	}
	if (c->cursor < max)
		return;
	(void)snprintf(msg, sizeof(msg), "%llu %s", (unsigned long long)
	    c->count, c->cmd == CMD_USERS ? (c->count == 1 ? "client" :
	    "clients") : (c->count == 1 ? "room" : "rooms"));
	ctl_finish(c, 1, msg);
}

/* Copies a word into a NUL-terminated buffer; -1 if it does not fit. */
static int
ctl_word(const struct str *w, char *dst, size_t len)
{
	if (w->len >= len || memchr(w->p, '\0', w->len) != NULL)
		return -1;
	memcpy(dst, w->p, w->len);
	dst[w->len] = '\0';
	return 0;
}

/*
 * Whether that identification was kicked less than CTL_KICK_MS ago:
 * the hub has not read the kick yet, so the row still shows the user.
 * With sent set, remembers k as sent instead.  So two kicks at once
 * are one kick, one answer "kicked" and one log line.  After
 * CTL_KICK_MS a kick is taken as lost (a hub that died before reading
 * it) and may be sent again.
 */
static int
ctl_kick_pending(const struct ipc_kick *k, int sent_now)
{
	static struct {
		struct ipc_kick	k;
		int64_t		at;
	}		 sent[CTL_KICKS];
	static size_t	 next;
	int64_t		 now = clock_now_ms();
	size_t		 i;

	if (sent_now) {
		sent[next].k = *k;
		sent[next].at = now;
		next = (next + 1) % CTL_KICKS;
		return 0;
	}
	for (i = 0; i < CTL_KICKS; i++)
		if (sent[i].at != 0 && now - sent[i].at < CTL_KICK_MS &&
		    sent[i].k.slot == k->slot && sent[i].k.pid == k->pid &&
		    sent[i].k.seq == k->seq)
			return 1;
	return 0;
}

/* kick USER [REASON]: the hub closes that user's connection. */
static void
cmd_kick(struct ctl_conn *c, const struct str *w, size_t nw)
{
	const struct shm_table	*t = ctl_tab();
	struct ctl_user		 cu;
	struct ipc_kick		 k;
	char			 ename[LOG_ESCAPED(CTL_NAME_MAX)];
	char			 ewhy[LOG_ESCAPED(256)];
	char			 msg[CTL_NAME_MAX + 64];
	uint32_t		 i;

	(void)log_escape(w[1].p, w[1].len, ename, sizeof(ename));
	for (i = 0; i < t->hdr->max_users; i++) {
		if (shm_user(t, i)->state != USER_IDENTIFIED ||
		    ctl_user_get(t, i, &cu) == -1 ||
		    cu.u.state != USER_IDENTIFIED ||
		    strlen(cu.name) != w[1].len ||
		    memcmp(cu.name, w[1].p, w[1].len) != 0)
			continue;
		memset(&k, 0, sizeof(k));
		k.slot = i;
		k.pid = cu.u.pid;
		k.seq = cu.u.seq;
		if (ctl_kick_pending(&k, 0)) {
			(void)snprintf(msg, sizeof(msg), "%s is being kicked "
			    "already", cu.name);
			ctl_finish(c, 0, msg);
			return;
		}
		if (master_hub_send(IPC_KICK, &k, sizeof(k)) == -1) {
			ctl_finish(c, 0, "the hub is not running; try again");
			return;
		}
		(void)ctl_kick_pending(&k, 1);
		if (nw > 2) {
			(void)log_escape(w[2].p, w[2].len, ewhy, sizeof(ewhy));
			log_info("kicked %s (reason: %s) by uid %lu", ename,
			    ewhy, (unsigned long)c->uid);
		} else
			log_info("kicked %s by uid %lu", ename,
			    (unsigned long)c->uid);
		(void)snprintf(msg, sizeof(msg), "kicked %s", cu.name);
		ctl_finish(c, 1, msg);
		return;
	}
	(void)snprintf(msg, sizeof(msg), "no such user: %.1000s", ename);
	ctl_finish(c, 0, msg);
}

/* reload: as SIGHUP, with what it did. */
static void
cmd_reload(struct ctl_conn *c, const struct str *w, size_t nw)
{
	char	msg[1024];
	int	r;

	(void)w;
	(void)nw;
	log_info("reload asked by uid %lu", (unsigned long)c->uid);
	r = master_reload(msg, sizeof(msg));
	ctl_finish(c, r == 0, msg);
}

/* log level LEVEL: in the master, the hub and every worker. */
static void
cmd_log_level(struct ctl_conn *c, const struct str *w, size_t nw)
{
	char	word[16], msg[128];
	int	level, was = master.cfg->log_level;

	(void)nw;
	if (ctl_word(&w[2], word, sizeof(word)) == -1 ||
	    (level = log_level_parse(word)) == -1) {
		ctl_finish(c, 0, "not a log level: use error, warning, info "
		    "or debug");
		return;
	}
	master_log_level(level);
	log_info("log level %s (was %s), set by uid %lu",
	    log_level_name(level), log_level_name(was), (unsigned long)c->uid);
	(void)snprintf(msg, sizeof(msg), "log level %s (was %s)",
	    log_level_name(level), log_level_name(was));
	ctl_finish(c, 1, msg);
}

/* The commands: their words, how many words, and the handler. */
static const struct ctl_command {
	const char	*w0;
	const char	*w1;		/* NULL: any second word */
	size_t		 min;
	size_t		 max;
	void		(*run)(struct ctl_conn *, const struct str *, size_t);
} ctl_commands[] = {
	{ "show", "stats", 2, 2, cmd_stats },
	{ "show", "users", 2, 2, cmd_users },
	{ "show", "rooms", 2, 2, cmd_rooms },
	{ "show", "cluster", 2, 2, cmd_cluster },
	{ "kick", NULL, 2, 3, cmd_kick },
	{ "reload", NULL, 1, 1, cmd_reload },
	{ "log", "level", 3, 3, cmd_log_level },
};

/* Whether word w is s. */
static int
ctl_is(const struct str *w, const char *s)
{
	return w->len == strlen(s) && memcmp(w->p, s, w->len) == 0;
}

/* Runs a request: finds its row in the table, or says it is unknown. */
void
control_run(struct ctl_conn *c, const struct str *w, size_t n)
{
	const struct ctl_command	*cmd;
	size_t				 i;

	for (i = 0; i < sizeof(ctl_commands) / sizeof(ctl_commands[0]); i++) {
		cmd = &ctl_commands[i];
		if (!ctl_is(&w[0], cmd->w0) ||
		    (cmd->w1 != NULL && (n < 2 || !ctl_is(&w[1], cmd->w1))))
			continue;
		if (n < cmd->min || n > cmd->max) {
			ctl_finish(c, 0, "wrong number of words for that "
			    "command");
			return;
		}
		log_debug("control: uid %lu (pid %ld): %s%s%s",
		    (unsigned long)c->uid, (long)c->pid, cmd->w0,
		    cmd->w1 != NULL ? " " : "", cmd->w1 != NULL ? cmd->w1 : "");
		cmd->run(c, w, n);
		if (c->cmd != CMD_NONE)
			control_more(c);
		return;
	}
	ctl_finish(c, 0, "unknown command (see talknetctl -h)");
}
