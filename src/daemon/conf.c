/*
 * conf.c: one table of settings serves the command line and the
 * configuration file.  Numbers are parsed with strtonum and addresses
 * with addr_parse, and every error says what was wrong and where.
 */
#include "config.h"

#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "proto.h"
#include "shm.h"
#include "talknetd.h"
#include "tls_server.h"

#define CONF_LINE_MAX	1024
#define CONF_TLS_SCHEME	"tls://"
#define CONF_REDIS_SCHEME	"redis://"
#define CONF_UNIX_SCHEME	"unix:"
#define CONF_REDIS_MAX_DB	15	/* redis.conf's databases default */
#define CONF_NODE_ID_MAX	63	/* a mirrored user's conn names it */

enum conf_kind {
	CONF_SIZE,		/* a number in [min, max] */
	CONF_LISTEN,		/* ADDR:PORT, repeatable */
	CONF_STRING,		/* a bounded string */
	CONF_LOG_LEVEL		/* error, warning, info, debug */
};

/* One setting: its key, how to read it, where it goes. */
struct conf_key {
	const char	*key;
	enum conf_kind	 kind;
	size_t		 off;		/* in struct config */
	long long	 min;
	long long	 max;
	size_t		 len;		/* CONF_STRING: size of the field */
	int		 live;		/* changes without a restart */
};

/* A number's row: its field in struct config, its bounds, whether live. */
#define CONF_NUM(key, field, min, max, live) \
	{ key, CONF_SIZE, offsetof(struct config, field), min, max, 0, live }
/* A string's row: its field, whose size bounds it; never live. */
#define CONF_STR(key, field) \
	{ key, CONF_STRING, offsetof(struct config, field), 0, 0, \
	    sizeof(((struct config *)NULL)->field), 0 }
/* A live string's row: a reload reads the TLS files again anyway. */
#define CONF_STR_LIVE(key, field) \
	{ key, CONF_STRING, offsetof(struct config, field), 0, 0, \
	    sizeof(((struct config *)NULL)->field), 1 }

