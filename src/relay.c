/*
 * relay.c - one libESMTP session to the smarthost; see relay.h.
 *
 * bridge.c owns the socket and TLS; libESMTP's connect() is taken by the
 * bridge's handoff, and at SMTP_EV_CONNECT bridge_attach() puts the smarthost
 * socket (plaintext) or a socketpair to the TLS relay under it; libESMTP's
 * own STARTTLS stays off.  What libESMTP 1.1.0
 * cannot do by itself is done here through its callbacks
 * (shared/docs/libraries.md):
 *   - the monitor callback sees every buffer before libESMTP writes it and
 *     every reply as it is read.  It records the greeting and the EHLO
 *     keywords, declares BODY=8BITMIME only when the server offers it, and
 *     watches AUTH: a 235 marks success; a 535 (or no usable mechanism)
 *     cuts the bridge, and a MAIL FROM about to be written while AUTH has not
 *     succeeded cuts it too, so nothing is ever sent unauthenticated.  It
 *     also writes the -v transcript, with AUTH payloads replaced by ***.
 *   - the interact callback hands out the credentials only for an allowed
 *     mechanism over a secure link (or allow_plaintext_auth).
 *   - the message callback streams the header block, the empty line and the
 *     body (pread, 32 KiB); for -bv it aborts before the first byte.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <auth-client.h>
#include <libesmtp.h>

#include "relay.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bridge.h"
#include "log.h"
#include "mem.h"

#define RELAY_CHUNK    (32 * 1024)
#define RELAY_CRED_MAX 255 /* sasl-plain copies into a 513-byte buffer */

enum relay_stage {
    RELAY_ST_GREETING = 0, /* waiting for the (first) greeting */
    RELAY_ST_EHLO,         /* EHLO/HELO sent */
    RELAY_ST_AUTH,         /* an AUTH exchange is open */
    RELAY_ST_MAIL,         /* past AUTH: the transaction(s) */
};

struct relay_session;

/* One item as libESMTP sees it. */
struct relay_msg {
    struct relay_session *rs;
    struct relay_item *item;
    smtp_message_t m;
    smtp_recipient_t *r; /* per item->rcpts[i]; NULL when not offered */
    bool want_8bit;
    bool downgrade_tried;
    bool added;
};

/* The message callback's per-transfer state; libESMTP free()s it. */
struct relay_cbctx {
    int phase; /* 0 headers, 1 empty line, 2 body, 3 done */
    off_t off;
    char buf[RELAY_CHUNK];
};

struct relay_session {
    const struct relay_settings *s;
    const struct conf_account *a;
    struct bridge *bridge;
    char where[280];
    auth_context_t auth;
    char *user;
    char *password;
    bool auth_wanted; /* a user is configured and auth != none */
    bool secure;
    bool synthetic_greeting; /* STARTTLS mode: the first 220 comes from the bridge */

    enum relay_stage stage;
    char line[1024]; /* a server line split across reads */
    size_t linelen;
    bool line_overflow;
    int greeting_code;
    char greeting_text[256];
    int ehlo_code;
    char ehlo_text[256];
    bool ehlo_8bitmime, ehlo_auth, ehlo_login, ehlo_plain;

    bool auth_tried;      /* an AUTH command went out */
    bool auth_ok;         /* 235 */
    bool refused_pending; /* interact refused before the AUTH line was written */
    bool refused_current; /* the open AUTH exchange was refused by us */
    char auth_mech[32];

    enum result_failure stop; /* why we cut the bridge */
    char stop_text[600];

    bool aborted_data; /* the message callback aborted on purpose */
    struct relay_msg *msgs;
    size_t nmsgs;
};

/* ------------------------------------------------------------------ helpers */

void relay_reply_describe(const struct relay_reply *reply, enum result_failure f,
                          const char *fallback, char *buf, size_t len)
{
    const char *text = reply->text != NULL ? reply->text : "";
    if (reply->code != 0)
        snprintf(buf, len, "%d%s%s %s", reply->code, reply->enh[0] != '\0' ? " " : "", reply->enh,
                 text);
    else if (text[0] != '\0')
        snprintf(buf, len, "%s", text);
    else if (fallback != NULL && fallback[0] != '\0')
        snprintf(buf, len, "%s", fallback);
    else
        snprintf(buf, len, "%s", result_failure_text(f));
}

