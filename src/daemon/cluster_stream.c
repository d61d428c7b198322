/*
 * cluster_stream.c: this node reads every other node's stream, on a
 * connection of its own that does nothing else (XREAD BLOCK holds it).
 * The last id read of each stream is remembered, so a reconnect
 * resumes where it stopped: no gap while the stream still holds it.
 * A hub that starts first takes a snapshot of the cluster's names and
 * each stream's last id in one script, replaces its mirror with it,
 * and reads on from those ids.  The last ids are also kept in the
 * table's header (struct shm_tails), so a hub started again after a
 * crash reads on from where the dead one stopped, into the mirror it
 * left, with no snapshot and no gap.  Each entry is applied in its
 * stream's order (cluster_mirror.c).
 */
#include "config.h"

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "cluster.h"
#include "cluster_int.h"
#include "ipc.h"
#include "log.h"
#include "shm.h"
#include "talknetd.h"
#include "utf8.h"
#include "xmalloc.h"

#define STREAM_BLOCK_MS		"1000"	/* one XREAD waits at most */
#define STREAM_COUNT		"1000"	/* entries, per stream, per XREAD */
#define STREAM_STUCK_MS		(1000 + CLUSTER_TTL_MS(cs.cfg))	/* no answer */
#define STREAM_IDLE_MS		1000	/* no stream to read: look again */
#define STREAM_FORGET_MS	60000	/* out of tn:nodes: its id kept */
#define STREAM_BAD_MS		5000	/* not a stream: not read */
#define STREAM_NODES_MAX	1024	/* streams read, at most */
#define STREAM_NODE_MAX		63	/* as conf.c's node-id */
#define STREAM_SKIP_LOGS	5	/* skipped entries logged a second */
#define STREAM_TEXT_MAX		(IPC_MAX_PAYLOAD / 8) /* escaped, fits */

/*
 * The kinds of entries, and the fields each needs besides e and n:
 * r (a room), to (a user), t (a text), s (a status).
 */
static const struct stream_kind {
	const char	*e;
	int		 r, to, t, s;
} stream_kinds[] = {
	{ "user", 0, 0, 0, 0 },
	{ "gone", 0, 0, 0, 0 },
	{ "status", 0, 0, 0, 1 },
	{ "pub", 0, 0, 1, 0 },
	{ "priv", 0, 1, 1, 0 },
	{ "room", 1, 0, 0, 0 },
	{ "invite", 1, 1, 0, 0 },
	{ "join", 1, 0, 0, 0 },
	{ "left", 1, 0, 0, 0 },
	{ "rtext", 1, 0, 1, 0 },
};

/*
 * The snapshot: every name another node holds, with its node and its
 * status, the last id of every other node's stream, and every room
 * with its creator and members, read at one instant.
 * KEYS: tn:names, tn:nodes, tn:status; ARGV: this node's id.
 */
static const char stream_lua_snapshot[] =
	"local out, since = {}, {}\n"
	"local names = redis.call('HGETALL', KEYS[1])\n"
	"for i = 1, #names, 2 do\n"
	"  if names[i + 1] ~= ARGV[1] then\n"
	"    out[#out + 1] = names[i]\n"
	"    out[#out + 1] = names[i + 1]\n"
	"    out[#out + 1] = redis.call('HGET', KEYS[3], names[i]) or '0'\n"
	"    since[#since + 1] = redis.call('HGET', 'tn:since', names[i])"
	"      or '0'\n"
	"  end\n"
	"end\n"
	"local last = {}\n"
	"for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do\n"
	"  if n ~= ARGV[1] then\n"
	"    local e = redis.call('XREVRANGE', '" CLUSTER_PREFIX "stream:' .. n,"
	"      '+', '-', 'COUNT', 1)\n"
	"    last[#last + 1] = n\n"
	"    last[#last + 1] = (e[1] and e[1][1]) or '0-0'\n"
	"  end\n"
	"end\n"
	"local rooms = {}\n"
	"for _, r in ipairs(redis.call('SMEMBERS', 'tn:rooms')) do\n"
	"  rooms[#rooms + 1] = {r,\n"
	"    redis.call('HGET', 'tn:room:' .. r, 'creator') or '',\n"
	"    redis.call('SMEMBERS', 'tn:rm:' .. r)}\n"
	"end\n"
	"return {out, last, rooms, since}\n";

