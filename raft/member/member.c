/*
 * member.c - the common main() of member processes (see member.h).
 *
 * Start-up order: options -> cluster file -> signals blocked (so every
 * thread inherits the mask and only sigwait() sees them) -> application
 * -> node (storage recovery, core, transport, threads) -> client endpoint.
 * Shutdown runs it backwards.  Every failure prints one line naming what
 * and why, and exits non-zero.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/client/cluster.h"
#include "raft/client/keys.h"
#include "raft/util/logging.h"
#include "raft/member/endpoint_auth.h"
#include "raft/member/member.h"

struct member_opts {
	const char *cluster_file;
	const char *data_dir;
	const char *secret_file;
	const char *log_level;
	uint64_t id;
	unsigned tick_ms;
	unsigned election_ticks;
	unsigned heartbeat_ticks;
	int64_t max_raft_state;
	uint64_t segment_size;
	unsigned workers;
	int fault_injection;
	int read_via_log;
	int insecure;
};

static void usage(const char *prog)
{
	fprintf(stderr,
	    "usage: %s -c CLUSTER-FILE -i ID -d DATA-DIR [options]\n"
	    "  -c, --cluster FILE        cluster file (raftkv.conf(5))\n"
	    "  -i, --id N                this member's id in the cluster file\n"
	    "  -d, --data DIR            data directory (created if missing)\n"
	    "  -l, --log-level LEVEL     debug, info (default) or warn\n"
	    "      --curve-secret FILE   this member's CURVE secret key (default:\n"
	    "                            member<ID>.key next to the cluster file)\n"
	    "      --insecure            run a cluster file without keys: NO\n"
	    "                            authentication of peers or clients\n"
	    "      --tick-ms N           tick length (default 10)\n"
	    "      --election-ticks N    election timeout in ticks (default 30)\n"
	    "      --heartbeat-ticks N   heartbeat period in ticks (default 5)\n"
	    "      --max-raft-state N    snapshot when the log exceeds N bytes\n"
	    "      --segment-size N      WAL segment size in bytes\n"
	    "      --workers N           client request workers (default 32)\n"
	    "      --read-mode MODE      linearizable reads by 'index' (ReadIndex,\n"
	    "                            default) or 'log' (an entry per read)\n"
	    "      --fault-injection     allow tests to inject network faults\n",
	    prog);
}

static int parse_num(const char *s, uint64_t max, uint64_t *v)
{
	char *end;

	if (s == NULL || *s == '\0' || *s == '-')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || *end || *v > max ? -1 : 0;
}

static int parse_opts(int argc, char **argv, struct member_opts *o)
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
		{ "insecure", no_argument, NULL, 10 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	o->max_raft_state = -1;
	while ((c = getopt_long(argc, argv, "c:i:d:l:h", longs, NULL)) != -1) {
		switch (c) {
		case 'c': o->cluster_file = optarg; break;
		case 'd': o->data_dir = optarg; break;
		case 'l': o->log_level = optarg; break;
		case 1: o->secret_file = optarg; break;
		case 8: o->fault_injection = 1; break;
		case 10: o->insecure = 1; break;
		case 9:
			if (strcmp(optarg, "log") == 0)
				o->read_via_log = 1;
			else if (strcmp(optarg, "index") != 0)
				goto bad;
			break;
		case 'i':
			if (parse_num(optarg, INT64_MAX, &o->id) || o->id == 0)
				goto bad;
			break;
		case 2: case 3: case 4: case 7:
			if (parse_num(optarg, 100000, &v) || v == 0)
				goto bad;
			if (c == 2) o->tick_ms = (unsigned)v;
			if (c == 3) o->election_ticks = (unsigned)v;
			if (c == 4) o->heartbeat_ticks = (unsigned)v;
			if (c == 7) o->workers = (unsigned)v;
			break;
		case 5:
			if (parse_num(optarg, INT64_MAX, &v))
				goto bad;
			o->max_raft_state = (int64_t)v;
			break;
		case 6:
			if (parse_num(optarg, 1ull << 40, &v) || v < 4096)
				goto bad;
			o->segment_size = v;
			break;
		case 'h':
			usage(argv[0]);
			exit(0);
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

/*
 * Secure by default: a cluster file with keys needs this member's secret
 * (--curve-secret, else member<ID>.key next to the cluster file, as
 * `raftkv init` writes it); one without keys is refused unless the
 * operator says --insecure, and then every start says what that means.
 */
static void load_secret(const struct member_opts *o, const struct cluster *cl,
    struct node_config *nc)
{
	char dir[2048], path[2200], err[512], pub[CLUSTER_KEY_LEN + 1];
	const char *file = o->secret_file;

