/*
 * edit_basic.c: the terminal line editor when talknet is built
 * without libedit.  The cursor always sits at the end of the line:
 * Backspace, ^U, ^W, ^L, ^C and ^D, with no history and no cursor keys
 * (their escape sequences are read and dropped).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <sys/ioctl.h>

#include <err.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "client.h"

static struct {
	int		 active;
	char		 line[EDIT_MAX_LINE];
	size_t		 len;
	int		 esc;		/* 1 after ESC, 2 inside CSI or SS3 */
	struct buf	 pend;		/* keys read and not yet handled */
	size_t		 shown;		/* columns now drawn, prompt included */
	int		 visible;	/* prompt and line are on the screen */
	unsigned int	 cols;
} ed;

static struct termios	 tty_saved;

/* Reads the terminal width, 80 if it cannot be known. */
static unsigned int
tty_cols(void)
{
	struct winsize	ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == -1 || ws.ws_col == 0)
		return 80;
	return ws.ws_col;
}

/* Switches the terminal to byte-at-a-time input without echo. */
int
edit_start(struct client *c)
{
	struct termios	t;

	if (tcgetattr(STDIN_FILENO, &tty_saved) == -1)
		return -1;
	t = tty_saved;
	t.c_iflag &= ~(ICRNL | INLCR | IGNCR | IXON | ISTRIP);
	t.c_lflag &= ~(ICANON | ECHO | ECHONL | ISIG | IEXTEN);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == -1)
		return -1;
	buf_init(&ed.pend);
	ed.active = 1;
	ed.cols = tty_cols();
	edit_show(c);
	return 0;
}

/* Puts the terminal back the way it was; safe to call more than once. */
void
edit_stop(struct client *c)
{
	if (!ed.active)
		return;
	edit_hide(c);
	out_flush();
	/* Best effort: there is nothing left to do if this fails. */
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
	ed.active = 0;
}

/* Draws the prompt and the typed line. */
void
edit_show(struct client *c)
{
	char		 tmp[NAME_MAX_BYTES + 4];
	const char	*prompt;

	if (!ed.active || ed.visible)
		return;
	prompt = edit_prompt_text(c, tmp, sizeof(tmp));
	fputs(prompt, stdout);
	fwrite(ed.line, 1, ed.len, stdout);
	ed.shown = text_cols(prompt, strlen(prompt)) +
	    text_cols(ed.line, ed.len);
	ed.visible = 1;
	out_flush();
}

/* Erases the prompt and the typed line, even when they wrapped. */
void
edit_hide(struct client *c)
{
	size_t	up;

	if (!ed.active || !ed.visible)
		return;
	up = ed.shown > 0 ? (ed.shown - 1) / ed.cols : 0;
	if (up > 0)
		printf("\033[%zuA", up);
	fputs("\r\033[J", stdout);
	ed.visible = 0;
	ed.shown = 0;
}

/* Follows a change of state: the prompt says what is expected. */
void
edit_prompt(struct client *c)
{
	edit_hide(c);
	edit_show(c);
}

/* Follows a new terminal size: most terminals rewrap the line. */
void
edit_resize(struct client *c)
{
	ed.cols = tty_cols();
	edit_hide(c);
	edit_show(c);
}

/* There is no history without libedit. */
void
edit_history_add(struct client *c, const char *p, size_t len)
{
	(void)c;
	(void)p;
	(void)len;
}

/* Takes the typed line: it stays on the screen and is run. */
static void
ed_enter(struct client *c)
{
	char	line[EDIT_MAX_LINE];
	size_t	len = ed.len;

	memcpy(line, ed.line, len);
	ed.len = 0;
	/* The typed line stays above, as in a cooked terminal. */
	fputs("\n", stdout);
	ed.visible = 0;
	ed.shown = 0;
	input_line(c, line, len);
	edit_show(c);
}

/* Removes the last code point, or the last word, of the typed line. */
static void
ed_erase(int word)
{
	if (word) {
		while (ed.len > 0 && ed.line[ed.len - 1] == ' ')
			ed.len--;
		while (ed.len > 0 && ed.line[ed.len - 1] != ' ')
			ed.len--;
		return;
	}
	while (ed.len > 0) {
		ed.len--;
		if (((unsigned char)ed.line[ed.len] & 0xc0) != 0x80)
			break;
	}
}

/* Handles a control key; returns 0 if it is not one. */
static int
ed_control(struct client *c, unsigned char ch)
{
	switch (ch) {
	case '\r':
	case '\n':
		ed_enter(c);
		return 1;
	case 0x7f:	/* DEL */
	case 0x08:	/* ^H */
	case 0x17:	/* ^W */
		ed_erase(ch == 0x17);
		break;
	case 0x15:	/* ^U */
		ed.len = 0;
		break;
	case 0x0c:	/* ^L */
		edit_hide(c);
		fputs("\033[H\033[2J", stdout);
		break;
	case 0x03:	/* ^C */
	case 0x04:	/* ^D */
		if (ch == 0x04 && ed.len > 0)
			return 1;
		ed.len = 0;
		edit_hide(c);
		input_end(c);
		break;
	case 0x1b:
		ed.esc = 1;
		return 1;
	default:
		return ch < 0x20;
	}
	edit_hide(c);
	edit_show(c);
	return 1;
}

/* Handles one byte typed on the terminal. */
static void
ed_key(struct client *c, unsigned char ch)
{
	if (ed.esc == 1) {
		ed.esc = (ch == '[' || ch == 'O') ? 2 : 0;
		return;
	}
	if (ed.esc == 2) {
		if (ch >= 0x40 && ch <= 0x7e)
			ed.esc = 0;
		return;
	}
	if (ed_control(c, ch))
		return;
	if (ed.len >= sizeof(ed.line) - 1) {
		fputs("\a", stdout);
		return;
	}
	ed.line[ed.len++] = ch;
	if (ed.visible) {
		fputc(ch, stdout);
		if ((ch & 0xc0) != 0x80)
			ed.shown++;
	}
}

/* Handles the keys read so far, as far as the state lets. */
void
edit_drain(struct client *c)
{
	unsigned char	ch;

	while (buf_pending(&ed.pend) > 0 && input_wanted(c)) {
		ch = (unsigned char)buf_head(&ed.pend)[0];
		buf_drain(&ed.pend, 1);
		ed_key(c, ch);
	}
	if (buf_pending(&ed.pend) == 0 && c->in_eof && input_wanted(c)) {
		edit_hide(c);
		input_end(c);
		edit_show(c);
	}
	out_flush();
}

/* Reads keys from the terminal into the line editor. */
void
edit_read(struct client *c)
{
	char	tmp[256];
	ssize_t	n;

	n = read(STDIN_FILENO, tmp, sizeof(tmp));
	if (n == -1) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		err(1, "read stdin");
	}
	if (n == 0)
		c->in_eof = 1;
	else if (buf_append(&ed.pend, tmp, n) == -1)
		err(1, "buf_append");
	edit_drain(c);
}
