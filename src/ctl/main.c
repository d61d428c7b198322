/*
 * main.c: talknetctl, to see and steer a running talknetd through its control
 * socket (control_wire.h): show stats, users and rooms, kick a user, reload,
 * set the log level.  Aligned text by default, JSON with --json.
 * Exit 0 on success, 1 when the daemon refused or cannot be reached,
 * 2 on a bad invocation.
 */
#include "config.h"

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <locale.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "buf.h"
#include "clock.h"
#include "compat.h"
#include "control_wire.h"
#include "log.h"
#include "xmalloc.h"

#define EXIT_REFUSED	1
#define EXIT_USAGE	2
#define CTL_WAIT_MS	30000		/* no answer for that long: give up */
#define CTL_MAX_COLS	64

/* The answer, as it arrives. */
static struct {
	char		 kind[16];		/* "table", "record", or "" */
	char		*cols[CTL_MAX_COLS];	/* without the "T:" */
	char		 types[CTL_MAX_COLS];	/* 's', 'n' or 'l' */
	size_t		 ncols;
	char		***rows;		/* rows[r][c] */
	size_t		 nrows;
	int		 ok;
	char		**msgs;
	size_t		 nmsgs;
} ans;

/* Prints the synopsis to f. */
static void
usage(FILE *f)
{
	(void)fprintf(f,
	    "usage: talknetctl [-hj] [-s PATH] COMMAND\n"
	    "  -s, --socket PATH  the daemon's control socket (default "
	    TALKNETD_CONTROL_PATH ")\n"
	    "  -j, --json         print JSON, for scripts\n"
	    "  -h, --help         show this help\n"
	    "commands:\n"
	    "  show stats         uptime, clients, rooms, messages, ends, "
	    "limit hits\n"
	    "  show users         who is connected, from where, since when\n"
	    "  show rooms         each room, its members and invitations\n"
	    "  show cluster       the nodes: clients, stream lag, heartbeat\n"
	    "  kick USER [REASON] close that user's connection\n"
	    "  reload             re-read the configuration (as SIGHUP)\n"
	    "  log level LEVEL    error, warning, info or debug\n");
}

/* A bad invocation: says why, then the synopsis, and exits 2. */
static void __attribute__((noreturn))
bad_usage(const char *why, const char *arg)
{
	(void)fprintf(stderr, "talknetctl: %s%s%s\n", why, arg ? ": " : "",
	    arg ? arg : "");
	usage(stderr);
	exit(EXIT_USAGE);
}

/* Checks the command's words before anything is sent. */
static void
check_command(int argc, char **argv)
{
	if (argc == 0)
		bad_usage("no command", NULL);
	if (strcmp(argv[0], "show") == 0) {
		if (argc != 2 || (strcmp(argv[1], "stats") != 0 &&
		    strcmp(argv[1], "users") != 0 &&
		    strcmp(argv[1], "rooms") != 0 &&
		    strcmp(argv[1], "cluster") != 0))
			bad_usage("show what? stats, users, rooms or cluster",
			    NULL);
	} else if (strcmp(argv[0], "kick") == 0) {
		if (argc < 2 || argv[1][0] == '\0')
			bad_usage("kick whom?", NULL);
	} else if (strcmp(argv[0], "reload") == 0) {
		if (argc != 1)
			bad_usage("reload takes no argument", NULL);
	} else if (strcmp(argv[0], "log") == 0) {
		if (argc != 3 || strcmp(argv[1], "level") != 0)
			bad_usage("usage: log level LEVEL", NULL);
	} else
		bad_usage("unknown command", argv[0]);
}

