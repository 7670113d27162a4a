/*
 * main.c - raftkv-mr(1): MapReduce over a directory tree (a raftkv mount,
 * or any POSIX directory).
 *
 *   raftkv-mr run [OPTS] [-w WORKERS] -o OUTDIR APP INPUT...
 *   raftkv-mr coordinator [OPTS] -c ENDPOINT -o OUTDIR INPUT...
 *   raftkv-mr worker [-g SECONDS] [-o OUTDIR] -c ENDPOINT APP
 *   raftkv-mr seq [-o OUTDIR] APP INPUT...
 *
 * APP is a shared object (mr.h) or "-m MAPPER -r REDUCER [-C COMBINER]"
 * (streaming commands).  `run` loads the app once to refuse a bad one
 * before anything starts, runs the coordinator in this process and starts
 * the workers as child processes (this program, `worker`), and reaps them
 * by pid before it returns.  Exit status: 0 when every output is
 * committed, 1 if the job failed, 2 for a usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mr/app.h"
#include "mr/coordinator.h"
#include "mr/exec.h"
#include "mr/split.h"
#include "mr/worker.h"
#include "mr/xmem.h"
#include "raft/util/num.h"

#define MAX_WORKERS 256

struct opts {
	uint32_t nreduce, workers;
	uint64_t lease_ms, split_size, gone_ms;
	const char *outdir, *endpoint, *endpoint_file;
	const char *so, *mapper, *reducer, *combiner;
	int keep, stats, quiet;
};

static void usage(void)
{
	fprintf(stderr,
	    "usage: raftkv-mr run [-n NREDUCE] [-w WORKERS] [-t SECONDS] "
	    "[-s MIB] [-kqS] -o OUTDIR APP INPUT...\n"
	    "       raftkv-mr coordinator [-n NREDUCE] [-t SECONDS] [-s MIB] "
	    "[-kqS] [-e FILE] -c ENDPOINT -o OUTDIR INPUT...\n"
	    "       raftkv-mr worker [-g SECONDS] [-o OUTDIR] -c ENDPOINT "
	    "APP\n"
	    "       raftkv-mr seq [-s MIB] [-o OUTDIR] APP INPUT...\n"
	    "APP is FILE.so, or -m MAPPER -r REDUCER [-C COMBINER]\n");
	exit(2);
}

static uint64_t num(const char *s, const char *what, uint64_t min, uint64_t max)
{
	uint64_t v;

	if (num_parse_u64(s, 10, min, max, &v) < 0) {
		fprintf(stderr, "raftkv-mr: bad %s: %s\n", what, s);
		exit(2);
	}
	return v;
}

/* Parse options; returns the index of the first operand. */
static int parse(int argc, char **argv, struct opts *o)
{
	int c;

	o->nreduce = 10;
	o->workers = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	if (o->workers < 2)
		o->workers = 2;
	o->lease_ms = 10000;
	o->split_size = SPLIT_DEFAULT_SIZE;
	o->gone_ms = 5000;
	optind = 2;
	while ((c = getopt(argc, argv, "+n:w:t:s:g:o:c:e:m:r:C:kqS")) != -1) {
		switch (c) {
		case 'n':
			o->nreduce = (uint32_t)num(optarg, "-n", 1, 100000);
			break;
		case 'w':
			o->workers = (uint32_t)num(optarg, "-w", 1,
			    MAX_WORKERS);
			break;
		case 't':
			o->lease_ms = num(optarg, "-t", 1, 86400) * 1000;
			break;
		case 's':
			o->split_size = num(optarg, "-s", 0, 1 << 20) << 20;
			break;
		case 'g':
			o->gone_ms = num(optarg, "-g", 1, 86400) * 1000;
			break;
		case 'o':
			o->outdir = optarg;
			break;
		case 'c':
			o->endpoint = optarg;
			break;
		case 'e':
			o->endpoint_file = optarg;
			break;
		case 'm':
			o->mapper = optarg;
			break;
		case 'r':
			o->reducer = optarg;
			break;
		case 'C':
			o->combiner = optarg;
			break;
		case 'k':
			o->keep = 1;
			break;
		case 'q':
			o->quiet = 1;
			break;
		case 'S':
			o->stats = 1;
			break;
		default:
			usage();
		}
	}
	return optind;
}

/* Take APP from the operands (unless -m/-r gave one) and load it. */
static struct app *load_app(struct opts *o, int argc, char **argv, int *i)
{
	struct app *a;
	char err[1024];

	if (o->mapper || o->reducer) {
		if (!o->mapper || !o->reducer) {
			fprintf(stderr, "raftkv-mr: -m and -r go together\n");
			exit(2);
		}
		return app_open_stream(o->mapper, o->reducer, o->combiner);
	}
	if (*i >= argc)
		usage();
	o->so = argv[(*i)++];
	if (app_open_so(o->so, &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "raftkv-mr: %s\n", err);
		exit(1);
	}
	return a;
}

