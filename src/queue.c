/*
 * queue.c - the durable queue: store, list, flush, retry schedule, lifetime,
 * bounces (DESIGN section 7; the on-disk format is doc/QUEUE.md).
 *
 * Layout of queue_dir:
 *   ID.body      the canonical CRLF body, never rewritten; its flock() is
 *                the per-message lock
 *   ID.ctl       the control file (text); its appearance commits a message,
 *                it is only ever replaced by rename()
 *   tmp/         control files being written (stale ones removed after 1 h)
 *   corrupt/     control files that could not be parsed, with their bodies
 *   failed/      bounces (and null-sender messages) that could not be delivered
 */
#include "config.h"

#include "queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "fdio.h"
#include "log.h"
#include "mem.h"

#define QUEUE_DEFAULT_LIFETIME (5L * 24 * 3600)
#define QUEUE_BACKOFF_FIRST    (5L * 60)
#define QUEUE_BACKOFF_MAX      (4L * 3600)
#define QUEUE_STALE_TMP        (3600)
#define QUEUE_BATCH_MAX        5000

struct queue {
    char *dir;
    int dirfd;
    mode_t file_mode;
    mode_t dir_mode;
    queue_relay_fn relay;
    time_t clock;
};

/* ------------------------------------------------------------------ small helpers */

static time_t queue_now(const struct queue *q)
{
    return q != NULL && q->clock != 0 ? q->clock : time(NULL);
}

void queue_set_relay(struct queue *q, queue_relay_fn fn)
{
    q->relay = fn;
}

void queue_set_clock(struct queue *q, time_t now)
{
    q->clock = now;
}

long queue_backoff(unsigned attempts)
{
    long s = QUEUE_BACKOFF_FIRST;
    for (unsigned i = 1; i < attempts && s < QUEUE_BACKOFF_MAX; i++)
        s *= 2;
    return s < QUEUE_BACKOFF_MAX ? s : QUEUE_BACKOFF_MAX;
}

static long queue_lifetime(long lifetime)
{
    return lifetime > 0 ? lifetime : QUEUE_DEFAULT_LIFETIME;
}

bool queue_expired(time_t created, time_t now, long lifetime)
{
    return now - created >= queue_lifetime(lifetime);
}

static bool queue_id_valid(const char *id)
{
    size_t n = 0;
    if (id == NULL)
        return false;
    for (; id[n] != '\0'; n++) {
        char ch = id[n];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '-'))
            return false;
        if (n + 1 >= QUEUE_ID_MAX)
            return false;
    }
    return n > 0;
}

static void queue_random_hex(char *out, size_t nhex)
{
    unsigned char buf[32];
    size_t nbytes = (nhex + 1) / 2;
    if (nbytes > sizeof buf)
        nbytes = sizeof buf;
    ssize_t got = getrandom(buf, nbytes, GRND_NONBLOCK);
    if (got != (ssize_t)nbytes) {
        /* Entropy pool not ready: uniqueness is still checked by linkat(). */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_sec;
        for (size_t i = 0; i < nbytes; i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            buf[i] = (unsigned char)(x >> 56);
        }
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < nhex && i / 2 < nbytes; i++)
        out[i] = hex[(buf[i / 2] >> ((i % 2) ? 0 : 4)) & 0xf];
    out[nhex] = '\0';
}

/*
 * "20261128194954-0c35a-1f2e3d4c5b": UTC creation time, microseconds (hex),
 * then 40 random bits.  Ids sort in arrival order: seconds and microseconds
 * come from one clock reading (a second read apart from them could cross a
 * second boundary and sort a later message first).  A queue with a test
 * clock (queue_set_clock()) takes its seconds from that clock.
 */
static void queue_id_new(const struct queue *q, char id[QUEUE_ID_MAX])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t now = q != NULL && q->clock != 0 ? q->clock : ts.tv_sec;
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t n = strftime(id, QUEUE_ID_MAX, "%Y%m%d%H%M%S-", &tm);
    if (n == 0)
        n = (size_t)snprintf(id, QUEUE_ID_MAX, "%lld-", (long long)now);
    n += (size_t)snprintf(id + n, QUEUE_ID_MAX - n, "%05lx-", (long)(ts.tv_nsec / 1000) & 0xfffff);
    queue_random_hex(id + n, 10);
}

static void queue_rfc5322_date(time_t t, char *buf, size_t len)
{
    struct tm tm;
    localtime_r(&t, &tm);
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(buf, len, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
             off / 60, off % 60);
}

static bool queue_fsync_dir(int fd)
{
    return fsync(fd) == 0 || errno == EINVAL || errno == EROFS;
}

/* ------------------------------------------------------------------ control file format */

static const char *const queue_state_names[] = {
    [QUEUE_RCPT_PENDING] = "pending",
    [QUEUE_RCPT_DEFERRED] = "deferred",
    [QUEUE_RCPT_DELIVERED] = "delivered",
    [QUEUE_RCPT_FAILED] = "failed",
};

/* Stable names for enum result_failure in control files. */
static const char *const queue_failure_names[] = {
    [RESULT_FAIL_NONE] = "none",
    [RESULT_FAIL_RESOLVE] = "resolve",
    [RESULT_FAIL_CONNECT] = "connect",
    [RESULT_FAIL_TIMEOUT] = "timeout",
    [RESULT_FAIL_TLS] = "tls",
    [RESULT_FAIL_CERT] = "cert",
    [RESULT_FAIL_STARTTLS] = "starttls",
    [RESULT_FAIL_AUTH_REJECTED] = "auth-rejected",
    [RESULT_FAIL_AUTH_NOMECH] = "auth-nomech",
    [RESULT_FAIL_AUTH_CLEARTEXT] = "auth-cleartext",
    [RESULT_FAIL_GREETING] = "greeting",
    [RESULT_FAIL_TEMP_REPLY] = "temp-reply",
    [RESULT_FAIL_PERM_REPLY] = "perm-reply",
    [RESULT_FAIL_SOME_RCPTS] = "some-rcpts",
    [RESULT_FAIL_DROPPED] = "dropped",
    [RESULT_FAIL_PROTOCOL] = "protocol",
    [RESULT_FAIL_EXTENSION] = "extension",
    [RESULT_FAIL_LOCAL] = "local",
};
#define QUEUE_NFAILURES (sizeof queue_failure_names / sizeof queue_failure_names[0])

static const char *queue_failure_name(enum result_failure f)
{
    if ((size_t)f < QUEUE_NFAILURES && queue_failure_names[f] != NULL)
        return queue_failure_names[f];
    return "local";
}

static const struct {
    unsigned bit;
    const char *name;
} queue_notify_names[] = {
    {OPTS_NOTIFY_NEVER, "never"},
    {OPTS_NOTIFY_SUCCESS, "success"},
    {OPTS_NOTIFY_FAILURE, "failure"},
    {OPTS_NOTIFY_DELAY, "delay"},
};

/*
 * Escaping: bytes below 0x20, 0x7f and '%' become %XX; in a field (a word
 * of a multi-word line) the space too, and the empty string is "-" (a
 * literal "-" is "%2D").
 */
static void queue_put_escaped(FILE *out, const char *s, size_t len, bool field)
{
    if (field && len == 0) {
        fputc('-', out);
        return;
    }
    if (field && len == 1 && s[0] == '-') {
        fputs("%2D", out);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || ch == '%' || (field && ch == ' '))
            fprintf(out, "%%%02X", ch);
        else
            fputc(ch, out);
    }
}

static void queue_put_field(FILE *out, const char *s)
{
    fputc(' ', out);
    queue_put_escaped(out, s != NULL ? s : "", s != NULL ? strlen(s) : 0, true);
}

