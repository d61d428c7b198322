/*
 * conf.h: the daemon's settings, from the command line and from the
 * configuration file.  Both go through conf_set, so a key means the same
 * thing in either place and is checked the same way.
 */
#ifndef TALKNETD_CONF_H
#define TALKNETD_CONF_H

#include <stddef.h>

struct config;
struct shm_live;

/* Where the cluster's Redis is, as --cluster gives it. */
struct cluster_addr {
	int		 unix_path;	/* path, not host and port */
	char		 host[256];	/* or the Unix socket's path */
	int		 port;
	int		 db;		/* SELECT db; 0: none */
};

/* Fills cfg with the defaults of every setting. */
void	 conf_defaults(struct config *);
/*
 * Sets one key (a long option name: "max-clients") from its text value.
 * Returns 0, or -1 with the reason in err ("abc: invalid (1 to 100)").
 */
int	 conf_set(struct config *, const char *key, const char *value,
	    char *err, size_t errlen);
/*
 * Reads "key = value" lines ('#' starts a comment) from path into cfg.
 * Returns 0, or -1 with "PATH:LINE: key: reason" in err.
 */
int	 conf_load(struct config *, const char *path, char *err,
	    size_t errlen);
/* Whether a key exists and whether it may change without a restart. */
int	 conf_known(const char *key);
int	 conf_live(const char *key);
/*
 * Names every setting that differs between two configurations and
 * needs a restart, comma separated in buf; returns how many.  With
 * skip_listen the addresses are left out (systemd passed the sockets).
 */
size_t	 conf_restart_changes(const struct config *, const struct config *,
	    int skip_listen, char *buf, size_t len);

/*
 * Parses a --cluster value: redis://HOST:PORT[/DB] or unix:PATH.
 * Returns 0, or -1 with the reason in err.
 */
int	 conf_cluster_parse(const char *, struct cluster_addr *, char *err,
	    size_t errlen);

/* Copies the settings that may change without a restart (SIGHUP). */
void	 conf_apply_live(struct config *cur, const struct config *next);
/* The live settings, "log-level info, max-line 4096, ...", into buf. */
void	 conf_live_summary(const struct config *, char *, size_t);
/* The settings a reload may change, as the hub and workers take them. */
void	 conf_live_limits(const struct config *, struct shm_live *);

#endif