/*
 * The last join read.  From the start: the first read returns at once
 * (with this node's own join at least), and from then on no join
 * between a SMEMBERS and the next read is missed, as "$" would.
 */
static char	stream_joins_id[STREAM_ID_MAX] = "0-0";

static struct {
	const struct config	*cfg;
	struct cluster_redis	 rd;
	struct stream_tail	*tails;
	size_t			 ntails;
	int			 synced;	/* the snapshot is applied */
	int			 resuming;	/* the dead hub's ids are in
						   tails: its snapshot only
						   names the users' nodes */
	int			 asked;		/* a request is on its way */
	int64_t			 asked_at;
	int64_t			 idle_until;	/* 0, or read again then */
} cs;

static void	stream_poll(void);
static void	stream_snapshot(void);
static void	stream_types(void);

/* The types of keys (after an XREAD failed).  KEYS: the keys. */
static const char stream_lua_types[] =
	"local out = {}\n"
	"for i, k in ipairs(KEYS) do out[i] = redis.call('TYPE', k)['ok'] end\n"
	"return out\n";

/* An answer came: none is awaited now.  NULL: the connection is lost. */
static redisReply *
stream_answer(void *reply)
{
	cs.asked = 0;
	return reply;
}

/* A request went (rc 0): its answer is awaited from now on. */
static void
stream_asked(int rc)
{
	if (rc != 0)
		return;
	cs.asked = 1;
	cs.asked_at = clock_now_ms();
}

/* The tail of node's stream, or NULL. */
static struct stream_tail *
stream_tail_find(const char *node)
{
	size_t	i;

	for (i = 0; i < cs.ntails; i++)
		if (strcmp(cs.tails[i].node, node) == 0)
			return &cs.tails[i];
	return NULL;
}

/* A new tail, read from the stream's start. */
static struct stream_tail *
stream_tail_new(const char *node)
{
	struct stream_tail	*t;

	cs.tails = xreallocarray(cs.tails, cs.ntails + 1, sizeof(*cs.tails));
	t = &cs.tails[cs.ntails++];
	memset(t, 0, sizeof(*t));
	(void)strlcpy(t->node, node, sizeof(t->node));
	(void)snprintf(t->key, sizeof(t->key), CLUSTER_PREFIX "stream:%s",
	    node);
	(void)strlcpy(t->id, "0-0", sizeof(t->id));
	return t;
}

/* Starts reading node's stream after id. */
static void
stream_tail_add(const char *node, const char *id)
{
	struct stream_tail	*t;

	if (strcmp(node, cs.cfg->node_id) == 0 ||
	    !cluster_node_valid(node, strlen(node)) ||
	    strlen(id) >= sizeof(t->id))
		return;
	if ((t = stream_tail_find(node)) == NULL) {
		if (cs.ntails >= STREAM_NODES_MAX)
			return;
		t = stream_tail_new(node);
	}
	(void)strlcpy(t->id, id, sizeof(t->id));
	t->absent_since = 0;
}

/* A string element, or NULL. */
static const redisReply *
stream_str(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_STRING ? r : NULL;
}

/* The value of field f in an entry's field list, or NULL. */
static const redisReply *
stream_field(const redisReply *fields, const char *f)
{
	size_t	i;

	for (i = 0; i + 1 < fields->elements; i += 2)
		if (stream_str(fields->element[i]) != NULL &&
		    strcmp(fields->element[i]->str, f) == 0)
			return stream_str(fields->element[i + 1]);
	return NULL;
}

/* A status as a stream or the snapshot writes it ("0" to "2"). */
static int
stream_status(const redisReply *s)
{
	if (s == NULL || s->len != 1 || s->str[0] < '0' || s->str[0] > '9')
		return 0;
	return s->str[0] - '0';
}

/*
 * Whether a node id is one conf.c would take (1 to 63 of letters,
 * digits and . _ : -): ids from Redis name keys, conns and log lines.
 */
int
cluster_node_valid(const char *p, size_t len)
{
	size_t	i;

	if (len == 0 || len > STREAM_NODE_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') ||
		    (p[i] >= 'A' && p[i] <= 'Z') ||
		    (p[i] >= '0' && p[i] <= '9') ||
		    strchr("._:-", p[i]) != NULL) || p[i] == '\0')
			return 0;
	return 1;
}