bool queue_control_write(FILE *out, const struct queue_control *c)
{
    fprintf(out, "postie-queue %d\n", QUEUE_FORMAT_VERSION);
    fprintf(out, "id %s\n", c->id);
    fprintf(out, "created %lld\n", (long long)c->created);
    fprintf(out, "attempts %u\n", c->attempts);
    fprintf(out, "last-attempt %lld\n", (long long)c->last_attempt);
    fprintf(out, "next-attempt %lld\n", (long long)c->next_attempt);
    fputs("sender", out);
    queue_put_field(out, c->sender);
    fputc('\n', out);
    fprintf(out, "size %lld\n", (long long)c->body_len);
    fprintf(out, "eightbit %d\n", c->eightbit ? 1 : 0);
    fprintf(out, "bounce %d\n", c->is_bounce ? 1 : 0);
    fprintf(out, "body %s\n",
            c->body == OPTS_BODY_7BIT       ? "7bit"
            : c->body == OPTS_BODY_8BITMIME ? "8bitmime"
                                            : "-");
    fprintf(out, "ret %s\n",
            c->ret == OPTS_RET_FULL   ? "full"
            : c->ret == OPTS_RET_HDRS ? "hdrs"
                                      : "-");
    if (c->envid != NULL) {
        fputs("envid", out);
        queue_put_field(out, c->envid);
        fputc('\n', out);
    }
    if (c->message_id != NULL) {
        fputs("message-id ", out);
        queue_put_escaped(out, c->message_id, strlen(c->message_id), false);
        fputc('\n', out);
    }
    if (c->last_error != NULL) {
        fputs("error ", out);
        queue_put_escaped(out, c->last_error, strlen(c->last_error), false);
        fputc('\n', out);
    }
    for (size_t i = 0; i < c->nrcpts; i++) {
        const struct queue_rcpt *rc = &c->rcpts[i];
        fputs("rcpt ", out);
        fputs(queue_state_names[rc->state <= QUEUE_RCPT_FAILED ? rc->state : 0], out);
        queue_put_field(out, rc->addr);
        char notify[64] = "";
        for (size_t k = 0; k < sizeof queue_notify_names / sizeof queue_notify_names[0]; k++) {
            if (rc->notify & queue_notify_names[k].bit) {
                if (notify[0] != '\0')
                    strcat(notify, ",");
                strcat(notify, queue_notify_names[k].name);
            }
        }
        queue_put_field(out, notify);
        fprintf(out, " %s %d", queue_failure_name(rc->failure), rc->reply.code);
        queue_put_field(out, rc->reply.enh);
        queue_put_field(out, rc->reply.text);
        fputc('\n', out);
    }
    /* The header block, one line per header line, CRLF removed. */
    const char *h = c->headers != NULL ? c->headers : "";
    size_t hlen = c->headers != NULL ? c->headers_len : 0;
    size_t start = 0;
    while (start < hlen) {
        size_t end = start;
        while (end < hlen && !(h[end] == '\r' && end + 1 < hlen && h[end + 1] == '\n'))
            end++;
        fputs("header ", out);
        queue_put_escaped(out, h + start, end - start, false);
        fputc('\n', out);
        start = end + 2;
    }
    fputs("end\n", out);
    return !ferror(out);
}

void queue_control_free(struct queue_control *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nrcpts; i++)
        free(c->rcpts[i].addr);
    free(c->rcpts);
    free(c->sender);
    free(c->headers);
    free(c->envid);
    free(c->message_id);
    free(c->last_error);
    memset(c, 0, sizeof *c);
}

static int queue_hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Undoes queue_put_escaped; NULL when malformed.  *outlen gets the length. */
static char *queue_unescape(const char *s, size_t len, bool field, size_t *outlen)
{
    if (field && len == 1 && s[0] == '-') {
        *outlen = 0;
        return mem_strdup("");
    }
    char *out = mem_alloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7f || (field && ch == ' ')) {
            free(out);
            return NULL;
        }
        if (ch == '%') {
            int hi = i + 2 < len ? queue_hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? queue_hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[n++] = (char)(hi * 16 + lo);
            i += 2;
            continue;
        }
        out[n++] = (char)ch;
    }
    out[n] = '\0';
    *outlen = n;
    return out;
}

/* An escaped string that must not hold NUL, CR or LF once decoded. */
static char *queue_unescape_text(const char *s, size_t len, bool field)
{
    size_t n;
    char *out = queue_unescape(s, len, field, &n);
    if (out == NULL)
        return NULL;
    if (strlen(out) != n || strpbrk(out, "\r\n") != NULL) {
        free(out);
        return NULL;
    }
    return out;
}

static bool queue_parse_ll(const char *s, long long min, long long max, long long *out)
{
    if (*s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool queue_parse_bool(const char *s, bool *out)
{
    if (strcmp(s, "0") == 0 || strcmp(s, "1") == 0) {
        *out = s[0] == '1';
        return true;
    }
    return false;
}

static bool queue_parse_notify(const char *s, unsigned *out)
{
    *out = 0;
    if (s[0] == '\0')
        return true;
    const char *p = s;
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        bool found = false;
        for (size_t k = 0; k < sizeof queue_notify_names / sizeof queue_notify_names[0]; k++) {
            if (strlen(queue_notify_names[k].name) == len &&
                strncmp(p, queue_notify_names[k].name, len) == 0) {
                *out |= queue_notify_names[k].bit;
                found = true;
            }
        }
        if (!found)
            return false;
        p += len;
        if (*p == ',')
            p++;
    }
    return true;
}

/* Splits a line into at most max space-separated words (in place). */
static size_t queue_split(char *line, char **words, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        words[n++] = p;
        char *sp = strchr(p, ' ');
        if (sp == NULL)
            return n;
        *sp = '\0';
        p = sp + 1;
    }
    return n + 1; /* too many */
}

static bool queue_parse_rcpt(char *rest, struct queue_rcpt *rc)
{
    char *w[8];
    if (queue_split(rest, w, 7) != 7)
        return false;
    bool ok = false;
    for (int s = QUEUE_RCPT_PENDING; s <= QUEUE_RCPT_FAILED; s++) {
        if (strcmp(w[0], queue_state_names[s]) == 0) {
            rc->state = (enum queue_rcpt_state)s;
            ok = true;
        }
    }
    if (!ok)
        return false;
    /* Only what the envelope stage could have produced goes on the wire. */
    struct result vr;
    rc->addr = queue_unescape_text(w[1], strlen(w[1]), true);
    if (rc->addr == NULL || addr_validate(rc->addr, &vr) != OUTCOME_OK)
        return false;
    char *notify = queue_unescape_text(w[2], strlen(w[2]), true);
    ok = notify != NULL && queue_parse_notify(notify, &rc->notify);
    free(notify);
    if (!ok)
        return false;
    ok = false;
    for (size_t f = 0; f < QUEUE_NFAILURES; f++) {
        if (queue_failure_names[f] != NULL && strcmp(w[3], queue_failure_names[f]) == 0) {
            rc->failure = (enum result_failure)f;
            ok = true;
        }
    }
    long long code;
    if (!ok || !queue_parse_ll(w[4], 0, 999, &code))
        return false;
    rc->reply.code = (int)code;
    char *enh = queue_unescape_text(w[5], strlen(w[5]), true);
    if (enh == NULL || strlen(enh) >= sizeof rc->reply.enh) {
        free(enh);
        return false;
    }
    strcpy(rc->reply.enh, enh);
    free(enh);
    char *text = queue_unescape_text(w[6], strlen(w[6]), true);
    if (text == NULL)
        return false;
    rc->reply.text = relay_text(text);
    free(text);
    return true;
}

enum outcome queue_control_read(FILE *in, struct queue_control *c, struct result *r)
{
    memset(c, 0, sizeof *c);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    long long total = 0;
    const char *why = NULL;
    bool ended = false, have_id = false, have_created = false, have_sender = false;
    bool have_size = false, have_next = false;
    size_t hcap = 0, rcap = 0;
    enum outcome rc = OUTCOME_DATAERR;

