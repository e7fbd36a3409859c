/*
 * test_opts.c - the sendmail command line: every option form (attached,
 * separate, missing value, grouped), ignored and refused flags, the
 * personalities, "--", and address validation.
 */
#include "testlib.h"

#include <string.h>

#include "opts.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

/* Parses a NULL-terminated argv literal. */
#define PARSE(o, r, ...)                                                                           \
    ({                                                                                             \
        char *argv_[] = {__VA_ARGS__, NULL};                                                       \
        opts_parse(ARGC(argv_), argv_, (o), (r));                                                  \
    })

/* The parse fails with EX_USAGE and the message contains want. */
static void expect_usage(const char *want, int argc, char **argv)
{
    struct opts o;
    struct result r;
    assert_int_equal(opts_parse(argc, argv, &o, &r), OUTCOME_USAGE);
    assert_int_equal(r.outcome, OUTCOME_USAGE);
    if (strstr(r.text, want) == NULL)
        fail_msg("message \"%s\" does not contain \"%s\"", r.text, want);
    assert_null(strchr(r.text, '\n'));
    assert_null(o.args);
}
#define EXPECT_USAGE(want, ...)                                                                    \
    do {                                                                                           \
        char *argv_[] = {__VA_ARGS__, NULL};                                                       \
        expect_usage((want), ARGC(argv_), argv_);                                                  \
    } while (0)

static void test_defaults(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "a@example.com"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_SEND);
    assert_false(o.extract);
    assert_false(o.ignore_dots);
    assert_null(o.sender);
    assert_null(o.fullname);
    assert_null(o.config);
    assert_false(o.verbose);
    assert_int_equal(o.notify, 0);
    assert_int_equal(o.ret, OPTS_RET_UNSET);
    assert_null(o.envid);
    assert_int_equal(o.body, OPTS_BODY_UNSET);
    assert_false(o.queue_only);
    assert_int_equal(o.errors, OPTS_ERRORS_PRINT);
    assert_int_equal(o.nargs, 1);
    assert_string_equal(o.args[0], "a@example.com");
    assert_null(o.args[1]);
    opts_free(&o);
    assert_null(o.args);
}

static void test_no_recipients(void **state)
{
    (void)state;
    EXPECT_USAGE("no recipients", "sendmail");
    EXPECT_USAGE("no recipients", "sendmail", "-i");
    EXPECT_USAGE("no recipients", "sendmail", "", ",");
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-t"), OUTCOME_OK);
    assert_true(o.extract);
    assert_int_equal(o.nargs, 0);
    assert_null(o.args);
    opts_free(&o);
}

/* Debian cron: -FCronDaemon -i -B8BITMIME -oem <MAILTO> */
static void test_debian_cron(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "/usr/sbin/sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem",
                           "a@example.com,", "b@example.com"),
                     OUTCOME_OK);
    assert_string_equal(o.fullname, "CronDaemon");
    assert_true(o.ignore_dots);
    assert_int_equal(o.body, OPTS_BODY_8BITMIME);
    assert_int_equal(o.errors, OPTS_ERRORS_MAIL);
    assert_int_equal(o.nargs, 2);
    assert_string_equal(o.args[0], "a@example.com");
    assert_string_equal(o.args[1], "b@example.com");
    opts_free(&o);
}

/* cronie: -FCronDaemon -i -odi -oem -oi -t -f <user> */
static void test_cronie(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(
        PARSE(&o, &r, "sendmail", "-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"),
        OUTCOME_OK);
    assert_true(o.extract);
    assert_true(o.ignore_dots);
    assert_false(o.queue_only);
    assert_string_equal(o.sender, "root");
    assert_int_equal(o.nargs, 0);
    opts_free(&o);
}

static void test_comma_lists(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "a@x, b@y ,,c@z", ",", "\"d,e\"@w"), OUTCOME_OK);
    assert_int_equal(o.nargs, 4);
    assert_string_equal(o.args[0], "a@x");
    assert_string_equal(o.args[1], "b@y");
    assert_string_equal(o.args[2], "c@z");
    assert_string_equal(o.args[3], "\"d,e\"@w");
    assert_null(o.args[4]);
    opts_free(&o);
}

