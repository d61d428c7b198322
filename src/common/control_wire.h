/*
 * control_wire.h: the control socket's frames, shared by talknetctl and
 * the master (src/daemon/control.c).
 *
 * A Unix stream socket (TALKNETD_CONTROL_PATH, or --control / the
 * "control" key), served by the master: it owns the sockets and the
 * table, does reloads and knows every worker's address.  It is not the
 * hub's worker protocol: its own frames, its own version.
 *
 * Every frame is a fixed 8-byte header and len payload bytes, in host
 * byte order (both ends run on the same host).  A payload is a list of
 * strings, each a uint32_t length and that many bytes, nothing left
 * over.  One connection carries one request:
 *
 *   talknetctl -> master   CTL_REQUEST  the command's words
 *   master -> talknetctl   CTL_COLUMNS  kind ("table" or "record"), then
 *                                       one "T:name" per column, T being
 *                                       's' (text) or 'n' (number)
 *                          CTL_ROW      one string per column (0 or more)
 *                          CTL_END      status ("ok" or "refused"), then
 *                                       the message lines
 *
 * then the master closes.  A frame with another version, an unknown
 * type, a payload over its limit or strings that overrun it closes the
 * connection, and the master logs why.
 */
#ifndef TALKNET_CONTROL_WIRE_H
#define TALKNET_CONTROL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "proto.h"

#ifndef TALKNETD_CONTROL_PATH
#define TALKNETD_CONTROL_PATH	"/run/talknetd/control"
#endif

#define CTL_VERSION		1
#define CTL_MAX_REQUEST		4096		/* a request's payload */
#define CTL_MAX_ANSWER		(16U * 1024 * 1024)	/* one answer frame */
#define CTL_MAX_WORDS		16		/* words in a request */

/*
 * What every fixed header starts with, this one and the hub's (ipc.h):
 * wire_get checks it for both.
 */
struct wire_hdr {
	uint16_t	version;
	uint16_t	type;
	uint32_t	len;		/* payload bytes after the header */
};

struct ctl_hdr {
	uint16_t	version;	/* CTL_VERSION */
	uint16_t	type;		/* enum ctl_type */
	uint32_t	len;		/* payload bytes after the header */
};

enum ctl_type {
	CTL_REQUEST = 0x0001,		/* talknetctl to the master */
	CTL_COLUMNS = 0x0101,		/* the master's answer: */
	CTL_ROW = 0x0102,
	CTL_END = 0x0103
};

/* Appends a frame of strings (n of them) to b. */
void	 ctl_put(struct buf *b, uint16_t type, const struct str *s, size_t n);
/* Starts a frame whose strings follow; returns its header's offset. */
size_t	 ctl_begin(struct buf *b, uint16_t type);
/* Appends one string to the frame being built. */
void	 ctl_put_str(struct buf *b, const char *p, size_t len);
/* Ends the frame started at hdroff. */
void	 ctl_end(struct buf *b, size_t hdroff);
/*
 * Takes the next frame from b: a header of hdrlen bytes (copied to h)
 * that starts as struct wire_hdr, then at most max payload bytes.
 * Returns 1 and sets *payload (valid until b changes), 0 if it is not
 * all there yet, -1 if the header is bad (another version than version,
 * or too long): its sender must be dropped.
 */
int	 wire_get(struct buf *b, size_t hdrlen, uint16_t version, uint32_t max,
	    void *h, const char **payload);
/* Appends one string of at most max bytes, its uint32_t length first. */
void	 wire_put_str(struct buf *b, const char *p, size_t len, uint32_t max);
/* Ends the frame whose header (hdrlen bytes) is at hdroff. */
void	 wire_end(struct buf *b, size_t hdroff, size_t hdrlen, uint32_t max);
/*
 * Takes the next frame of at most max payload bytes from b.  Returns 1
 * and sets *h and *payload (valid until b changes), 0 if it is not all
 * there yet, -1 if the header is bad (version, length).
 */
int	 ctl_get(struct buf *b, uint32_t max, struct ctl_hdr *h,
	    const char **payload);
/*
 * Splits a payload into strings.  Returns how many (up to max filled),
 * or -1 when a length runs past the end.
 */
long	 ctl_get_strs(const char *payload, size_t len, struct str *s,
	    size_t max);

#endif /* TALKNET_CONTROL_WIRE_H */