static int cmd_seq(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o), rc;
	struct app *a = load_app(&o, argc, argv, &i);
	struct split *splits;
	size_t n;
	char err[512], out[4096];

	if (i >= argc)
		usage();
	rc = split_inputs(argv + i, (size_t)(argc - i), o.split_size, &splits,
	    &n, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "raftkv-mr: %s\n", err);
		return 1;
	}
	snprintf(out, sizeof(out), "%s/mr-out-0", o.outdir ? o.outdir : ".");
	rc = exec_seq(a, splits, n, out, NULL);
	if (rc < 0)
		fprintf(stderr, "raftkv-mr: %s: %s\n", out, strerror(-rc));
	else if (rc > 0)
		fprintf(stderr, "raftkv-mr: the app failed\n");
	free(splits);
	app_free(a);
	return rc ? 1 : 0;
}

static int cmd_worker(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o), rc;
	struct app *a;
	struct worker_opts wo;

	if (o.endpoint == NULL)
		usage();
	a = load_app(&o, argc, argv, &i);
	if (i != argc)
		usage();
	wo.endpoint = o.endpoint;
	wo.outdir = o.outdir;
	wo.gone_ms = o.gone_ms;
	rc = worker_run(a, &wo);
	app_free(a);
	return rc == 0 ? 0 : 1;
}

static void coord_opts_from(const struct opts *o, struct coord_opts *co)
{
	memset(co, 0, sizeof(*co));
	co->endpoint = o->endpoint;
	co->endpoint_file = o->endpoint_file;
	co->outdir = o->outdir;
	co->nreduce = o->nreduce;
	co->lease_ms = o->lease_ms;
	co->split_size = o->split_size;
	co->linger_ms = 1000;
	co->keep_tmp = o->keep;
	co->stats = o->stats;
	co->progress = !o->quiet && isatty(2);
}

static int cmd_coordinator(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o);
	struct coord_opts co;

	if (o.endpoint == NULL || o.outdir == NULL || i >= argc)
		usage();
	coord_opts_from(&o, &co);
	return coord_run(&co, argv + i, (size_t)(argc - i)) == 0 ? 0 : 1;
}

struct spawn {
	const struct opts *o;
	pid_t pid[MAX_WORKERS];
	uint32_t n;
};

/* ready callback of `run`: start the workers on the bound endpoint. */
static void spawn_workers(const char *endpoint, void *arg)
{
	struct spawn *sp = arg;
	const struct opts *o = sp->o;
	char gone[32];
	const char *av[16];
	int n = 0;

	snprintf(gone, sizeof(gone), "%llu",
	    (unsigned long long)(o->gone_ms / 1000));
	av[n++] = "raftkv-mr";
	av[n++] = "worker";
	av[n++] = "-c";
	av[n++] = endpoint;
	av[n++] = "-g";
	av[n++] = gone;
	if (o->so) {
		av[n++] = o->so;
	} else {
		av[n++] = "-m";
		av[n++] = o->mapper;
		av[n++] = "-r";
		av[n++] = o->reducer;
		if (o->combiner) {
			av[n++] = "-C";
			av[n++] = o->combiner;
		}
	}
	av[n] = NULL;
	fflush(NULL);
	for (sp->n = 0; sp->n < o->workers; sp->n++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("raftkv-mr: fork");
			break;
		}
		if (pid == 0) {
			execv("/proc/self/exe", (char **)av);
			perror("raftkv-mr: exec /proc/self/exe");
			_exit(127);
		}
		sp->pid[sp->n] = pid;
	}
}

/* Stop and reap the workers, by pid (their task children die with them). */
static void reap(struct spawn *sp)
{
	uint32_t i;

	for (i = 0; i < sp->n; i++)
		if (sp->pid[i] > 0)
			kill(sp->pid[i], SIGKILL);
	for (i = 0; i < sp->n; i++)
		if (sp->pid[i] > 0)
			while (
			    waitpid(sp->pid[i], NULL, 0) < 0 && errno == EINTR)
				;
}

static int cmd_run(int argc, char **argv)
{
	struct opts o = { 0 };
	int i = parse(argc, argv, &o), rc;
	struct spawn sp = { .o = &o };
	struct coord_opts co;
	struct app *a;

	if (o.outdir == NULL)
		usage();
	a = load_app(&o, argc, argv, &i);
	app_free(a);
	if (i >= argc)
		usage();
	if (o.endpoint == NULL)
		o.endpoint = "tcp://127.0.0.1:0";
	coord_opts_from(&o, &co);
	/*
	 * No linger: once coord_run returns every output is committed, and
	 * the workers are ours to stop (an idle one would otherwise wait
	 * out its gone timeout).
	 */
	co.linger_ms = 0;
	co.ready = spawn_workers;
	co.ready_arg = &sp;
	rc = coord_run(&co, argv + i, (size_t)(argc - i));
	reap(&sp);
	return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc, argv);
	if (strcmp(argv[1], "coordinator") == 0)
		return cmd_coordinator(argc, argv);
	if (strcmp(argv[1], "worker") == 0)
		return cmd_worker(argc, argv);
	if (strcmp(argv[1], "seq") == 0)
		return cmd_seq(argc, argv);
	usage();
}
