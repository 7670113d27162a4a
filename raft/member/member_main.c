/*
 * member_main.c - the common main() of member processes (see member.h):
 * options (member_options.c), logging, signals, member_start(), wait for
 * SIGTERM/SIGINT, member_stop().
 *
 * Signals are blocked before the member starts its threads, so every
 * thread inherits the mask and only sigwait() here sees them.
 */
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "raft/util/logging.h"
#include "raft/member/member.h"

void member_process_setup(void)
{
	if (getenv("MALLOC_ARENA_MAX") == NULL)
		mallopt(M_ARENA_MAX, MEMBER_MALLOC_ARENAS);
}

int member_main(int argc, char **argv, const struct member_app *app,
    const char *progname)
{
	struct member_options o;
	struct member *m = NULL;
	enum log_level level = LOG_LEVEL_INFO;
	char err[512] = "out of memory", tag[32];
	sigset_t sigs;
	int rv, sig;

	member_process_setup();
	member_options_defaults(&o);
	rv = member_options_parse(argc, argv, &o);
	if (rv != 0) {
		member_options_usage(stderr, argv[0]);
		return rv > 0 ? 0 : 2;
	}
	if (o.log_level && log_level_parse(o.log_level, &level) != 0) {
		fprintf(stderr, "%s: unknown log level '%s'\n", progname,
		    o.log_level);
		return 2;
	}
	snprintf(tag, sizeof(tag), "m%" PRIu64, o.id);
	log_init(level, tag);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (member_start(&o, app, &m, err, sizeof(err)) != 0)
		fatalx("%s", err);
	while (sigwait(&sigs, &sig) != 0)
		;
	log_info("signal %d: shutting down", sig);
	member_stop(m);
	log_info("stopped");
	return 0;
}