/* Builds the request: the words; a kick's reason is one string. */
static void
build_request(struct buf *b, int argc, char **argv)
{
	struct buf	reason;
	size_t		off;
	int		i, n = argc;

	buf_init(&reason);
	if (strcmp(argv[0], "kick") == 0 && argc > 2) {
		for (i = 2; i < argc; i++) {
			if (i > 2)
				xbuf_append(&reason, " ", 1);
			xbuf_append(&reason, argv[i], strlen(argv[i]));
		}
		n = 2;
	}
	off = ctl_begin(b, CTL_REQUEST);
	for (i = 0; i < n; i++)
		ctl_put_str(b, argv[i], strlen(argv[i]));
	if (buf_pending(&reason) > 0)
		ctl_put_str(b, buf_head(&reason), buf_pending(&reason));
	ctl_end(b, off);
	if (buf_pending(b) > CTL_MAX_REQUEST)
		bad_usage("the command is too long", NULL);
	buf_free(&reason);
}

/* Connects to the daemon, or exits 1 saying why in plain words. */
static int
connect_daemon(const char *path)
{
	struct sockaddr_un	sun;
	int			fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path))
		bad_usage("socket path too long", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		(void)fprintf(stderr, "talknetctl: socket: %s\n",
		    strerror(errno));
		exit(EXIT_REFUSED);
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	switch (errno) {
	case ENOENT:
	case ECONNREFUSED:
		(void)fprintf(stderr, "talknetctl: no talknetd is running "
		    "at %s (%s); use -s PATH for another socket\n", path,
		    errno == ENOENT ? "no such socket" : "nobody answers");
		break;
	case EACCES:
	case EPERM:
		(void)fprintf(stderr, "talknetctl: %s: permission denied "
		    "(only root and the daemon's user may use it)\n", path);
		break;
	default:
		(void)fprintf(stderr, "talknetctl: %s: %s\n", path,
		    strerror(errno));
	}
	exit(EXIT_REFUSED);
}

/* A copy of a C string, or the end. */
static char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL)
		fatal("strdup");
	return p;
}

/* A string of a frame, copied and NUL-terminated. */
static char *
dup_str(const struct str *s)
{
	char	*p = xcalloc(1, s->len + 1);

	memcpy(p, s->p, s->len);
	p[s->len] = '\0';
	return p;
}

/* Takes one answer frame in; returns 1 at END, 0 for more, -1 if bad. */
static int
take_frame(const struct ctl_hdr *h, const char *p)
{
	struct str	*s;
	long		 n, i;

	if ((n = ctl_get_strs(p, h->len, NULL, 0)) == -1)
		return -1;
	s = xcalloc((size_t)n + 1, sizeof(*s));
	(void)ctl_get_strs(p, h->len, s, (size_t)n);
	switch (h->type) {
	case CTL_COLUMNS:
		if (n < 1 || n - 1 > CTL_MAX_COLS || ans.kind[0] != '\0' ||
		    s[0].len >= sizeof(ans.kind))
			goto bad;
		memcpy(ans.kind, s[0].p, s[0].len);
		for (i = 1; i < n; i++) {
			if (s[i].len < 3 || s[i].p[1] != ':' ||
			    strchr("snl", s[i].p[0]) == NULL)
				goto bad;
			ans.types[i - 1] = s[i].p[0];
			s[i].p += 2;
			s[i].len -= 2;
			ans.cols[i - 1] = dup_str(&s[i]);
		}
		ans.ncols = (size_t)n - 1;
		break;
	case CTL_ROW:
		if (ans.kind[0] == '\0' || (size_t)n != ans.ncols)
			goto bad;
		ans.rows = xreallocarray(ans.rows, ans.nrows + 1,
		    sizeof(*ans.rows));
		ans.rows[ans.nrows] = xcalloc(ans.ncols, sizeof(char *));
		for (i = 0; i < n; i++)
			ans.rows[ans.nrows][i] = dup_str(&s[i]);
		ans.nrows++;
		break;
	case CTL_END:
		if (n < 1)
			goto bad;
		ans.ok = s[0].len == 2 && memcmp(s[0].p, "ok", 2) == 0;
		ans.msgs = xcalloc((size_t)n, sizeof(char *));
		for (i = 1; i < n; i++)
			ans.msgs[ans.nmsgs++] = dup_str(&s[i]);
		free(s);
		return 1;
	default:
		goto bad;
	}
	free(s);
	return 0;
bad:
	free(s);
	return -1;
}

