/*
 * header.c - header block parse, edits and rendering; see header.h.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include "header.h"
#include "mem.h"

struct header_buf {
    char *s;
    size_t len, cap;
};

static void header_buf_put(struct header_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 128;
        b->s = mem_resize(b->s, b->cap, 1);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void header_buf_str(struct header_buf *b, const char *s)
{
    header_buf_put(b, s, strlen(s));
}

static bool header_is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* Unfolded, trimmed value of a raw field text starting after the colon. */
static char *header_unfold(const char *s, size_t n)
{
    char *v = mem_alloc(n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\r' || s[i] == '\n')
            continue;
        v[k++] = s[i];
    }
    size_t a = 0;
    while (a < k && header_is_wsp(v[a]))
        a++;
    while (k > a && header_is_wsp(v[k - 1]))
        k--;
    memmove(v, v + a, k - a);
    v[k - a] = '\0';
    return v;
}

static void header_push(struct header_block *h, char *name, char *raw, char *value)
{
    h->v = mem_resize(h->v, h->n + 1, sizeof *h->v);
    h->v[h->n++] = (struct header_field){name, raw, value};
}

enum outcome header_parse(const char *block, size_t len, struct header_block *h, struct result *r)
{
    h->v = NULL;
    h->n = 0;
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        /* the field's first line */
        size_t colon = start;
        while (colon < len && block[colon] != ':' && block[colon] != '\n' && block[colon] != '\r')
            colon++;
        if (colon >= len || block[colon] != ':' || colon == start || header_is_wsp(block[start])) {
            header_free(h);
            return result_set(r, OUTCOME_DATAERR, "malformed header line %zu", h->n + 1);
        }
        /* the field ends before the next line that does not start with WSP */
        size_t end = colon;
        for (;;) {
            const char *nl = memchr(block + end, '\n', len - end);
            end = nl ? (size_t)(nl - block) + 1 : len;
            if (end >= len || !header_is_wsp(block[end]))
                break;
        }
        size_t nend = colon;
        while (nend > start && header_is_wsp(block[nend - 1]))
            nend--;
        header_push(h, mem_strndup(block + start, nend - start),
                    mem_strndup(block + start, end - start),
                    header_unfold(block + colon + 1, end - colon - 1));
        i = end;
    }
    return OUTCOME_OK;
}

size_t header_find(const struct header_block *h, const char *name, size_t from)
{
    for (size_t i = from; i < h->n; i++) {
        if (strcasecmp(h->v[i].name, name) == 0)
            return i;
    }
    return h->n;
}

size_t header_count(const struct header_block *h, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < h->n; i++)
        c += strcasecmp(h->v[i].name, name) == 0;
    return c;
}

static void header_field_free(struct header_field *f)
{
    free(f->name);
    free(f->raw);
    free(f->value);
}

/* Removes the fields named name at index from and after; returns how many. */
static size_t header_remove_from(struct header_block *h, const char *name, size_t from)
{
    size_t k = from, removed = 0;
    for (size_t i = from; i < h->n; i++) {
        if (strcasecmp(h->v[i].name, name) == 0) {
            header_field_free(&h->v[i]);
            removed++;
        } else {
            h->v[k++] = h->v[i];
        }
    }
    h->n = k;
    return removed;
}

size_t header_remove(struct header_block *h, const char *name)
{
    return header_remove_from(h, name, 0);
}

/*
 * Folds one physical line l[0..n) (no CRLF) at whitespace so that each
 * output line has at most limit octets, appending CRLF-terminated lines to
 * b.  A break is made before a WSP that has non-WSP text on both sides, at
 * index min_break or later (0: anywhere).
 * strict: fail (false) when a piece cannot be broken within limit; else
 * break at the first usable WSP after the limit, or leave the line long.
 */
