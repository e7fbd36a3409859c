/*
 * opts.c - the sendmail command line; see opts.h.
 *
 * A hand-written getopt-like loop: sendmail's flags cluster (-ti), take their
 * value attached or as the next argument (-fuser@x, -f user@x), and some have
 * sub-letters with their own rules (-odq, -oem, -B8BITMIME, -qIid, -bp).
 * Options and recipients may be mixed, as with glibc getopt; "--" ends the
 * options.  Nothing here prints or opens anything.
 */
#include "config.h"

#include "opts.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mem.h"

/* Longest address accepted on the command line (RFC 5321: 64 + 1 + 255). */
#define OPTS_ADDR_MAX 320
/* RFC 3461: an ENVID is at most 100 characters. */
#define OPTS_ENVID_MAX 100
/* -F: a display name, not a paragraph. */
#define OPTS_FULLNAME_MAX 256

/*
 * The last args block handed out: kept reachable so that a caller which
 * never calls opts_free() does not leak it as far as leak checkers go.
 */
static char **opts_last_args;

void opts_free(struct opts *o)
{
    if (o == NULL)
        return;
    if (o->args != NULL && o->args == opts_last_args)
        opts_last_args = NULL;
    free(o->args);
    o->args = NULL;
    o->nargs = 0;
}

/* Why an address argument is unusable, or NULL when it is fine. */
static const char *opts_address_problem(const char *s, bool allow_dash)
{
    size_t n = strlen(s);
    if (n > OPTS_ADDR_MAX)
        return "longer than 320 characters";
    if (!allow_dash && s[0] == '-')
        return "starts with '-'";
    /* Every byte first: a backslash inside quotes escapes nothing here. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n')
            return "contains a line break";
        if (c < 0x20 || c == 0x7f)
            return "contains a control character";
        if (c == '<' || c == '>')
            return "contains '<' or '>'";
    }
    bool quoted = false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && quoted) {
            if (i + 1 < n)
                i++;
            continue;
        }
        if (s[i] == '"')
            quoted = !quoted;
    }
    if (quoted)
        return "has an unbalanced quote";
    return NULL;
}

/* -N never | success,failure,delay (case-insensitive). 0 when invalid. */
static unsigned opts_parse_notify(const char *v)
{
    if (strcasecmp(v, "never") == 0)
        return OPTS_NOTIFY_NEVER;
    unsigned bits = 0;
    const char *p = v;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len == 7 && strncasecmp(p, "success", len) == 0)
            bits |= OPTS_NOTIFY_SUCCESS;
        else if (len == 7 && strncasecmp(p, "failure", len) == 0)
            bits |= OPTS_NOTIFY_FAILURE;
        else if (len == 5 && strncasecmp(p, "delay", len) == 0)
            bits |= OPTS_NOTIFY_DELAY;
        else
            return 0;
        if (end == NULL)
            return bits;
        p = end + 1;
    }
}

/* -V: xtext-safe printable ASCII (the relay encodes '+' and '='). */
static bool opts_envid_ok(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > OPTS_ENVID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 33 || (unsigned char)v[i] > 126)
            return false;
    return true;
}

