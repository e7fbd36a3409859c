/*
 * body.c - long lines and MIME labels; see body.h.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "body.h"
#include "fdio.h"
#include "mem.h"

#define BODY_CHUNK   65536
#define BODY_QP_LINE 76

static const char *body_field(const struct header_block *h, const char *name)
{
    size_t i = header_find(h, name, 0);
    return i < h->n ? h->v[i].value : NULL;
}

/* true when value starts with word (case-insensitive), followed by end, ';' or WSP. */
static bool body_is(const char *value, const char *word)
{
    size_t n = strlen(word);
    if (value == NULL || strncasecmp(value, word, n) != 0)
        return false;
    char c = value[n];
    return c == '\0' || c == ';' || c == ' ' || c == '\t' || c == '(';
}

enum body_plan body_plan(const struct header_block *h, size_t longest)
{
    if (longest <= BODY_LINE_MAX)
        return BODY_KEEP;
    const char *ct = body_field(h, "Content-Type");
    const char *cte = body_field(h, "Content-Transfer-Encoding");
    bool text = ct == NULL || strncasecmp(ct, "text/", 5) == 0;
    bool plain_cte =
        cte == NULL || body_is(cte, "7bit") || body_is(cte, "8bit") || body_is(cte, "binary");
    return text && plain_cte ? BODY_QP : BODY_FOLD;
}

struct body_out {
    int fd;
    char buf[BODY_CHUNK];
    size_t len;
    off_t total;
    struct result *r;
};

static enum outcome body_flush(struct body_out *o)
{
    int e = fdio_write_all(o->fd, o->buf, o->len);
    if (e != 0)
        return result_set(o->r, OUTCOME_CANTCREAT, "cannot write the message spool file: %s",
                          strerror(e));
    o->total += (off_t)o->len;
    o->len = 0;
    return OUTCOME_OK;
}

static enum outcome body_put(struct body_out *o, const char *s, size_t n)
{
    if (o->len + n > sizeof o->buf) {
        enum outcome e = body_flush(o);
        if (e != OUTCOME_OK)
            return e;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return OUTCOME_OK;
}

struct body_qp {
    size_t col;      /* octets on the current output line */
    char pending_ws; /* a SP/HT not yet written: encoded if the line ends after it */
};

/* Writes one encoded token, preceded by a soft break when the line would overflow. */
static enum outcome body_qp_token(struct body_out *o, struct body_qp *q, const char *t, size_t n)
{
    if (q->col + n > BODY_QP_LINE - 1) {
        enum outcome e = body_put(o, "=\r\n", 3);
        if (e != OUTCOME_OK)
            return e;
        q->col = 0;
    }
    q->col += n;
    return body_put(o, t, n);
}

static enum outcome body_qp_hex(struct body_out *o, struct body_qp *q, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char t[3] = {'=', hex[c >> 4], hex[c & 15]};
    return body_qp_token(o, q, t, 3);
}

static enum outcome body_qp_byte(struct body_out *o, struct body_qp *q, unsigned char c)
{
    enum outcome e = OUTCOME_OK;
    if (c == '\r')
        return OUTCOME_OK; /* canonical input: the LF that follows ends the line */
    if (c == '\n') {
        if (q->pending_ws) {
            e = body_qp_hex(o, q, (unsigned char)q->pending_ws);
            q->pending_ws = 0;
        }
        q->col = 0;
        return e != OUTCOME_OK ? e : body_put(o, "\r\n", 2);
    }
    if (q->pending_ws) {
        char ws = q->pending_ws;
        q->pending_ws = 0;
        if ((e = body_qp_token(o, q, &ws, 1)) != OUTCOME_OK)
            return e;
    }
    if (c == ' ' || c == '\t') {
        q->pending_ws = (char)c;
        return OUTCOME_OK;
    }
    if (c >= 33 && c <= 126 && c != '=') {
        char t = (char)c;
        return body_qp_token(o, q, &t, 1);
    }
    return body_qp_hex(o, q, c);
}

enum outcome body_rewrite(enum body_plan plan, int in_fd, int out_fd, off_t *out_len,
                          struct result *r)
{
    *out_len = 0;
    if (lseek(in_fd, 0, SEEK_SET) < 0)
        return result_set(r, OUTCOME_IOERR, "cannot rewind the message spool file: %s",
                          strerror(errno));
    struct body_out *o = mem_alloc(sizeof *o);
    o->fd = out_fd;
    o->r = r;
    char *in = mem_alloc(BODY_CHUNK);
    struct body_qp q = {0};
    size_t col = 0;
    enum outcome e = OUTCOME_OK;
    for (;;) {
        ssize_t n = read(in_fd, in, BODY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = result_set(r, OUTCOME_IOERR, "cannot read the message spool file: %s",
                           strerror(errno));
            break;
        }
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n && e == OUTCOME_OK; i++) {
            unsigned char c = (unsigned char)in[i];
            if (plan == BODY_QP) {
                e = body_qp_byte(o, &q, c);
            } else {
                if (c == '\n') {
                    col = 0;
                } else if (c != '\r') {
                    if (col == BODY_LINE_MAX) {
                        e = body_put(o, "\r\n", 2);
                        col = 0;
                    }
                    col++;
                }
                if (e == OUTCOME_OK)
                    e = body_put(o, (const char *)&in[i], 1);
            }
        }
        if (e != OUTCOME_OK)
            break;
    }
    if (e == OUTCOME_OK && plan == BODY_QP && q.pending_ws)
        e = body_qp_hex(o, &q, (unsigned char)q.pending_ws);
    if (e == OUTCOME_OK)
        e = body_flush(o);
    *out_len = o->total;
    free(in);
    free(o);
    return e;
}

static const char *body_charset(bool eightbit, bool utf8)
{
    if (!eightbit)
        return "us-ascii";
    return utf8 ? "utf-8" : "unknown-8bit";
}

void body_label(struct header_block *h, enum body_plan plan, bool eightbit, bool utf8)
{
    bool has_ct = header_find(h, "Content-Type", 0) < h->n;
    bool has_mv = header_find(h, "MIME-Version", 0) < h->n;
    bool has_cte = header_find(h, "Content-Transfer-Encoding", 0) < h->n;
    char *ct = mem_printf("text/plain; charset=%s", body_charset(eightbit, utf8));
    if (plan == BODY_QP) {
        if (!has_mv)
            header_add(h, "MIME-Version", "1.0");
        if (!has_ct)
            header_add(h, "Content-Type", ct);
        header_set(h, "Content-Transfer-Encoding", "quoted-printable");
    } else if (plan == BODY_KEEP && eightbit && !has_ct && !has_mv && !has_cte) {
        header_add(h, "MIME-Version", "1.0");
        header_add(h, "Content-Type", ct);
        header_add(h, "Content-Transfer-Encoding", "8bit");
    }
    free(ct);
}