static const struct conf_key conf_keys[] = {
	{ "listen", CONF_LISTEN, 0, 0, 0, 0, 0 },
	/* min 1: the addresses are tls://, as "listen = tls://...". */
	{ "tls-listen", CONF_LISTEN, 0, 1, 0, 0, 0 },
	CONF_NUM("max-clients", max_clients, 1, CEIL_MAX_CLIENTS, 0),
	CONF_NUM("max-rooms", max_rooms, 1, CEIL_MAX_ROOMS, 0),
	/* 0 (the default) is max-clients: see configure(). */
	CONF_NUM("max-users", max_users, 0, CEIL_MAX_USERS, 0),
	/* Not live: the hub, forked at start, keeps the value it had. */
	CONF_NUM("max-rooms-per-user", max_rooms_per_user,
	    0, CEIL_MAX_ROOMS, 0),
	CONF_NUM("max-name", max_name, 1, CEIL_MAX_NAME, 0),
	CONF_NUM("max-room", max_room, 1, CEIL_MAX_NAME, 0),
	CONF_NUM("max-line", max_line, 64, CEIL_MAX_LINE, 1),
	CONF_NUM("max-queue", max_queue, 4096, CEIL_MAX_QUEUE, 1),
	CONF_NUM("max-clients-per-ip", max_clients_per_ip,
	    0, CEIL_MAX_CLIENTS, 1),
	CONF_NUM("login-timeout", login_timeout, 0, 86400, 1),
	CONF_NUM("rate-limit", rate_limit, 0, 1000000, 1),
	CONF_NUM("rate-burst", rate_burst, 1, 1000000, 1),
	CONF_NUM("stall-timeout", stall_timeout, 0, 86400, 1),
	CONF_NUM("send-buffer", send_buffer, 0, 16 * 1024 * 1024, 1),
	CONF_NUM("max-gather", max_gather, 0, CEIL_MAX_GATHER, 1),
	/* Live: the hub's flow control (hub_still_pacing). */
	CONF_NUM("pace-min-rate", pace_min_rate, 1024, 1073741824, 1),
	CONF_NUM("pace-window-ms", pace_window_ms, 100, 60000, 1),
	/* Live: a reload retires the spares, forked with the old settings. */
	CONF_NUM("min-spare", min_spare, 0, CEIL_MAX_SPARE, 1),
	CONF_NUM("max-spare", max_spare, 0, CEIL_MAX_SPARE, 1),
	/* Milliseconds, as every key ending in -ms.  Live: the master's. */
	CONF_NUM("spare-decay-ms", spare_decay_ms, 100, 3600000, 1),
	CONF_NUM("control-idle-ms", control_idle_ms, 100, 3600000, 1),
	/*
	 * Not live: the hub, forked at start, keeps it; and a node must
	 * not change it alone (cluster.c's join refuses a differing one).
	 */
	CONF_NUM("cluster-ttl-ms", cluster_ttl_ms, 300, 600000, 0),
	CONF_STR("user", user),
	CONF_STR("pidfile", pidfile),
	CONF_STR("control", control),
	CONF_STR_LIVE("tls-cert", tls_cert),
	CONF_STR_LIVE("tls-key", tls_key),
	CONF_STR_LIVE("tls-ca", tls_ca),
	CONF_STR_LIVE("tls-protocols", tls_protocols),
	CONF_STR_LIVE("tls-ciphers", tls_ciphers),
	CONF_STR("cluster", cluster),
	CONF_STR("node-id", node_id),
	CONF_STR("cluster-password", cluster_password),
	CONF_STR("cluster-password-file", cluster_password_file),
	{ "log-level", CONF_LOG_LEVEL, offsetof(struct config, log_level),
	    0, 0, 0, 1 },
};

/* Finds a key's row, or NULL. */
static const struct conf_key *
conf_find(const char *key)
{
	size_t	i;

	for (i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++)
		if (strcmp(conf_keys[i].key, key) == 0)
			return &conf_keys[i];
	return NULL;
}

/* Whether a key exists. */
int
conf_known(const char *key)
{
	return conf_find(key) != NULL;
}

/* Whether a key may change without a restart. */
int
conf_live(const char *key)
{
	const struct conf_key	*k = conf_find(key);

	return k != NULL && k->live;
}

/* Fills cfg with the defaults of every setting. */
void
conf_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->max_clients = DEFAULT_MAX_CLIENTS;
	cfg->max_rooms = DEFAULT_MAX_ROOMS;
	cfg->max_rooms_per_user = DEFAULT_MAX_ROOMS_PER_USER;
	cfg->max_name = PROTO_MAX_NAME;
	cfg->max_room = PROTO_MAX_ROOM;
	cfg->max_line = PROTO_MAX_LINE;
	cfg->max_queue = DEFAULT_MAX_QUEUE;
	cfg->max_gather = DEFAULT_MAX_GATHER;
	cfg->max_clients_per_ip = DEFAULT_MAX_CLIENTS_PER_IP;
	cfg->login_timeout = DEFAULT_LOGIN_TIMEOUT;
	cfg->rate_limit = DEFAULT_RATE_LIMIT;
	cfg->rate_burst = DEFAULT_RATE_BURST;
	cfg->stall_timeout = DEFAULT_STALL_TIMEOUT;
	cfg->pace_min_rate = DEFAULT_PACE_MIN_RATE;
	cfg->pace_window_ms = DEFAULT_PACE_WINDOW_MS;
	cfg->send_buffer = DEFAULT_SEND_BUFFER;
	cfg->min_spare = DEFAULT_MIN_SPARE;
	cfg->max_spare = DEFAULT_MAX_SPARE;
	cfg->spare_decay_ms = DEFAULT_SPARE_DECAY_MS;
	cfg->control_idle_ms = DEFAULT_CONTROL_IDLE_MS;
	cfg->cluster_ttl_ms = DEFAULT_CLUSTER_TTL_MS;
	(void)strlcpy(cfg->tls_protocols, TLS_DEFAULT_PROTOCOLS,
	    sizeof(cfg->tls_protocols));
	(void)strlcpy(cfg->tls_ciphers, TLS_DEFAULT_CIPHERS,
	    sizeof(cfg->tls_ciphers));
}

