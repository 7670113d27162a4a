/*
 * member_options.h - the options of a member process (raftkv-server(8),
 * the counter test member) and their command-line parser, apart from
 * member_start() (member.h), which takes them however they were made: a
 * program with its own command line (mount.raftkv) fills struct
 * member_options itself.
 */
#ifndef RAFTKV_MEMBER_OPTIONS_H
#define RAFTKV_MEMBER_OPTIONS_H

#include <stdint.h>
#include <stdio.h>

/* The strings are borrowed (argv's, for the parser): they must outlive
 * member_start().  Zero means "the default" for the numbers. */
struct member_options {
	const char *cluster_file; /* required: raftkv.conf(5) */
	const char *data_dir; /* required: created if missing */
	const char *secret_file; /* CURVE secret key (Z85), or NULL:
	                             member<ID>.key next to the cluster file */
	const char *log_level; /* debug, info, warn, or NULL: info */
	uint64_t id; /* required: this member's id */
	unsigned tick_ms;
	unsigned election_ticks;
	unsigned heartbeat_ticks;
	int64_t max_raft_state; /* < 0: never snapshot (the default) */
	uint64_t segment_size; /* WAL segment size in bytes */
	unsigned workers; /* client endpoint workers (0: 32) */
	int fault_injection; /* allow tests to inject network faults */
	int read_via_log; /* read barriers commit an entry */
	int read_no_lease; /* as leader, never answer a read from the
	                             lease: a heartbeat round each time */
	int recover; /* start on a damaged data dir, accepting
	                             the loss (storage_options.recover) */
	int insecure; /* a cluster file without keys is allowed
	                             (no authentication at all) */
	int insecure_membership; /* and then anyone reaching the client
	                             endpoint may change the membership
	                             (refused otherwise) */
	int join; /* a new member joining a running cluster */
	const char *peer; /* joining: this member's peer endpoint */
	const char *client; /* joining: its client endpoint */
};

/* Fill @o with the defaults (everything unset, no snapshots). */
void member_options_defaults(struct member_options *o);

/*
 * Parse argv (getopt_long, from optind) into @o, which
 * member_options_defaults() prepared.  Returns 0; 1 for --help (nothing
 * printed: call member_options_usage()); -1 on a bad or missing option,
 * with one line naming it on stderr.  Numbers are parsed strictly
 * (raft/util/num.h).
 */
int member_options_parse(int argc, char **argv, struct member_options *o);

/* Print the usage of the options above, for program @prog, to @f. */
void member_options_usage(FILE *f, const char *prog);

#endif
