/*
 * cluster_mirror.c: the hub's mirror of the other nodes' users
 * (--cluster).  Each is a row of the table flagged remote, with a conn
 * that has no channel (remote: nothing is ever queued for it), in the
 * name index and the identification order like any user: USERS is
 * answered locally, and a TEXT to one crosses to its node.  cluster.c
 * calls these as it reads the other nodes' streams, each stream in its
 * order; what they tell this node's users goes out with the hub's
 * round, as any line.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "cluster.h"
#include "conf.h"
#include "ipc.h"
#include "log.h"
#include "proto.h"
#include "shm.h"
#include "talknetd.h"
#include "utf8.h"
#include "xmalloc.h"
#include "hub.h"

/* A name from a stream as a string; NULL if it cannot be a user's. */
static int
cluster_mirror_name(const char *p, size_t len, struct str *s)
{
	s->p = p;
	s->len = len;
	/*
	 * Anything that writes to Redis wrote it: a name this node's
	 * clients could not send (nor address) is not one.
	 */
	return len > 0 && len <= hub.tab.hdr->name_bytes &&
	    utf8_name_valid(p, len, hub.cfg->max_name) ? 0 : -1;
}

/* Whether a room name from a stream is one this node's clients send. */
static int
cluster_mirror_room_ok(const char *p, size_t len)
{
	return len > 0 && len <= hub.tab.hdr->room_bytes &&
	    utf8_name_valid(p, len, hub.cfg->max_room);
}

/* The remote user of that name, or NULL (none, or a local user). */
static struct hub_conn *
cluster_mirror_find(struct str name)
{
	struct hub_conn	*c;

	if ((c = hub_user_find(name)) == NULL || !c->remote)
		return NULL;
	return c;
}

/*
 * Whether a mirrored user is node's.  One whose node a restarted hub
 * could not learn (Redis no longer names it: it left while no hub ran
 * here) is any node's, so that its node's "gone", read on from where
 * the dead hub stopped, drops it.
 */
static int
cluster_mirror_is(const struct hub_conn *c, const char *node)
{
	return strcmp(c->addr, node) == 0 ||
	    strcmp(c->addr, HUB_ADDR_REMOTE) == 0 ||
	    strcmp(c->addr, HUB_ADDR_FORMER) == 0;
}

static void	cluster_mirror_drop(struct hub_conn *);

/*
 * Another node's user identified (or a snapshot names one): a row of
 * its own, and NEW_USER to this node's users.  One already mirrored is
 * kept (and no longer stale), and is node's from now on: the streams of
 * two nodes are not ordered against each other, so a name freed on one
 * node and claimed on another may be seen claimed before it is seen
 * freed, and the late "gone" of the first node must not drop it (the
 * conn's addr names its node).  A local user of that name means two
 * nodes granted one name, which Redis's claim rules out: logged.
 */
void
cluster_mirror_user(const char *node, const char *p, size_t len,
    int status)
{
	struct msg	 m = { .type = MSG_NEW_USER };
	struct hub_conn	*c;
	struct str	 name;
	char		 esc[256];

	if (cluster_mirror_name(p, len, &name) == -1)
		return;
	/* A former holder's row (a restarted hub's): it left meanwhile. */
	if ((c = hub_user_find(name)) != NULL && c->remote &&
	    strcmp(c->addr, HUB_ADDR_FORMER) == 0) {
		cluster_mirror_drop(c);
		c = NULL;
	}
	if (c != NULL) {
		if (c->remote) {
			c->stale = 0;
			(void)strlcpy(c->addr, node, sizeof(c->addr));
			cluster_mirror_status(p, len, status);
		} else if (cluster_warn_ok())
			log_warnx("cluster: %s is a user here and on another "
			    "node", log_escape(p, len, esc, sizeof(esc)));
		return;
	}
	if (hub.nfree_users == 0) {
		if (cluster_warn_ok())
			log_warnx("cluster: no row for %s of another "
			    "node (--max-users rows hold every node's "
			    "users)", log_escape(p, len, esc, sizeof(esc)));
		return;
	}
	c = hub_conn_new(-1, 0, node);
	c->remote = 1;
	c->hello = 1;
	c->slot = hub.free_users[--hub.nfree_users];
	hub.conns[c->slot] = c;
	shm_begin(&hub.tab);
	shm_user_attach_remote(&hub.tab, c->slot);
	shm_user_identify(&hub.tab, c->slot, p, len);
	if (status >= 0 && status < STATUS_COUNT)
		hub_row(c)->status = (uint32_t)status;
	if (RB_INSERT(user_tree, &hub.users, c) != NULL)
		fatalx("%s: name indexed twice", __func__);
	TAILQ_INSERT_TAIL(&hub.idents, c, ident_entry);
	m.username = hub_name(c);
	hub_tell_others(&m, c);
	shm_commit(&hub.tab);
}

