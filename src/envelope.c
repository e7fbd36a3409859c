/*
 * envelope.c - envelope sender and recipients; see envelope.h.
 */
#include "config.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "envelope.h"
#include "mem.h"

const char *envelope_qualify_domain(const struct conf *c)
{
    static char host[256];
    if (c != NULL && c->qualify_domain != NULL && c->qualify_domain[0] != '\0')
        return c->qualify_domain;
    if (c != NULL && c->hostname != NULL && c->hostname[0] != '\0')
        return c->hostname;
    if (host[0] == '\0' && gethostname(host, sizeof host - 1) != 0)
        strcpy(host, "localhost");
    return host;
}

/* Prefixes r's message with what: "header To: invalid address ...". */
static enum outcome envelope_prefix(struct result *r, enum outcome o, const char *what)
{
    char text[RESULT_TEXT_MAX];
    memcpy(text, r->text, sizeof text);
    text[sizeof text - 1] = '\0';
    return result_set(r, o, "%s: %s", what, text);
}

/*
 * De-duplication in linear time: an open-addressing hash set of indexes into
 * e->rcpts, keyed by the local part (exact) and the domain (lower case).
 */
struct envelope_index {
    size_t *slot; /* index + 1; 0 = empty */
    size_t size;  /* a power of two */
};

static size_t envelope_hash(const char *a)
{
    size_t h = (size_t)1469598103934665603ULL;
    const char *at = NULL;
    bool q = false;
    for (const char *c = a; *c != '\0'; c++) {
        if (q && *c == '\\' && c[1] != '\0')
            c++;
        else if (*c == '"')
            q = !q;
        else if (!q && *c == '@' && at == NULL)
            at = c;
        unsigned char u = (unsigned char)*c;
        if (at != NULL && u >= 'A' && u <= 'Z')
            u = (unsigned char)(u - 'A' + 'a');
        h = (h ^ u) * (size_t)1099511628211ULL;
    }
    return h;
}

static void envelope_index_put(struct envelope_index *x, size_t h, size_t i)
{
    size_t m = x->size - 1, k = h & m;
    while (x->slot[k] != 0)
        k = (k + 1) & m;
    x->slot[k] = i + 1;
}

/* a (whose envelope_hash() is h) is already a recipient. */
static bool envelope_has(const struct envelope *e, const char *a, size_t h)
{
    const struct envelope_index *x = e->index;
    if (x == NULL)
        return false;
    size_t m = x->size - 1, k = h & m;
    while (x->slot[k] != 0) {
        if (addr_equal(e->rcpts[x->slot[k] - 1], a))
            return true;
        k = (k + 1) & m;
    }
    return false;
}

static void envelope_push(struct envelope *e, const char *a)
{
    size_t h = envelope_hash(a);
    if (envelope_has(e, a, h))
        return;
    if (e->nrcpts == e->cap) {
        e->cap = e->cap ? 2 * e->cap : 8;
        e->rcpts = mem_resize(e->rcpts, e->cap, sizeof *e->rcpts);
    }
    e->rcpts[e->nrcpts++] = mem_strdup(a);
    if (e->index == NULL || 2 * e->nrcpts > e->index->size) {
        /* (re)build at twice the load */
        struct envelope_index *x = e->index ? e->index : mem_alloc(sizeof *x);
        free(x->slot);
        x->size = x->size ? 2 * x->size : 16;
        while (2 * e->nrcpts > x->size)
            x->size *= 2;
        x->slot = mem_array(x->size, sizeof *x->slot);
        e->index = x;
        for (size_t i = 0; i + 1 < e->nrcpts; i++)
            envelope_index_put(x, envelope_hash(e->rcpts[i]), i);
    }
    envelope_index_put(e->index, h, e->nrcpts - 1);
}

