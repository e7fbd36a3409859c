/*
 * input.c - one pass over the input: header block in memory, canonical CRLF
 * body in the spool file; see input.h.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "input.h"
#include "fdio.h"
#include "mem.h"

#define INPUT_CHUNK 32768

enum input_line {
    INPUT_LINE_START,    /* nothing seen on this header-phase line yet */
    INPUT_LINE_NAME,     /* field-name characters so far */
    INPUT_LINE_NAME_WSP, /* field name then whitespace, waiting for ':' */
    INPUT_LINE_FIELD,    /* a field: "name:" seen */
    INPUT_LINE_CONT,     /* a continuation line */
    INPUT_LINE_MBOX,     /* the leading mbox "From " line, discarded */
};

struct input {
    const struct input_params *p;
    struct input_result *out;
    struct result *r;
    int in_fd;
    int *body_fd;
    bool spilled;
    enum outcome failed; /* a read or spool error ends the input too */
    size_t header_max;
    bool in_body;
    bool first_line;
    bool have_field;
    bool prev_cr;
    bool done;
    enum input_line line;
    size_t line_start; /* offset of the current line in the header buffer */
    size_t hcap;
    /* body line state */
    size_t line_len;
    bool dot_pending;
    unsigned utf8_need; /* continuation octets still expected */
    char *obuf;         /* INPUT_CHUNK octets, not zeroed: only written ones are read */
    size_t olen;
    char *ibuf; /* what one read() brings */
};

/* The body outgrows its memory file: on in a real one, with what it holds. */
static enum outcome input_spill(struct input *s)
{
    s->spilled = true;
    int fd = s->p->spill(s->p->spill_arg, s->r);
    if (fd < 0)
        return s->r->outcome;
    off_t copied = 0;
    int e = fdio_copy(*s->body_fd, fd, &copied);
    if (e == 0 && copied != s->out->body_len)
        e = EIO;
    if (e != 0) {
        close(fd);
        return result_set(s->r, OUTCOME_CANTCREAT, "cannot write the message spool file: %s",
                          strerror(e));
    }
    close(*s->body_fd);
    *s->body_fd = fd;
    return OUTCOME_OK;
}

/* The body held in memory is a block long: from now on it has a descriptor. */
static enum outcome input_unhold(struct input *s)
{
    int fd = s->p->open(s->p->spill_arg, s->r);
    if (fd < 0)
        return s->r->outcome;
    *s->body_fd = fd;
    return OUTCOME_OK;
}

/* The body is still in memory only (input_params.open). */
static bool input_holding(const struct input *s)
{
    return s->p->open != NULL && *s->body_fd < 0;
}

static enum outcome input_flush(struct input *s)
{
    if (input_holding(s)) {
        enum outcome o = input_unhold(s);
        if (o != OUTCOME_OK)
            return o;
    }
    if (!s->spilled && s->p->spill != NULL && s->out->body_len + (off_t)s->olen > s->p->spill_at) {
        enum outcome o = input_spill(s);
        if (o != OUTCOME_OK)
            return o;
    }
    int e = fdio_write_all(*s->body_fd, s->obuf, s->olen);
    if (e != 0)
        return result_set(s->r, OUTCOME_CANTCREAT, "cannot write the message spool file: %s",
                          strerror(e));
    s->out->body_len += (off_t)s->olen;
    s->olen = 0;
    return OUTCOME_OK;
}

static enum outcome input_emit(struct input *s, char c)
{
    if (s->olen == INPUT_CHUNK) {
        enum outcome o = input_flush(s);
        if (o != OUTCOME_OK)
            return o;
    }
    s->obuf[s->olen++] = c;
    return OUTCOME_OK;
}

static void input_utf8(struct input *s, unsigned char c)
{
    if (!s->out->body_utf8)
        return;
    if (s->utf8_need > 0) {
        if ((c & 0xc0) == 0x80)
            s->utf8_need--;
        else
            s->out->body_utf8 = false;
    } else if (c >= 0x80) {
        if (c >= 0xc2 && c <= 0xdf)
            s->utf8_need = 1;
        else if (c >= 0xe0 && c <= 0xef)
            s->utf8_need = 2;
        else if (c >= 0xf0 && c <= 0xf4)
            s->utf8_need = 3;
        else
            s->out->body_utf8 = false;
    }
}

