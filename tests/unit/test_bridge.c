/*
 * test_bridge.c - the handoff of bridge.c: libESMTP's connect() to
 * 127.0.0.1 port 0 is taken while a bridge is armed, once, and every other
 * connect() reaches the C library's.  A listener in this process stands in
 * for the smarthost (plaintext, so bridge_attach() hands over the socket
 * itself and no thread runs).
 */
#include "testlib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge.h"
#include "conf.h"
#include "result.h"

struct fixture {
    int listener;
    int port;
    struct conf_account a;
};

static int fixture_setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    f.listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sin;
    if (f.listener < 0 || bind(f.listener, (struct sockaddr *)&sin, sizeof sin) != 0 ||
        listen(f.listener, 8) != 0 || getsockname(f.listener, (struct sockaddr *)&sin, &sl) != 0)
        return -1;
    f.port = ntohs(sin.sin_port);
    f.a.name = (char *)"default";
    f.a.host = (char *)"127.0.0.1";
    f.a.port = f.port;
    f.a.tls = CONF_TLS_NONE;
    f.a.timeout = 5;
    *state = &f;
    return 0;
}

static int fixture_teardown(void **state)
{
    struct fixture *f = *state;
    close(f->listener);
    return 0;
}

/* connect() to 127.0.0.1 port `port` on a fresh socket: its result, errno in *err. */
static int try_connect(int fd, int port, int *err)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    errno = 0;
    int rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
    *err = errno;
    return rc;
}

/* bridge_open() to the fixture's listener: the bridge, and the accepted smarthost side. */
static int open_bridge(struct fixture *f, struct bridge **b)
{
    char local[64];
    struct result r;
    result_clear(&r);
    assert_int_equal(bridge_open(&f->a, "test.example", b, local, sizeof local, &r),
                     RESULT_FAIL_NONE);
    assert_string_equal(local, "127.0.0.1:0");
    int server = accept(f->listener, NULL, NULL);
    assert_true(server >= 0);
    return server;
}

static void test_unarmed_connect_reaches_the_c_library(void **state)
{
    struct fixture *f = *state;
    int err;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(try_connect(fd, 0, &err), -1);
    assert_int_equal(err, ECONNREFUSED);
    close(fd);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(try_connect(fd, f->port, &err), 0);
    close(fd);
    int peer = accept(f->listener, NULL, NULL);
    assert_true(peer >= 0);
    close(peer);
}

static void test_armed_connect_is_taken_once_and_attached(void **state)
{
    struct fixture *f = *state;
    struct bridge *b = NULL;
    int server = open_bridge(f, &b); /* the smarthost's side */

    /* libESMTP's call: taken, nothing on the network */
    int err;
    int client = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(try_connect(client, 0, &err), 0);
    /* only that one: a second call goes to the C library and is refused */
    int other = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(try_connect(other, 0, &err), -1);
    assert_int_equal(err, ECONNREFUSED);
    close(other);

    char why[200] = "";
    assert_true(bridge_attach(b, why, sizeof why));
    assert_false(bridge_is_secure(b));
    /* libESMTP's descriptor now is the connection to the smarthost */
    assert_int_equal(write(client, "EHLO x\r\n", 8), 8);
    char buf[16] = "";
    assert_int_equal(read(server, buf, sizeof buf), 8);
    assert_memory_equal(buf, "EHLO x\r\n", 8);
    assert_int_equal(write(server, "250 ok\r\n", 8), 8);
    assert_int_equal(read(client, buf, sizeof buf), 8);
    assert_memory_equal(buf, "250 ok\r\n", 8);

    close(client);
    bridge_close(b);
    close(server);
}

static void test_a_closed_bridge_takes_nothing(void **state)
{
    struct fixture *f = *state;
    struct bridge *b = NULL;
    int server = open_bridge(f, &b);
    /* libESMTP never connected: the reason says so */
    char why[200] = "";
    assert_int_equal(bridge_end_reason(b, why, sizeof why), BRIDGE_END_LOCAL_CLOSED);
    assert_non_null(strstr(why, "handoff"));
    bridge_close(b);
    close(server);

    int err;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(try_connect(fd, 0, &err), -1);
    assert_int_equal(err, ECONNREFUSED);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unarmed_connect_reaches_the_c_library),
        cmocka_unit_test(test_armed_connect_is_taken_once_and_attached),
        cmocka_unit_test(test_a_closed_bridge_takes_nothing),
    };
    return cmocka_run_group_tests(tests, fixture_setup, fixture_teardown) == 0 ? 0 : 1;
}