static bool header_fold_line(struct header_buf *b, const char *l, size_t n, size_t limit,
                             bool strict, size_t min_break)
{
    size_t start = 0;
    while (n - start > limit) {
        size_t k = 0;
        /* the first non-WSP octet of this line (a continuation starts with WSP);
         * on a field's first line, nothing before the colon may be cut off */
        size_t content = start;
        while (content < n && header_is_wsp(l[content]))
            content++;
        if (min_break > 0 && content < min_break - 1)
            content = min_break - 1; /* breaks are made at j > content */
        for (size_t j = start + limit; j > content; j--) {
            if (header_is_wsp(l[j]) && !header_is_wsp(l[j - 1])) {
                size_t t = j;
                while (t < n && header_is_wsp(l[t]))
                    t++;
                if (t < n) {
                    k = j;
                    break;
                }
            }
        }
        if (k == 0) {
            if (strict)
                return false;
            for (size_t j = (start + limit + 1 > content ? start + limit + 1 : content + 1); j < n;
                 j++) {
                if (header_is_wsp(l[j]) && !header_is_wsp(l[j - 1])) {
                    size_t t = j;
                    while (t < n && header_is_wsp(l[t]))
                        t++;
                    if (t < n) {
                        k = j;
                        break;
                    }
                }
            }
            if (k == 0)
                break;
        }
        header_buf_put(b, l + start, k - start);
        header_buf_put(b, "\r\n", 2);
        start = k;
    }
    header_buf_put(b, l + start, n - start);
    header_buf_put(b, "\r\n", 2);
    return true;
}

static char *header_generate(const char *name, const char *value)
{
    char *line = mem_printf("%s: %s", name, value);
    /* a generated value must never carry a line break of its own */
    for (char *c = line; *c != '\0'; c++) {
        if (*c == '\r' || *c == '\n')
            *c = ' ';
    }
    struct header_buf b = {0};
    /* never right after "Name:" for generated fields */
    header_fold_line(&b, line, strlen(line), HEADER_FOLD_AT, false, strlen(name) + 2);
    free(line);
    return b.s;
}

static struct header_field header_make(const char *name, const char *value)
{
    char *raw = header_generate(name, value);
    size_t nl = strlen(name);
    return (struct header_field){mem_strdup(name), raw,
                                 header_unfold(raw + nl + 1, strlen(raw) - nl - 1)};
}

void header_add(struct header_block *h, const char *name, const char *value)
{
    struct header_field f = header_make(name, value);
    header_push(h, f.name, f.raw, f.value);
}

void header_insert(struct header_block *h, size_t at, const char *name, const char *value)
{
    if (at > h->n)
        at = h->n;
    struct header_field f = header_make(name, value);
    header_push(h, f.name, f.raw, f.value);
    memmove(&h->v[at + 1], &h->v[at], (h->n - 1 - at) * sizeof *h->v);
    h->v[at] = f;
}

void header_set(struct header_block *h, const char *name, const char *value)
{
    size_t i = header_find(h, name, 0);
    if (i == h->n) {
        header_add(h, name, value);
        return;
    }
    struct header_field f = header_make(h->v[i].name, value);
    header_field_free(&h->v[i]);
    h->v[i] = f;
    header_remove_from(h, name, i + 1);
}

size_t header_keep_first(struct header_block *h, const char *name)
{
    size_t first = header_find(h, name, 0);
    return first == h->n ? 0 : header_remove_from(h, name, first + 1);
}

void header_replace(struct header_block *h, size_t i, const char *value)
{
    struct header_field f = header_make(h->v[i].name, value);
    header_field_free(&h->v[i]);
    h->v[i] = f;
}

bool header_merge(struct header_block *h, const char *name)
{
    if (header_count(h, name) < 2)
        return false;
    struct header_buf b = {0};
    header_buf_str(&b, "");
    for (size_t i = 0; i < h->n; i++) {
        if (strcasecmp(h->v[i].name, name) != 0 || h->v[i].value[0] == '\0')
            continue;
        if (b.len > 0)
            header_buf_str(&b, ", ");
        header_buf_str(&b, h->v[i].value);
    }
    header_set(h, name, b.s);
    free(b.s);
    return true;
}

enum outcome header_render(const struct header_block *h, char **out, size_t *len, struct result *r)
{
    struct header_buf b = {0};
    header_buf_str(&b, "");
    for (size_t i = 0; i < h->n; i++) {
        const char *raw = h->v[i].raw;
        size_t n = strlen(raw);
        size_t p = 0;
        while (p < n) {
            const char *nl = memchr(raw + p, '\n', n - p);
            size_t e = nl ? (size_t)(nl - raw) : n; /* index of LF or end */
            size_t le = e;                          /* end of line content */
            if (le > p && raw[le - 1] == '\r')
                le--;
            /* the first line is "name:" or "name :": no break before the colon */
            size_t min_break = 0;
            if (p == 0) {
                const char *colon = memchr(raw, ':', le);
                min_break = colon ? (size_t)(colon - raw) + 1 : 0;
            }
            if (!header_fold_line(&b, raw + p, le - p, HEADER_LINE_MAX, true, min_break)) {
                free(b.s);
                *out = NULL;
                *len = 0;
                return result_set(r, OUTCOME_DATAERR,
                                  "header %s: line of %zu octets cannot be folded "
                                  "(no whitespace within %d octets)",
                                  h->v[i].name, le - p, HEADER_LINE_MAX);
            }
            p = nl ? e + 1 : n;
        }
    }
    *out = b.s;
    *len = b.len;
    return OUTCOME_OK;
}

