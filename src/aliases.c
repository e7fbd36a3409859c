/*
 * aliases.c - the aliases(5) file; see aliases.h.
 *
 * Format: "name: target, target" per entry; '#' starts a comment line;
 * lines starting with whitespace continue the previous entry; blank lines
 * are ignored.  Names are compared case-insensitively.  A target is an
 * address ("admin@example.com", "Admin <admin@example.com>") or another
 * name.  ":include:file", "|command" and "/file" targets (also quoted) are
 * skipped: postie delivers nothing locally.  The warning (log_warn) comes
 * when such an alias is expanded for a message, and from aliases_check();
 * merely loading the file says nothing, so cron mail does not repeat it.
 * A target equal to the alias's own name stops the expansion there (the
 * sendmail idiom "root: root, admin@x").  Chains are followed up to
 * ALIASES_DEPTH_MAX levels; a name met again on the same chain is a loop.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "aliases.h"
#include "log.h"
#include "mem.h"

struct aliases_entry {
    char *name;
    char **targets;
    size_t ntargets;
    size_t line;
    size_t nrefused; /* local-delivery targets skipped */
    char *refused;   /* the first of them, for the warning */
};

struct aliases {
    char *path;
    struct aliases_entry *v;
    size_t n;
};

/*
 * Reports one problem: on err (check mode), or through log_warn when loading
 * for a delivery.  Warnings about refused local targets are not given at
 * load time (every run would repeat them): aliases_expand() gives them when
 * such an alias is used.
 */
struct aliases_report {
    FILE *err;
    const char *path;
    size_t errors;
    size_t warnings;
    bool quiet; /* this warning is for aliases_check only */
    char first[RESULT_TEXT_MAX];
};

static void aliases_problem(struct aliases_report *rep, bool error, size_t line, const char *fmt,
                            ...) __attribute__((format(printf, 4, 5)));

