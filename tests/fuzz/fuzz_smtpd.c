/*
 * fuzz_smtpd.c - libFuzzer target: the -bs SMTP server engine (smtpd_serve)
 * fed a whole client conversation, with a delivery hook that checks what
 * the engine hands over instead of relaying it.
 *
 * Oracles: every sender and recipient handed to delivery passes
 * addr_validate() or is the null sender (they become MAIL FROM / RCPT TO on
 * the smarthost connection); there are at most SMTPD_MAX_RCPTS of them; the
 * DATA file holds exactly env->size octets; the replies are CRLF lines.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "addr.h"
#include "log.h"
#include "result.h"
#include "smtpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum outcome fuzz_smtpd_deliver(void *arg, int fd, const struct smtpd_envelope *env,
                                       struct submit_report *rep, struct result *r)
{
    unsigned *count = arg;
    struct result vr;
    if (env->sender == NULL || env->nrcpts == 0 || env->nrcpts > SMTPD_MAX_RCPTS)
        abort();
    if (env->sender[0] != '\0' && addr_validate(env->sender, &vr) != OUTCOME_OK)
        abort();
    for (size_t i = 0; i < env->nrcpts; i++)
        if (addr_validate(env->rcpts[i], &vr) != OUTCOME_OK)
            abort();
    off_t end = lseek(fd, 0, SEEK_END);
    if (end != env->size)
        abort();
    (*count)++;
    /* every other message is refused, to walk the error replies too */
    if (*count % 2 == 0)
        return result_set(r, OUTCOME_TEMPFAIL, "fuzz: try again");
    snprintf(rep->id, sizeof rep->id, "FUZZ%u", *count);
    rep->delivered = true;
    return OUTCOME_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        log_init("fuzz", false, false);
        init = 1;
    }
    int in = memfd_create("fuzz-smtpd-in", 0);
    int out = memfd_create("fuzz-smtpd-out", 0);
    if (in < 0 || out < 0)
        abort();
    if (size > 0 && write(in, data, size) != (ssize_t)size)
        abort();
    lseek(in, 0, SEEK_SET);

    unsigned count = 0;
    struct smtpd_settings set = {
        .hostname = "fuzz.example", .spool_dir = "/tmp", .max_size = 4096, .timeout = 1};
    struct smtpd_hooks hooks = {.deliver = fuzz_smtpd_deliver, .arg = &count};
    struct result r;
    result_clear(&r);
    smtpd_serve(in, out, &set, &hooks, &r);
    if (strpbrk(r.text, "\r\n") != NULL)
        abort();

    off_t len = lseek(out, 0, SEEK_END);
    char *reply = malloc((size_t)len + 1);
    if (reply == NULL || pread(out, reply, (size_t)len, 0) != len)
        abort();
    for (off_t i = 0; i < len; i++) {
        if (reply[i] == '\n' && (i == 0 || reply[i - 1] != '\r'))
            abort();
        if (reply[i] == '\r' && (i + 1 >= len || reply[i + 1] != '\n'))
            abort();
    }
    free(reply);
    close(in);
    close(out);
    return 0;
}