/* Sends the request and reads the answer to its END, or exits 1. */
static void
exchange(int fd, struct buf *req)
{
	struct ctl_hdr	 h;
	struct pollfd	 pfd;
	struct buf	 in;
	const char	*p;
	char		 rb[65536];
	ssize_t		 n;
	int		 r;

	while (buf_pending(req) > 0) {
		n = send(fd, buf_head(req), buf_pending(req), MSG_NOSIGNAL);
		if (n == -1 && errno == EINTR)
			continue;
		/* Turned away at once: its answer says why. */
		if (n == -1 && (errno == EPIPE || errno == ECONNRESET))
			break;
		if (n == -1) {
			(void)fprintf(stderr, "talknetctl: send: %s\n",
			    strerror(errno));
			exit(EXIT_REFUSED);
		}
		buf_drain(req, (size_t)n);
	}
	buf_init(&in);
	for (;;) {
		while ((r = ctl_get(&in, CTL_MAX_ANSWER, &h, &p)) == 1)
			if ((r = take_frame(&h, p)) != 0)
				break;
		if (r == 1) {
			buf_free(&in);
			return;
		}
		if (r == -1) {
			(void)fprintf(stderr, "talknetctl: a malformed answer "
			    "from the daemon\n");
			exit(EXIT_REFUSED);
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if ((r = poll(&pfd, 1, CTL_WAIT_MS)) == -1 && errno == EINTR)
			continue;
		if (r == 0) {
			(void)fprintf(stderr, "talknetctl: no answer in %d s\n",
			    CTL_WAIT_MS / 1000);
			exit(EXIT_REFUSED);
		}
		n = read(fd, rb, sizeof(rb));
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == ECONNRESET)
			n = 0;
		if (n <= 0) {
			(void)fprintf(stderr, "talknetctl: the daemon closed "
			    "the connection without an answer\n");
			exit(EXIT_REFUSED);
		}
		xbuf_append(&in, rb, (size_t)n);
	}
}

/*
 * The code point at s, its length in *n (1 to 4); -1 (and *n = 1) for
 * a byte that does not start a valid UTF-8 sequence.
 */
static long
u8_next(const unsigned char *s, size_t *n)
{
	uint32_t	cp, min;
	size_t		len, i;

	*n = 1;
	if (s[0] < 0x80)
		return s[0];
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else
		return -1;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)	/* a NUL ends it here too */
			return -1;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*n = len;
	return (long)cp;
}

/*
 * Whether a code point must not reach a terminal raw: C0, DEL and C1
 * controls, and the invisible format characters (bidi overrides and
 * isolates, zero widths, tags) with which a name the server accepts
 * could pass for another in a table: "\u202enimda" shows as "admin".
 */
static int
u8_hidden(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x61c ||
	    cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
	    (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) ||
	    cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
	    (cp >= 0xe0000 && cp <= 0xe007f);
}

/*
 * Text safe for a terminal: bytes that are not UTF-8 as \ooo, hidden
 * code points (u8_hidden) as \uXXXX or \UXXXXXXXX; the rest is kept.
 * Returns the copy, and its width in terminal columns in *width.
 */
static char *
term_safe(const char *s, size_t *width)
{
	const unsigned char	*u = (const unsigned char *)s;
	char			*d, *p;
	size_t			 w = 0, n;
	long			 cp;
	int			 cw;

	/* At most 4 bytes out per byte in: "\ooo", "\uXXXX", "\U...". */
	p = d = xcalloc(4, strlen(s) + 1);
	while (*u != '\0') {
		cp = u8_next(u, &n);
		if (cp == -1)
			cw = snprintf(p, 5, "\\%03o", *u);
		else if (u8_hidden((uint32_t)cp))
			cw = snprintf(p, n * 4 + 1, cp > 0xffff ? "\\U%08lx" :
			    cp > 0xff ? "\\u%04lx" : "\\%03lo", cp);
		else {
			memcpy(p, u, n);
			cw = wcwidth((wchar_t)cp);
			w += cw < 0 ? 1 : (size_t)cw;
			p += n;
			u += n;
			continue;
		}
		p += cw;
		w += (size_t)cw;
		u += n;
	}
	*p = '\0';
	*width = w;
	return d;
}

