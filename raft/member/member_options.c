/*
 * member_options.c - a member process's command line (see
 * member_options.h; documented in raftkv-server(8)).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "raft/util/num.h"
#include "raft/member/member_options.h"

void member_options_defaults(struct member_options *o)
{
	memset(o, 0, sizeof(*o));
	o->max_raft_state = -1;
}

void member_options_usage(FILE *f, const char *prog)
{
	fprintf(f,
	    "usage: %s -c CLUSTER-FILE -i ID -d DATA-DIR [options]\n"
	    "  -c, --cluster FILE        cluster file (raftkv.conf(5))\n"
	    "  -i, --id N                this member's id in the cluster file\n"
	    "  -d, --data DIR            data directory (created if missing)\n"
	    "  -l, --log-level LEVEL     debug, info (default) or warn\n"
	    "      --curve-secret FILE   this member's CURVE secret key "
	    "(default:\n"
	    "                            member<ID>.key next to the cluster "
	    "file)\n"
	    "      --insecure            run a cluster file without keys: NO\n"
	    "                            authentication of peers or clients\n"
	    "      --insecure-membership with --insecure, let any client "
	    "add,\n"
	    "                            promote and remove members "
	    "while this\n"
	    "                            member leads (the leader's "
	    "setting\n"
	    "                            decides; refused otherwise)\n"
	    "      --tick-ms N           tick length (default 10)\n"
	    "      --election-ticks N    election timeout in ticks (default "
	    "30)\n"
	    "      --heartbeat-ticks N   heartbeat period in ticks (default "
	    "5)\n"
	    "      --max-raft-state N    snapshot when the log exceeds N "
	    "bytes\n"
	    "      --segment-size N      WAL segment size in bytes\n"
	    "      --workers N           client request workers (default 32)\n"
	    "      --read-mode MODE      linearizable reads by 'lease' "
	    "(ReadIndex,\n"
	    "                            answered from the leader's lease "
	    "while it\n"
	    "                            holds; default), 'index' (a "
	    "heartbeat round\n"
	    "                            each time) or 'log' (an entry per "
	    "read)\n"
	    "      --fault-injection     allow tests to inject network faults\n"
	    "      --recover             start even if the data directory is "
	    "damaged,\n"
	    "                            accepting the loss (see raftkv(7))\n"
	    "      --join                join a running cluster as a new "
	    "member\n"
	    "                            (a learner until promoted; see "
	    "raftkv(1))\n"
	    "      --peer ENDPOINT       joining: this member's peer endpoint\n"
	    "      --client ENDPOINT     joining: this member's client "
	    "endpoint\n",
	    prog);
}

/* A count option (ticks, workers): 1..100000. */
static int parse_count(const char *s, unsigned *out)
{
	return num_parse_uint(s, 1, 100000, out);
}

int member_options_parse(int argc, char **argv, struct member_options *o)
{
	static const struct option longs[] = {
		{ "cluster", required_argument, NULL, 'c' },
		{ "id", required_argument, NULL, 'i' },
		{ "data", required_argument, NULL, 'd' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "curve-secret", required_argument, NULL, 1 },
		{ "tick-ms", required_argument, NULL, 2 },
		{ "election-ticks", required_argument, NULL, 3 },
		{ "heartbeat-ticks", required_argument, NULL, 4 },
		{ "max-raft-state", required_argument, NULL, 5 },
		{ "segment-size", required_argument, NULL, 6 },
		{ "workers", required_argument, NULL, 7 },
		{ "fault-injection", no_argument, NULL, 8 },
		{ "read-mode", required_argument, NULL, 9 },
		{ "recover", no_argument, NULL, 10 },
		{ "insecure", no_argument, NULL, 11 },
		{ "join", no_argument, NULL, 12 },
		{ "peer", required_argument, NULL, 13 },
		{ "client", required_argument, NULL, 14 },
		{ "insecure-membership", no_argument, NULL, 15 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "c:i:d:l:h", longs, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->cluster_file = optarg;
			break;
		case 'd':
			o->data_dir = optarg;
			break;
		case 'l':
			o->log_level = optarg;
			break;
		case 1:
			o->secret_file = optarg;
			break;
		case 8:
			o->fault_injection = 1;
			break;
		case 10:
			o->recover = 1;
			break;
		case 11:
			o->insecure = 1;
			break;
		case 12:
			o->join = 1;
			break;
		case 13:
			o->peer = optarg;
			break;
		case 14:
			o->client = optarg;
			break;
		case 15:
			o->insecure_membership = 1;
			break;
		case 9:
			o->read_via_log = strcmp(optarg, "log") == 0;
			o->read_no_lease = strcmp(optarg, "index") == 0;
			if (!o->read_via_log && !o->read_no_lease &&
			    strcmp(optarg, "lease") != 0)
				goto bad;
			break;
		case 'i':
			if (num_parse_u64(optarg, 10, 1, INT64_MAX, &o->id))
				goto bad;
			break;
		case 2:
			if (parse_count(optarg, &o->tick_ms))
				goto bad;
			break;
		case 3:
			if (parse_count(optarg, &o->election_ticks))
				goto bad;
			break;
		case 4:
			if (parse_count(optarg, &o->heartbeat_ticks))
				goto bad;
			break;
		case 7:
			if (parse_count(optarg, &o->workers))
				goto bad;
			break;
		case 5:
			if (num_parse_u64(optarg, 10, 0, INT64_MAX, &v))
				goto bad;
			o->max_raft_state = (int64_t)v;
			break;
		case 6:
			if (num_parse_u64(optarg, 10, 4096, 1ull << 40, &v))
				goto bad;
			o->segment_size = v;
			break;
		case 'h':
			return 1;
		default:
			return -1;
		}
	}
	if (optind != argc || !o->cluster_file || !o->data_dir || !o->id) {
		fprintf(stderr, "%s: -c, -i and -d are required\n", argv[0]);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "%s: invalid value '%s' for an option\n", argv[0],
	    optarg);
	return -1;
}