/* One content octet of a body line (not CR or LF). */
static enum outcome input_body_byte(struct input *s, unsigned char c)
{
    if (c == 0) {
        s->out->nul_removed++;
        return OUTCOME_OK;
    }
    if (s->line_len == 0 && !s->dot_pending && c == '.') {
        s->dot_pending = true; /* decided at the end of the line */
        return OUTCOME_OK;
    }
    enum outcome o;
    if (s->dot_pending) {
        s->dot_pending = false;
        s->line_len = 1;
        if ((o = input_emit(s, '.')) != OUTCOME_OK)
            return o;
    }
    if (c >= 0x80)
        s->out->body_8bit = true;
    input_utf8(s, c);
    s->line_len++;
    return input_emit(s, (char)c);
}

static enum outcome input_body_eol(struct input *s)
{
    enum outcome o;
    if (s->utf8_need > 0) {
        s->out->body_utf8 = false;
        s->utf8_need = 0;
    }
    if (s->dot_pending) {
        s->dot_pending = false;
        if (!s->p->ignore_dots) {
            s->done = true;
            s->out->dot_ended = true;
            return OUTCOME_OK;
        }
        s->line_len = 1;
        if ((o = input_emit(s, '.')) != OUTCOME_OK)
            return o;
    }
    if (s->line_len > s->out->longest_line)
        s->out->longest_line = s->line_len;
    s->line_len = 0;
    if ((o = input_emit(s, '\r')) != OUTCOME_OK)
        return o;
    return input_emit(s, '\n');
}

/* The current header-phase line turns out to be the first body line. */
static enum outcome input_to_body(struct input *s)
{
    s->in_body = true;
    size_t start = s->line_start;
    for (size_t i = start; i < s->out->headers_len; i++) {
        enum outcome o = input_body_byte(s, (unsigned char)s->out->headers[i]);
        if (o != OUTCOME_OK)
            return o;
    }
    s->out->headers_len = start;
    s->out->headers[start] = '\0';
    return OUTCOME_OK;
}

/* ... and c is its next octet. */
static enum outcome input_body_start(struct input *s, unsigned char c)
{
    enum outcome o = input_to_body(s);
    return o != OUTCOME_OK ? o : input_body_byte(s, c);
}

static enum outcome input_hput(struct input *s, char c)
{
    if (s->out->headers_len + 1 > s->header_max) {
        return result_set(s->r, OUTCOME_DATAERR, "header block exceeds %zu octets", s->header_max);
    }
    if (s->out->headers_len + 2 > s->hcap) {
        s->hcap = s->hcap < 4096 ? 4096 : s->hcap * 2;
        if (s->hcap > s->header_max + 2)
            s->hcap = s->header_max + 2;
        s->out->headers = mem_resize(s->out->headers, s->hcap, 1);
    }
    if ((unsigned char)c >= 0x80)
        s->out->header_8bit = true;
    s->out->headers[s->out->headers_len++] = c;
    s->out->headers[s->out->headers_len] = '\0';
    return OUTCOME_OK;
}

static bool input_is_ftext(unsigned char c)
{
    return c >= 33 && c <= 126 && c != ':';
}

static bool input_line_is(const struct input *s, const char *text)
{
    size_t n = strlen(text);
    return s->out->headers_len - s->line_start == n &&
           memcmp(s->out->headers + s->line_start, text, n) == 0;
}

static enum outcome input_header_byte(struct input *s, unsigned char c)
{
    switch (s->line) {
    case INPUT_LINE_MBOX:
        return OUTCOME_OK;
    case INPUT_LINE_START:
        if (c == ' ' || c == '\t') {
            if (!s->have_field)
                return input_body_start(s, c);
            s->line = INPUT_LINE_CONT;
            return input_hput(s, (char)c);
        }
        if (!input_is_ftext(c))
            return input_body_start(s, c);
        s->line = INPUT_LINE_NAME;
        return input_hput(s, (char)c);
    case INPUT_LINE_NAME:
        if (c == ':')
            s->line = INPUT_LINE_FIELD;
        else if (c == ' ' || c == '\t')
            s->line = INPUT_LINE_NAME_WSP;
        else if (!input_is_ftext(c))
            return input_body_start(s, c);
        return input_hput(s, (char)c);
    case INPUT_LINE_NAME_WSP:
        if (c == ':')
            s->line = INPUT_LINE_FIELD;
        else if (c != ' ' && c != '\t') {
            if (s->first_line && s->out->headers_len - s->line_start >= 5 &&
                memcmp(s->out->headers + s->line_start, "From ", 5) == 0) {
                s->line = INPUT_LINE_MBOX;
                s->out->mbox_from = true;
                s->out->headers_len = s->line_start;
                s->out->headers[s->line_start] = '\0';
                return OUTCOME_OK;
            }
            return input_body_start(s, c);
        }
        return input_hput(s, (char)c);
    case INPUT_LINE_FIELD:
    case INPUT_LINE_CONT:
        if (c == 0) {
            return result_set(s->r, OUTCOME_DATAERR, "NUL octet in the header block");
        }
        return input_hput(s, (char)c);
    }
    return OUTCOME_OK;
}

