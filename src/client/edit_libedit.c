/*
 * edit_libedit.c: the terminal line editor, on libedit's
 * readline-compatible callback interface.  libedit reads one key at a
 * time when poll(2) says stdin is readable, so the socket is served in
 * the same loop; an incoming message erases the prompt and the line,
 * prints, and has libedit draw them again.  History is kept in
 * $XDG_STATE_HOME/talknet/history.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <editline/readline.h>

#include "client.h"

#define KEYS_PER_WAKE	4096	/* keys handled before the socket's turn */
/*
 * libedit 3.1-20221030 sets rl_line_buffer once, to the buffer el_line()
 * converts the line into, and after each key writes rl_line_buffer[rl_end]
 * = '\0'; that buffer is realloc'd once the conversion reaches 1,020
 * bytes, and a write into freed memory then corrupts the heap.  The
 * conversion runs to the NUL of libedit's wide-character buffer, past the
 * end of the line over what longer lines left there, and a character is
 * up to 4 bytes: so no line may take more than (1,020 - 1) / 4 - 4 bytes
 * (a byte is at least a character; 4 for the last UTF-8 character).
 */
#define ED_MAX_LINE	240
#define KEY_FULL	0x1e	/* stands for a key dropped: line full */

static struct client	*ed_client;
static int		 ed_on;		/* the callback handler is installed */
static int		 ed_hidden;	/* prompt and line are erased */
static int		 ed_inline;	/* inside the line handler */
static int		 ed_eof;	/* ^D on an empty line */
static int		 ed_took;	/* the handler took a line */
static int		 ed_fresh;	/* the line is empty since then */
static char		 ed_prompt[NAME_MAX_BYTES + 4];
static char		 hist_path[PATH_MAX];
static int		 hist_size = HISTORY_DEFAULT;
static char		*hist_last;
static char		 search_for[EDIT_MAX_LINE];	/* ^R: the text */
static int		 search_at;	/* ^R: the entry last found */
static int		 searching;	/* ^R was the last key, or the one before */
static int		 ed_redraw;	/* ^R changed the line */
static int		 ed_full;	/* keys were dropped from this line */
static int		 ed_dropped;	/* the key just read was dropped */
static int		 ed_esc;	/* inside an escape sequence */
static int		 ed_warn;	/* say that the line is too long */
static int		 ed_back = -1;	/* a byte read ahead, or -1 */

/* Creates dir and its missing parents below base, mode 0700. */
static int
mkdir_under(const char *base, const char *dir)
{
	char	tmp[PATH_MAX];
	size_t	i;

	if (strlcpy(tmp, dir, sizeof(tmp)) >= sizeof(tmp))
		return -1;
	for (i = strlen(base) + 1; ; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		/* 0700: the history holds private messages. */
		if (mkdir(tmp, 0700) == -1 && errno != EEXIST)
			return -1;
		if (dir[i] == '\0')
			return 0;
		tmp[i] = '/';
	}
}

