/*
 * fuzz_codec.c: libFuzzer target for the framer and the protocol codec.
 *
 * The input is the byte stream a client sends, and the end of the input
 * ends its last frame (the stream is the input and one '\n').  Its first
 * two bytes also choose the line limit and how the stream is cut into
 * reads; they stay part of the stream, so plain JSON lines work as seeds
 * as they are:
 *
 *   data[0] >= 0x80: max_line is (data[0] & 0x7f) + 1, so TOOLONG is
 *                    reached; otherwise max_line is PROTO_MAX_LINE.
 *   data[1] & 3:     0 one read, 1 one byte per read, 2 reads of 1-8
 *                    bytes, 3 reads of 1-300 bytes (sizes from a PRNG
 *                    seeded by data[0..1] and the length).
 *   data[1] & 0xc:   0xc: the framer frames lines only
 *                    (framer_lines_only, as talknet reads its input).
 *
 * Checked: the framer returns exactly the frames a plain model of the
 * framing rules of protocol.md returns over the whole stream (so never
 * an empty one nor one over max_line), says TOOLONG exactly when the
 * model does, returns the same frames as a second framer fed the whole
 * stream at once, keeps its nesting depth within FRAME_MAX_DEPTH and
 * its buffer within max_line plus one read, and goes on working after
 * framer_shrink (called between reads, as an idle worker does).  Every
 * frame goes through proto_parse_request and proto_parse_reply;
 * whatever parses is encoded again, and the encoding ends in exactly
 * one '\n', has no raw byte below 0x20, is valid UTF-8, parses back to
 * the same message field by field, and encodes back to the same bytes.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "frame.h"
#include "proto.h"
#include "request.h"
#include "utf8.h"
#include "fuzz.h"

#define FRAME_MIN_CAP	256	/* as in lib/frame.c */

/* Whether two decoded strings are the same, unset ones included. */
static int
str_same(struct str a, struct str b)
{
	if ((a.p == NULL) != (b.p == NULL) || a.len != b.len)
		return 0;
	return a.len == 0 || memcmp(a.p, b.p, a.len) == 0;
}

/* Checks parse(encode(m)) == m, field by field. */
static void
check_same_msg(const struct msg *a, const struct msg *b)
{
	size_t	i, n;

	FUZZ_CHECK(a->type == b->type);
	FUZZ_CHECK(str_same(a->username, b->username));
	FUZZ_CHECK(str_same(a->roomname, b->roomname));
	FUZZ_CHECK(str_same(a->text, b->text));
	FUZZ_CHECK(str_same(a->status, b->status));
	FUZZ_CHECK(a->st == b->st);
	FUZZ_CHECK(str_same(a->operation, b->operation));
	FUZZ_CHECK(a->op == b->op);
	FUZZ_CHECK(str_same(a->result, b->result));
	FUZZ_CHECK(a->res == b->res);
	FUZZ_CHECK(str_same(a->extra, b->extra));
	FUZZ_CHECK(a->has_extra == b->has_extra);
	FUZZ_CHECK(a->nlist == b->nlist);
	FUZZ_CHECK((a->list == NULL) == (b->list == NULL));
	n = a->nlist;
	if (a->type == MSG_USER_LIST || a->type == MSG_ROOM_USER_LIST)
		n *= 2;
	for (i = 0; i < n; i++)
		FUZZ_CHECK(str_same(a->list[i], b->list[i]));
}

