/*
 * test_conf.c - the configuration: every key and default, every validation
 * error (with file and line), the lookup order, the permission rules,
 * account selection and password_command.
 */
#include "testlib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "mem.h"

static char tmpdir[] = "/tmp/postie-test-conf.XXXXXX";

/* Parses text as file "test.conf" through conf_parse_file(). */
static enum outcome parse(const char *text, struct conf *c, struct result *r)
{
    FILE *fp = tmpfile();
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    rewind(fp);
    enum outcome o = conf_parse_file("test.conf", fp, c, r);
    fclose(fp);
    return o;
}

static void parse_ok(const char *text, struct conf *c)
{
    struct result r;
    if (parse(text, c, &r) != OUTCOME_OK)
        fail_msg("unexpected error: %s", r.text);
}

/* The parse fails with EX_CONFIG and the message starts with prefix and contains want. */
static void expect_error(const char *text, const char *prefix, const char *want)
{
    struct conf c;
    struct result r;
    assert_int_equal(parse(text, &c, &r), OUTCOME_CONFIG);
    assert_int_equal(r.outcome, OUTCOME_CONFIG);
    if (strncmp(r.text, prefix, strlen(prefix)) != 0)
        fail_msg("message \"%s\" does not start with \"%s\"", r.text, prefix);
    if (strstr(r.text, want) == NULL)
        fail_msg("message \"%s\" does not contain \"%s\"", r.text, want);
    assert_null(strchr(r.text, '\n'));
    assert_int_equal(c.naccounts, 0);
    assert_null(c.accounts);
}