/* Frees a remote user's row: DISCONNECTED to this node's users. */
static void
cluster_mirror_drop(struct hub_conn *c)
{
	uint32_t	slot = c->slot;

	shm_begin(&hub.tab);
	hub_part(c);
	shm_user_detach(&hub.tab, slot);
	shm_commit(&hub.tab);
	hub.conns[slot] = NULL;
	hub.free_users[hub.nfree_users++] = slot;
	buf_free(&c->peer.in);
	buf_free(&c->peer.out);
	free(c);
}

/*
 * Another node's user left; a user of that name on a third is kept.
 * node is this node when another took a name of this node's over at a
 * re-assertion (a reaper's "gone" of us never comes: we fence first).
 */
void
cluster_mirror_gone(const char *node, const char *p, size_t len)
{
	struct hub_conn	*c;
	struct str	 name;

	if (strcmp(node, hub.cfg->node_id) == 0) {
		cluster_mirror_evict(p, len);
		return;
	}
	if (cluster_mirror_name(p, len, &name) == 0 &&
	    (c = cluster_mirror_find(name)) != NULL &&
	    cluster_mirror_is(c, node))
		cluster_mirror_drop(c);
}

/* Another node's user changed its status: NEW_STATUS here. */
void
cluster_mirror_status(const char *p, size_t len, int status)
{
	struct msg	 m = { .type = MSG_NEW_STATUS };
	struct hub_conn	*c;
	struct str	 name;

	if (cluster_mirror_name(p, len, &name) == -1 || status < 0 ||
	    status >= STATUS_COUNT || (c = cluster_mirror_find(name)) ==
	    NULL || hub_row(c)->status == (uint32_t)status)
		return;
	shm_begin(&hub.tab);
	hub_row(c)->status = (uint32_t)status;
	m.username = hub_name(c);
	m.st = (enum user_status)status;
	hub_tell_others(&m, c);
	shm_commit(&hub.tab);
}

/*
 * Whether a user of another node has that name: texts come from users
 * the stream announced, not from a name nobody (or a user here) holds.
 */
int
cluster_mirror_remote(const char *p, size_t len)
{
	struct str	name;

	return cluster_mirror_name(p, len, &name) == 0 &&
	    cluster_mirror_find(name) != NULL;
}

/*
 * Whether node's stream speaks for that user: one of node's users is
 * mirrored here by that name.  A node's stream tells of its own users
 * only (a reaper's "gone" names the dead node, and is not asked).
 */
int
cluster_mirror_of(const char *node, const char *p, size_t len)
{
	struct hub_conn	*c;
	struct str	 name;

	return cluster_mirror_name(p, len, &name) == 0 &&
	    (c = cluster_mirror_find(name)) != NULL &&
	    cluster_mirror_is(c, node);
}

/*
 * A restarted hub learns whose its mirrored users are (a snapshot names
 * them): quietly, since nothing changed; the streams, read on from
 * where the dead hub stopped, bring what did.  A name node took after
 * the dead hub's place (former) is a former holder's row: any stream's
 * "gone" drops it, node's "user" replaces it.
 */
void
cluster_mirror_owned(const char *node, const char *p, size_t len,
    int former)
{
	struct hub_conn	*c;
	struct str	 name;

	if (cluster_mirror_name(p, len, &name) == 0 &&
	    (c = cluster_mirror_find(name)) != NULL &&
	    strcmp(c->addr, HUB_ADDR_REMOTE) == 0)
		(void)strlcpy(c->addr, former ? HUB_ADDR_FORMER : node,
		    sizeof(c->addr));
}