/*
 * Whether the n entries just parsed after cfg->listen[nlisten - 1] repeat
 * one already there: the second bind would fail at start.  -1 if so.
 */
static int
conf_listen_twice(const struct config *cfg, size_t n, char *err,
    size_t errlen)
{
	size_t	i, j;

	for (i = cfg->nlisten; i < cfg->nlisten + n; i++)
		for (j = 0; j < cfg->nlisten; j++)
			if (addr_same(&cfg->listen[i], &cfg->listen[j])) {
				(void)snprintf(err, errlen, "%s: already "
				    "listed (as %s)", cfg->listen[i].text,
				    cfg->listen[j].text);
				return -1;
			}
	return 0;
}

/*
 * Parses one listen value into cfg->listen: "tls://ADDR:PORT", or any
 * address of the tls-listen key, is served with TLS.  -1 with the
 * reason in err.
 */
static int
conf_listen(struct config *cfg, const char *value, int tls, char *err,
    size_t errlen)
{
	size_t	i;
	int	r;

	if (strncmp(value, CONF_TLS_SCHEME, strlen(CONF_TLS_SCHEME)) == 0) {
		value += strlen(CONF_TLS_SCHEME);
		tls = 1;
	}
#ifndef HAVE_TLS
	if (tls) {
		(void)snprintf(err, errlen, "%s%s: built without TLS "
		    "(configure found no libtls)", CONF_TLS_SCHEME, value);
		return -1;
	}
#endif
	r = addr_parse(value, &cfg->listen[cfg->nlisten],
	    TALKNETD_MAX_LISTEN - cfg->nlisten, err, errlen);
	if (r == -1)
		return -1;
	if (conf_listen_twice(cfg, (size_t)r, err, errlen) == -1)
		return -1;
	for (i = 0; i < (size_t)r; i++)
		cfg->listen[cfg->nlisten + i].tls = tls;
	cfg->nlisten += (size_t)r;
	return 0;
}

/*
 * Checks a tls-* value as far as it can be without reading files:
 * libtls's protocol syntax.  Without TLS every tls-* key is an error.
 */
static int
conf_tls_check(const char *key, const char *value, char *err, size_t errlen)
{
#ifdef HAVE_TLS
	char	why[128];

	if (strcmp(key, "tls-protocols") == 0 &&
	    tls_server_check_protocols(value, why, sizeof(why)) == -1) {
		(void)snprintf(err, errlen, "%s: %s", value, why);
		return -1;
	}
	return 0;
#else
	(void)key;
	(void)snprintf(err, errlen, "%s: built without TLS (configure found "
	    "no libtls)", value);
	return -1;
#endif
}

