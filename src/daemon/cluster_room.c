/*
 * cluster_room.c: rooms across nodes (--cluster).  Creating a room,
 * inviting, joining and leaving are each one script that checks and
 * sets in Redis (the keys: cluster_int.h) and XADDs its event on this
 * node's stream in the same write; a ROOM_TEXT is one XADD.  Every node
 * applies the events of the others to its own table (cluster_mirror.c),
 * and fans each out to its own members.
 */
#include "config.h"

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "cluster_int.h"
#include "log.h"
#include "xmalloc.h"

#define ROOM_XADD(kind) \
	"redis.call('XADD', KEYS[1], 'MAXLEN', '~', '" CLUSTER_STREAM_MAX \
	"', '*', 'e', '" kind "', 'n', ARGV[2], 'r', ARGV[1]"

/*
 * NEW_ROOM: the name is the room's unless some node has it.  KEYS: the
 * stream, tn:rooms; ARGV: room, creator.  1: created; 0: taken.
 */
static const char room_lua_create[] =
	"if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end\n"
	"redis.call('HSET', 'tn:room:' .. ARGV[1], 'creator', ARGV[2])\n"
	"redis.call('SADD', 'tn:rm:' .. ARGV[1], ARGV[2])\n"
	"redis.call('SADD', 'tn:ur:' .. ARGV[2], ARGV[1])\n"
	ROOM_XADD("room") ")\n"
	"return 1\n";

/*
 * INVITE: each invitee that is neither a member nor invited yet is
 * invited, one event each (one write still: one script).  KEYS: the
 * stream; ARGV: room, inviter, invitees.  0: the inviter is no member.
 */
static const char room_lua_invite[] =
	"local r = ARGV[1]\n"
	"if redis.call('SISMEMBER', 'tn:rm:' .. r, ARGV[2]) == 0 then\n"
	"  return 0\n"
	"end\n"
	"for i = 3, #ARGV do\n"
	"  local u = ARGV[i]\n"
	"  if u ~= ARGV[2] and\n"
	"    redis.call('SISMEMBER', 'tn:rm:' .. r, u) == 0 and\n"
	"    redis.call('SADD', 'tn:ri:' .. r, u) == 1 then\n"
	"    redis.call('SADD', 'tn:ur:' .. u, r)\n"
	"    " ROOM_XADD("invite") ", 'to', u)\n"
	"  end\n"
	"end\n"
	"return 1\n";

/*
 * JOIN_ROOM: an invitation is used up, once.  KEYS: the stream; ARGV:
 * room, user.  1: a member now (or already); 0: not invited.
 */
static const char room_lua_join[] =
	"if redis.call('SISMEMBER', 'tn:rm:' .. ARGV[1], ARGV[2]) == 1 then\n"
	"  return 1\n"
	"end\n"
	"if redis.call('SREM', 'tn:ri:' .. ARGV[1], ARGV[2]) == 0 then\n"
	"  return 0\n"
	"end\n"
	"redis.call('SADD', 'tn:rm:' .. ARGV[1], ARGV[2])\n"
	"redis.call('SADD', 'tn:ur:' .. ARGV[2], ARGV[1])\n"
	ROOM_XADD("join") ")\n"
	"return 1\n";

/*
 * LEAVE_ROOM: the last member out drops the room.  KEYS: the stream;
 * ARGV: room, user.  1: left; 0: was no member.
 */
static const char room_lua_leave[] =
	CLUSTER_LUA_ROOMS
	"local r = ARGV[1]\n"
	"if redis.call('SREM', 'tn:rm:' .. r, ARGV[2]) == 0 then return 0 end\n"
	"if redis.call('SISMEMBER', 'tn:ri:' .. r, ARGV[2]) == 0 then\n"
	"  redis.call('SREM', 'tn:ur:' .. ARGV[2], r)\n"
	"end\n"
	"if redis.call('SCARD', 'tn:rm:' .. r) == 0 then drop_room(r) end\n"
	ROOM_XADD("left") ")\n"
	"return 1\n";