/*
 * Whether a warning about what was read from Redis may be logged now:
 * anything that writes to Redis could make one a line per entry, so a
 * few a second, and the count of the others when the next second
 * starts.
 */
int
cluster_warn_ok(void)
{
	static int64_t			 since;
	static unsigned int		 logged;
	static unsigned long long	 hushed;
	int64_t				 now = clock_now_ms();

	if (now - since >= 1000) {
		if (hushed > 0)
			log_warnx("cluster: %llu more warnings about what was "
			    "read from Redis not logged", hushed);
		since = now;
		logged = 0;
		hushed = 0;
	}
	if (logged >= STREAM_SKIP_LOGS) {
		hushed++;
		return 0;
	}
	logged++;
	return 1;
}

/*
 * Logs an entry of node's stream that is skipped, with the offending
 * value escaped and cut.
 */
static void
stream_skip(const char *node, const char *why, const redisReply *v)
{
	char	esc[LOG_ESCAPED(64)];

	if (!cluster_warn_ok())
		return;
	log_warnx("cluster: skipped an entry of %s's stream: %s%s%s", node,
	    why, v != NULL ? ": " : "", v != NULL ? log_escape(v->str,
	    v->len < 64 ? v->len : 64, esc, sizeof(esc)) : "");
}

/*
 * Why an entry cannot be applied, or NULL; *bad is the value at fault.
 * Names must be ones this node's clients could send, texts valid UTF-8
 * no longer than this node's lines.
 */
static const char *
stream_check(const redisReply *fields, const struct stream_kind **kind,
    const redisReply **bad)
{
	const redisReply	*e, *n, *v;
	size_t			 i;

	*bad = NULL;
	if (fields->type != REDIS_REPLY_ARRAY ||
	    (e = stream_field(fields, "e")) == NULL)
		return "no kind";
	*kind = NULL;
	for (i = 0; i < sizeof(stream_kinds) / sizeof(stream_kinds[0]); i++)
		if (e->len == strlen(stream_kinds[i].e) &&
		    memcmp(e->str, stream_kinds[i].e, e->len) == 0)
			*kind = &stream_kinds[i];
	if (*kind == NULL) {
		*bad = e;
		return "unknown kind";
	}
	if ((*bad = n = stream_field(fields, "n")) == NULL ||
	    !utf8_name_valid(n->str, n->len, cs.cfg->max_name))
		return "no user, or not a user name";
	if ((*kind)->r && ((*bad = v = stream_field(fields, "r")) == NULL ||
	    !utf8_name_valid(v->str, v->len, cs.cfg->max_room)))
		return "no room, or not a room name";
	if ((*kind)->to && ((*bad = v = stream_field(fields, "to")) == NULL ||
	    !utf8_name_valid(v->str, v->len, cs.cfg->max_name)))
		return "no recipient, or not a user name";
	if ((*kind)->t && ((*bad = v = stream_field(fields, "t")) == NULL ||
	    v->len > cs.cfg->max_line || v->len > STREAM_TEXT_MAX ||
	    !utf8_valid(v->str, v->len)))
		return "no text, or longer than a line, or not UTF-8";
	if ((*kind)->s && ((*bad = v = stream_field(fields, "s")) == NULL ||
	    v->len != 1 || v->str[0] < '0' || v->str[0] >= '0' + STATUS_COUNT))
		return "no status, or not one";
	if ((*bad = stream_field(fields, "of")) != NULL &&
	    !cluster_node_valid((*bad)->str, (*bad)->len))
		return "not a node id";
	return NULL;
}

/* Applies one room event: e kind, n user, r room. */
static void
stream_apply_room(const redisReply *e, const redisReply *n,
    const redisReply *fields)
{
	const redisReply	*r = stream_field(fields, "r"),
				*t = stream_field(fields, "t"),
				*to = stream_field(fields, "to");

	if (strcmp(e->str, "room") == 0)
		cluster_mirror_room(r->str, r->len, n->str, n->len);
	else if (strcmp(e->str, "invite") == 0)
		cluster_mirror_invite(r->str, r->len, n->str, n->len, to->str,
		    to->len);
	else if (strcmp(e->str, "join") == 0)
		cluster_mirror_join(r->str, r->len, n->str, n->len);
	else if (strcmp(e->str, "left") == 0)
		cluster_mirror_left(r->str, r->len, n->str, n->len);
	else
		cluster_mirror_room_text(r->str, r->len, n->str, n->len,
		    t->str, t->len);
}

