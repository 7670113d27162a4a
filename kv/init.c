/*
 * init.c - `raftkv init` (see init.h and raftkv(1)).
 *
 *   raftkv init -d DIR -n N [--host HOST | --hosts H1,H2,...]
 *               [--port-base P] [--quota SIZE]
 *
 * Member i (1..N) gets peer port P+i and client port P+100+i (P defaults
 * to 7000) on HOST (default 127.0.0.1), or on the i-th of --hosts (then N
 * may be left out).  --quota writes the cluster file's quota line (SIZE
 * as that line takes it, cluster_parse_quota(); without it the line is
 * left out: the default quota).  The cluster id is random.  Nothing is
 * overwritten: a
 * directory that already holds a cluster.conf is refused.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "kv/init.h"
#include "raft/client/keys.h"

#define INIT_EXIT_ERROR 1
#define INIT_EXIT_USAGE 64

static void init_usage(void)
{
	fprintf(stderr,
	    "usage: raftkv init -d DIR -n N [--host HOST] [--port-base P]\n"
	    "                   [--quota SIZE]\n"
	    "       raftkv init -d DIR --hosts H1,H2,H3 [--port-base P]\n"
	    "                   [--quota SIZE]\n"
	    "  writes DIR/cluster.conf, DIR/member<ID>.key for each member,\n"
	    "  DIR/client.key and DIR/admin.key (secret files mode 0600);\n"
	    "  member i listens for peers on P+i and clients on P+100+i\n"
	    "  (P: 7000); --quota SIZE (bytes, or with K, M, G or T) writes\n"
	    "  the cluster's size quota (default: 4G)\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	*v = strtoul(s, &end, 10);
	return errno || *end || *v > max ? -1 : 0;
}

/* Split @list at commas into @hosts (at most RAFT_MAX_MEMBERS). */
static int split_hosts(char *list, char **hosts)
{
	int n = 0;

	for (char *h = strtok(list, ","); h != NULL; h = strtok(NULL, ",")) {
		if (n == RAFT_MAX_MEMBERS)
			return -1;
		hosts[n++] = h;
	}
	return n;
}

static int make_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return -errno;
}

int init_main(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "members", required_argument, NULL, 'n' },
		{ "host", required_argument, NULL, 1 },
		{ "hosts", required_argument, NULL, 2 },
		{ "port-base", required_argument, NULL, 3 },
		{ "quota", required_argument, NULL, 4 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *host = "127.0.0.1";
	char *hosts[RAFT_MAX_MEMBERS], *host_list = NULL, err[4400];
	unsigned long n = 0, base = 7000;
	uint64_t quota = 0;
	struct cluster c;
	int opt, n_hosts = 0, rv;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "d:n:h", longs, NULL)) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 1:
			host = optarg;
			break;
		case 2:
			host_list = optarg;
			break;
		case 'n':
			if (parse_uint(optarg, RAFT_MAX_MEMBERS, &n) || n == 0)
				goto bad;
			break;
		case 3:
			if (parse_uint(optarg, 65535 - 100 - RAFT_MAX_MEMBERS,
			        &base))
				goto bad;
			break;
		case 4:
			if (cluster_parse_quota(optarg, &quota) != 0) {
				fprintf(stderr,
				    "raftkv init: bad quota '%s': a number of "
				    "bytes, 1 to 2^62, with an optional K, M, "
				    "G "
				    "or T\n",
				    optarg);
				return INIT_EXIT_USAGE;
			}
			break;
		case 'h':
			init_usage();
			return 0;
		default:
			init_usage();
			return INIT_EXIT_USAGE;
		}
	}
	if (host_list != NULL) {
		n_hosts = split_hosts(host_list, hosts);
		if (n_hosts <= 0 || (n != 0 && n != (unsigned long)n_hosts)) {
			fprintf(stderr,
			    "raftkv init: --hosts must name 1 to %d "
			    "hosts, one per member\n",
			    RAFT_MAX_MEMBERS);
			return INIT_EXIT_USAGE;
		}
		n = (unsigned long)n_hosts;
	}
	if (dir == NULL || n == 0 || optind != argc) {
		init_usage();
		return INIT_EXIT_USAGE;
	}
	memset(&c, 0, sizeof(c));
	while (c.id == 0)
		if (getrandom(&c.id, sizeof(c.id), 0) != sizeof(c.id)) {
			perror("raftkv init: getrandom");
			return INIT_EXIT_ERROR;
		}
	c.n = (uint32_t)n;
	c.quota = quota;
	for (uint32_t i = 0; i < c.n; i++) {
		struct cluster_member *m = &c.members[i];
		const char *h = n_hosts ? hosts[i] : host;

		m->id = i + 1;
		snprintf(m->peer, sizeof(m->peer), "tcp://%s:%lu", h,
		    base + i + 1);
		snprintf(m->client, sizeof(m->client), "tcp://%s:%lu", h,
		    base + 100 + i + 1);
		if (cluster_check_endpoint(m->peer) != 0 ||
		    cluster_check_endpoint(m->client) != 0) {
			fprintf(stderr,
			    "raftkv init: '%s' is not a usable "
			    "host name or address\n",
			    h);
			return INIT_EXIT_USAGE;
		}
	}
	rv = make_dir(dir);
	if (rv != 0) {
		fprintf(stderr, "raftkv init: %s: %s\n", dir, strerror(-rv));
		return INIT_EXIT_ERROR;
	}
	rv = keys_init_cluster(dir, &c, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, "raftkv init: %s\n", err);
		return INIT_EXIT_ERROR;
	}
	printf(
	    "cluster %" PRIx64 " with %u members written to %s:\n"
	    "  cluster.conf            the cluster file (public keys)\n"
	    "  member1.key ...         each member's secret key (mode 0600)\n"
	    "  client.key, admin.key   client and administrator credentials\n"
	    "start member ID (on its machine, with cluster.conf and "
	    "memberID.key in one directory):\n"
	    "  raftkv-server -c %s/cluster.conf -i ID -d DATA-DIR\n"
	    "use it:\n"
	    "  export RAFTKV_CLUSTER=%s/cluster.conf; raftkv status\n",
	    c.id, c.n, dir, dir, dir);
	return 0;

bad:
	fprintf(stderr, "raftkv init: bad option value '%s'\n", optarg);
	return INIT_EXIT_USAGE;
}