/* Finds the history file and its size; returns -1 for no file. */
static int
hist_setup(void)
{
	struct stat	 sb;
	const char	*state, *home, *size, *errstr;
	char		 dir[PATH_MAX];
	int		 n;

	if ((size = getenv("TALKNET_HISTSIZE")) != NULL && *size != '\0') {
		hist_size = (int)strtonum(size, 0, HISTORY_MAX, &errstr);
		if (errstr != NULL) {
			warnx("TALKNET_HISTSIZE is %s: %s", errstr, size);
			hist_size = HISTORY_DEFAULT;
		}
	}
	if (hist_size == 0)
		return -1;
	home = getenv("HOME");
	state = getenv("XDG_STATE_HOME");
	if (state != NULL && state[0] == '/')
		n = snprintf(dir, sizeof(dir), "%s/talknet", state);
	else if (home != NULL && home[0] == '/') {
		n = snprintf(dir, sizeof(dir), "%s/.local/state/talknet",
		    home);
		state = home;
	} else
		return -1;
	if (n < 0 || (size_t)n >= sizeof(dir) ||
	    mkdir_under(state, dir) == -1)
		return -1;
	/*
	 * The history holds private messages: a talknet directory that is
	 * another user's, or that others may write (made in advance where
	 * XDG_STATE_HOME is shared), could hand it over or swap the file
	 * for a link to one of ours.  No history then.
	 */
	if (stat(dir, &sb) == -1 || !S_ISDIR(sb.st_mode) ||
	    sb.st_uid != getuid() || (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		warnx("%s is not yours alone: no history is kept", dir);
		return -1;
	}
	n = snprintf(hist_path, sizeof(hist_path), "%s/history", dir);
	if (n < 0 || (size_t)n >= sizeof(hist_path)) {
		hist_path[0] = '\0';
		return -1;
	}
	return 0;
}

/* Writes the history, creating the file 0600 first: it is private. */
static void
hist_save(void)
{
	int	fd;

	if (hist_path[0] == '\0')
		return;
	fd = open(hist_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd == -1 || close(fd) == -1 || write_history(hist_path) != 0) {
		warnx("cannot write the history to %s", hist_path);
		hist_path[0] = '\0';
	}
}

/* Drops saved lines too long to edit safely (see ED_MAX_LINE). */
static void
hist_trim(void)
{
	HIST_ENTRY	*h;
	int		 i;

	for (i = history_length - 1; i >= 0; i--) {
		h = history_get(history_base + i);
		if (h != NULL && h->line != NULL &&
		    strlen(h->line) >= ED_MAX_LINE &&
		    (h = remove_history(i)) != NULL)
			(void)free_history_entry(h);
	}
}

/* Adds a typed command to the history; the same line twice counts once. */
void
edit_history_add(struct client *c, const char *p, size_t len)
{
	if (!c->editing || len == 0)
		return;
	if (hist_last != NULL && strlen(hist_last) == len &&
	    memcmp(hist_last, p, len) == 0)
		return;
	free(hist_last);
	if ((hist_last = strndup(p, len)) == NULL)
		err(1, "strndup");
	add_history(hist_last);
	hist_save();
}

/* Takes a line from libedit; NULL is the end of the input. */
static void
ed_line(char *line)
{
	struct client	*c = ed_client;

	ed_inline = 1;
	ed_took = 1;
	if (line == NULL)
		ed_eof = 1;
	else if (ed_full) {
		printf("\r\033[Jtalknet: line longer than %d bytes: "
		    "not sent\n", ED_MAX_LINE);
		free(line);
	} else {
		if (c->state == ST_READY)
			edit_history_add(c, line, strlen(line));
		input_line(c, line, strlen(line));
		free(line);
	}
	ed_full = 0;
	ed_inline = 0;
}

/* ^D: the end of the input on an empty line, else nothing; ^C: quit. */
static int
ed_ctrl_d(int count, int key)
{
	(void)count;
	if (rl_end == 0 || key == 3)
		ed_eof = 1;
	return 0;
}

/*
 * Returns 1 if libedit may have key ch (a byte, or the first byte of a
 * UTF-8 character): keys that could take the line past ED_MAX_LINE are
 * not passed.  Below the limit that is only keys that insert much at
 * once: ^Y with a line already typed, Tab (file name completion), M- and
 * a digit (a repeat count) and other M- keys than word moves; at the
 * limit, all but the keys that move, erase or end the line.  ESC [ and
 * ESC O sequences (cursor keys) always pass.
 */
static int
key_allowed(unsigned char ch)
{
	/* rl_end keeps the last line's length until a key comes. */
	int	full = !ed_fresh && rl_end >= ED_MAX_LINE;

	if (ed_esc == 1) {
		ed_esc = (ch == '[' || ch == 'O') ? 2 : 0;
		return ed_esc == 2 ||
		    (ch != 0 && strchr("bBfFdD\177\b", ch) != NULL);
	}
	if (ed_esc == 2) {
		if (ch >= 0x40 && ch <= 0x7e)
			ed_esc = 0;
		return 1;
	}
	if (ch == 0x1b) {
		ed_esc = 1;
		return 1;
	}
	if (ch == '\t' || (ch == 0x19 && !ed_fresh && rl_end > 0))
		return 0;
	if (!full)
		return 1;
	return ch != '\0' &&
	    strchr("\r\n\177\b\001\002\003\004\005\006\013\014\025\027",
	    ch) != NULL;
}

/* Reads one byte of the terminal, or the one put back; -1 at the end. */
static int
key_byte(void)
{
	unsigned char	ch;
	ssize_t		n;
	int		k;

	if ((k = ed_back) != -1) {
		ed_back = -1;
		return k;
	}
	while ((n = read(STDIN_FILENO, &ch, 1)) == -1 && errno == EINTR)
		;
	return n == 1 ? ch : -1;
}

/*
 * Reads a key for libedit, which takes what this returns as one wide
 * character: a UTF-8 character is read whole and returned as its code
 * point.  A key that key_allowed() refuses, or a byte that starts no
 * valid character, is replaced by KEY_FULL: at the limit it rings the
 * bell and the line will not be sent; below it, it does nothing.
 * libedit thus never holds a line long enough to corrupt its heap.
 */
static int
ed_getc(FILE *fp)
{
	int	k, more, cp, ok;

	(void)fp;
	if ((k = key_byte()) == -1)
		return EOF;
	ok = key_allowed((unsigned char)k);
	more = k >= 0xf0 && k < 0xf8 ? 3 : k >= 0xe0 ? 2 : k >= 0xc0 ? 1 : 0;
	if (k >= 0x80 && more == 0)
		ok = 0;		/* not the first byte of a character */
	cp = more == 3 ? k & 0x07 : more == 2 ? k & 0x0f : k & 0x1f;
	if (more == 0)
		cp = k;
	while (more-- > 0) {
		if ((k = key_byte()) == -1)
			return EOF;
		if ((k & 0xc0) != 0x80) {
			ed_back = k;	/* starts the next key */
			ok = 0;
			break;
		}
		cp = cp << 6 | (k & 0x3f);
	}
	if (ok)
		return cp;
	ed_dropped = !ed_fresh && rl_end >= ED_MAX_LINE;
	return KEY_FULL;
}

/* The key that stands for a key dropped: the bell, once per line. */
static int
ed_key_full(int count, int key)
{
	(void)count;
	(void)key;
	if (!ed_dropped)
		return 0;	/* ^^ typed: nothing */
	ed_dropped = 0;
	if (!ed_full) {
		fputs("\a", stdout);
		ed_warn = 1;
	}
	ed_full = 1;
	return 0;
}

/*
 * Installs the handler with the prompt of the current state.  Done again
 * after each line, outside the handler: libedit then draws the new prompt
 * on an empty line at once, not when the next key comes.
 */
static void
ed_install(struct client *c)
{
	if (ed_on)
		rl_callback_handler_remove();
	(void)edit_prompt_text(c, ed_prompt, sizeof(ed_prompt));
	rl_callback_handler_install(ed_prompt, ed_line);
	ed_on = 1;
	ed_hidden = 0;
	ed_fresh = 1;
	out_flush();
}

/*
 * ^R: replaces the line with the newest history entry that holds the
 * typed text; ^R again goes on to older ones.  libedit's own incremental
 * search keeps the Enter that ends it for a later read, which a poll loop
 * cannot see, so the search is done here.
 */
static int
ed_ctrl_r(int count, int key)
{
	HIST_ENTRY	*h;
	int		 i;

	(void)count;
	(void)key;
	if (!searching) {
		if (rl_line_buffer == NULL || rl_end <= 0 ||
		    rl_end >= ED_MAX_LINE)
			return 0;
		memcpy(search_for, rl_line_buffer, rl_end);
		search_for[rl_end] = '\0';
		search_at = history_length;
	}
	searching = 2;
	for (i = search_at - 1; i >= 0; i--) {
		h = history_get(history_base + i);
		if (h == NULL || h->line == NULL ||
		    strlen(h->line) >= ED_MAX_LINE ||
		    strstr(h->line, search_for) == NULL)
			continue;
		search_at = i;
		rl_replace_line(h->line, 0);
		rl_point = rl_end = (int)strlen(h->line);
		ed_redraw = 1;
		return 0;
	}
	fputs("\a", stdout);
	return 0;
}

/* Starts libedit on the terminal; returns -1 if it cannot. */
int
edit_start(struct client *c)
{
	ed_client = c;
	/* The client's own handlers and poll loop see every signal. */
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_readline_name = "talknet";
	rl_instream = stdin;
	rl_outstream = stdout;
	rl_getc_function = ed_getc;
	if (rl_initialize() != 0)
		return -1;
	using_history();
	if (hist_setup() == 0) {
		stifle_history(hist_size);
		if (read_history(hist_path) != 0 && errno != ENOENT)
			warnx("cannot read the history from %s", hist_path);
		hist_trim();
	}
	/*
	 * ^C is a key, as with the basic editor, not a SIGINT that would
	 * also reach the shell that waits for the client.
	 */
	(void)rl_parse_and_bind("setty -d -isig");
	(void)rl_add_defun("talknet-eof", ed_ctrl_d, 4);
	(void)rl_add_defun("talknet-quit", ed_ctrl_d, 3);
	(void)rl_add_defun("talknet-search", ed_ctrl_r, 0x12);
	(void)rl_add_defun("talknet-full", ed_key_full, KEY_FULL);
	ed_install(c);
	return 0;
}

/* Erases the prompt and the typed line, even when they wrapped. */
void
edit_hide(struct client *c)
{
	int	rows, cols;
	size_t	pos, up;

	(void)c;
	if (!ed_on || ed_hidden || ed_inline)
		return;
	rl_get_screen_size(&rows, &cols);
	if (cols <= 0)
		cols = 80;
	pos = text_cols(ed_prompt, strlen(ed_prompt));
	if (!ed_fresh && rl_line_buffer != NULL && rl_point > 0)
		pos += text_cols(rl_line_buffer, (size_t)rl_point);
	up = pos / (size_t)cols;
	if (up > 0)
		printf("\033[%zuA", up);
	fputs("\r\033[J", stdout);
	ed_hidden = 1;
}

/* Draws the prompt and the typed line again. */
void
edit_show(struct client *c)
{
	(void)c;
	if (!ed_on || !ed_hidden || ed_inline)
		return;
	ed_hidden = 0;
	rl_forced_update_display();
	out_flush();
}

/* Follows a change of state: the prompt says what is expected. */
void
edit_prompt(struct client *c)
{
	if (!ed_on || ed_inline)
		return;		/* edit_read installs it after the line */
	edit_hide(c);
	ed_install(c);
}

/* Follows a new terminal size. */
void
edit_resize(struct client *c)
{
	(void)c;
	if (ed_on)
		rl_resize_terminal();
}

/* Returns 1 if stdin has a key waiting, -1 if it hung up. */
static int
key_waiting(void)
{
	struct pollfd	pfd;

	pfd.fd = STDIN_FILENO;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 0) == -1)
		return errno == EINTR ? 0 : -1;
	if (pfd.revents & POLLIN)
		return 1;
	return (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) ? -1 : 0;
}