static void test_sender_forms(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-fuser@x", "a@x"), OUTCOME_OK);
    assert_string_equal(o.sender, "user@x");
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-f", "user@x", "a@x"), OUTCOME_OK);
    assert_string_equal(o.sender, "user@x");
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-ruser@x", "a@x"), OUTCOME_OK);
    assert_string_equal(o.sender, "user@x");
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-r", "user@x", "a@x"), OUTCOME_OK);
    assert_string_equal(o.sender, "user@x");
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-f<>", "a@x"), OUTCOME_OK);
    assert_string_equal(o.sender, "");
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-f", "<>", "a@x"), OUTCOME_OK);
    assert_string_equal(o.sender, "");
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-f", "", "a@x"), OUTCOME_OK);
    assert_string_equal(o.sender, "");
    opts_free(&o);
    /* the last one wins */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-f", "a@x", "-f", "b@x", "c@x"), OUTCOME_OK);
    assert_string_equal(o.sender, "b@x");
    opts_free(&o);
    /* quoted local part with balanced quotes */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-f", "\"a b\"@x", "c@x"), OUTCOME_OK);
    assert_string_equal(o.sender, "\"a b\"@x");
    opts_free(&o);
}

static void test_sender_invalid(void **state)
{
    (void)state;
    EXPECT_USAGE("-f", "sendmail", "-f", "a@x\r\nRCPT TO:<evil@x>", "b@x");
    EXPECT_USAGE("line break", "sendmail", "-fa@x\n", "b@x");
    EXPECT_USAGE("'<' or '>'", "sendmail", "-f", "<a@x>", "b@x");
    EXPECT_USAGE("'<' or '>'", "sendmail", "-f", "a@x>", "b@x");
    EXPECT_USAGE("unbalanced quote", "sendmail", "-f", "\"a@x", "b@x");
    EXPECT_USAGE("unbalanced quote", "sendmail", "-f", "\"a\\\"@x", "b@x");
    EXPECT_USAGE("starts with '-'", "sendmail", "-f", "-oQ/tmp/x", "b@x");
    EXPECT_USAGE("-r", "sendmail", "-r", "-t", "b@x");
    EXPECT_USAGE("control character", "sendmail", "-f", "a\tb@x", "b@x");
    char longaddr[400];
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    EXPECT_USAGE("320", "sendmail", "-f", longaddr, "b@x");
    /* exactly 320 is fine */
    longaddr[320] = '\0';
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-f", longaddr, "b@x"), OUTCOME_OK);
    opts_free(&o);
}

static void test_recipient_invalid(void **state)
{
    (void)state;
    EXPECT_USAGE("recipient", "sendmail", "a@x\r\nDATA");
    EXPECT_USAGE("recipient", "sendmail", "ok@x", "b@x\n");
    EXPECT_USAGE("'<' or '>'", "sendmail", "<a@x>");
    EXPECT_USAGE("unbalanced quote", "sendmail", "\"a@x");
    EXPECT_USAGE("unbalanced quote", "sendmail", "ok@x,\"a@x");
    EXPECT_USAGE("control character", "sendmail", "a\x01@x");
    /* a backslash inside quotes does not hide a line break or a bracket */
    EXPECT_USAGE("line break", "sendmail", "\"a\\\nRCPT TO:x\"@x");
    EXPECT_USAGE("'<' or '>'", "sendmail", "\"a\\>\"@x");
    EXPECT_USAGE("line break", "sendmail", "[s\"m\\\n-,s\"newm\\");
    EXPECT_USAGE("line break", "sendmail", "-f", "\"a\\\r\"@x", "b@x");
    char longaddr[400];
    memset(longaddr, 'a', sizeof longaddr - 1);
    longaddr[sizeof longaddr - 1] = '\0';
    EXPECT_USAGE("320", "sendmail", longaddr);
    /* -bv addresses are checked too */
    EXPECT_USAGE("recipient", "sendmail", "-bv", "a@x\r\n");
}

static void test_dashdash(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-i", "-f", "me@x", "--", "-t", "-odd@x", "b@x"),
                     OUTCOME_OK);
    assert_false(o.extract);
    assert_false(o.queue_only);
    assert_int_equal(o.nargs, 3);
    assert_string_equal(o.args[0], "-t");
    assert_string_equal(o.args[1], "-odd@x");
    assert_string_equal(o.args[2], "b@x");
    opts_free(&o);
    /* "--" alone, then nothing: no recipients */
    EXPECT_USAGE("no recipients", "sendmail", "--");
    /* a lone "-" is an argument, and an invalid address */
    EXPECT_USAGE("starts with '-'", "sendmail", "-");
}

