/*
 * addr.c - RFC 5322 address-list parser, wire-address validation and
 * qualification; see addr.h.
 *
 * The text is first cut into tokens (atoms, quoted strings, domain literals
 * and single specials; comments and whitespace are skipped), then a small
 * recursive-descent parser walks the tokens.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "mem.h"

enum addr_tok_kind { ADDR_TOK_ATOM, ADDR_TOK_QSTR, ADDR_TOK_DLIT, ADDR_TOK_SPECIAL };

struct addr_tok {
    enum addr_tok_kind kind;
    size_t start, end; /* [start, end) in the text; for QSTR including the quotes */
    char c;            /* the special character */
};

struct addr_parser {
    const char *text;
    struct addr_tok *t;
    size_t n, cap, pos;
    struct addr_list *out;
    size_t vcap; /* allocated slots in out->v */
    struct result *r;
};

static bool addr_is_atext(unsigned char c)
{
    if (c >= 0x80)
        return true; /* RFC 6532 UTF-8 in phrases; refused later on the wire */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* Up to 60 characters of s for messages (result_set() masks control characters). */
static const char *addr_short(const char *s, char *buf, size_t size)
{
    size_t len = strlen(s);
    if (len < size) {
        return s;
    }
    snprintf(buf, size, "%.*s...", (int)(size - 4), s);
    return buf;
}

static enum outcome addr_fail(struct addr_parser *p, const char *why)
{
    char buf[64];
    return result_set(p->r, OUTCOME_DATAERR, "cannot parse address list \"%s\": %s",
                      addr_short(p->text, buf, sizeof buf), why);
}

static void addr_tok_push(struct addr_parser *p, enum addr_tok_kind k, size_t s, size_t e, char c)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->t = mem_resize(p->t, p->cap, sizeof *p->t);
    }
    p->t[p->n++] = (struct addr_tok){k, s, e, c};
}

static enum outcome addr_tokenize(struct addr_parser *p)
{
    const char *s = p->text;
    size_t i = 0;
    while (s[i] != '\0') {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else if (c == '(') {
            int depth = 0;
            do {
                if (s[i] == '\0')
                    return addr_fail(p, "unterminated comment");
                if (s[i] == '\\' && s[i + 1] != '\0')
                    i++;
                else if (s[i] == '(')
                    depth++;
                else if (s[i] == ')')
                    depth--;
                i++;
            } while (depth > 0);
        } else if (c == '"') {
            size_t st = i++;
            while (s[i] != '"') {
                if (s[i] == '\0')
                    return addr_fail(p, "unterminated quoted string");
                if (s[i] == '\\' && s[i + 1] != '\0')
                    i++;
                i++;
            }
            i++;
            addr_tok_push(p, ADDR_TOK_QSTR, st, i, 0);
        } else if (c == '[') {
            size_t st = i++;
            while (s[i] != ']') {
                if (s[i] == '\0' || s[i] == '[')
                    return addr_fail(p, "unterminated domain literal");
                if (s[i] == '\\' && s[i + 1] != '\0')
                    i++;
                i++;
            }
            i++;
            addr_tok_push(p, ADDR_TOK_DLIT, st, i, 0);
        } else if (addr_is_atext(c)) {
            size_t st = i;
            while (addr_is_atext((unsigned char)s[i]))
                i++;
            addr_tok_push(p, ADDR_TOK_ATOM, st, i, 0);
        } else if (strchr("<>@,;:.", c) != NULL) {
            addr_tok_push(p, ADDR_TOK_SPECIAL, i, i + 1, (char)c);
            i++;
        } else {
            char why[64];
            if (c < 0x20 || c == 0x7f)
                snprintf(why, sizeof why, "control character 0x%02x", c);
            else
                snprintf(why, sizeof why, "unexpected '%c'", c);
            return addr_fail(p, why);
        }
    }
    return OUTCOME_OK;
}