/*
 * Applies one entry of node's stream, checked first.  A "gone" whose
 * "of" is this node (another node took a name of ours over) is checked
 * against tn:names before it closes a client here.
 */
static void
stream_apply(const char *node, const redisReply *fields)
{
	const struct stream_kind	*k;
	const redisReply		*e, *n, *t, *to, *of, *bad;
	const char			*why;

	if ((why = stream_check(fields, &k, &bad)) != NULL) {
		stream_skip(node, why, bad);
		return;
	}
	e = stream_field(fields, "e");
	n = stream_field(fields, "n");
	if (strcmp(e->str, "user") != 0 && strcmp(e->str, "gone") != 0 &&
	    !cluster_mirror_of(node, n->str, n->len)) {
		stream_skip(node, "not a user of that node", n);
		return;
	}
	t = stream_field(fields, "t");
	to = stream_field(fields, "to");
	of = stream_field(fields, "of");
	if (k->r)
		stream_apply_room(e, n, fields);
	else if (strcmp(e->str, "user") == 0 &&
	    cluster_mirror_remote(n->str, n->len) &&
	    !cluster_mirror_of(node, n->str, n->len)) {
		/* A name that moves here from another node: Redis says. */
		cluster_mirror_user(node, n->str, n->len, 0);
		cluster_owner_checked(n->str, n->len);
	} else if (strcmp(e->str, "user") == 0)
		cluster_mirror_user(node, n->str, n->len, 0);
	else if (strcmp(e->str, "gone") == 0 && of != NULL &&
	    strcmp(of->str, cs.cfg->node_id) == 0)
		cluster_evict_checked(n->str, n->len);
	else if (strcmp(e->str, "gone") == 0)
		/* A reaper's "gone" names the dead node ("of"). */
		cluster_mirror_gone(of != NULL ? of->str : node, n->str,
		    n->len);
	else if (strcmp(e->str, "status") == 0)
		cluster_mirror_status(n->str, n->len,
		    stream_status(stream_field(fields, "s")));
	else if (strcmp(e->str, "pub") == 0)
		cluster_mirror_public(n->str, n->len, t->str, t->len);
	else
		cluster_mirror_private(n->str, n->len, to->str, to->len,
		    t->str, t->len);
}

/* Applies one stream's entries of an XREAD reply, in order. */
static void
stream_apply_stream(const redisReply *s)
{
	struct stream_tail	*tail;
	const redisReply	*entries, *ent;
	size_t			 i;

	if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
	    stream_str(s->element[0]) == NULL ||
	    s->element[1]->type != REDIS_REPLY_ARRAY)
		return;
	/* A join: only its id; the next poll's SMEMBERS has the node. */
	entries = s->element[1];
	if (strcmp(s->element[0]->str, CLUSTER_JOINS) == 0) {
		ent = entries->elements == 0 ? NULL :
		    entries->element[entries->elements - 1];
		if (ent != NULL && ent->type == REDIS_REPLY_ARRAY &&
		    ent->elements == 2 && stream_str(ent->element[0]) != NULL &&
		    ent->element[0]->len < sizeof(stream_joins_id)) {
			(void)strlcpy(stream_joins_id, ent->element[0]->str,
			    sizeof(stream_joins_id));
			cluster_tails_joins(stream_joins_id);
		}
		return;
	}
	/* The key is tn:stream:NODE. */
	if (strncmp(s->element[0]->str, CLUSTER_PREFIX "stream:",
	    strlen(CLUSTER_PREFIX "stream:")) != 0 ||
	    (tail = stream_tail_find(s->element[0]->str +
	    strlen(CLUSTER_PREFIX "stream:"))) == NULL)
		return;
	for (i = 0; i < entries->elements; i++) {
		ent = entries->element[i];
		if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2 ||
		    stream_str(ent->element[0]) == NULL ||
		    ent->element[0]->len >= sizeof(tail->id))
			continue;
		stream_apply(tail->node, ent->element[1]);
		(void)strlcpy(tail->id, ent->element[0]->str,
		    sizeof(tail->id));
		/* After the entry: a crash between repeats it, once. */
		cluster_tails_id((size_t)(tail - cs.tails), tail->id);
	}
}