/* true when the domain of a is one of ours (localhost, hostname, qualify domain). */
static bool envelope_is_local(const struct conf *c, const char *a)
{
    const char *at = strrchr(a, '@');
    if (at == NULL || a[0] == '"')
        return false;
    const char *d = at + 1;
    return strcasecmp(d, "localhost") == 0 ||
           (c != NULL && c->hostname != NULL && strcasecmp(d, c->hostname) == 0) ||
           strcasecmp(d, envelope_qualify_domain(c)) == 0;
}

/* Aliases, qualification, validation and de-duplication of one address. */
static enum outcome envelope_one(const struct envelope_params *p, struct envelope *e, const char *a,
                                 const char *what, enum outcome bad, struct result *r)
{
    const char *domain = envelope_qualify_domain(p->conf);
    char **list = NULL;
    size_t n = 0;
    enum outcome o = OUTCOME_OK;
    char *local = NULL;
    if (addr_is_bare(a)) {
        o = aliases_expand(p->aliases, a, &list, &n, r);
    } else if (p->aliases != NULL && envelope_is_local(p->conf, a)) {
        local = mem_strndup(a, (size_t)(strrchr(a, '@') - a));
        o = aliases_expand(p->aliases, local, &list, &n, r);
        if (o == OUTCOME_OK && n == 1 && strcmp(list[0], local) == 0) {
            free(list[0]);
            list[0] = mem_strdup(a); /* not an alias: keep the address as it was */
        }
    } else {
        list = mem_alloc(sizeof *list);
        list[0] = mem_strdup(a);
        n = 1;
    }
    if (o != OUTCOME_OK)
        envelope_prefix(r, o, what);
    for (size_t i = 0; i < n; i++) {
        if (o == OUTCOME_OK) {
            char *q = addr_qualify(list[i], domain);
            if (addr_validate(q, r) != OUTCOME_OK)
                o = envelope_prefix(r, bad, what);
            else
                envelope_push(e, q);
            free(q);
        }
        free(list[i]);
    }
    free(list);
    free(local);
    return o;
}

enum outcome envelope_add(const struct envelope_params *p, struct envelope *e, const char *text,
                          const char *what, enum outcome bad, struct result *r)
{
    struct addr_list l;
    if (addr_parse_list(text, &l, r) != OUTCOME_OK)
        return envelope_prefix(r, bad, what);
    enum outcome o = OUTCOME_OK;
    for (size_t i = 0; i < l.n && o == OUTCOME_OK; i++)
        o = envelope_one(p, e, l.v[i].addr, what, bad, r);
    addr_list_free(&l);
    return o;
}

/* A sender text: "", "<>", "a@x", "<a@x>", "Name <a@x>", or a bare name. */
static enum outcome envelope_sender_from(const struct envelope_params *p, const char *text,
                                         const char *what, enum outcome bad, char **out,
                                         struct result *r)
{
    *out = NULL;
    if (text[0] == '\0' || strcmp(text, "<>") == 0) {
        *out = mem_strdup("");
        return OUTCOME_OK;
    }
    struct addr_list l;
    if (addr_parse_list(text, &l, r) != OUTCOME_OK)
        return envelope_prefix(r, bad, what);
    if (l.n != 1) {
        addr_list_free(&l);
        return result_set(r, bad, "%s: expected one address, got %zu", what, l.n);
    }
    char *q = addr_qualify(l.v[0].addr, envelope_qualify_domain(p->conf));
    addr_list_free(&l);
    if (addr_validate(q, r) != OUTCOME_OK) {
        free(q);
        return envelope_prefix(r, bad, what);
    }
    *out = q;
    return OUTCOME_OK;
}

const char *envelope_login_name(void)
{
    static char name[64];
    if (name[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());
        if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0' &&
            strlen(pw->pw_name) < sizeof name)
            snprintf(name, sizeof name, "%s", pw->pw_name);
        else
            snprintf(name, sizeof name, "uid%lu", (unsigned long)getuid());
    }
    return name;
}

