/*
 * tls_server.c: the daemon's TLS server context, built by the master
 * from the certificate and key files and inherited by TLS workers.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <tls.h>

#include "log.h"
#include "tls_arena.h"
#include "tls_server.h"

/* A PEM chain or CA bundle is kilobytes; this bounds what root reads. */
#define TLS_SERVER_FILE_MAX	(4 * 1024 * 1024)

static struct tls	*server_ctx;
static struct tls_arena	*server_arena;	/* server_ctx's, or NULL: global */

/* Wipes and frees what tls_server_read read: it may be the key. */
static void
tls_server_unload(uint8_t *mem, size_t len)
{
	explicit_bzero(mem, len);
	free(mem);
}

/*
 * Cuts the ": Success" libtls adds to a message when errno was 0 (a
 * PEM file that holds no certificate is no system error).
 */
static void
tls_server_tidy(char *err)
{
	static const char	 tail[] = ": Success";
	size_t			 n = strlen(err), t = sizeof(tail) - 1;

	if (n >= t && strcmp(err + n - t, tail) == 0)
		err[n - t] = '\0';
}

/*
 * Reads a whole PEM file into memory, at most TLS_SERVER_FILE_MAX
 * bytes.  The master does this as root (the key file may be readable
 * by root alone) and in its event loop on reload: O_NONBLOCK, so a
 * FIFO named by mistake cannot hang it in open, and only a regular
 * file is read, so /dev/zero or a directory is an error, not a read
 * without end.
 */
static uint8_t *
tls_server_read(const char *path, size_t *len, char *err, size_t errlen)
{
	struct stat	 st;
	uint8_t		*mem = NULL;
	size_t		 got = 0;
	ssize_t		 n = 0;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY |
	    O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(err, errlen, "%s: not a regular file", path);
	else if (st.st_size == 0)
		snprintf(err, errlen, "%s: empty", path);
	else if (st.st_size > TLS_SERVER_FILE_MAX)
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		    TLS_SERVER_FILE_MAX);
	else if ((mem = malloc(st.st_size)) == NULL)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	/* A file that shrinks meanwhile ends the loop: got says how much. */
	while (mem != NULL && got < (size_t)st.st_size) {
		n = read(fd, mem + got, st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += n;
	}
	if (mem != NULL && (n == -1 || got == 0)) {
		snprintf(err, errlen, "%s: %s", path, n == -1 ?
		    strerror(errno) : "empty");
		tls_server_unload(mem, st.st_size);
		mem = NULL;
	}
	if (close(fd) == -1 && mem != NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		tls_server_unload(mem, st.st_size);
		mem = NULL;
	}
	*len = got;
	return mem;
}

/* Sets the certificate, the key and, if any, the CA on cfg. */
static int
tls_server_files(struct tls_config *cfg, const struct tls_settings *s,
    char *err, size_t errlen)
{
	uint8_t	*cert, *key, *ca;
	size_t	 certlen, keylen, calen;
	int	 r = -1;

	if ((cert = tls_server_read(s->cert, &certlen, err, errlen)) == NULL)
		return -1;
	if ((key = tls_server_read(s->key, &keylen, err, errlen)) == NULL) {
		tls_server_unload(cert, certlen);
		return -1;
	}
	/* libtls adds strerror(errno) to its message: no stale one. */
	errno = 0;
	if (tls_config_set_keypair_mem(cfg, cert, certlen, key, keylen) ==
	    -1) {
		snprintf(err, errlen, "%s, %s: %s", s->cert, s->key,
		    tls_config_error(cfg));
		tls_server_tidy(err);
	} else
		r = 0;
	/* tls_server_unload wipes the key's bytes before freeing them. */
	tls_server_unload(key, keylen);
	tls_server_unload(cert, certlen);
	if (r == -1 || s->ca == NULL || s->ca[0] == '\0')
		return r;
	if ((ca = tls_server_read(s->ca, &calen, err, errlen)) == NULL)
		return -1;
	errno = 0;
	if (tls_config_set_ca_mem(cfg, ca, calen) == -1) {
		snprintf(err, errlen, "%s: %s", s->ca, tls_config_error(cfg));
		tls_server_tidy(err);
		r = -1;
	} else
		tls_config_verify_client(cfg);
	tls_server_unload(ca, calen);
	return r;
}