/* An XREAD's reply: apply, then read again. */
static void
stream_read_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply	*rep;
	size_t		 i;

	(void)ac;
	(void)arg;
	if ((rep = stream_answer(reply)) == NULL)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		/* One key that is not a stream fails the whole XREAD. */
		if (cluster_warn_ok())
			log_warnx("cluster: XREAD: %s", rep->str);
		stream_types();
		return;
	}
	if (rep->type == REDIS_REPLY_ARRAY)
		for (i = 0; i < rep->elements; i++)
			stream_apply_stream(rep->element[i]);
	stream_poll();
}

/* Whether a tail is read now: its node is in the set, its key sound. */
static int
stream_tail_read(const struct stream_tail *t, int64_t now)
{
	return t->absent_since == 0 && now >= t->bad_until;
}

/*
 * The types of the keys read: one that is not a stream (nor missing)
 * is not read for a while, so the others' are; if none is, the
 * reading waits a second before it tries again, rather than spin.
 */
static void
stream_types_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply	*rep;
	int64_t		 now = clock_now_ms();
	size_t		 i, n = 0;
	int		 bad = 0;

	(void)ac;
	(void)arg;
	if ((rep = stream_answer(reply)) == NULL)
		return;
	for (i = 0; i < cs.ntails && rep->type == REDIS_REPLY_ARRAY; i++) {
		if (!stream_tail_read(&cs.tails[i], now))
			continue;
		if (n >= rep->elements)
			break;
		if (stream_str(rep->element[n]) != NULL &&
		    strcmp(rep->element[n]->str, "stream") != 0 &&
		    strcmp(rep->element[n]->str, "none") != 0) {
			cs.tails[i].bad_until = now + STREAM_BAD_MS;
			bad = 1;
			if (cluster_warn_ok())
				log_warnx("cluster: %s is a %s, not a stream: "
				    "not read for %d s", cs.tails[i].key,
				    rep->element[n]->str, STREAM_BAD_MS / 1000);
		}
		n++;
	}
	if (bad)
		stream_poll();
	else
		cs.idle_until = now + STREAM_IDLE_MS;
}

/* Asks the types of the keys read. */
static void
stream_types(void)
{
	const char	**argv;
	size_t		 *argvlen, i, n = 0;
	char		  nkeys[24];
	int64_t		  now = clock_now_ms();

	argv = xcalloc(3 + cs.ntails, sizeof(*argv));
	argvlen = xcalloc(3 + cs.ntails, sizeof(*argvlen));
	for (i = 0; i < cs.ntails; i++)
		if (stream_tail_read(&cs.tails[i], now))
			argv[3 + n++] = cs.tails[i].key;
	(void)snprintf(nkeys, sizeof(nkeys), "%zu", n);
	argv[0] = "EVAL";
	argv[1] = stream_lua_types;
	argv[2] = nkeys;
	for (i = 0; i < 3 + n; i++)
		argvlen[i] = strlen(argv[i]);
	stream_asked(cluster_redis_argv(&cs.rd, stream_types_reply, NULL,
	    (int)(3 + n), argv, argvlen));
	free(argv);
	free(argvlen);
}

/*
 * Reads every tailed stream after its last id, and the joins, waiting
 * at most 1 s.
 */
