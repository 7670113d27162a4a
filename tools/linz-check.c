/*
 * linz-check - check a saved client history for linearizability.
 *
 *	linz-check [--lab] [--timeout SECONDS] [-v] FILE|-
 *
 * FILE is a history in the format of tests/lib/history.h (what
 * history_check() saves when a test finds a violation).  Prints the
 * summary line, and with -v the explanation of a violation.  The default
 * model is raftkv's strict one; --lab uses the 6.5840 lab model.  The
 * timeout defaults to none.
 *
 * Exit status: 0 linearizable, 1 not linearizable, 2 undecided (timeout),
 * 3 usage or input error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/history.h"
#include "tests/lib/linz.h"

static void usage(void)
{
	fprintf(stderr,
	    "usage: linz-check [--lab] [--timeout SECONDS] [-v] "
	    "FILE|-\n");
	exit(3);
}

int main(int argc, char **argv)
{
	enum linz_model model = LINZ_MODEL_STRICT;
	double timeout = 0;
	const char *path = NULL;
	struct linz_history *h;
	struct linz_result res;
	size_t bad_line = 0;
	int i, rc, verbose = 0;
	FILE *f;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--lab") == 0) {
			model = LINZ_MODEL_LAB;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			char *end;

			timeout = strtod(argv[++i], &end);
			if (*end != '\0' || timeout < 0)
				usage();
		} else if (strcmp(argv[i], "-v") == 0) {
			verbose = 1;
		} else if (path == NULL &&
		    (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
			path = argv[i];
		} else {
			usage();
		}
	}
	if (path == NULL)
		usage();
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "linz-check: %s: %s\n", path, strerror(errno));
		return 3;
	}
	rc = history_load(f, &h, &bad_line);
	if (f != stdin)
		fclose(f);
	if (rc == -EINVAL) {
		fprintf(stderr, "linz-check: %s:%zu: malformed operation\n",
		    path, bad_line);
		return 3;
	} else if (rc != 0) {
		fprintf(stderr, "linz-check: %s: read error\n", path);
		return 3;
	}

	linz_check(h, model, timeout, &res);
	if (verbose) {
		linz_result_print(&res, stdout);
	} else {
		printf("%s\n",
		    res.verdict == LINZ_OK            ? "OK"
		        : res.verdict == LINZ_ILLEGAL ? "ILLEGAL"
		                                      : "UNKNOWN");
	}
	rc = res.verdict == LINZ_OK ? 0 : res.verdict == LINZ_ILLEGAL ? 1 : 2;
	linz_result_close(&res);
	linz_history_free(h);
	return rc;
}