char *header_date(time_t t)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    tzset();
    localtime_r(&t, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    return mem_printf("%s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7],
                      tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                      tm.tm_sec, sign, off / 60, off % 60);
}

char *header_message_id(const char *hostname)
{
    unsigned char rnd[16];
    char hex[2 * sizeof rnd + 1];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        /* not expected on Linux >= 3.17; still unique enough per host */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long x =
            (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
        unsigned long long y = (unsigned long long)getpid();
        for (size_t i = 0; i < sizeof rnd; i++) {
            rnd[i] = (unsigned char)(i < 8 ? x >> (8 * i) : y >> (8 * (i - 8)));
        }
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
    return mem_printf("<%s@%s>", hex, hostname && hostname[0] ? hostname : "localhost");
}

static bool header_is_atext_phrase(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == ' ' || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

/* Length of the UTF-8 sequence starting at s (1 for invalid octets). */
static size_t header_utf8_len(const unsigned char *s, size_t avail)
{
    size_t n = s[0] < 0x80             ? 1
               : (s[0] & 0xe0) == 0xc0 ? 2
               : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4
                                       : 1;
    if (n > avail)
        return 1;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 1;
    }
    return n;
}

static void header_b64(struct header_buf *b, const unsigned char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        header_buf_put(b, q, 4);
    }
}

char *header_mailbox(const char *fullname, const char *address)
{
    if (fullname == NULL)
        return mem_strdup(address);
    /* control characters (CR, LF, NUL can't be here, TAB...) become spaces; trim */
    char *name = mem_strdup(fullname);
    bool eight = false;
    for (char *c = name; *c != '\0'; c++) {
        unsigned char u = (unsigned char)*c;
        if (u < 0x20 || u == 0x7f)
            *c = ' ';
        if (u >= 0x80)
            eight = true;
    }
    size_t a = 0, n = strlen(name);
    while (a < n && name[a] == ' ')
        a++;
    while (n > a && name[n - 1] == ' ')
        n--;
    name[n] = '\0';
    const char *nm = name + a;
    char *out;
    if (*nm == '\0') {
        out = mem_strdup(address);
    } else if (eight) {
        /* RFC 2047 encoded words of at most 75 octets, split on character boundaries */
        struct header_buf b = {0};
        const unsigned char *s = (const unsigned char *)nm;
        size_t len = strlen(nm), i = 0;
        while (i < len) {
            size_t take = 0;
            while (i + take < len) {
                size_t cl = header_utf8_len(s + i + take, len - i - take);
                if (take + cl > 45)
                    break;
                take += cl;
            }
            if (b.len > 0)
                header_buf_str(&b, " ");
            header_buf_str(&b, "=?UTF-8?B?");
            header_b64(&b, s + i, take);
            header_buf_str(&b, "?=");
            i += take;
        }
        out = mem_printf("%s <%s>", b.s, address);
        free(b.s);
    } else if (header_is_atext_phrase(nm)) {
        out = mem_printf("%s <%s>", nm, address);
    } else {
        struct header_buf b = {0};
        header_buf_str(&b, "\"");
        for (const char *c = nm; *c != '\0'; c++) {
            if (*c == '"' || *c == '\\')
                header_buf_put(&b, "\\", 1);
            header_buf_put(&b, c, 1);
        }
        header_buf_str(&b, "\"");
        out = mem_printf("%s <%s>", b.s, address);
        free(b.s);
    }
    free(name);
    return out;
}

bool header_is_8bit(const struct header_block *h)
{
    for (size_t i = 0; i < h->n; i++) {
        for (const unsigned char *c = (const unsigned char *)h->v[i].raw; *c != '\0'; c++) {
            if (*c >= 0x80)
                return true;
        }
    }
    return false;
}

void header_free(struct header_block *h)
{
    for (size_t i = 0; i < h->n; i++)
        header_field_free(&h->v[i]);
    free(h->v);
    h->v = NULL;
    h->n = 0;
}
