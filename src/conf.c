/*
 * conf.c - the configuration file, read with libConfuse; see conf.h and
 * doc/postie.conf.5.
 *
 * Every value is checked while libConfuse parses (validate callbacks), so
 * errors carry the file and line.  libConfuse's own messages are routed
 * through conf_errfunc() into the struct result, never printed.  Reading is
 * done here (open, fstat, read into memory, cfg_parse_buf) so that the
 * permission checks see the very file that is parsed.
 */
#include "config.h"

#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <confuse.h>

#include "mem.h"
#include "privs.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#ifndef QUEUEDIR
#define QUEUEDIR "/var/spool/postie"
#endif

/* A configuration file larger than this is refused. */
#define CONF_FILE_MAX (1024 * 1024)
/* password_command: at most this much output is looked at. */
#define CONF_SECRET_MAX  8192
#define CONF_TIMEOUT_MAX 3600
#define CONF_ADDR_MAX    320
#define CONF_DOMAIN_MAX  253

/* ------------------------------------------------------------ error routing */

/*
 * libConfuse's error callback has no user pointer, and libConfuse is not
 * thread-safe anyway: the parse in progress is described by this static.
 */
struct conf_ctx {
    const char *name; /* file name for messages */
    const char *text; /* the file's text */
    struct result *r; /* where the first error goes */
    bool failed;
    bool hide; /* the caller could not read the file: no details */
};
static struct conf_ctx *conf_cur;

static const char *const conf_keys[] = {
    "hostname",       "qualify_domain",
    "aliases",        "queue_dir",
    "queue_lifetime", "syslog",
    "account",        "host",
    "port",           "tls",
    "tls_ca_file",    "tls_cert_file",
    "tls_key_file",   "allow_plaintext_auth",
    "auth",           "user",
    "password",       "password_command",
    "from",           "timeout",
};

/*
 * Whether a token quoted in a libConfuse message may be shown: a key of the
 * schema, a punctuation character, or a word that starts its line in the
 * file (a misspelt key).  Anything else may be a value, and values may be
 * secrets ("no such option 'hunter2'" after password = "a" "hunter2").
 */
static bool conf_token_visible(const struct conf_ctx *ctx, int line, const char *tok, size_t len)
{
    if (len == 1 && !isalnum((unsigned char)tok[0]))
        return true;
    for (size_t i = 0; i < sizeof conf_keys / sizeof conf_keys[0]; i++)
        if (strlen(conf_keys[i]) == len && strncmp(conf_keys[i], tok, len) == 0)
            return true;
    if (ctx->text == NULL || len == 0)
        return false;
    const char *p = ctx->text;
    for (int l = 1; l < line && p != NULL; l++) {
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    if (p == NULL)
        return false;
    while (*p == ' ' || *p == '\t')
        p++;
    if (strncmp(p, tok, len) != 0)
        return false;
    char next = p[len];
    return next == '\0' || next == '\n' || next == '\r' || next == ' ' || next == '\t' ||
           next == '=' || next == '{' || next == '+' || next == '(';
}

/* Copies msg to out, replacing quoted tokens that may be values. */
static void conf_redact(const struct conf_ctx *ctx, int line, const char *msg, char *out,
                        size_t size)
{
    size_t o = 0;
    bool keep_all =
        strncmp(msg, "found duplicate title", 21) == 0 || strncmp(msg, "missing title", 13) == 0;
    for (const char *p = msg; *p != '\0' && o + 1 < size;) {
        const char *close = *p == '\'' ? strchr(p + 1, '\'') : NULL;
        if (close == NULL) {
            out[o++] = *p++;
            continue;
        }
        size_t len = (size_t)(close - p - 1);
        bool show = keep_all || conf_token_visible(ctx, line, p + 1, len);
        int w =
            snprintf(out + o, size - o, "'%.*s'", show ? (int)len : 8, show ? p + 1 : "(hidden)");
        if (w < 0 || (size_t)w >= size - o) {
            o = size - 1;
            break;
        }
        o += (size_t)w;
        p = close + 1;
    }
    out[o] = '\0';
}

__attribute__((format(printf, 2, 0))) static void conf_errfunc(cfg_t *cfg, const char *fmt,
                                                               va_list ap)
{
    if (conf_cur == NULL || conf_cur->failed)
        return;
    char raw[RESULT_TEXT_MAX], msg[RESULT_TEXT_MAX];
    vsnprintf(raw, sizeof raw, fmt, ap);
    int line = cfg != NULL ? cfg->line : 0;
    conf_redact(conf_cur, line, raw, msg, sizeof msg);
    mem_wipe(raw, sizeof raw);
    conf_cur->failed = true;
    if (conf_cur->hide)
        result_set(conf_cur->r, OUTCOME_CONFIG,
                   "%s:%d: configuration error (details withheld: the file is not readable by "
                   "the caller)",
                   conf_cur->name, line);
    else
        result_set(conf_cur->r, OUTCOME_CONFIG, "%s:%d: %s", conf_cur->name, line, msg);
}

/* -------------------------------------------------------------- value checks */

long conf_parse_duration(const char *s)
{
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || v < 0)
        return -1;
    long unit = 1;
    if (*end != '\0') {
        switch (*end) {
        case 's':
            unit = 1;
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return -1;
        }
        if (end[1] != '\0')
            return -1;
    }
    if (v > LONG_MAX / unit)
        return -1;
    return v * unit;
}