/* Gives a mirrored user back to the node Redis says holds it. */
void
cluster_mirror_owner(const char *p, size_t len, const char *node)
{
	struct hub_conn	*c;
	struct str	 name;
	char		 esc[LOG_ESCAPED(32)];

	if (cluster_mirror_name(p, len, &name) == -1 ||
	    (c = cluster_mirror_find(name)) == NULL ||
	    strcmp(c->addr, node) == 0)
		return;
	if (cluster_warn_ok())
		log_warnx("cluster: %s moved to node %s by a stream, but Redis "
		    "says node %s holds it: given back",
		    log_escape(p, len, esc, sizeof(esc)), c->addr, node);
	(void)strlcpy(c->addr, node, sizeof(c->addr));
}

/* A PUBLIC_TEXT of another node's user: to every user here. */
void
cluster_mirror_public(const char *from, size_t flen, const char *text,
    size_t tlen)
{
	struct msg	m = { .type = MSG_PUBLIC_TEXT_FROM };

	if (!cluster_mirror_remote(from, flen))
		return;
	m.username.p = from;
	m.username.len = flen;
	m.text.p = text;
	m.text.len = tlen;
	hub_tell_others(&m, NULL);
}

/* A TEXT of another node's user to a user here. */
void
cluster_mirror_private(const char *from, size_t flen, const char *to,
    size_t tolen, const char *text, size_t tlen)
{
	struct msg	 m = { .type = MSG_TEXT_FROM };
	struct hub_conn	*c;
	struct str	 name;

	if (!cluster_mirror_remote(from, flen) ||
	    cluster_mirror_name(to, tolen, &name) == -1 ||
	    (c = hub_user_find(name)) == NULL || c->remote)
		return;
	m.username.p = from;
	m.username.len = flen;
	m.text.p = text;
	m.text.len = tlen;
	hub_tell(c, &m);
}

/* Marks every remote user stale, before a snapshot names them again. */
void
cluster_mirror_mark(void)
{
	struct hub_conn	*c;

	TAILQ_FOREACH(c, &hub.idents, ident_entry)
		if (c->remote)
			c->stale = 1;
}

/* Drops the remote users the snapshot did not name. */
void
cluster_mirror_sweep(void)
{
	struct hub_conn	*c, *next;

	TAILQ_FOREACH_SAFE(c, &hub.idents, ident_entry, next)
		if (c->remote && c->stale)
			cluster_mirror_drop(c);
}

/* A user (of any node) by a name from a stream, or NULL. */
static struct hub_conn *
cluster_mirror_anyone(const char *p, size_t len)
{
	struct str	name;

	if (cluster_mirror_name(p, len, &name) == -1)
		return NULL;
	return hub_user_find(name);
}

/* A room by a name from a stream, or NULL. */
static struct hub_room *
cluster_mirror_find_room(const char *p, size_t len)
{
	struct str	name = { p, len };

	if (!cluster_mirror_room_ok(p, len))
		return NULL;
	return hub_room_find(name);
}

/*
 * Another node made a room (or a snapshot names one): a row here, its
 * creator its member.  NEW_ROOM tells nobody else, so neither does
 * this.  Without the creator mirrored, or a row, the room is not.
 */
void
cluster_mirror_room(const char *room, size_t rlen, const char *creator,
    size_t clen)
{
	struct hub_conn	*c;
	struct str	 name = { room, rlen };
	char		 esc[256];

	if (!cluster_mirror_room_ok(room, rlen) ||
	    hub_room_find(name) != NULL ||
	    (c = cluster_mirror_anyone(creator, clen)) == NULL)
		return;
	if (hub.nfree_rooms == 0) {
		if (cluster_warn_ok())
			log_warnx("cluster: no row for room %s of another "
			    "node (--max-rooms)", log_escape(room, rlen, esc,
			    sizeof(esc)));
		return;
	}
	shm_begin(&hub.tab);
	(void)hub_room_make(c, name);
	shm_commit(&hub.tab);
}

