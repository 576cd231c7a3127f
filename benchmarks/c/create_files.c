/*
 * create_files: create DIRS directories of FILES small files each under ROOT (which must not
 * exist), each file created with O_CREAT|O_EXCL, written once (its own path, newline-ended)
 * and closed: the small-file create path (LOOKUP, CREATE, WRITE, FLUSH, RELEASE on FUSE).
 * Usage: create_files ROOT DIRS FILES. Prints "files=<n>" on stdout.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s ROOT DIRS FILES\n", argv[0]);
		return 2;
	}
	long dirs = strtol(argv[2], NULL, 10), files = strtol(argv[3], NULL, 10);
	if (mkdir(argv[1], 0755) < 0) {
		perror(argv[1]);
		return 1;
	}
	char path[4096];
	long created = 0;
	for (long d = 0; d < dirs; d++) {
		snprintf(path, sizeof(path), "%s/d%03ld", argv[1], d);
		if (mkdir(path, 0755) < 0) {
			perror(path);
			return 1;
		}
		for (long f = 0; f < files; f++) {
			int length = snprintf(path, sizeof(path), "%s/d%03ld/f%04ld", argv[1], d, f);
			int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
			if (fd < 0) {
				perror(path);
				return 1;
			}
			path[length] = '\n';
			if (write(fd, path, (size_t)length + 1) != length + 1) {
				perror("write");
				return 1;
			}
			path[length] = '\0';
			if (close(fd) < 0) {
				perror("close");
				return 1;
			}
			created++;
		}
	}
	printf("files=%ld\n", created);
	return 0;
}
