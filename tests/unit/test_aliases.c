/*
 * test_aliases.c - aliases(5) loading, expansion, loops, refused local
 * targets and the newaliases check, on the files in tests/data/aliases/.
 */
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "mem.h"

static char *data(const char *name)
{
    const char *src = getenv("POSTIE_SRCDIR");
    assert_non_null(src);
    return mem_printf("%s/tests/data/aliases/%s", src, name);
}

static struct aliases *load(const char *name)
{
    char *path = data(name);
    struct aliases *a;
    struct result r;
    enum outcome o = aliases_load(path, false, &a, &r);
    if (o != OUTCOME_OK)
        fail_msg("%s: %s", name, r.text);
    free(path);
    return a;
}

/* Expands name and compares with the expected targets joined by " ". */
static void expect(const struct aliases *a, const char *name, const char *want)
{
    char **list = NULL;
    size_t n = 0;
    struct result r;
    enum outcome o = aliases_expand(a, name, &list, &n, &r);
    if (o != OUTCOME_OK)
        fail_msg("%s: %s", name, r.text);
    char got[512] = "";
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            strcat(got, " ");
        strcat(got, list[i]);
        free(list[i]);
    }
    free(list);
    assert_string_equal(got, want);
}

static void test_chains(void **state)
{
    (void)state;
    struct aliases *a = load("chains-and-continuations.aliases");
    expect(a, "postmaster", "admin@example.com");
    expect(a, "ROOT", "admin@example.com");
    expect(a, "webmaster", "web1@example.com web2@example.com web3@example.com");
    expect(a, "team", "alice@example.com bob@example.net admin@example.com");
    expect(a, "self", "self self-copy@example.com");
    expect(a, "nobody-here", "nobody-here");
    aliases_free(a);
}

static void test_loop(void **state)
{
    (void)state;
    struct aliases *a = load("loop.aliases");
    char **list = NULL;
    size_t n = 0;
    struct result r;
    assert_int_equal(aliases_expand(a, "a", &list, &n, &r), OUTCOME_DATAERR);
    assert_non_null(strstr(r.text, "alias loop"));
    assert_int_equal(n, 0);
    free(list);
    expect(a, "ok", "x@example.com");
    aliases_free(a);
}

static void test_depth_bound(void **state)
{
    (void)state;
    struct aliases *a = load("deep.aliases");
    char **list = NULL;
    size_t n = 0;
    struct result r;
    assert_int_equal(aliases_expand(a, "start", &list, &n, &r), OUTCOME_DATAERR);
    assert_non_null(strstr(r.text, "deeper than"));
    free(list);
    expect(a, "s20", "end@example.com");
    aliases_free(a);
}

static void test_local_delivery_refused(void **state)
{
    (void)state;
    struct aliases *a = load("local-delivery-refused.aliases");
    expect(a, "mixed", "kept@example.com");
    /* an alias whose targets were all refused expands to nothing */
    char **list = NULL;
    size_t n = 0;
    struct result r;
    assert_int_equal(aliases_expand(a, "pipe", &list, &n, &r), OUTCOME_OK);
    assert_int_equal(n, 0);
    free(list);
    aliases_free(a);
}

static void test_missing_file(void **state)
{
    (void)state;
    struct aliases *a;
    struct result r;
    assert_int_equal(aliases_load("/nonexistent/aliases", true, &a, &r), OUTCOME_OK);
    expect(a, "root", "root");
    aliases_free(a);
    assert_int_equal(aliases_load("/nonexistent/aliases", false, &a, &r), OUTCOME_NOINPUT);
    assert_non_null(strstr(r.text, "/nonexistent/aliases"));
    /* no aliases at all */
    expect(NULL, "root", "root");
    char **list = NULL;
    size_t n = 0;
    assert_int_equal(aliases_expand(NULL, "ro\rot", &list, &n, &r), OUTCOME_DATAERR);
    assert_int_equal(n, 0);
}

static void test_load_syntax_error(void **state)
{
    (void)state;
    char *path = data("syntax-errors.aliases");
    struct aliases *a;
    struct result r;
    assert_int_equal(aliases_load(path, false, &a, &r), OUTCOME_CONFIG);
    assert_null(a);
    char *want = mem_printf("%s:2: ", path);
    assert_true(strncmp(r.text, want, strlen(want)) == 0);
    free(want);
    free(path);
}

static char *check(const char *name, enum outcome want, size_t want_entries)
{
    char *path = data(name);
    char *buf = NULL;
    size_t len = 0;
    FILE *err = open_memstream(&buf, &len);
    size_t entries;
    struct result r;
    assert_int_equal(aliases_check(path, err, &entries, &r), want);
    fclose(err);
    assert_int_equal(entries, want_entries);
    free(path);
    return buf;
}

static void test_check(void **state)
{
    (void)state;
    char *out = check("chains-and-continuations.aliases", OUTCOME_OK, 7);
    assert_string_equal(out, "");
    free(out);

    out = check("syntax-errors.aliases", OUTCOME_DATAERR, 4);
    char *path = data("syntax-errors.aliases");
    const char *lines[] = {":2: bad alias name",           ":4: empty alias name",
                           ":5: bad alias name",           ":7: warning: alias dup defined twice",
                           ":8: alias broken: bad target", ":9: alias utf8: invalid address"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char *want = mem_printf("%s%s", path, lines[i]);
        if (strstr(out, want) == NULL)
            fail_msg("missing \"%s\" in:\n%s", want, out);
        free(want);
    }
    free(path);
    free(out);

    out = check("loop.aliases", OUTCOME_DATAERR, 4);
    assert_non_null(strstr(out, ":1: alias loop"));
    free(out);

    out = check("local-delivery-refused.aliases", OUTCOME_OK, 5);
    assert_non_null(strstr(out, ":2: warning: alias pipe: target |/usr/bin/procmail refused"));
    assert_non_null(strstr(out, ":4: warning: alias inc"));
    free(out);

    out = check("orphan-continuation.aliases", OUTCOME_DATAERR, 1);
    assert_non_null(strstr(out, ":1: continuation line without an alias"));
    free(out);

    size_t entries;
    struct result r;
    assert_int_equal(aliases_check("/nonexistent/aliases", stderr, &entries, &r), OUTCOME_NOINPUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chains),       cmocka_unit_test(test_loop),
        cmocka_unit_test(test_depth_bound),  cmocka_unit_test(test_local_delivery_refused),
        cmocka_unit_test(test_missing_file), cmocka_unit_test(test_load_syntax_error),
        cmocka_unit_test(test_check),
    };
    return TESTLIB_RUN(tests);
}