/* Copies server text into a one-line, control-free buffer. */
static void relay_sanitize(char *dst, size_t len, const char *src)
{
    size_t n = 0;
    if (src != NULL) {
        for (; *src != '\0' && n + 1 < len; src++) {
            unsigned char c = (unsigned char)*src;
            if (c == '\r' || c == '\n')
                break;
            dst[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
    }
    while (n > 0 && dst[n - 1] == ' ')
        n--;
    dst[n] = '\0';
}

/* The pool behind relay_text(): a chained hash table, never shrunk. */
struct relay_text_entry {
    struct relay_text_entry *next;
    uint64_t hash;
    char s[];
};
static struct relay_text_entry **relay_texts;
static size_t relay_texts_size, relay_texts_count;

const char *relay_text(const char *raw)
{
    char buf[RELAY_TEXT_MAX + 1];
    relay_sanitize(buf, sizeof buf, raw);
    if (buf[0] == '\0')
        return NULL;
    uint64_t h = 14695981039346656037ULL; /* FNV-1a */
    size_t n = 0;
    for (; buf[n] != '\0'; n++)
        h = (h ^ (unsigned char)buf[n]) * 1099511628211ULL;
    if (relay_texts_size > 0) {
        for (struct relay_text_entry *e = relay_texts[h % relay_texts_size]; e != NULL; e = e->next)
            if (e->hash == h && strcmp(e->s, buf) == 0)
                return e->s;
    }
    if (relay_texts_count >= relay_texts_size) {
        size_t size = relay_texts_size ? relay_texts_size * 2 : 64;
        struct relay_text_entry **t = mem_array(size, sizeof *t);
        for (size_t i = 0; i < relay_texts_size; i++) {
            for (struct relay_text_entry *e = relay_texts[i], *next; e != NULL; e = next) {
                next = e->next;
                e->next = t[e->hash % size];
                t[e->hash % size] = e;
            }
        }
        free(relay_texts);
        relay_texts = t;
        relay_texts_size = size;
    }
    struct relay_text_entry *e = mem_resize(NULL, sizeof *e + n + 1, 1);
    e->hash = h;
    memcpy(e->s, buf, n + 1);
    e->next = relay_texts[h % relay_texts_size];
    relay_texts[h % relay_texts_size] = e;
    relay_texts_count++;
    return e->s;
}

static void relay_copy_status(struct relay_reply *out, const smtp_status_t *st)
{
    memset(out, 0, sizeof *out);
    if (st == NULL)
        return;
    out->code = st->code;
    if (st->enh_class > 0) {
        /* "c.sss.ddd" by hand: one per recipient, and snprintf() is most of it */
        int part[3] = {st->enh_class % 10, st->enh_subject % 1000, st->enh_detail % 1000};
        char *p = out->enh;
        for (int i = 0; i < 3; i++) {
            int v = part[i] < 0 ? -part[i] : part[i];
            if (i > 0)
                *p++ = '.';
            if (v >= 100)
                *p++ = (char)('0' + v / 100);
            if (v >= 10)
                *p++ = (char)('0' + v / 10 % 10);
            *p++ = (char)('0' + v % 10);
        }
        *p = '\0';
    }
    out->text = relay_text(st->text);
}

static void relay_set_text(struct relay_reply *out, const char *text)
{
    memset(out, 0, sizeof *out);
    out->text = relay_text(text);
}

/* An address libESMTP may print verbatim in MAIL/RCPT (it validates nothing). */
static bool relay_addr_ok(const char *a, bool may_be_empty)
{
    if (a == NULL)
        return false;
    size_t n = strlen(a);
    if (n == 0)
        return may_be_empty;
    if (n > 900)
        return false;
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p < 0x20 || *p >= 0x7f || *p == '<' || *p == '>')
            return false;
    return true;
}

static bool relay_mech_allowed(const struct relay_session *rs, const char *mech)
{
    if (mech == NULL)
        return false;
    switch (rs->a->auth) {
    case CONF_AUTH_LOGIN:
        return strcasecmp(mech, "LOGIN") == 0;
    case CONF_AUTH_PLAIN:
        return strcasecmp(mech, "PLAIN") == 0;
    case CONF_AUTH_ANY:
        return strcasecmp(mech, "LOGIN") == 0 || strcasecmp(mech, "PLAIN") == 0;
    case CONF_AUTH_NONE:
    default:
        return false;
    }
}

/* Stops the session: nothing more reaches the server. */
static void relay_stop(struct relay_session *rs, enum result_failure f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void relay_stop(struct relay_session *rs, enum result_failure f, const char *fmt, ...)
{
    if (rs->stop == RESULT_FAIL_NONE) {
        rs->stop = f;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rs->stop_text, sizeof rs->stop_text, fmt, ap);
        va_end(ap);
        log_transcript("->", "QUIT", 4); /* what bridge_cut() sends instead */
    }
    bridge_cut(rs->bridge);
}

/* ------------------------------------------------------------------ monitor */

/* True when the EHLO keyword line kw (after "250-") names extension ext. */
static bool relay_kw_is(const char *kw, const char *ext)
{
    size_t n = strlen(ext);
    return strncasecmp(kw, ext, n) == 0 && (kw[n] == '\0' || kw[n] == ' ' || kw[n] == '=');
}

static void relay_ehlo_keyword(struct relay_session *rs, const char *kw)
{
    if (relay_kw_is(kw, "8BITMIME")) {
        rs->ehlo_8bitmime = true;
    } else if (relay_kw_is(kw, "AUTH")) {
        rs->ehlo_auth = true;
        const char *p = kw + 4;
        while (*p != '\0') {
            while (*p == ' ' || *p == '=')
                p++;
            const char *w = p;
            while (*p != '\0' && *p != ' ')
                p++;
            size_t n = (size_t)(p - w);
            if (n == 5 && strncasecmp(w, "LOGIN", 5) == 0)
                rs->ehlo_login = true;
            if (n == 5 && strncasecmp(w, "PLAIN", 5) == 0)
                rs->ehlo_plain = true;
        }
    }
}

/* The EHLO reply is complete (and libESMTP has not acted on it yet). */
static void relay_ehlo_done(struct relay_session *rs)
{
    if (rs->ehlo_code / 100 != 2)
        return;
    /* Declare 8-bit bodies only where the server takes them: libESMTP would
     * otherwise abort the whole session (EXTNA_8BITMIME). */
    if (rs->ehlo_8bitmime)
        for (size_t i = 0; i < rs->nmsgs; i++)
            if (rs->msgs[i].added && rs->msgs[i].want_8bit)
                smtp_8bitmime_set_body(rs->msgs[i].m, E8bitmime_8BITMIME);
    if (!rs->auth_wanted)
        return;
    bool usable = (rs->ehlo_login && relay_mech_allowed(rs, "LOGIN")) ||
                  (rs->ehlo_plain && relay_mech_allowed(rs, "PLAIN"));
    if (!usable)
        relay_stop(rs, RESULT_FAIL_AUTH_NOMECH,
                   "%s: the server offers no usable AUTH mechanism (%s; auth = %s)", rs->where,
                   rs->ehlo_auth ? "none of LOGIN/PLAIN as configured" : "no AUTH at all",
                   rs->a->auth == CONF_AUTH_LOGIN   ? "login"
                   : rs->a->auth == CONF_AUTH_PLAIN ? "plain"
                                                    : "any");
}

/* One complete server line (without CRLF). */
static void relay_server_line(struct relay_session *rs, const char *l, size_t n)
{
    bool final = n < 4 || l[3] != '-';
    int code = 0;
    if (n >= 3 && isdigit((unsigned char)l[0]) && isdigit((unsigned char)l[1]) &&
        isdigit((unsigned char)l[2]))
        code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    const char *text = n > 4 ? l + 4 : "";

    if (!(rs->stage == RELAY_ST_GREETING && rs->synthetic_greeting))
        log_transcript("<-", l, n);

    switch (rs->stage) {
    case RELAY_ST_GREETING:
        if (final) {
            rs->greeting_code = code;
            relay_sanitize(rs->greeting_text, sizeof rs->greeting_text, l);
        }
        break;
    case RELAY_ST_EHLO:
        if (code / 100 == 2 && n > 4 && (l[3] == '-' || l[3] == ' '))
            relay_ehlo_keyword(rs, text);
        if (final) {
            rs->ehlo_code = code;
            relay_sanitize(rs->ehlo_text, sizeof rs->ehlo_text, l);
            relay_ehlo_done(rs);
        }
        break;
    case RELAY_ST_AUTH:
        if (!final || code == 334)
            break;
        rs->stage = RELAY_ST_MAIL;
        if (rs->refused_current) {
            rs->refused_current = false; /* the reply to our own "*" */
        } else if (code / 100 == 2) {
            rs->auth_ok = true;
            log_debug("authenticated as %s (AUTH %s)", rs->user ? rs->user : "?", rs->auth_mech);
        } else {
            char t[256];
            relay_sanitize(t, sizeof t, l);
            relay_stop(rs, RESULT_FAIL_AUTH_REJECTED, "%s: AUTH %s as %s rejected: %s", rs->where,
                       rs->auth_mech, rs->user ? rs->user : "?", t);
        }
        break;
    case RELAY_ST_MAIL:
        break;
    }
}

static void relay_server_chunk(struct relay_session *rs, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = buf[i];
        if (c == '\n') {
            size_t n = rs->linelen;
            if (n > 0 && rs->line[n - 1] == '\r')
                n--;
            rs->line[n] = '\0';
            relay_server_line(rs, rs->line, n);
            rs->linelen = 0;
            rs->line_overflow = false;
        } else if (rs->linelen + 1 < sizeof rs->line) {
            rs->line[rs->linelen++] = c;
        } else {
            rs->line_overflow = true; /* keep the start; the rest is dropped */
        }
    }
}

