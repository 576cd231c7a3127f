/*
 * timed_run: time a command from inside the session that runs it, optionally on a FUSE mount
 * made (and unmade) around it.
 *
 * Usage: timed_run - -- CMD...                        (no mount)
 *        timed_run MNT DAEMON [ARG...] -- CMD...      (run DAEMON, which mounts MNT and
 *                                                      daemonizes; CMD; fusermount3 -u MNT)
 * Prints on stdout, after CMD's own output: "seconds=<CMD's wall time>" and, with a mount,
 * "mount_seconds=" (DAEMON start until its foreground process exits: the mount is up) and
 * "unmount_seconds=". Timing here, not in the harness, keeps a backend's start-up (a vufuse
 * session: ~0.15 s) and the mount out of the workload's figure; the harness records them apart.
 * The exit status is CMD's; 125 when the mount failed. The mount is always undone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run argv to completion; its exit status, or 128+signal, or 127 if it could not start. */
static int run(char **argv)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return 127;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		perror(argv[0]);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		;
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
	int separator = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			separator = i;
			break;
		}
	}
	if (argc < 4 || separator == 0 || separator + 1 >= argc) {
		fprintf(stderr, "usage: %s MNT|- [DAEMON ARG...] -- CMD...\n", argv[0]);
		return 2;
	}
	const char *mount_point = argv[1];
	int mounted = strcmp(mount_point, "-") != 0;
	if (mounted) {
		if (separator < 3) {
			fprintf(stderr, "timed_run: no daemon given for %s\n", mount_point);
			return 2;
		}
		argv[separator] = NULL;
		double start = now_s();
		int status = run(argv + 2);
		double mount_seconds = now_s() - start;
		if (status != 0) {
			fprintf(stderr, "timed_run: mounting %s failed (status %d)\n", mount_point, status);
			return 125;
		}
		printf("mount_seconds=%.6f\n", mount_seconds);
	}
	double start = now_s();
	int status = run(argv + separator + 1);
	double seconds = now_s() - start;
	printf("seconds=%.6f\n", seconds);
	if (mounted) {
		char *unmount[] = {"fusermount3", "-u", (char *)mount_point, NULL};
		start = now_s();
		int unmounted = run(unmount);
		printf("unmount_seconds=%.6f\n", now_s() - start);
		if (unmounted != 0 && status == 0)
			status = unmounted;
	}
	return status;
}
