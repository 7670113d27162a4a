/*
 * logging.h - diagnostics for raftkv processes (not the Raft log).
 *
 * OpenBSD vocabulary (ntpd's log.h):
 *
 *   log_debug(fmt, ...)   chatter, off by default
 *   log_info(fmt, ...)    normal events: elections won, members started
 *   log_warn(fmt, ...)    a failure with an errno: appends ": strerror(errno)"
 *   log_warnx(fmt, ...)   a failure without an errno
 *   fatal(fmt, ...)       log_warn, then exit(1)
 *   fatalx(fmt, ...)      log_warnx, then exit(1)
 *
 * Each line goes to stderr as
 *
 *   2024-11-24T20:41:07.123Z n2 warn: open /data/wal: No such file or directory
 *
 * (UTC wall clock with milliseconds, the process tag, the level, the
 * message) written with a single write(2), so lines from several threads
 * never interleave.  Messages below the configured level are discarded
 * before they are formatted.
 *
 * A daemon with no terminal and no log file sends the lines to syslog(3)
 * instead (log_syslog_open): the same line without the timestamp (syslog
 * adds its own), "n2 warn: ...", at the syslog priority of its level.
 *
 * The Raft core never calls these: it takes an injected trace callback
 * (raft.h) and has no stderr.  Only front ends and the I/O layer log.
 */
#ifndef RAFTKV_LOGGING_H
#define RAFTKV_LOGGING_H

#include <stdarg.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO = 1,
	LOG_LEVEL_WARN = 2,
};

/* Longest tag kept (longer tags are truncated). */
#define LOG_TAG_MAX 31

/*
 * Set the minimum level and the per-process tag (e.g. "n2", "mr-worker").
 * @tag may be NULL (no tag).  May be called again at any time, e.g. after
 * fork(); not meant to race with concurrent logging calls.
 * Before the first call the level is LOG_LEVEL_INFO and the tag is empty.
 */
void log_init(enum log_level level, const char *tag);

/* Change only the per-process tag (as ntpd's log_procinit). */
void log_procinit(const char *tag);

/* Change only the level. */
void log_setlevel(enum log_level level);

/* The current level. */
enum log_level log_getlevel(void);

/*
 * Parse a level name: "debug", "info" or "warn" (exact, lower case).
 * On success stores the level in *@level and returns 0; returns -EINVAL
 * for any other string (including NULL) and leaves *@level unchanged.
 */
int log_level_parse(const char *name, enum log_level *level);

/* The name of @level ("debug", "info", "warn"; "?" if out of range). */
const char *log_level_name(enum log_level level);

/*
 * From now on send every line to syslog(3) instead of stderr:
 * openlog(@ident, LOG_PID | LOG_NDELAY, LOG_DAEMON), @ident copied (at
 * most LOG_TAG_MAX bytes).  The levels map to LOG_DEBUG, LOG_INFO and
 * LOG_WARNING; fatal() and fatalx() log at LOG_ERR.  The level filter
 * and the tag apply as before.  Without a syslog daemon (no /dev/log) the
 * lines are lost, as syslog(3) loses them.  Like log_init(), not meant
 * to race with concurrent logging calls: call it before threads start.
 */
void log_syslog_open(const char *ident);

/* Back to stderr (closelog); a no-op if syslog was not in use. */
void log_syslog_close(void);

#define LOG_PRINTF(f, a) __attribute__((format(printf, f, a)))

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

/*
 * The primitive behind the functions above: log at @level, appending
 * ": strerror(@err)" when @err is non-zero.  Preserves errno.
 */
void log_vlog(enum log_level level, int err, const char *fmt, va_list ap)
    LOG_PRINTF(3, 0);

#endif /* RAFTKV_LOGGING_H */