/* Sets the protocols and ciphers on cfg. */
static int
tls_server_params(struct tls_config *cfg, const struct tls_settings *s,
    char *err, size_t errlen)
{
	uint32_t	protocols;

	if (tls_config_parse_protocols(&protocols, s->protocols) == -1) {
		snprintf(err, errlen, "tls-protocols: %s: invalid",
		    s->protocols);
		return -1;
	}
	if (tls_config_set_protocols(cfg, protocols) == -1 ||
	    tls_config_set_ciphers(cfg, s->ciphers) == -1) {
		snprintf(err, errlen, "tls-ciphers: %s: %s", s->ciphers,
		    tls_config_error(cfg));
		return -1;
	}
	return 0;
}

/*
 * Builds a server context from cfg, OpenSSL's part of it in arena a
 * (NULL: the global arena, or malloc when arenas are off).  Returns it,
 * or NULL with the reason in err.
 */
static struct tls *
tls_server_build(struct tls_config *cfg, struct tls_arena *a,
    const struct tls_settings *s, char *err, size_t errlen)
{
	struct tls	*ctx;

	tls_arena_use(a);
	if ((ctx = tls_server()) == NULL) {
		tls_arena_use(NULL);
		snprintf(err, errlen, "out of memory for a TLS context");
		return NULL;
	}
	/* tls_configure checks that the key belongs to the certificate. */
	errno = 0;
	if (tls_configure(ctx, cfg) == -1) {
		tls_arena_use(NULL);
		snprintf(err, errlen, "%s, %s: %s", s->cert, s->key,
		    tls_error(ctx));
		tls_server_tidy(err);
		tls_free(ctx);
		return NULL;
	}
	tls_arena_use(NULL);
	return ctx;
}

/*
 * Runs the two ends of a handshake in turns, a bounded number of steps.
 * The client is raw OpenSSL, not libtls: libtls frees what
 * X509_NAME_oneline gives it (the peer's subject, its issuer) with
 * free(3), not OPENSSL_free, so a libtls client's blocks could not be
 * in an arena; and OpenSSL's lasting state made for the client must be
 * (a child that unmaps the arenas would leave it unreachable).
 */
static void
tls_server_warm_steps(SSL *cli, struct tls *conn)
{
	int	rc = 0, rs = TLS_WANT_POLLIN, i;

	for (i = 0; i < 32 && (rc != 1 || rs != 0); i++) {
		if (rc != 1 && (rc = SSL_do_handshake(cli)) != 1 &&
		    SSL_get_error(cli, rc) != SSL_ERROR_WANT_READ)
			break;
		if (rs != 0 && (rs = tls_handshake(conn)) == -1)
			break;
	}
	ERR_clear_error();
}

/*
 * One handshake against srv over a socketpair, with protocol version v
 * (OpenSSL's number): the client verifies nothing, it is our server.
 */
static void
tls_server_warm_one(struct tls *srv, int v)
{
	SSL_CTX		*cctx = NULL;
	SSL		*cli = NULL;
	struct tls	*conn = NULL;
	int		 sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) == -1) {
		log_warn("TLS: socketpair");
		return;
	}
	if ((cctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(cctx, v) != 1 ||
	    SSL_CTX_set_max_proto_version(cctx, v) != 1 ||
	    (cli = SSL_new(cctx)) == NULL || SSL_set_fd(cli, sv[0]) != 1)
		goto out;
	SSL_set_connect_state(cli);
	if (tls_accept_socket(srv, &conn, sv[1]) == -1)
		goto out;
	tls_server_warm_steps(cli, conn);
out:
	tls_free(conn);
	SSL_free(cli);
	SSL_CTX_free(cctx);
	ERR_clear_error();
	close(sv[0]);
	close(sv[1]);
}

/*
 * Runs a handshake against srv in the master, once with each protocol
 * version it serves.  What OpenSSL builds once per process at its first
 * handshake (the algorithms it fetches and caches, its random
 * generators) is then built before the fork, in pages every TLS worker
 * shares, rather than in each worker: about 115 KiB a TLS worker.  Best
 * effort: with client certificates required it stops half-way, having
 * warmed most of it.
 */