/* Writes text to dir/name with mode; returns the path (free it). */
static char *write_file(const char *name, const char *text, mode_t mode)
{
    char *path = mem_printf("%s/%s", tmpdir, name);
    unlink(path);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static const char *const ACCOUNT_OK = "account \"default\" {\n"
                                      "  host = \"smtp.example.com\"\n"
                                      "  user = \"alice\"\n"
                                      "  password = \"s3cret-pw\"\n"
                                      "}\n";

/* ------------------------------------------------------------------ defaults */

static void test_defaults(void **state)
{
    (void)state;
    struct conf c;
    parse_ok("", &c);
    assert_string_equal(c.path, "test.conf");
    assert_non_null(c.hostname);
    assert_true(strlen(c.hostname) > 0);
    assert_null(strpbrk(c.hostname, " \t\r\n"));
    assert_string_equal(c.qualify_domain, c.hostname);
    if (access("/etc/aliases", F_OK) == 0)
        assert_string_equal(c.aliases, "/etc/aliases");
    else
        assert_null(c.aliases);
    assert_string_equal(c.queue_dir, QUEUEDIR);
    assert_int_equal(c.queue_lifetime, 5 * 86400);
    assert_true(c.syslog);
    assert_int_equal(c.naccounts, 0);
    assert_null(conf_account_for(&c, NULL));
    conf_free(&c);
    assert_null(c.hostname);
}

static void test_globals(void **state)
{
    (void)state;
    struct conf c;
    parse_ok("# comment\n"
             "hostname = \"box.example\"\n"
             "qualify_domain = example.org // another comment\n"
             "aliases = \"\"\n"
             "queue_dir = \"/srv/q\"\n"
             "/* a block\n comment */\n"
             "queue_lifetime = \"12h\"\n"
             "syslog = false\n",
             &c);
    assert_string_equal(c.hostname, "box.example");
    assert_string_equal(c.qualify_domain, "example.org");
    assert_string_equal(c.aliases, "");
    assert_string_equal(c.queue_dir, "/srv/q");
    assert_int_equal(c.queue_lifetime, 12 * 3600);
    assert_false(c.syslog);
    conf_free(&c);

    parse_ok("hostname = box.example\nqueue_dir = \"\"\naliases = /etc/mail/aliases\n"
             "syslog = yes\nqueue_lifetime = 3600\n",
             &c);
    assert_string_equal(c.qualify_domain, "box.example");
    assert_string_equal(c.queue_dir, "");
    assert_string_equal(c.aliases, "/etc/mail/aliases");
    assert_true(c.syslog);
    assert_int_equal(c.queue_lifetime, 3600);
    conf_free(&c);
}

static void test_account_defaults(void **state)
{
    (void)state;
    struct conf c;
    parse_ok("account \"a\" { host = \"smtp.example.com\" }\n"
             "account \"b\" { host = \"mx.example.com\"\n tls = \"tls\" }\n"
             "account \"c\" { host = \"10.0.0.1\"\n tls = \"none\" }\n"
             "account \"d\" { host = \"smtp.example.com\"\n user = \"u\"\n password = \"p\" }\n",
             &c);
    assert_int_equal(c.naccounts, 4);
    const struct conf_account *a = &c.accounts[0];
    assert_string_equal(a->name, "a");
    assert_string_equal(a->host, "smtp.example.com");
    assert_int_equal(a->tls, CONF_TLS_STARTTLS);
    assert_int_equal(a->port, 587);
    assert_int_equal(a->auth, CONF_AUTH_NONE);
    assert_null(a->user);
    assert_null(a->password);
    assert_null(a->password_command);
    assert_null(a->from);
    assert_null(a->tls_ca_file);
    assert_null(a->tls_cert_file);
    assert_null(a->tls_key_file);
    assert_false(a->allow_plaintext_auth);
    assert_int_equal(a->timeout, 60);
    assert_int_equal(c.accounts[1].tls, CONF_TLS_TLS);
    assert_int_equal(c.accounts[1].port, 465);
    assert_int_equal(c.accounts[2].tls, CONF_TLS_NONE);
    assert_int_equal(c.accounts[2].port, 25);
    assert_int_equal(c.accounts[3].auth, CONF_AUTH_ANY);
    assert_string_equal(c.accounts[3].user, "u");
    assert_string_equal(c.accounts[3].password, "p");
    conf_free(&c);
}

static void test_account_full(void **state)
{
    (void)state;
    struct conf c;
    parse_ok("account \"work\" {\n"
             "  host = \"smtp.office365.com\"\n"
             "  port = 2525\n"
             "  tls = \"tls\"\n"
             "  tls_ca_file = \"/etc/ssl/ca.pem\"\n"
             "  tls_cert_file = \"/etc/ssl/client.pem\"\n"
             "  tls_key_file = \"/etc/ssl/client.key\"\n"
             "  allow_plaintext_auth = true\n"
             "  auth = \"plain\"\n"
             "  user = \"alice@example.com\"\n"
             "  password_command = \"pass show smtp/alice\"\n"
             "  from = \"alice@example.com\"\n"
             "  timeout = 3600\n"
             "}\n",
             &c);
    assert_int_equal(c.naccounts, 1);
    const struct conf_account *a = &c.accounts[0];
    assert_string_equal(a->name, "work");
    assert_int_equal(a->port, 2525);
    assert_int_equal(a->tls, CONF_TLS_TLS);
    assert_string_equal(a->tls_ca_file, "/etc/ssl/ca.pem");
    assert_string_equal(a->tls_cert_file, "/etc/ssl/client.pem");
    assert_string_equal(a->tls_key_file, "/etc/ssl/client.key");
    assert_true(a->allow_plaintext_auth);
    assert_int_equal(a->auth, CONF_AUTH_PLAIN);
    assert_string_equal(a->user, "alice@example.com");
    assert_null(a->password);
    assert_string_equal(a->password_command, "pass show smtp/alice");
    assert_string_equal(a->from, "alice@example.com");
    assert_int_equal(a->timeout, 3600);
    conf_free(&c);

    static const struct {
        const char *text;
        enum conf_auth auth;
    } auths[] = {{"login", CONF_AUTH_LOGIN},
                 {"plain", CONF_AUTH_PLAIN},
                 {"any", CONF_AUTH_ANY},
                 {"none", CONF_AUTH_NONE}};
    for (size_t i = 0; i < sizeof auths / sizeof auths[0]; i++) {
        char *text = mem_printf("account \"x\" {\n host = h.example\n user = u\n password = p\n"
                                " auth = \"%s\"\n}\n",
                                auths[i].text);
        parse_ok(text, &c);
        assert_int_equal(c.accounts[0].auth, auths[i].auth);
        conf_free(&c);
        free(text);
    }
    /* empty strings mean unset */
    parse_ok("account \"x\" {\n host = h.example\n tls_ca_file = \"\"\n from = \"\"\n"
             " user = \"\"\n}\n",
             &c);
    assert_null(c.accounts[0].tls_ca_file);
    assert_null(c.accounts[0].from);
    assert_null(c.accounts[0].user);
    assert_int_equal(c.accounts[0].auth, CONF_AUTH_NONE);
    conf_free(&c);
}

static void test_hosts(void **state)
{
    (void)state;
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"smtp.example.com", "smtp.example.com"},
        {"127.0.0.1", "127.0.0.1"},
        {"::1", "::1"},
        {"[::1]", "::1"},
        {"[2001:db8::25]", "2001:db8::25"},
        {"2001:db8::25", "2001:db8::25"},
        {"localhost", "localhost"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *text = mem_printf("account \"x\" {\n host = \"%s\"\n}\n", ok[i].in);
        struct conf c;
        parse_ok(text, &c);
        assert_string_equal(c.accounts[0].host, ok[i].out);
        conf_free(&c);
        free(text);
    }
    expect_error("account \"x\" {\n host = \"smtp.example.com:587\"\n}\n", "test.conf:2:", "port");
    expect_error("account \"x\" {\n host = \"[smtp.example.com]\"\n}\n", "test.conf:2:", "IPv6");
    expect_error("account \"x\" {\n host = \"[::1\"\n}\n", "test.conf:2:", "IPv6");
    expect_error("account \"x\" {\n host = \"[]\"\n}\n", "test.conf:2:", "host");
    expect_error("account \"x\" {\n host = \"\"\n}\n", "test.conf:2:", "host is empty");
    expect_error("account \"x\" {\n host = \"smtp example\"\n}\n",
                 "test.conf:2:", "not a valid host name");
    expect_error("account \"x\" {\n host = \"a/b\"\n}\n", "test.conf:2:", "host");
}

