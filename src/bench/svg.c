/*
 * svg.c: the latency CDF chart, drawn from this run's histogram
 * and from the "cdf" of earlier --json results (--compare).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <err.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* One line of the chart: a label and its CDF points (percent, ms). */
struct series {
	char	 label[128];
	double	(*pts)[2];
	size_t	 npts;
	double	 count;
};

/* Reads a whole file, NUL-terminated; NULL on error (warned). */
static char *
read_file(const char *path)
{
	FILE	*f;
	char	*s = NULL, *ns;
	size_t	 len = 0, cap = 0, r;

	if ((f = fopen(path, "r")) == NULL) {
		warn("%s", path);
		return NULL;
	}
	for (;;) {
		if (cap - len < 65536) {
			if (cap > 64 * 1024 * 1024) {
				warnx("%s: too large", path);
				free(s);
				fclose(f);
				return NULL;
			}
			cap = cap ? cap * 2 : 131072;
			if ((ns = realloc(s, cap)) == NULL)
				err(1, "realloc");
			s = ns;
		}
		r = fread(s + len, 1, cap - len - 1, f);
		len += r;
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		warn("%s", path);
		free(s);
		fclose(f);
		return NULL;
	}
	fclose(f);
	s[len] = '\0';
	return s;
}

/* Skips JSON white space. */
static char *
json_skip_ws(char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/*
 * Finds "key": in s and returns what follows the colon, white space
 * skipped; NULL if it is not there.  Enough for our own results, written
 * compactly or pretty-printed by another tool.
 */
static char *
json_find(char *s, const char *key)
{
	char	*p = s, *q;
	size_t	 klen = strlen(key);

	while ((p = strchr(p, '"')) != NULL) {
		q = p + 1;
		if (strncmp(q, key, klen) == 0 && q[klen] == '"') {
			q = json_skip_ws(q + klen + 1);
			if (*q == ':')
				return json_skip_ws(q + 1);
		}
		p = q;
	}
	return NULL;
}

/* Loads the label and CDF of a --json result; -1 if it has none. */
static int
series_load(const char *path, struct series *sr)
{
	char		*s, *p, *q, *e;
	size_t		 i, cap = 0;
	double		(*np)[2];

	memset(sr, 0, sizeof(*sr));
	if ((s = read_file(path)) == NULL)
		return -1;
	strlcpy(sr->label, path, sizeof(sr->label));
	if ((p = json_find(s, "label")) != NULL && *p == '"') {
		for (p++, i = 0; *p != '\0' && *p != '"' &&
		    i + 1 < sizeof(sr->label); p++) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			sr->label[i++] = *p;
		}
		sr->label[i] = '\0';
	}
	if ((p = json_find(s, "latency_ms")) != NULL &&
	    (p = json_find(p, "count")) != NULL)
		sr->count = strtod(p, NULL);
	if ((p = json_find(s, "cdf")) == NULL || *p != '[') {
		warnx("%s: no \"cdf\" in it", path);
		free(s);
		return -1;
	}
	p++;
	for (;;) {
		while (*p == ',' || *p == ' ' || *p == '\t' || *p == '\n' ||
		    *p == '\r')
			p++;
		if (*p != '[')
			break;
		if (sr->npts == cap) {
			cap = cap ? cap * 2 : 256;
			if ((np = reallocarray(sr->pts, cap,
			    sizeof(*sr->pts))) == NULL)
				err(1, "reallocarray");
			sr->pts = np;
		}
		sr->pts[sr->npts][0] = strtod(p + 1, &q);
		if (q == p + 1 || *(q = json_skip_ws(q)) != ',')
			break;
		sr->pts[sr->npts][1] = strtod(q + 1, &e);
		if (e == q + 1 || *(e = json_skip_ws(e)) != ']')
			break;
		sr->npts++;
		p = e + 1;
	}
	free(s);
	if (sr->npts == 0) {
		warnx("%s: empty \"cdf\"", path);
		return -1;
	}
	return 0;
}

