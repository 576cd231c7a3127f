/*
 * write_file: write a file sequentially in 1 MiB write(2) calls on the fd open(2) returned.
 *
 * Unlike `dd of=FILE`, which moves the file onto fd 1 with dup2, this exercises the ordinary
 * write path. Block i (0-based) is filled with the byte (i * 7 + 1) & 0xff and starts with its
 * index as text, so the harness can check that the bytes really landed in the right place.
 * Usage: write_file FILE MEBIBYTES. Prints "bytes=<n>" on stdout; closes the file (the FLUSH
 * and RELEASE are part of the time).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s FILE MEBIBYTES\n", argv[0]);
		return 2;
	}
	long blocks = strtol(argv[2], NULL, 10);
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	size_t size = 1 << 20;
	char *buffer = malloc(size);
	if (buffer == NULL)
		return 1;
	long long total = 0;
	for (long block = 0; block < blocks; block++) {
		memset(buffer, (int)((block * 7 + 1) & 0xff), size);
		snprintf(buffer, 32, "block %ld\n", block);
		size_t done = 0;
		while (done < size) {
			ssize_t put = write(fd, buffer + done, size - done);
			if (put < 0) {
				perror("write");
				return 1;
			}
			done += (size_t)put;
		}
		total += (long long)size;
	}
	if (close(fd) < 0) {
		perror("close");
		return 1;
	}
	printf("bytes=%lld\n", total);
	return 0;
}