/* ------------------------------------------------------------------- errors */

static void test_value_errors(void **state)
{
    (void)state;
    expect_error("\naccount \"x\" {\n host = h.example\n tls = \"ssl\"\n}\n",
                 "test.conf:4:", "tls: expected \"starttls\", \"tls\" or \"none\"");
    expect_error("account \"x\" {\n host = h.example\n tls = \"STARTTLS\"\n}\n",
                 "test.conf:3:", "tls");
    expect_error("account \"x\" {\n host = h.example\n user = u\n password = p\n"
                 " auth = \"cram-md5\"\n}\n",
                 "test.conf:5:", "auth: expected");
    expect_error("account \"x\" {\n host = h.example\n port = 0\n}\n",
                 "test.conf:3:", "port: 0 is out of range (1 to 65535)");
    expect_error("account \"x\" {\n host = h.example\n port = 65536\n}\n",
                 "test.conf:3:", "out of range");
    expect_error("account \"x\" {\n host = h.example\n port = -25\n}\n",
                 "test.conf:3:", "out of range");
    expect_error("account \"x\" {\n host = h.example\n port = \"\"\n}\n",
                 "test.conf:3:", "out of range");
    expect_error("account \"x\" {\n host = h.example\n port = smtp\n}\n", "test.conf:3:", "port");
    expect_error("account \"x\" {\n host = h.example\n timeout = 0\n}\n",
                 "test.conf:3:", "timeout: 0 is out of range (1 to 3600 seconds)");
    expect_error("account \"x\" {\n host = h.example\n timeout = 3601\n}\n",
                 "test.conf:3:", "timeout");
    expect_error("queue_lifetime = \"5x\"\n", "test.conf:1:", "queue_lifetime");
    expect_error("\n\nqueue_lifetime = \"\"\n", "test.conf:3:", "queue_lifetime");
    expect_error("queue_lifetime = \"0\"\n", "test.conf:1:", "queue_lifetime");
    expect_error("queue_lifetime = \"-1d\"\n", "test.conf:1:", "queue_lifetime");
    expect_error("queue_lifetime = \"5 d\"\n", "test.conf:1:", "queue_lifetime");
    expect_error("syslog = 1\n", "test.conf:1:", "syslog");
    expect_error("hostname = \"bad host\"\n", "test.conf:1:", "hostname: not a valid domain name");
    expect_error("qualify_domain = \"-x\"\n", "test.conf:1:", "qualify_domain");
    expect_error("account \"x\" {\n host = h.example\n from = \"<a@example.com>\"\n}\n",
                 "test.conf:3:", "from:");
    expect_error("account \"x\" {\n host = h.example\n from = \"a b@example.com\"\n}\n",
                 "test.conf:3:", "from:");
    expect_error("queue_dir = \"/a\\nb\"\n", "test.conf:1:", "control character");
    expect_error("hostname = {a, b}\n", "test.conf:1:", "unexpected token");
}

