/*
 * smtpd.c - -bs: the server side of SMTP on stdin/stdout; see smtpd.h.
 *
 * One conversation is a loop over command lines.  Input is read into a
 * fixed buffer and consumed line by line, so pipelined commands are answered
 * in order; replies are collected and written whenever the engine is about
 * to wait for more input, before a delivery and at the end.  DATA is a
 * small state machine over the same buffer that unstuffs dots and streams
 * the octets into an unlinked spool file: no line is ever held whole, so a
 * client can send lines of any length in bounded memory.
 */
#include "config.h"

#include "smtpd.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "fdio.h"
#include "log.h"
#include "mem.h"
#include "message.h"

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF. */
#define SMTPD_LINE_MAX 512
/* MAIL may grow by 26 (SIZE, RFC 1870) and 100 (RET/ENVID, RFC 3461) octets. */
#define SMTPD_MAIL_LINE_MAX (SMTPD_LINE_MAX + 26 + 100)
/* RCPT may grow by 500 octets (NOTIFY/ORCPT, RFC 3461). */
#define SMTPD_RCPT_LINE_MAX (SMTPD_LINE_MAX + 500)
/* What is kept of a command line; the rest of a longer line is counted, not kept. */
#define SMTPD_LINE_BUF  1024
#define SMTPD_IN_BUF    65536
#define SMTPD_OUT_BUF   4096
#define SMTPD_SPOOL_BUF 65536
/* RFC 3461: ENVID and ORCPT values are at most 100 and 500 octets of xtext. */
#define SMTPD_ENVID_MAX 100
#define SMTPD_ORCPT_MAX 500
/* Replies are kept under the 512-octet reply line limit. */
#define SMTPD_TEXT_MAX 400
/* After this many rejected commands the conversation ends with 421. */
#define SMTPD_MAX_ERRORS 20

enum smtpd_helo {
    SMTPD_HELO_NONE = 0,
    SMTPD_HELO_SMTP, /* HELO: no service extensions, no parameters */
    SMTPD_HELO_ESMTP,
};

/* What happened to a wait for input. */
enum smtpd_input {
    SMTPD_INPUT_OPEN = 0,
    SMTPD_INPUT_EOF,     /* closed or failed: the client is gone */
    SMTPD_INPUT_TIMEOUT, /* silent past the timeout */
};

struct smtpd {
    int in_fd;
    int out_fd;
    int timeout_ms;
    const char *hostname;
    const char *spool_dir;
    off_t max_size;
    const struct smtpd_hooks *hooks;

    char in[SMTPD_IN_BUF];
    size_t in_pos, in_len;
    enum smtpd_input input;

    char out[SMTPD_OUT_BUF];
    size_t out_len;
    bool out_broken;

    char line[SMTPD_LINE_BUF + 1]; /* the command line, terminator removed */
    size_t line_len;               /* octets kept in line */
    size_t line_octets;            /* octets the line had, counted as if CRLF-terminated */
    bool line_nul;

    enum smtpd_helo helo;
    unsigned errors;

    /* The transaction: from MAIL to the end of DATA, RSET, HELO or EHLO. */
    bool in_txn;
    char *sender;
    char **rcpts;
    size_t nrcpts;
    size_t rcpt_attempts; /* RCPT commands in this transaction, accepted or not */
    unsigned notify;
    enum opts_body body;
    enum opts_ret ret;
    char *envid;
};

/* ------------------------------------------------------------------ output */

static void smtpd_flush(struct smtpd *s)
{
    if (!s->out_broken && fdio_write_all(s->out_fd, s->out, s->out_len) != 0)
        s->out_broken = true;
    s->out_len = 0;
}

/* Queues one reply line (CRLF added); control characters become '?'. */
static void smtpd_vreply(struct smtpd *s, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void smtpd_vreply(struct smtpd *s, const char *fmt, va_list ap)
{
    char buf[SMTPD_LINE_MAX];
    int n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
    if (n < 0)
        n = 0;
    size_t len = (size_t)n < sizeof buf - 2 ? (size_t)n : sizeof buf - 3;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x20 || c == 0x7f)
            buf[i] = '?';
    }
    buf[len++] = '\r';
    buf[len++] = '\n';
    if (s->out_len + len > sizeof s->out)
        smtpd_flush(s);
    memcpy(s->out + s->out_len, buf, len);
    s->out_len += len;
}