/* Parses a --cluster value; -1 with the reason in err. */
int
conf_cluster_parse(const char *value, struct cluster_addr *a, char *err,
    size_t errlen)
{
	const char	*p, *colon, *slash, *errstr;
	char		 num[16];
	size_t		 hlen;

	memset(a, 0, sizeof(*a));
	if (strncmp(value, CONF_UNIX_SCHEME, strlen(CONF_UNIX_SCHEME)) == 0) {
		p = value + strlen(CONF_UNIX_SCHEME);
		/* sun_path's 108 bytes, with its NUL. */
		if (*p != '/' || strlen(p) >= 108) {
			(void)snprintf(err, errlen, "%s: unix:PATH needs an "
			    "absolute path shorter than 108 bytes", value);
			return -1;
		}
		a->unix_path = 1;
		(void)strlcpy(a->host, p, sizeof(a->host));
		return 0;
	}
	if (strncmp(value, CONF_REDIS_SCHEME, strlen(CONF_REDIS_SCHEME)) != 0)
		goto bad;
	p = value + strlen(CONF_REDIS_SCHEME);
	slash = strchr(p, '/');
	/* The last colon: the port follows it, whatever the host is. */
	if ((colon = memrchr(p, ':', slash != NULL ? (size_t)(slash - p) :
	    strlen(p))) == NULL || colon == p)
		goto bad;
	hlen = (size_t)(colon - p);
	/* [v6]: hiredis takes the address without its brackets. */
	if (hlen >= 2 && p[0] == '[' && p[hlen - 1] == ']') {
		p++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(a->host))
		goto bad;
	memcpy(a->host, p, hlen);
	a->host[hlen] = '\0';
	p = value + strlen(CONF_REDIS_SCHEME);
	hlen = slash != NULL ? (size_t)(slash - colon - 1) :
	    strlen(colon + 1);
	if (hlen == 0 || hlen >= sizeof(num))
		goto bad;
	memcpy(num, colon + 1, hlen);
	num[hlen] = '\0';
	a->port = (int)strtonum(num, 1, 65535, &errstr);
	if (errstr != NULL)
		goto bad;
	if (slash != NULL) {
		a->db = (int)strtonum(slash + 1, 0, CONF_REDIS_MAX_DB, &errstr);
		if (errstr != NULL)
			goto bad;
	}
	return 0;
bad:
	(void)snprintf(err, errlen, "%s: expected redis://HOST:PORT[/DB] "
	    "(DB 0 to %d) or unix:PATH", value, CONF_REDIS_MAX_DB);
	return -1;
}

/*
 * Checks a cluster key as far as it can be without Redis.  Built without
 * hiredis, every cluster key is an error.
 */
static int
conf_cluster_check(const char *key, const char *value, char *err,
    size_t errlen)
{
#ifdef HAVE_HIREDIS
	struct cluster_addr	a;

	const char		*c;

	if (strcmp(key, "cluster") == 0)
		return conf_cluster_parse(value, &a, err, errlen);
	/* It names Redis keys and shows in logs: a plain token. */
	if (strcmp(key, "node-id") == 0 && strlen(value) > CONF_NODE_ID_MAX) {
		(void)snprintf(err, errlen, "%s: longer than %d bytes", value,
		    CONF_NODE_ID_MAX);
		return -1;
	}
	for (c = value; strcmp(key, "node-id") == 0 && *c != '\0'; c++)
		if (!isalnum((unsigned char)*c) && strchr("._:-", *c) == NULL) {
			(void)snprintf(err, errlen, "%s: only letters, digits "
			    "and . _ : - please", value);
			return -1;
		}
	return 0;
#else
	(void)key;
	(void)snprintf(err, errlen, "%s: built without cluster support "
	    "(configure found no hiredis)", value);
	return -1;
#endif
}