static void test_account_rules(void **state)
{
    (void)state;
    expect_error("account \"x\" {\n port = 25\n}\n",
                 "test.conf:3:", "account \"x\": host is required");
    expect_error("account \"x\" {\n host = h.example\n user = u\n}\n",
                 "test.conf:4:", "user is set but neither password nor password_command");
    expect_error("account \"x\" {\n host = h.example\n user = u\n password = p\n"
                 " password_command = \"echo p\"\n}\n",
                 "test.conf:6:", "not both");
    expect_error("account \"x\" {\n host = h.example\n password = p\n}\n",
                 "test.conf:4:", "no user");
    expect_error("account \"x\" {\n host = h.example\n auth = login\n}\n",
                 "test.conf:4:", "auth = \"login\" needs a user");
    expect_error("account \"x\" {\n host = h.example\n tls_key_file = /k.pem\n}\n",
                 "test.conf:4:", "tls_key_file is set without tls_cert_file");
    /* auth = none without a user is fine */
    struct conf c;
    parse_ok("account \"x\" {\n host = h.example\n auth = none\n}\n", &c);
    assert_int_equal(c.accounts[0].auth, CONF_AUTH_NONE);
    conf_free(&c);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("hostname = \"a.example\"\n\nhostnam = \"x\"\n",
                 "test.conf:3:", "no such option 'hostnam'");
    expect_error("account \"x\" {\n host = h.example\n passwd = p\n}\n",
                 "test.conf:3:", "no such option 'passwd'");
    expect_error("account \"x\" {\n host = h.example\n}\naccount \"x\" {\n host = i.example\n}\n",
                 "test.conf:4:", "duplicate title 'x'");
    expect_error("account {\n host = h.example\n}\n", "test.conf:1:", "missing title");
    expect_error("account \"x\" {\n host = h.example\n", "test.conf:1:", "premature end of file");
    expect_error("account \"x\" {\n host = \"h.example\n}\n", "test.conf:", "");
    expect_error("include(\"/etc/passwd\")\n", "test.conf:1:", "no such option 'include'");
    expect_error("HOSTNAME = \"a.example\"\n", "test.conf:1:", "no such option");
    expect_error("account \"x\" {\n host = h.example\n}\n}\n", "test.conf:", "");
}

/* Values never appear in error messages: they may be passwords. */
static void test_errors_hide_values(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "account \"x\" {\n host = \"h\"\n password = \"hunter2x\" \"hunter2x\"\n}\n",
        "account \"x\" {\n host = \"h\"\n password = hunter2x hunter2x\n}\n",
        "account \"x\" {\n host = \"h\"\n password = \"hunter2x\",\n user = hunter2x\n}\n",
        "account \"x\" {\n host = \"h\"\n password = \"hunter2x\n passwd = hunter2x\n",
        "account \"x\" {\n host = \"h\"\n user = u\n password = \"hunter2x\" }\n junk hunter2x\n",
        "account \"x\" {\n host = \"h\"\n user = u\n password = \"a\\nhunter2x\"\n}\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct conf c;
        struct result r;
        assert_int_equal(parse(bodies[i], &c, &r), OUTCOME_CONFIG);
        assert_true(strncmp(r.text, "test.conf:", 10) == 0);
        if (strstr(r.text, "hunter2x") != NULL)
            fail_msg("body %zu: message \"%s\" shows the password", i, r.text);
    }
}

static void test_nul_byte(void **state)
{
    (void)state;
    FILE *fp = tmpfile();
    fwrite("hostname = a.example\n\nx\0y\n", 1, 26, fp);
    rewind(fp);
    struct conf c;
    struct result r;
    assert_int_equal(conf_parse_file("nul.conf", fp, &c, &r), OUTCOME_CONFIG);
    assert_string_equal(r.text, "nul.conf:3: the file contains a NUL byte");
    fclose(fp);
}

