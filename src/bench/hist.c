/*
 * hist.c: the latency histogram, log-linear, 128 buckets per
 * octave (under 0.4% error): adding a value, reading a quantile.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <stdint.h>

#include "bench.h"

/* Maps a value to its bucket. */
static unsigned int
hist_index(uint64_t v)
{
	unsigned int	msb, shift, idx;

	if (v < H_LINEAR)
		return (unsigned int)v;
	msb = 63 - (unsigned int)__builtin_clzll(v);
	shift = msb - H_SUB_BITS;
	idx = H_LINEAR + (shift - 1) * H_SUB +
	    (unsigned int)((v >> shift) - H_SUB);
	return idx < H_BUCKETS ? idx : H_BUCKETS - 1;
}

/* The middle of a bucket, the value it stands for. */
static uint64_t
hist_value(unsigned int idx)
{
	unsigned int	k, shift;
	uint64_t	m;

	if (idx < H_LINEAR)
		return idx;
	k = idx - H_LINEAR;
	shift = k / H_SUB + 1;
	m = k % H_SUB + H_SUB;
	return (m << shift) + ((uint64_t)1 << (shift - 1));
}

/* Adds one value in nanoseconds. */
void
hist_add(struct hist *h, uint64_t v)
{
	h->cnt[hist_index(v)]++;
	if (h->n == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->n++;
	h->sum += v;
}

/* The value at quantile q (0..1), in nanoseconds; 0 when empty. */
uint64_t
hist_quantile(const struct hist *h, double q)
{
	uint64_t	target, acc = 0, v;
	unsigned int	i;

	if (h->n == 0)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	target = (uint64_t)ceil(q * (double)h->n);
	if (target < 1)
		target = 1;
	for (i = 0; i < H_BUCKETS; i++) {
		acc += h->cnt[i];
		if (acc >= target)
			break;
	}
	v = hist_value(i < H_BUCKETS ? i : H_BUCKETS - 1);
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

/* Nanoseconds as milliseconds. */
double
ns_ms(uint64_t v)
{
	return (double)v / (double)MS;
}