static void aliases_problem(struct aliases_report *rep, bool error, size_t line, const char *fmt,
                            ...)
{
    char msg[RESULT_TEXT_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (error && rep->errors == 0)
        snprintf(rep->first, sizeof rep->first, "%s:%zu: %s", rep->path, line, msg);
    if (error)
        rep->errors++;
    else
        rep->warnings++;
    if (rep->err != NULL)
        fprintf(rep->err, "%s:%zu: %s%s\n", rep->path, line, error ? "" : "warning: ", msg);
    else if (!error && !rep->quiet)
        log_warn("%s:%zu: %s", rep->path, line, msg);
}

static const struct aliases_entry *aliases_lookup(const struct aliases *a, const char *name)
{
    if (a == NULL)
        return NULL;
    for (size_t i = 0; i < a->n; i++) {
        if (strcasecmp(a->v[i].name, name) == 0)
            return &a->v[i];
    }
    return NULL;
}

static char *aliases_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

/* Splits an entry's right-hand side on commas outside quotes, <> and comments. */
static void aliases_targets(struct aliases_report *rep, struct aliases_entry *e, char *rhs)
{
    size_t i = 0, start = 0;
    bool q = false;
    int paren = 0, angle = 0;
    for (;; i++) {
        char c = rhs[i];
        if (c == '\\' && q && rhs[i + 1] != '\0') {
            i++;
            continue;
        }
        if (c == '"')
            q = !q;
        else if (!q && c == '(')
            paren++;
        else if (!q && c == ')' && paren > 0)
            paren--;
        else if (!q && paren == 0 && c == '<')
            angle++;
        else if (!q && paren == 0 && c == '>' && angle > 0)
            angle--;
        if (c != '\0' && (c != ',' || q || paren > 0 || angle > 0))
            continue;
        rhs[i] = '\0';
        char *t = aliases_trim(rhs + start);
        const char *u = t[0] == '"' ? t + 1 : t;
        if (*t == '\0') {
            /* empty member */
        } else if (u[0] == '|' || u[0] == '/' || strncasecmp(u, ":include:", 9) == 0) {
            rep->quiet = true;
            aliases_problem(rep, false, e->line,
                            "alias %s: target %s refused (postie delivers nothing locally)",
                            e->name, t);
            rep->quiet = false;
            if (e->nrefused++ == 0)
                e->refused = mem_strdup(t);
        } else {
            struct addr_list l;
            struct result r;
            if (addr_parse_list(t, &l, &r) != OUTCOME_OK || l.n == 0) {
                aliases_problem(rep, true, e->line, "alias %s: bad target \"%s\"", e->name, t);
            } else {
                for (size_t k = 0; k < l.n; k++) {
                    if (addr_validate(l.v[k].addr, &r) != OUTCOME_OK) {
                        aliases_problem(rep, true, e->line, "alias %s: %s", e->name, r.text);
                        continue;
                    }
                    e->targets = mem_resize(e->targets, e->ntargets + 1, sizeof *e->targets);
                    e->targets[e->ntargets++] = mem_strdup(l.v[k].addr);
                }
                addr_list_free(&l);
            }
        }
        if (c == '\0')
            break;
        start = i + 1;
    }
}

static void aliases_entry(struct aliases *a, struct aliases_report *rep, char *text, size_t line)
{
    char *colon = strchr(text, ':');
    if (colon == NULL) {
        aliases_problem(rep, true, line, "missing ':' after the alias name");
        return;
    }
    *colon = '\0';
    char *name = aliases_trim(text);
    if (*name == '\0') {
        aliases_problem(rep, true, line, "empty alias name");
        return;
    }
    for (const char *c = name; *c != '\0'; c++) {
        if (*c == ' ' || *c == '\t' || *c == '@' || *c == '"' || *c == '<' || *c == '>' ||
            (unsigned char)*c < 0x20) {
            aliases_problem(rep, true, line, "bad alias name \"%s\"", name);
            return;
        }
    }
    if (aliases_lookup(a, name) != NULL) {
        aliases_problem(rep, false, line, "alias %s defined twice (first definition kept)", name);
        return;
    }
    struct aliases_entry e = {.name = mem_strdup(name), .line = line};
    aliases_targets(rep, &e, colon + 1);
    a->v = mem_resize(a->v, a->n + 1, sizeof *a->v);
    a->v[a->n++] = e;
}

/* Reads path into a; problems go to rep.  OUTCOME_NOINPUT when unreadable. */
static enum outcome aliases_read(const char *path, struct aliases *a, struct aliases_report *rep,
                                 struct result *r)
{
    FILE *fp = fopen(path, "re");
    if (fp == NULL)
        return result_set(r, OUTCOME_NOINPUT, "cannot open aliases file %s: %s", path,
                          strerror(errno));
    char *line = NULL, *entry = NULL;
    size_t cap = 0, lineno = 0, entry_line = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, fp)) != -1) {
        lineno++;
        if ((size_t)got != strlen(line)) {
            aliases_problem(rep, true, lineno, "NUL octet in line");
            continue;
        }
        char *t = aliases_trim(line);
        if (line[0] == '#' || *t == '\0') {
            continue; /* comment or blank: does not end a continued entry in sendmail */
        }
        if (line[0] == ' ' || line[0] == '\t') {
            if (entry == NULL) {
                aliases_problem(rep, true, lineno, "continuation line without an alias");
                continue;
            }
            char *joined = mem_printf("%s %s", entry, t);
            free(entry);
            entry = joined;
            continue;
        }
        if (entry != NULL)
            aliases_entry(a, rep, entry, entry_line);
        free(entry);
        entry = mem_strdup(t);
        entry_line = lineno;
    }
    bool ioerr = ferror(fp) != 0;
    if (entry != NULL)
        aliases_entry(a, rep, entry, entry_line);
    free(entry);
    free(line);
    fclose(fp);
    if (ioerr)
        return result_set(r, OUTCOME_NOINPUT, "cannot read aliases file %s", path);
    return OUTCOME_OK;
}

enum outcome aliases_load(const char *path, bool optional, struct aliases **out, struct result *r)
{
    struct aliases *a = mem_alloc(sizeof *a);
    a->path = mem_strdup(path ? path : "");
    *out = a;
    if (path == NULL || path[0] == '\0')
        return OUTCOME_OK;
    if (optional && access(path, F_OK) != 0 && errno == ENOENT)
        return OUTCOME_OK;
    struct aliases_report rep = {.path = path};
    enum outcome o = aliases_read(path, a, &rep, r);
    if (o == OUTCOME_OK && rep.errors > 0)
        o = result_set(r, OUTCOME_CONFIG, "%s", rep.first);
    if (o != OUTCOME_OK) {
        aliases_free(a);
        *out = NULL;
    }
    return o;
}

#define ALIASES_DEPTH_MAX 20