static void test_too_large(void **state)
{
    (void)state;
    FILE *fp = tmpfile();
    char line[1024];
    memset(line, ' ', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    for (int i = 0; i < 1100; i++)
        fwrite(line, 1, sizeof line, fp);
    rewind(fp);
    struct conf c;
    struct result r;
    assert_int_equal(conf_parse_file("big.conf", fp, &c, &r), OUTCOME_CONFIG);
    assert_non_null(strstr(r.text, "larger than 1 MiB"));
    fclose(fp);
}

/* Unprivileged, ${VAR} expands as libConfuse documents it. */
static void test_env_expansion_unprivileged(void **state)
{
    (void)state;
    setenv("POSTIE_TEST_HOST", "env.example", 1);
    struct conf c;
    parse_ok("hostname = \"${POSTIE_TEST_HOST}\"\n", &c);
    assert_string_equal(c.hostname, "env.example");
    conf_free(&c);
    /* single quotes do not expand */
    parse_ok("queue_dir = '${POSTIE_TEST_HOST}'\n", &c);
    assert_string_equal(c.queue_dir, "${POSTIE_TEST_HOST}");
    conf_free(&c);
    unsetenv("POSTIE_TEST_HOST");
}

static void test_duration(void **state)
{
    (void)state;
    assert_int_equal(conf_parse_duration("0"), 0);
    assert_int_equal(conf_parse_duration("30"), 30);
    assert_int_equal(conf_parse_duration("30s"), 30);
    assert_int_equal(conf_parse_duration("15m"), 900);
    assert_int_equal(conf_parse_duration("2h"), 7200);
    assert_int_equal(conf_parse_duration("5d"), 432000);
    assert_int_equal(conf_parse_duration(""), -1);
    assert_int_equal(conf_parse_duration(NULL), -1);
    assert_int_equal(conf_parse_duration("d"), -1);
    assert_int_equal(conf_parse_duration("5w"), -1);
    assert_int_equal(conf_parse_duration("5dd"), -1);
    assert_int_equal(conf_parse_duration("-5"), -1);
    assert_int_equal(conf_parse_duration("+5"), -1);
    assert_int_equal(conf_parse_duration(" 5"), -1);
    assert_int_equal(conf_parse_duration("5 "), -1);
    assert_int_equal(conf_parse_duration("1h30m"), -1);
    assert_int_equal(conf_parse_duration("99999999999999999999"), -1);
    assert_int_equal(conf_parse_duration("999999999999999999d"), -1);
}

/* ----------------------------------------------------------------- accounts */

static void test_account_for(void **state)
{
    (void)state;
    struct conf c;
    parse_ok("account \"first\" { host = a.example\n from = \"cron@example.com\" }\n"
             "account \"default\" { host = b.example }\n"
             "account \"work\" { host = c.example\n from = \"Alice@Work.example\" }\n",
             &c);
    assert_string_equal(conf_account_for(&c, "cron@example.com")->name, "first");
    assert_string_equal(conf_account_for(&c, "CRON@EXAMPLE.COM")->name, "first");
    assert_string_equal(conf_account_for(&c, "alice@work.example")->name, "work");
    assert_string_equal(conf_account_for(&c, "other@example.com")->name, "default");
    assert_string_equal(conf_account_for(&c, NULL)->name, "default");
    assert_string_equal(conf_account_for(&c, "")->name, "default");
    conf_free(&c);
    parse_ok("account \"one\" { host = a.example }\naccount \"two\" { host = b.example }\n", &c);
    assert_string_equal(conf_account_for(&c, "x@y")->name, "one");
    conf_free(&c);
}

/* ------------------------------------------------------------------ loading */

static void test_load_missing(void **state)
{
    (void)state;
    struct conf c;
    struct result r;
    char *path = mem_printf("%s/does-not-exist.conf", tmpdir);
    assert_int_equal(conf_load(path, &c, &r), OUTCOME_CONFIG);
    char *want = mem_printf("cannot read %s: No such file or directory", path);
    assert_string_equal(r.text, want);
    free(want);
    free(path);
    assert_int_equal(conf_load(tmpdir, &c, &r), OUTCOME_CONFIG);
    assert_non_null(strstr(r.text, "is not a regular file"));
}

static void test_load_ok(void **state)
{
    (void)state;
    char *path = write_file("ok.conf", ACCOUNT_OK, 0600);
    struct conf c;
    struct result r;
    assert_int_equal(conf_load(path, &c, &r), OUTCOME_OK);
    assert_string_equal(c.path, path);
    assert_int_equal(c.naccounts, 1);
    assert_string_equal(c.accounts[0].password, "s3cret-pw");
    conf_free(&c);
    /* group-readable is the setgid model: fine */
    chmod(path, 0640);
    assert_int_equal(conf_load(path, &c, &r), OUTCOME_OK);
    conf_free(&c);
    free(path);
}

static void test_load_permissions(void **state)
{
    (void)state;
    static const mode_t bad[] = {0644, 0604, 0602, 0606, 0666};
    const char *const texts[] = {
        ACCOUNT_OK,
        "account \"x\" {\n host = h.example\n user = u\n password_command = \"echo p\"\n}\n",
    };
    for (size_t t = 0; t < 2; t++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char *path = write_file("perm.conf", texts[t], bad[i]);
            struct conf c;
            struct result r;
            assert_int_equal(conf_load(path, &c, &r), OUTCOME_CONFIG);
            if (strstr(r.text, "other users") == NULL)
                fail_msg("mode %o: %s", (unsigned)bad[i], r.text);
            assert_null(strstr(r.text, "s3cret-pw"));
            assert_null(strstr(r.text, "echo p"));
            assert_null(c.accounts);
            free(path);
        }
    }
    /* without secrets a world-readable file is fine, a world-writable one is not */
    char *path = write_file("public.conf", "hostname = a.example\n", 0644);
    struct conf c;
    struct result r;
    assert_int_equal(conf_load(path, &c, &r), OUTCOME_OK);
    conf_free(&c);
    chmod(path, 0646);
    assert_int_equal(conf_load(path, &c, &r), OUTCOME_CONFIG);
    assert_non_null(strstr(r.text, "writable by other users"));
    free(path);
}

