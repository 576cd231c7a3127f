/*
 * getppid_loop: the cost of a syscall the vufuse filter lets run natively.
 *
 * getppid is in no trap list, so under vufuse it only pays for the BPF filter; the ratio to
 * native is the "untrapped" overhead. Uses syscall(2) directly so no libc caching can hide the
 * kernel entry. Usage: getppid_loop ITERATIONS. Prints "ns_per_call=<float>" on stdout.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s ITERATIONS\n", argv[0]);
		return 2;
	}
	long iterations = strtol(argv[1], NULL, 10);
	if (iterations <= 0)
		return 2;
	volatile long sink = 0;
	/* Warm up: fault in the code and let the CPU settle before timing. */
	for (long i = 0; i < iterations / 10 + 1; i++)
		sink += syscall(SYS_getppid);
	double start = now_ns();
	for (long i = 0; i < iterations; i++)
		sink += syscall(SYS_getppid);
	double elapsed = now_ns() - start;
	printf("ns_per_call=%.3f\n", elapsed / (double)iterations);
	return sink == 0 ? 1 : 0; /* getppid is never 0 here; keeps `sink` observable */
}
