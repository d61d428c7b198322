/*
 * log.c: the daemon's logger.  Every process logs through it; lines carry
 * the pid so the roles can be told apart.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static int	log_foreground = 1;
static int	log_level = LOG_LEVEL_INFO;

/* The levels' names, in log lines, options, the config and talknetctl. */
static const char *const log_names[] = {
	"error", "warning", "info", "debug"
};
static const int log_prio[] = {
	LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG
};

/* Sets the destination (stderr when foreground) and the highest level. */
void
log_init(int foreground, int level)
{
	log_foreground = foreground;
	log_level = level;
	if (!foreground)
		openlog("talknetd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

/* Changes the highest level logged (SIGHUP). */
void
log_set_level(int level)
{
	log_level = level;
}

static void	log_vwrite(int, int, const char *, va_list)
		    __attribute__((format(printf, 3, 0)));

/* Formats one line and sends it where the logger points. */
static void
log_vwrite(int level, int with_errno, const char *fmt, va_list ap)
{
	char	msg[1024];
	int	saved = errno;

	if (level > log_level)
		return;
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		(void)strlcat(msg, ": ", sizeof(msg));
		(void)strlcat(msg, strerror(saved), sizeof(msg));
	}
	if (log_foreground)
		(void)fprintf(stderr, "talknetd[%ld]: %s: %s\n",
		    (long)getpid(), log_names[level], msg);
	else
		syslog(log_prio[level], "%s: %s", log_names[level], msg);
	errno = saved;
}

/* Writes the escaped form of byte c into e (5 bytes); returns its length. */
static size_t
log_escape_byte(unsigned char c, char *e)
{
	if (c >= ' ' && c <= '~' && c != '\\') {
		e[0] = (char)c;
		return 1;
	}
	if (c == '\\' || c == '\n' || c == '\r' || c == '\t') {
		e[0] = '\\';
		e[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' :
		    '\\';
		return 2;
	}
	(void)snprintf(e, 5, "\\%03o", c);
	return 4;
}

/*
 * Copies len bytes of peer data into dst as one printable line: a byte
 * outside ' '..'~' becomes \n, \r, \t or \ooo, and a backslash \\, so
 * a hostile name or address can neither add a line to the log nor send
 * a terminal escape.  Too long a value ends in "...".  Returns dst.
 */
const char *
log_escape(const void *p, size_t len, char *dst, size_t dstlen)
{
	const unsigned char	*s = p;
	char			 e[5];
	size_t			 i, o = 0, n, total = 0, room;

	if (dstlen == 0)
		return dst;
	for (i = 0; i < len; i++)
		total += log_escape_byte(s[i], e);
	/* Cut short: keep room for "..." after the last whole escape. */
	room = total < dstlen ? dstlen - 1 : dstlen > 3 ? dstlen - 4 : 0;
	for (i = 0; i < len; i++) {
		n = log_escape_byte(s[i], e);
		if (o + n > room)
			break;
		memcpy(dst + o, e, n);
		o += n;
	}
	if (i < len && dstlen > 3) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

/* Logs one line at level, with strerror(errno) appended if with_errno. */
void
log_at(int level, int with_errno, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(level, with_errno, fmt, ap);
	va_end(ap);
}

/* Ends the process after fatal() or fatalx() has logged why. */
void
log_exit(void)
{
	exit(1);
}

/* A level's name, as options, the config and talknetctl spell it. */
const char *
log_level_name(int level)
{
	if (level < 0 || (size_t)level >= sizeof(log_names) /
	    sizeof(log_names[0]))
		return "unknown";
	return log_names[level];
}

/* The level a name stands for, or -1. */
int
log_level_parse(const char *name)
{
	size_t	i;

	for (i = 0; i < sizeof(log_names) / sizeof(log_names[0]);
	    i++)
		if (strcmp(name, log_names[i]) == 0)
			return (int)i;
	return -1;
}

#ifndef HAVE_SIGABBREV_NP
/* The signals a child of talknetd may die of, for libcs without names. */
static const struct {
	int		 sig;
	const char	*name;
} log_signals[] = {
	{ SIGHUP, "HUP" }, { SIGINT, "INT" }, { SIGQUIT, "QUIT" },
	{ SIGILL, "ILL" }, { SIGTRAP, "TRAP" }, { SIGABRT, "ABRT" },
	{ SIGBUS, "BUS" }, { SIGFPE, "FPE" }, { SIGKILL, "KILL" },
	{ SIGUSR1, "USR1" }, { SIGSEGV, "SEGV" }, { SIGUSR2, "USR2" },
	{ SIGPIPE, "PIPE" }, { SIGALRM, "ALRM" }, { SIGTERM, "TERM" },
	{ SIGXCPU, "XCPU" }, { SIGXFSZ, "XFSZ" }, { SIGSYS, "SYS" },
};
#endif

/*
 * A signal's name as kill(1) and the man pages write it, "SIGSEGV";
 * one without a name is "signal 40", written in buf.
 */
const char *
log_signame(int sig, char *buf, size_t len)
{
	const char	*abbrev = NULL;
#ifdef HAVE_SIGABBREV_NP
	abbrev = sigabbrev_np(sig);
#else
	size_t		 i;

	for (i = 0; i < sizeof(log_signals) / sizeof(log_signals[0]); i++)
		if (log_signals[i].sig == sig)
			abbrev = log_signals[i].name;
#endif
	if (abbrev != NULL)
		(void)snprintf(buf, len, "SIG%s", abbrev);
	else
		(void)snprintf(buf, len, "signal %d", sig);
	return buf;
}

/*
 * What a status from waitpid says, for a log line: "exited with status
 * 1", "killed by SIGSEGV (core dumped)".  Never a raw number such as
 * "status 0x9", which an admin would have to decode.
 */
const char *
log_wait_status(int status, char *buf, size_t len)
{
	char	sig[LOG_STATUS_LEN];

	if (WIFEXITED(status))
		(void)snprintf(buf, len, "exited with status %d",
		    WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		(void)snprintf(buf, len, "killed by %s%s",
		    log_signame(WTERMSIG(status), sig, sizeof(sig)),
		    WCOREDUMP(status) ? " (core dumped)" : "");
	else if (WIFSTOPPED(status))
		(void)snprintf(buf, len, "stopped by %s",
		    log_signame(WSTOPSIG(status), sig, sizeof(sig)));
	else
		(void)snprintf(buf, len, "ended (wait status %d)", status);
	return buf;
}