static bool conf_has_ctl(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return true;
    return false;
}

static bool conf_domain_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CONF_DOMAIN_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && strchr("-._", s[i]) == NULL)
            return false;
    return true;
}

/* host: a name, an IPv4 literal, or an IPv6 literal with or without brackets. */
static const char *conf_host_problem(const char *s)
{
    char buf[INET6_ADDRSTRLEN + 2];
    struct in6_addr a6;
    size_t n = strlen(s);
    if (n == 0)
        return "host is empty";
    if (s[0] == '[') {
        if (n < 3 || s[n - 1] != ']' || n - 2 >= sizeof buf)
            return "host: a bracketed literal must be an IPv6 address, as in [::1]";
        memcpy(buf, s + 1, n - 2);
        buf[n - 2] = '\0';
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            return "host: not a valid IPv6 address inside the brackets";
        return NULL;
    }
    if (strchr(s, ':') != NULL) {
        if (inet_pton(AF_INET6, s, &a6) == 1)
            return NULL;
        return "host: not a host name or IP address (put the port in \"port\", not after "
               "a colon)";
    }
    if (!conf_domain_ok(s))
        return "host: not a valid host name";
    return NULL;
}

/* Why an address (from) is unusable, or NULL. */
static const char *conf_address_problem(const char *s)
{
    if (strlen(s) > CONF_ADDR_MAX)
        return "longer than 320 characters";
    if (conf_has_ctl(s))
        return "contains a control character";
    if (strpbrk(s, "<>") != NULL)
        return "contains '<' or '>'";
    if (strpbrk(s, " \t") != NULL)
        return "contains a blank";
    return NULL;
}

static int conf_tls_value(const char *s)
{
    if (strcmp(s, "starttls") == 0)
        return CONF_TLS_STARTTLS;
    if (strcmp(s, "tls") == 0)
        return CONF_TLS_TLS;
    if (strcmp(s, "none") == 0)
        return CONF_TLS_NONE;
    return -1;
}

static int conf_auth_value(const char *s)
{
    if (strcmp(s, "any") == 0)
        return CONF_AUTH_ANY;
    if (strcmp(s, "login") == 0)
        return CONF_AUTH_LOGIN;
    if (strcmp(s, "plain") == 0)
        return CONF_AUTH_PLAIN;
    if (strcmp(s, "none") == 0)
        return CONF_AUTH_NONE;
    return -1;
}

/* ------------------------------------------------------- validate callbacks */

/* The value just set on a scalar option (the last one when repeated). */
static const char *conf_opt_str(cfg_opt_t *opt)
{
    unsigned n = cfg_opt_size(opt);
    return n > 0 ? cfg_opt_getnstr(opt, n - 1) : NULL;
}

static long conf_opt_int(cfg_opt_t *opt)
{
    unsigned n = cfg_opt_size(opt);
    return n > 0 ? cfg_opt_getnint(opt, n - 1) : 0;
}

static int conf_check_domain(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = conf_opt_str(opt);
    if (v != NULL && !conf_domain_ok(v)) {
        cfg_error(cfg, "%s: not a valid domain name", cfg_opt_name(opt));
        return -1;
    }
    return 0;
}

static int conf_check_path(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = conf_opt_str(opt);
    if (v != NULL && conf_has_ctl(v)) {
        cfg_error(cfg, "%s: contains a control character", cfg_opt_name(opt));
        return -1;
    }
    return 0;
}

static int conf_check_lifetime(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = conf_opt_str(opt);
    if (v == NULL || conf_parse_duration(v) <= 0) {
        cfg_error(cfg, "queue_lifetime: expected a positive duration such as 3600, 90m, 12h "
                       "or 5d");
        return -1;
    }
    return 0;
}

static int conf_check_host(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = conf_opt_str(opt);
    const char *why = v != NULL ? conf_host_problem(v) : "host is empty";
    if (why != NULL) {
        cfg_error(cfg, "%s", why);
        return -1;
    }
    return 0;
}

