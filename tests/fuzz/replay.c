/*
 * replay.c: runs a fuzz target over saved inputs, without libFuzzer.
 *
 * Linked with one target (fuzz_codec.c or fuzz_ipc.c), it calls
 * LLVMFuzzerTestOneInput once per file named on the command line, or per
 * regular file in each directory named there, in name order.  A broken
 * invariant aborts, so make check can replay the corpora under any
 * compiler and the sanitizers.  Exits 0 if every input ran clean, 1 on
 * a usage or I/O error.
 */
#include "config.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static size_t	replay_count;

/* Reads a whole file and runs the target on it; -1 on an I/O error. */
static int
replay_file(const char *path)
{
	FILE		*fp;
	uint8_t		*data = NULL, *p;
	size_t		 len = 0, cap = 0, n;
	int		 ret = 0;

	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap == 0 ? 8192 : cap * 2;
			if ((p = realloc(data, cap)) == NULL) {
				fprintf(stderr, "replay: out of memory\n");
				ret = -1;
				goto done;
			}
			data = p;
		}
		n = fread(data + len, 1, cap - len, fp);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		ret = -1;
		goto done;
	}
	/* A copy of exactly len bytes, so ASan sees reads past the end. */
	if ((p = malloc(len == 0 ? 1 : len)) == NULL) {
		fprintf(stderr, "replay: out of memory\n");
		ret = -1;
		goto done;
	}
	if (len > 0)
		memcpy(p, data, len);
	(void)LLVMFuzzerTestOneInput(p, len);
	free(p);
	replay_count++;
done:
	free(data);
	fclose(fp);
	return ret;
}

/* Orders directory entries by name, so runs are reproducible. */
static int
replay_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Replays a file, or every regular file of a directory; -1 on error. */
static int
replay_path(const char *path)
{
	struct dirent	**ents;
	struct stat	  st;
	char		  sub[4096];
	int		  i, n, ret = 0;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	if ((n = scandir(path, &ents, NULL, replay_cmp)) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (ents[i]->d_name[0] == '.')
			goto next;
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path,
		    ents[i]->d_name) >= sizeof(sub)) {
			fprintf(stderr, "replay: %s/%s: path too long\n",
			    path, ents[i]->d_name);
			ret = -1;
			goto next;
		}
		if (stat(sub, &st) == 0 && S_ISREG(st.st_mode) &&
		    replay_file(sub) == -1)
			ret = -1;
next:
		free(ents[i]);
	}
	free(ents);
	return ret;
}

int
main(int argc, char **argv)
{
	int	i, ret = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s file-or-dir ...\n", argv[0]);
		return 1;
	}
	for (i = 1; i < argc; i++)
		if (replay_path(argv[i]) == -1)
			ret = 1;
	printf("replay: %zu inputs ran clean\n", replay_count);
	return ret;
}
