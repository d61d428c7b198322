/*
 * systemd.c: socket activation and sd_notify, written from the
 * documented protocols so that talknetd needs no libsystemd.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "systemd.h"

/* LISTEN_FDNAMES as systemd set it: "plain:tls", one name an fd. */
static char	systemd_names[1024];

/* Returns how many listening sockets systemd passed, 0, or -1. */
int
systemd_listen_fds(void)
{
	const char	*pid_s, *fds_s, *errstr;
	long long	 pid, n, fd;
	int		 flags;

	pid_s = getenv("LISTEN_PID");
	fds_s = getenv("LISTEN_FDS");
	if (pid_s == NULL || fds_s == NULL)
		return 0;
	pid = strtonum(pid_s, 1, INT32_MAX, &errstr);
	if (errstr != NULL)
		return -1;
	/* The variables were meant for another process (our parent). */
	if ((pid_t)pid != getpid())
		return 0;
	n = strtonum(fds_s, 0, 64, &errstr);
	if (errstr != NULL)
		return -1;
	/* Kept for systemd_listen_name: the variable goes below. */
	if ((fds_s = getenv("LISTEN_FDNAMES")) != NULL &&
	    strlcpy(systemd_names, fds_s, sizeof(systemd_names)) >=
	    sizeof(systemd_names))
		return -1;
	(void)unsetenv("LISTEN_PID");
	(void)unsetenv("LISTEN_FDS");
	(void)unsetenv("LISTEN_FDNAMES");
	/* The fds are ours now: no child gets them by exec, and the
	 * master polls them, so they must not block. */
	for (fd = SYSTEMD_LISTEN_FDS_START; fd < SYSTEMD_LISTEN_FDS_START + n;
	    fd++) {
		if ((flags = fcntl((int)fd, F_GETFD)) == -1 ||
		    fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC) == -1)
			return -1;
		if ((flags = fcntl((int)fd, F_GETFL)) == -1 ||
		    fcntl((int)fd, F_SETFL, flags | O_NONBLOCK) == -1)
			return -1;
	}
	return (int)n;
}

/*
 * The name of the i-th socket systemd passed (FileDescriptorName=), or
 * "" when it has none.  Names never contain ':', which separates them.
 */
const char *
systemd_listen_name(int i)
{
	static char	 name[256];
	const char	*p = systemd_names, *end;
	size_t		 len;

	for (; i > 0 && p != NULL; i--)
		if ((p = strchr(p, ':')) != NULL)
			p++;
	if (p == NULL)
		return "";
	end = strchr(p, ':');
	len = end != NULL ? (size_t)(end - p) : strlen(p);
	if (len >= sizeof(name))
		return "";
	memcpy(name, p, len);
	name[len] = '\0';
	return name;
}

/* Whether LISTEN_PID and LISTEN_FDS pass sockets to this process. */
int
systemd_listen_ours(void)
{
	const char	*pid_s, *fds_s, *errstr;
	long long	 pid, n;

	if ((pid_s = getenv("LISTEN_PID")) == NULL ||
	    (fds_s = getenv("LISTEN_FDS")) == NULL)
		return 0;
	pid = strtonum(pid_s, 1, INT32_MAX, &errstr);
	if (errstr != NULL || (pid_t)pid != getpid())
		return 0;
	n = strtonum(fds_s, 0, 64, &errstr);
	return errstr == NULL && n > 0;
}

/* Sends one state line to NOTIFY_SOCKET if it is set. */
int
systemd_notify(const char *fmt, ...)
{
	struct sockaddr_un	 sun;
	const char		*path;
	char			 msg[256];
	socklen_t		 len;
	size_t			 plen;
	va_list			 ap;
	int			 fd, saved;
	ssize_t			 n;

	if ((path = getenv("NOTIFY_SOCKET")) == NULL || *path == '\0')
		return 0;
	plen = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || plen >= sizeof(sun.sun_path))
		return -1;
	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, plen);
	/* "@name" is in the abstract namespace: a leading NUL byte. */
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	/* A busy service manager must never block the master. */
	n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT,
	    (struct sockaddr *)&sun, len);
	saved = errno;
	close(fd);
	errno = saved;
	return n == -1 ? -1 : 0;
}