static bool addr_at(const struct addr_parser *p, char c)
{
    return p->pos < p->n && p->t[p->pos].kind == ADDR_TOK_SPECIAL && p->t[p->pos].c == c;
}

static bool addr_at_word(const struct addr_parser *p)
{
    return p->pos < p->n &&
           (p->t[p->pos].kind == ADDR_TOK_ATOM || p->t[p->pos].kind == ADDR_TOK_QSTR);
}

/* Appends the content of a quoted string token, unescaped, to buf. */
static void addr_unquote(const struct addr_parser *p, const struct addr_tok *t, char *buf,
                         size_t *len)
{
    for (size_t i = t->start + 1; i + 1 < t->end; i++) {
        if (p->text[i] == '\\' && i + 2 < t->end)
            i++;
        if (p->text[i] == '\r' || p->text[i] == '\n')
            continue; /* folding inside the quoted string */
        buf[(*len)++] = p->text[i];
    }
}

/* Display name: the words (atoms, quoted strings, obsolete dots) from a to b. */
static char *addr_phrase(const struct addr_parser *p, size_t a, size_t b)
{
    if (a >= b)
        return NULL;
    size_t cap = 1;
    for (size_t i = a; i < b; i++)
        cap += p->t[i].end - p->t[i].start + 1;
    char *buf = mem_alloc(cap);
    size_t len = 0;
    for (size_t i = a; i < b; i++) {
        const struct addr_tok *t = &p->t[i];
        if (len > 0 && !(t->kind == ADDR_TOK_SPECIAL && t->c == '.'))
            buf[len++] = ' ';
        if (t->kind == ADDR_TOK_QSTR) {
            addr_unquote(p, t, buf, &len);
        } else {
            memcpy(buf + len, p->text + t->start, t->end - t->start);
            len += t->end - t->start;
        }
    }
    buf[len] = '\0';
    return buf;
}

static bool addr_is_dot_atom(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (s[i + 1] == '.')
                return false;
        } else if (!addr_is_atext(c) || c >= 0x80) {
            return false;
        }
    }
    return true;
}