/* Options may follow recipients (glibc getopt permutes). */
static void test_mixed_order(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "a@x", "-oi", "b@x", "-t"), OUTCOME_OK);
    assert_true(o.ignore_dots);
    assert_true(o.extract);
    assert_int_equal(o.nargs, 2);
    opts_free(&o);
}

static void test_grouped_flags(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-tiv"), OUTCOME_OK);
    assert_true(o.extract);
    assert_true(o.ignore_dots);
    assert_true(o.verbose);
    opts_free(&o);
    /* a value flag ends the group and takes the rest */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-tfme@x"), OUTCOME_OK);
    assert_true(o.extract);
    assert_string_equal(o.sender, "me@x");
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-tf", "me@x"), OUTCOME_OK);
    assert_string_equal(o.sender, "me@x");
    opts_free(&o);
    EXPECT_USAGE("unknown option -z", "sendmail", "-tz");
}

static void test_fullname(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-F", "Cron Daemon", "-t"), OUTCOME_OK);
    assert_string_equal(o.fullname, "Cron Daemon");
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-F", "", "-t"), OUTCOME_OK);
    assert_string_equal(o.fullname, "");
    opts_free(&o);
    EXPECT_USAGE("-F", "sendmail", "-F", "Name\r\nBcc: victim@x", "-t");
    EXPECT_USAGE("-F", "sendmail", "-FName\n", "-t");
    EXPECT_USAGE("option -F needs a value", "sendmail", "-t", "-F");
}

static void test_config(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-C/tmp/p.conf", "-bp"), OUTCOME_OK);
    assert_string_equal(o.config, "/tmp/p.conf");
    assert_int_equal(o.mode, OPTS_MODE_LIST);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-C", "p.conf", "-bp"), OUTCOME_OK);
    assert_string_equal(o.config, "p.conf");
    opts_free(&o);
    EXPECT_USAGE("option -C needs a value", "sendmail", "-bp", "-C");
    EXPECT_USAGE("-C", "sendmail", "-C", "", "-bp");
}

static void test_verbose(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-v", "-v", "a@x"), OUTCOME_OK);
    assert_true(o.verbose);
    opts_free(&o);
}

static void test_notify(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-N", "never", "a@x"), OUTCOME_OK);
    assert_int_equal(o.notify, OPTS_NOTIFY_NEVER);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-Nsuccess,FAILURE,delay", "a@x"), OUTCOME_OK);
    assert_int_equal(o.notify, OPTS_NOTIFY_SUCCESS | OPTS_NOTIFY_FAILURE | OPTS_NOTIFY_DELAY);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-N", "failure", "a@x"), OUTCOME_OK);
    assert_int_equal(o.notify, OPTS_NOTIFY_FAILURE);
    opts_free(&o);
    EXPECT_USAGE("-N", "sendmail", "-N", "sometimes", "a@x");
    EXPECT_USAGE("-N", "sendmail", "-N", "never,success", "a@x");
    EXPECT_USAGE("-N", "sendmail", "-N", "success,", "a@x");
    EXPECT_USAGE("-N", "sendmail", "-N", "", "a@x");
    EXPECT_USAGE("option -N needs a value", "sendmail", "a@x", "-N");
}

static void test_ret(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-R", "full", "a@x"), OUTCOME_OK);
    assert_int_equal(o.ret, OPTS_RET_FULL);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-Rhdrs", "a@x"), OUTCOME_OK);
    assert_int_equal(o.ret, OPTS_RET_HDRS);
    opts_free(&o);
    EXPECT_USAGE("-R", "sendmail", "-R", "body", "a@x");
    EXPECT_USAGE("option -R needs a value", "sendmail", "a@x", "-R");
}