/* The argv of a room script: EVAL, the script, its keys, room, user. */
static int
room_argv(const char **argv, size_t *argvlen, const char *script,
    int nkeys, const char *room, size_t rlen, const char *user,
    size_t ulen)
{
	int	argc = 0, i;

	argv[argc++] = "EVAL";
	argv[argc++] = script;
	argv[argc++] = nkeys == 2 ? "2" : "1";
	argv[argc++] = cluster_stream_key();
	if (nkeys == 2)
		argv[argc++] = CLUSTER_PREFIX "rooms";
	for (i = 0; i < argc; i++)
		argvlen[i] = strlen(argv[i]);
	argv[argc] = room;
	argvlen[argc++] = rlen;
	argv[argc] = user;
	argvlen[argc++] = ulen;
	return argc;
}

/* Runs a room's check-and-set script for user; fn hears the answer. */
static void
room_claim(const char *script, int nkeys, const char *room, size_t rlen,
    const char *user, size_t ulen, cluster_claim_fn fn, void *arg)
{
	const char	*argv[7];
	size_t		 argvlen[7];
	int		 argc;

	argc = room_argv(argv, argvlen, script, nkeys, room, rlen, user,
	    ulen);
	cluster_claim_argv(room, rlen, user, ulen, argc, argv, argvlen, fn,
	    arg);
}

/* Creates a room in Redis: fn hears if it was free (GRANTED). */
void
cluster_claim_room(const char *room, size_t rlen, const char *user,
    size_t ulen, cluster_claim_fn fn, void *arg)
{
	room_claim(room_lua_create, 2, room, rlen, user, ulen, fn, arg);
}

/* Uses up user's invitation to room: fn hears if there was one. */
void
cluster_join_room(const char *room, size_t rlen, const char *user,
    size_t ulen, cluster_claim_fn fn, void *arg)
{
	room_claim(room_lua_join, 1, room, rlen, user, ulen, fn, arg);
}

/* Invites n users (names[i], lens[i]) to room; nothing waits for it. */
void
cluster_invite(const char *room, size_t rlen, const char *inviter,
    size_t ilen, const char **names, const size_t *lens, size_t n)
{
	const char	**argv;
	size_t		 *argvlen, i;
	int		  argc;

	argv = xcalloc(6 + n, sizeof(*argv));
	argvlen = xcalloc(6 + n, sizeof(*argvlen));
	argc = room_argv(argv, argvlen, room_lua_invite, 1, room, rlen,
	    inviter, ilen);
	for (i = 0; i < n; i++) {
		argv[argc] = names[i];
		argvlen[argc++] = lens[i];
	}
	if (cluster_write_argv(argc, argv, argvlen) == -1)
		log_debug("cluster: degraded: an invitation stays on this "
		    "node");
	free(argv);
	free(argvlen);
}

/* A member of this node leaves room. */
void
cluster_leave_room(const char *room, size_t rlen, const char *user,
    size_t ulen)
{
	const char	*argv[6];
	size_t		 argvlen[6];
	int		 argc;

	argc = room_argv(argv, argvlen, room_lua_leave, 1, room, rlen, user,
	    ulen);
	if (cluster_write_argv(argc, argv, argvlen) == -1)
		log_debug("cluster: degraded: a leave stays on this node");
}

/* A ROOM_TEXT of a member of this node: one XADD. */
void
cluster_room_text(const char *room, size_t rlen, const char *user,
    size_t ulen, const char *text, size_t tlen)
{
	const char	*argv[14];
	size_t		 argvlen[14];
	const char	*fields[] = { "XADD", cluster_stream_key(), "MAXLEN",
			    "~", CLUSTER_STREAM_MAX, "*", "e", "rtext", "n",
			    user, "r", room, "t", text };
	int		 i;

	for (i = 0; i < 14; i++) {
		argv[i] = fields[i];
		/* The names and the text are not NUL-terminated. */
		argvlen[i] = i == 9 ? ulen : i == 11 ? rlen : i == 13 ? tlen :
		    strlen(fields[i]);
	}
	if (cluster_write_argv(14, argv, argvlen) == -1)
		log_debug("cluster: degraded: a room text stays on this node");
}