/* A parse error from conf_load names the real path. */
static void test_load_error_names_file(void **state)
{
    (void)state;
    char *path = write_file("err.conf", "hostname = a.example\nbogus = 1\n", 0600);
    struct conf c;
    struct result r;
    assert_int_equal(conf_load(path, &c, &r), OUTCOME_CONFIG);
    char *want = mem_printf("%s:2: no such option 'bogus'", path);
    assert_string_equal(r.text, want);
    free(want);
    free(path);
}

/* Runs conf_load(path) as uid in a child; returns its outcome. */
static int load_as(uid_t uid, const char *path, const char *home)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(uid) != 0)
            _exit(100);
        if (home != NULL)
            setenv("HOME", home, 1);
        struct conf c;
        struct result r;
        enum outcome o = conf_load(path, &c, &r);
        if (o == OUTCOME_CONFIG && strstr(r.text, "owned by") == NULL &&
            strstr(r.text, "cannot read") == NULL)
            _exit(101);
        _exit((int)o);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_load_ownership(void **state)
{
    (void)state;
    char *path = write_file("owned.conf", "hostname = a.example\n", 0644);
    if (geteuid() == 0) {
        /* root may name any file with -C */
        assert_int_equal(chown(path, 12345, 12345), 0);
        struct conf c;
        struct result r;
        assert_int_equal(conf_load(path, &c, &r), OUTCOME_OK);
        conf_free(&c);
        /* another user may not use a file owned by uid 12345 ... */
        chmod(tmpdir, 0755);
        assert_int_equal(load_as(23456, path, NULL), OUTCOME_CONFIG);
        /* ... but the owner may, and anyone may use a root-owned one */
        assert_int_equal(load_as(12345, path, NULL), OUTCOME_OK);
        assert_int_equal(chown(path, 0, 0), 0);
        assert_int_equal(load_as(23456, path, NULL), OUTCOME_OK);
        /* a file the user cannot read: no content in the message */
        char *secret = write_file("secret.conf", "hostname = secret-marker.example\nxyz\n", 0600);
        assert_int_equal(load_as(23456, secret, NULL), OUTCOME_CONFIG);
        free(secret);
    } else {
        /* our own file is fine; so is a root-owned one (if it parses) */
        struct conf c;
        struct result r;
        assert_int_equal(conf_load(path, &c, &r), OUTCOME_OK);
        conf_free(&c);
    }
    free(path);
}

