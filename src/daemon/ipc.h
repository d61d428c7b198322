/*
 * ipc.h: the wire format between the worker processes and the hub.
 *
 * Every frame is a fixed 16-byte header followed by len payload bytes,
 * in host byte order (both ends are the same binary on the same host).
 * The version is checked on every frame; a frame with another version,
 * an unknown type, a payload over the limit or a payload that does not
 * match its type exactly is a protocol error that drops its sender only.
 *
 * Requests (worker to hub) carry their fields as a list of strings, each
 * a uint32_t length followed by that many bytes, with nothing left over.
 * The hub never trusts identity from a payload: the sender is the
 * channel the frame arrived on, and the hub stamps peer itself.
 *
 * Requests carry a sequence number (seq, from 1 per worker).  The hub
 * stores the last one it ran in the worker's row of the shared table, in
 * the same update as the request's effects.  A worker keeps every request
 * until its row shows it ran, and after a hub restart sends the rest
 * again; the hub skips a seq it has already run.
 */
#ifndef TALKNETD_IPC_H
#define TALKNETD_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto.h"
#include "shm.h"

#define IPC_VERSION		2
#define IPC_MAX_PAYLOAD		(64U * 1024 * 1024)

struct ipc_hdr {
	uint16_t	version;	/* IPC_VERSION */
	uint16_t	type;		/* enum ipc_type */
	uint32_t	len;		/* payload bytes after the header */
	uint32_t	peer;		/* worker slot, stamped by the hub;
					   IPC_SLOT_NEW on a line to many */
	uint32_t	seq;		/* sender's frame counter */
};

enum ipc_type {
	/*
	 * 0x01xx: worker to hub.  The requests are 0x0101 to 0x010c, each
	 * numbered in its row of the table of requests (lib/request.c).
	 */
	IPC_HELLO		= 0x0180,	/* first frame: struct ipc_hello */

	/* 0x02xx: hub to worker. */
	IPC_LINE		= 0x0200,	/* one JSON line for the client */
	IPC_IDENTIFIED		= 0x0201,	/* struct ipc_identified */
	IPC_CLOSE		= 0x0202,	/* struct ipc_close: the end */
	IPC_WELCOME		= 0x0203,	/* struct ipc_welcome */

	/* 0x03xx: master to hub, over the hub's control pipe. */
	IPC_LIMITS		= 0x0300,	/* struct shm_live: reloaded */
	IPC_KICK		= 0x0301,	/* struct ipc_kick: talknetctl */
};

/*
 * Why the hub closes a worker's channel.  The hub says it in a CLOSE
 * frame before it closes, so the worker can tell a deliberate drop (it
 * closes its client and exits) from a hub that died (it reconnects).
 */
enum ipc_close_reason {
	CLOSE_QUIT = 1,		/* the DISCONNECT the worker asked for */
	CLOSE_PROTOCOL,		/* the worker broke the IPC protocol */
	CLOSE_QUEUE,		/* the client's queue went over the limit */
	CLOSE_REFUSED,		/* no row for it, or a bad HELLO */
	CLOSE_TIMEOUT,		/* no HELLO in time */
	CLOSE_GONE,		/* it did not come back after a hub restart */
	CLOSE_KICKED,		/* an admin's talknetctl kick */
	CLOSE_REASON_LAST = CLOSE_KICKED
};

#define IPC_SLOT_NEW		UINT32_MAX

/* IPC_HELLO: a new worker, or one coming back after a hub restart. */
struct ipc_hello {
	uint32_t	slot;		/* IPC_SLOT_NEW, or its row so far */
	uint32_t	pad;
	char		addr[64];	/* the client, NUL-terminated */
};

/* IPC_WELCOME: the worker's row, and the last request that ran. */
struct ipc_welcome {
	uint32_t	slot;
	uint32_t	pad;
	uint64_t	last_seq;
};

/* IPC_CLOSE: the last frame on a channel. */
struct ipc_close {
	uint32_t	reason;		/* enum ipc_close_reason */
	uint32_t	pad;
};

/* IPC_IDENTIFIED: the answer to an IDENTIFY request. */
struct ipc_identified {
	uint32_t	ok;		/* 1: identified as slot's name */
	uint32_t	slot;		/* the worker's row in the table */
};

/*
 * IPC_KICK: close that user's worker as a DISCONNECT would, with
 * CLOSE_KICKED.  The hub acts only if the row still holds that process
 * and that identification: the master read them from the table, which
 * may have changed since.
 */
