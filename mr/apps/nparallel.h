/*
 * nparallel.h - the lab's concurrency probe for mtiming/rtiming: create
 * mr-worker-PHASE-PID in the current directory, count such files whose
 * PID is alive, sleep 1 s, remove ours.  PID is the worker's
 * (ctx->worker_pid), not the forked task child's, so "two workers ran at
 * once" means two worker processes as in the lab.  Header only.
 */
#ifndef RAFTKV_MR_APPS_NPARALLEL_H
#define RAFTKV_MR_APPS_NPARALLEL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static inline int nparallel(const char *phase, pid_t me)
{
	char mine[128], prefix[64];
	struct dirent *de;
	int fd, n = 0;
	size_t pl;
	DIR *d;

	snprintf(prefix, sizeof(prefix), "mr-worker-%s-", phase);
	pl = strlen(prefix);
	snprintf(mine, sizeof(mine), "%s%ld", prefix, (long)me);
	fd = open(mine, O_WRONLY | O_CREAT | O_TRUNC, 0666);
	if (fd < 0)
		return -1;
	close(fd);
	d = opendir(".");
	while (d && (de = readdir(d)) != NULL) {
		long pid;

		if (strncmp(de->d_name, prefix, pl) != 0)
			continue;
		pid = strtol(de->d_name + pl, NULL, 10);
		if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			n++;
	}
	if (d)
		closedir(d);
	sleep(1);
	unlink(mine);
	return n;
}

#endif