/* Sets one key from its text value; -1 with the reason in err. */
int
conf_set(struct config *cfg, const char *key, const char *value, char *err,
    size_t errlen)
{
	const struct conf_key	*k;
	const char		*errstr;
	long long		 n;
	int			 level;

	if ((k = conf_find(key)) == NULL) {
		(void)snprintf(err, errlen, "unknown key");
		return -1;
	}
	switch (k->kind) {
	case CONF_SIZE:
		n = strtonum(value, k->min, k->max, &errstr);
		if (errstr != NULL) {
			(void)snprintf(err, errlen, "%s: %s (%lld to %lld)",
			    value, errstr, k->min, k->max);
			return -1;
		}
		*(size_t *)(void *)((char *)cfg + k->off) = (size_t)n;
		return 0;
	case CONF_LISTEN:
		return conf_listen(cfg, value, k->min == 1, err, errlen);
	case CONF_STRING:
		if (*value == '\0') {
			(void)snprintf(err, errlen, "empty value");
			return -1;
		}
		if (strlen(value) >= k->len) {
			(void)snprintf(err, errlen, "longer than %zu bytes",
			    k->len - 1);
			return -1;
		}
		/* Checked here, so the error names the file and line. */
		if (strcmp(k->key, "user") == 0 && getpwnam(value) == NULL) {
			(void)snprintf(err, errlen, "%s: no such user", value);
			return -1;
		}
		if (strncmp(k->key, "tls-", 4) == 0 &&
		    conf_tls_check(k->key, value, err, errlen) == -1)
			return -1;
		if ((strcmp(k->key, "cluster") == 0 ||
		    strncmp(k->key, "cluster-", 8) == 0 ||
		    strcmp(k->key, "node-id") == 0) &&
		    conf_cluster_check(k->key, value, err, errlen) == -1)
			return -1;
		(void)strlcpy((char *)cfg + k->off, value, k->len);
		return 0;
	case CONF_LOG_LEVEL:
		if ((level = log_level_parse(value)) != -1) {
			cfg->log_level = level;
			return 0;
		}
		(void)snprintf(err, errlen, "%s: not one of error, warning, "
		    "info, debug", value);
		return -1;
	}
	(void)snprintf(err, errlen, "bad key kind");
	return -1;
}