/* One client line about to be written (without CRLF). */
static void relay_client_line(struct relay_session *rs, const char *l, size_t n)
{
    if (rs->stage == RELAY_ST_AUTH) {
        /* An AUTH continuation: base64 credentials, never shown. */
        log_transcript("->", n == 1 && l[0] == '*' ? "*" : "***", n == 1 && l[0] == '*' ? 1 : 3);
        return;
    }
    if (n >= 5 && strncasecmp(l, "AUTH ", 5) == 0) {
        const char *mech = l + 5;
        size_t ml = 0;
        while (5 + ml < n && mech[ml] != ' ')
            ml++;
        if (ml >= sizeof rs->auth_mech)
            ml = sizeof rs->auth_mech - 1;
        memcpy(rs->auth_mech, mech, ml);
        rs->auth_mech[ml] = '\0';
        char shown[64];
        int k = snprintf(shown, sizeof shown, "AUTH %s%s", rs->auth_mech, 5 + ml < n ? " ***" : "");
        log_transcript("->", shown, (size_t)k);
        rs->stage = RELAY_ST_AUTH;
        rs->auth_tried = true;
        rs->refused_current = rs->refused_pending;
        rs->refused_pending = false;
        return;
    }
    if ((n >= 5 && strncasecmp(l, "EHLO ", 5) == 0) ||
        (n >= 5 && strncasecmp(l, "HELO ", 5) == 0)) {
        rs->stage = RELAY_ST_EHLO;
        rs->ehlo_8bitmime = rs->ehlo_auth = rs->ehlo_login = rs->ehlo_plain = false;
    } else if (n >= 10 && strncasecmp(l, "MAIL FROM:", 10) == 0) {
        rs->stage = RELAY_ST_MAIL;
        /* The last line of defence: never a transaction without the AUTH the
         * configuration asks for.  This runs before the buffer is written. */
        if (rs->auth_wanted && !rs->auth_ok)
            relay_stop(rs, rs->auth_tried ? RESULT_FAIL_AUTH_REJECTED : RESULT_FAIL_AUTH_NOMECH,
                       "%s: %s", rs->where,
                       rs->auth_tried ? "authentication did not succeed"
                                      : "the server offers no usable AUTH mechanism");
    }
    if (rs->stop == RESULT_FAIL_NONE) /* else it is never written */
        log_transcript("->", l, n);
}

static void relay_client_chunk(struct relay_session *rs, const char *buf, size_t len)
{
    size_t start = 0;
    /* After a stop nothing libESMTP writes reaches the server: the -v
     * transcript shows only what was sent. */
    while (start < len && rs->stop == RESULT_FAIL_NONE) {
        size_t end = start;
        while (end < len && buf[end] != '\n')
            end++;
        size_t n = end - start;
        if (n > 0 && buf[start + n - 1] == '\r')
            n--;
        relay_client_line(rs, buf + start, n);
        start = end + 1;
    }
}

static void relay_monitor(const char *buf, int len, int writing, void *arg)
{
    struct relay_session *rs = arg;
    if (len <= 0)
        return;
    if (writing == SMTP_CB_READING)
        relay_server_chunk(rs, buf, (size_t)len);
    else if (writing == SMTP_CB_WRITING)
        relay_client_chunk(rs, buf, (size_t)len);
}

