/*
 * log.c - stderr, the -v transcript and syslog(LOG_MAIL); see log.h.
 */
#include "config.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

static const char *log_progname = "postie";
static bool log_is_verbose;
static bool log_use_syslog;
static bool log_syslog_open;

void log_init(const char *progname, bool verbose, bool use_syslog)
{
    if (progname != NULL)
        log_progname = progname;
    log_is_verbose = verbose;
    log_set_syslog(use_syslog);
}

void log_set_syslog(bool use_syslog)
{
    log_use_syslog = use_syslog;
    if (use_syslog && !log_syslog_open) {
        openlog("postie", LOG_PID, LOG_MAIL);
        log_syslog_open = true;
    }
}

bool log_verbose(void)
{
    return log_is_verbose;
}

/* Formats into buf and replaces control characters, so one call is one line. */
static void log_format(char *buf, size_t len, const char *fmt, va_list ap)
{
    vsnprintf(buf, len, fmt, ap);
    for (char *p = buf; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            *p = '?';
    }
}

static void log_emit(int priority, bool to_stderr, const char *fmt, va_list ap)
{
    char buf[2048];
    log_format(buf, sizeof buf, fmt, ap);
    if (to_stderr)
        fprintf(stderr, "%s: %s\n", log_progname, buf);
    if (log_use_syslog)
        syslog(priority, "%s", buf);
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_ERR, true, fmt, ap);
    va_end(ap);
}

void log_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_WARNING, true, fmt, ap);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_INFO, false, fmt, ap);
    va_end(ap);
}

void log_debug(const char *fmt, ...)
{
    if (!log_is_verbose)
        return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    log_format(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", log_progname, buf);
}

void log_transcript(const char *dir, const char *buf, size_t len)
{
    if (!log_is_verbose)
        return;
    size_t start = 0;
    while (start < len) {
        size_t end = start;
        while (end < len && buf[end] != '\n')
            end++;
        size_t stop = end;
        if (stop > start && buf[stop - 1] == '\r')
            stop--;
        fprintf(stderr, "%s ", dir);
        for (size_t i = start; i < stop; i++) {
            unsigned char c = (unsigned char)buf[i];
            if (c < 0x20 || c == 0x7f)
                fprintf(stderr, "\\x%02x", c);
            else
                fputc(c, stderr);
        }
        fputc('\n', stderr);
        start = end + 1;
    }
    fflush(stderr);
}