/* addr-spec at p->pos; appends one struct addr. */
static enum outcome addr_spec(struct addr_parser *p, char *display, const char *group)
{
    if (!addr_at_word(p)) {
        free(display);
        return addr_fail(p, p->pos < p->n ? "expected an address" : "address missing");
    }
    size_t first = p->pos, cap = 3;
    bool quoted = false;
    /* local-part: word *("." word); obsolete forms allow empty words only in theory */
    for (;;) {
        if (!addr_at_word(p))
            break;
        if (p->t[p->pos].kind == ADDR_TOK_QSTR)
            quoted = true;
        cap += 2 * (p->t[p->pos].end - p->t[p->pos].start) + 1;
        p->pos++;
        if (addr_at(p, '.') && p->pos + 1 < p->n &&
            (p->t[p->pos + 1].kind == ADDR_TOK_ATOM || p->t[p->pos + 1].kind == ADDR_TOK_QSTR)) {
            p->pos++;
            continue;
        }
        break;
    }
    size_t last = p->pos;
    char *local = mem_alloc(cap);
    size_t len = 0;
    for (size_t i = first; i < last; i++) {
        const struct addr_tok *t = &p->t[i];
        if (t->kind == ADDR_TOK_QSTR)
            addr_unquote(p, t, local, &len);
        else if (t->kind == ADDR_TOK_SPECIAL)
            local[len++] = '.';
        else {
            memcpy(local + len, p->text + t->start, t->end - t->start);
            len += t->end - t->start;
        }
    }
    local[len] = '\0';
    if (quoted && !addr_is_dot_atom(local, len)) {
        /* re-quote the whole local part, escaping '"' and '\' */
        char *q = mem_alloc(2 * len + 3);
        size_t k = 0;
        q[k++] = '"';
        for (size_t i = 0; i < len; i++) {
            if (local[i] == '"' || local[i] == '\\')
                q[k++] = '\\';
            q[k++] = local[i];
        }
        q[k++] = '"';
        q[k] = '\0';
        free(local);
        local = q;
    }
    struct addr a = {.display = display, .group = group ? mem_strdup(group) : NULL};
    if (addr_at(p, '@')) {
        p->pos++;
        char *dom;
        if (p->pos < p->n && p->t[p->pos].kind == ADDR_TOK_DLIT) {
            dom = mem_strndup(p->text + p->t[p->pos].start, p->t[p->pos].end - p->t[p->pos].start);
            p->pos++;
        } else {
            size_t ds = p->pos;
            size_t dcap = 1;
            while (p->pos < p->n && p->t[p->pos].kind == ADDR_TOK_ATOM) {
                dcap += p->t[p->pos].end - p->t[p->pos].start + 1;
                p->pos++;
                if (addr_at(p, '.') && p->pos + 1 < p->n && p->t[p->pos + 1].kind == ADDR_TOK_ATOM)
                    p->pos++;
                else
                    break;
            }
            if (p->pos == ds) {
                free(local);
                free(a.display);
                free(a.group);
                return addr_fail(p, "domain missing after '@'");
            }
            dom = mem_alloc(dcap);
            size_t dl = 0;
            for (size_t i = ds; i < p->pos; i++) {
                const struct addr_tok *t = &p->t[i];
                if (t->kind == ADDR_TOK_SPECIAL) {
                    dom[dl++] = '.';
                } else {
                    memcpy(dom + dl, p->text + t->start, t->end - t->start);
                    dl += t->end - t->start;
                }
            }
            dom[dl] = '\0';
        }
        a.addr = mem_join(local, '@', dom);
        free(local);
        free(dom);
    } else {
        a.addr = local;
        a.bare = true;
        a.end = p->t[last - 1].end;
    }
    if (p->out->n == p->vcap) {
        p->vcap = p->vcap ? 2 * p->vcap : 4;
        p->out->v = mem_resize(p->out->v, p->vcap, sizeof *p->out->v);
    }
    p->out->v[p->out->n++] = a;
    return OUTCOME_OK;
}

/* mailbox = name-addr / addr-spec; allow_group: a ':' here starts a group. */
static enum outcome addr_mailbox(struct addr_parser *p, const char *group, bool allow_group);

static enum outcome addr_group(struct addr_parser *p, size_t name_start, size_t name_end)
{
    char *name = addr_phrase(p, name_start, name_end);
    if (name == NULL)
        name = mem_strdup("");
    p->pos = name_end + 1; /* past the colon */
    enum outcome o = OUTCOME_OK;
    for (;;) {
        if (p->pos >= p->n)
            break; /* tolerate a missing ';' at the very end */
        if (addr_at(p, ';')) {
            p->pos++;
            break;
        }
        if (addr_at(p, ',')) {
            p->pos++;
            continue;
        }
        o = addr_mailbox(p, name, false);
        if (o != OUTCOME_OK)
            break;
        if (!addr_at(p, ',') && !addr_at(p, ';') && p->pos < p->n) {
            o = addr_fail(p, "expected ',' or ';' in group");
            break;
        }
    }
    free(name);
    return o;
}