    while ((len = getline(&line, &cap, in)) != -1) {
        lineno++;
        total += len;
        if (total > QUEUE_CONTROL_MAX) {
            why = "file too large";
            goto fail;
        }
        if (ended) {
            why = "data after \"end\"";
            goto fail;
        }
        if (len == 0 || line[len - 1] != '\n') {
            why = "truncated line";
            goto fail;
        }
        line[--len] = '\0';
        if ((size_t)len != strlen(line)) {
            why = "NUL byte";
            goto fail;
        }
        char *key = line;
        char *val = strchr(line, ' ');
        if (val != NULL)
            *val++ = '\0';
        else
            val = line + len;
        long long n;

        if (lineno == 1) {
            if (strcmp(key, "postie-queue") != 0 || !queue_parse_ll(val, 1, INT_MAX, &n)) {
                why = "not a postie queue control file";
                goto fail;
            }
            if (n > QUEUE_FORMAT_VERSION) {
                rc = OUTCOME_UNAVAILABLE;
                why = "written by a newer postie (format version too new)";
                goto fail;
            }
            c->version = (int)n;
            continue;
        }
        if (strcmp(key, "end") == 0 && val[0] == '\0') {
            ended = true;
        } else if (strcmp(key, "id") == 0 && !have_id) {
            if (!queue_id_valid(val)) {
                why = "bad id";
                goto fail;
            }
            strcpy(c->id, val);
            have_id = true;
        } else if (strcmp(key, "created") == 0 && !have_created) {
            if (!queue_parse_ll(val, 0, INT64_MAX / 2, &n)) {
                why = "bad created time";
                goto fail;
            }
            c->created = (time_t)n;
            have_created = true;
        } else if (strcmp(key, "attempts") == 0) {
            if (!queue_parse_ll(val, 0, UINT_MAX, &n)) {
                why = "bad attempts";
                goto fail;
            }
            c->attempts = (unsigned)n;
        } else if (strcmp(key, "last-attempt") == 0) {
            if (!queue_parse_ll(val, 0, INT64_MAX / 2, &n)) {
                why = "bad last-attempt";
                goto fail;
            }
            c->last_attempt = (time_t)n;
        } else if (strcmp(key, "next-attempt") == 0) {
            if (!queue_parse_ll(val, 0, INT64_MAX / 2, &n)) {
                why = "bad next-attempt";
                goto fail;
            }
            c->next_attempt = (time_t)n;
            have_next = true;
        } else if (strcmp(key, "sender") == 0 && !have_sender) {
            struct result vr;
            c->sender = queue_unescape_text(val, strlen(val), true);
            if (c->sender == NULL ||
                (c->sender[0] != '\0' && addr_validate(c->sender, &vr) != OUTCOME_OK)) {
                why = "bad sender";
                goto fail;
            }
            have_sender = true;
        } else if (strcmp(key, "size") == 0 && !have_size) {
            if (!queue_parse_ll(val, 0, INT64_MAX / 2, &n)) {
                why = "bad size";
                goto fail;
            }
            c->body_len = (off_t)n;
            have_size = true;
        } else if (strcmp(key, "eightbit") == 0) {
            if (!queue_parse_bool(val, &c->eightbit)) {
                why = "bad eightbit";
                goto fail;
            }
        } else if (strcmp(key, "bounce") == 0) {
            if (!queue_parse_bool(val, &c->is_bounce)) {
                why = "bad bounce";
                goto fail;
            }
        } else if (strcmp(key, "body") == 0) {
            if (strcmp(val, "-") == 0)
                c->body = OPTS_BODY_UNSET;
            else if (strcmp(val, "7bit") == 0)
                c->body = OPTS_BODY_7BIT;
            else if (strcmp(val, "8bitmime") == 0)
                c->body = OPTS_BODY_8BITMIME;
            else {
                why = "bad body";
                goto fail;
            }
        } else if (strcmp(key, "ret") == 0) {
            if (strcmp(val, "-") == 0)
                c->ret = OPTS_RET_UNSET;
            else if (strcmp(val, "full") == 0)
                c->ret = OPTS_RET_FULL;
            else if (strcmp(val, "hdrs") == 0)
                c->ret = OPTS_RET_HDRS;
            else {
                why = "bad ret";
                goto fail;
            }
        } else if (strcmp(key, "envid") == 0 && c->envid == NULL) {
            c->envid = queue_unescape_text(val, strlen(val), true);
            if (c->envid == NULL) {
                why = "bad envid";
                goto fail;
            }
        } else if (strcmp(key, "message-id") == 0 && c->message_id == NULL) {
            c->message_id = queue_unescape_text(val, strlen(val), false);
            if (c->message_id == NULL) {
                why = "bad message-id";
                goto fail;
            }
        } else if (strcmp(key, "error") == 0 && c->last_error == NULL) {
            c->last_error = queue_unescape_text(val, strlen(val), false);
            if (c->last_error == NULL) {
                why = "bad error";
                goto fail;
            }
        } else if (strcmp(key, "rcpt") == 0) {
            if (c->nrcpts == rcap) {
                rcap = rcap ? rcap * 2 : 4;
                c->rcpts = mem_resize(c->rcpts, rcap, sizeof *c->rcpts);
            }
            struct queue_rcpt *qr = &c->rcpts[c->nrcpts++];
            memset(qr, 0, sizeof *qr);
            if (!queue_parse_rcpt(val, qr)) {
                why = "bad rcpt line";
                goto fail;
            }
        } else if (strcmp(key, "header") == 0) {
            size_t hn;
            char *h = queue_unescape(val, strlen(val), false, &hn);
            if (h == NULL || memchr(h, '\r', hn) != NULL || memchr(h, '\n', hn) != NULL) {
                free(h);
                why = "bad header line";
                goto fail;
            }
            if (c->headers_len + hn + 3 > hcap) {
                hcap = (c->headers_len + hn + 3) * 2;
                c->headers = mem_resize(c->headers, hcap, 1);
            }
            memcpy(c->headers + c->headers_len, h, hn);
            c->headers_len += hn;
            c->headers[c->headers_len++] = '\r';
            c->headers[c->headers_len++] = '\n';
            c->headers[c->headers_len] = '\0';
            free(h);
        } else {
            why = "unknown or repeated keyword";
            goto fail;
        }
    }
    if (ferror(in)) {
        why = "read error";
        lineno = 0;
        goto fail;
    }
    lineno++;
    if (c->version == 0) {
        why = "empty file";
        goto fail;
    }
    if (!ended) {
        why = "missing \"end\" (truncated)";
        goto fail;
    }
    if (!have_id || !have_created || !have_sender || !have_size || !have_next || c->nrcpts == 0) {
        why = "a required field is missing";
        goto fail;
    }
    if (c->headers == NULL)
        c->headers = mem_strdup("");
    free(line);
    return OUTCOME_OK;

fail:
    free(line);
    queue_control_free(c);
    if (lineno > 0)
        return result_set(r, rc, "line %ld: %s", lineno, why);
    return result_set(r, rc, "%s", why);
}

/* ------------------------------------------------------------------ open, close */

enum outcome queue_open(const char *dir, struct queue **qp, struct result *r)
{
    *qp = NULL;
    if (dir == NULL || dir[0] == '\0')
        return result_set(r, OUTCOME_CANTCREAT, "the queue is disabled (queue_dir is empty)");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return result_set(r, OUTCOME_CANTCREAT, "queue directory %s does not exist", dir);
        return result_set(r, OUTCOME_CANTCREAT, "cannot open queue directory %s: %s", dir,
                          strerror(errno));
    }
    if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        int e = errno;
        close(fd);
        return result_set(r, OUTCOME_CANTCREAT, "queue directory %s is not writable: %s", dir,
                          strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return result_set(r, OUTCOME_CANTCREAT, "cannot stat queue directory %s: %s", dir,
                          strerror(e));
    }
    struct queue *q = mem_alloc(sizeof *q);
    q->dir = mem_strdup(dir);
    q->dirfd = fd;
    /* A group-writable queue (setgid install, 2770) shares files with the group. */
    bool shared = (st.st_mode & S_IWGRP) != 0;
    q->file_mode = shared ? 0660 : 0600;
    q->dir_mode = shared ? 0770 : 0700; /* the setgid bit is inherited */
    static const char *const subdirs[] = {"tmp", "corrupt", "failed"};
    for (size_t i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
        if (mkdirat(fd, subdirs[i], q->dir_mode) != 0 && errno != EEXIST) {
            int e = errno;
            queue_close(q);
            return result_set(r, OUTCOME_CANTCREAT, "cannot create %s/%s: %s", dir, subdirs[i],
                              strerror(e));
        }
    }
    *qp = q;
    return OUTCOME_OK;
}

void queue_close(struct queue *q)
{
    if (q == NULL)
        return;
    if (q->dirfd >= 0)
        close(q->dirfd);
    free(q->dir);
    free(q);
}

/* ------------------------------------------------------------------ writing */

/* An unlinked file in the queue directory (O_TMPFILE); -1 with errno. */
static int queue_tmpfile(struct queue *q)
{
    int fd = openat(q->dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, q->file_mode);
    if (fd >= 0)
        fchmod(fd, q->file_mode);
    return fd;
}

/* Links the unlinked file fd into the queue directory as name. */
static int queue_link_fd(struct queue *q, int fd, const char *name)
{
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, q->dirfd, name, AT_SYMLINK_FOLLOW) == 0)
        return 0;
    if (errno != ENOENT)
        return -1;
    /* No /proc: AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH, try anyway. */
    return linkat(fd, "", q->dirfd, name, AT_EMPTY_PATH);
}

/*
 * Writes c to dest (relative to the queue directory) atomically: a new file
 * in tmp/, fsync'd, renamed over dest.  The directory is not fsync'd here.
 */
static bool queue_write_control(struct queue *q, const struct queue_control *c, const char *dest,
                                struct result *r)
{
    char tmp[QUEUE_ID_MAX + 64];
    snprintf(tmp, sizeof tmp, "tmp/%s.%ld.ctl", c->id, (long)getpid());
    int fd =
        openat(q->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, q->file_mode);
    if (fd < 0) {
        result_set(r, OUTCOME_CANTCREAT, "cannot create %s/%s: %s", q->dir, tmp, strerror(errno));
        return false;
    }
    fchmod(fd, q->file_mode);
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        int e = errno;
        close(fd);
        unlinkat(q->dirfd, tmp, 0);
        result_set(r, OUTCOME_CANTCREAT, "cannot write %s/%s: %s", q->dir, tmp, strerror(e));
        return false;
    }
    bool ok = queue_control_write(f, c) && fflush(f) == 0 && fsync(fd) == 0;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (ok && renameat(q->dirfd, tmp, q->dirfd, dest) != 0) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        unlinkat(q->dirfd, tmp, 0);
        result_set(r, OUTCOME_CANTCREAT, "cannot write the queue control file %s/%s: %s", q->dir,
                   dest, strerror(e));
    }
    return ok;
}

/*
 * Commits a new message: the body (src_fd, or empty when -1) linked in as
 * ID.body, then the control file as ID.ctl, with the fsyncs in between.
 * Fills c->id and c->body_len.  Nothing is left behind on failure.
 */