struct ipc_kick {
	uint32_t	slot;
	int32_t		pid;
	uint64_t	seq;		/* the row's seq when it identified */
};

/* Bytes the header takes on the wire. */
#define IPC_HDR_LEN		sizeof(struct ipc_hdr)

/* Appends one frame with a fixed payload to b. */
void	 ipc_put(struct buf *b, uint16_t type, uint32_t peer,
	    const void *payload, size_t len);
/* Starts a frame whose payload follows; returns its header's offset. */
size_t	 ipc_begin(struct buf *b, uint16_t type, uint32_t peer);
/* Sets the seq of the frame whose header is at hdroff. */
void	 ipc_set_seq(struct buf *b, size_t hdroff, uint32_t seq);
/*
 * Checks a HELLO payload: exact size and a NUL-terminated address.
 * Returns 0 and fills *hello, or -1.
 */
int	 ipc_get_hello(const char *payload, size_t len, struct ipc_hello *);
/* Appends one length-prefixed string to the frame being built. */
void	 ipc_put_str(struct buf *b, const char *p, size_t len);
/* Ends the frame started at hdroff by writing its payload length. */
void	 ipc_end(struct buf *b, size_t hdroff);

/*
 * Takes the next frame from b.  Returns 1 and sets *h and *payload (valid
 * until b changes), 0 when the frame is not complete yet, -1 when the
 * header is bad (version, length): the peer must be dropped.
 */
int	 ipc_get(struct buf *b, struct ipc_hdr *h, const char **payload);
/*
 * The same, for a peer whose frames are never longer than max bytes of
 * payload: a longer header is -1 at once, before its payload is read.
 */
int	 ipc_get_max(struct buf *b, uint32_t max, struct ipc_hdr *h,
	    const char **payload);

/*
 * Splits a string-list payload.  Returns the number of strings (up to
 * max filled into strs), or -1 when a length runs past the end.  With
 * strs NULL it only counts.
 */
long	 ipc_get_strs(const char *payload, size_t len, struct str *strs,
	    size_t max);
/* Appends the strings of request m, in the order of its row. */
void	 ipc_put_args(struct buf *b, const struct msg *m);
/*
 * Checks a request frame and decodes it into *m, as its row in the table
 * of requests says: the strings' count, names within lim, texts valid
 * UTF-8, a known status.  The worker checked them already; the hub
 * checks again, since a worker is not trusted.  The strings are split
 * into *args, grown as needed to *nargs entries; m points into them and
 * into the payload.  Returns NULL, or why the worker must be dropped.
 */
const char *ipc_get_request(const struct ipc_hdr *h, const char *payload,
	    const struct proto_limits *lim, struct str **args, size_t *nargs,
	    struct msg *m);

/* What the hub's checks of a request need to know of its channel. */
struct ipc_chan {
	uint64_t	 last_seq;	/* the last request that ran */
	int		 identified;
	int		 parted;	/* DISCONNECT ran */
	struct str	 name;		/* its user name, if identified */
};

/* What the hub does with a request that passed its checks. */
enum ipc_step {
	IPC_STEP_RUN,		/* run it */
	IPC_STEP_AGAIN,		/* an IDENTIFY that ran, answered again */
	IPC_STEP_SKIP		/* resent after a hub restart: it ran */
};

/*
 * The hub's checks of a decoded request against its channel: the seq,
 * nothing after DISCONNECT, IDENTIFY first.  Pure, so the IPC fuzzer
 * runs the same code.  Returns NULL with *step set, or why to drop.
 */
const char *ipc_check_order(const struct ipc_chan *, uint32_t seq,
	    const struct msg *m, enum ipc_step *step);
/* The hub's checks of a HELLO payload: NULL, or why to drop its sender. */
const char *ipc_check_hello(int had_hello, const char *payload, size_t len,
	    struct ipc_hello *hello);
/* Whether a HELLO's address is made only of what an address holds. */
int	 ipc_addr_ok(const char *addr);
/* Checks a CLOSE payload; returns its reason, or 0 if it is bad. */
uint32_t ipc_get_close(const char *payload, size_t len);
/* What a close reason means, for logs ("queue over the limit"). */
const char *ipc_close_reason_name(uint32_t reason);
/* Checks reloaded limits against the ceilings; 0 if sane, -1 if not. */
int	 ipc_check_limits(const struct shm_live *);

#endif
