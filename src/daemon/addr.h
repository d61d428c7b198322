/*
 * addr.h: listen addresses: parsing "ADDR:PORT" and formatting sockets.
 */
#ifndef TALKNETD_ADDR_H
#define TALKNETD_ADDR_H

#include <sys/socket.h>

#include <stddef.h>

struct listen_addr;

/*
 * Parses "127.0.0.1:8001", "[::1]:8001" or "*:8001" (every IPv4 and IPv6
 * address) into out[], at most max entries.  Returns how many it filled,
 * or -1 with a message in err.
 */
int	 addr_parse(const char *, struct listen_addr *out, size_t max,
	    char *err, size_t errlen);
/* Whether two entries name the same address and (non-zero) port. */
int	 addr_same(const struct listen_addr *, const struct listen_addr *);
/* Formats a socket address as "1.2.3.4:80" or "[::1]:80". */
void	 sockaddr_fmt(const struct sockaddr *, socklen_t, char *, size_t);

#endif