static void test_envid(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-V", "id+42=x", "a@x"), OUTCOME_OK);
    assert_string_equal(o.envid, "id+42=x");
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-Vabc", "a@x"), OUTCOME_OK);
    assert_string_equal(o.envid, "abc");
    opts_free(&o);
    EXPECT_USAGE("-V", "sendmail", "-V", "has space", "a@x");
    EXPECT_USAGE("-V", "sendmail", "-V", "caf\xc3\xa9", "a@x");
    EXPECT_USAGE("-V", "sendmail", "-V", "", "a@x");
    char longid[102];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    EXPECT_USAGE("-V", "sendmail", "-V", longid, "a@x");
    longid[100] = '\0';
    assert_int_equal(PARSE(&o, &r, "sendmail", "-V", longid, "a@x"), OUTCOME_OK);
    opts_free(&o);
    EXPECT_USAGE("option -V needs a value", "sendmail", "a@x", "-V");
}

static void test_body(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-B", "7BIT", "a@x"), OUTCOME_OK);
    assert_int_equal(o.body, OPTS_BODY_7BIT);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-B8bitmime", "a@x"), OUTCOME_OK);
    assert_int_equal(o.body, OPTS_BODY_8BITMIME);
    opts_free(&o);
    EXPECT_USAGE("-B", "sendmail", "-B", "BINARYMIME", "a@x");
    EXPECT_USAGE("-B", "sendmail", "-B8BIT", "a@x");
    EXPECT_USAGE("option -B needs a value", "sendmail", "a@x", "-B");
}

static void test_o_options(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-oi", "a@x"), OUTCOME_OK);
    assert_true(o.ignore_dots);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-o", "i", "a@x"), OUTCOME_OK);
    assert_true(o.ignore_dots);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-odq", "a@x"), OUTCOME_OK);
    assert_true(o.queue_only);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-odd", "a@x"), OUTCOME_OK);
    assert_true(o.queue_only);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-odi", "-odb", "-om", "a@x"), OUTCOME_OK);
    assert_false(o.queue_only);
    assert_false(o.ignore_dots);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-oew", "a@x"), OUTCOME_OK);
    assert_int_equal(o.errors, OPTS_ERRORS_MAIL);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-oem", "-oep", "a@x"), OUTCOME_OK);
    assert_int_equal(o.errors, OPTS_ERRORS_PRINT);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-oem", "-oeq", "a@x"), OUTCOME_OK);
    assert_int_equal(o.errors, OPTS_ERRORS_PRINT);
    opts_free(&o);
    /* any other -o is ignored, even ones that name files elsewhere */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-oA/tmp/aliases", "-oQ/tmp/q", "-oL9", "-oX", "-o",
                           "Whatever", "a@x"),
                     OUTCOME_OK);
    assert_false(o.ignore_dots);
    assert_false(o.queue_only);
    assert_int_equal(o.nargs, 1);
    opts_free(&o);
    EXPECT_USAGE("option -o needs a value", "sendmail", "a@x", "-o");
}

static void test_ignored(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-OQueueDirectory=/tmp", "-O", "x=y", "-L", "tag",
                           "-Ltag", "-G", "-U", "-h", "10", "-h5", "-n", "-m", "-Am", "-A", "c",
                           "-d0.1", "-d", "5", "-X", "/tmp/log", "-X/tmp/log2", "a@x"),
                     OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_SEND);
    assert_null(o.config);
    assert_int_equal(o.nargs, 1);
    assert_string_equal(o.args[0], "a@x");
    opts_free(&o);
    EXPECT_USAGE("option -X needs a value", "sendmail", "a@x", "-X");
    EXPECT_USAGE("option -L needs a value", "sendmail", "a@x", "-L");
    EXPECT_USAGE("option -h needs a value", "sendmail", "a@x", "-h");
    EXPECT_USAGE("option -O needs a value", "sendmail", "a@x", "-O");
}

static void test_b_modes(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-bm", "a@x"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_SEND);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-bp"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_LIST);
    assert_int_equal(o.nargs, 0);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-b", "p"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_LIST);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-bv", "a@x", "b@y"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_VERIFY);
    assert_int_equal(o.nargs, 2);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-bs", "-i"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_SMTP);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-bi"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_ALIASES);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-I"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_ALIASES);
    opts_free(&o);
    /* queue modes ignore stray arguments */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-bp", "whatever"), OUTCOME_OK);
    assert_int_equal(o.nargs, 0);
    assert_null(o.args);
    opts_free(&o);
    EXPECT_USAGE("option -b needs a value", "sendmail", "-b");
}