static enum outcome addr_mailbox(struct addr_parser *p, const char *group, bool allow_group)
{
    /* look ahead for '<' or ':' before the end of this member */
    size_t i = p->pos;
    while (i < p->n) {
        const struct addr_tok *t = &p->t[i];
        if (t->kind == ADDR_TOK_SPECIAL && (t->c == '<' || t->c == ':' || t->c == '@' ||
                                            t->c == ',' || t->c == ';' || t->c == '>'))
            break;
        i++;
    }
    if (i < p->n && p->t[i].c == ':' && p->t[i].kind == ADDR_TOK_SPECIAL) {
        if (!allow_group)
            return addr_fail(p, "group inside a group");
        return addr_group(p, p->pos, i);
    }
    if (i < p->n && p->t[i].kind == ADDR_TOK_SPECIAL && p->t[i].c == '<') {
        for (size_t k = p->pos; k < i; k++) {
            if (p->t[k].kind == ADDR_TOK_DLIT)
                return addr_fail(p, "domain literal in a display name");
        }
        char *display = addr_phrase(p, p->pos, i);
        p->pos = i + 1;
        /* obsolete route: "@a,@b:" */
        if (addr_at(p, '@')) {
            while (p->pos < p->n && !addr_at(p, ':') && !addr_at(p, '>'))
                p->pos++;
            if (!addr_at(p, ':')) {
                free(display);
                return addr_fail(p, "bad route in angle address");
            }
            p->pos++;
        }
        if (addr_at(p, '>')) {
            free(display);
            return addr_fail(p, "empty angle address <>");
        }
        enum outcome o = addr_spec(p, display, group);
        if (o != OUTCOME_OK)
            return o;
        if (!addr_at(p, '>'))
            return addr_fail(p, "expected '>'");
        p->pos++;
        return OUTCOME_OK;
    }
    return addr_spec(p, NULL, group);
}

enum outcome addr_parse_list(const char *text, struct addr_list *out, struct result *r)
{
    struct addr_parser p = {.text = text, .out = out, .r = r};
    out->v = NULL;
    out->n = 0;
    enum outcome o = addr_tokenize(&p);
    while (o == OUTCOME_OK && p.pos < p.n) {
        if (addr_at(&p, ',')) {
            p.pos++;
            continue;
        }
        o = addr_mailbox(&p, NULL, true);
        if (o == OUTCOME_OK && p.pos < p.n && !addr_at(&p, ',')) {
            char why[48];
            const struct addr_tok *t = &p.t[p.pos];
            if (t->kind == ADDR_TOK_SPECIAL)
                snprintf(why, sizeof why, "unexpected '%c'", t->c);
            else
                snprintf(why, sizeof why, "missing ',' between addresses");
            o = addr_fail(&p, why);
        }
    }
    free(p.t);
    if (o != OUTCOME_OK)
        addr_list_free(out);
    return o;
}

void addr_list_free(struct addr_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].addr);
        free(l->v[i].display);
        free(l->v[i].group);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Index of the '@' that separates local part and domain, or -1. */
static long addr_at_sign(const char *a)
{
    bool q = false;
    long at = -1;
    for (long i = 0; a[i] != '\0'; i++) {
        if (q && a[i] == '\\' && a[i + 1] != '\0')
            i++;
        else if (a[i] == '"')
            q = !q;
        else if (!q && a[i] == '@')
            return i; /* the local part never holds an unquoted '@' */
    }
    return at;
}

bool addr_is_bare(const char *addr)
{
    return addr_at_sign(addr) < 0;
}

/* NULL when d is a usable domain: a literal "[...]" or dot-separated labels
 * of letters, digits, '-' and '_' (RFC 5321 Domain, with the underscore
 * real host names use). */
static const char *addr_domain_problem(const char *d)
{
    size_t n = strlen(d);
    if (d[0] == '[') {
        if (n < 3 || d[n - 1] != ']' || strpbrk(d + 1, "[\\") != NULL ||
            strchr(d + 1, ']') != d + n - 1)
            return "bad domain literal";
        return NULL;
    }
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0)
                return "empty label in the domain";
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            if (++label > 63)
                return "domain label longer than 63 octets";
        } else {
            return "bad character in the domain";
        }
    }
    if (label == 0)
        return "empty label in the domain";
    return NULL;
}

