/*
 * addr.c: listen addresses.  Only numeric hosts are accepted, so that a
 * daemon never waits on DNS at start-up.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "talknetd.h"

/* Fills one entry from a numeric host and a port. */
static int
addr_fill(struct listen_addr *a, const char *host, const char *port,
    const char *text, char *err, size_t errlen)
{
	struct addrinfo	 hints, *res;
	int		 r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		if (r == EAI_NONAME)
			(void)snprintf(err, errlen, "%s: not a numeric IPv4 "
			    "address, [IPv6] address or *", text);
		else
			(void)snprintf(err, errlen, "%s: %s", text,
			    gai_strerror(r));
		return -1;
	}
	if (res->ai_addrlen > sizeof(a->ss)) {
		freeaddrinfo(res);
		(void)snprintf(err, errlen, "%s: address too long", text);
		return -1;
	}
	memset(a, 0, sizeof(*a));
	memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
	a->sslen = res->ai_addrlen;
	a->fd = -1;
	(void)strlcpy(a->text, text, sizeof(a->text));
	freeaddrinfo(res);
	return 0;
}

/* Parses one ADDR:PORT into out[]; returns the count, or -1. */
int
addr_parse(const char *text, struct listen_addr *out, size_t max, char *err,
    size_t errlen)
{
	char		 host[128], any4[32], any6[32];
	const char	*colon, *port, *errstr, *h = text;
	size_t		 hlen;

	if ((colon = strrchr(text, ':')) == NULL) {
		(void)snprintf(err, errlen, "%s: expected ADDR:PORT", text);
		return -1;
	}
	port = colon + 1;
	(void)strtonum(port, 0, 65535, &errstr);
	if (errstr != NULL || *port == '\0') {
		(void)snprintf(err, errlen, "%s: port is %s", text,
		    errstr != NULL ? errstr : "missing");
		return -1;
	}
	hlen = (size_t)(colon - text);
	if (hlen >= 2 && text[0] == '[' && text[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		(void)snprintf(err, errlen, "%s: bad address", text);
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (strcmp(host, "*") == 0) {
		if (max < 2) {
			(void)snprintf(err, errlen, "too many addresses");
			return -1;
		}
		(void)snprintf(any4, sizeof(any4), "0.0.0.0:%s", port);
		(void)snprintf(any6, sizeof(any6), "[::]:%s", port);
		if (addr_fill(&out[0], "0.0.0.0", port, any4, err,
		    errlen) == -1 || addr_fill(&out[1], "::", port, any6,
		    err, errlen) == -1)
			return -1;
		/* A host without IPv6 still serves IPv4. */
		out[1].optional = 1;
		return 2;
	}
	if (max < 1) {
		(void)snprintf(err, errlen, "too many addresses");
		return -1;
	}
	if (addr_fill(&out[0], host, port, text, err, errlen) == -1)
		return -1;
	return 1;
}

/* Formats a socket address as "1.2.3.4:80" or "[::1]:80". */
void
sockaddr_fmt(const struct sockaddr *sa, socklen_t salen, char *out,
    size_t outlen)
{
	char	host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(sa, salen, host, sizeof(host), serv, sizeof(serv),
	    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		(void)strlcpy(out, "?", outlen);
		return;
	}
	if (sa->sa_family == AF_INET6)
		(void)snprintf(out, outlen, "[%s]:%s", host, serv);
	else
		(void)snprintf(out, outlen, "%s:%s", host, serv);
}

/*
 * Whether a and b are the same address and port: a second socket there
 * could not be bound.  Port 0 (any free port) is never the same.
 */
int
addr_same(const struct listen_addr *a, const struct listen_addr *b)
{
	const struct sockaddr_in	*sin;

	if (a->sslen != b->sslen || memcmp(&a->ss, &b->ss, a->sslen) != 0)
		return 0;
	/* sin_port and sin6_port sit at the same offset. */
	sin = (const struct sockaddr_in *)(const void *)&a->ss;
	return sin->sin_port != 0;
}