static enum outcome queue_commit(struct queue *q, struct queue_control *c, int src_fd,
                                 struct result *r)
{
    int bfd = -1;
    bool own = false;
    struct stat st;
    char body[QUEUE_ID_MAX + 16], ctl[QUEUE_ID_MAX + 16];
    body[0] = '\0';

    if (src_fd >= 0 && fstat(src_fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0) {
        bfd = src_fd;
        c->body_len = st.st_size;
        fchmod(bfd, q->file_mode);
    }
    for (int pass = 0; pass < 2; pass++) {
        if (bfd < 0) {
            bfd = queue_tmpfile(q);
            if (bfd < 0)
                return result_set(r, OUTCOME_CANTCREAT,
                                  "cannot create a file in queue directory %s: %s", q->dir,
                                  strerror(errno));
            own = true;
            off_t copied = 0;
            int e = src_fd >= 0 ? fdio_copy(src_fd, bfd, &copied) : 0;
            if (e != 0) {
                close(bfd);
                return result_set(r, OUTCOME_CANTCREAT,
                                  "cannot write the message body into queue directory %s: %s",
                                  q->dir, strerror(e));
            }
            c->body_len = copied;
        }
        if (fsync(bfd) != 0) {
            int e = errno;
            if (own)
                close(bfd);
            return result_set(r, OUTCOME_CANTCREAT,
                              "cannot write the message body into queue directory %s: %s", q->dir,
                              strerror(e));
        }
        /* Held until the control file is in place: orphan cleanup skips it. */
        flock(bfd, LOCK_EX);
        int linked = -1, e = 0;
        for (int tries = 0; tries < 16; tries++) {
            queue_id_new(q, c->id);
            snprintf(body, sizeof body, "%s.body", c->id);
            linked = queue_link_fd(q, bfd, body);
            e = errno;
            if (linked == 0 || e != EEXIST)
                break;
        }
        if (linked == 0)
            break;
        flock(bfd, LOCK_UN);
        if (own)
            close(bfd);
        bfd = -1;
        body[0] = '\0';
        /* Another file system, or a file we may not link: copy it (once). */
        if (pass == 0 && !own && (e == EXDEV || e == ENOENT || e == EPERM || e == EACCES))
            continue;
        return result_set(r, OUTCOME_CANTCREAT,
                          "cannot link the message body into queue directory %s: %s", q->dir,
                          strerror(e));
    }
    enum outcome rc = OUTCOME_OK;
    if (!queue_fsync_dir(q->dirfd)) {
        rc = result_set(r, OUTCOME_CANTCREAT, "cannot fsync queue directory %s: %s", q->dir,
                        strerror(errno));
        goto undo;
    }
    snprintf(ctl, sizeof ctl, "%s.ctl", c->id);
    if (!queue_write_control(q, c, ctl, r)) {
        rc = OUTCOME_CANTCREAT;
        goto undo;
    }
    if (!queue_fsync_dir(q->dirfd)) {
        rc = result_set(r, OUTCOME_CANTCREAT, "cannot fsync queue directory %s: %s", q->dir,
                        strerror(errno));
        unlinkat(q->dirfd, ctl, 0);
        goto undo;
    }
    flock(bfd, LOCK_UN);
    if (own)
        close(bfd);
    return OUTCOME_OK;

undo:
    unlinkat(q->dirfd, body, 0);
    queue_fsync_dir(q->dirfd);
    flock(bfd, LOCK_UN);
    if (own)
        close(bfd);
    c->id[0] = '\0';
    return rc;
}

/* Still to be tried: pending or deferred. */
static bool queue_rcpt_open(const struct queue_rcpt *qr)
{
    return qr->state == QUEUE_RCPT_PENDING || qr->state == QUEUE_RCPT_DEFERRED;
}

static bool queue_any_open(const struct queue_control *c)
{
    for (size_t k = 0; k < c->nrcpts; k++)
        if (queue_rcpt_open(&c->rcpts[k]))
            return true;
    return false;
}

static enum queue_rcpt_state queue_state_from_relay(enum relay_state s)
{
    switch (s) {
    case RELAY_DELIVERED:
        return QUEUE_RCPT_DELIVERED;
    case RELAY_FAILED:
        return QUEUE_RCPT_FAILED;
    case RELAY_DEFERRED:
        return QUEUE_RCPT_DEFERRED;
    case RELAY_PENDING:
    case RELAY_SKIP:
        break;
    }
    return QUEUE_RCPT_PENDING;
}

enum outcome queue_store(struct queue *q, const struct message *m, const struct queue_meta *meta,
                         char id[QUEUE_ID_MAX], struct result *r)
{
    static const struct queue_meta none = {0};
    if (meta == NULL)
        meta = &none;
    id[0] = '\0';
    if (m == NULL || m->sender == NULL || m->nrcpts == 0)
        return result_set(r, OUTCOME_SOFTWARE, "queue_store: a message without an envelope");
    time_t now = queue_now(q);
    bool tried = meta->last_error != NULL;
    for (size_t i = 0; meta->rcpts != NULL && i < m->nrcpts; i++)
        if (meta->rcpts[i].state != RELAY_PENDING && meta->rcpts[i].state != RELAY_SKIP)
            tried = true;
    struct queue_control c = {
        .version = QUEUE_FORMAT_VERSION,
        .created = now,
        .attempts = tried ? 1 : 0,
        .last_attempt = tried ? now : 0,
        .next_attempt = tried ? now + queue_backoff(1) : now,
        .sender = m->sender,
        .headers = m->headers,
        .headers_len = m->headers != NULL ? m->headers_len : 0,
        .eightbit = m->eightbit,
        .is_bounce = meta->is_bounce,
        .body = meta->body,
        .ret = meta->ret,
        .envid = (char *)meta->envid,
        .message_id = m->message_id,
        .last_error = (char *)meta->last_error,
    };
    c.rcpts = mem_array(m->nrcpts, sizeof *c.rcpts);
    c.nrcpts = m->nrcpts;
    size_t open_rcpts = 0;
    for (size_t i = 0; i < m->nrcpts; i++) {
        struct queue_rcpt *qr = &c.rcpts[i];
        qr->addr = m->rcpts[i];
        qr->notify = meta->notify;
        if (meta->rcpts != NULL) {
            const struct relay_rcpt *rr = &meta->rcpts[i];
            qr->notify = rr->notify;
            qr->state = queue_state_from_relay(rr->state);
            qr->failure = rr->failure;
            qr->reply = rr->reply;
        }
        if (queue_rcpt_open(qr))
            open_rcpts++;
    }
    enum outcome rc = OUTCOME_OK;
    if (open_rcpts > 0) {
        rc = queue_commit(q, &c, m->body_fd, r);
        if (rc == OUTCOME_OK) {
            snprintf(id, QUEUE_ID_MAX, "%s", c.id);
            log_info("%s: queued from=<%s> nrcpt=%zu size=%lld%s%s%s", c.id, m->sender, open_rcpts,
                     (long long)(c.headers_len + (size_t)c.body_len),
                     meta->last_error != NULL ? " (" : "",
                     meta->last_error != NULL ? meta->last_error : "",
                     meta->last_error != NULL ? ")" : "");
        }
    }
    free(c.rcpts);
    return rc;
}

/* ------------------------------------------------------------------ loading */

enum queue_load {
    QUEUE_LOAD_OK,
    QUEUE_LOAD_BUSY,    /* another process holds the lock */
    QUEUE_LOAD_GONE,    /* removed meanwhile */
    QUEUE_LOAD_CORRUPT, /* moved aside */
    QUEUE_LOAD_FOREIGN, /* newer format: left alone */
    QUEUE_LOAD_ERROR,
};

struct queue_msg {
    struct queue_control c;
    int body_fd;
    const struct conf_account *account;
    struct relay_rcpt *rr;
    bool done;
};

/* Renames name to sub/name, never over an existing file. */
static void queue_move_aside(struct queue *q, const char *name, const char *sub)
{
    char dest[QUEUE_ID_MAX + 64];
    for (int i = 0; i < 100; i++) {
        if (i == 0)
            snprintf(dest, sizeof dest, "%s/%s", sub, name);
        else
            snprintf(dest, sizeof dest, "%s/%s.%d", sub, name, i);
        if (renameat2(q->dirfd, name, q->dirfd, dest, RENAME_NOREPLACE) == 0)
            return;
        if (errno == EINVAL || errno == ENOSYS) {
            /* No RENAME_NOREPLACE on this file system: link, then unlink. */
            if (linkat(q->dirfd, name, q->dirfd, dest, 0) == 0) {
                unlinkat(q->dirfd, name, 0);
                return;
            }
        }
        if (errno != EEXIST)
            return;
    }
}

static void queue_corrupt(struct queue *q, const char *id, const char *why)
{
    char name[QUEUE_ID_MAX + 16];
    snprintf(name, sizeof name, "%s.ctl", id);
    queue_move_aside(q, name, "corrupt");
    snprintf(name, sizeof name, "%s.body", id);
    queue_move_aside(q, name, "corrupt");
    queue_fsync_dir(q->dirfd);
    log_warn("queue %s: message %s is corrupt (%s); moved to %s/corrupt/", q->dir, id, why, q->dir);
}

static enum outcome queue_read_control_at(struct queue *q, const char *id, struct queue_control *c,
                                          struct result *r)
{
    char name[QUEUE_ID_MAX + 16];
    snprintf(name, sizeof name, "%s.ctl", id);
    int fd = openat(q->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 && errno == ELOOP)
        return result_set(r, OUTCOME_DATAERR, "a symbolic link");
    if (fd < 0)
        return result_set(r, errno == ENOENT ? OUTCOME_NOINPUT : OUTCOME_IOERR, "%s: %s", name,
                          strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && (!S_ISREG(st.st_mode) || st.st_size > QUEUE_CONTROL_MAX)) {
        close(fd);
        memset(c, 0, sizeof *c);
        return result_set(r, OUTCOME_DATAERR, "not a regular file, or larger than %ld bytes",
                          QUEUE_CONTROL_MAX);
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return result_set(r, OUTCOME_IOERR, "%s: %s", name, strerror(errno));
    }
    enum outcome rc = queue_control_read(f, c, r);
    fclose(f);
    if (rc == OUTCOME_OK && strcmp(c->id, id) != 0) {
        queue_control_free(c);
        rc = result_set(r, OUTCOME_DATAERR, "the id inside does not match the file name");
    }
    return rc;
}

/* Opens, locks (non-blocking) and parses message id. */
static enum queue_load queue_load_locked(struct queue *q, const char *id, struct queue_msg *msg,
                                         struct result *r)
{
    memset(msg, 0, sizeof *msg);
    msg->body_fd = -1;
    char name[QUEUE_ID_MAX + 16];
    snprintf(name, sizeof name, "%s.body", id);
    int fd = openat(q->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ELOOP) {
            queue_corrupt(q, id, "the body file is a symbolic link");
            return QUEUE_LOAD_CORRUPT;
        }
        if (errno != ENOENT) {
            result_set(r, OUTCOME_IOERR, "cannot open %s/%s: %s", q->dir, name, strerror(errno));
            return QUEUE_LOAD_ERROR;
        }
        /* No body: a control file left alone is corrupt (bodies come first). */
        snprintf(name, sizeof name, "%s.ctl", id);
        struct stat st;
        if (fstatat(q->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            return QUEUE_LOAD_GONE;
        queue_corrupt(q, id, "the body file is missing");
        return QUEUE_LOAD_CORRUPT;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return QUEUE_LOAD_BUSY;
    }
    struct result why;
    result_clear(&why);
    enum outcome rc = queue_read_control_at(q, id, &msg->c, &why);
    if (rc == OUTCOME_NOINPUT) {
        close(fd);
        return QUEUE_LOAD_GONE;
    }
    if (rc == OUTCOME_UNAVAILABLE) {
        close(fd);
        log_warn("queue %s: message %s: %s; left alone", q->dir, id, why.text);
        return QUEUE_LOAD_FOREIGN;
    }
    if (rc == OUTCOME_IOERR) {
        close(fd);
        result_set(r, OUTCOME_IOERR, "cannot read %s/%s", q->dir, why.text);
        return QUEUE_LOAD_ERROR;
    }
    struct stat st;
    if (rc == OUTCOME_OK &&
        (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != msg->c.body_len)) {
        queue_control_free(&msg->c);
        rc = result_set(&why, OUTCOME_DATAERR, "the body file has the wrong size");
    }
    if (rc != OUTCOME_OK) {
        queue_corrupt(q, id, why.text);
        close(fd);
        return QUEUE_LOAD_CORRUPT;
    }
    msg->body_fd = fd;
    return QUEUE_LOAD_OK;
}

static void queue_msg_release(struct queue_msg *msg)
{
    if (msg->body_fd >= 0)
        close(msg->body_fd); /* drops the lock */
    msg->body_fd = -1;
    queue_control_free(&msg->c);
    free(msg->rr);
    msg->rr = NULL;
}

static int queue_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* name is "ID" + suffix with a valid ID: copies the ID into id. */
static bool queue_name_id(const char *name, const char *suffix, char id[QUEUE_ID_MAX])
{
    size_t n = strlen(name), k = strlen(suffix);
    if (n <= k || n - k >= QUEUE_ID_MAX || strcmp(name + n - k, suffix) != 0)
        return false;
    memcpy(id, name, n - k);
    id[n - k] = '\0';
    return queue_id_valid(id);
}

/* The ids of the queued messages (control files), sorted (oldest first). */
static char **queue_scan(struct queue *q, const char *filter, size_t *count)
{
    *count = 0;
    int fd = dup(q->dirfd);
    if (fd < 0)
        return NULL;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return NULL;
    }
    rewinddir(d);
    char **ids = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char id[QUEUE_ID_MAX];
        if (!queue_name_id(de->d_name, ".ctl", id) ||
            (filter != NULL && strstr(id, filter) == NULL))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ids = mem_resize(ids, cap, sizeof *ids);
        }
        ids[n++] = mem_strdup(id);
    }
    closedir(d);
    if (n > 1)
        qsort(ids, n, sizeof *ids, queue_cmp_str);
    *count = n;
    return ids;
}

