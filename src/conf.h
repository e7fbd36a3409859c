/*
 * conf.h - the configuration file, read with libConfuse (DESIGN section 3;
 * every key is documented in doc/postie.conf.5).
 *
 * Lookup: the explicit path (-C), else ~/.config/postie/postie.conf when it
 * exists and the process is not privileged, else SYSCONFDIR/postie.conf.
 * Errors are "file:line: message" with OUTCOME_CONFIG; libConfuse's own
 * messages are routed into the result (never printed), with quoted tokens
 * that could be values (passwords) replaced by "(hidden)", and with no
 * details at all when the real user cannot read the file.  Refused: a file
 * that is not regular or larger than 1 MiB, a file "other" can write, a file
 * holding a password or password_command that "other" can read or write, a
 * user file (~/.config, or -C by a non-root caller) owned by neither the
 * caller nor root, and, while privileged, -C and any ${VAR} expansion.
 *
 * All strings in struct conf are owned by it and released by conf_free().
 */
#ifndef POSTIE_CONF_H
#define POSTIE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "result.h"

enum conf_tls {
    CONF_TLS_STARTTLS = 0, /* STARTTLS, required, never falls back */
    CONF_TLS_TLS,          /* implicit TLS on connect (port 465) */
    CONF_TLS_NONE,         /* plaintext */
};

enum conf_auth {
    CONF_AUTH_ANY = 0, /* LOGIN or PLAIN, whichever the server offers first */
    CONF_AUTH_LOGIN,
    CONF_AUTH_PLAIN,
    CONF_AUTH_NONE,
};

struct conf_account {
    char *name; /* section title */
    char *host; /* name, IPv4 or IPv6 literal (no brackets) */
    int port;   /* resolved default: 587 starttls, 465 tls, 25 none */
    enum conf_tls tls;
    char *tls_ca_file;   /* NULL: system store */
    char *tls_cert_file; /* NULL: no client certificate */
    char *tls_key_file;  /* NULL: key is in tls_cert_file */
    bool allow_plaintext_auth;
    enum conf_auth auth;    /* resolved: any when user is set, none otherwise */
    char *user;             /* NULL: no AUTH */
    char *password;         /* NULL when unset */
    char *password_command; /* NULL when unset */
    char *from;             /* default envelope sender; NULL unset */
    int timeout;            /* seconds: connect and each wait */
};

struct conf {
    char *path;           /* the file read, NULL when none exists */
    char *hostname;       /* EHLO name and Message-ID domain; default FQDN */
    char *qualify_domain; /* default: hostname */
    char *aliases;        /* NULL or "" = none */
    char *queue_dir;      /* NULL or "" = no queue */
    long queue_lifetime;  /* seconds, default 5 days */
    bool syslog;
    struct conf_account *accounts;
    size_t naccounts;
};

/*
 * Loads the configuration.  explicit_path is -C or NULL.  When no file exists
 * at all (and none was named) the defaults are used and c->path is NULL; a
 * missing -C file is OUTCOME_CONFIG.
 */
enum outcome conf_load(const char *explicit_path, struct conf *c, struct result *r);

/*
 * Parses the configuration from an open stream (tests); name is used in
 * messages.  Permission checks are done by conf_load(), not here.
 */
enum outcome conf_parse_file(const char *name, FILE *fp, struct conf *c, struct result *r);

/* The account for envelope sender (may be NULL or ""): the one whose from
 * matches (case-insensitively), else "default", else the first; NULL if none. */
const struct conf_account *conf_account_for(const struct conf *c, const char *sender);

/*
 * The account's password: the password key, or the first line of
 * password_command's output (run with /bin/sh -c, the account timeout, no
 * stdin).  *out is NULL when the account has neither.  Free it with
 * mem_free_secret().
 */
enum outcome conf_password(const struct conf_account *a, char **out, struct result *r);

/* Parses "30", "30s", "15m", "2h", "5d" into seconds; -1 when invalid. */
long conf_parse_duration(const char *s);

void conf_free(struct conf *c);

#endif