static void smtpd_reply(struct smtpd *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void smtpd_reply(struct smtpd *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    smtpd_vreply(s, fmt, ap);
    va_end(ap);
}

/* A reply to a rejected command: counts towards SMTPD_MAX_ERRORS. */
static void smtpd_error(struct smtpd *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void smtpd_error(struct smtpd *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    smtpd_vreply(s, fmt, ap);
    va_end(ap);
    s->errors++;
}

/* ------------------------------------------------------------------- input */

/* Waits for more input (flushing the replies first); false when there is none. */
static bool smtpd_fill(struct smtpd *s)
{
    if (s->input != SMTPD_INPUT_OPEN)
        return false;
    smtpd_flush(s);
    s->in_pos = s->in_len = 0;
    for (;;) {
        struct pollfd p = {.fd = s->in_fd, .events = POLLIN};
        int n = poll(&p, 1, s->timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            s->input = SMTPD_INPUT_TIMEOUT;
            return false;
        }
        if (n < 0) {
            s->input = SMTPD_INPUT_EOF;
            return false;
        }
        ssize_t got = read(s->in_fd, s->in, sizeof s->in);
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0) {
            s->input = SMTPD_INPUT_EOF;
            return false;
        }
        s->in_len = (size_t)got;
        return true;
    }
}

/*
 * Reads one command line into s->line.  A line ends at LF (CRLF or a bare
 * LF); what does not fit in the buffer is counted and dropped.  false when
 * the input ends first (a partial last line is dropped too).
 */
static bool smtpd_read_line(struct smtpd *s)
{
    size_t raw = 0;
    s->line_len = 0;
    for (;;) {
        if (s->in_pos == s->in_len && !smtpd_fill(s))
            return false;
        const char *start = s->in + s->in_pos;
        size_t avail = s->in_len - s->in_pos;
        const char *nl = memchr(start, '\n', avail);
        size_t take = nl != NULL ? (size_t)(nl - start) + 1 : avail;
        size_t body = nl != NULL ? take - 1 : take;
        size_t room = SMTPD_LINE_BUF - s->line_len;
        size_t copy = body < room ? body : room;
        memcpy(s->line + s->line_len, start, copy);
        s->line_len += copy;
        raw = body > SIZE_MAX / 2 - raw ? SIZE_MAX / 2 : raw + body;
        s->in_pos += take;
        if (nl != NULL)
            break;
    }
    if (raw > 0 && raw == s->line_len && s->line[s->line_len - 1] == '\r') {
        s->line_len--;
        raw--;
    }
    s->line_octets = raw + 2;
    s->line[s->line_len] = '\0';
    s->line_nul = memchr(s->line, '\0', s->line_len) != NULL;
    return true;
}

/* ------------------------------------------------------------- transaction */

static void smtpd_txn_reset(struct smtpd *s)
{
    free(s->sender);
    for (size_t i = 0; i < s->nrcpts; i++)
        free(s->rcpts[i]);
    free(s->rcpts);
    free(s->envid);
    s->in_txn = false;
    s->sender = NULL;
    s->rcpts = NULL;
    s->nrcpts = 0;
    s->rcpt_attempts = 0;
    s->notify = 0;
    s->body = OPTS_BODY_UNSET;
    s->ret = OPTS_RET_UNSET;
    s->envid = NULL;
}

/* ----------------------------------------------------------------- parsing */

static bool smtpd_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

static int smtpd_hex_value(char c)
{
    return c <= '9' ? c - '0' : c - 'A' + 10;
}

char *smtpd_xtext_decode(const char *text)
{
    size_t len = strlen(text);
    char *out = mem_alloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '+') {
            if (i + 2 >= len || !smtpd_is_hex(text[i + 1]) || !smtpd_is_hex(text[i + 2])) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(smtpd_hex_value(text[i + 1]) * 16 + smtpd_hex_value(text[i + 2]));
            i += 2;
        } else if (c < '!' || c > '~' || c == '=') {
            free(out);
            return NULL;
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return out;
}

/* true when s holds only printable US-ASCII and spaces (RFC 3461 4.4, ENVID). */
static bool smtpd_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s < ' ' || *s > '~')
            return false;
    return true;
}

/* true when the xtext is well formed (no allocation kept). */
static bool smtpd_xtext_ok(const char *text)
{
    char *d = smtpd_xtext_decode(text);
    free(d);
    return d != NULL;
}

/*
 * Parses "<path>" at *p (after "FROM:" or "TO:" and optional spaces): the
 * closing '>' is found outside quoted strings, a source route ("@a,@b:") is
 * dropped, and a non-empty address must pass addr_validate() (printable
 * ASCII, no SMTPUTF8 offered, RFC 5321 lengths).  On success *addr is a new
 * string and *p points after '>'; otherwise why says what is wrong.
 */