/* An invitation from another node: INVITATION to the invitee if here. */
void
cluster_mirror_invite(const char *room, size_t rlen, const char *from,
    size_t flen, const char *to, size_t tlen)
{
	struct msg	 m = { .type = MSG_INVITATION };
	struct hub_room	*r;
	struct hub_conn	*u, *f;

	/* Only a member invites (its node checked; a stream may lie). */
	if ((r = cluster_mirror_find_room(room, rlen)) == NULL ||
	    (f = cluster_mirror_anyone(from, flen)) == NULL || !f->remote ||
	    !shm_room_is_member(&hub.tab, r->idx, f->slot) ||
	    (u = cluster_mirror_anyone(to, tlen)) == NULL ||
	    shm_room_is_member(&hub.tab, r->idx, u->slot) ||
	    shm_room_is_invited(&hub.tab, r->idx, u->slot))
		return;
	shm_begin(&hub.tab);
	shm_room_invite(&hub.tab, r->idx, u->slot);
	m.username.p = from;
	m.username.len = flen;
	m.roomname = hub_room_name(shm_room(&hub.tab, r->idx));
	hub_tell(u, &m);
	shm_commit(&hub.tab);
}

/*
 * A user of another node joined: JOINED_ROOM to the members here.
 * quiet (a snapshot) sets the bit and tells nobody.
 */
static void
cluster_mirror_member(const char *room, size_t rlen, const char *user,
    size_t ulen, int quiet)
{
	struct hub_room	*r;
	struct hub_conn	*u;

	if ((r = cluster_mirror_find_room(room, rlen)) == NULL ||
	    (u = cluster_mirror_anyone(user, ulen)) == NULL || !u->remote ||
	    shm_room_is_member(&hub.tab, r->idx, u->slot))
		return;
	shm_begin(&hub.tab);
	if (quiet)
		shm_room_join(&hub.tab, r->idx, u->slot);
	else
		hub_join(u, r);
	shm_commit(&hub.tab);
}

/* A user of another node joined a room. */
void
cluster_mirror_join(const char *room, size_t rlen, const char *user,
    size_t ulen)
{
	cluster_mirror_member(room, rlen, user, ulen, 0);
}

/* A snapshot's member of a room: no news for anyone. */
void
cluster_mirror_room_member(const char *room, size_t rlen, const char *user,
    size_t ulen)
{
	cluster_mirror_member(room, rlen, user, ulen, 1);
}

/* A user of another node left a room: LEFT_ROOM to the members here. */
void
cluster_mirror_left(const char *room, size_t rlen, const char *user,
    size_t ulen)
{
	struct hub_room	*r;
	struct hub_conn	*u;

	if ((r = cluster_mirror_find_room(room, rlen)) == NULL ||
	    (u = cluster_mirror_anyone(user, ulen)) == NULL || !u->remote ||
	    !shm_room_is_member(&hub.tab, r->idx, u->slot))
		return;
	shm_begin(&hub.tab);
	hub_room_leave(u, r);
	shm_commit(&hub.tab);
}

/* A ROOM_TEXT of another node's member: to the members here. */
void
cluster_mirror_room_text(const char *room, size_t rlen, const char *user,
    size_t ulen, const char *text, size_t tlen)
{
	struct msg	 m = { .type = MSG_ROOM_TEXT_FROM };
	struct hub_room	*r;
	struct shm_room	*row;
	struct hub_conn	*u;

	/* Only a member of another node talks in a room from there. */
	if ((r = cluster_mirror_find_room(room, rlen)) == NULL ||
	    (u = cluster_mirror_anyone(user, ulen)) == NULL || !u->remote ||
	    !shm_room_is_member(&hub.tab, r->idx, u->slot))
		return;
	row = shm_room(&hub.tab, r->idx);
	m.roomname = hub_room_name(row);
	m.username.p = user;
	m.username.len = ulen;
	m.text.p = text;
	m.text.len = tlen;
	hub_tell_room(row, &m, NULL);
}

/*
 * Fencing: every client of this node is closed (its users were reaped
 * by another node, their names may be others' by now), and every
 * remote user dropped; the snapshot that follows mirrors the cluster
 * again.
 */
void
cluster_mirror_fence(void)
{
	struct hub_conn	*c;
	uint32_t	 i;

	for (i = 0; i < hub.cfg->max_users; i++) {
		if ((c = hub.conns[i]) == NULL || c->remote || c->dead)
			continue;
		if (hub_identified(c) || c->parked)
			hub_kill(c, CLOSE_REFUSED, "fenced: this node was "
			    "reaped while cut off");
	}
	cluster_mirror_mark();
	cluster_mirror_sweep();
}

