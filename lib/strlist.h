/*
 * strlist.h: a payload that is a list of strings, each a uint32_t length
 * (host order) followed by that many bytes, with nothing left over.
 * Both of the daemon's internal protocols carry their fields this way:
 * the hub's frames (ipc.h) and the control socket's (control.h).
 */
#ifndef TALKNET_STRLIST_H
#define TALKNET_STRLIST_H

#include <stddef.h>

#include "proto.h"

/*
 * Splits a payload of len bytes.  Returns the number of strings (up to
 * max of them filled into strs), or -1 when a length runs past the end.
 * With strs NULL it only counts.
 */
long	 strlist_split(const char *payload, size_t len, struct str *strs,
	    size_t max);

#endif