static void test_refused(void **state)
{
    (void)state;
    EXPECT_USAGE("-bd (run as a daemon) is not supported: postie is not an MTA", "sendmail", "-bd");
    EXPECT_USAGE("-bD", "sendmail", "-bD");
    EXPECT_USAGE("-bh", "sendmail", "-bh");
    EXPECT_USAGE("-bH", "sendmail", "-bH");
    EXPECT_USAGE("-bt", "sendmail", "-bt");
    EXPECT_USAGE("-bP", "sendmail", "-bP");
    EXPECT_USAGE("not supported", "sendmail", "-b", "t");
    EXPECT_USAGE("unknown option -bz", "sendmail", "-bz");
    EXPECT_USAGE("unknown option -x", "sendmail", "-x", "a@x");
    EXPECT_USAGE("unknown option -S", "sendmail", "-S", "a@x");
    EXPECT_USAGE("unknown option --frobnicate", "sendmail", "--frobnicate", "a@x");
    EXPECT_USAGE("unknown option (byte 0x01)", "sendmail", "-\x01", "a@x");
    /* the refusal wins even when help is asked for */
    EXPECT_USAGE("-bd", "sendmail", "--help", "-bd");
}

static void test_queue_run(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-q"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_FLUSH);
    assert_null(o.queue_filter);
    assert_false(o.flush_due_only);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-q30m"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_FLUSH);
    assert_null(o.queue_filter);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-q1h30m"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_FLUSH);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-qIabc123"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_FLUSH);
    assert_string_equal(o.queue_filter, "abc123");
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-q", "--due"), OUTCOME_OK);
    assert_true(o.flush_due_only);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "--due", "-q"), OUTCOME_OK);
    assert_true(o.flush_due_only);
    assert_int_equal(o.mode, OPTS_MODE_FLUSH);
    opts_free(&o);
    /* -q takes no separate argument: the next one is a (ignored) argument */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-q", "30m"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_FLUSH);
    opts_free(&o);
    EXPECT_USAGE("-qI", "sendmail", "-qI");
    EXPECT_USAGE("-qI", "sendmail", "-qIa/b");
    EXPECT_USAGE("-qRfoo", "sendmail", "-qRfoo");
    EXPECT_USAGE("--due only applies to -q", "sendmail", "--due", "-bp");
    EXPECT_USAGE("--due", "sendmail", "--due", "a@x");
}

static void test_delete(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "--delete", "id1", "id,2"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_DELETE);
    assert_int_equal(o.nargs, 2);
    assert_string_equal(o.args[0], "id1");
    assert_string_equal(o.args[1], "id,2");
    opts_free(&o);
    EXPECT_USAGE("--delete needs at least one queue id", "sendmail", "--delete");
}

static void test_help_version(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "--help"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_HELP);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "-bp", "--version"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_VERSION);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "mailq", "--help", "--version"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_HELP);
    opts_free(&o);
    /* --help after "--" is a recipient, not a flag */
    assert_int_equal(PARSE(&o, &r, "sendmail", "--", "--help"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_SEND);
    assert_int_equal(o.nargs, 1);
    assert_string_equal(o.args[0], "--help");
    opts_free(&o);
}

static void test_personalities(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "mailq"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_LIST);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "/usr/bin/mailq", "-v"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_LIST);
    assert_true(o.verbose);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "/usr/bin/newaliases"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_ALIASES);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "/usr/sbin/sendmail", "-t"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_SEND);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "postie", "-t"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_SEND);
    opts_free(&o);
    /* only the exact basename counts */
    EXPECT_USAGE("no recipients", "/usr/bin/mailq2");
    EXPECT_USAGE("no recipients", "/opt/mailq/sendmail");
    /* argc 0 */
    char *empty[] = {NULL};
    assert_int_equal(opts_parse(0, empty, &o, &r), OUTCOME_USAGE);
}