/* ------------------------------------------------------------------ AUTH */

static int relay_interact(auth_client_request_t req, char **result, int fields, void *arg)
{
    struct relay_session *rs = arg;
    const char *mech = auth_mechanism_name(rs->auth);
    bool ok = relay_mech_allowed(rs, mech) && rs->user != NULL && rs->password != NULL &&
              (bridge_is_secure(rs->bridge) || rs->a->allow_plaintext_auth);
    if (!ok) {
        log_debug("not offering credentials to AUTH %s", mech ? mech : "?");
        if (rs->stage == RELAY_ST_AUTH)
            rs->refused_current = true;
        else
            rs->refused_pending = true;
        return 0;
    }
    for (int i = 0; i < fields; i++) {
        if (req[i].flags & AUTH_USER)
            result[i] = rs->user;
        else if (req[i].flags & AUTH_PASS)
            result[i] = rs->password;
        else
            result[i] = (char *)"";
    }
    return 1;
}

/* ------------------------------------------------------------------ message */

static const char *relay_message_cb(void **ctx, int *len, void *arg)
{
    struct relay_msg *mm = arg;
    struct relay_cbctx *c = *ctx;
    if (c == NULL) {
        c = malloc(sizeof *c); /* released by libESMTP with free() */
        if (c == NULL) {
            if (len != NULL)
                *len = 0;
            errno = ENOMEM;
            return NULL;
        }
        c->phase = 0;
        c->off = 0;
        *ctx = c;
    }
    if (len == NULL) { /* rewind */
        c->phase = 0;
        c->off = 0;
        return NULL;
    }
    if (mm->rs->stop != RESULT_FAIL_NONE) {
        /* A stop: abort before the first byte; nothing is delivered. */
        mm->rs->aborted_data = true;
        *len = 0;
        errno = ECANCELED;
        return NULL;
    }
    /* A server without 8BITMIME gets a 7-bit rendering where one exists. */
    if (c->phase == 0 && mm->want_8bit && !mm->rs->ehlo_8bitmime && !mm->downgrade_tried &&
        mm->item->downgrade != NULL) {
        mm->downgrade_tried = true;
        if (mm->item->downgrade(mm->item, mm->item->downgrade_arg))
            log_debug("%s: no 8BITMIME: the body went out re-encoded", mm->rs->where);
    }
    struct relay_item *it = mm->item;
    for (;;) {
        switch (c->phase) {
        case 0:
            c->phase = 1;
            if (it->headers != NULL && it->headers_len > 0 && it->headers_len < 0x7fffffff) {
                *len = (int)it->headers_len;
                return it->headers;
            }
            continue;
        case 1:
            c->phase = 2;
            *len = 2;
            return "\r\n";
        case 2: {
            /* body_len is exact: no read is spent on seeing the end */
            if ((it->body_fd < 0 && it->body_mem == NULL) || c->off >= it->body_len) {
                int more = it->more != NULL ? it->more(it, it->more_arg, c->off) : 0;
                /* more to come, or the end came with octets still to send */
                if (more > 0 || (more == 0 && c->off < it->body_len))
                    continue;
                if (more < 0) {
                    /* No final dot: the server discards what it got. */
                    it->abandoned = true;
                    *len = 0;
                    errno = ECANCELED;
                    return NULL;
                }
                c->phase = 3;
                continue;
            }
            if (it->body_fd < 0) {
                /* held in memory: handed over as it is (a block at most) */
                off_t n = it->body_len - c->off;
                if (n > INT_MAX)
                    n = INT_MAX;
                const char *b = it->body_mem + c->off;
                c->off += n;
                *len = (int)n;
                return b;
            }
            size_t want = sizeof c->buf;
            if ((off_t)want > it->body_len - c->off)
                want = (size_t)(it->body_len - c->off);
            ssize_t n;
            do
                n = pread(it->body_fd, c->buf, want, c->off);
            while (n < 0 && errno == EINTR);
            if (n < 0) {
                int e = errno;
                log_error("reading the message body: %s", strerror(e));
                *len = 0;
                errno = e != 0 ? e : EIO; /* aborts the transfer */
                return NULL;
            }
            if (n == 0) {
                c->phase = 3;
                continue;
            }
            c->off += n;
            *len = (int)n;
            return c->buf;
        }
        default:
            *len = 0;
            errno = 0; /* a normal end, not an abort */
            return NULL;
        }
    }
}

