/*
 * stat_tree: stat(2) of every file of a generated tree, twice, timing each pass.
 *
 * The tree is DIR/dNNN/fNNNN (DIRS directories of FILES files each, made by the harness). On a
 * FUSE mount made just before, the first pass is cold (every component is a LOOKUP and every
 * file a GETATTR or an entry reply the kernel caches) and the second pass is warm (the kernel's,
 * or vufuse's, entry and attribute caches answer, while their timeouts last).
 * Usage: stat_tree DIR DIRS FILES.
 * Prints "cold_ns_per_file=<float>" and "warm_ns_per_file=<float>" on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int pass(const char *root, long dirs, long files, double *elapsed)
{
	char path[4096];
	struct stat st;
	double start = now_ns();
	for (long d = 0; d < dirs; d++) {
		for (long f = 0; f < files; f++) {
			snprintf(path, sizeof path, "%s/d%03ld/f%04ld", root, d, f);
			if (stat(path, &st) != 0) {
				perror(path);
				return 1;
			}
		}
	}
	*elapsed = now_ns() - start;
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s DIR DIRS FILES\n", argv[0]);
		return 2;
	}
	long dirs = strtol(argv[2], NULL, 10), files = strtol(argv[3], NULL, 10);
	if (dirs <= 0 || files <= 0)
		return 2;
	double cold, warm;
	if (pass(argv[1], dirs, files, &cold) || pass(argv[1], dirs, files, &warm))
		return 1;
	double count = (double)(dirs * files);
	printf("cold_ns_per_file=%.3f\nwarm_ns_per_file=%.3f\n", cold / count, warm / count);
	return 0;
}
