/*
 * log.h: one line per event, to stderr in the foreground or to syslog.
 */
#ifndef TALKNETD_LOG_H
#define TALKNETD_LOG_H

#include <stdarg.h>
#include <stddef.h>

#define LOG_LEVEL_ERROR		0
#define LOG_LEVEL_WARNING	1
#define LOG_LEVEL_INFO		2
#define LOG_LEVEL_DEBUG		3

/* Sets the destination (stderr when foreground) and the highest level. */
void	log_init(int foreground, int level);
/* A level's name ("info"), and a name's level or -1. */
const char *log_level_name(int level);
int	log_level_parse(const char *name);
/* Changes the highest level logged (SIGHUP). */
void	log_set_level(int level);
/*
 * Peer data made safe for one log line: bytes outside ' '..'~' escaped
 * as \n, \t, \ooo; cut with "..." to fit dst.  Returns dst.
 */
const char *log_escape(const void *, size_t, char *dst, size_t dstlen);
/* The size of dst that holds an escaped copy of n bytes, uncut. */
#define LOG_ESCAPED(n)		(4 * (n) + 1)
/* The size of a buffer that holds log_signame's or log_wait_status's text. */
#define LOG_STATUS_LEN		64
/* A signal's name, "SIGSEGV", or "signal 40", written in buf if need be. */
const char *log_signame(int sig, char *buf, size_t len);
/* What a wait status says: "exited with status 1", "killed by SIGKILL". */
const char *log_wait_status(int status, char *buf, size_t len);
/* Logs one line at level, with strerror(errno) appended if with_errno. */
void	log_at(int level, int with_errno, const char *, ...)
	    __attribute__((format(printf, 3, 4)));
/* Exits 1: what fatal() and fatalx() end with. */
void	log_exit(void) __attribute__((noreturn));

/* Logs a warning with strerror(errno) appended. */
#define log_warn(...)	log_at(LOG_LEVEL_WARNING, 1, __VA_ARGS__)
/* Logs a warning. */
#define log_warnx(...)	log_at(LOG_LEVEL_WARNING, 0, __VA_ARGS__)
/* Logs an ordinary event. */
#define log_info(...)	log_at(LOG_LEVEL_INFO, 0, __VA_ARGS__)
/* Logs a detail useful when debugging. */
#define log_debug(...)	log_at(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
/* Logs an impossible condition with strerror(errno) and exits 1. */
#define fatal(...)	(log_at(LOG_LEVEL_ERROR, 1, __VA_ARGS__), log_exit())
/* Logs an impossible condition and exits 1. */
#define fatalx(...)	(log_at(LOG_LEVEL_ERROR, 0, __VA_ARGS__), log_exit())

#endif
