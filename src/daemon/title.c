/*
 * title.c: process titles through libbsd's setproctitle.
 *
 * libbsd marks a title shorter than the original argv[0] with a trailing
 * " ." so the old arguments do not show; padding the title with spaces
 * past that length keeps "ps -o args" clean.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "title.h"

static size_t	title_argv0_len;

/* Remembers argv for setproctitle; call first thing in main(). */
void
title_init(int argc, char *argv[], char *envp[])
{
	title_argv0_len = argc > 0 && argv[0] != NULL ? strlen(argv[0]) : 0;
	setproctitle_init(argc, argv, envp);
}

/* Sets "talknetd: <formatted text>" as the process title. */
void
title_set(const char *fmt, ...)
{
	char	buf[256];
	size_t	len;
	va_list	ap;

	va_start(ap, fmt);
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* setproctitle puts "<progname>: " in front. */
	len = strlen(getprogname()) + 2 + strlen(buf);
	for (; len <= title_argv0_len; len++)
		if (strlcat(buf, " ", sizeof(buf)) >= sizeof(buf))
			break;
	setproctitle("%s", buf);
}