/* Strips white space from both ends of s, in place. */
static char *
conf_trim(char *s)
{
	char	*end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Reads "key = value" lines from path into cfg. */
int
conf_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	FILE	*f;
	char	 line[CONF_LINE_MAX + 2], why[256], *key, *value, *eq, *hash;
	char	 iobuf[BUFSIZ];
	size_t	 lineno = 0, len;
	int	 rc = -1;

	if ((f = fopen(path, "r")) == NULL) {
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/*
	 * Our buffer, wiped below: the file may hold cluster-password,
	 * which must not stay in a freed stdio buffer of the master's
	 * heap, which every worker inherits.
	 */
	(void)setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
	while (fgets(line, sizeof(line), f) != NULL) {
		lineno++;
		len = strlen(line);
		if (len > CONF_LINE_MAX && line[len - 1] != '\n') {
			(void)snprintf(err, errlen, "%s:%zu: line longer than "
			    "%d bytes", path, lineno, CONF_LINE_MAX);
			goto fail;
		}
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		key = conf_trim(line);
		if (*key == '\0')
			continue;
		if ((eq = strchr(key, '=')) == NULL) {
			(void)snprintf(err, errlen, "%s:%zu: %s: expected "
			    "key = value", path, lineno, key);
			goto fail;
		}
		*eq = '\0';
		key = conf_trim(key);
		value = conf_trim(eq + 1);
		if (conf_set(cfg, key, value, why, sizeof(why)) == -1) {
			(void)snprintf(err, errlen, "%s:%zu: %s: %s", path,
			    lineno, key, why);
			goto fail;
		}
	}
	if (ferror(f)) {
		(void)snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	rc = 0;
fail:
	fclose(f);
	explicit_bzero(iobuf, sizeof(iobuf));
	explicit_bzero(line, sizeof(line));
	return rc;
}

/* Adds a key to the comma-separated list in buf. */
static void
conf_list_add(char *buf, size_t len, const char *key)
{
	if (buf[0] != '\0')
		(void)strlcat(buf, ", ", len);
	(void)strlcat(buf, key, len);
}

/* Whether two configurations listen on different addresses. */
static int
conf_listen_differs(const struct config *a, const struct config *b)
{
	size_t	i;

	if (a->nlisten != b->nlisten)
		return 1;
	for (i = 0; i < a->nlisten; i++)
		if (a->listen[i].tls != b->listen[i].tls ||
		    a->listen[i].sslen != b->listen[i].sslen ||
		    memcmp(&a->listen[i].ss, &b->listen[i].ss,
		    a->listen[i].sslen) != 0)
			return 1;
	return 0;
}

/*
 * Names every setting that differs and needs a restart, in buf (comma
 * separated), and returns how many.  With skip_listen, the addresses
 * are not compared: sockets passed by systemd replace them.
 */
size_t
conf_restart_changes(const struct config *a, const struct config *b,
    int skip_listen, char *buf, size_t len)
{
	size_t	i, n = 0;

	if (len > 0)
		buf[0] = '\0';
	if (!skip_listen && conf_listen_differs(a, b)) {
		conf_list_add(buf, len, "listen");
		n++;
	}
	for (i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++) {
		const struct conf_key *k = &conf_keys[i];

		if (k->live || k->kind == CONF_LISTEN)
			continue;
		/* Following max-clients, it changed with it: named once. */
		if (k->off == offsetof(struct config, max_users) &&
		    a->max_users_auto && b->max_users_auto)
			continue;
		if ((k->kind == CONF_SIZE &&
		    *(const size_t *)(const void *)((const char *)a + k->off) !=
		    *(const size_t *)(const void *)((const char *)b + k->off)) ||
		    (k->kind == CONF_STRING &&
		    strcmp((const char *)a + k->off, (const char *)b + k->off))) {
			conf_list_add(buf, len, k->key);
			n++;
		}
	}
	return n;
}

/*
 * Copies every setting that may change without a restart from next to
 * cur (SIGHUP): the table says which, so a new live key needs no code.
 */
void
conf_apply_live(struct config *cur, const struct config *next)
{
	const struct conf_key	*k;
	size_t			 i;

	for (i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++) {
		k = &conf_keys[i];
		if (!k->live)
			continue;
		if (k->kind == CONF_SIZE)
			memcpy((char *)cur + k->off,
			    (const char *)next + k->off, sizeof(size_t));
		else if (k->kind == CONF_STRING)
			(void)strlcpy((char *)cur + k->off,
			    (const char *)next + k->off, k->len);
		else if (k->kind == CONF_LOG_LEVEL)
			cur->log_level = next->log_level;
	}
}

/*
 * The live settings as "log-level info, max-line 4096, ...": what a
 * reload leaves running, for its log line and talknetctl's answer.  The
 * TLS files are left out: master_tls_reload reports those.
 */
void
conf_live_summary(const struct config *cfg, char *buf, size_t len)
{
	const struct conf_key	*k;
	size_t			 i, v;
	char			 one[64];

	(void)snprintf(buf, len, "log-level %s",
	    log_level_name(cfg->log_level));
	for (i = 0; i < sizeof(conf_keys) / sizeof(conf_keys[0]); i++) {
		k = &conf_keys[i];
		if (!k->live || k->kind != CONF_SIZE)
			continue;
		memcpy(&v, (const char *)cfg + k->off, sizeof(v));
		(void)snprintf(one, sizeof(one), ", %s %zu", k->key, v);
		(void)strlcat(buf, one, len);
	}
}

/* The settings a reload may change, as the hub and workers take them. */
void
conf_live_limits(const struct config *cfg, struct shm_live *l)
{
	memset(l, 0, sizeof(*l));
	l->log_level = (uint32_t)cfg->log_level;
	l->max_line = cfg->max_line;
	l->max_queue = cfg->max_queue;
	l->max_gather = (uint32_t)cfg->max_gather;
	l->login_timeout = cfg->login_timeout;
	l->rate_limit = cfg->rate_limit;
	l->rate_burst = cfg->rate_burst;
	l->stall_timeout = cfg->stall_timeout;
	l->pace_min_rate = cfg->pace_min_rate;
	l->pace_window_ms = cfg->pace_window_ms;
	l->reloads = cfg->reloads;
}
