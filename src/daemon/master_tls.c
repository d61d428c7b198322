/*
 * master_tls.c: what the master does for the tls:// listeners: it loads
 * the certificate and key at start, as root and before any child is
 * forked, loads them again on reload, and tells a TLS listener from a
 * plain one when it accepts.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/tree.h>

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "master.h"
#include "talknetd.h"
#include "tls_server.h"

/* Whether cfg has a tls:// listener. */
int
master_tls_any(const struct config *cfg)
{
	size_t	i;

	for (i = 0; i < cfg->nlisten; i++)
		if (cfg->listen[i].tls)
			return 1;
	return 0;
}

/* Whether the listening socket fd is a tls:// one. */
int
master_tls_listener(int fd)
{
	size_t	i;

	for (i = 0; i < master.cfg->nlisten; i++)
		if (master.cfg->listen[i].fd == fd)
			return master.cfg->listen[i].tls;
	return 0;
}

/*
 * Loads the certificate and key that cfg names into the server context
 * workers of tls:// connections inherit.  Without a tls:// listener it
 * does nothing: the key is read only by a server that serves it.  On
 * failure the context loaded before stays.  Returns 0, or -1 with the
 * reason in err.
 */
int
master_tls_load(const struct config *cfg, char *err, size_t errlen)
{
#ifdef HAVE_TLS
	struct tls_settings	s;

	if (!master_tls_any(cfg))
		return 0;
	if (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0') {
		(void)snprintf(err, errlen, "a tls:// listener needs "
		    "--tls-cert and --tls-key (tls-cert, tls-key)");
		return -1;
	}
	s.cert = cfg->tls_cert;
	s.key = cfg->tls_key;
	s.ca = cfg->tls_ca;
	s.protocols = cfg->tls_protocols;
	s.ciphers = cfg->tls_ciphers;
	return tls_server_load(&s, err, errlen);
#else
	if (!master_tls_any(cfg))
		return 0;
	(void)snprintf(err, errlen, "a tls:// listener, but talknetd was "
	    "built without TLS");
	return -1;
#endif
}

/*
 * SIGHUP and talknetctl reload, once the configuration was read again:
 * loads the certificate and key again (certbot renewed them).  New
 * connections get the new pair; workers already forked keep the one
 * they inherited.  A file that does not load keeps the old pair, and
 * the reason is logged and added to msg.  Returns 0, or -1 then.
 */
int
master_tls_reload(char *msg, size_t len)
{
	char	err[512], esc[1024];
	size_t	n;

	if (!master_tls_any(master.cfg))
		return 0;
	n = strlen(msg);
	/*
	 * Once more on a failure: the certificate and the key are read one
	 * after the other, so a renewal that swaps them (a symlink to the
	 * pair's directory, or each file in turn, as certbot does) between
	 * the two reads gives a pair that does not match.  Read again, it
	 * is whole.
	 */
	if (master_tls_load(master.cfg, err, sizeof(err)) == -1 &&
	    master_tls_load(master.cfg, err, sizeof(err)) == -1) {
		/* A path or libtls's words: no newline or escape gets out. */
		(void)log_escape(err, strlen(err), esc, sizeof(esc));
		log_warnx("reload: TLS: %s; keeping the certificate and key "
		    "loaded before", esc);
		(void)snprintf(msg + n, len - n, "\nTLS: %s; keeping the "
		    "certificate and key loaded before", esc);
		return -1;
	}
	log_info("reload: TLS certificate %s and key loaded",
	    master.cfg->tls_cert);
	(void)snprintf(msg + n, len - n, "\nTLS: certificate %s and key "
	    "loaded", master.cfg->tls_cert);
	return 0;
}