/* Makes a series from this run's histogram. */
static void
series_from_hist(const struct bench *b, struct series *sr)
{
	const struct hist	*h = &b->h;
	double			 x, top, p;
	size_t			 n = 0;

	memset(sr, 0, sizeof(*sr));
	bench_label(b, sr->label, sizeof(sr->label));
	sr->count = (double)h->n;
	if (h->n == 0)
		return;
	top = log10((double)h->n);
	if (top > CDF_MAX_NINES)
		top = CDF_MAX_NINES;
	if ((sr->pts = calloc((size_t)(top / CDF_STEP) + 4,
	    sizeof(*sr->pts))) == NULL)
		err(1, "calloc");
	for (x = 0; x <= top + 1e-9; x += CDF_STEP) {
		p = 1 - pow(10, -x);
		sr->pts[n][0] = 100 * p;
		sr->pts[n][1] = ns_ms(hist_quantile(h, p));
		n++;
	}
	sr->pts[n][0] = 100;
	sr->pts[n][1] = ns_ms(h->max);
	sr->npts = n + 1;
}

/* A percentile as "nines": 90% is 1, 99% is 2; 100% is the series' top. */
static double
svg_nines(const struct series *sr, double pct)
{
	double	top = sr->count > 1 ? log10(sr->count) : 1;

	if (top > CDF_MAX_NINES)
		top = CDF_MAX_NINES;
	if (pct >= 100)
		return top;
	return -log10(1 - pct / 100);
}

/* Prints text for SVG, with <, > and & escaped. */
static void
svg_text(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '<')
			fputs("&lt;", f);
		else if (*s == '>')
			fputs("&gt;", f);
		else if (*s == '&')
			fputs("&amp;", f);
		else
			fputc(*s, f);
	}
}

/* The plot area of the chart and the ranges of its axes. */
struct svg_box {
	double	 L, T, pw, ph;	/* left, top, width, height */
	int	 xmin, xmax;	/* decades of milliseconds */
	double	 ymax;		/* nines */
};

/* Draws one line per series, and the legend. */
static void
svg_series(FILE *f, const struct svg_box *bx, const struct series *sr,
    size_t nsr)
{
	static const char *const colors[] = {
		"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
		"#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"
	};
	const double	 L = bx->L, T = bx->T, pw = bx->pw, ph = bx->ph;
	const double	 ymax = bx->ymax;
	const int	 xmin = bx->xmin, xmax = bx->xmax;
	double		 v, x, y;
	size_t		 i, j;

	for (i = 0; i < nsr; i++) {
		const char	*col = colors[i % (sizeof(colors) /
				    sizeof(colors[0]))];

		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" "
		    "stroke-width=\"2\" points=\"", col);
		for (j = 0; j < sr[i].npts; j++) {
			v = sr[i].pts[j][1];
			if (v < pow(10, xmin))
				v = pow(10, xmin);
			x = L + pw * (log10(v) - xmin) / (xmax - xmin);
			y = T + ph - ph * svg_nines(&sr[i], sr[i].pts[j][0]) /
			    ymax;
			fprintf(f, "%s%.1f,%.1f", j ? " " : "", x, y);
		}
		fputs("\"/>\n", f);
		y = T + 18 + 18 * (double)i;
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" "
		    "y2=\"%.0f\" stroke=\"%s\" stroke-width=\"3\"/>\n"
		    "<text x=\"%.0f\" y=\"%.0f\">", L + 12, y - 4, L + 36,
		    y - 4, col, L + 42, y);
		svg_text(f, sr[i].label);
		fputs("</text>\n", f);
	}
}

/*
 * Writes the latency CDF of every series in one chart: latency on a log
 * x axis, the cumulative share on a "nines" y axis, so the tail that
 * tells servers apart gets as much room as the median.
 */