static enum outcome input_header_eol(struct input *s)
{
    enum outcome o = OUTCOME_OK;
    bool first = s->first_line;
    s->first_line = false;
    switch (s->line) {
    case INPUT_LINE_START:
        s->out->separator = true;
        s->in_body = true;
        /* the LF of a CRLF separator is read in the body phase: not body */
        s->out->body_read = s->prev_cr ? -1 : 0;
        break;
    case INPUT_LINE_MBOX:
        break;
    case INPUT_LINE_NAME:
    case INPUT_LINE_NAME_WSP:
        if (first && s->line == INPUT_LINE_NAME_WSP && input_line_is(s, "From ")) {
            s->out->mbox_from = true;
            s->out->headers_len = s->line_start;
            s->out->headers[s->line_start] = '\0';
            break;
        }
        if ((o = input_to_body(s)) == OUTCOME_OK)
            o = input_body_eol(s);
        break;
    case INPUT_LINE_FIELD:
    case INPUT_LINE_CONT:
        s->have_field = true;
        if ((o = input_hput(s, '\r')) == OUTCOME_OK)
            o = input_hput(s, '\n');
        break;
    }
    s->line = INPUT_LINE_START;
    s->line_start = s->out->headers_len;
    return o;
}

static enum outcome input_byte(struct input *s, unsigned char c)
{
    if (c == '\n' && s->prev_cr) {
        s->prev_cr = false;
        return OUTCOME_OK;
    }
    s->prev_cr = c == '\r';
    if (c == '\r' || c == '\n')
        return s->in_body ? input_body_eol(s) : input_header_eol(s);
    return s->in_body ? input_body_byte(s, c) : input_header_byte(s, c);
}

/* Length of the run of plain octets at b: 7-bit, not CR, LF or NUL.  Eight
 * octets at a time: a word has none of the four stop kinds when it has no
 * octet with the high bit set and no zero octet in x, x ^ CR.., x ^ LF... */
static size_t input_plain_len(const unsigned char *b, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL;
    const uint64_t high = 0x8080808080808080ULL;
    size_t k = 0;
    for (; k + 8 <= n; k += 8) {
        uint64_t x;
        memcpy(&x, b + k, sizeof x);
        uint64_t cr = x ^ (ones * '\r');
        uint64_t lf = x ^ (ones * '\n');
        uint64_t stop = ((x - ones) & ~x) | ((cr - ones) & ~cr) | ((lf - ones) & ~lf) | x;
        stop &= high;
        if (stop != 0) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            /* The lowest flag marks the first stop octet: a borrow can only
             * set flags above a real match, never below it. */
            return k + (size_t)__builtin_ctzll(stop) / 8;
#else
            break;
#endif
        }
    }
    while (k < n && b[k] != '\r' && b[k] != '\n' && b[k] != 0 && b[k] < 0x80)
        k++;
    return k;
}

static enum outcome input_copy(struct input *s, const unsigned char *b, size_t k)
{
    for (size_t done = 0; done < k;) {
        if (s->olen == INPUT_CHUNK) {
            enum outcome o = input_flush(s);
            if (o != OUTCOME_OK)
                return o;
        }
        size_t take = k - done;
        if (take > INPUT_CHUNK - s->olen)
            take = INPUT_CHUNK - s->olen;
        memcpy(s->obuf + s->olen, b + done, take);
        s->olen += take;
        done += take;
    }
    return OUTCOME_OK;
}

/*
 * Fast path for the body: plain line content and CRLF or LF line ends, line
 * after line, while nothing needs the octet-wise rules (a dot at the start
 * of a line, a lone CR, NUL, 8-bit octets, a line end split between two
 * reads).  Returns how many octets of b it consumed; 0 hands the next octet
 * to input_byte().
 */
