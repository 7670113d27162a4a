/*
 * logging.c - diagnostics with a level, a process tag and timestamps, on
 * stderr or (a daemon's choice, log_syslog_open) syslog(3).
 *
 * PROCESS-WIDE STATE: this is the one module in raftkv allowed to keep
 * globals.  `log_level_cur`, `log_tag`, `log_ident` and `log_syslog` below
 * are set by log_init() / log_syslog_open() (once at start-up, or again
 * after fork()) and only read afterwards, so logging itself needs no lock.
 * Everything else in raftkv passes its state explicitly.
 *
 * Thread safety: each line is formatted into a stack buffer and emitted
 * with one write(2) on fd 2.  POSIX does not promise atomicity for
 * non-pipe fds, but a single write of a short line is what keeps lines
 * whole in practice (ntpd and redis do the same); over-long messages are
 * truncated rather than split.  errno is preserved across every call so
 * that log_warn() can be used in error paths that still need errno.
 */
#include "raft/util/logging.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* One line, including the timestamp, tag and errno text. */
#define LOG_LINE_MAX 2048

static enum log_level log_level_cur = LOG_LEVEL_INFO;
static char log_tag[LOG_TAG_MAX + 1];
/* openlog() keeps the ident pointer: it lives here. */
static char log_ident[LOG_TAG_MAX + 1];
static bool log_syslog;

/* The syslog(3) priority of each level. */
static const int level_priorities[] = {
	[LOG_LEVEL_DEBUG] = LOG_DEBUG,
	[LOG_LEVEL_INFO] = LOG_INFO,
	[LOG_LEVEL_WARN] = LOG_WARNING,
};

static const char *const level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",
};

void log_init(enum log_level level, const char *tag)
{
	log_setlevel(level);
	log_procinit(tag);
}

void log_procinit(const char *tag)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag != NULL ? tag : "");
}

void log_setlevel(enum log_level level)
{
	log_level_cur = level;
}

enum log_level log_getlevel(void)
{
	return log_level_cur;
}

void log_syslog_open(const char *ident)
{
	snprintf(log_ident, sizeof(log_ident), "%s",
	    ident != NULL ? ident : "raftkv");
	openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = true;
}

void log_syslog_close(void)
{
	if (!log_syslog)
		return;
	log_syslog = false;
	closelog();
}

int log_level_parse(const char *name, enum log_level *level)
{
	size_t i;

	if (name == NULL)
		return -EINVAL;
	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

/* Append "2024-11-24T20:41:07.123Z " to @buf; returns the length written. */
static size_t format_time(char *buf, size_t size)
{
	struct timeval tv;
	struct tm tm;
	size_t n;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, size - n, ".%03ldZ ",
	    (long)(tv.tv_usec / 1000));
	return n < size ? n : size - 1;
}

/* Write all of @buf to stderr, in one write(2) unless interrupted. */
static void write_line(const char *buf, size_t len)
{
	ssize_t w;

	while (len > 0) {
		w = write(STDERR_FILENO, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere left to report it */
		buf += w;
		len -= (size_t)w;
	}
}

/* Format and emit one line at @level (syslog priority @prio). */
static void log_emit(enum log_level level, int prio, int err, const char *fmt,
    va_list ap) LOG_PRINTF(4, 0);
static void log_emit(enum log_level level, int prio, int err, const char *fmt,
    va_list ap)
{
	char line[LOG_LINE_MAX];
	size_t n, room;
	int saved_errno = errno;
	int k;

	/* Keep one byte for the newline. */
	room = sizeof(line) - 1;
	/* syslog stamps the line itself. */
	n = log_syslog ? 0 : format_time(line, room);
	if (log_tag[0] != '\0')
		k = snprintf(line + n, room - n, "%s %s: ", log_tag,
		    log_level_name(level));
	else
		k = snprintf(line + n, room - n, "%s: ", log_level_name(level));
	if (k > 0)
		n += (size_t)k;
	if (n < room) {
		k = vsnprintf(line + n, room - n, fmt, ap);
		if (k > 0)
			n += (size_t)k;
	}
	if (err != 0 && n < room) {
		k = snprintf(line + n, room - n, ": %s", strerror(err));
		if (k > 0)
			n += (size_t)k;
	}
	if (n >= room)
		n = room - 1; /* truncated: snprintf stopped at room - 1 */
	if (log_syslog) {
		line[n] = '\0';
		syslog(prio, "%s", line);
	} else {
		line[n++] = '\n';
		write_line(line, n);
	}
	errno = saved_errno;
}

void log_vlog(enum log_level level, int err, const char *fmt, va_list ap)
{
	if (level < log_level_cur ||
	    (unsigned)level >=
	        sizeof(level_priorities) / sizeof(level_priorities[0]))
		return;
	log_emit(level, level_priorities[level], err, fmt, ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (LOG_LEVEL_DEBUG < log_level_cur)
		return;
	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_INFO, 0, fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_WARN, err, fmt, ap);
	va_end(ap);
}

void log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vlog(LOG_LEVEL_WARN, 0, fmt, ap);
	va_end(ap);
}

/* Fatal messages are printed whatever the level: they explain the exit. */
static void vfatal(int err, const char *fmt, va_list ap)
    __attribute__((noreturn)) LOG_PRINTF(2, 0);
static void vfatal(int err, const char *fmt, va_list ap)
{
	log_emit(LOG_LEVEL_WARN, LOG_ERR, err, fmt, ap);
	exit(1);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	int err = errno;

	va_start(ap, fmt);
	vfatal(err, fmt, ap);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfatal(0, fmt, ap);
}
