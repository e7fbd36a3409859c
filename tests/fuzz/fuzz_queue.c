/*
 * fuzz_queue.c - libFuzzer target: the queue control-file reader and writer
 * (queue_control_read / queue_control_write, format in doc/QUEUE.md).
 *
 * A queued message is read back by every later flush, so a damaged or
 * hostile control file must be refused cleanly.  Oracles: what the reader
 * accepts holds only addresses that pass addr_validate() (they become MAIL
 * FROM / RCPT TO) and a header block of CRLF lines; writing it and reading
 * it back gives the same recipients and sender.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "queue.h"
#include "result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    FILE *in = fmemopen(buf, size, "r");
    if (in == NULL) {
        free(buf);
        return 0;
    }
    struct queue_control c;
    memset(&c, 0, sizeof c);
    struct result r;
    result_clear(&r);
    enum outcome o = queue_control_read(in, &c, &r);
    fclose(in);
    if (o == OUTCOME_OK) {
        struct result vr;
        if (c.sender == NULL || (c.sender[0] != '\0' && addr_validate(c.sender, &vr) != 0))
            abort();
        for (size_t i = 0; i < c.nrcpts; i++)
            if (c.rcpts[i].addr == NULL || addr_validate(c.rcpts[i].addr, &vr) != OUTCOME_OK)
                abort();
        for (size_t i = 0; i < c.headers_len; i++)
            if ((c.headers[i] == '\n' && (i == 0 || c.headers[i - 1] != '\r')) ||
                (c.headers[i] == '\r' && (i + 1 >= c.headers_len || c.headers[i + 1] != '\n')))
                abort();

        char *out = NULL;
        size_t outlen = 0;
        FILE *w = open_memstream(&out, &outlen);
        if (w == NULL || !queue_control_write(w, &c))
            abort();
        fclose(w);
        FILE *again = fmemopen(out, outlen, "r");
        struct queue_control c2;
        memset(&c2, 0, sizeof c2);
        result_clear(&r);
        if (again == NULL || queue_control_read(again, &c2, &r) != OUTCOME_OK)
            abort(); /* what we write must read back */
        fclose(again);
        if (c2.nrcpts != c.nrcpts || strcmp(c2.sender, c.sender) != 0)
            abort();
        for (size_t i = 0; i < c.nrcpts; i++)
            if (strcmp(c.rcpts[i].addr, c2.rcpts[i].addr) != 0 ||
                c.rcpts[i].state != c2.rcpts[i].state)
                abort();
        queue_control_free(&c2);
        free(out);
        queue_control_free(&c);
    } else if (o != OUTCOME_UNAVAILABLE && (r.text[0] == '\0' || strpbrk(r.text, "\r\n") != NULL)) {
        abort();
    }
    free(buf);
    return 0;
}