static bool smtpd_parse_path(const char **p, char **addr, struct result *why)
{
    const char *s = *p;
    while (*s == ' ')
        s++;
    if (*s != '<') {
        result_set(why, OUTCOME_DATAERR, "address must be enclosed in <>");
        return false;
    }
    s++;
    const char *start = s;
    bool quoted = false;
    while (*s != '\0') {
        if (quoted && *s == '\\' && s[1] != '\0')
            s += 2;
        else if (*s == '"')
            quoted = !quoted, s++;
        else if (!quoted && *s == '>')
            break;
        else
            s++;
    }
    if (*s != '>') {
        result_set(why, OUTCOME_DATAERR, "missing '>' after the address");
        return false;
    }
    const char *end = s;
    if (*start == '@') {
        const char *colon = memchr(start, ':', (size_t)(end - start));
        if (colon == NULL) {
            result_set(why, OUTCOME_DATAERR, "bad source route");
            return false;
        }
        start = colon + 1;
    }
    char *a = mem_strndup(start, (size_t)(end - start));
    if (a[0] != '\0' && addr_validate(a, why) != OUTCOME_OK) {
        free(a);
        return false;
    }
    *addr = a;
    *p = end + 1;
    return true;
}

/*
 * Splits the next "KEY[=VALUE]" parameter at *p in place: returns false at
 * the end of the line.  An empty parameter (two spaces) is skipped.
 */
static bool smtpd_next_param(char **p, char **key, char **value)
{
    char *s = *p;
    while (*s == ' ')
        s++;
    if (*s == '\0')
        return false;
    *key = s;
    while (*s != '\0' && *s != ' ')
        s++;
    if (*s != '\0')
        *s++ = '\0';
    *p = s;
    char *eq = strchr(*key, '=');
    *value = NULL;
    if (eq != NULL) {
        *eq = '\0';
        *value = eq + 1;
    }
    return true;
}