static void
stream_read(void)
{
	const char	**argv;
	size_t		 *argvlen, i, n, argc;
	int64_t		  now = clock_now_ms();

	for (i = n = 0; i < cs.ntails; i++)
		if (stream_tail_read(&cs.tails[i], now))
			n++;
	/* The joins' stream too: it is always read, so a read waits. */
	argc = 6 + 2 * (n + 1);
	argv = xcalloc(argc, sizeof(*argv));
	argvlen = xcalloc(argc, sizeof(*argvlen));
	argv[0] = "XREAD";
	argv[1] = "COUNT";
	argv[2] = STREAM_COUNT;
	argv[3] = "BLOCK";
	argv[4] = STREAM_BLOCK_MS;
	argv[5] = "STREAMS";
	for (i = n = 0; i < cs.ntails; i++) {
		if (!stream_tail_read(&cs.tails[i], now))
			continue;
		argv[6 + n] = cs.tails[i].key;
		argv[6 + (argc - 6) / 2 + n++] = cs.tails[i].id;
	}
	argv[6 + n] = CLUSTER_JOINS;
	argv[argc - 1] = stream_joins_id;
	for (i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	stream_asked(cluster_redis_argv(&cs.rd, stream_read_reply, NULL,
	    (int)argc, argv, argvlen));
	free(argv);
	free(argvlen);
}

/* Orders node ids (qsort, bsearch of a string in them). */
static int
stream_cmp_id(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Orders tails by node. */
static int
stream_cmp_tail(const void *a, const void *b)
{
	return strcmp(((const struct stream_tail *)a)->node,
	    ((const struct stream_tail *)b)->node);
}

/* A node id against a tail (bsearch). */
static int
stream_cmp_key_tail(const void *key, const void *t)
{
	return strcmp(key, ((const struct stream_tail *)t)->node);
}

/*
 * Stops reading the streams of nodes no longer in the set (reaped: by
 * then their last entries were read, the reaping comes seconds after
 * their last heartbeat).  Their last ids are kept a minute: a node
 * that comes back into the set (Redis lost the set, FLUSHALL, and its
 * heartbeat put it back) is read on after them, not from the start of
 * a stream whose first entries this node applied already.  set is
 * sorted.
 */
static void
stream_tails_keep(const char **set, size_t n)
{
	int64_t		 now = clock_now_ms();
	const char	*key;
	size_t		 i;
	int		 found;

	for (i = 0; i < cs.ntails; ) {
		key = cs.tails[i].node;
		found = bsearch(&key, set, n, sizeof(*set),
		    stream_cmp_id) != NULL;
		if (found)
			cs.tails[i].absent_since = 0;
		else if (cs.tails[i].absent_since == 0)
			cs.tails[i].absent_since = now;
		if (found || now - cs.tails[i].absent_since < STREAM_FORGET_MS)
			i++;
		else
			cs.tails[i] = cs.tails[--cs.ntails];
	}
}

/*
 * The nodes' set: a node new since the last look is read from its
 * start.  Anything that writes to Redis may fill the set: both sides
 * are sorted (no set times tails), and at most STREAM_NODES_MAX
 * streams are read.
 */
static void
stream_nodes_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply	*rep;
	const char	**set;
	size_t		 i, n = 0, old;

	(void)ac;
	(void)arg;
	if ((rep = stream_answer(reply)) == NULL)
		return;
	if (rep->type == REDIS_REPLY_ARRAY) {
		set = xcalloc(rep->elements + 1, sizeof(*set));
		for (i = 0; i < rep->elements; i++)
			if (stream_str(rep->element[i]) != NULL &&
			    cluster_node_valid(rep->element[i]->str,
			    rep->element[i]->len) &&
			    strcmp(rep->element[i]->str, cs.cfg->node_id) != 0)
				set[n++] = rep->element[i]->str;
		qsort(set, n, sizeof(*set), stream_cmp_id);
		stream_tails_keep(set, n);
		/* No tail yet: cs.tails is NULL, which qsort may not take. */
		if ((old = cs.ntails) > 0)
			qsort(cs.tails, old, sizeof(*cs.tails),
			    stream_cmp_tail);
		for (i = 0; i < n; i++) {
			if (old > 0 && bsearch(set[i], cs.tails, old,
			    sizeof(*cs.tails), stream_cmp_key_tail) != NULL)
				continue;
			if (cs.ntails >= STREAM_NODES_MAX) {
				if (cluster_warn_ok())
					log_warnx("cluster: over %d nodes in "
					    "tn:nodes: the others are not read",
					    STREAM_NODES_MAX);
				break;
			}
			(void)stream_tail_new(set[i]);
		}
		free(set);
	}
	/* Fenced meanwhile: its places stay forgotten until the snapshot. */
	if (cs.synced)
		cluster_tails_save(cs.tails, cs.ntails, stream_joins_id, 0);
	stream_read();
}

/*
 * Looks at the nodes' set, then reads.  A node's stream starts empty
 * when it joins (the join script deletes it), so reading a new one
 * from its start replays nothing older than that node's run.
 */
static void
stream_poll(void)
{
	cs.idle_until = 0;
	/* Fenced: the mirror is read again from a snapshot. */
	if (!cs.synced) {
		stream_snapshot();
		return;
	}
	stream_asked(cluster_redis_cmd(&cs.rd, stream_nodes_reply, NULL,
	    "SMEMBERS %s", CLUSTER_PREFIX "nodes"));
}

/*
 * The snapshot's rooms: each missing here is made (its first member
 * known here as its creator: the creator may have left), and the
 * members of other nodes are set, quietly.  A room here that Redis does not know
 * stays (not swept: a restarted hub's local rooms are in the table).
 */
static void
stream_snapshot_rooms(const redisReply *rooms)
{
	const redisReply	*room, *members;
	size_t			 i, j;

	for (i = 0; i < rooms->elements; i++) {
		room = rooms->element[i];
		if (room->type != REDIS_REPLY_ARRAY || room->elements != 3 ||
		    stream_str(room->element[0]) == NULL ||
		    stream_str(room->element[1]) == NULL ||
		    room->element[2]->type != REDIS_REPLY_ARRAY)
			continue;
		members = room->element[2];
		for (j = 0; j < members->elements; j++) {
			if (stream_str(members->element[j]) == NULL)
				continue;
			cluster_mirror_room(room->element[0]->str,
			    room->element[0]->len, members->element[j]->str,
			    members->element[j]->len);
			cluster_mirror_room_member(room->element[0]->str,
			    room->element[0]->len, members->element[j]->str,
			    members->element[j]->len);
		}
	}
}

/* Whether the snapshot's i-th name, and the node holding it, are sound. */
static int
stream_name_ok(const redisReply *names, size_t i)
{
	return stream_str(names->element[i]) != NULL &&
	    stream_str(names->element[i + 1]) != NULL &&
	    cluster_node_valid(names->element[i + 1]->str,
	    names->element[i + 1]->len);
}

/*
 * A restarted hub's snapshot: it only tells whose each mirrored user
 * is (the dead hub knew, the table does not say), then reading goes on
 * from the dead hub's ids, so every change since reaches the users
 * here as news.  since: when each name was granted.
 */
static void
stream_resume_owners(const redisReply *names, const redisReply *since)
{
	size_t	i;

	for (i = 0; i + 2 < names->elements; i += 3) {
		if (!stream_name_ok(names, i))
			continue;
		cluster_mirror_owned(names->element[i + 1]->str,
		    names->element[i]->str, names->element[i]->len,
		    i / 3 < since->elements &&
		    cluster_tails_after(stream_tail_find(
		    names->element[i + 1]->str), since->element[i / 3]));
	}
	cs.resuming = 0;
	cs.synced = 1;
	log_info("cluster: reading on from where the last hub stopped, in "
	    "%zu streams", cs.ntails);
	stream_poll();
}

/* The snapshot's reply: the mirror is replaced, then reading starts. */
static void
stream_snapshot_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply	*rep, *names, *last;
	size_t		 i;

	(void)ac;
	(void)arg;
	if ((rep = stream_answer(reply)) == NULL)
		return;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4 ||
	    rep->element[0]->type != REDIS_REPLY_ARRAY ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY ||
	    rep->element[2]->type != REDIS_REPLY_ARRAY ||
	    rep->element[3]->type != REDIS_REPLY_ARRAY) {
		cluster_redis_drop(&cs.rd, "bad reply to the snapshot");
		return;
	}
	names = rep->element[0];
	last = rep->element[1];
	if (cs.resuming) {
		stream_resume_owners(names, rep->element[3]);
		return;
	}
	cluster_mirror_mark();
	for (i = 0; i + 2 < names->elements; i += 3)
		if (stream_name_ok(names, i))
			cluster_mirror_user(names->element[i + 1]->str,
			    names->element[i]->str, names->element[i]->len,
			    stream_status(stream_str(names->element[i + 2])));
	cluster_mirror_sweep();
	stream_snapshot_rooms(rep->element[2]);
	for (i = 0; i + 1 < last->elements; i += 2)
		if (stream_str(last->element[i]) != NULL &&
		    stream_str(last->element[i + 1]) != NULL)
			stream_tail_add(last->element[i]->str,
			    last->element[i + 1]->str);
	cluster_tails_save(cs.tails, cs.ntails, stream_joins_id, 1);
	cs.synced = 1;
	log_info("cluster: mirror of %zu users of other nodes, %zu "
	    "streams", names->elements / 3, cs.ntails);
	stream_poll();
}

