/*
 * stat_loop: the cost of a trapped path syscall on a real file.
 *
 * stat(2) (newfstatat) is in vufuse's trap list; on a path under no virtual mount the C core
 * answers CONTINUE without entering Python, so this measures the trap fast path. The files are
 * stat'ed round-robin so one cached dentry cannot flatter the native figure.
 * Usage: stat_loop ITERATIONS PATH... Prints "ns_per_call=<float>" on stdout.
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

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s ITERATIONS PATH...\n", argv[0]);
		return 2;
	}
	long iterations = strtol(argv[1], NULL, 10);
	if (iterations <= 0)
		return 2;
	char **paths = argv + 2;
	int npaths = argc - 2;
	struct stat st;
	for (long i = 0; i < iterations / 10 + 1; i++) {
		if (stat(paths[i % npaths], &st) != 0) {
			perror(paths[i % npaths]);
			return 1;
		}
	}
	double start = now_ns();
	for (long i = 0; i < iterations; i++) {
		if (stat(paths[i % npaths], &st) != 0) {
			perror(paths[i % npaths]);
			return 1;
		}
	}
	double elapsed = now_ns() - start;
	printf("ns_per_call=%.3f\n", elapsed / (double)iterations);
	return 0;
}
