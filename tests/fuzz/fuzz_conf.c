/*
 * fuzz_conf.c - libFuzzer target: the configuration parser (conf_parse_file
 * on an in-memory stream), account selection and duration parsing.
 *
 * conf_password() is only called for accounts without password_command: the
 * fuzzer must never run shell commands it made up.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "mem.h"
#include "result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private, NUL-terminated copy: the stream and the string views */
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';

    conf_parse_duration(buf);

    FILE *fp = fmemopen(buf, size, "r");
    if (fp == NULL) {
        free(buf);
        return 0;
    }
    struct conf c;
    struct result r;
    result_clear(&r);
    memset(&c, 0, sizeof c);
    enum outcome o = conf_parse_file("fuzz.conf", fp, &c, &r);
    fclose(fp);
    if (o == OUTCOME_OK) {
        /* every account must have been validated into a usable shape */
        for (size_t i = 0; i < c.naccounts; i++) {
            const struct conf_account *a = &c.accounts[i];
            if (a->port < 0 || a->port > 65535 || a->timeout < 0)
                abort();
            if (a->password == NULL && a->password_command == NULL) {
                char *pw = NULL;
                if (conf_password(a, &pw, &r) == OUTCOME_OK && pw != NULL)
                    abort(); /* a password out of nowhere */
                mem_free_secret(pw);
            }
        }
        conf_account_for(&c, NULL);
        conf_account_for(&c, "");
        conf_account_for(&c, "cron@example.com");
        conf_account_for(&c, buf);
    } else if (r.text[0] == '\0' || strchr(r.text, '\n') != NULL) {
        abort(); /* a failure must say what failed, on one line */
    }
    conf_free(&c);
    free(buf);
    return 0;
}