static size_t input_body_fast(struct input *s, const unsigned char *b, size_t n, enum outcome *o)
{
    if (s->prev_cr || s->dot_pending || s->utf8_need > 0)
        return 0;
    /* b[from..i) is output as it is (CRLF lines need no change): it is
     * copied in one piece when something else must be written, or at the end. */
    size_t i = 0, from = 0;
    while (i < n) {
        if (s->line_len == 0 && b[i] == '.')
            break;
        size_t k = input_plain_len(b + i, n - i);
        s->line_len += k;
        i += k;
        if (i + 1 < n && b[i] == '\r' && b[i + 1] == '\n') {
            i += 2;
        } else if (i < n && b[i] == '\n') {
            /* LF alone: what came before as it is, then CRLF */
            if ((*o = input_copy(s, b + from, i - from)) != OUTCOME_OK ||
                (*o = input_copy(s, (const unsigned char *)"\r\n", 2)) != OUTCOME_OK)
                return i;
            from = ++i;
        } else {
            break;
        }
        if (s->line_len > s->out->longest_line)
            s->out->longest_line = s->line_len;
        s->line_len = 0;
    }
    if (i > from)
        *o = input_copy(s, b + from, i - from);
    return i;
}

struct input *input_open(int in_fd, int *body_fd, const struct input_params *p,
                         struct input_result *out, struct result *r)
{
    memset(out, 0, sizeof *out);
    out->body_utf8 = true;
    struct input *s = mem_alloc(sizeof *s);
    s->p = p;
    s->out = out;
    s->r = r;
    s->in_fd = in_fd;
    s->body_fd = body_fd;
    s->header_max = p->header_max ? p->header_max : INPUT_HEADER_MAX;
    s->first_line = true;
    s->line = INPUT_LINE_START;
    out->headers = mem_alloc(1);
    s->hcap = 1;
    /* Not zeroed: touching 32 KiB for a 1 KiB message is page faults for nothing. */
    s->obuf = mem_resize(NULL, INPUT_CHUNK, 1);
    s->ibuf = mem_resize(NULL, INPUT_CHUNK, 1);
    return s;
}

enum outcome input_step(struct input *s, bool flush, bool *done)
{
    /* done (the end or the lone dot) is final once its flush succeeded */
    *done = s->done && s->failed == OUTCOME_OK;
    if (s->failed != OUTCOME_OK || s->done)
        return s->failed;
    ssize_t n;
    do
        n = read(s->in_fd, s->ibuf, INPUT_CHUNK);
    while (n < 0 && errno == EINTR);
    enum outcome o = OUTCOME_OK;
    if (n < 0) {
        o = result_set(s->r, OUTCOME_IOERR, "cannot read the message: %s", strerror(errno));
    } else if (n == 0) {
        /* end of input: finish a last line that has no line end */
        bool partial =
            s->in_body ? (s->line_len > 0 || s->dot_pending) : (s->line != INPUT_LINE_START);
        if (partial)
            o = input_byte(s, '\n');
        s->done = true;
    }
    const unsigned char *b = (const unsigned char *)s->ibuf;
    for (size_t i = 0; i < (size_t)(n > 0 ? n : 0) && o == OUTCOME_OK && !s->done;) {
        if (s->in_body) {
            size_t k = input_body_fast(s, b + i, (size_t)n - i, &o);
            if (k > 0) {
                i += k;
                s->out->body_read += (off_t)k;
                continue;
            }
            if (o != OUTCOME_OK)
                break;
            s->out->body_read++;
        }
        o = input_byte(s, b[i++]);
    }
    if (o == OUTCOME_OK && input_holding(s)) {
        /* a block at most, kept for input_take_body() */
        if (s->done)
            s->out->body_len = (off_t)s->olen;
    } else if (o == OUTCOME_OK && (s->done || (flush && s->olen > 0))) {
        o = input_flush(s);
    }
    s->failed = o;
    *done = o == OUTCOME_OK && s->done;
    return o;
}

enum outcome input_rest(struct input *s)
{
    bool done = false;
    enum outcome o = OUTCOME_OK;
    while (o == OUTCOME_OK && !done)
        o = input_step(s, false, &done);
    return o;
}

bool input_in_body(const struct input *s)
{
    return s->in_body;
}

char *input_take_body(struct input *s)
{
    if (!s->done || s->failed != OUTCOME_OK || !input_holding(s))
        return NULL;
    char *b = s->obuf;
    s->obuf = NULL;
    s->olen = 0;
    return b;
}

void input_close(struct input *s)
{
    if (s == NULL)
        return;
    free(s->ibuf);
    free(s->obuf);
    free(s);
}

enum outcome input_read(int in_fd, int *body_fd, const struct input_params *p,
                        struct input_result *out, struct result *r)
{
    struct input *s = input_open(in_fd, body_fd, p, out, r);
    enum outcome o = input_rest(s);
    input_close(s);
    if (o != OUTCOME_OK)
        input_result_free(out);
    return o;
}

void input_result_free(struct input_result *in)
{
    free(in->headers);
    in->headers = NULL;
    in->headers_len = 0;
}