/* Parses a NOTIFY value into opts_notify bits; 0 when invalid. */
static unsigned smtpd_parse_notify(char *v)
{
    unsigned bits = 0;
    char *save = NULL;
    if (v == NULL || *v == '\0')
        return 0;
    for (char *t = strtok_r(v, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        unsigned b;
        if (strcasecmp(t, "NEVER") == 0)
            b = OPTS_NOTIFY_NEVER;
        else if (strcasecmp(t, "SUCCESS") == 0)
            b = OPTS_NOTIFY_SUCCESS;
        else if (strcasecmp(t, "FAILURE") == 0)
            b = OPTS_NOTIFY_FAILURE;
        else if (strcasecmp(t, "DELAY") == 0)
            b = OPTS_NOTIFY_DELAY;
        else
            return 0;
        if (bits & b)
            return 0;
        bits |= b;
    }
    if ((bits & OPTS_NOTIFY_NEVER) && bits != OPTS_NOTIFY_NEVER)
        return 0;
    return bits;
}

/* true when text is an atom-ish address type followed by ';' and valid xtext. */
static bool smtpd_orcpt_ok(const char *v)
{
    const char *semi = v != NULL ? strchr(v, ';') : NULL;
    if (semi == NULL || semi == v || strlen(v) > SMTPD_ORCPT_MAX)
        return false;
    for (const char *c = v; c < semi; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-'))
            return false;
    return semi[1] != '\0' && smtpd_xtext_ok(semi + 1);
}

/* The argument after the verb (leading and trailing spaces removed), or "". */
static char *smtpd_argument(char *line)
{
    char *a = line;
    while (*a != '\0' && *a != ' ')
        a++;
    while (*a == ' ')
        a++;
    size_t n = strlen(a);
    while (n > 0 && (a[n - 1] == ' ' || a[n - 1] == '\t'))
        a[--n] = '\0';
    return a;
}

/* ---------------------------------------------------------------- commands */

static void smtpd_cmd_helo(struct smtpd *s, char *arg, bool esmtp)
{
    if (*arg == '\0') {
        smtpd_error(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        return;
    }
    smtpd_txn_reset(s);
    if (!esmtp) {
        s->helo = SMTPD_HELO_SMTP;
        smtpd_reply(s, "250 %s", s->hostname);
        return;
    }
    s->helo = SMTPD_HELO_ESMTP;
    smtpd_reply(s, "250-%s", s->hostname);
    smtpd_reply(s, "250-PIPELINING");
    smtpd_reply(s, "250-SIZE %lld", (long long)s->max_size);
    smtpd_reply(s, "250-8BITMIME");
    smtpd_reply(s, "250-DSN");
    smtpd_reply(s, "250 ENHANCEDSTATUSCODES");
}

/* Case-insensitive "FROM:" / "TO:" after the verb; returns what follows or NULL. */
static const char *smtpd_after_keyword(const char *line, const char *kw)
{
    const char *p = line + 4;
    while (*p == ' ')
        p++;
    size_t n = strlen(kw);
    if (strncasecmp(p, kw, n) != 0)
        return NULL;
    return p + n;
}

static void smtpd_cmd_mail(struct smtpd *s)
{
    if (s->helo == SMTPD_HELO_NONE) {
        smtpd_error(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (s->in_txn) {
        smtpd_error(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    const char *p = smtpd_after_keyword(s->line, "FROM:");
    if (p == NULL) {
        smtpd_error(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    char *addr = NULL;
    struct result why;
    if (!smtpd_parse_path(&p, &addr, &why)) {
        smtpd_error(s, "501 5.1.7 Bad sender address syntax: %s", why.text);
        return;
    }
    if (*p != '\0' && *p != ' ') {
        free(addr);
        smtpd_error(s, "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]");
        return;
    }

    enum opts_body body = OPTS_BODY_UNSET;
    enum opts_ret ret = OPTS_RET_UNSET;
    char *envid = NULL;
    bool seen_size = false;
    char *params = mem_strdup(p);
    char *cur = params, *key, *val;
    const char *fail = NULL; /* a complete reply */
    char failbuf[SMTPD_TEXT_MAX];
    while (fail == NULL && smtpd_next_param(&cur, &key, &val)) {
        if (s->helo != SMTPD_HELO_ESMTP) {
            fail = "555 5.5.4 Parameters need EHLO";
        } else if (strcasecmp(key, "BODY") == 0) {
            if (body != OPTS_BODY_UNSET)
                fail = "501 5.5.4 Duplicate BODY parameter";
            else if (val != NULL && strcasecmp(val, "7BIT") == 0)
                body = OPTS_BODY_7BIT;
            else if (val != NULL && strcasecmp(val, "8BITMIME") == 0)
                body = OPTS_BODY_8BITMIME;
            else
                fail = "555 5.5.4 Unsupported BODY value (7BIT or 8BITMIME)";
        } else if (strcasecmp(key, "SIZE") == 0) {
            size_t n = val != NULL ? strlen(val) : 0;
            if (seen_size)
                fail = "501 5.5.4 Duplicate SIZE parameter";
            else if (n == 0 || n > 20 || strspn(val, "0123456789") != n)
                fail = "501 5.5.4 Bad SIZE value";
            else if (n > 18 || strtoll(val, NULL, 10) > (long long)s->max_size) {
                snprintf(failbuf, sizeof failbuf,
                         "552 5.3.4 Message size exceeds the limit of %lld octets",
                         (long long)s->max_size);
                fail = failbuf;
            }
            seen_size = true;
        } else if (strcasecmp(key, "RET") == 0) {
            if (ret != OPTS_RET_UNSET)
                fail = "501 5.5.4 Duplicate RET parameter";
            else if (val != NULL && strcasecmp(val, "FULL") == 0)
                ret = OPTS_RET_FULL;
            else if (val != NULL && strcasecmp(val, "HDRS") == 0)
                ret = OPTS_RET_HDRS;
            else
                fail = "501 5.5.4 Bad RET value (FULL or HDRS)";
        } else if (strcasecmp(key, "ENVID") == 0) {
            if (envid != NULL)
                fail = "501 5.5.4 Duplicate ENVID parameter";
            else if (val == NULL || *val == '\0' || strlen(val) > SMTPD_ENVID_MAX ||
                     (envid = smtpd_xtext_decode(val)) == NULL || !smtpd_printable(envid))
                fail = "501 5.5.4 Bad ENVID value (xtext of printable ASCII, at most 100 "
                       "octets)";
        } else {
            snprintf(failbuf, sizeof failbuf, "555 5.5.4 Unsupported parameter %.64s", key);
            fail = failbuf;
        }
    }
    free(params);
    if (fail != NULL) {
        free(addr);
        free(envid);
        smtpd_error(s, "%s", fail);
        return;
    }
    s->in_txn = true;
    s->sender = addr;
    s->body = body;
    s->ret = ret;
    s->envid = envid;
    smtpd_reply(s, "250 2.1.0 Ok");
}

static void smtpd_cmd_rcpt(struct smtpd *s)
{
    if (!s->in_txn) {
        smtpd_error(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    s->rcpt_attempts++;
    const char *p = smtpd_after_keyword(s->line, "TO:");
    if (p == NULL) {
        smtpd_error(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    char *addr = NULL;
    struct result why;
    bool ok = smtpd_parse_path(&p, &addr, &why);
    if (ok && addr[0] == '\0') {
        free(addr);
        ok = false;
        result_set(&why, OUTCOME_DATAERR, "empty address");
    }
    if (!ok) {
        smtpd_error(s, "501 5.1.3 Bad recipient address syntax: %s", why.text);
        return;
    }
    if (*p != '\0' && *p != ' ') {
        free(addr);
        smtpd_error(s, "501 5.5.4 Syntax: RCPT TO:<address> [parameters]");
        return;
    }

    unsigned notify = 0;
    bool seen_orcpt = false;
    char *params = mem_strdup(p);
    char *cur = params, *key, *val;
    const char *fail = NULL;
    char failbuf[SMTPD_TEXT_MAX];
    while (fail == NULL && smtpd_next_param(&cur, &key, &val)) {
        if (s->helo != SMTPD_HELO_ESMTP) {
            fail = "555 5.5.4 Parameters need EHLO";
        } else if (strcasecmp(key, "NOTIFY") == 0) {
            if (notify != 0)
                fail = "501 5.5.4 Duplicate NOTIFY parameter";
            else if ((notify = smtpd_parse_notify(val)) == 0)
                fail = "501 5.5.4 Bad NOTIFY value (NEVER, or SUCCESS,FAILURE,DELAY)";
        } else if (strcasecmp(key, "ORCPT") == 0) {
            if (seen_orcpt)
                fail = "501 5.5.4 Duplicate ORCPT parameter";
            else if (!smtpd_orcpt_ok(val))
                fail = "501 5.5.4 Bad ORCPT value (type;xtext)";
            seen_orcpt = true;
        } else {
            snprintf(failbuf, sizeof failbuf, "555 5.5.4 Unsupported parameter %.64s", key);
            fail = failbuf;
        }
    }
    free(params);
    if (fail != NULL) {
        free(addr);
        smtpd_error(s, "%s", fail);
        return;
    }
    if (s->nrcpts >= SMTPD_MAX_RCPTS) {
        free(addr);
        smtpd_reply(s, "452 4.5.3 Too many recipients");
        return;
    }
    if (s->nrcpts > 0 && notify != s->notify) {
        free(addr);
        smtpd_reply(s, "452 4.5.3 A different DSN NOTIFY needs a separate transaction");
        return;
    }
    s->rcpts = mem_resize(s->rcpts, s->nrcpts + 1, sizeof *s->rcpts);
    s->rcpts[s->nrcpts++] = addr;
    s->notify = notify;
    smtpd_reply(s, "250 2.1.5 Ok");
}

/* Where DATA goes: buffered writes into the spool file, up to the size limit. */
struct smtpd_spool {
    int fd;
    char *buf;
    size_t len;
    off_t size; /* octets of the message so far; max_size + 1 once over the limit */
    bool too_big;
    int write_errno;
};

static void smtpd_spool_flush(struct smtpd_spool *sp)
{
    if (sp->write_errno == 0)
        sp->write_errno = fdio_write_all(sp->fd, sp->buf, sp->len);
    sp->len = 0;
}

static void smtpd_spool_put(struct smtpd_spool *sp, const char *p, size_t n, off_t max)
{
    if (sp->too_big || (off_t)n > max - sp->size) {
        sp->too_big = true;
        sp->size = max + 1;
        return;
    }
    sp->size += (off_t)n;
    if (sp->write_errno != 0)
        return;
    while (n > 0) {
        size_t room = SMTPD_SPOOL_BUF - sp->len;
        size_t c = n < room ? n : room;
        memcpy(sp->buf + sp->len, p, c);
        sp->len += c;
        p += c;
        n -= c;
        if (sp->len == SMTPD_SPOOL_BUF)
            smtpd_spool_flush(sp);
    }
}

/*
 * Reads DATA up to the line holding only "." (CRLF or LF terminated) and
 * writes it unstuffed to sp.  false when the input ends first.
 */
static bool smtpd_read_data(struct smtpd *s, struct smtpd_spool *sp)
{
    enum { BOL, MID, DOT, DOT_CR } state = BOL;
    for (;;) {
        if (s->in_pos == s->in_len && !smtpd_fill(s))
            return false;
        const char *p = s->in + s->in_pos;
        size_t n = s->in_len - s->in_pos;
        switch (state) {
        case MID: {
            const char *nl = memchr(p, '\n', n);
            size_t take = nl != NULL ? (size_t)(nl - p) + 1 : n;
            smtpd_spool_put(sp, p, take, s->max_size);
            s->in_pos += take;
            if (nl != NULL)
                state = BOL;
            break;
        }
        case BOL:
            if (*p == '.') {
                s->in_pos++;
                state = DOT;
            } else {
                state = MID;
            }
            break;
        case DOT:
            if (*p == '\n') {
                s->in_pos++;
                return true;
            }
            if (*p == '\r') {
                s->in_pos++;
                state = DOT_CR;
            } else {
                state = MID; /* the leading dot is dropped */
            }
            break;
        case DOT_CR:
            if (*p == '\n') {
                s->in_pos++;
                return true;
            }
            smtpd_spool_put(sp, "\r", 1, s->max_size);
            state = MID;
            break;
        }
    }
}

int smtpd_reply_for(enum outcome o, const char **enhanced)
{
    static const struct {
        int code;
        const char *enh;
    } table[] = {
        [OUTCOME_OK] = {250, "2.0.0"},        [OUTCOME_USAGE] = {554, "5.5.4"},
        [OUTCOME_DATAERR] = {554, "5.6.0"},   [OUTCOME_NOINPUT] = {451, "4.3.0"},
        [OUTCOME_NOUSER] = {554, "5.1.1"},    [OUTCOME_UNAVAILABLE] = {554, "5.0.0"},
        [OUTCOME_SOFTWARE] = {451, "4.3.0"},  [OUTCOME_OSERR] = {451, "4.3.0"},
        [OUTCOME_CANTCREAT] = {452, "4.3.1"}, [OUTCOME_IOERR] = {451, "4.3.0"},
        [OUTCOME_TEMPFAIL] = {451, "4.4.0"},  [OUTCOME_PROTOCOL] = {451, "4.5.0"},
        [OUTCOME_NOPERM] = {451, "4.7.0"},    [OUTCOME_CONFIG] = {451, "4.3.5"},
    };
    if ((unsigned)o >= sizeof table / sizeof table[0] || table[o].code == 0) {
        *enhanced = "4.3.0";
        return 451;
    }
    *enhanced = table[o].enh;
    return table[o].code;
}

/* Hands the spooled message to the hook and answers the final ".". */
static void smtpd_deliver(struct smtpd *s, struct smtpd_spool *sp)
{
    struct smtpd_envelope env = {
        .sender = s->sender,
        .rcpts = s->rcpts,
        .nrcpts = s->nrcpts,
        .notify = s->notify,
        .body = s->body,
        .ret = s->ret,
        .envid = s->envid,
        .size = sp->size,
    };
    struct submit_report rep;
    struct result r;
    memset(&rep, 0, sizeof rep);
    result_clear(&r);
    smtpd_flush(s);
    enum outcome o = OUTCOME_SOFTWARE;
    if (lseek(sp->fd, 0, SEEK_SET) != 0)
        result_set(&r, OUTCOME_IOERR, "cannot rewind the spool file: %s", strerror(errno));
    else if (s->hooks == NULL || s->hooks->deliver == NULL)
        result_set(&r, OUTCOME_SOFTWARE, "no delivery is configured");
    else
        o = s->hooks->deliver(s->hooks->arg, sp->fd, &env, &rep, &r);
    if (o == OUTCOME_OK) {
        rep.id[sizeof rep.id - 1] = '\0';
        if (rep.id[0] == '\0')
            smtpd_reply(s, "250 2.0.0 Ok");
        else if (rep.queued && !rep.delivered)
            smtpd_reply(s, "250 2.0.0 Ok: queued as %s", rep.id);
        else
            smtpd_reply(s, "250 2.0.0 Ok: delivered as %s", rep.id);
        return;
    }
    const char *enh;
    int code = smtpd_reply_for(o, &enh);
    smtpd_reply(s, "%d %s %.*s", code, enh, SMTPD_TEXT_MAX,
                r.text[0] != '\0' ? r.text : result_name(o));
}

/* DATA: false when the client vanished before the final "." */
static bool smtpd_cmd_data(struct smtpd *s, const char *arg)
{
    if (*arg != '\0') {
        smtpd_error(s, "501 5.5.4 Syntax: DATA");
        return true;
    }
    if (!s->in_txn) {
        smtpd_error(s, "503 5.5.1 Error: need MAIL command");
        return true;
    }
    if (s->nrcpts == 0) {
        if (s->rcpt_attempts > 0)
            smtpd_error(s, "554 5.5.1 Error: no valid recipients");
        else
            smtpd_error(s, "503 5.5.1 Error: need RCPT command");
        return true;
    }
    struct result r;
    result_clear(&r);
    struct smtpd_spool sp = {.fd = message_spool_open(s->spool_dir, &r)};
    if (sp.fd < 0) {
        log_error("%s", r.text[0] != '\0' ? r.text : "cannot open the spool file");
        smtpd_reply(s, "451 4.3.0 Error: cannot open the spool file: %.*s", SMTPD_TEXT_MAX, r.text);
        return true;
    }
    sp.buf = mem_alloc(SMTPD_SPOOL_BUF);
    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    bool complete = smtpd_read_data(s, &sp);
    if (complete)
        smtpd_spool_flush(&sp);
    free(sp.buf);
    if (!complete) {
        close(sp.fd);
        return false;
    }
    if (sp.too_big)
        smtpd_reply(s, "552 5.3.4 Message size exceeds the limit of %lld octets",
                    (long long)s->max_size);
    else if (sp.write_errno != 0)
        smtpd_reply(s, "452 4.3.1 Error: cannot write the spool file: %s",
                    strerror(sp.write_errno));
    else
        smtpd_deliver(s, &sp);
    close(sp.fd);
    smtpd_txn_reset(s);
    return true;
}

/* Commands postie knows of and does not offer. */
static bool smtpd_is_unimplemented(const char *verb)
{
    static const char *const verbs[] = {"EXPN",     "ETRN", "TURN", "ATRN", "BDAT",
                                        "STARTTLS", "AUTH", "SEND", "SOML", "SAML"};
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcasecmp(verb, verbs[i]) == 0)
            return true;
    return false;
}

enum smtpd_step {
    SMTPD_STEP_NEXT = 0,
    SMTPD_STEP_QUIT,
    SMTPD_STEP_GONE, /* the client vanished in the middle of DATA */
};

static enum smtpd_step smtpd_command(struct smtpd *s)
{
    char verb[16];
    size_t vlen = strcspn(s->line, " ");
    if (vlen >= sizeof verb)
        vlen = sizeof verb - 1;
    memcpy(verb, s->line, vlen);
    verb[vlen] = '\0';

    size_t limit = SMTPD_LINE_MAX;
    if (strcasecmp(verb, "MAIL") == 0)
        limit = SMTPD_MAIL_LINE_MAX;
    else if (strcasecmp(verb, "RCPT") == 0)
        limit = SMTPD_RCPT_LINE_MAX;
    if (s->line_octets > limit) {
        smtpd_error(s, "500 5.5.2 Error: line too long");
        return SMTPD_STEP_NEXT;
    }
    if (s->line_nul) {
        smtpd_error(s, "500 5.5.2 Error: NUL in command line");
        return SMTPD_STEP_NEXT;
    }
    if (vlen == 0) {
        smtpd_error(s, "500 5.5.2 Error: bad syntax");
        return SMTPD_STEP_NEXT;
    }
    char *arg = smtpd_argument(s->line);
    if (strcasecmp(verb, "EHLO") == 0 || strcasecmp(verb, "HELO") == 0) {
        smtpd_cmd_helo(s, arg, strcasecmp(verb, "EHLO") == 0);
    } else if (strcasecmp(verb, "MAIL") == 0) {
        smtpd_cmd_mail(s);
    } else if (strcasecmp(verb, "RCPT") == 0) {
        smtpd_cmd_rcpt(s);
    } else if (strcasecmp(verb, "DATA") == 0) {
        if (!smtpd_cmd_data(s, arg))
            return SMTPD_STEP_GONE;
    } else if (strcasecmp(verb, "RSET") == 0) {
        if (*arg != '\0') {
            smtpd_error(s, "501 5.5.4 Syntax: RSET");
        } else {
            smtpd_txn_reset(s);
            smtpd_reply(s, "250 2.0.0 Ok");
        }
    } else if (strcasecmp(verb, "NOOP") == 0) {
        smtpd_reply(s, "250 2.0.0 Ok");
    } else if (strcasecmp(verb, "QUIT") == 0) {
        smtpd_reply(s, "221 2.0.0 Bye");
        return SMTPD_STEP_QUIT;
    } else if (strcasecmp(verb, "HELP") == 0) {
        smtpd_reply(s, "214-2.0.0 postie accepts mail for the configured smarthost");
        smtpd_reply(s, "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA");
        smtpd_reply(s, "214 2.0.0 RSET NOOP QUIT HELP VRFY");
    } else if (strcasecmp(verb, "VRFY") == 0) {
        if (*arg == '\0')
            smtpd_error(s, "501 5.5.4 Syntax: VRFY address");
        else
            smtpd_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt "
                           "delivery");
    } else if (smtpd_is_unimplemented(verb)) {
        smtpd_error(s, "502 5.5.1 Error: command not implemented");
    } else {
        smtpd_error(s, "500 5.5.2 Error: command not recognized");
    }
    return SMTPD_STEP_NEXT;
}

enum outcome smtpd_serve(int in_fd, int out_fd, const struct smtpd_settings *set,
                         const struct smtpd_hooks *hooks, struct result *r)
{
    result_clear(r);
    struct smtpd *s = mem_alloc(sizeof *s);
    s->in_fd = in_fd;
    s->out_fd = out_fd;
    s->hooks = hooks;
    s->hostname = set != NULL && set->hostname != NULL && set->hostname[0] != '\0' ? set->hostname
                                                                                   : "localhost";
    s->spool_dir = set != NULL && set->spool_dir != NULL ? set->spool_dir : "/tmp";
    s->max_size = set != NULL && set->max_size > 0 ? set->max_size : SMTPD_MAX_SIZE;
    int timeout = set != NULL && set->timeout > 0 ? set->timeout : SMTPD_TIMEOUT;
    s->timeout_ms = timeout > INT_MAX / 1000 ? INT_MAX : timeout * 1000;

    enum outcome rc = OUTCOME_OK;
    smtpd_reply(s, "220 %s ESMTP postie", s->hostname);
    for (;;) {
        if (s->out_broken) {
            rc = result_set(r, OUTCOME_IOERR, "%s", "");
            break;
        }
        if (!smtpd_read_line(s)) {
            if (s->input == SMTPD_INPUT_TIMEOUT) {
                smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->hostname);
                rc = result_set(r, OUTCOME_IOERR, "-bs: the SMTP client sent nothing for %d s%s",
                                timeout, s->in_txn ? "; the message was not accepted" : "");
            } else if (s->in_txn) {
                rc = result_set(r, OUTCOME_IOERR, "%s", "");
            }
            break;
        }
        enum smtpd_step step = smtpd_command(s);
        if (step == SMTPD_STEP_QUIT)
            break;
        if (step == SMTPD_STEP_GONE) {
            if (s->input == SMTPD_INPUT_TIMEOUT) {
                smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->hostname);
                rc = result_set(r, OUTCOME_IOERR,
                                "-bs: the SMTP client fell silent during DATA for %d s; "
                                "the message was not accepted",
                                timeout);
            } else {
                rc = result_set(r, OUTCOME_IOERR, "%s", "");
            }
            break;
        }
        if (s->errors >= SMTPD_MAX_ERRORS) {
            smtpd_reply(s, "421 4.7.0 %s Error: too many errors", s->hostname);
            rc = result_set(r, OUTCOME_PROTOCOL, "-bs: the SMTP client made too many errors");
            break;
        }
    }
    smtpd_flush(s);
    smtpd_txn_reset(s);
    free(s);
    return rc;
}

/* ------------------------------------------------------------ the real path */

static enum outcome smtpd_deliver_submit(void *arg, int fd, const struct smtpd_envelope *env,
                                         struct submit_report *rep, struct result *r)
{
    const struct submit_params *base = arg;
    struct opts o = *base->opts;
    o.mode = OPTS_MODE_SEND;
    o.extract = false;
    o.ignore_dots = true;
    o.sender = NULL;
    o.args = NULL;
    o.nargs = 0;
    if (env->body != OPTS_BODY_UNSET)
        o.body = env->body;
    if (env->ret != OPTS_RET_UNSET)
        o.ret = env->ret;
    if (env->envid != NULL)
        o.envid = env->envid;
    if (env->notify != 0)
        o.notify = env->notify;
    struct submit_params p = *base;
    p.opts = &o;
    p.smtp_sender = env->sender;
    p.smtp_rcpts = env->rcpts;
    p.smtp_nrcpts = env->nrcpts;
    enum outcome rc = submit_run(&p, fd, rep, r);
    if (rc == OUTCOME_OK && r->text[0] != '\0')
        log_warn("%s", r->text);
    return rc;
}

/*
 * Where DATA is spooled before submit_run() reads it: the queue directory
 * when this process may write there (the message ends up on that file
 * system anyway), else $TMPDIR (never trusted while privileged) or /tmp.
 */
static const char *smtpd_spool_dir(const struct conf *c)
{
    if (c->queue_dir != NULL && c->queue_dir[0] != '\0' &&
        faccessat(AT_FDCWD, c->queue_dir, W_OK | X_OK, AT_EACCESS) == 0)
        return c->queue_dir;
    return submit_tmpdir();
}

enum outcome smtpd_run(const struct submit_params *base, int in_fd, int out_fd, struct result *r)
{
    struct smtpd_settings set = {
        .hostname = base->conf->hostname,
        .spool_dir = smtpd_spool_dir(base->conf),
    };
    struct smtpd_hooks hooks = {.deliver = smtpd_deliver_submit, .arg = (void *)base};
    return smtpd_serve(in_fd, out_fd, &set, &hooks, r);
}