enum outcome addr_validate(const char *addr, struct result *r)
{
    const char *why = NULL;
    size_t len = strlen(addr);
    bool q = false;
    size_t qend = 0;
    /* octets refused anywhere, quoted or escaped or not */
    for (size_t i = 0; i < len && why == NULL; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c == '\r' || c == '\n')
            why = "contains a line break";
        else if (c >= 0x80)
            why = "non-ASCII characters (SMTPUTF8 is not supported)";
        else if (c == '\t')
            why = "contains whitespace";
        else if (c < 0x20 || c == 0x7f)
            why = "contains a control character";
        else if (c == '<' || c == '>')
            why = "contains '<' or '>'";
    }
    for (size_t i = 0; i < len && why == NULL; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c == '\r' || c == '\n')
            why = "contains a line break";
        else if (c >= 0x80)
            why = "non-ASCII characters (SMTPUTF8 is not supported)";
        else if (c < 0x20 || c == 0x7f)
            why = (c == '\t' && !q) ? "contains whitespace" : "contains a control character";
        else if (c == '<' || c == '>')
            why = "contains '<' or '>'";
        else if (c == ' ' && !q)
            why = "contains whitespace";
        else if (q && c == '\\' && i + 1 < len)
            i++;
        else if (c == '"') {
            if (!q && i != 0)
                why = "misplaced quote";
            q = !q;
            if (!q)
                qend = i + 1;
        }
    }
    if (why == NULL && q)
        why = "unbalanced quote";
    long at = addr_at_sign(addr);
    if (why == NULL && qend != 0 && !(addr[qend] == '\0' || (long)qend == at))
        why = "text after the quoted local part";
    if (why == NULL && len == 0)
        why = "empty";
    if (why == NULL && at == 0)
        why = "empty local part";
    if (why == NULL && at >= 0 && addr[at + 1] == '\0')
        why = "empty domain";
    if (why == NULL && (at >= 0 ? (size_t)at : len) > ADDR_LOCAL_MAX)
        why = "local part longer than 64 octets";
    if (why == NULL && len > ADDR_MAX)
        why = "longer than 254 octets";
    if (why == NULL && at >= 0)
        why = addr_domain_problem(addr + at + 1);
    if (why == NULL)
        return OUTCOME_OK;
    char buf[80];
    return result_set(r, OUTCOME_DATAERR, "invalid address <%s>: %s",
                      addr_short(addr, buf, sizeof buf), why);
}

char *addr_qualify(const char *addr, const char *domain)
{
    if (!addr_is_bare(addr) || domain == NULL || domain[0] == '\0')
        return mem_strdup(addr);
    return mem_join(addr, '@', domain);
}

bool addr_equal(const char *a, const char *b)
{
    long ia = addr_at_sign(a), ib = addr_at_sign(b);
    if (ia != ib)
        return false;
    if (ia < 0)
        return strcmp(a, b) == 0;
    return strncmp(a, b, (size_t)ia) == 0 && strcasecmp(a + ia, b + ib) == 0;
}

char *addr_qualify_list(const char *value, const char *domain)
{
    struct addr_list l;
    struct result r;
    if (domain == NULL || domain[0] == '\0' || addr_parse_list(value, &l, &r) != OUTCOME_OK)
        return NULL;
    size_t nbare = 0;
    for (size_t i = 0; i < l.n; i++)
        nbare += l.v[i].bare;
    if (nbare == 0) {
        addr_list_free(&l);
        return NULL;
    }
    size_t dlen = strlen(domain), vlen = strlen(value);
    char *out = mem_alloc(vlen + nbare * (dlen + 1) + 1);
    size_t o = 0, from = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (!l.v[i].bare)
            continue;
        memcpy(out + o, value + from, l.v[i].end - from);
        o += l.v[i].end - from;
        out[o++] = '@';
        memcpy(out + o, domain, dlen);
        o += dlen;
        from = l.v[i].end;
    }
    memcpy(out + o, value + from, vlen - from);
    o += vlen - from;
    out[o] = '\0';
    addr_list_free(&l);
    return out;
}