/* Hands the keys waiting on the terminal to libedit. */
void
edit_read(struct client *c)
{
	int	i, k;

	for (i = 0; i < KEYS_PER_WAKE && input_wanted(c); i++) {
		if ((k = key_waiting()) == -1)
			ed_eof = 1;
		if (k != 1 || ed_eof)
			break;
		ed_took = 0;
		rl_callback_read_char();
		if (searching > 0)
			searching--;
		if (ed_warn) {
			ed_warn = 0;
			edit_hide(c);
			printf("talknet: line longer than %d bytes: "
			    "Enter will not send it\n", ED_MAX_LINE);
			edit_show(c);
		}
		if (ed_redraw) {
			ed_redraw = 0;
			edit_hide(c);
			edit_show(c);
		}
		if (ed_took && ed_on)
			ed_install(c);
		else
			ed_fresh = 0;
		out_flush();
	}
	edit_drain(c);
}

/* Acts on the end of the input once the state lets it. */
void
edit_drain(struct client *c)
{
	if (ed_eof && input_wanted(c)) {
		ed_eof = 0;
		c->in_eof = 1;
		edit_hide(c);
		input_end(c);
		if (c->state != ST_QUIT)
			edit_show(c);
	}
	out_flush();
}

/* Gives the terminal back as it was and saves the history. */
void
edit_stop(struct client *c)
{
	if (!ed_on)
		return;
	edit_hide(c);
	out_flush();
	rl_callback_handler_remove();
	ed_on = 0;
}