/* Checks what the protocol promises about a parsed request. */
static void
check_request(const struct msg *m, const struct proto_limits *lim)
{
	const struct req_row	*row;
	struct str		 s;
	size_t			 i, k;

	FUZZ_CHECK(m->type >= MSG_REQUEST_FIRST &&
	    m->type <= MSG_REQUEST_LAST);
	if (m->username.p != NULL)
		FUZZ_CHECK(utf8_name_valid(m->username.p, m->username.len,
		    lim->max_name));
	if (m->roomname.p != NULL)
		FUZZ_CHECK(utf8_name_valid(m->roomname.p, m->roomname.len,
		    lim->max_room));
	if (m->text.p != NULL)
		FUZZ_CHECK(utf8_valid(m->text.p, m->text.len));
	/* Every argument its row names is there, and good for its kind. */
	row = req_row(m->type);
	for (k = 0; k < row->nargs; k++) {
		if (row->args[k] == ARG_NAMES) {
			FUZZ_CHECK(m->nlist >= 1 && m->list != NULL);
			for (i = 0; i < m->nlist; i++)
				FUZZ_CHECK(req_arg_valid(ARG_NAMES,
				    m->list[i].p, m->list[i].len, lim));
			continue;
		}
		s = req_get(m, row->args[k]);
		FUZZ_CHECK(s.p != NULL && req_arg_valid(row->args[k], s.p,
		    s.len, lim));
		if (row->args[k] == ARG_STATUS)
			FUZZ_CHECK(proto_status_lookup(s.p, s.len) ==
			    (int)m->st);
	}
}

/* Checks what the protocol promises about a parsed server message. */
static void
check_reply(const struct msg *m)
{
	FUZZ_CHECK(m->type > MSG_REQUEST_LAST && m->type < MSG_TYPE_COUNT);
	if (m->type == MSG_RESPONSE) {
		FUZZ_CHECK(m->operation.p != NULL && m->result.p != NULL);
		FUZZ_CHECK(m->res == proto_result_lookup(m->result.p,
		    m->result.len));
		FUZZ_CHECK(m->op == MSG_NONE ||
		    (m->op >= MSG_REQUEST_FIRST && m->op <= MSG_REQUEST_LAST));
		if (m->op != MSG_NONE)
			FUZZ_CHECK(proto_type_lookup(m->operation.p,
			    m->operation.len) == m->op);
		FUZZ_CHECK(m->has_extra == (m->extra.p != NULL));
	}
}

/*
 * Encodes m, checks the line, parses it back with pp2 and checks that
 * the result is m and encodes to the same bytes.
 */
static void
check_roundtrip(struct proto_parser *pp2, struct buf *enc,
    const struct msg *m, int request)
{
	struct msg	 m2;
	const char	*out;
	size_t		 n, i;
	int		 r;

	buf_reset(enc);
	FUZZ_CHECK(proto_encode(enc, m) == 0);
	out = buf_head(enc);
	n = buf_pending(enc);
	FUZZ_CHECK(n >= 2 && out[n - 1] == '\n');
	for (i = 0; i + 1 < n; i++)
		FUZZ_CHECK((unsigned char)out[i] >= 0x20);
	FUZZ_CHECK(utf8_valid(out, n));

	if (request)
		r = proto_parse_request(pp2, out, n - 1, &m2);
	else
		r = proto_parse_reply(pp2, out, n - 1, &m2);
	FUZZ_CHECK(r == 0);
	check_same_msg(m, &m2);

	/* The encoding is canonical: m2 encodes to the same bytes. */
	FUZZ_CHECK(proto_encode(enc, &m2) == 0);
	FUZZ_CHECK(buf_pending(enc) == 2 * n);
	out = buf_head(enc);
	FUZZ_CHECK(memcmp(out, out + n, n) == 0);
}

/* Runs one line through both parsers and the encoder. */
static void
check_line(struct proto_parser *pp, struct proto_parser *pp2,
    struct buf *enc, const char *line, size_t len)
{
	struct msg	m;

	if (proto_parse_request(pp, line, len, &m) == 0) {
		FUZZ_CHECK(utf8_valid(line, len));
		check_request(&m, &pp->lim);
		check_roundtrip(pp2, enc, &m, 1);
	} else
		FUZZ_CHECK(m.type == MSG_NONE);
	if (proto_parse_reply(pp, line, len, &m) == 0) {
		FUZZ_CHECK(utf8_valid(line, len));
		check_reply(&m);
		check_roundtrip(pp2, enc, &m, 0);
	} else
		FUZZ_CHECK(m.type == MSG_NONE);
}