static bool opts_fullname_ok(const char *v)
{
    size_t n = strlen(v);
    if (n > OPTS_FULLNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* -q<interval>: digits and unit letters, as in 30m or 1h30m. */
static bool opts_interval_ok(const char *v)
{
    if (!isdigit((unsigned char)v[0]))
        return false;
    for (const char *p = v; *p != '\0'; p++)
        if (!isdigit((unsigned char)*p) && strchr("smhdw", *p) == NULL)
            return false;
    return true;
}

/* -o<x>: the sendmail "options"; only a few mean something to postie. */
static void opts_apply_o(struct opts *o, const char *v)
{
    if (strcmp(v, "i") == 0)
        o->ignore_dots = true;
    else if (strcmp(v, "dq") == 0 || strcmp(v, "dd") == 0)
        o->queue_only = true;
    else if (strcmp(v, "em") == 0 || strcmp(v, "ew") == 0)
        o->errors = OPTS_ERRORS_MAIL;
    else if (strcmp(v, "ep") == 0 || strcmp(v, "eq") == 0)
        o->errors = OPTS_ERRORS_PRINT;
    /* -odi, -odb, -om, -oA..., -oQ..., -oL..., anything else: ignored. */
}

/* -b<x>. */
static enum outcome opts_apply_b(struct opts *o, const char *v, struct result *r)
{
    static const struct {
        const char *name;
        const char *what;
    } refused[] = {
        {"d", "run as a daemon"},       {"D", "run as a daemon in the foreground"},
        {"h", "print the host status"}, {"H", "purge the host status"},
        {"t", "address test mode"},     {"P", "print the queue size"},
    };
    if (strcmp(v, "m") == 0)
        o->mode = OPTS_MODE_SEND;
    else if (strcmp(v, "p") == 0)
        o->mode = OPTS_MODE_LIST;
    else if (strcmp(v, "v") == 0)
        o->mode = OPTS_MODE_VERIFY;
    else if (strcmp(v, "s") == 0)
        o->mode = OPTS_MODE_SMTP;
    else if (strcmp(v, "i") == 0)
        o->mode = OPTS_MODE_ALIASES;
    else {
        for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
            if (strcmp(v, refused[i].name) == 0)
                return result_set(r, OUTCOME_USAGE,
                                  "-b%s (%s) is not supported: postie is not an MTA", v,
                                  refused[i].what);
        return result_set(r, OUTCOME_USAGE, "unknown option -b%.40s", v);
    }
    return OUTCOME_OK;
}

/* -q, -q<interval>, -qI<substr>. */
static enum outcome opts_apply_q(struct opts *o, const char *v, struct result *r)
{
    o->mode = OPTS_MODE_FLUSH;
    o->queue_filter = NULL;
    if (v[0] == '\0' || opts_interval_ok(v))
        return OUTCOME_OK;
    if (v[0] == 'I') {
        if (v[1] == '\0')
            return result_set(r, OUTCOME_USAGE, "option -qI needs a queue id substring");
        for (const char *p = v + 1; *p != '\0'; p++)
            if (!isalnum((unsigned char)*p) && strchr("-_.", *p) == NULL)
                return result_set(r, OUTCOME_USAGE,
                                  "option -qI: a queue id holds only letters, digits, '-', '_' "
                                  "and '.'");
        o->queue_filter = v + 1;
        return OUTCOME_OK;
    }
    return result_set(r, OUTCOME_USAGE,
                      "unsupported option -q%.40s (use -q, -q<interval> or -qI<id>)", v);
}

/* A flag that takes a value: v is the value. */
static enum outcome opts_apply_value(struct opts *o, char flag, const char *v, struct result *r)
{
    const char *why;
    switch (flag) {
    case 'f':
    case 'r':
        if (strcmp(v, "<>") == 0 || v[0] == '\0') {
            o->sender = "";
            return OUTCOME_OK;
        }
        why = opts_address_problem(v, false);
        if (why != NULL)
            return result_set(r, OUTCOME_USAGE, "invalid sender for -%c \"%.60s%s\": %s", flag, v,
                              strlen(v) > 60 ? "..." : "", why);
        o->sender = v;
        return OUTCOME_OK;
    case 'F':
        if (!opts_fullname_ok(v))
            return result_set(r, OUTCOME_USAGE,
                              "invalid full name for -F: control characters or longer than 256 "
                              "characters");
        o->fullname = v;
        return OUTCOME_OK;
    case 'C':
        if (v[0] == '\0')
            return result_set(r, OUTCOME_USAGE, "option -C needs a file name");
        o->config = v;
        return OUTCOME_OK;
    case 'N':
        o->notify = opts_parse_notify(v);
        if (o->notify == 0)
            return result_set(r, OUTCOME_USAGE,
                              "invalid value for -N: use never or a list of success, failure, "
                              "delay");
        return OUTCOME_OK;
    case 'R':
        if (strcasecmp(v, "full") == 0)
            o->ret = OPTS_RET_FULL;
        else if (strcasecmp(v, "hdrs") == 0)
            o->ret = OPTS_RET_HDRS;
        else
            return result_set(r, OUTCOME_USAGE, "invalid value for -R: use full or hdrs");
        return OUTCOME_OK;
    case 'V':
        if (!opts_envid_ok(v))
            return result_set(r, OUTCOME_USAGE,
                              "invalid envelope id for -V: 1 to 100 printable ASCII characters, "
                              "no spaces");
        o->envid = v;
        return OUTCOME_OK;
    case 'B':
        if (strcasecmp(v, "7BIT") == 0)
            o->body = OPTS_BODY_7BIT;
        else if (strcasecmp(v, "8BITMIME") == 0)
            o->body = OPTS_BODY_8BITMIME;
        else
            return result_set(r, OUTCOME_USAGE, "invalid body type for -B: use 7BIT or 8BITMIME");
        return OUTCOME_OK;
    case 'b':
        return opts_apply_b(o, v, r);
    case 'o':
        opts_apply_o(o, v);
        return OUTCOME_OK;
    default:
        /* -O option, -L tag, -h hops, -A x, -d x, -X file: accepted, ignored. */
        return OUTCOME_OK;
    }
}

/* Flags that take a value (attached, or the next argument). */
static bool opts_takes_value(char c)
{
    return c != '\0' && strchr("frFCNRVBboOLhAdX", c) != NULL;
}

/* Flags without a value; they may be clustered (-ti). */
static bool opts_apply_flag(struct opts *o, char c)
{
    switch (c) {
    case 't':
        o->extract = true;
        return true;
    case 'i':
        o->ignore_dots = true;
        return true;
    case 'v':
        o->verbose = true;
        return true;
    case 'I':
        o->mode = OPTS_MODE_ALIASES;
        return true;
    case 'G': /* relay submission: ignored */
    case 'U': /* initial user submission: ignored */
    case 'n': /* no aliasing: ignored */
    case 'm': /* me too: ignored */
        return true;
    default:
        return false;
    }
}

/* The personality: the basename of argv[0]. */
static enum opts_mode opts_personality(const char *argv0)
{
    if (argv0 == NULL)
        return OPTS_MODE_SEND;
    const char *base = strrchr(argv0, '/');
    base = base != NULL ? base + 1 : argv0;
    if (strcmp(base, "mailq") == 0)
        return OPTS_MODE_LIST;
    if (strcmp(base, "newaliases") == 0)
        return OPTS_MODE_ALIASES;
    return OPTS_MODE_SEND;
}

/* A short, printable rendering of a user-supplied option for messages. */
#define OPTS_SHOW "%.40s"

/* Splits positional argument s (a recipient list, as Debian cron passes
 * "a," "b") into pieces at commas outside quotes, trimming blanks.  With
 * out == NULL only counts.  Returns the number of pieces. */
static size_t opts_split(const char *s, char **out, char **store)
{
    size_t count = 0;
    const char *p = s;
    while (*p != '\0') {
        const char *start = p;
        bool quoted = false;
        while (*p != '\0' && (quoted || *p != ',')) {
            if (quoted && *p == '\\' && p[1] != '\0')
                p++;
            else if (*p == '"')
                quoted = !quoted;
            p++;
        }
        const char *end = p;
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end > start) {
            if (out != NULL) {
                size_t len = (size_t)(end - start);
                memcpy(*store, start, len);
                (*store)[len] = '\0';
                out[count] = *store;
                *store += len + 1;
            }
            count++;
        }
        if (*p == ',')
            p++;
    }
    return count;
}

/*
 * Builds o->args from the positional arguments: one allocation holding the
 * pointer array and copies of the strings.  Recipients are split at commas
 * and validated; queue ids are taken as they are.
 */
static enum outcome opts_build_args(struct opts *o, char **pos, const bool *after_dashdash,
                                    size_t npos, struct result *r)
{
    bool recipients = o->mode == OPTS_MODE_SEND || o->mode == OPTS_MODE_VERIFY;
    bool ids = o->mode == OPTS_MODE_DELETE;
    o->args = NULL;
    o->nargs = 0;
    if (!recipients && !ids)
        return OUTCOME_OK; /* other modes ignore arguments */
    size_t count = 0;
    size_t bytes = 0;
    for (size_t i = 0; i < npos; i++) {
        count += ids ? 1 : opts_split(pos[i], NULL, NULL);
        bytes += strlen(pos[i]) + 1;
    }
    if (count == 0)
        return OUTCOME_OK;
    char **arr = mem_alloc((count + 1) * sizeof(char *) + bytes);
    char *store = (char *)(arr + count + 1);
    size_t n = 0;
    for (size_t i = 0; i < npos; i++) {
        if (ids) {
            size_t len = strlen(pos[i]);
            memcpy(store, pos[i], len + 1);
            arr[n++] = store;
            store += len + 1;
            continue;
        }
        size_t first = n;
        n += opts_split(pos[i], arr + n, &store);
        for (size_t k = first; k < n; k++) {
            const char *why = opts_address_problem(arr[k], after_dashdash[i]);
            if (why != NULL) {
                result_set(r, OUTCOME_USAGE, "invalid recipient argument \"%.60s%s\": %s", arr[k],
                           strlen(arr[k]) > 60 ? "..." : "", why);
                free(arr);
                return OUTCOME_USAGE;
            }
        }
    }
    arr[n] = NULL;
    o->args = arr;
    o->nargs = n;
    opts_last_args = arr;
    return OUTCOME_OK;
}

enum outcome opts_parse(int argc, char **argv, struct opts *o, struct result *r)
{
    memset(o, 0, sizeof *o);
    result_clear(r);
    o->mode = opts_personality(argc > 0 ? argv[0] : NULL);

    bool want_help = false;
    bool want_version = false;
    bool want_delete = false;
    bool due = false;
    bool dashdash = false;
    size_t npos = 0;
    char **pos = mem_array(argc > 0 ? (size_t)argc : 1, sizeof(char *));
    bool *pos_dd = mem_array(argc > 0 ? (size_t)argc : 1, sizeof(bool));
    enum outcome rc = OUTCOME_OK;

    for (int i = 1; i < argc && rc == OUTCOME_OK; i++) {
        char *a = argv[i];
        if (a == NULL)
            break;
        if (dashdash || a[0] != '-' || a[1] == '\0') {
            pos_dd[npos] = dashdash;
            pos[npos++] = a;
            continue;
        }
        if (a[1] == '-') {
            if (a[2] == '\0')
                dashdash = true;
            else if (strcmp(a, "--help") == 0)
                want_help = true;
            else if (strcmp(a, "--version") == 0)
                want_version = true;
            else if (strcmp(a, "--delete") == 0)
                want_delete = true;
            else if (strcmp(a, "--due") == 0)
                due = true;
            else
                rc = result_set(r, OUTCOME_USAGE, "unknown option " OPTS_SHOW, a);
            continue;
        }
        for (const char *p = a + 1; *p != '\0' && rc == OUTCOME_OK; p++) {
            char c = *p;
            if (opts_apply_flag(o, c))
                continue;
            if (c == 'q') {
                rc = opts_apply_q(o, p + 1, r);
                break;
            }
            if (!opts_takes_value(c)) {
                if (isprint((unsigned char)c))
                    rc = result_set(r, OUTCOME_USAGE, "unknown option -%c", c);
                else
                    rc = result_set(r, OUTCOME_USAGE, "unknown option (byte 0x%02x)",
                                    (unsigned char)c);
                break;
            }
            const char *v = p + 1;
            if (*v == '\0') {
                if (i + 1 >= argc || argv[i + 1] == NULL) {
                    rc = result_set(r, OUTCOME_USAGE, "option -%c needs a value", c);
                    break;
                }
                v = argv[++i];
            }
            rc = opts_apply_value(o, c, v, r);
            break;
        }
    }

    if (rc == OUTCOME_OK) {
        if (want_help || want_version) {
            o->mode = want_help ? OPTS_MODE_HELP : OPTS_MODE_VERSION;
        } else if (want_delete) {
            o->mode = OPTS_MODE_DELETE;
            if (npos == 0)
                rc = result_set(r, OUTCOME_USAGE, "--delete needs at least one queue id");
        } else if (due && o->mode != OPTS_MODE_FLUSH) {
            rc = result_set(r, OUTCOME_USAGE, "--due only applies to -q");
        }
        o->flush_due_only = due;
    }
    if (rc == OUTCOME_OK)
        rc = opts_build_args(o, pos, pos_dd, npos, r);
    if (rc == OUTCOME_OK && o->mode == OPTS_MODE_SEND && !o->extract && o->nargs == 0)
        rc = result_set(r, OUTCOME_USAGE,
                        "no recipients: give addresses as arguments or use -t to read them "
                        "from the message");
    free(pos);
    free(pos_dd);
    if (rc != OUTCOME_OK)
        opts_free(o);
    return rc;
}

const char *opts_help_text(void)
{
    return "usage: postie [options] [--] [recipient ...]\n"
           "       postie -bp | mailq\n"
           "       postie -q [--due] [-qI<id>]\n"
           "       postie -bv address ...\n"
           "       postie -bs\n"
           "       postie -bi | -I | newaliases\n"
           "       postie --delete id ...\n"
           "\n"
           "Options take their value attached (-fuser@example.com) or as the next\n"
           "argument (-f user@example.com); flags without a value may be grouped (-ti).\n"
           "Recipient arguments may be comma-separated lists.  \"--\" ends the options.\n"
           "\n"
           "Sending:\n"
           "  -t                 recipients from To, Cc, Bcc (or Resent-*) as well\n"
           "  -i, -oi            a line holding only \".\" does not end the message\n"
           "  -f sender          envelope sender; \"<>\" or \"\" is the null sender\n"
           "  -r sender          the same as -f\n"
           "  -F name            full name for an added From field\n"
           "  -C file            read this configuration file\n"
           "  -v                 print the SMTP dialogue (secrets redacted)\n"
           "  -N dsn             DSN notify: never, or success,failure,delay\n"
           "  -R ret             DSN return: full or hdrs\n"
           "  -V envid           DSN envelope id (printable ASCII, up to 100)\n"
           "  -B type            body type: 7BIT or 8BITMIME\n"
           "  -odq, -odd         queue the message, do not try to deliver it now\n"
           "  -oem, -oew         mail permanent failures back to the sender, exit 0\n"
           "  -oep, -oeq         report failures on stderr and in the exit status\n"
           "  -bm                send a message (the default)\n"
           "\n"
           "Other modes:\n"
           "  -bp                list the queue (also: mailq)\n"
           "  -q                 attempt every queued message now\n"
           "  -q<time>           the same (e.g. -q30m runs the queue once)\n"
           "  -qI<id>            only queued messages whose id contains <id>\n"
           "  --due              with -q: only messages whose retry time has come\n"
           "  --delete id ...    remove queued messages\n"
           "  -bv address ...    test the addresses with the smarthost, send nothing\n"
           "  -bs                SMTP on standard input and output\n"
           "  -bi, -I            check the aliases file (also: newaliases)\n"
           "  --help             print this text\n"
           "  --version          print the versions of postie and its libraries\n"
           "\n"
           "Accepted and ignored:\n"
           "  -odi, -odb, -om, -o<x> (any other -o option), -O<option>, -L tag, -G, -U,\n"
           "  -h hops, -n, -m, -A<x>, -d<x>,\n"
           "  -X file            (never opened: postie writes no traffic log)\n"
           "\n"
           "Refused (exit 64): -bd, -bD, -bh, -bH, -bt, -bP and unknown options.\n";
}