static void relay_event(smtp_session_t session, int event, void *arg, ...)
{
    struct relay_session *rs = arg;
    (void)session;
    switch (event) {
    case SMTP_EV_CONNECT: {
        char why[200];
        if (!bridge_attach(rs->bridge, why, sizeof why))
            relay_stop(rs, RESULT_FAIL_LOCAL, "%s", why);
        break;
    }
    case SMTP_EV_EXTNA_DSN:
        log_debug("%s: the server does not offer DSN; sending without it", rs->where);
        break;
    case SMTP_EV_EXTNA_8BITMIME:
        log_debug("%s: the server does not offer 8BITMIME", rs->where);
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------------ results */

static void relay_mark_all(struct relay_item *items, size_t n, enum result_failure f,
                           const char *text)
{
    bool temp = result_failure_is_temporary(f);
    for (size_t i = 0; i < n; i++) {
        struct relay_item *it = &items[i];
        bool any = false;
        for (size_t j = 0; j < it->nrcpts; j++) {
            struct relay_rcpt *rc = &it->rcpts[j];
            if (rc->state != RELAY_PENDING)
                continue;
            rc->state = temp ? RELAY_DEFERRED : RELAY_FAILED;
            rc->failure = f;
            relay_set_text(&rc->reply, text);
            any = true;
        }
        if (any) {
            it->failure = f;
            relay_set_text(&it->reply, text);
        }
    }
}

static bool relay_is_5xx(int code)
{
    return code >= 500 && code < 600;
}

static bool relay_is_2xx(int code)
{
    return code >= 200 && code < 300;
}

/* Fills in one item from libESMTP's statuses; sf explains any "not reached". */
static void relay_collect(struct relay_msg *mm, enum result_failure sf, const char *sf_text,
                          bool verify_only)
{
    struct relay_item *it = mm->item;
    const smtp_status_t *ms = smtp_reverse_path_status(mm->m);
    const smtp_status_t *ts = smtp_message_transfer_status(mm->m);
    int mcode = ms != NULL ? ms->code : 0;
    int tcode = ts != NULL ? ts->code : 0;
    size_t failed_rcpt = 0, accepted = 0, deferred = 0, total = 0;
    if (sf == RESULT_FAIL_NONE)
        sf = RESULT_FAIL_DROPPED;

    it->failure = RESULT_FAIL_NONE;
    memset(&it->reply, 0, sizeof it->reply);
    if (mcode != 0 && !relay_is_2xx(mcode))
        relay_copy_status(&it->reply, ms);
    else if (tcode != 0 && !verify_only)
        relay_copy_status(&it->reply, ts);

    for (size_t j = 0; j < it->nrcpts; j++) {
        struct relay_rcpt *rc = &it->rcpts[j];
        if (rc->state != RELAY_PENDING)
            continue;
        total++;
        smtp_recipient_t r = mm->r[j];
        if (r == NULL)
            continue; /* invalid address, already settled */
        const smtp_status_t *rst = smtp_recipient_status(r);
        int rcode = rst != NULL ? rst->code : 0;

        if (mcode != 0 && !relay_is_2xx(mcode)) {
            /* MAIL FROM refused: the whole message. */
            relay_copy_status(&rc->reply, ms);
            if (mcode == 530) {
                rc->state = RELAY_DEFERRED;
                rc->failure = RESULT_FAIL_AUTH_REJECTED;
            } else if (relay_is_5xx(mcode)) {
                rc->state = RELAY_FAILED;
                rc->failure = RESULT_FAIL_PERM_REPLY;
            } else {
                rc->state = RELAY_DEFERRED;
                rc->failure = RESULT_FAIL_TEMP_REPLY;
            }
        } else if (rcode == 0) {
            rc->state = result_failure_is_temporary(sf) ? RELAY_DEFERRED : RELAY_FAILED;
            rc->failure = sf;
            relay_set_text(&rc->reply, sf_text);
        } else if (relay_is_5xx(rcode)) {
            relay_copy_status(&rc->reply, rst);
            rc->state = RELAY_FAILED;
            rc->failure = RESULT_FAIL_SOME_RCPTS;
            failed_rcpt++;
        } else if (!relay_is_2xx(rcode)) {
            relay_copy_status(&rc->reply, rst);
            rc->state = RELAY_DEFERRED;
            rc->failure = RESULT_FAIL_TEMP_REPLY;
        } else if (verify_only) {
            relay_copy_status(&rc->reply, rst);
            rc->state = RELAY_DELIVERED; /* deliverable */
        } else if (relay_is_2xx(tcode)) {
            relay_copy_status(&rc->reply, ts);
            rc->state = RELAY_DELIVERED;
        } else if (relay_is_5xx(tcode)) {
            relay_copy_status(&rc->reply, ts);
            rc->state = RELAY_FAILED;
            rc->failure = RESULT_FAIL_PERM_REPLY;
        } else if (tcode >= 400 && tcode < 500) {
            relay_copy_status(&rc->reply, ts);
            rc->state = RELAY_DEFERRED;
            rc->failure = RESULT_FAIL_TEMP_REPLY;
        } else {
            /* 0 or 354: the transfer never completed. */
            rc->state = result_failure_is_temporary(sf) ? RELAY_DEFERRED : RELAY_FAILED;
            rc->failure = sf;
            relay_set_text(&rc->reply, sf_text);
        }
        if (rc->state == RELAY_DELIVERED)
            accepted++;
        else if (rc->state == RELAY_DEFERRED)
            deferred++;
    }

    /* The item's own failure: the first problem that concerns the whole message. */
    bool any_failed = false, any_deferred = deferred > 0;
    for (size_t j = 0; j < it->nrcpts; j++)
        if (it->rcpts[j].state == RELAY_FAILED)
            any_failed = true;
    if (mcode != 0 && !relay_is_2xx(mcode)) {
        it->failure = mcode == 530          ? RESULT_FAIL_AUTH_REJECTED
                      : relay_is_5xx(mcode) ? RESULT_FAIL_PERM_REPLY
                                            : RESULT_FAIL_TEMP_REPLY;
    } else if (!verify_only && relay_is_5xx(tcode) && accepted + failed_rcpt < total) {
        it->failure = RESULT_FAIL_PERM_REPLY;
    } else if (any_failed && failed_rcpt == total) {
        it->failure = RESULT_FAIL_SOME_RCPTS; /* every recipient refused at RCPT */
    } else if (any_failed) {
        it->failure = RESULT_FAIL_SOME_RCPTS;
    } else if (any_deferred) {
        for (size_t j = 0; j < it->nrcpts; j++)
            if (it->rcpts[j].state == RELAY_DEFERRED) {
                it->failure = it->rcpts[j].failure;
                break;
            }
    }
    if (it->failure != RESULT_FAIL_NONE && it->reply.code == 0 && it->reply.text == NULL)
        relay_set_text(&it->reply, sf_text);
}

/*
 * -v: libESMTP switches its monitor off for the message data (and, with
 * CHUNKING, for the rest of the session), so the transcript may stop at
 * MAIL; the replies it recorded are listed here instead.
 */
static void relay_log_statuses(const struct relay_msg *mm, bool verify_only)
{
    struct relay_reply rep;
    relay_copy_status(&rep, smtp_reverse_path_status(mm->m));
    log_debug("MAIL FROM:<%s>: %d %s%s%s", mm->item->sender, rep.code, rep.enh,
              rep.enh[0] ? " " : "", rep.text);
    for (size_t j = 0; j < mm->item->nrcpts; j++) {
        if (mm->r[j] == NULL)
            continue;
        relay_copy_status(&rep, smtp_recipient_status(mm->r[j]));
        log_debug("RCPT TO:<%s>: %d %s%s%s", mm->item->rcpts[j].addr, rep.code, rep.enh,
                  rep.enh[0] ? " " : "", rep.text);
    }
    if (!verify_only) {
        relay_copy_status(&rep, smtp_message_transfer_status(mm->m));
        log_debug("end of data: %d %s%s%s", rep.code, rep.enh, rep.enh[0] ? " " : "", rep.text);
    }
}

/* true when some pending recipient of a message did not get a final answer. */
static bool relay_incomplete(const struct relay_msg *mm, bool verify_only)
{
    const smtp_status_t *ms = smtp_reverse_path_status(mm->m);
    if (ms != NULL && ms->code != 0 && !relay_is_2xx(ms->code))
        return false;
    const smtp_status_t *ts = smtp_message_transfer_status(mm->m);
    int tcode = ts != NULL ? ts->code : 0;
    for (size_t j = 0; j < mm->item->nrcpts; j++) {
        if (mm->r[j] == NULL)
            continue;
        const smtp_status_t *rst = smtp_recipient_status(mm->r[j]);
        int rcode = rst != NULL ? rst->code : 0;
        if (rcode == 0)
            return true;
        if (relay_is_2xx(rcode) && !verify_only && (tcode == 0 || tcode == 354))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------ setup */

static bool relay_auth_inited;

static void relay_wipe_credentials(struct relay_session *rs)
{
    mem_free_secret(rs->password);
    rs->password = NULL;
    free(rs->user);
    rs->user = NULL;
}

/* Adds item it (index i) to the session; false on a libESMTP error. */
static bool relay_add_item(struct relay_session *rs, smtp_session_t session, struct relay_msg *mm)
{
    struct relay_item *it = mm->item;
    size_t pending = 0;
    for (size_t j = 0; j < it->nrcpts; j++)
        if (it->rcpts[j].state == RELAY_PENDING)
            pending++;
    if (pending == 0)
        return true;
    it->failure = RESULT_FAIL_NONE;
    memset(&it->reply, 0, sizeof it->reply);
    if (!relay_addr_ok(it->sender, true)) {
        for (size_t j = 0; j < it->nrcpts; j++) {
            struct relay_rcpt *rc = &it->rcpts[j];
            if (rc->state != RELAY_PENDING)
                continue;
            rc->state = RELAY_FAILED;
            rc->failure = RESULT_FAIL_PERM_REPLY;
            relay_set_text(&rc->reply, "invalid sender address (not sent)");
        }
        it->failure = RESULT_FAIL_PERM_REPLY;
        relay_set_text(&it->reply, "invalid sender address (not sent)");
        return true;
    }

    smtp_message_t m = smtp_add_message(session);
    if (m == NULL)
        return false;
    mm->m = m;
    if (!smtp_set_reverse_path(m, it->sender) || !smtp_set_messagecb(m, relay_message_cb, mm))
        return false;
    /* The message stage already removed Bcc; this is a second line of defence. */
    smtp_set_header_option(m, "Bcc", Hdr_PROHIBIT, 1);
    if (it->ret == OPTS_RET_FULL)
        smtp_dsn_set_ret(m, Ret_FULL);
    else if (it->ret == OPTS_RET_HDRS)
        smtp_dsn_set_ret(m, Ret_HDRS);
    if (it->envid != NULL && it->envid[0] != '\0')
        smtp_dsn_set_envid(m, it->envid);
    /* RFC 1870 SIZE: exact, or for a body still being read, its estimate (none
     * when there is no telling) */
    off_t body = it->more != NULL ? it->body_estimate : it->body_len;
    if (!rs->s->verify_only && (it->more == NULL || body > 0))
        smtp_size_set_estimate(m, (unsigned long)it->headers_len + 2 +
                                      (body > 0 ? (unsigned long)body : 0));
    mm->want_8bit = it->body == OPTS_BODY_8BITMIME || (it->body == OPTS_BODY_UNSET && it->eightbit);

    size_t added = 0;
    for (size_t j = 0; j < it->nrcpts; j++) {
        struct relay_rcpt *rc = &it->rcpts[j];
        if (rc->state != RELAY_PENDING)
            continue;
        if (!relay_addr_ok(rc->addr, false)) {
            rc->state = RELAY_FAILED;
            rc->failure = RESULT_FAIL_SOME_RCPTS;
            relay_set_text(&rc->reply, "invalid recipient address (not sent)");
            continue;
        }
        smtp_recipient_t r = smtp_add_recipient(m, rc->addr);
        if (r == NULL)
            return false;
        mm->r[j] = r;
        added++;
        if (rc->notify != 0) {
            int flags = 0;
            if (rc->notify & OPTS_NOTIFY_NEVER) {
                flags = Notify_NEVER;
            } else {
                if (rc->notify & OPTS_NOTIFY_SUCCESS)
                    flags |= Notify_SUCCESS;
                if (rc->notify & OPTS_NOTIFY_FAILURE)
                    flags |= Notify_FAILURE;
                if (rc->notify & OPTS_NOTIFY_DELAY)
                    flags |= Notify_DELAY;
            }
            smtp_dsn_set_notify(r, (enum notify_flags)flags);
        }
    }
    mm->added = added > 0;
    if (added == 0)
        it->failure = RESULT_FAIL_SOME_RCPTS;
    return true;
}

static void relay_set_timeouts(smtp_session_t session, int seconds)
{
    long ms = (long)seconds * 1000;
    static const int which[] = {Timeout_GREETING, Timeout_ENVELOPE, Timeout_DATA, Timeout_TRANSFER,
                                Timeout_DATA2};
    for (size_t i = 0; i < sizeof which / sizeof which[0]; i++)
        smtp_set_timeout(session, which[i] | Timeout_OVERRIDE_RFC2822_MINIMUM, ms);
}

static enum result_failure relay_classify_errno(int serr)
{
    switch (serr) {
    case SMTP_ERR_INVALID_RESPONSE_SYNTAX:
    case SMTP_ERR_STATUS_MISMATCH:
    case SMTP_ERR_INVALID_RESPONSE_STATUS:
    case SMTP_ERR_UNTERMINATED_RESPONSE:
        return RESULT_FAIL_PROTOCOL;
    case SMTP_ERR_EXTENSION_NOT_AVAILABLE:
        return RESULT_FAIL_EXTENSION;
    default:
        return RESULT_FAIL_DROPPED;
    }
}

enum outcome relay_run(const struct relay_settings *s, struct relay_item *items, size_t n,
                       enum result_failure *session_failure, struct result *r)
{
    const struct conf_account *a = s->account;
    *session_failure = RESULT_FAIL_NONE;
    result_clear(r);
    if (a == NULL || a->host == NULL || a->host[0] == '\0')
        return result_set(r, OUTCOME_CONFIG, "no smarthost host is configured");

    size_t pending = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < items[i].nrcpts; j++)
            if (items[i].rcpts[j].state == RELAY_PENDING)
                pending++;
    if (pending == 0)
        return OUTCOME_OK;

    struct relay_session rs;
    memset(&rs, 0, sizeof rs);
    rs.s = s;
    rs.a = a;
    if (strchr(a->host, ':') != NULL)
        snprintf(rs.where, sizeof rs.where, "[%s]:%d", a->host, a->port);
    else
        snprintf(rs.where, sizeof rs.where, "%s:%d", a->host, a->port);
    rs.auth_wanted = a->user != NULL && a->user[0] != '\0' && a->auth != CONF_AUTH_NONE;

    /* Credentials: checked before anything goes on the wire. */
    if (rs.auth_wanted) {
        if (a->tls == CONF_TLS_NONE && !a->allow_plaintext_auth) {
            char text[512];
            snprintf(text, sizeof text,
                     "%s: refusing to send credentials over an unencrypted connection "
                     "(tls = none; allow_plaintext_auth is false)",
                     rs.where);
            relay_mark_all(items, n, RESULT_FAIL_AUTH_CLEARTEXT, text);
            *session_failure = RESULT_FAIL_AUTH_CLEARTEXT;
            result_set(r, OUTCOME_OK, "%s", text);
            return OUTCOME_OK;
        }
        char *pw = NULL;
        enum outcome rc = conf_password(a, &pw, r);
        if (rc != OUTCOME_OK) {
            mem_free_secret(pw);
            return rc;
        }
        if (pw == NULL)
            return result_set(r, OUTCOME_CONFIG,
                              "account %s: user is set but neither password nor "
                              "password_command is",
                              a->name ? a->name : "default");
        if (strlen(pw) > RELAY_CRED_MAX || strlen(a->user) > RELAY_CRED_MAX) {
            mem_free_secret(pw);
            return result_set(r, OUTCOME_CONFIG,
                              "account %s: user and password must be at most %d bytes",
                              a->name ? a->name : "default", RELAY_CRED_MAX);
        }
        rs.password = pw;
        rs.user = mem_strdup(a->user);
    }

    /* The connection and TLS, owned by postie. */
    char local[64];
    struct result berr;
    result_clear(&berr);
    const char *ehlo =
        s->conf != NULL && s->conf->hostname != NULL ? s->conf->hostname : "localhost";
    enum result_failure bf = bridge_open(a, ehlo, &rs.bridge, local, sizeof local, &berr);
    if (bf != RESULT_FAIL_NONE) {
        relay_wipe_credentials(&rs);
        relay_mark_all(items, n, bf, berr.text);
        *session_failure = bf;
        result_set(r, OUTCOME_OK, "%s", berr.text);
        return OUTCOME_OK;
    }
    rs.secure = bridge_is_secure(rs.bridge);
    rs.synthetic_greeting = a->tls == CONF_TLS_STARTTLS;

    smtp_session_t session = smtp_create_session();
    if (session == NULL) {
        bridge_close(rs.bridge);
        relay_wipe_credentials(&rs);
        return result_set(r, OUTCOME_OSERR, "libESMTP: cannot create a session");
    }
    rs.msgs = mem_array(n, sizeof *rs.msgs);
    rs.nmsgs = n;
    bool setup_ok = smtp_set_server(session, local) &&
                    smtp_set_monitorcb(session, relay_monitor, &rs, 0) &&
                    smtp_set_eventcb(session, relay_event, &rs) &&
                    smtp_starttls_enable(session, Starttls_DISABLED);
    if (setup_ok && s->conf != NULL && s->conf->hostname != NULL)
        setup_ok = smtp_set_hostname(session, s->conf->hostname);
    relay_set_timeouts(session, a->timeout > 0 ? a->timeout : 60);

    if (setup_ok && rs.auth_wanted) {
        if (!relay_auth_inited) {
            auth_client_init();
            relay_auth_inited = true;
        }
        rs.auth = auth_create_context();
        setup_ok = rs.auth != NULL && auth_set_mechanism_flags(rs.auth, AUTH_PLUGIN_PLAIN, 0) &&
                   auth_set_interact_cb(rs.auth, relay_interact, &rs) &&
                   smtp_auth_set_context(session, rs.auth);
    }
    size_t offered = 0;
    for (size_t i = 0; i < n && setup_ok; i++) {
        rs.msgs[i].rs = &rs;
        rs.msgs[i].item = &items[i];
        rs.msgs[i].r = mem_array(items[i].nrcpts, sizeof *rs.msgs[i].r);
        setup_ok = relay_add_item(&rs, session, &rs.msgs[i]);
        offered += rs.msgs[i].added;
    }
    if (setup_ok && s->verify_only)
        bridge_verify_only(rs.bridge);

    enum outcome result = OUTCOME_OK;
    if (!setup_ok) {
        char e[128];
        smtp_strerror(smtp_errno(), e, sizeof e);
        result = result_set(r, OUTCOME_SOFTWARE, "libESMTP: session setup failed: %s", e);
        bridge_close(rs.bridge);
        rs.bridge = NULL;
    } else if (offered == 0) {
        bridge_close(rs.bridge); /* nothing valid to send */
        rs.bridge = NULL;
    } else {
        int started = smtp_start_session(session);
        bridge_stop(rs.bridge);

        enum result_failure sf = RESULT_FAIL_NONE;
        char sf_text[1024] = "";
        bool incomplete = false;
        for (size_t i = 0; i < n; i++)
            if (rs.msgs[i].added && relay_incomplete(&rs.msgs[i], s->verify_only))
                incomplete = true;
        /* Why it went wrong, asked only when it did (each is a system call). */
        int serr = 0;
        char why[256] = "";
        enum bridge_end end = BRIDGE_END_NONE;
        if (!started || incomplete) {
            serr = smtp_errno();
            end = bridge_end_reason(rs.bridge, why, sizeof why);
        }

        if (rs.stop != RESULT_FAIL_NONE) {
            sf = rs.stop;
            snprintf(sf_text, sizeof sf_text, "%s", rs.stop_text);
        } else if (!started) {
            if (rs.greeting_code >= 400) {
                sf = RESULT_FAIL_GREETING;
                snprintf(sf_text, sizeof sf_text, "%s: greeting: %s", rs.where, rs.greeting_text);
            } else if (rs.ehlo_code >= 400) {
                sf = RESULT_FAIL_GREETING;
                snprintf(sf_text, sizeof sf_text, "%s: EHLO: %s", rs.where, rs.ehlo_text);
            } else {
                char e[128];
                smtp_strerror(serr, e, sizeof e);
                sf = end == BRIDGE_END_REMOTE_CLOSED ? RESULT_FAIL_DROPPED : RESULT_FAIL_LOCAL;
                bool own = end == BRIDGE_END_REMOTE_CLOSED || end == BRIDGE_END_LOCAL_CLOSED;
                snprintf(sf_text, sizeof sf_text, "%s: %s", rs.where,
                         own && why[0] != '\0'             ? why
                         : end != BRIDGE_END_REMOTE_CLOSED ? e
                                                           : "connection closed by the server");
            }
        } else if (incomplete && !(s->verify_only && rs.aborted_data)) {
            if (end == BRIDGE_END_REMOTE_CLOSED) {
                sf = RESULT_FAIL_DROPPED;
                snprintf(sf_text, sizeof sf_text, "%s: %s", rs.where,
                         why[0] != '\0' ? why : "connection closed by the server");
            } else if (end == BRIDGE_END_ERROR) {
                sf = RESULT_FAIL_DROPPED;
                snprintf(sf_text, sizeof sf_text, "%s: connection lost: %s", rs.where, why);
            } else if (end == BRIDGE_END_TIMEOUT) {
                sf = RESULT_FAIL_TIMEOUT;
                snprintf(sf_text, sizeof sf_text, "%s: %s", rs.where, why);
            } else if (serr == SMTP_ERR_DROPPED_CONNECTION) {
                /* libESMTP hung up by itself with the server still there: it waited
                 * past the timeout. */
                sf = RESULT_FAIL_TIMEOUT;
                snprintf(sf_text, sizeof sf_text, "%s: no reply within %d seconds", rs.where,
                         a->timeout > 0 ? a->timeout : 60);
            } else {
                char e[128];
                smtp_strerror(serr, e, sizeof e);
                sf = relay_classify_errno(serr);
                snprintf(sf_text, sizeof sf_text, "%s: %s", rs.where, e);
            }
        }

        if (sf != RESULT_FAIL_NONE && (!started || rs.stop != RESULT_FAIL_NONE)) {
            /* Nothing was transacted: every pending recipient shares the failure. */
            relay_mark_all(items, n, sf, sf_text);
        } else {
            for (size_t i = 0; i < n; i++)
                if (rs.msgs[i].added) {
                    relay_collect(&rs.msgs[i], sf, sf_text, s->verify_only);
                    if (log_verbose())
                        relay_log_statuses(&rs.msgs[i], s->verify_only);
                }
        }
        if (sf != RESULT_FAIL_NONE) {
            *session_failure = sf;
            result_set(r, OUTCOME_OK, "%s", sf_text);
        }
        bridge_close(rs.bridge);
        rs.bridge = NULL;
    }

    smtp_destroy_session(session);
    if (rs.auth != NULL)
        auth_destroy_context(rs.auth);
    relay_wipe_credentials(&rs);
    for (size_t i = 0; i < n; i++)
        free(rs.msgs[i].r);
    free(rs.msgs);
    return result;
}

const char *relay_library_version(void)
{
    static char version[32];
    if (version[0] == '\0' && !smtp_version(version, sizeof version, 0))
        snprintf(version, sizeof version, "unknown");
    return version;
}