static void queue_free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/*
 * tmp/ID.PID.ctl is only ever written by a process that holds ID's lock, so
 * once that lock can be taken (or the body has been gone for a minute) the
 * writer is dead and the file is garbage.
 */
static bool queue_tmp_abandoned(struct queue *q, const char *name, const struct stat *st,
                                time_t now)
{
    char id[QUEUE_ID_MAX], body[QUEUE_ID_MAX + 16];
    size_t len = strcspn(name, ".");
    if (len == 0 || len >= QUEUE_ID_MAX)
        return false;
    memcpy(id, name, len);
    id[len] = '\0';
    if (!queue_id_valid(id))
        return false;
    snprintf(body, sizeof body, "%s.body", id);
    int fd = openat(q->dirfd, body, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return errno == ENOENT && now - st->st_mtime > 60;
    bool free_lock = flock(fd, LOCK_EX | LOCK_NB) == 0;
    close(fd);
    return free_lock;
}

/*
 * Removes what a crash can leave: stale files in tmp/, and bodies whose
 * control file never appeared (or was already removed).  A body is only
 * removed once its lock can be taken and the control file is still absent.
 */
static void queue_cleanup(struct queue *q, time_t now)
{
    int fd = dup(q->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char id[QUEUE_ID_MAX], ctl[QUEUE_ID_MAX + 16];
        if (!queue_name_id(de->d_name, ".body", id))
            continue;
        snprintf(ctl, sizeof ctl, "%s.ctl", id);
        struct stat st;
        if (fstatat(q->dirfd, ctl, &st, AT_SYMLINK_NOFOLLOW) == 0)
            continue;
        int bfd = openat(q->dirfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (bfd < 0)
            continue;
        if (flock(bfd, LOCK_EX | LOCK_NB) == 0 &&
            fstatat(q->dirfd, ctl, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT) {
            unlinkat(q->dirfd, de->d_name, 0);
            log_info("queue %s: removed orphaned body %s", q->dir, de->d_name);
        }
        close(bfd);
    }
    closedir(d);

    int tfd = openat(q->dirfd, "tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    d = tfd >= 0 ? fdopendir(tfd) : NULL;
    if (d == NULL) {
        if (tfd >= 0)
            close(tfd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (!S_ISREG(st.st_mode))
            continue;
        if (now - st.st_mtime > QUEUE_STALE_TMP || queue_tmp_abandoned(q, de->d_name, &st, now))
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

/* ------------------------------------------------------------------ bounces */

static const char *queue_hostname(const struct conf *c, char *buf, size_t len)
{
    if (c != NULL && c->hostname != NULL && c->hostname[0] != '\0')
        return c->hostname;
    if (gethostname(buf, len) != 0 || buf[0] == '\0')
        snprintf(buf, len, "localhost");
    buf[len - 1] = '\0';
    return buf;
}

/* A recipient given up because time ran out (rather than a 5xx). */
static bool queue_rcpt_expired(const struct relay_rcpt *rr)
{
    if (rr->reply.code >= 500 && rr->reply.code < 600)
        return false;
    if (rr->reply.code >= 400 && rr->reply.code < 500)
        return true;
    return result_failure_is_temporary(rr->failure);
}

static bool queue_enh_valid(const char *enh, char cls)
{
    if (enh[0] != cls || enh[1] != '.')
        return false;
    const char *p = enh + 2;
    size_t digits = strspn(p, "0123456789");
    if (digits == 0 || digits > 3 || p[digits] != '.')
        return false;
    p += digits + 1;
    digits = strspn(p, "0123456789");
    return digits > 0 && digits <= 3 && p[digits] == '\0';
}

static void queue_dsn_status(const struct relay_rcpt *rr, char *buf, size_t len)
{
    if (queue_rcpt_expired(rr)) {
        if (queue_enh_valid(rr->reply.enh, '4'))
            snprintf(buf, len, "%s", rr->reply.enh);
        else if (rr->reply.code == 0 &&
                 (rr->failure == RESULT_FAIL_CONNECT || rr->failure == RESULT_FAIL_RESOLVE ||
                  rr->failure == RESULT_FAIL_TIMEOUT || rr->failure == RESULT_FAIL_GREETING))
            snprintf(buf, len, "4.4.1");
        else
            snprintf(buf, len, "4.4.7");
        return;
    }
    if (queue_enh_valid(rr->reply.enh, '5'))
        snprintf(buf, len, "%s", rr->reply.enh);
    else
        snprintf(buf, len, "5.0.0");
}

/* Text safe for a header or report line: ASCII, no control characters. */
static void queue_put_ascii(FILE *out, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        fputc(ch < 0x20 || ch >= 0x7f ? '?' : ch, out);
    }
}

static void queue_put_reason(FILE *out, const struct relay_rcpt *rr)
{
    if (rr->reply.code != 0) {
        fprintf(out, "%d", rr->reply.code);
        if (rr->reply.enh[0] != '\0') {
            fputc(' ', out);
            queue_put_ascii(out, rr->reply.enh);
        }
        fputc(' ', out);
        queue_put_ascii(out, rr->reply.text != NULL ? rr->reply.text : "");
    } else if (rr->reply.text != NULL) {
        queue_put_ascii(out, rr->reply.text);
    } else {
        queue_put_ascii(out, result_failure_text(rr->failure));
    }
}

static bool queue_wants_failure_dsn(unsigned notify)
{
    if (notify == 0)
        return true;
    if (notify & OPTS_NOTIFY_NEVER)
        return false;
    return (notify & OPTS_NOTIFY_FAILURE) != 0;
}

/*
 * Composes the RFC 3464 report for the FAILED recipients in rcpts and
 * queues it to sender.  arrival is when the original was accepted.
 */
static enum outcome queue_bounce_parts(struct queue *q, const struct conf *c, const char *sender,
                                       const char *headers, size_t headers_len, const char *envid,
                                       const struct relay_rcpt *rcpts, size_t n, time_t arrival,
                                       const char *orig_id, struct result *r)
{
    size_t nfailed = 0;
    for (size_t i = 0; i < n; i++)
        if (rcpts[i].state == RELAY_FAILED && queue_wants_failure_dsn(rcpts[i].notify))
            nfailed++;
    if (nfailed == 0)
        return OUTCOME_OK;

    time_t now = queue_now(q);
    char hostbuf[256], date[64], adate[64], boundary[40], rnd[17], msgid[QUEUE_ID_MAX + 300];
    const char *host = queue_hostname(c, hostbuf, sizeof hostbuf);
    queue_rfc5322_date(now, date, sizeof date);
    queue_rfc5322_date(arrival, adate, sizeof adate);
    queue_random_hex(rnd, 16);
    snprintf(boundary, sizeof boundary, "=_postie_%s", rnd);
    queue_random_hex(rnd, 16);

    char *hbuf = NULL;
    size_t hlen = 0;
    FILE *h = open_memstream(&hbuf, &hlen);
    if (h == NULL)
        return result_set(r, OUTCOME_OSERR, "cannot compose a bounce: %s", strerror(errno));
    snprintf(msgid, sizeof msgid, "<%s.%s@%s>", orig_id != NULL ? orig_id : "bounce", rnd, host);
    fprintf(h, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host);
    fputs("To: ", h);
    queue_put_ascii(h, sender);
    fputs("\r\n", h);
    fputs("Subject: Undelivered Mail Returned to Sender\r\n", h);
    fprintf(h, "Date: %s\r\n", date);
    fprintf(h, "Message-ID: %s\r\n", msgid);
    fputs("Auto-Submitted: auto-replied\r\n", h);
    fputs("MIME-Version: 1.0\r\n", h);
    fprintf(h,
            "Content-Type: multipart/report; report-type=delivery-status;\r\n"
            "\tboundary=\"%s\"\r\n",
            boundary);
    fclose(h);

    int bfd = queue_tmpfile(q);
    if (bfd < 0) {
        free(hbuf);
        return result_set(r, OUTCOME_CANTCREAT, "cannot create a bounce in queue directory %s: %s",
                          q->dir, strerror(errno));
    }
    int dfd = dup(bfd);
    FILE *b = dfd >= 0 ? fdopen(dfd, "w") : NULL;
    if (b == NULL) {
        if (dfd >= 0)
            close(dfd);
        close(bfd);
        free(hbuf);
        return result_set(r, OUTCOME_CANTCREAT, "cannot write a bounce: %s", strerror(errno));
    }
    fputs("This is a MIME-encapsulated message.\r\n\r\n", b);
    fprintf(b, "--%s\r\n", boundary);
    fputs("Content-Description: Notification\r\n", b);
    fputs("Content-Type: text/plain; charset=us-ascii\r\n\r\n", b);
    fprintf(b, "This is the mail system at host %s.\r\n\r\n", host);
    fputs("Your message could not be delivered to one or more recipients.\r\n", b);
    fputs("It is attached below (headers only).\r\n\r\n", b);
    for (size_t i = 0; i < n; i++) {
        const struct relay_rcpt *rr = &rcpts[i];
        if (rr->state != RELAY_FAILED || !queue_wants_failure_dsn(rr->notify))
            continue;
        fputc('<', b);
        queue_put_ascii(b, rr->addr);
        fputs(">: ", b);
        if (queue_rcpt_expired(rr)) {
            fprintf(b, "delivery gave up after %ld seconds in the queue; last error: ",
                    (long)(now - arrival));
        } else if (rr->reply.code != 0) {
            fputs("the smarthost said: ", b);
        }
        queue_put_reason(b, rr);
        fputs("\r\n", b);
    }
    fprintf(b, "\r\n--%s\r\n", boundary);
    fputs("Content-Description: Delivery report\r\n", b);
    fputs("Content-Type: message/delivery-status\r\n\r\n", b);
    fputs("Reporting-MTA: dns; ", b);
    queue_put_ascii(b, host);
    fputs("\r\n", b);
    if (envid != NULL && envid[0] != '\0') {
        fputs("Original-Envelope-Id: ", b);
        queue_put_ascii(b, envid);
        fputs("\r\n", b);
    }
    fprintf(b, "Arrival-Date: %s\r\n", adate);
    for (size_t i = 0; i < n; i++) {
        const struct relay_rcpt *rr = &rcpts[i];
        if (rr->state != RELAY_FAILED || !queue_wants_failure_dsn(rr->notify))
            continue;
        char status[16];
        queue_dsn_status(rr, status, sizeof status);
        fputs("\r\nFinal-Recipient: rfc822; ", b);
        queue_put_ascii(b, rr->addr);
        fputs("\r\nAction: failed\r\n", b);
        fprintf(b, "Status: %s\r\n", status);
        if (rr->reply.code != 0) {
            fputs("Diagnostic-Code: smtp; ", b);
            queue_put_reason(b, rr);
            fputs("\r\n", b);
        } else {
            fputs("X-Postie-Reason: ", b);
            queue_put_reason(b, rr);
            fputs("\r\n", b);
        }
        fprintf(b, "Last-Attempt-Date: %s\r\n", date);
    }
    fprintf(b, "\r\n--%s\r\n", boundary);
    fputs("Content-Description: Undelivered Message Headers\r\n", b);
    fputs("Content-Type: text/rfc822-headers\r\n\r\n", b);
    bool eightbit = false;
    if (headers != NULL && headers_len > 0) {
        fwrite(headers, 1, headers_len, b);
        for (size_t i = 0; i < headers_len; i++)
            if ((unsigned char)headers[i] >= 0x80)
                eightbit = true;
    }
    fprintf(b, "\r\n--%s--\r\n", boundary);
    bool ok = fflush(b) == 0 && !ferror(b);
    int e = errno;
    if (fclose(b) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        close(bfd);
        free(hbuf);
        return result_set(r, OUTCOME_CANTCREAT, "cannot write a bounce in queue directory %s: %s",
                          q->dir, strerror(e));
    }

    char *to = mem_strdup(sender);
    struct queue_rcpt qr = {.addr = to, .notify = OPTS_NOTIFY_NEVER};
    struct queue_control bc = {
        .version = QUEUE_FORMAT_VERSION,
        .created = now,
        .next_attempt = now,
        .sender = "",
        .rcpts = &qr,
        .nrcpts = 1,
        .headers = hbuf,
        .headers_len = hlen,
        .eightbit = eightbit,
        .is_bounce = true,
        .message_id = msgid,
    };
    enum outcome rc = queue_commit(q, &bc, bfd, r);
    close(bfd);
    if (rc == OUTCOME_OK)
        log_info("%s: bounce for %s queued as %s (to=<%s>, %zu recipient%s)",
                 orig_id != NULL ? orig_id : "message", msgid, bc.id, sender, nfailed,
                 nfailed == 1 ? "" : "s");
    free(to);
    free(hbuf);
    return rc;
}

enum outcome queue_bounce(struct queue *q, const struct conf *c, const struct message *m,
                          const struct relay_rcpt *rcpts, size_t n, bool is_bounce,
                          struct result *r)
{
    if (is_bounce) {
        log_info("no bounce for a bounce (message %s)",
                 m->message_id != NULL ? m->message_id : "?");
        return OUTCOME_OK;
    }
    if (m->sender == NULL || m->sender[0] == '\0') {
        log_info("no bounce for the null sender (message %s)",
                 m->message_id != NULL ? m->message_id : "?");
        return OUTCOME_OK;
    }
    return queue_bounce_parts(q, c, m->sender, m->headers, m->headers != NULL ? m->headers_len : 0,
                              NULL, rcpts, n, queue_now(q), NULL, r);
}

/*
 * Due when the retry time has come, or when it lies further ahead than any
 * backoff could put it (the clock was set back): never stranded.
 */
static bool queue_is_due(const struct queue_control *c, time_t now)
{
    return c->next_attempt <= now || c->next_attempt - now > QUEUE_BACKOFF_MAX;
}

/* ------------------------------------------------------------------ list */

static void queue_format_age(time_t secs, char *buf, size_t len)
{
    if (secs < 0)
        secs = 0;
    if (secs < 120)
        snprintf(buf, len, "%llds", (long long)secs);
    else if (secs < 2 * 3600)
        snprintf(buf, len, "%lldm", (long long)secs / 60);
    else if (secs < 2 * 86400)
        snprintf(buf, len, "%lldh", (long long)secs / 3600);
    else
        snprintf(buf, len, "%lldd", (long long)secs / 86400);
}

enum outcome queue_list(struct queue *q, FILE *out, struct result *r)
{
    size_t n;
    char **ids = queue_scan(q, NULL, &n);
    time_t now = queue_now(q);
    size_t shown = 0;
    long long bytes = 0;
    for (size_t i = 0; i < n; i++) {
        struct queue_control c;
        struct result why;
        result_clear(&why);
        enum outcome rc = queue_read_control_at(q, ids[i], &c, &why);
        if (rc == OUTCOME_NOINPUT)
            continue; /* delivered meanwhile */
        if (shown++ == 0)
            fprintf(out, "%-30s %9s %6s  %s\n", "-Queue ID-", "--Size--", "-Age-",
                    "-Sender/Recipient-------");
        if (rc != OUTCOME_OK) {
            fprintf(out, "%-30s (unreadable control file: %s)\n\n", ids[i], why.text);
            continue;
        }
        char age[32];
        queue_format_age(now - c.created, age, sizeof age);
        long long size = (long long)c.headers_len + (long long)c.body_len;
        bytes += size;
        fprintf(out, "%-30s %9lld %6s  ", c.id, size, age);
        queue_put_ascii(out, c.sender[0] != '\0' ? c.sender : "<>");
        fputc('\n', out);
        if (c.last_error != NULL) {
            fprintf(out, "%49s(", "");
            queue_put_ascii(out, c.last_error);
            fputs(")\n", out);
        }
        for (size_t k = 0; k < c.nrcpts; k++) {
            if (!queue_rcpt_open(&c.rcpts[k]))
                continue;
            fprintf(out, "%49s", "");
            queue_put_ascii(out, c.rcpts[k].addr);
            fputc('\n', out);
        }
        fputc('\n', out);
        queue_control_free(&c);
    }
    queue_free_ids(ids, n);
    if (shown == 0)
        fputs("Mail queue is empty\n", out);
    else
        fprintf(out, "-- %lld Kbytes in %zu Request%s.\n", (bytes + 1023) / 1024, shown,
                shown == 1 ? "" : "s");
    if (fflush(out) != 0 || ferror(out))
        return result_set(r, OUTCOME_IOERR, "cannot write the queue listing: %s", strerror(errno));
    return OUTCOME_OK;
}

bool queue_has_due(struct queue *q)
{
    size_t n;
    char **ids = queue_scan(q, NULL, &n);
    time_t now = queue_now(q);
    bool due = false;
    for (size_t i = 0; i < n && !due; i++) {
        struct queue_control c;
        struct result why;
        if (queue_read_control_at(q, ids[i], &c, &why) != OUTCOME_OK)
            continue;
        due = queue_is_due(&c, now) && queue_any_open(&c);
        queue_control_free(&c);
    }
    queue_free_ids(ids, n);
    return due;
}

/* ------------------------------------------------------------------ delete */

enum outcome queue_delete(struct queue *q, const char *id, struct result *r)
{
    if (!queue_id_valid(id))
        return result_set(r, OUTCOME_USAGE, "'%s' is not a queue id", id);
    char body[QUEUE_ID_MAX + 16], ctl[QUEUE_ID_MAX + 16];
    snprintf(body, sizeof body, "%s.body", id);
    snprintf(ctl, sizeof ctl, "%s.ctl", id);
    int fd = openat(q->dirfd, body, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return result_set(r, OUTCOME_TEMPFAIL,
                          "message %s is being delivered right now; try again later", id);
    }
    if (unlinkat(q->dirfd, ctl, 0) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        if (e == ENOENT)
            return result_set(r, OUTCOME_USAGE, "no message %s in the queue", id);
        return result_set(r, OUTCOME_CANTCREAT, "cannot remove %s/%s: %s", q->dir, ctl,
                          strerror(e));
    }
    unlinkat(q->dirfd, body, 0);
    queue_fsync_dir(q->dirfd);
    if (fd >= 0)
        close(fd);
    log_info("%s: removed from the queue on request", id);
    return OUTCOME_OK;
}

/* ------------------------------------------------------------------ flush */

static void queue_remove(struct queue *q, const char *id)
{
    char name[QUEUE_ID_MAX + 16];
    snprintf(name, sizeof name, "%s.ctl", id);
    unlinkat(q->dirfd, name, 0); /* the commit point of the removal */
    snprintf(name, sizeof name, "%s.body", id);
    unlinkat(q->dirfd, name, 0);
}

/* An undeliverable bounce (or null-sender message): keep it in failed/. */
static void queue_to_failed(struct queue *q, struct queue_msg *msg, const char *why)
{
    char src[QUEUE_ID_MAX + 16], dst[QUEUE_ID_MAX + 32];
    snprintf(src, sizeof src, "%s.body", msg->c.id);
    snprintf(dst, sizeof dst, "failed/%s.body", msg->c.id);
    struct result r;
    result_clear(&r);
    if (linkat(q->dirfd, src, q->dirfd, dst, 0) == 0 || errno == EEXIST) {
        snprintf(dst, sizeof dst, "failed/%s.ctl", msg->c.id);
        if (queue_write_control(q, &msg->c, dst, &r)) {
            queue_remove(q, msg->c.id);
            log_warn("queue %s: %s %s to <%s> could not be delivered (%s); kept in %s/failed/",
                     q->dir, msg->c.is_bounce ? "bounce" : "null-sender message", msg->c.id,
                     msg->c.rcpts[0].addr, why, q->dir);
            return;
        }
    }
    /* Could not keep a copy: the administrator still gets the log line. */
    queue_remove(q, msg->c.id);
    log_warn("queue %s: %s %s to <%s> could not be delivered (%s); discarded (%s)", q->dir,
             msg->c.is_bounce ? "bounce" : "null-sender message", msg->c.id, msg->c.rcpts[0].addr,
             why, r.text[0] != '\0' ? r.text : strerror(errno));
}

/*
 * Records what the relay did for one message: delivered recipients are
 * final; deferred ones wait for the next retry or, past the lifetime, are
 * given up; failed ones are bounced.  local_error: the attempt never
 * reached the smarthost (never expires anything).
 */
static void queue_settle(struct queue *q, const struct conf *c, struct queue_msg *msg,
                         const struct relay_item *item, enum result_failure session_failure,
                         const char *session_text, bool local_error, struct queue_flush_stats *st)
{
    struct queue_control *ctl = &msg->c;
    time_t now = queue_now(q);
    long lifetime = c != NULL ? c->queue_lifetime : 0;
    bool expired = !local_error && queue_expired(ctl->created, now, lifetime);
    size_t open_rcpts = 0, delivered = 0, given_up = 0;
    char first_error[RESULT_TEXT_MAX] = "";

    for (size_t k = 0; k < ctl->nrcpts; k++) {
        struct relay_rcpt *rr = &msg->rr[k];
        struct queue_rcpt *qr = &ctl->rcpts[k];
        if (rr->state == RELAY_SKIP)
            continue;
        if (rr->state == RELAY_PENDING) {
            /* Not reached: the session ended before this recipient. */
            rr->state = RELAY_DEFERRED;
            rr->reply = item->reply;
            rr->failure = item->failure != RESULT_FAIL_NONE     ? item->failure
                          : session_failure != RESULT_FAIL_NONE ? session_failure
                                                                : RESULT_FAIL_LOCAL;
        }
        if (rr->state == RELAY_DEFERRED && rr->failure == RESULT_FAIL_NONE)
            rr->failure = RESULT_FAIL_TEMP_REPLY;
        if (rr->state == RELAY_FAILED && rr->failure == RESULT_FAIL_NONE)
            rr->failure = RESULT_FAIL_PERM_REPLY;
        if (rr->state == RELAY_DEFERRED && expired)
            rr->state = RELAY_FAILED;
        qr->reply = rr->reply;
        qr->failure = rr->failure;
        char why[RESULT_TEXT_MAX];
        relay_reply_describe(&rr->reply, rr->failure,
                             rr->reply.code == 0 && session_text != NULL ? session_text : NULL, why,
                             sizeof why);
        switch (rr->state) {
        case RELAY_DELIVERED:
            qr->state = QUEUE_RCPT_DELIVERED;
            qr->failure = RESULT_FAIL_NONE;
            delivered++;
            log_info("%s: to=<%s> status=sent (%s)", ctl->id, qr->addr, why);
            break;
        case RELAY_FAILED:
            given_up++;
            log_info("%s: to=<%s> status=bounced (%s%s)", ctl->id, qr->addr,
                     queue_rcpt_expired(rr) ? "expired: " : "", why);
            if (first_error[0] == '\0')
                snprintf(first_error, sizeof first_error, "%s", why);
            break;
        default:
            qr->state = QUEUE_RCPT_DEFERRED;
            open_rcpts++;
            log_info("%s: to=<%s> status=deferred (%s)", ctl->id, qr->addr, why);
            if (first_error[0] == '\0')
                snprintf(first_error, sizeof first_error, "%s", why);
            break;
        }
    }
    ctl->attempts++;
    ctl->last_attempt = now;
    ctl->next_attempt = now + queue_backoff(ctl->attempts);
    if (first_error[0] != '\0') {
        free(ctl->last_error);
        ctl->last_error = mem_strdup(first_error);
    }

    if (given_up > 0 && (ctl->is_bounce || ctl->sender[0] == '\0')) {
        /*
         * Never a bounce for a bounce, nor to the null sender: the
         * administrator finds the message in failed/ (and the log).
         */
        for (size_t k = 0; k < ctl->nrcpts; k++)
            if (msg->rr[k].state == RELAY_FAILED)
                ctl->rcpts[k].state = QUEUE_RCPT_FAILED;
        if (open_rcpts == 0) {
            queue_to_failed(q, msg, first_error);
            st->failed++;
            return;
        }
    } else if (given_up > 0) {
        struct result br;
        result_clear(&br);
        enum outcome brc =
            queue_bounce_parts(q, c, ctl->sender, ctl->headers, ctl->headers_len, ctl->envid,
                               msg->rr, ctl->nrcpts, ctl->created, ctl->id, &br);
        if (brc == OUTCOME_OK) {
            st->bounced++;
            for (size_t k = 0; k < ctl->nrcpts; k++)
                if (msg->rr[k].state == RELAY_FAILED)
                    ctl->rcpts[k].state = QUEUE_RCPT_FAILED;
        } else {
            /* Keep them deferred: tried again, and bounced, next time. */
            log_error("%s: cannot queue the bounce: %s", ctl->id, br.text);
            for (size_t k = 0; k < ctl->nrcpts; k++)
                if (msg->rr[k].state == RELAY_FAILED) {
                    ctl->rcpts[k].state = QUEUE_RCPT_DEFERRED;
                    open_rcpts++;
                }
        }
    }

    if (open_rcpts == 0) {
        queue_remove(q, ctl->id);
        if (given_up == 0)
            st->delivered++;
        log_info("%s: removed (%zu delivered, %zu bounced)", ctl->id, delivered, given_up);
        return;
    }
    char name[QUEUE_ID_MAX + 16];
    snprintf(name, sizeof name, "%s.ctl", ctl->id);
    struct result wr;
    result_clear(&wr);
    if (!queue_write_control(q, ctl, name, &wr))
        log_error("%s: cannot record the delivery state (%s); it may be repeated", ctl->id,
                  wr.text);
    st->deferred++;
}

/* Runs one session for the messages of msgs[] that use account a. */
static enum outcome queue_flush_account(struct queue *q, const struct conf *c,
                                        const struct conf_account *a, struct queue_msg *msgs,
                                        size_t nm, struct queue_flush_stats *st, struct result *r)
{
    struct relay_item *items = mem_array(nm, sizeof *items);
    struct queue_msg **owner = mem_array(nm, sizeof *owner);
    size_t n = 0;
    for (size_t i = 0; i < nm; i++) {
        struct queue_msg *msg = &msgs[i];
        if (msg->done || msg->account != a)
            continue;
        msg->done = true;
        struct queue_control *ctl = &msg->c;
        msg->rr = mem_array(ctl->nrcpts, sizeof *msg->rr);
        for (size_t k = 0; k < ctl->nrcpts; k++) {
            msg->rr[k].addr = ctl->rcpts[k].addr;
            msg->rr[k].notify = ctl->rcpts[k].notify;
            msg->rr[k].state = queue_rcpt_open(&ctl->rcpts[k]) ? RELAY_PENDING : RELAY_SKIP;
        }
        items[n] = (struct relay_item){
            .sender = ctl->sender,
            .rcpts = msg->rr,
            .nrcpts = ctl->nrcpts,
            .headers = ctl->headers,
            .headers_len = ctl->headers_len,
            .body_fd = msg->body_fd,
            .body_len = ctl->body_len,
            .eightbit = ctl->eightbit,
            .body = ctl->body,
            .ret = ctl->ret,
            .envid = ctl->envid,
        };
        owner[n++] = msg;
    }
    st->tried += n;
    struct relay_settings s = {.conf = c, .account = a, .verify_only = false};
    enum result_failure session_failure = RESULT_FAIL_NONE;
    struct result rr;
    result_clear(&rr);
    enum outcome rc;
    if (a == NULL)
        rc = result_set(&rr, OUTCOME_CONFIG, "no smarthost account is configured");
    else
        rc = (q->relay != NULL ? q->relay : relay_run)(&s, items, n, &session_failure, &rr);
    bool local_error = rc != OUTCOME_OK;
    if (local_error) {
        log_error("queue run: %s", rr.text);
        if (r != NULL)
            *r = rr;
        session_failure = RESULT_FAIL_LOCAL;
    } else if (session_failure != RESULT_FAIL_NONE) {
        log_warn("queue run: %s", rr.text[0] ? rr.text : result_failure_text(session_failure));
    }
    for (size_t i = 0; i < n; i++)
        queue_settle(q, c, owner[i], &items[i], session_failure, rr.text[0] ? rr.text : NULL,
                     local_error, st);
    free(items);
    free(owner);
    return rc;
}

/* How many messages (one open fd each) a batch may hold. */
static size_t queue_batch_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 256;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = rl;
        want.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > QUEUE_BATCH_MAX + 64)
        return QUEUE_BATCH_MAX;
    return rl.rlim_cur > 96 ? (size_t)rl.rlim_cur - 64 : 32;
}

enum outcome queue_flush(struct queue *q, const struct conf *c, bool due_only, const char *filter,
                         struct queue_flush_stats *st, struct result *r)
{
    struct queue_flush_stats dummy;
    if (st == NULL)
        st = &dummy;
    memset(st, 0, sizeof *st);
    time_t now = queue_now(q);
    queue_cleanup(q, now);
    size_t nids;
    char **ids = queue_scan(q, filter, &nids);
    size_t limit = queue_batch_limit();
    struct queue_msg *msgs = mem_array(limit < nids ? limit : (nids ? nids : 1), sizeof *msgs);
    enum outcome rc = OUTCOME_OK;
    size_t i = 0;
    while (i < nids) {
        size_t nm = 0;
        for (; i < nids && nm < limit; i++) {
            struct queue_msg *msg = &msgs[nm];
            struct result lr;
            result_clear(&lr);
            enum queue_load l = queue_load_locked(q, ids[i], msg, &lr);
            if (l == QUEUE_LOAD_ERROR)
                log_error("queue run: %s", lr.text);
            if (l != QUEUE_LOAD_OK)
                continue;
            if (!queue_any_open(&msg->c)) {
                /* Settled but not removed (crash after the last update). */
                queue_remove(q, msg->c.id);
                queue_msg_release(msg);
                continue;
            }
            if (due_only && !queue_is_due(&msg->c, now)) {
                queue_msg_release(msg);
                continue;
            }
            msg->account = c != NULL ? conf_account_for(c, msg->c.sender) : NULL;
            nm++;
        }
        for (size_t k = 0; k < nm; k++) {
            if (msgs[k].done)
                continue;
            enum outcome arc = queue_flush_account(q, c, msgs[k].account, msgs, nm, st, r);
            if (arc != OUTCOME_OK && rc == OUTCOME_OK)
                rc = arc;
        }
        queue_fsync_dir(q->dirfd);
        for (size_t k = 0; k < nm; k++)
            queue_msg_release(&msgs[k]);
    }
    free(msgs);
    queue_free_ids(ids, nids);
    return rc;
}