static enum outcome envelope_sender(const struct envelope_params *p, char **out, struct result *r)
{
    if (p->smtp)
        return envelope_sender_from(p, p->smtp_sender ? p->smtp_sender : "", "MAIL FROM",
                                    OUTCOME_DATAERR, out, r);
    if (p->opts != NULL && p->opts->sender != NULL)
        return envelope_sender_from(p, p->opts->sender, "sender (-f)", OUTCOME_USAGE, out, r);
    const struct conf_account *acc = p->conf ? conf_account_for(p->conf, NULL) : NULL;
    if (acc != NULL && acc->from != NULL && acc->from[0] != '\0')
        return envelope_sender_from(p, acc->from, "account from", OUTCOME_CONFIG, out, r);
    const char *user = p->user != NULL && p->user[0] != '\0' ? p->user : envelope_login_name();
    return envelope_sender_from(p, user, "sender (login name)", OUTCOME_USAGE, out, r);
}

static bool envelope_is_resent_rcpt(const char *name)
{
    return strcasecmp(name, "Resent-To") == 0 || strcasecmp(name, "Resent-Cc") == 0 ||
           strcasecmp(name, "Resent-Bcc") == 0;
}

static bool envelope_is_rcpt(const char *name)
{
    return strcasecmp(name, "To") == 0 || strcasecmp(name, "Cc") == 0 ||
           strcasecmp(name, "Bcc") == 0;
}

enum outcome envelope_build(const struct envelope_params *p, struct envelope *e, struct result *r)
{
    memset(e, 0, sizeof *e);
    enum outcome o = envelope_sender(p, &e->sender, r);
    if (o == OUTCOME_OK && p->smtp) {
        for (size_t i = 0; i < p->smtp_nrcpts && o == OUTCOME_OK; i++)
            o = envelope_add(p, e, p->smtp_rcpts[i], "RCPT TO", OUTCOME_DATAERR, r);
    } else if (o == OUTCOME_OK) {
        if (p->opts->extract && p->headers != NULL) {
            const struct header_block *h = p->headers;
            bool resent = false;
            for (size_t i = 0; i < h->n; i++)
                resent = resent || envelope_is_resent_rcpt(h->v[i].name);
            for (size_t i = 0; i < h->n && o == OUTCOME_OK; i++) {
                const char *name = h->v[i].name;
                if (resent ? !envelope_is_resent_rcpt(name) : !envelope_is_rcpt(name))
                    continue;
                char *what = mem_printf("header %s", name);
                o = envelope_add(p, e, h->v[i].value, what, OUTCOME_DATAERR, r);
                free(what);
            }
        }
        for (size_t i = 0; i < p->opts->nargs && o == OUTCOME_OK; i++)
            o = envelope_add(p, e, p->opts->args[i], "recipient argument", OUTCOME_USAGE, r);
    }
    if (o == OUTCOME_OK && e->nrcpts == 0)
        o = result_set(r, OUTCOME_DATAERR, "no recipients%s",
                       p->smtp || p->opts->extract
                           ? ""
                           : " (give addresses as arguments, or -t to read To/Cc/Bcc)");
    if (o != OUTCOME_OK)
        envelope_free(e);
    return o;
}

void envelope_qualify_headers(struct header_block *h, const char *domain)
{
    static const char *const names[] = {"To",        "Cc",          "From",
                                        "Sender",    "Reply-To",    "Resent-To",
                                        "Resent-Cc", "Resent-From", "Resent-Sender"};
    for (size_t i = 0; i < h->n; i++) {
        bool match = false;
        for (size_t k = 0; k < sizeof names / sizeof names[0] && !match; k++)
            match = strcasecmp(h->v[i].name, names[k]) == 0;
        if (!match)
            continue;
        char *v = addr_qualify_list(h->v[i].value, domain);
        if (v != NULL) {
            header_replace(h, i, v);
            free(v);
        }
    }
}

void envelope_free(struct envelope *e)
{
    if (e->index != NULL) {
        free(e->index->slot);
        free(e->index);
    }
    free(e->sender);
    for (size_t i = 0; i < e->nrcpts; i++)
        free(e->rcpts[i]);
    free(e->rcpts);
    memset(e, 0, sizeof *e);
}