/* Takes the snapshot. */
static void
stream_snapshot(void)
{
	stream_asked(cluster_redis_cmd(&cs.rd, stream_snapshot_reply, NULL,
	    "EVAL %s 3 %s %s %s %s", stream_lua_snapshot,
	    CLUSTER_PREFIX "names", CLUSTER_PREFIX "nodes",
	    CLUSTER_PREFIX "status", cs.cfg->node_id));
}

/*
 * Whether a stream lost entries after the dead hub's place: then the
 * snapshot rebuilds the mirror rather than only naming the nodes.
 */
static void
stream_gaps_reply(redisAsyncContext *ac, void *reply, void *arg)
{
	redisReply	*rep;

	(void)ac;
	(void)arg;
	if ((rep = stream_answer(reply)) == NULL)
		return;
	if (cluster_tails_gaps(rep))
		cs.resuming = 0;
	stream_snapshot();
}

/* The connection is ready: the snapshot first, then reading on. */
static void
stream_ready(struct cluster_redis *r)
{
	(void)r;
	if (!cs.synced && cs.resuming)
		stream_asked(cluster_tails_gaps_ask(&cs.rd, cs.tails,
		    cs.ntails, stream_gaps_reply));
	else if (!cs.synced)
		stream_snapshot();
	else
		stream_poll();
}