	if (!cl->curve) {
		if (!o->insecure)
			fatalx("%s has no CURVE keys: anyone who can reach this "
			    "member could forge peer messages and write to it. "
			    "Set the cluster up with 'raftkv init', or pass "
			    "--insecure to run without authentication",
			    o->cluster_file);
		log_warnx("INSECURE: %s has no keys and --insecure was given: "
		    "peers and clients are NOT authenticated; anyone who can "
		    "reach this member's peer or client port can write to "
		    "the cluster", o->cluster_file);
		return;
	}
	if (o->insecure)
		log_warnx("--insecure ignored: %s has CURVE keys",
		    o->cluster_file);
	if (file == NULL) {
		keys_dir_of(o->cluster_file, dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/member%" PRIu64 ".key", dir,
		    o->id);
		file = path;
	}
	if (keys_read_secret(file, nc->curve_secret, err, sizeof(err)) != 0)
		fatalx("%s uses CURVE keys: this member's secret key: %s",
		    o->cluster_file, err);
	if (keys_public(nc->curve_secret, pub) != 0 ||
	    strcmp(pub, cluster_find(cl, o->id)->key) != 0)
		fatalx("%s is not member %" PRIu64 "'s secret key: its public "
		    "key is not the one %s gives member %" PRIu64, file, o->id,
		    o->cluster_file, o->id);
	if (cl->n_creds == 0)
		log_warnx("%s lists no 'credential' lines: no client can "
		    "connect", o->cluster_file);
}

static int build_config(const struct member_opts *o, const struct cluster *cl,
    struct node_config *nc)
{
	node_config_defaults(nc);
	nc->cluster_id = cl->id;
	nc->id = o->id;
	nc->n_members = cl->n;
	for (uint32_t i = 0; i < cl->n; i++) {
		nc->members[i].id = cl->members[i].id;
		snprintf(nc->members[i].peer_endpoint,
		    sizeof(nc->members[i].peer_endpoint), "%s",
		    cl->members[i].peer);
		snprintf(nc->members[i].curve_public,
		    sizeof(nc->members[i].curve_public), "%s",
		    cl->members[i].key);
	}
	if (snprintf(nc->data_dir, sizeof(nc->data_dir), "%s", o->data_dir) >=
	    (int)sizeof(nc->data_dir))
		return -ENAMETOOLONG;
	if (o->tick_ms)
		nc->tick_ms = o->tick_ms;
	if (o->election_ticks)
		nc->election_tick = o->election_ticks;
	if (o->heartbeat_ticks)
		nc->heartbeat_tick = o->heartbeat_ticks;
	if (nc->heartbeat_tick >= nc->election_tick)
		return -EINVAL;
	nc->max_raft_state = o->max_raft_state;
	if (o->segment_size)
		nc->storage.segment_size = o->segment_size;
	nc->fault_injection = o->fault_injection;
	nc->read_via_log = o->read_via_log;
	return 0;
}

int member_main(int argc, char **argv, const struct member_app *app,
    const char *progname)
{
	struct member_opts o = { 0 };
	struct node_config nc;
	struct server_app sapp = { 0 };
	struct endpoint_auth eauth;
	struct cluster cl;
	const struct cluster_member *me;
	struct node *node = NULL;
	struct server *srv = NULL;
	enum log_level level = LOG_LEVEL_INFO;
	char err[512] = "out of memory", tag[32];
	void *app_arg = NULL;
	sigset_t sigs;
	int rv, sig;

	if (parse_opts(argc, argv, &o) != 0) {
		usage(argv[0]);
		return 2;
	}
	if (o.log_level && log_level_parse(o.log_level, &level) != 0) {
		fprintf(stderr, "%s: unknown log level '%s'\n", progname,
		    o.log_level);
		return 2;
	}
	snprintf(tag, sizeof(tag), "m%" PRIu64, o.id);
	log_init(level, tag);
	if (cluster_load(o.cluster_file, &cl, err, sizeof(err)) != 0)
		fatalx("%s", err);
	me = cluster_find(&cl, o.id);
	if (me == NULL)
		fatalx("member %" PRIu64 " is not in %s", o.id, o.cluster_file);
	rv = build_config(&o, &cl, &nc);
	if (rv != 0)
		fatalx("invalid timing or data directory options: %s",
		    strerror(-rv));
	load_secret(&o, &cl, &nc);
	endpoint_auth_from_cluster(&eauth, &cl, nc.curve_secret);
	if (nc.fault_injection)
		log_warnx("fault injection is ENABLED: for tests only");
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	rv = app->create(&app_arg, &nc.app, &sapp);
	if (rv != 0)
		fatalx("cannot create the %s application: %s", app->name,
		    strerror(-rv));
	rv = node_start(&nc, &node, err, sizeof(err));
	if (rv != 0)
		fatalx("%s", err);
	rv = server_start(node, cl.id, me->client, &sapp, &eauth, o.workers,
	    &srv, err, sizeof(err));
	explicit_bzero(&eauth, sizeof(eauth));
	if (rv != 0) {
		node_stop(node);
		fatalx("%s", err);
	}
	log_info("%s member %" PRIu64 " serving clients on %s, peers on %s",
	    app->name, o.id, me->client, me->peer);
	while (sigwait(&sigs, &sig) != 0)
		;
	log_info("signal %d: shutting down", sig);
	server_stop(srv);
	node_stop(node);
	app->destroy(app_arg);
	log_info("stopped");
	return 0;
}
