/*
 * log.h - everything postie says: stderr, the -v transcript and syslog.
 *
 * stderr lines are "postie: message".  syslog goes to LOG_MAIL when enabled.
 * The transcript (log_transcript) is printed only in verbose mode; AUTH
 * payloads must already be redacted by the caller (relay.c replaces every
 * AUTH argument and continuation line with "***" before calling it).
 */
#ifndef POSTIE_LOG_H
#define POSTIE_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* Program name for messages (default "postie"), verbosity and syslog use. */
void log_init(const char *progname, bool verbose, bool use_syslog);
void log_set_syslog(bool use_syslog);
bool log_verbose(void);

/* One line on stderr (and syslog LOG_ERR / LOG_WARNING / LOG_INFO). */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* syslog only (LOG_INFO): the one line per message, key=value. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Verbose only, on stderr: a debugging note prefixed "postie: ". */
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Verbose only: one SMTP dialogue chunk.  dir is "<-" (from the server) or
 * "->" (to the server); buf may hold several CRLF-terminated lines, each is
 * printed as "<- line".  Control characters other than CRLF are escaped.
 */
void log_transcript(const char *dir, const char *buf, size_t len);

#endif