/* A cell as text: a list's items joined with ",". */
static char *
cell_text(const char *v, char type, size_t *width)
{
	char	*t, *s, *q;

	if (type != 'l')
		return term_safe(v, width);
	t = xstrdup(v);
	for (q = t; *q != '\0'; q++)
		if (*q == '\n')
			*q = ',';
	s = term_safe(t, width);
	free(t);
	return s;
}

/* Prints a table: a header, then aligned rows; numbers to the right. */
static void
print_table(void)
{
	size_t	*w, cw, r, c;
	char	*t;

	w = xcalloc(ans.ncols, sizeof(*w));
	for (c = 0; c < ans.ncols; c++)
		w[c] = strlen(ans.cols[c]);
	for (r = 0; r < ans.nrows; r++)
		for (c = 0; c < ans.ncols; c++) {
			free(cell_text(ans.rows[r][c], ans.types[c], &cw));
			if (cw > w[c])
				w[c] = cw;
		}
	for (c = 0; c < ans.ncols; c++) {
		if (c + 1 < ans.ncols)
			(void)printf("%-*s  ", (int)w[c], ans.cols[c]);
		else
			(void)printf("%s\n", ans.cols[c]);
	}
	for (r = 0; r < ans.nrows; r++) {
		for (c = 0; c < ans.ncols; c++) {
			t = cell_text(ans.rows[r][c], ans.types[c], &cw);
			if (ans.types[c] == 'n')
				(void)printf("%*s%s", (int)(w[c] - cw), "", t);
			else if (c + 1 < ans.ncols)
				(void)printf("%s%*s", t, (int)(w[c] - cw), "");
			else
				(void)printf("%s", t);
			(void)printf(c + 1 < ans.ncols ? "  " : "\n");
			free(t);
		}
	}
	free(w);
}

/* Prints a record: one "key  value" line per column. */
static void
print_record(void)
{
	size_t	w = 0, cw, c;
	char	*t;

	if (ans.nrows != 1)
		return;
	for (c = 0; c < ans.ncols; c++)
		if (strlen(ans.cols[c]) > w)
			w = strlen(ans.cols[c]);
	for (c = 0; c < ans.ncols; c++) {
		t = cell_text(ans.rows[0][c], ans.types[c], &cw);
		(void)printf("%-*s  %s\n", (int)w, ans.cols[c], t);
		free(t);
	}
}

/*
 * Prints s as a JSON string, always valid: a byte that is not UTF-8 as
 * U+FFFD, controls and hidden code points (u8_hidden) as \u escapes.
 */
static void
json_str(const char *s)
{
	const unsigned char	*u = (const unsigned char *)s;
	size_t			 n;
	long			 cp;

	(void)putchar('"');
	for (; *u != '\0'; u += n) {
		cp = u8_next(u, &n);
		if (cp == '"' || cp == '\\')
			(void)printf("\\%c", (int)cp);
		else if (cp == -1)
			(void)printf("\\ufffd");
		else if (u8_hidden((uint32_t)cp) && cp > 0xffff)
			(void)printf("\\u%04lx\\u%04lx",
			    0xd800 + ((cp - 0x10000) >> 10),
			    0xdc00 + ((cp - 0x10000) & 0x3ff));
		else if (u8_hidden((uint32_t)cp))
			(void)printf("\\u%04lx", cp);
		else
			(void)fwrite(u, 1, n, stdout);
	}
	(void)putchar('"');
}

