/*
 * cluster_tails.c: the last id this hub applied of every other node's
 * stream (and of tn:joins), kept in the table's header (shm.h, struct
 * shm_tails) as well as in the hub's memory (cluster_stream.c).  The
 * hub writes each id as it applies the entry; a hub the master starts
 * again after a crash reads them back and reads on from there, into
 * the mirror the dead hub left in the table, so what the other nodes
 * wrote while no hub ran here still reaches this node's users.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cluster.h"
#include "cluster_int.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "shm.h"
#include "talknetd.h"
#include "xmalloc.h"
#include "hub.h"

/* What is written, built here: too big for the hub's stack frames. */
static struct shm_tails	tails_out;

/*
 * Whether the table's rows name these nodes in this order already: the
 * streams' set is looked at before every read, and changes seldom.
 */
static int
tails_same(const struct shm_tails *d, const struct stream_tail *t,
    size_t n)
{
	size_t	i;

	if (d->version != SHM_TAILS_VERSION || d->n != n)
		return 0;
	for (i = 0; i < n; i++)
		if (strcmp(d->tail[i].node, t[i].node) != 0)
			return 0;
	return 1;
}

/*
 * Writes the set when its nodes or their order changed (always if
 * force: every id moved, as after a snapshot).  More streams than the
 * table has rows for: none is kept, and a new hub takes a snapshot.
 */
void
cluster_tails_save(const struct stream_tail *t, size_t n, const char *joins,
    int force)
{
	size_t	i;

	if (n > SHM_TAILS_MAX) {
		if (hub.tab.hdr->tails.version != 0) {
			log_warnx("cluster: %zu streams, over the %d the table "
			    "keeps the place of: a hub started again would "
			    "take a snapshot", n, SHM_TAILS_MAX);
			cluster_tails_forget();
		}
		return;
	}
	if (!force && tails_same(&hub.tab.hdr->tails, t, n))
		return;
	memset(&tails_out, 0, sizeof(tails_out));
	tails_out.version = SHM_TAILS_VERSION;
	tails_out.n = (uint32_t)n;
	(void)strlcpy(tails_out.joins, joins, sizeof(tails_out.joins));
	for (i = 0; i < n; i++) {
		(void)strlcpy(tails_out.tail[i].node, t[i].node,
		    sizeof(tails_out.tail[i].node));
		(void)strlcpy(tails_out.tail[i].id, t[i].id,
		    sizeof(tails_out.tail[i].id));
	}
	shm_tails_set(&hub.tab, &tails_out);
}

/* Row i's last id, as its entry is applied. */
void
cluster_tails_id(size_t i, const char *id)
{
	if (i < SHM_TAILS_MAX)
		shm_tails_id(&hub.tab, (int)i, id);
}

/* tn:joins' last id. */
void
cluster_tails_joins(const char *id)
{
	shm_tails_id(&hub.tab, -1, id);
}

/* Marks them not to be read on from: the next hub takes a snapshot. */
void
cluster_tails_forget(void)
{
	memset(&tails_out, 0, sizeof(tails_out));
	shm_tails_set(&hub.tab, &tails_out);
}

/*
 * Whether a field holds a stream id, NUL-terminated within it: "ms-seq",
 * each of 1 to 20 digits and below 2^64 (Redis refuses a larger one,
 * and one refused id fails every XREAD: nothing would be read).
 */
static int
tails_id_valid(const char *id, size_t size)
{
	const char	*p = id, *dash;
	size_t		 len;
	int		 e;

	if (memchr(id, '\0', size) == NULL || (dash = strchr(id, '-')) == NULL)
		return 0;
	len = strlen(id);
	if (dash == id || dash - id > 20 || len - (size_t)(dash - id) < 2 ||
	    len - (size_t)(dash - id) > 21)
		return 0;
	for (; *p != '\0'; p++)
		if ((*p < '0' || *p > '9') && p != dash)
			return 0;
	e = errno;
	errno = 0;
	(void)strtoull(id, NULL, 10);
	(void)strtoull(dash + 1, NULL, 10);
	p = errno == ERANGE ? NULL : id;
	errno = e;
	return p != NULL;
}

/* Whether the rows hold node ids, none this node's, and stream ids. */
static int
tails_rows_sound(const struct shm_tails *v, const char *self)
{
	uint32_t	i;

	for (i = 0; i < v->n; i++)
		if (memchr(v->tail[i].node, '\0',
		    sizeof(v->tail[i].node)) == NULL ||
		    !cluster_node_valid(v->tail[i].node,
		    strlen(v->tail[i].node)) ||
		    strcmp(v->tail[i].node, self) == 0 ||
		    !tails_id_valid(v->tail[i].id, sizeof(v->tail[i].id)))
			return 0;
	return 1;
}

/*
 * Reads the dead hub's ids back, all checked: a torn write (a hub killed
 * in it), a row that is not a node id or a stream id, or one naming
 * this node, and none is used.
 */
int
cluster_tails_load(struct shm_tails *v, const char *self)
{
	if (shm_tails_get(&hub.tab, v) == -1) {
		log_warnx("cluster: the last hub died writing its place in the "
		    "streams: a snapshot instead");
		return -1;
	}
	/* A first start, or fenced: nothing to read on from. */
	if (v->version == 0)
		return -1;
	if (v->version != SHM_TAILS_VERSION || v->n > SHM_TAILS_MAX ||
	    !tails_id_valid(v->joins, sizeof(v->joins)) ||
	    !tails_rows_sound(v, self)) {
		log_warnx("cluster: the last hub's place in the streams is not "
		    "sound: a snapshot instead");
		return -1;
	}
	return 0;
}