static void test_load_user_file(void **state)
{
    (void)state;
    char *home = mem_printf("%s/home", tmpdir);
    char *dir = mem_printf("%s/.config/postie", home);
    char *cmd = mem_printf("mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    char *path = mem_printf("%s/postie.conf", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("hostname = user.example\n", fp);
    fclose(fp);
    chmod(path, 0600);
    const char *old = getenv("HOME");
    char *saved = old != NULL ? mem_strdup(old) : NULL;
    setenv("HOME", home, 1);

    struct conf c;
    struct result r;
    assert_int_equal(conf_load(NULL, &c, &r), OUTCOME_OK);
    assert_string_equal(c.path, path);
    assert_string_equal(c.hostname, "user.example");
    conf_free(&c);

    /* -C wins over the user file */
    char *other = write_file("explicit.conf", "hostname = explicit.example\n", 0600);
    assert_int_equal(conf_load(other, &c, &r), OUTCOME_OK);
    assert_string_equal(c.hostname, "explicit.example");
    conf_free(&c);
    free(other);

    /* an error in the user file is reported with its path */
    fp = fopen(path, "w");
    fputs("\nport = 25\n", fp);
    fclose(fp);
    assert_int_equal(conf_load(NULL, &c, &r), OUTCOME_CONFIG);
    char *want = mem_printf("%s:2: no such option 'port'", path);
    assert_string_equal(r.text, want);
    free(want);

    if (geteuid() == 0) {
        /* a user file owned by someone else is refused */
        fp = fopen(path, "w");
        fputs("hostname = user.example\n", fp);
        fclose(fp);
        assert_int_equal(chown(path, 12345, 12345), 0);
        assert_int_equal(conf_load(NULL, &c, &r), OUTCOME_CONFIG);
        assert_non_null(strstr(r.text, "owned by uid 12345"));
    }

    /* without a user file: the system file, or the defaults */
    unlink(path);
    enum outcome o = conf_load(NULL, &c, &r);
    if (access(SYSCONFDIR "/postie.conf", F_OK) != 0) {
        assert_int_equal(o, OUTCOME_OK);
        assert_null(c.path);
        assert_int_equal(c.naccounts, 0);
        assert_non_null(c.hostname);
        assert_string_equal(c.queue_dir, QUEUEDIR);
        conf_free(&c);
    } else if (o == OUTCOME_OK) {
        assert_string_equal(c.path, SYSCONFDIR "/postie.conf");
        conf_free(&c);
    }

    if (saved != NULL) {
        setenv("HOME", saved, 1);
        free(saved);
    } else {
        unsetenv("HOME");
    }
    free(path);
    free(cmd);
    free(dir);
    free(home);
}

/*
 * While privileged (setgid: effective group != real group) ${VAR} is refused,
 * -C is refused (main drops the group first) and ~/.config is not read.
 * Root can play the setgid role with setegid(); others check the plain case.
 */
static void test_privileged(void **state)
{
    (void)state;
    struct conf c;
    struct result r;
    if (geteuid() != 0) {
        assert_int_equal(getegid(), getgid());
        parse_ok("hostname = \"${POSTIE_UNSET_VAR:-ok.example}\"\n", &c);
        assert_string_equal(c.hostname, "ok.example");
        conf_free(&c);
        return;
    }
    char *home = mem_printf("%s/privhome", tmpdir);
    char *cmd = mem_printf("mkdir -p '%s/.config/postie' && echo 'bogus = 1' > "
                           "'%s/.config/postie/postie.conf'",
                           home, home);
    assert_int_equal(system(cmd), 0);
    char *saved = getenv("HOME") != NULL ? mem_strdup(getenv("HOME")) : NULL;
    setenv("HOME", home, 1);
    char *path = write_file("priv.conf", "hostname = a.example\n", 0600);

    assert_int_equal(setegid(65534), 0);
    enum outcome o1 = parse("\nhostname = \"${HOME}\"\n", &c, &r);
    char t1[RESULT_TEXT_MAX];
    snprintf(t1, sizeof t1, "%s", r.text);
    enum outcome o2 = parse("# ${HOME} in a comment\nqueue_dir = '${HOME}'\n", &c, &r);
    struct conf c2;
    enum outcome o3 = parse("queue_dir = /srv/${X}/q\n", &c2, &r);
    char t3[RESULT_TEXT_MAX];
    snprintf(t3, sizeof t3, "%s", r.text);
    struct conf c6;
    enum outcome o6 = parse("// ${HOME} in a slash comment\n", &c6, &r);
    struct conf c4;
    enum outcome o4 = conf_load(path, &c4, &r);
    char t4[RESULT_TEXT_MAX];
    snprintf(t4, sizeof t4, "%s", r.text);
    struct conf c5;
    enum outcome o5 = conf_load(NULL, &c5, &r);
    assert_int_equal(setegid(0), 0);

    assert_int_equal(o1, OUTCOME_CONFIG);
    assert_string_equal(t1, "test.conf:2: ${...} environment expansion is not allowed while "
                            "postie runs with the setgid group");
    assert_int_equal(o2, OUTCOME_OK);
    assert_string_equal(c.queue_dir, "${HOME}");
    conf_free(&c);
    assert_int_equal(o3, OUTCOME_CONFIG);
    assert_non_null(strstr(t3, "test.conf:1: ${...}"));
    assert_int_equal(o6, OUTCOME_CONFIG);
    assert_int_equal(o4, OUTCOME_CONFIG);
    assert_non_null(strstr(t4, "refusing to read"));
    /* the user file (which does not parse) was not read */
    if (o5 == OUTCOME_OK) {
        if (c5.path != NULL)
            assert_string_equal(c5.path, SYSCONFDIR "/postie.conf");
        conf_free(&c5);
    } else {
        assert_null(strstr(r.text, "privhome"));
    }

    if (saved != NULL) {
        setenv("HOME", saved, 1);
        free(saved);
    } else {
        unsetenv("HOME");
    }
    free(path);
    free(cmd);
    free(home);
}

/* ----------------------------------------------------------------- passwords */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_password_key(void **state)
{
    (void)state;
    struct conf_account a = {.name = "x", .password = "pw", .timeout = 5};
    char *pw = NULL;
    struct result r;
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_OK);
    assert_string_equal(pw, "pw");
    mem_free_secret(pw);
    struct conf_account none = {.name = "y", .timeout = 5};
    assert_int_equal(conf_password(&none, &pw, &r), OUTCOME_OK);
    assert_null(pw);
}