/*
 * The model of the framing rules, over the whole stream: where the
 * frame at pos ends, worked out once from the stream's bytes alone, so
 * it cannot depend on how the stream was cut into reads.
 */
struct model {
	size_t	pos;	/* start of the current frame */
	size_t	end;	/* one past its last byte or terminator; 0: unknown */
	size_t	len;	/* its length without its terminator */
	int	blank;	/* 1: whitespace (space, tab, CR) only */
	int	lines;	/* 1: frames end at terminators only */
};

/* Sets md->end, md->len and md->blank for the frame at md->pos. */
static void
model_frame(struct model *md, const uint8_t *s, size_t size)
{
	size_t	i, depth = 0;
	int	object = 0, other = md->lines, instr = 0, esc = 0;
	uint8_t	c;

	for (i = md->pos; i < size; i++) {
		c = s[i];
		if (c == '\n' || c == '\0') {
			md->end = i + 1;
			md->len = i - md->pos;
			if (c == '\n' && md->len > 0 && s[i - 1] == '\r')
				md->len--;
			md->blank = !object && !other;
			return;
		}
		if (!object && !other) {
			if (c == '{') {
				object = 1;
				depth = 1;
			} else if (c != ' ' && c != '\t' && c != '\r')
				other = 1;
			continue;
		}
		if (other)
			continue;
		if (instr) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				instr = 0;
			continue;
		}
		if (c == '"')
			instr = 1;
		else if ((c == '{' || c == '[') && depth == FRAME_MAX_DEPTH)
			break;		/* the frame is cut here */
		else if (c == '{' || c == '[')
			depth++;
		else if ((c == '}' || c == ']') && --depth == 0)
			break;		/* the object closes */
	}
	/* The stream ends in '\n', so the loop broke at a frame's end. */
	FUZZ_CHECK(i < size);
	md->end = i + 1;
	md->len = i + 1 - md->pos;
	md->blank = 0;
}

/*
 * What framer_next should return once the first fed bytes of the
 * stream are read.  On FRAME_LINE sets *line and *len, and moves past
 * the frame.
 */
static enum frame_result
model_next(struct model *md, const uint8_t *s, size_t size, size_t fed,
    size_t max_line, const char **line, size_t *len)
{
	size_t	l;

	for (;;) {
		if (md->pos == fed)
			return FRAME_NONE;
		if (md->end == 0)
			model_frame(md, s, size);
		if (md->end > fed) {
			/* Not all read: TOOLONG as soon as it must be. */
			l = fed - md->pos;
			if (l > max_line + 1 ||
			    (l == max_line + 1 && s[fed - 1] != '\r'))
				return FRAME_TOOLONG;
			return FRAME_NONE;
		}
		if (md->len > max_line)
			return FRAME_TOOLONG;
		*line = (const char *)s + md->pos;
		*len = md->len;
		md->pos = md->end;
		md->end = 0;
		if (*len > 0 && !md->blank)
			return FRAME_LINE;
	}
}

/*
 * Checks the next frame of the framer fed the whole stream at once
 * against what the framer fed in reads returned (r, line, len).
 */
static void
check_whole(struct framer *whole, enum frame_result r, const char *line,
    size_t len)
{
	enum frame_result	 wr;
	const char		*wline;
	size_t			 wlen;

	wr = framer_next(whole, &wline, &wlen);
	FUZZ_CHECK(wr == r);
	if (r == FRAME_LINE)
		FUZZ_CHECK(wlen == len && memcmp(wline, line, len) == 0);
}

/*
 * Gives the buffer back as an idle worker does: nothing pending is lost,
 * and the storage goes only when nothing is pending and it outgrew keep.
 */
static void
check_shrink(struct framer *f, size_t keep)
{
	size_t	cap = f->in.cap, n = framer_pending(f);

	framer_shrink(f, keep);
	FUZZ_CHECK(framer_pending(f) == n);
	if (n == 0 && cap > keep)
		FUZZ_CHECK(f->in.data == NULL && f->in.cap == 0);
	else
		FUZZ_CHECK(f->in.cap == cap);
}

