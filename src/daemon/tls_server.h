/*
 * tls_server.h: the daemon's TLS server context (libtls), for the
 * tls:// listeners.
 *
 * The master builds the context: it reads the certificate and the key
 * as root, before any child drops its privileges, so the key file may
 * be root-only.  Each worker for a tls:// connection inherits the
 * context through fork and accepts its one connection on it; every
 * other child (the hub, plain workers) drops it at once, so that only
 * the processes that need the key hold it.  OpenSSL's memory lives in
 * arenas of ours (see tls_server.c): dropping the context is an
 * munmap, which copies no page.
 */
#ifndef TALKNETD_TLS_SERVER_H
#define TALKNETD_TLS_SERVER_H

#include <stddef.h>

struct tls;

/* What the options and the configuration file say about TLS. */
struct tls_settings {
	const char	*cert;		/* PEM certificate chain file */
	const char	*key;		/* PEM private key file */
	const char	*ca;		/* "" or CA file: client certs required */
	const char	*protocols;	/* libtls protocol string */
	const char	*ciphers;	/* libtls cipher string */
};

#define TLS_DEFAULT_PROTOCOLS	"tlsv1.2,tlsv1.3"
#define TLS_DEFAULT_CIPHERS	"secure"

#ifdef HAVE_TLS
/*
 * Builds a server context from s and makes it the current one, freeing
 * the one before.  On failure the current context stays and err says
 * why ("cert.pem: No such file or directory").  Returns 0 or -1.
 */
int		 tls_server_load(const struct tls_settings *s, char *err,
		    size_t errlen);
/* The current context, or NULL when none was loaded. */
struct tls	*tls_server_ctx(void);
/* Drops the context (a child that serves no TLS connection). */
void		 tls_server_forget(void);
/* A TLS worker: OpenSSL's allocations go to pages of its own. */
void		 tls_server_child(void);
/* A TLS worker after its handshake: gives back the temporaries' pages. */
void		 tls_server_trim(void);
/*
 * Checks a protocol or cipher string the way libtls will read it.
 * Returns 0, or -1 with the reason in err.
 */
int		 tls_server_check_protocols(const char *, char *err,
		    size_t errlen);
#else
/* Built without TLS: no context is ever loaded, so none is freed. */
static inline void
tls_server_forget(void)
{
}
#endif

#endif