static int
svg_write(const char *path, const char *title, const struct series *sr,
    size_t nsr)
{
	static const struct { double nines; const char *label; } yt[] = {
		{ 0, "0%" }, { 0.30103, "50%" }, { 1, "90%" }, { 2, "99%" },
		{ 3, "99.9%" }, { 4, "99.99%" }, { 5, "99.999%" },
		{ 6, "99.9999%" }
	};
	const double	 W = 900, H = 560, L = 80, R = 30, T = 50, B = 60;
	struct svg_box	 box;
	double		 lo = INFINITY, hi = -INFINITY, ymax = 2, v, x, y;
	double		 pw = W - L - R, ph = H - T - B;
	int		 xmin, xmax, d;
	size_t		 i, j;
	FILE		*f;
	char		 tick[32];

	for (i = 0; i < nsr; i++) {
		for (j = 0; j < sr[i].npts; j++) {
			v = sr[i].pts[j][1];
			if (v > 0 && v < lo)
				lo = v;
			if (v > hi)
				hi = v;
		}
		v = svg_nines(&sr[i], 100);
		if (v > ymax)
			ymax = v;
	}
	if (!isfinite(lo) || !isfinite(hi) || hi <= 0) {
		lo = 0.1;
		hi = 100;
	}
	xmin = (int)floor(log10(lo));
	xmax = (int)ceil(log10(hi));
	if (xmax <= xmin)
		xmax = xmin + 1;
	ymax = ceil(ymax);
	if ((f = fopen(path, "w")) == NULL) {
		warn("%s", path);
		return -1;
	}
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" "
	    "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
	    "font-family=\"sans-serif\" font-size=\"12\">\n", W, H, W, H);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%.0f\" y=\"28\" font-size=\"16\" "
	    "text-anchor=\"middle\">", W / 2);
	svg_text(f, title);
	fputs("</text>\n", f);
	/* Grid and ticks. */
	for (d = xmin; d <= xmax; d++) {
		x = L + pw * (d - xmin) / (xmax - xmin);
		snprintf(tick, sizeof(tick), "%g", pow(10, d));
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" "
		    "y2=\"%.0f\" stroke=\"#ddd\"/>\n<text x=\"%.1f\" "
		    "y=\"%.0f\" text-anchor=\"middle\">%s</text>\n", x, T, x,
		    T + ph, x, T + ph + 18, tick);
	}
	for (i = 0; i < sizeof(yt) / sizeof(yt[0]); i++) {
		if (yt[i].nines > ymax)
			break;
		y = T + ph - ph * yt[i].nines / ymax;
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" "
		    "y2=\"%.1f\" stroke=\"#ddd\"/>\n<text x=\"%.0f\" "
		    "y=\"%.1f\" text-anchor=\"end\">%s</text>\n", L, y, L + pw,
		    y, L - 6, y + 4, yt[i].label);
	}
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" "
	    "height=\"%.0f\" fill=\"none\" stroke=\"black\"/>\n", L, T, pw,
	    ph);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">"
	    "latency (ms, log scale)</text>\n", L + pw / 2, H - 15);
	fprintf(f, "<text x=\"18\" y=\"%.0f\" text-anchor=\"middle\" "
	    "transform=\"rotate(-90 18 %.0f)\">copies delivered within "
	    "(cumulative)</text>\n", T + ph / 2, T + ph / 2);
	box.L = L;
	box.T = T;
	box.pw = pw;
	box.ph = ph;
	box.xmin = xmin;
	box.xmax = xmax;
	box.ymax = ymax;
	svg_series(f, &box, sr, nsr);
	fputs("</svg>\n", f);
	if (fclose(f) == EOF) {
		warn("%s", path);
		return -1;
	}
	return 0;
}

/* Writes --svg: this run (if any) and every --compare result. */
int
bench_chart(const struct bench *b, const struct options *o)
{
	struct series	sr[MAX_COMPARE + 1];
	size_t		nsr = 0, i, bad = 0;
	char		title[256];
	int		rv;

	if (b != NULL && b->h.n > 0)
		series_from_hist(b, &sr[nsr++]);
	for (i = 0; i < o->ncompare; i++) {
		if (series_load(o->compare[i], &sr[nsr]) == 0)
			nsr++;
		else
			bad++;
	}
	if (nsr == 0) {
		warnx("%s: no latencies to draw", o->svg);
		return -1;
	}
	if (o->title != NULL)
		strlcpy(title, o->title, sizeof(title));
	else if (b != NULL && o->wl == WL_FANOUT)
		snprintf(title, sizeof(title), "latency CDF: fanout, %u "
		    "clients, %u senders, %u msgs/s, %u B", b->n, o->nsenders,
		    o->rate, o->bytes);
	else if (b != NULL)
		snprintf(title, sizeof(title), "latency CDF: %s, %u clients",
		    workload_name(o->wl), b->n);
	else
		strlcpy(title, "latency CDF", sizeof(title));
	rv = svg_write(o->svg, title, sr, nsr);
	for (i = 0; i < nsr; i++)
		free(sr[i].pts);
	/* A result left out is an error, though the chart has the rest. */
	return bad > 0 ? -1 : rv;
}