static enum outcome aliases_walk(const struct aliases *a, const char *name, const char **chain,
                                 size_t depth, bool warn, char ***list, size_t *n, struct result *r)
{
    const struct aliases_entry *e = aliases_lookup(a, name);
    if (e == NULL || (depth > 0 && strcasecmp(chain[depth - 1], name) == 0)) {
        /* not an alias, or "root: root": the name itself is the target */
        for (size_t i = 0; i < *n; i++) {
            if (strcmp((*list)[i], name) == 0)
                return OUTCOME_OK;
        }
        *list = mem_resize(*list, *n + 1, sizeof **list);
        (*list)[(*n)++] = mem_strdup(name);
        return OUTCOME_OK;
    }
    for (size_t i = 0; i < depth; i++) {
        if (strcasecmp(chain[i], e->name) == 0)
            return result_set(r, OUTCOME_DATAERR, "alias loop: %s expands to itself through %s",
                              e->name, chain[depth - 1]);
    }
    if (depth >= ALIASES_DEPTH_MAX)
        return result_set(r, OUTCOME_DATAERR, "alias %s: chain deeper than %d", chain[0],
                          ALIASES_DEPTH_MAX);
    if (warn && e->nrefused > 0)
        log_warn("alias %s: %zu local target%s such as %s not delivered "
                 "(postie delivers nothing locally)",
                 e->name, e->nrefused, e->nrefused == 1 ? "" : "s", e->refused);
    chain[depth] = e->name;
    for (size_t i = 0; i < e->ntargets; i++) {
        const char *t = e->targets[i];
        enum outcome o;
        if (addr_is_bare(t)) {
            o = aliases_walk(a, t, chain, depth + 1, warn, list, n, r);
        } else {
            bool seen = false;
            for (size_t k = 0; k < *n && !seen; k++)
                seen = addr_equal((*list)[k], t);
            if (!seen) {
                *list = mem_resize(*list, *n + 1, sizeof **list);
                (*list)[(*n)++] = mem_strdup(t);
            }
            o = OUTCOME_OK;
        }
        if (o != OUTCOME_OK)
            return o;
    }
    return OUTCOME_OK;
}

static enum outcome aliases_expand_warn(const struct aliases *a, const char *name, bool warn,
                                        char ***list, size_t *n, struct result *r)
{
    const char *chain[ALIASES_DEPTH_MAX + 1];
    size_t before = *n;
    enum outcome o = aliases_walk(a, name, chain, 0, warn, list, n, r);
    if (o != OUTCOME_OK) {
        for (size_t i = before; i < *n; i++)
            free((*list)[i]);
        *n = before;
    }
    return o;
}

enum outcome aliases_expand(const struct aliases *a, const char *name, char ***list, size_t *n,
                            struct result *r)
{
    for (const char *c = name; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return result_set(r, OUTCOME_DATAERR, "invalid local name \"%s\": control character",
                              name);
    }
    return aliases_expand_warn(a, name, true, list, n, r);
}

enum outcome aliases_check(const char *path, FILE *err, size_t *entries, struct result *r)
{
    struct aliases a = {0};
    struct aliases_report rep = {.err = err, .path = path};
    *entries = 0;
    enum outcome o = aliases_read(path, &a, &rep, r);
    if (o == OUTCOME_OK) {
        /* every chain must end: report loops and over-deep chains */
        for (size_t i = 0; i < a.n; i++) {
            char **list = NULL;
            size_t n = 0;
            struct result lr;
            if (aliases_expand_warn(&a, a.v[i].name, false, &list, &n, &lr) != OUTCOME_OK)
                aliases_problem(&rep, true, a.v[i].line, "%s", lr.text);
            for (size_t k = 0; k < n; k++)
                free(list[k]);
            free(list);
        }
        *entries = a.n;
        if (rep.errors > 0)
            o = result_set(r, OUTCOME_DATAERR, "%s: %zu error%s", path, rep.errors,
                           rep.errors == 1 ? "" : "s");
    }
    for (size_t i = 0; i < a.n; i++) {
        free(a.v[i].name);
        for (size_t k = 0; k < a.v[i].ntargets; k++)
            free(a.v[i].targets[k]);
        free(a.v[i].targets);
        free(a.v[i].refused);
    }
    free(a.v);
    return o;
}

void aliases_free(struct aliases *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i].name);
        for (size_t k = 0; k < a->v[i].ntargets; k++)
            free(a->v[i].targets[k]);
        free(a->v[i].targets);
        free(a->v[i].refused);
    }
    free(a->v);
    free(a->path);
    free(a);
}