/*
 * A user of this node lost its name to another node's, after Redis
 * came back empty (the older claim wins): its client is closed.
 */
void
cluster_mirror_evict(const char *p, size_t len)
{
	struct hub_conn	*c;
	struct str	 name;
	char		 esc[256];

	if (cluster_mirror_name(p, len, &name) == -1 ||
	    (c = hub_user_find(name)) == NULL || c->remote)
		return;
	log_warnx("cluster: %s: another node's user holds that name since "
	    "an older claim; closing this one",
	    log_escape(p, len, esc, sizeof(esc)));
	hub_kill(c, CLOSE_REFUSED, "name conflict: another node keeps it");
	cluster_holder_mirrored(p, len);
}

/* The pairs (room, member) of this node's members, appended to args. */
static size_t
cluster_mirror_memberships(const char **args, size_t *lens, size_t n)
{
	struct hub_room	*r;
	struct shm_room	*row;
	struct hub_conn	*u;
	struct str	 rn, un;
	uint32_t	 i;

	RB_FOREACH(r, room_tree, &hub.rooms) {
		row = shm_room(&hub.tab, r->idx);
		rn = hub_room_name(row);
		for (i = 0; i < hub.cfg->max_users; i++) {
			if ((u = hub.conns[i]) == NULL || u->remote ||
			    !hub_identified(u) ||
			    !shm_room_is_member(&hub.tab, r->idx, i))
				continue;
			un = hub_name(u);
			args[n] = rn.p;
			lens[n++] = rn.len;
			args[n] = un.p;
			lens[n++] = un.len;
		}
	}
	return n;
}

/*
 * Redis lost this node's state: sends every identified user of this
 * node (name, the time of its claim, status) and its rooms, in one
 * script.  Memberships are counted as users times rooms at most.
 * yield (a restarted hub's check): a name another node holds is given
 * up, whatever the age of its claim.
 */
void
cluster_mirror_reassert(int yield)
{
	static const char	*status[STATUS_COUNT] = { "0", "1", "2" };
	struct hub_conn		*c;
	const char		**args;
	size_t			 *lens, n = 0, nusers = 0, cap;
	char			(*since)[24], count[24];
	struct str		 name;

	TAILQ_FOREACH(c, &hub.idents, ident_entry)
		if (!c->remote)
			nusers++;
	cap = 1 + 3 * nusers + 2 * nusers * (hub.tab.hdr->nrooms + 1);
	args = xcalloc(cap, sizeof(*args));
	lens = xcalloc(cap, sizeof(*lens));
	since = xcalloc(nusers + 1, sizeof(*since));
	(void)snprintf(count, sizeof(count), "%s%zu", yield ? "-" : "",
	    nusers);
	args[n] = count;
	lens[n++] = strlen(count);
	nusers = 0;
	TAILQ_FOREACH(c, &hub.idents, ident_entry) {
		if (c->remote)
			continue;
		name = hub_name(c);
		(void)snprintf(since[nusers], sizeof(since[nusers]), "%llu",
		    (unsigned long long)hub_row(c)->since_ms);
		args[n] = name.p;
		lens[n++] = name.len;
		args[n] = since[nusers];
		lens[n++] = strlen(since[nusers++]);
		args[n] = status[hub_row(c)->status < STATUS_COUNT ?
		    hub_row(c)->status : 0];
		lens[n] = strlen(args[n]);
		n++;
	}
	n = cluster_mirror_memberships(args, lens, n);
	log_info("cluster: re-asserting %zu users", nusers);
	cluster_reassert(args, lens, n);
	free(args);
	free(lens);
	free(since);
}

/* Whether a user of this node holds that name. */
int
cluster_mirror_local(const char *p, size_t len)
{
	struct hub_conn	*c;
	struct str	 name;

	return cluster_mirror_name(p, len, &name) == 0 &&
	    (c = hub_user_find(name)) != NULL && !c->remote;
}

/* Whether this hub took over the table of a dead one (hub_gen). */
int
cluster_mirror_restarted(void)
{
	return hub.gen_before != 0;
}