static void
tls_server_warm(struct tls *srv, const struct tls_settings *s)
{
	static const struct {
		uint32_t	 libtls;
		int		 openssl;
	} v[] = {
		{ TLS_PROTOCOL_TLSv1_3, TLS1_3_VERSION },
		{ TLS_PROTOCOL_TLSv1_2, TLS1_2_VERSION },
	};
	uint32_t	 protocols;
	size_t		 i;

	if (tls_config_parse_protocols(&protocols, s->protocols) == -1)
		return;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (protocols & v[i].libtls)
			tls_server_warm_one(srv, v[i].openssl);
}

/*
 * Builds a new server context from s and makes it the current one.  A
 * first one is built and freed before it (in an arena of its own, run
 * through a handshake): what OpenSSL builds for good at its first use
 * stays outside the arena the context lives in.
 */
int
tls_server_load(const struct tls_settings *s, char *err, size_t errlen)
{
	struct tls_config	*cfg;
	struct tls		*ctx;
	struct tls_arena		*a;
	int			 r = -1;

	tls_arena_init();
	if (tls_init() == -1) {
		snprintf(err, errlen, "libtls cannot start");
		return -1;
	}
	if ((cfg = tls_config_new()) == NULL) {
		snprintf(err, errlen, "out of memory for a TLS configuration");
		return -1;
	}
	if (tls_server_params(cfg, s, err, errlen) == -1 ||
	    tls_server_files(cfg, s, err, errlen) == -1)
		goto out;
	a = tls_arena_new_ctx();
	ctx = tls_server_build(cfg, a, s, err, errlen);
	tls_arena_thread_reset();
	if (ctx == NULL) {
		tls_arena_release(a);
		goto out;
	}
	tls_server_warm(ctx, s);
	tls_free(ctx);
	tls_arena_thread_reset();
	tls_arena_release(a);
	a = tls_arena_new_ctx();
	ctx = tls_server_build(cfg, a, s, err, errlen);
	tls_arena_thread_reset();
	if (ctx == NULL) {
		tls_arena_release(a);
		goto out;
	}
	/* The key is in the context now: wipe cfg's copy, as httpd does. */
	tls_config_clear_keys(cfg);
	if (server_ctx != NULL) {
		tls_free(server_ctx);
		tls_arena_thread_reset();
		tls_arena_release(server_arena);
	}
	server_ctx = ctx;
	server_arena = a;
	r = 0;
out:
	/* The context holds its own reference to what it needs of cfg. */
	tls_config_free(cfg);
	return r;
}

/* The current server context. */
struct tls *
tls_server_ctx(void)
{
	return tls_arena_dropped() ? NULL : server_ctx;
}

/*
 * Drops the context.  Called at once by every child that serves no TLS
 * connection (the hub, plain workers), so that they do not keep the
 * private key in their memory.  With arenas, they are unmapped, not
 * freed: no page the child shares with the master is written (copied),
 * and nothing of the key is left in its address space.  libtls's own
 * small part (struct tls, its configuration: no key) stays unused in the
 * heap.
 */
void
tls_server_forget(void)
{
	if (server_ctx == NULL || tls_arena_dropped())
		return;
	/* With arenas, all of OpenSSL is in them, this context too. */
	if (!tls_arena_enabled()) {
		tls_free(server_ctx);
		server_ctx = NULL;
		return;
	}
	/* server_ctx stays pointed at (libtls's part, in the heap: no
	 * key), or valgrind would call it lost; tls_server_ctx hides it. */
	tls_arena_drop_all();
}

/* A TLS worker after its handshake: see tls_arena_trim. */
void
tls_server_trim(void)
{
	tls_arena_trim();
}

/* A TLS worker before its connection: see tls_arena_child. */
void
tls_server_child(void)
{
	tls_arena_child();
}

/* Checks a protocol string as tls_server_load will read it. */
int
tls_server_check_protocols(const char *p, char *err, size_t errlen)
{
	uint32_t	protocols;

	if (tls_config_parse_protocols(&protocols, p) == -1) {
		snprintf(err, errlen, "invalid (e.g. tlsv1.2,tlsv1.3)");
		return -1;
	}
	return 0;
}