static int conf_check_port(cfg_t *cfg, cfg_opt_t *opt)
{
    long v = conf_opt_int(opt);
    if (v < 1 || v > 65535) {
        cfg_error(cfg, "port: %ld is out of range (1 to 65535)", v);
        return -1;
    }
    return 0;
}

static int conf_check_timeout(cfg_t *cfg, cfg_opt_t *opt)
{
    long v = conf_opt_int(opt);
    if (v < 1 || v > CONF_TIMEOUT_MAX) {
        cfg_error(cfg, "timeout: %ld is out of range (1 to 3600 seconds)", v);
        return -1;
    }
    return 0;
}

static int conf_check_tls(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = conf_opt_str(opt);
    if (v == NULL || conf_tls_value(v) < 0) {
        cfg_error(cfg, "tls: expected \"starttls\", \"tls\" or \"none\"");
        return -1;
    }
    return 0;
}

static int conf_check_auth(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = conf_opt_str(opt);
    if (v == NULL || conf_auth_value(v) < 0) {
        cfg_error(cfg, "auth: expected \"login\", \"plain\", \"any\" or \"none\"");
        return -1;
    }
    return 0;
}

static int conf_check_user(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = conf_opt_str(opt);
    if (v != NULL && conf_has_ctl(v)) {
        cfg_error(cfg, "user: contains a control character");
        return -1;
    }
    return 0;
}

static int conf_check_password(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = conf_opt_str(opt);
    /* Never echo the value. */
    if (v != NULL && (strchr(v, '\r') != NULL || strchr(v, '\n') != NULL)) {
        cfg_error(cfg, "%s: contains a line break", cfg_opt_name(opt));
        return -1;
    }
    return 0;
}

static int conf_check_from(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *v = conf_opt_str(opt);
    const char *why = v != NULL && v[0] != '\0' ? conf_address_problem(v) : NULL;
    if (why != NULL) {
        cfg_error(cfg, "from: %s", why);
        return -1;
    }
    return 0;
}

