/*
 * read_file: read(2) a whole file sequentially in 1 MiB calls, on the fd open(2) returned.
 *
 * Unlike `dd if=FILE`, which moves the file onto fd 0 with dup2 (under vufuse that copies the
 * whole file into a memfd at the dup2: a different path), this exercises the ordinary read path.
 * Usage: read_file FILE. Prints "bytes=<n>" on stdout.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	size_t size = 1 << 20;
	char *buffer = malloc(size);
	if (buffer == NULL)
		return 1;
	long long total = 0;
	for (;;) {
		ssize_t got = read(fd, buffer, size);
		if (got < 0) {
			perror("read");
			return 1;
		}
		if (got == 0)
			break;
		total += got;
	}
	close(fd);
	printf("bytes=%lld\n", total);
	return 0;
}