/*
 * Which of the streams lost entries after the place given (ARGV: node,
 * id, ...): trimmed (MAXLEN, XTRIM) or deleted (XDEL) past it, or the
 * stream itself deleted since (its node started again: its join empties
 * it; reaped and expired; Redis lost it), which took the old stream's
 * last entries (its users' gones) with it.  Reading on from there would
 * miss them for good (a "gone" missed is a ghost).  The first entry
 * left coming after the place means a gap (whether one came between is
 * not known), and so does a place past the stream's last id (garbage,
 * or a Redis whose clock is behind), which would wait for ever.
 */
static const char tails_lua_gaps[] =
	"local function after(a, b)\n"
	"  local am, as = string.match(a, '^(%d+)-(%d+)$')\n"
	"  local bm, bs = string.match(b, '^(%d+)-(%d+)$')\n"
	"  if not am or not bm then return true end\n"
	"  if tonumber(am) ~= tonumber(bm) then\n"
	"    return tonumber(am) > tonumber(bm)\n"
	"  end\n"
	"  return tonumber(as) > tonumber(bs)\n"
	"end\n"
	"local out = {}\n"
	"for i = 1, #ARGV - 1, 2 do\n"
	"  local k, at = '" CLUSTER_PREFIX "stream:' .. ARGV[i], ARGV[i + 1]\n"
	"  local t, lost = redis.call('TYPE', k)['ok'], false\n"
	"  if t == 'none' then\n"
	"    lost = at ~= '0-0'\n"
	"  elseif t == 'stream' then\n"
	"    local info, f = redis.call('XINFO', 'STREAM', k), {}\n"
	"    for j = 1, #info - 1, 2 do f[info[j]] = info[j + 1] end\n"
	"    lost = after(at, f['last-generated-id']) or\n"
	"      (f['max-deleted-entry-id'] and\n"
	"      after(f['max-deleted-entry-id'], at))\n"
	"    if not lost and f['first-entry'] then\n"
	"      lost = at ~= '0-0' and after(f['first-entry'][1], at)\n"
	"    elseif not lost and f['length'] < f['entries-added'] then\n"
	"      lost = after(f['last-generated-id'], at)\n"
	"    end\n"
	"  end\n"
	"  if lost then out[#out + 1] = ARGV[i] end\n"
	"end\n"
	"return out\n";

/* Asks which of the n streams lost entries after their place. */
int
cluster_tails_gaps_ask(struct cluster_redis *rd, const struct stream_tail *t,
    size_t n, redisCallbackFn *fn)
{
	const char	**argv;
	size_t		 *argvlen, i, argc = 3 + 2 * n;
	int		  rc;

	argv = xcalloc(argc, sizeof(*argv));
	argvlen = xcalloc(argc, sizeof(*argvlen));
	argv[0] = "EVAL";
	argv[1] = tails_lua_gaps;
	argv[2] = "0";
	for (i = 0; i < n; i++) {
		argv[3 + 2 * i] = t[i].node;
		argv[4 + 2 * i] = t[i].id;
	}
	for (i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	rc = cluster_redis_argv(rd, fn, NULL, (int)argc, argv, argvlen);
	free(argv);
	free(argvlen);
	return rc;
}

/*
 * Whether the answer says a stream lost entries after its place (each
 * logged), or cannot say: then the dead hub's places are not read on
 * from, and a snapshot rebuilds the mirror.
 */
int
cluster_tails_gaps(const redisReply *rep)
{
	char	esc[LOG_ESCAPED(64)];
	size_t	i;

	if (rep->type != REDIS_REPLY_ARRAY) {
		log_warnx("cluster: cannot tell whether the streams lost "
		    "entries after where the last hub stopped: %s; a snapshot "
		    "instead", rep->type == REDIS_REPLY_ERROR ? rep->str :
		    "a bad reply");
		return 1;
	}
	for (i = 0; i < rep->elements && i < SHM_TAILS_MAX; i++)
		if (rep->element[i]->type == REDIS_REPLY_STRING)
			log_warnx("cluster: %s's stream lost entries after "
			    "where the last hub stopped (trimmed, or started "
			    "again): a snapshot instead, what it said "
			    "meanwhile is lost here",
			    log_escape(rep->element[i]->str,
			    rep->element[i]->len < 64 ? rep->element[i]->len :
			    64, esc, sizeof(esc)));
	return rep->elements > 0;
}

/*
 * Whether a name was granted (at since, Redis's ms) after t, the last
 * entry of its holder's stream the dead hub applied: the row here is
 * then a former holder's, who left while no hub ran (its "gone" may
 * come in another stream, after or before the holder's "user").
 */
int
cluster_tails_after(const struct stream_tail *t, const redisReply *since)
{
	unsigned long long	 at;
	char			*end;

	if (since->type != REDIS_REPLY_STRING)
		return 0;
	at = strtoull(since->str, &end, 10);
	if (*end != '\0' || at == 0)
		return 0;
	if (t == NULL)
		return 1;	/* a node the dead hub did not read */
	return at > strtoull(t->id, NULL, 10);	/* "ms-seq" */
}