/* A string option's value, with "" meaning unset. */
static const char *conf_sec_str(cfg_t *sec, const char *name)
{
    const char *v = cfg_getstr(sec, name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* Runs when an account section closes: the rules that span several keys. */
static int conf_check_account(cfg_t *cfg, cfg_opt_t *opt)
{
    unsigned n = cfg_opt_size(opt);
    if (n == 0)
        return 0;
    cfg_t *sec = cfg_opt_getnsec(opt, n - 1);
    const char *title = cfg_title(sec);
    char name[64];
    snprintf(name, sizeof name, "%s", title != NULL ? title : "");
    if (cfg_getstr(sec, "host") == NULL) {
        cfg_error(cfg, "account \"%s\": host is required", name);
        return -1;
    }
    const char *user = conf_sec_str(sec, "user");
    const char *pw = conf_sec_str(sec, "password");
    const char *pwc = conf_sec_str(sec, "password_command");
    const char *auth = cfg_getstr(sec, "auth");
    if (pw != NULL && pwc != NULL) {
        cfg_error(cfg, "account \"%s\": set password or password_command, not both", name);
        return -1;
    }
    if (user != NULL && pw == NULL && pwc == NULL) {
        cfg_error(cfg, "account \"%s\": user is set but neither password nor password_command",
                  name);
        return -1;
    }
    if (user == NULL && (pw != NULL || pwc != NULL)) {
        cfg_error(cfg, "account \"%s\": a password is set but no user", name);
        return -1;
    }
    if (user == NULL && auth != NULL && strcmp(auth, "none") != 0) {
        cfg_error(cfg, "account \"%s\": auth = \"%s\" needs a user", name, auth);
        return -1;
    }
    if (conf_sec_str(sec, "tls_key_file") != NULL && conf_sec_str(sec, "tls_cert_file") == NULL) {
        cfg_error(cfg, "account \"%s\": tls_key_file is set without tls_cert_file", name);
        return -1;
    }
    return 0;
}

/* -------------------------------------------------------------------- schema */

static cfg_opt_t conf_account_opts[] = {
    CFG_STR("host", NULL, CFGF_NODEFAULT),
    CFG_INT("port", 0, CFGF_NODEFAULT),
    CFG_STR("tls", "starttls", CFGF_NONE),
    CFG_STR("tls_ca_file", NULL, CFGF_NODEFAULT),
    CFG_STR("tls_cert_file", NULL, CFGF_NODEFAULT),
    CFG_STR("tls_key_file", NULL, CFGF_NODEFAULT),
    CFG_BOOL("allow_plaintext_auth", cfg_false, CFGF_NONE),
    CFG_STR("auth", NULL, CFGF_NODEFAULT),
    CFG_STR("user", NULL, CFGF_NODEFAULT),
    CFG_STR("password", NULL, CFGF_NODEFAULT),
    CFG_STR("password_command", NULL, CFGF_NODEFAULT),
    CFG_STR("from", NULL, CFGF_NODEFAULT),
    CFG_INT("timeout", 60, CFGF_NONE),
    CFG_END(),
};

static cfg_opt_t conf_opts[] = {
    CFG_STR("hostname", NULL, CFGF_NODEFAULT),
    CFG_STR("qualify_domain", NULL, CFGF_NODEFAULT),
    CFG_STR("aliases", NULL, CFGF_NODEFAULT),
    CFG_STR("queue_dir", NULL, CFGF_NODEFAULT),
    CFG_STR("queue_lifetime", "5d", CFGF_NONE),
    CFG_BOOL("syslog", cfg_true, CFGF_NONE),
    CFG_SEC("account", conf_account_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_END(),
};

static cfg_t *conf_new_cfg(void)
{
    cfg_t *cfg = cfg_init(conf_opts, CFGF_NONE);
    if (cfg == NULL)
        return NULL;
    cfg_set_error_function(cfg, conf_errfunc);
    cfg_set_validate_func(cfg, "hostname", conf_check_domain);
    cfg_set_validate_func(cfg, "qualify_domain", conf_check_domain);
    cfg_set_validate_func(cfg, "aliases", conf_check_path);
    cfg_set_validate_func(cfg, "queue_dir", conf_check_path);
    cfg_set_validate_func(cfg, "queue_lifetime", conf_check_lifetime);
    cfg_set_validate_func(cfg, "account|host", conf_check_host);
    cfg_set_validate_func(cfg, "account|port", conf_check_port);
    cfg_set_validate_func(cfg, "account|tls", conf_check_tls);
    cfg_set_validate_func(cfg, "account|tls_ca_file", conf_check_path);
    cfg_set_validate_func(cfg, "account|tls_cert_file", conf_check_path);
    cfg_set_validate_func(cfg, "account|tls_key_file", conf_check_path);
    cfg_set_validate_func(cfg, "account|auth", conf_check_auth);
    cfg_set_validate_func(cfg, "account|user", conf_check_user);
    cfg_set_validate_func(cfg, "account|password", conf_check_password);
    cfg_set_validate_func(cfg, "account|password_command", conf_check_password);
    cfg_set_validate_func(cfg, "account|from", conf_check_from);
    cfg_set_validate_func(cfg, "account|timeout", conf_check_timeout);
    cfg_set_validate_func(cfg, "account", conf_check_account);
    return cfg;
}

/* ------------------------------------------------------------------ defaults */

/* The machine's fully qualified name, or at least its node name. */
static char *conf_default_hostname(void)
{
    char name[256];
    if (gethostname(name, sizeof name) != 0 || name[0] == '\0')
        return mem_strdup("localhost");
    name[sizeof name - 1] = '\0';
    struct addrinfo hints = {.ai_flags = AI_CANONNAME, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char *out = NULL;
    if (getaddrinfo(name, NULL, &hints, &res) == 0 && res != NULL && res->ai_canonname != NULL &&
        strchr(res->ai_canonname, '.') != NULL && conf_domain_ok(res->ai_canonname))
        out = mem_strdup(res->ai_canonname);
    if (res != NULL)
        freeaddrinfo(res);
    if (out == NULL)
        out = mem_strdup(conf_domain_ok(name) ? name : "localhost");
    return out;
}

static char *conf_dup_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? mem_strdup(s) : NULL;
}

/* Copies the parsed values (already validated) into c, resolving defaults. */
static void conf_fill(cfg_t *cfg, struct conf *c)
{
    const char *v = cfg_getstr(cfg, "hostname");
    c->hostname = v != NULL ? mem_strdup(v) : conf_default_hostname();
    v = cfg_getstr(cfg, "qualify_domain");
    c->qualify_domain = mem_strdup(v != NULL ? v : c->hostname);
    v = cfg_getstr(cfg, "aliases");
    if (v != NULL)
        c->aliases = mem_strdup(v);
    else if (access("/etc/aliases", F_OK) == 0)
        c->aliases = mem_strdup("/etc/aliases");
    v = cfg_getstr(cfg, "queue_dir");
    c->queue_dir = mem_strdup(v != NULL ? v : QUEUEDIR);
    c->queue_lifetime = conf_parse_duration(cfg_getstr(cfg, "queue_lifetime"));
    c->syslog = cfg_getbool(cfg, "syslog") != cfg_false;

    unsigned n = cfg_size(cfg, "account");
    c->naccounts = n;
    c->accounts = n > 0 ? mem_array(n, sizeof *c->accounts) : NULL;
    for (unsigned i = 0; i < n; i++) {
        cfg_t *sec = cfg_getnsec(cfg, "account", i);
        struct conf_account *a = &c->accounts[i];
        a->name = mem_strdup(cfg_title(sec) != NULL ? cfg_title(sec) : "");
        const char *host = cfg_getstr(sec, "host");
        size_t hl = strlen(host);
        if (host[0] == '[' && hl >= 2)
            a->host = mem_strndup(host + 1, hl - 2);
        else
            a->host = mem_strdup(host);
        a->tls = (enum conf_tls)conf_tls_value(cfg_getstr(sec, "tls"));
        if (cfg_size(sec, "port") > 0)
            a->port = (int)cfg_getint(sec, "port");
        else
            a->port = a->tls == CONF_TLS_TLS ? 465 : a->tls == CONF_TLS_NONE ? 25 : 587;
        a->tls_ca_file = conf_dup_or_null(cfg_getstr(sec, "tls_ca_file"));
        a->tls_cert_file = conf_dup_or_null(cfg_getstr(sec, "tls_cert_file"));
        a->tls_key_file = conf_dup_or_null(cfg_getstr(sec, "tls_key_file"));
        a->allow_plaintext_auth = cfg_getbool(sec, "allow_plaintext_auth") != cfg_false;
        a->user = conf_dup_or_null(cfg_getstr(sec, "user"));
        a->password = conf_dup_or_null(cfg_getstr(sec, "password"));
        a->password_command = conf_dup_or_null(cfg_getstr(sec, "password_command"));
        a->from = conf_dup_or_null(cfg_getstr(sec, "from"));
        a->timeout = (int)cfg_getint(sec, "timeout");
        v = cfg_getstr(sec, "auth");
        if (v != NULL)
            a->auth = (enum conf_auth)conf_auth_value(v);
        else
            a->auth = a->user != NULL ? CONF_AUTH_ANY : CONF_AUTH_NONE;
    }
}

/* Overwrites the secrets libConfuse holds before it frees them. */
static void conf_free_cfg(cfg_t *cfg)
{
    unsigned n = cfg_size(cfg, "account");
    for (unsigned i = 0; i < n; i++) {
        cfg_t *sec = cfg_getnsec(cfg, "account", i);
        if (sec == NULL)
            continue;
        static const char *const keys[] = {"password", "password_command"};
        for (size_t k = 0; k < 2; k++) {
            char *v = cfg_getstr(sec, keys[k]);
            if (v != NULL)
                mem_wipe(v, strlen(v));
        }
    }
    cfg_free(cfg);
}

/* ------------------------------------------------------------------- parsing */

/* What a light scan of the text finds before libConfuse parses it. */
struct conf_scan {
    int expansion_line; /* first "${" that libConfuse would expand, or 0 */
    int depth;          /* braces still open at the end */
    int open_line;      /* line of the outermost brace still open */
};

/*
 * Scans the text as libConfuse's lexer does (comments, double- and
 * single-quoted strings): libConfuse 3.3 silently accepts a file that ends
 * inside a section, and expands ${VAR} outside single quotes.  For ${ the
 * scan errs on the safe side: only "#" comments and single-quoted strings
 * are exempt ("//" and "/ *" start a comment only at the start of a token).
 */
static void conf_scan_text(const char *s, struct conf_scan *sc)
{
    enum { NORMAL, DQ, SQ, HASH_COMMENT, SLASH_COMMENT, BLOCK_COMMENT } st = NORMAL;
    int line = 1;
    memset(sc, 0, sizeof *sc);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '\n') {
            line++;
            if (st == HASH_COMMENT || st == SLASH_COMMENT)
                st = NORMAL;
            continue;
        }
        bool dollar = p[0] == '$' && p[1] == '{';
        bool expansion = false;
        switch (st) {
        case NORMAL:
            if (*p == '#') {
                st = HASH_COMMENT;
            } else if (p[0] == '/' && p[1] == '/') {
                st = SLASH_COMMENT;
            } else if (p[0] == '/' && p[1] == '*') {
                st = BLOCK_COMMENT;
                p++;
            } else if (*p == '"') {
                st = DQ;
            } else if (*p == '\'') {
                st = SQ;
            } else if (*p == '{') {
                if (sc->depth++ == 0)
                    sc->open_line = line;
            } else if (*p == '}') {
                if (sc->depth > 0)
                    sc->depth--;
            } else if (dollar) {
                expansion = true;
                p++;
            }
            break;
        case DQ:
            if (*p == '\\' && p[1] != '\0' && p[1] != '\n')
                p++;
            else if (*p == '"')
                st = NORMAL;
            else
                expansion = dollar;
            break;
        case SQ:
            if (*p == '\\' && p[1] != '\0' && p[1] != '\n')
                p++;
            else if (*p == '\'')
                st = NORMAL;
            break;
        case BLOCK_COMMENT:
            if (p[0] == '*' && p[1] == '/') {
                st = NORMAL;
                p++;
            } else {
                expansion = dollar;
            }
            break;
        case SLASH_COMMENT:
            expansion = dollar;
            break;
        case HASH_COMMENT:
            break;
        }
        if (expansion && sc->expansion_line == 0)
            sc->expansion_line = line;
    }
}

/* Parses the text of a configuration file (NUL-terminated, len bytes). */
static enum outcome conf_parse_text(const char *name, const char *text, size_t len, bool hide,
                                    struct conf *c, struct result *r)
{
    memset(c, 0, sizeof *c);
    const char *nul = memchr(text, '\0', len);
    if (nul != NULL) {
        int line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        return result_set(r, OUTCOME_CONFIG, "%s:%d: the file contains a NUL byte", name, line);
    }
    struct conf_scan sc;
    conf_scan_text(text, &sc);
    if (sc.expansion_line > 0 && privs_elevated())
        return result_set(r, OUTCOME_CONFIG,
                          "%s:%d: ${...} environment expansion is not allowed while postie runs "
                          "with the setgid group",
                          name, sc.expansion_line);
    cfg_t *cfg = conf_new_cfg();
    if (cfg == NULL)
        return result_set(r, OUTCOME_OSERR, "%s: cannot set up the configuration parser", name);
    struct conf_ctx ctx = {.name = name, .text = text, .r = r, .hide = hide};
    conf_cur = &ctx;
    int rc = cfg_parse_buf(cfg, text);
    conf_cur = NULL;
    if (rc != CFG_SUCCESS) {
        conf_free_cfg(cfg);
        if (!ctx.failed)
            result_set(r, OUTCOME_CONFIG, "%s: cannot parse the configuration", name);
        return OUTCOME_CONFIG;
    }
    if (sc.depth > 0) {
        conf_free_cfg(cfg);
        return result_set(r, OUTCOME_CONFIG,
                          "%s:%d: premature end of file: the section opened here is not closed",
                          name, sc.open_line);
    }
    conf_fill(cfg, c);
    conf_free_cfg(cfg);
    c->path = mem_strdup(name);
    return OUTCOME_OK;
}

/*
 * Reads all of fp, or of the descriptor fd when fp is NULL, into a
 * NUL-terminated buffer: at most CONF_FILE_MAX bytes, the buffer starting at
 * cap bytes (for a regular file: its size + 1, so that the read that sees
 * the end needs no second buffer).
 */
static enum outcome conf_read_all(const char *name, FILE *fp, int fd, size_t cap, char **out,
                                  size_t *len, struct result *r)
{
    if (cap == 0 || cap > CONF_FILE_MAX)
        cap = cap == 0 ? 4096 : CONF_FILE_MAX;
    size_t n = 0;
    char *buf = mem_resize(NULL, cap + 1, 1);
    for (;;) {
        if (n == cap) {
            if (cap >= CONF_FILE_MAX) {
                free(buf);
                return result_set(r, OUTCOME_CONFIG, "%s: larger than 1 MiB", name);
            }
            cap = cap * 2 < CONF_FILE_MAX ? cap * 2 : CONF_FILE_MAX;
            buf = mem_resize(buf, cap + 1, 1);
        }
        ssize_t got;
        if (fp != NULL) {
            size_t g = fread(buf + n, 1, cap - n, fp);
            got = g > 0 ? (ssize_t)g : ferror(fp) ? -1 : 0;
        } else {
            got = read(fd, buf + n, cap - n);
            if (got < 0 && errno == EINTR)
                continue;
        }
        if (got < 0) {
            int e = errno;
            free(buf);
            return result_set(r, OUTCOME_CONFIG, "cannot read %s: %s", name, strerror(e));
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return OUTCOME_OK;
}

enum outcome conf_parse_file(const char *name, FILE *fp, struct conf *c, struct result *r)
{
    memset(c, 0, sizeof *c);
    result_clear(r);
    char *text = NULL;
    size_t len = 0;
    if (conf_read_all(name, fp, -1, 0, &text, &len, r) != OUTCOME_OK)
        return OUTCOME_CONFIG;
    enum outcome rc = conf_parse_text(name, text, len, false, c, r);
    mem_wipe(text, len);
    free(text);
    return rc;
}

static bool conf_holds_secret(const struct conf *c)
{
    for (size_t i = 0; i < c->naccounts; i++)
        if (c->accounts[i].password != NULL || c->accounts[i].password_command != NULL)
            return true;
    return false;
}

/* The configuration defaults, as for an empty file. */
static enum outcome conf_defaults(struct conf *c, struct result *r)
{
    enum outcome rc = conf_parse_text("(defaults)", "", 0, false, c, r);
    free(c->path);
    c->path = NULL;
    return rc;
}

/* The user's file: $HOME when not privileged, else nothing. */
static char *conf_user_path(void)
{
    if (privs_elevated())
        return NULL; /* $HOME is the caller's: never used with the group */
    const char *home = getenv("HOME");
    if (home == NULL || home[0] != '/') {
        struct passwd *pw = getpwuid(getuid());
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL || home[0] != '/')
        return NULL;
    return mem_printf("%s/.config/postie/postie.conf", home);
}

enum conf_origin { CONF_EXPLICIT, CONF_USER, CONF_SYSTEM };

/*
 * Opens, checks and parses one file.  *absent is set (and OUTCOME_OK
 * returned) when the file does not exist and that is not an error.
 */
static enum outcome conf_load_path(const char *path, enum conf_origin origin, bool *absent,
                                   struct conf *c, struct result *r)
{
    *absent = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if ((e == ENOENT || e == ENOTDIR) && origin != CONF_EXPLICIT) {
            *absent = true;
            return OUTCOME_OK;
        }
        return result_set(r, OUTCOME_CONFIG, "cannot read %s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return result_set(r, OUTCOME_CONFIG, "cannot read %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return result_set(r, OUTCOME_CONFIG, "%s is not a regular file", path);
    }
    uid_t uid = getuid();
    if ((origin == CONF_USER || (origin == CONF_EXPLICIT && uid != 0)) && st.st_uid != uid &&
        st.st_uid != 0) {
        close(fd);
        return result_set(r, OUTCOME_CONFIG,
                          "%s is owned by uid %lu, not by you (uid %lu) or root: refusing it", path,
                          (unsigned long)st.st_uid, (unsigned long)uid);
    }
    if (st.st_mode & S_IWOTH) {
        close(fd);
        return result_set(r, OUTCOME_CONFIG,
                          "%s is writable by other users: refusing it (chmod o-w %s)", path, path);
    }
    /* A file the real user could not read (setgid install): no content in messages. */
    bool hide = privs_elevated() && access(path, R_OK) != 0;
    char *text = NULL;
    size_t len = 0;
    /* O_NONBLOCK (so that opening a FIFO could not hang) means nothing for
     * the regular file this is. */
    enum outcome rc = conf_read_all(path, NULL, fd, (size_t)st.st_size + 1, &text, &len, r);
    close(fd);
    if (rc != OUTCOME_OK)
        return rc;
    rc = conf_parse_text(path, text, len, hide, c, r);
    mem_wipe(text, len);
    free(text);
    if (rc != OUTCOME_OK)
        return rc;
    if (conf_holds_secret(c) && (st.st_mode & (S_IROTH | S_IWOTH))) {
        conf_free(c);
        return result_set(r, OUTCOME_CONFIG,
                          "%s holds a password or password_command and is readable by other "
                          "users: refusing it (chmod o-rwx %s)",
                          path, path);
    }
    return OUTCOME_OK;
}

enum outcome conf_load(const char *explicit_path, struct conf *c, struct result *r)
{
    memset(c, 0, sizeof *c);
    result_clear(r);
    bool absent;
    if (explicit_path != NULL) {
        if (privs_elevated())
            return result_set(r, OUTCOME_CONFIG,
                              "refusing to read %s with the setgid group (drop it first)",
                              explicit_path);
        return conf_load_path(explicit_path, CONF_EXPLICIT, &absent, c, r);
    }
    char *user = conf_user_path();
    if (user != NULL) {
        enum outcome rc = conf_load_path(user, CONF_USER, &absent, c, r);
        free(user);
        if (rc != OUTCOME_OK || !absent)
            return rc;
    }
    enum outcome rc = conf_load_path(SYSCONFDIR "/postie.conf", CONF_SYSTEM, &absent, c, r);
    if (rc != OUTCOME_OK || !absent)
        return rc;
    return conf_defaults(c, r);
}

/* ------------------------------------------------------------------ accounts */

const struct conf_account *conf_account_for(const struct conf *c, const char *sender)
{
    if (c == NULL || c->naccounts == 0)
        return NULL;
    if (sender != NULL && sender[0] != '\0')
        for (size_t i = 0; i < c->naccounts; i++)
            if (c->accounts[i].from != NULL && strcasecmp(c->accounts[i].from, sender) == 0)
                return &c->accounts[i];
    for (size_t i = 0; i < c->naccounts; i++)
        if (strcmp(c->accounts[i].name, "default") == 0)
            return &c->accounts[i];
    return &c->accounts[0];
}

static long conf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Kills the command's process group and reaps it. */
static void conf_kill_child(pid_t pid)
{
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static void conf_run_child(const char *cmd, int out_fd)
{
    setpgid(0, 0);
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(out_fd, STDOUT_FILENO) < 0)
        _exit(127);
    /* Nothing postie holds open (queue locks, spool files) goes to the command. */
    for (int fd = STDERR_FILENO + 1; fd < 1024; fd++)
        close(fd);
    signal(SIGPIPE, SIG_DFL);
    /* -p: a setgid postie keeps its group, so the command can read a secret
     * only the group may read (the environment is already sanitized then). */
    execl("/bin/sh", "sh", "-p", "-c", cmd, (char *)NULL);
    _exit(127);
}

/* Runs password_command; the first line of its output goes to *out. */
static enum outcome conf_run_password_command(const struct conf_account *a, char **out,
                                              struct result *r)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return result_set(r, OUTCOME_OSERR, "account \"%s\": password_command: pipe: %s", a->name,
                          strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pfd[0]);
        close(pfd[1]);
        return result_set(r, OUTCOME_OSERR, "account \"%s\": password_command: fork: %s", a->name,
                          strerror(e));
    }
    if (pid == 0) {
        close(pfd[0]);
        conf_run_child(a->password_command, pfd[1]);
    }
    setpgid(pid, pid);
    close(pfd[1]);

    long deadline = conf_now_ms() + (long)(a->timeout > 0 ? a->timeout : 60) * 1000;
    char *buf = mem_alloc(CONF_SECRET_MAX + 1);
    size_t n = 0;
    bool timed_out = false;
    bool reaped = false;
    int status = 0;
    /*
     * Read until EOF, or until the command has exited and its output is
     * drained: a daemon it started (gpg-agent) may keep the pipe open.
     */
    for (;;) {
        long left = deadline - conf_now_ms();
        if (left <= 0) {
            timed_out = !reaped;
            break;
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int pr = poll(&p, 1, reaped ? 0 : left < 50 ? (int)left : 50);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            if (reaped)
                break;
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid)
                reaped = true;
            continue;
        }
        char chunk[512];
        ssize_t got = read(pfd[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size_t take = (size_t)got;
        if (take > CONF_SECRET_MAX - n)
            take = CONF_SECRET_MAX - n;
        memcpy(buf + n, chunk, take);
        n += take;
        mem_wipe(chunk, sizeof chunk);
    }
    close(pfd[0]);

    while (!timed_out && !reaped) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            status = 0;
            break;
        }
        long left = deadline - conf_now_ms();
        if (left <= 0) {
            timed_out = true;
            break;
        }
        poll(NULL, 0, left < 10 ? (int)left : 10);
    }
    if (timed_out) {
        conf_kill_child(pid);
        mem_wipe(buf, n);
        free(buf);
        return result_set(r, OUTCOME_CONFIG,
                          "account \"%s\": password_command timed out after %d s and was killed",
                          a->name, a->timeout);
    }
    buf[n] = '\0';
    if (WIFSIGNALED(status)) {
        mem_wipe(buf, n);
        free(buf);
        return result_set(r, OUTCOME_CONFIG, "account \"%s\": password_command killed by signal %d",
                          a->name, WTERMSIG(status));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        mem_wipe(buf, n);
        free(buf);
        return result_set(r, OUTCOME_CONFIG,
                          "account \"%s\": password_command failed with exit status %d", a->name,
                          WEXITSTATUS(status));
    }
    size_t line = strcspn(buf, "\n");
    while (line > 0 && buf[line - 1] == '\r')
        line--;
    if (line == 0 || memchr(buf, '\0', line) != NULL) {
        mem_wipe(buf, n);
        free(buf);
        return result_set(r, OUTCOME_CONFIG,
                          "account \"%s\": password_command printed no password on its first "
                          "line",
                          a->name);
    }
    *out = mem_strndup(buf, line);
    mem_wipe(buf, n);
    free(buf);
    return OUTCOME_OK;
}

enum outcome conf_password(const struct conf_account *a, char **out, struct result *r)
{
    *out = NULL;
    result_clear(r);
    if (a == NULL)
        return OUTCOME_OK;
    if (a->password != NULL) {
        *out = mem_strdup(a->password);
        return OUTCOME_OK;
    }
    if (a->password_command != NULL)
        return conf_run_password_command(a, out, r);
    return OUTCOME_OK;
}

void conf_free(struct conf *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->naccounts; i++) {
        struct conf_account *a = &c->accounts[i];
        free(a->name);
        free(a->host);
        free(a->tls_ca_file);
        free(a->tls_cert_file);
        free(a->tls_key_file);
        free(a->user);
        mem_free_secret(a->password);
        mem_free_secret(a->password_command);
        free(a->from);
    }
    free(c->accounts);
    free(c->path);
    free(c->hostname);
    free(c->qualify_domain);
    free(c->aliases);
    free(c->queue_dir);
    memset(c, 0, sizeof *c);
}
