/*
 * fuzz_message.c - libFuzzer target: the whole intake of one message
 * (message_prepare: input, header parse, envelope, header edits, body
 * checks), as `postie -t` runs it before anything reaches the network.
 *
 * The first input byte chooses the flags (bit 0: -i, bit 1: -t, else one
 * recipient argument; bit 2: -F with a hostile full name); the rest is the
 * message on stdin.  Oracles: every envelope address passes addr_validate()
 * (or is the null sender), recipients are unique; the final header block is
 * CRLF lines of at most 998 octets with no Bcc/Resent-Bcc field left; the
 * body (held in memory or spooled, exactly one of the two) is canonical CRLF
 * with no line over 998 octets and no NUL.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "message.h"
#include "opts.h"
#include "result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* CRLF lines of at most 998 octets, no NUL; headers: no Bcc field. */
static void fuzz_message_check(const char *s, size_t len, bool headers)
{
    size_t line = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0' || (s[i] == '\n'))
            abort();
        if (s[i] == '\r') {
            if (i + 1 >= len || s[i + 1] != '\n')
                abort();
            if (line > 998)
                abort();
            const char *start = s + i - line;
            if (headers && ((line >= 4 && strncasecmp(start, "bcc:", 4) == 0) ||
                            (line >= 11 && strncasecmp(start, "resent-bcc:", 11) == 0)))
                abort();
            line = 0;
            i++;
        } else {
            line++;
        }
    }
    if (line != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        log_init("fuzz", false, false);
        init = 1;
    }
    if (size == 0)
        return 0;
    unsigned flags = data[0];
    data++;
    size--;

    int in = memfd_create("fuzz-message", 0);
    if (in < 0 || (size > 0 && write(in, data, size) != (ssize_t)size))
        abort();
    lseek(in, 0, SEEK_SET);

    char rcpt[] = "rcpt@example.org";
    char *args[] = {rcpt, NULL};
    struct opts o;
    memset(&o, 0, sizeof o);
    o.mode = OPTS_MODE_SEND;
    o.ignore_dots = flags & 1;
    o.extract = (flags & 2) != 0;
    if (!o.extract) {
        o.args = args;
        o.nargs = 1;
    }
    if (flags & 4)
        o.fullname = "Evil \"Name\" (x) <y@z>, =?UTF-8?B?w6k=?=";
    char hostname[] = "host.example.org";
    struct conf c;
    memset(&c, 0, sizeof c);
    c.hostname = hostname;
    c.qualify_domain = hostname;
    struct message_params p = {.opts = &o, .conf = &c, .user = "fuzz", .spool_dir = "/tmp"};

    struct message m;
    memset(&m, 0, sizeof m);
    struct result r;
    result_clear(&r);
    if (message_prepare(&p, in, &m, &r) == OUTCOME_OK) {
        struct result vr;
        if (m.sender == NULL || (m.sender[0] != '\0' && addr_validate(m.sender, &vr) != 0))
            abort();
        if (m.nrcpts == 0)
            abort();
        for (size_t i = 0; i < m.nrcpts; i++) {
            if (addr_validate(m.rcpts[i], &vr) != OUTCOME_OK)
                abort();
            for (size_t j = 0; j < i && m.nrcpts <= 256; j++)
                if (addr_equal(m.rcpts[i], m.rcpts[j]))
                    abort(); /* de-duplicated */
        }
        fuzz_message_check(m.headers, m.headers_len, true);
        if ((m.body_fd >= 0) == (m.body_mem != NULL))
            abort(); /* the body is held or in a spool, never both or neither */
        if (m.body_mem != NULL)
            fuzz_message_check(m.body_mem, (size_t)m.body_len, false);
        if (m.body_fd >= 0) {
            off_t end = lseek(m.body_fd, 0, SEEK_END);
            if (end != m.body_len)
                abort();
            char *b = malloc((size_t)end + 1);
            if (b == NULL || pread(m.body_fd, b, (size_t)end, 0) != end)
                abort();
            fuzz_message_check(b, (size_t)end, false);
            free(b);
        }
        message_free(&m);
    } else if (r.text[0] == '\0' || strpbrk(r.text, "\r\n") != NULL) {
        abort();
    }
    close(in);
    return 0;
}