/* The real callers of field-notes section 3, as they pass their argv. */
static void test_real_callers(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    /* PHP mail() */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-t", "-i", "-fwww@example.com"), OUTCOME_OK);
    opts_free(&o);
    /* mutt */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-oem", "-oi", "-B8BITMIME", "-f", "me@x", "-N",
                           "failure,delay", "-R", "hdrs", "--", "to@x", "cc@x"),
                     OUTCOME_OK);
    assert_int_equal(o.nargs, 2);
    opts_free(&o);
    /* git send-email */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-f", "dev@x", "-i", "a@x", "b@x"), OUTCOME_OK);
    assert_int_equal(o.nargs, 2);
    opts_free(&o);
    /* Symfony / Laravel */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-bs", "-i"), OUTCOME_OK);
    assert_int_equal(o.mode, OPTS_MODE_SMTP);
    opts_free(&o);
    /* PHPMailer */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-oi", "-fme@x", "-t"), OUTCOME_OK);
    opts_free(&o);
    /* Perl cookbook */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-oi", "-t", "-odq"), OUTCOME_OK);
    assert_true(o.queue_only);
    opts_free(&o);
    /* fail2ban, with a comma list */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-f", "fail2ban", "root@localhost, admin@x"),
                     OUTCOME_OK);
    assert_int_equal(o.nargs, 2);
    opts_free(&o);
    /* Debian cron with a null sender MAILFROM */
    assert_int_equal(PARSE(&o, &r, "sendmail", "-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"),
                     OUTCOME_OK);
    opts_free(&o);
}

/* A parse reuses nothing from the previous one. */
static void test_reuse(void **state)
{
    (void)state;
    struct opts o;
    struct result r;
    assert_int_equal(PARSE(&o, &r, "sendmail", "-t", "-v", "-fa@x", "b@x"), OUTCOME_OK);
    opts_free(&o);
    assert_int_equal(PARSE(&o, &r, "sendmail", "c@x"), OUTCOME_OK);
    assert_false(o.extract);
    assert_false(o.verbose);
    assert_null(o.sender);
    assert_int_equal(o.nargs, 1);
    opts_free(&o);
    opts_free(&o);
    opts_free(NULL);
}

static void test_help_text(void **state)
{
    (void)state;
    const char *h = opts_help_text();
    static const char *const flags[] = {
        "-t",       "-i",     "-oi",       "-f",   "-r",   "-F",   "-C",    "-v",         "-N",
        "-R",       "-V",     "-B",        "-bm",  "-bp",  "-q",   "-qI",   "-bv",        "-bs",
        "-bi",      "-I",     "-odq",      "-odd", "-oem", "-oew", "-oep",  "-oeq",       "--due",
        "--delete", "--help", "--version", "-odi", "-odb", "-om",  "-o<x>", "-O",         "-L",
        "-G",       "-U",     "-h",        "-n",   "-m",   "-A",   "-d",    "-X",         "-bd",
        "-bD",      "-bh",    "-bH",       "-bt",  "-bP",  "--",   "mailq", "newaliases",
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (strstr(h, flags[i]) == NULL)
            fail_msg("--help does not mention %s", flags[i]);
    /* every line fits 80 columns */
    for (const char *p = h; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl);
        assert_true(nl - p <= 80);
        p = nl + 1;
    }
}

int main(void)
{
    const struct CMUnitTest opts_tests[] = {
        cmocka_unit_test(test_defaults),       cmocka_unit_test(test_no_recipients),
        cmocka_unit_test(test_debian_cron),    cmocka_unit_test(test_cronie),
        cmocka_unit_test(test_comma_lists),    cmocka_unit_test(test_sender_forms),
        cmocka_unit_test(test_sender_invalid), cmocka_unit_test(test_recipient_invalid),
        cmocka_unit_test(test_dashdash),       cmocka_unit_test(test_mixed_order),
        cmocka_unit_test(test_grouped_flags),  cmocka_unit_test(test_fullname),
        cmocka_unit_test(test_config),         cmocka_unit_test(test_verbose),
        cmocka_unit_test(test_notify),         cmocka_unit_test(test_ret),
        cmocka_unit_test(test_envid),          cmocka_unit_test(test_body),
        cmocka_unit_test(test_o_options),      cmocka_unit_test(test_ignored),
        cmocka_unit_test(test_b_modes),        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_queue_run),      cmocka_unit_test(test_delete),
        cmocka_unit_test(test_help_version),   cmocka_unit_test(test_personalities),
        cmocka_unit_test(test_real_callers),   cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_help_text),
    };
    return TESTLIB_RUN(opts_tests);
}