int
LLVMFuzzerTestOneInput(const uint8_t *input, size_t insize)
{
	struct framer		 f, whole;
	struct proto_parser	 pp, pp2;
	struct buf		 enc;
	enum frame_result	 r = FRAME_NONE, want_r;
	const char		*line = NULL, *want_line = NULL;
	char			*dst;
	struct model		 md;
	size_t			 max_line, fed = 0, len = 0, want_len = 0;
	size_t			 chunk, want, avail, max_want = 0, n;
	uint32_t		 rng;
	int			 mode;
	uint8_t			*data;
	size_t			 size = insize + 1;

	/* The end of the input ends the last line, as in the seeds. */
	if ((data = malloc(size)) == NULL)
		return 0;
	if (insize > 0)
		memcpy(data, input, insize);
	data[insize] = '\n';
	max_line = PROTO_MAX_LINE;
	if (insize > 0 && (input[0] & 0x80))
		max_line = (size_t)(input[0] & 0x7f) + 1;
	mode = insize > 1 ? input[1] & 3 : 0;
	memset(&md, 0, sizeof(md));
	md.lines = insize > 1 && (input[1] & 0xc) == 0xc;
	rng = ((uint32_t)(insize > 0 ? input[0] : 0) << 8 |
	    (insize > 1 ? input[1] : 0)) ^ ((uint32_t)insize << 16) ^
	    0x9e3779b9U;
	if (rng == 0)
		rng = 1;

	framer_init(&f, max_line);
	framer_init(&whole, max_line);
	if (md.lines) {
		framer_lines_only(&f);
		framer_lines_only(&whole);
	}
	FUZZ_CHECK(framer_feed(&whole, (const char *)data, size) == 0);
	proto_parser_init(&pp, NULL);
	proto_parser_init(&pp2, NULL);
	buf_init(&enc);

	while (fed < size) {
		chunk = fuzz_chunk(mode, &rng, size - fed);
		/* Read the way the daemon does: ask for room, fill part. */
		want = 1 + xorshift32(&rng) % 512;
		if (want > max_want)
			max_want = want;
		dst = framer_space(&f, want, &avail);
		FUZZ_CHECK(dst != NULL && avail >= want);
		n = chunk < avail ? chunk : avail;
		memcpy(dst, data + fed, n);
		framer_commit(&f, n);
		fed += n;
		/* An endless line never grows the buffer past one read. */
		FUZZ_CHECK(f.in.cap <= FRAME_MIN_CAP ||
		    f.in.cap <= max_line + max_want + 2);

		for (;;) {
			r = framer_next(&f, &line, &len);
			want_r = model_next(&md, data, size, fed, max_line,
			    &want_line, &want_len);
			FUZZ_CHECK(r == want_r);
			FUZZ_CHECK(f.depth <= FRAME_MAX_DEPTH);
			if (r != FRAME_NONE)
				check_whole(&whole, r, line, len);
			if (r != FRAME_LINE)
				break;
			FUZZ_CHECK(len > 0 && len <= max_line);
			FUZZ_CHECK(len == want_len &&
			    memcmp(line, want_line, len) == 0);
			check_line(&pp, &pp2, &enc, line, len);
		}
		if (r == FRAME_TOOLONG)
			break;	/* the daemon drops the client here */
		FUZZ_CHECK(framer_pending(&f) == fed - md.pos);
		/* An idle worker may give the buffer back between reads. */
		if ((xorshift32(&rng) & 7) == 0)
			check_shrink(&f, xorshift32(&rng) % 1024);
	}

	/* Fed all, the two framers are at the same place. */
	if (r != FRAME_TOOLONG) {
		FUZZ_CHECK(framer_pending(&f) == 0);
		check_whole(&whole, FRAME_NONE, NULL, 0);
	}
	buf_free(&enc);
	framer_free(&whole);
	proto_parser_free(&pp2);
	proto_parser_free(&pp);
	framer_free(&f);
	free(data);
	return 0;
}
