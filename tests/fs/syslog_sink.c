/*
 * syslog_sink.c - a stand-in syslog daemon for tests/fs/test_mount8.sh.
 *
 *   syslog-sink SOCKET OUTFILE
 *
 * Binds a Unix datagram socket at SOCKET (what syslog(3) sends to at
 * /dev/log: the test bind-mounts SOCKET there in its private mount
 * namespace) and appends every datagram it receives to OUTFILE as one
 * line ("<30>Dec  3 10:25:38 mount.raftkv[123]: fs1 info: ...").  Runs
 * until a signal kills it; the test stops it by PID.  Not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char buf[8192 + 1];
	int s, out;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: syslog-sink SOCKET OUTFILE\n");
		return 2;
	}
	memcpy(sa.sun_path, argv[1], strlen(argv[1]) + 1);
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("syslog-sink: socket");
		return 1;
	}
	out = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (out < 0) {
		perror(argv[2]);
		return 1;
	}
	for (;;) {
		ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			perror("syslog-sink: recv");
			return 1;
		}
		/* One datagram, one line (syslog(3) sends no newline). */
		if (n > 0 && buf[n - 1] == '\n')
			n--;
		buf[n++] = '\n';
		if (write(out, buf, (size_t)n) != n) {
			perror("syslog-sink: write");
			return 1;
		}
	}
}