/* Prints one cell as JSON: a number, a string, or a list of strings. */
static void
json_cell(const char *v, char type)
{
	const char	*p, *nl;
	char		*item;

	if (type == 'n' && v[0] != '\0' && strspn(v, "0123456789") ==
	    strlen(v)) {
		(void)printf("%s", v);
		return;
	}
	if (type != 'l') {
		json_str(v);
		return;
	}
	(void)putchar('[');
	for (p = v; *p != '\0'; p = nl != NULL ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		item = nl != NULL ? strndup(p, (size_t)(nl - p)) : xstrdup(p);
		if (item == NULL)
			fatal("strndup");
		if (p != v)
			(void)putchar(',');
		json_str(item);
		free(item);
		if (nl == NULL)
			break;
	}
	(void)putchar(']');
}

/* Prints open, the n items that fn(ctx, i) prints, commas between, close. */
static void
json_list(int open, int close, size_t n, void (*fn)(const void *, size_t),
    const void *ctx)
{
	size_t	i;

	(void)putchar(open);
	for (i = 0; i < n; i++) {
		if (i > 0)
			(void)putchar(',');
		fn(ctx, i);
	}
	(void)putchar(close);
}

/* Prints column c of the row ctx as a JSON member. */
static void
json_field(const void *ctx, size_t c)
{
	char *const	*row = ctx;

	json_str(ans.cols[c]);
	(void)putchar(':');
	json_cell(row[c], ans.types[c]);
}

/* Prints one row as a JSON object. */
static void
json_row(const void *ctx __unused, size_t r)
{
	json_list('{', '}', ans.ncols, json_field, ans.rows[r]);
}

/* Prints message i of the answer as a JSON string. */
static void
json_msg(const void *ctx __unused, size_t i)
{
	json_str(ans.msgs[i]);
}

/* Prints the whole answer as one JSON object. */
static void
print_json(void)
{
	(void)printf("{\"ok\":%s,\"message\":", ans.ok ? "true" : "false");
	json_list('[', ']', ans.nmsgs, json_msg, NULL);
	(void)printf(",\"data\":");
	if (strcmp(ans.kind, "record") == 0 && ans.nrows == 1)
		json_row(NULL, 0);
	else if (strcmp(ans.kind, "table") == 0)
		json_list('[', ']', ans.nrows, json_row, NULL);
	else
		(void)printf("null");
	(void)printf("}\n");
}

/* Runs one command against the daemon. */
int
main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "socket",	required_argument,	NULL, 's' },
		{ "json",	no_argument,		NULL, 'j' },
		{ "help",	no_argument,		NULL, 'h' },
		{ NULL,		0,			NULL, 0 }
	};
	const char	*path = TALKNETD_CONTROL_PATH;
	struct buf	 req;
	size_t		 i, w;
	char		*t;
	int		 ch, json = 0, fd;

	log_init(1, LOG_LEVEL_WARNING);
	/* The daemon's text is UTF-8 whatever the locale: for wcwidth. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		(void)setlocale(LC_CTYPE, "");
	opterr = 0;
	/* "+": the command's own words may start with '-' (a reason). */
	while ((ch = getopt_long(argc, argv, "+:hjs:", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			path = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			bad_usage("option needs an argument", argv[optind - 1]);
		default:
			bad_usage("unknown option", argv[optind - 1]);
		}
	}
	argc -= optind;
	argv += optind;
	check_command(argc, argv);
	buf_init(&req);
	build_request(&req, argc, argv);
	fd = connect_daemon(path);
	exchange(fd, &req);
	buf_free(&req);
	close(fd);
	if (json)
		print_json();
	else if (ans.ok) {
		if (strcmp(ans.kind, "record") == 0)
			print_record();
		else if (strcmp(ans.kind, "table") == 0)
			print_table();
	}
	for (i = 0; !json && i < ans.nmsgs; i++) {
		t = term_safe(ans.msgs[i], &w);
		if (ans.ok)
			(void)printf("%s\n", t);
		else
			(void)fprintf(stderr, "talknetctl: %s\n", t);
		free(t);
	}
	if (!ans.ok && json)
		(void)fprintf(stderr, "talknetctl: refused\n");
	return ans.ok ? 0 : EXIT_REFUSED;
}