/* The connection is lost: what was asked is forgotten. */
static void
stream_lost(struct cluster_redis *r)
{
	(void)r;
	cs.asked = 0;
	cs.idle_until = 0;
}

/*
 * Throws the streams' state away (fencing): the next poll takes a new
 * snapshot; a read on its way is answered first, into the mirror that
 * the snapshot then replaces.
 */
void
cluster_stream_resync(void)
{
	cs.synced = 0;
	cs.resuming = 0;
	cs.ntails = 0;
	cluster_tails_forget();
	if (cs.rd.ready && !cs.asked)
		stream_snapshot();
}

/*
 * A hub started again after a crash reads on from where the dead one
 * stopped, into the mirror it left in the table, so nothing written
 * meanwhile is missed; its snapshot only names the users' nodes.
 * Without the dead hub's ids (a first start, a fenced node, a torn
 * write) the snapshot replaces the mirror, as at a first start.
 */
static void
stream_resume(void)
{
	static struct shm_tails	v;	/* 11 KiB: not on the stack */
	uint32_t		i;

	if (cluster_tails_load(&v, cs.cfg->node_id) == -1)
		return;
	for (i = 0; i < v.n; i++)
		stream_tail_add(v.tail[i].node, v.tail[i].id);
	(void)strlcpy(stream_joins_id, v.joins, sizeof(stream_joins_id));
	cs.resuming = 1;
}

/* Starts reading the other nodes' streams. */
void
cluster_stream_start(const struct cluster_addr *addr,
    const struct config *cfg, int epfd)
{
	cs.cfg = cfg;
	stream_resume();
	cluster_redis_init(&cs.rd, "streams", addr, cfg->cluster_password,
	    cfg->node_id, epfd, stream_ready, stream_lost);
}

/* Whether an epoll data.ptr is the streams' connection. */
int
cluster_stream_owns(const void *p)
{
	return p == &cs.rd;
}

/* Handles its event. */
void
cluster_stream_event(uint32_t events)
{
	cluster_redis_event(&cs.rd, events);
}

/*
 * Its timers: reconnecting, reading again after an idle second, and a
 * read that never comes back (a Redis that hangs) drops the connection.
 */
void
cluster_stream_timers(int64_t now)
{
	cluster_redis_timers(&cs.rd, now);
	if (cs.rd.ready && cs.asked && now - cs.asked_at > STREAM_STUCK_MS)
		cluster_redis_drop(&cs.rd, "no answer to a read in time");
	else if (cs.rd.ready && !cs.asked && cs.idle_until != 0 &&
	    now >= cs.idle_until)
		stream_poll();
}

/* Its next timer, or 0. */
int64_t
cluster_stream_next(void)
{
	if (!cs.rd.ready)
		return cluster_redis_next(&cs.rd);
	if (cs.asked)
		return cs.asked_at + STREAM_STUCK_MS + 1;
	return cs.idle_until;
}

/* The last id read of node's stream, or NULL: not read (show cluster). */
const char *
cluster_stream_tail(const char *node)
{
	struct stream_tail	*t = stream_tail_find(node);

	return t != NULL ? t->id : NULL;
}