static void test_password_command_ok(void **state)
{
    (void)state;
    struct conf_account a = {
        .name = "x", .timeout = 10, .password_command = "printf 'pass word\\r\\nsecond line\\n'"};
    char *pw = NULL;
    struct result r;
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_OK);
    assert_string_equal(pw, "pass word");
    mem_free_secret(pw);
    /* no final newline */
    a.password_command = "printf tok";
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_OK);
    assert_string_equal(pw, "tok");
    mem_free_secret(pw);
    /* stdin is /dev/null: a command that reads it does not hang */
    a.password_command = "cat; echo fromcat";
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_OK);
    assert_string_equal(pw, "fromcat");
    mem_free_secret(pw);
    /* lots of output: only the first line counts, nothing blocks */
    a.password_command = "echo first; head -c 1000000 /dev/zero | tr '\\0' x";
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_OK);
    assert_string_equal(pw, "first");
    mem_free_secret(pw);
}

/* A helper that leaves a daemon holding stdout (gpg-agent) does not stall. */
static void test_password_command_daemon(void **state)
{
    (void)state;
    struct conf_account a = {.name = "x", .timeout = 4, .password_command = "sleep 6 & echo pw"};
    char *pw = NULL;
    struct result r;
    double t0 = now();
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_OK);
    assert_string_equal(pw, "pw");
    assert_true(now() - t0 < 3.0);
    mem_free_secret(pw);
}

static void test_password_command_failures(void **state)
{
    (void)state;
    char *pw = NULL;
    struct result r;
    struct conf_account a = {
        .name = "acct", .timeout = 10, .password_command = "echo leaked-output; exit 3"};
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_CONFIG);
    assert_null(pw);
    assert_string_equal(r.text, "account \"acct\": password_command failed with exit status 3");
    a.password_command = "true";
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_CONFIG);
    assert_non_null(strstr(r.text, "printed no password"));
    a.password_command = "echo; echo leaked-output";
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_CONFIG);
    assert_non_null(strstr(r.text, "printed no password"));
    assert_null(strstr(r.text, "leaked"));
    a.password_command = "/nonexistent/helper";
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_CONFIG);
    assert_non_null(strstr(r.text, "exit status 127"));
    a.password_command = "echo leaked-output; kill -9 $$";
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_CONFIG);
    assert_non_null(strstr(r.text, "signal 9"));
    assert_null(strstr(r.text, "leaked"));
    assert_null(pw);
}

static void test_password_command_timeout(void **state)
{
    (void)state;
    char *pw = NULL;
    struct result r;
    struct conf_account a = {.name = "slow", .timeout = 1, .password_command = "sleep 30"};
    double t0 = now();
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_CONFIG);
    double took = now() - t0;
    assert_null(pw);
    assert_string_equal(r.text, "account \"slow\": password_command timed out after 1 s and was "
                                "killed");
    assert_true(took >= 0.9 && took < 5.0);
    /* output without end, then silence: still a timeout */
    a.password_command = "printf partial; sleep 30";
    assert_int_equal(conf_password(&a, &pw, &r), OUTCOME_CONFIG);
    assert_non_null(strstr(r.text, "timed out"));
    assert_null(strstr(r.text, "partial"));
}

static int group_setup(void **state)
{
    (void)state;
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char *cmd = mem_printf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest conf_tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_globals),
        cmocka_unit_test(test_account_defaults),
        cmocka_unit_test(test_account_full),
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_account_rules),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_errors_hide_values),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_env_expansion_unprivileged),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_account_for),
        cmocka_unit_test(test_load_missing),
        cmocka_unit_test(test_load_ok),
        cmocka_unit_test(test_load_permissions),
        cmocka_unit_test(test_load_error_names_file),
        cmocka_unit_test(test_load_ownership),
        cmocka_unit_test(test_load_user_file),
        cmocka_unit_test(test_privileged),
        cmocka_unit_test(test_password_key),
        cmocka_unit_test(test_password_command_ok),
        cmocka_unit_test(test_password_command_daemon),
        cmocka_unit_test(test_password_command_failures),
        cmocka_unit_test(test_password_command_timeout),
    };
    return cmocka_run_group_tests(conf_tests, group_setup, group_teardown) == 0 ? 0 : 1;
}
