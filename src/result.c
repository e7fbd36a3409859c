/*
 * result.c - the outcome table: stage outcomes and delivery failures to the
 * sysexits codes and messages of DESIGN section 6.
 */
#include "config.h"

#include "result.h"

#include <stdio.h>
#include <string.h>
#include <sysexits.h>

static const struct {
    int code;
    const char *name;
} result_table[] = {
    [OUTCOME_OK] = {EX_OK, "EX_OK"},
    [OUTCOME_USAGE] = {EX_USAGE, "EX_USAGE"},
    [OUTCOME_DATAERR] = {EX_DATAERR, "EX_DATAERR"},
    [OUTCOME_NOINPUT] = {EX_NOINPUT, "EX_NOINPUT"},
    [OUTCOME_NOUSER] = {EX_NOUSER, "EX_NOUSER"},
    [OUTCOME_UNAVAILABLE] = {EX_UNAVAILABLE, "EX_UNAVAILABLE"},
    [OUTCOME_SOFTWARE] = {EX_SOFTWARE, "EX_SOFTWARE"},
    [OUTCOME_OSERR] = {EX_OSERR, "EX_OSERR"},
    [OUTCOME_CANTCREAT] = {EX_CANTCREAT, "EX_CANTCREAT"},
    [OUTCOME_IOERR] = {EX_IOERR, "EX_IOERR"},
    [OUTCOME_TEMPFAIL] = {EX_TEMPFAIL, "EX_TEMPFAIL"},
    [OUTCOME_PROTOCOL] = {EX_PROTOCOL, "EX_PROTOCOL"},
    [OUTCOME_NOPERM] = {EX_NOPERM, "EX_NOPERM"},
    [OUTCOME_CONFIG] = {EX_CONFIG, "EX_CONFIG"},
};

/*
 * One row per delivery failure kind: is it worth a retry, what the caller
 * sees when it could not be queued, and how it is described.
 */
static const struct {
    bool temporary;
    enum outcome unqueued;
    const char *text;
} result_failures[] = {
    [RESULT_FAIL_NONE] = {false, OUTCOME_OK, "delivered"},
    [RESULT_FAIL_RESOLVE] = {true, OUTCOME_TEMPFAIL, "smarthost name did not resolve"},
    [RESULT_FAIL_CONNECT] = {true, OUTCOME_TEMPFAIL, "cannot connect to the smarthost"},
    [RESULT_FAIL_TIMEOUT] = {true, OUTCOME_TEMPFAIL, "smarthost timed out"},
    [RESULT_FAIL_TLS] = {true, OUTCOME_TEMPFAIL, "TLS handshake failed"},
    [RESULT_FAIL_CERT] = {true, OUTCOME_TEMPFAIL, "smarthost certificate rejected"},
    [RESULT_FAIL_STARTTLS] = {true, OUTCOME_TEMPFAIL, "smarthost does not offer STARTTLS"},
    [RESULT_FAIL_AUTH_REJECTED] = {true, OUTCOME_NOPERM, "smarthost rejected the credentials"},
    [RESULT_FAIL_AUTH_NOMECH] = {true, OUTCOME_NOPERM, "smarthost offers no usable AUTH mechanism"},
    [RESULT_FAIL_AUTH_CLEARTEXT] = {true, OUTCOME_NOPERM,
                                    "credentials would be sent over an unencrypted connection"},
    [RESULT_FAIL_GREETING] = {true, OUTCOME_TEMPFAIL, "smarthost refused the session"},
    [RESULT_FAIL_TEMP_REPLY] = {true, OUTCOME_TEMPFAIL, "smarthost deferred the message"},
    [RESULT_FAIL_PERM_REPLY] = {false, OUTCOME_UNAVAILABLE, "smarthost rejected the message"},
    [RESULT_FAIL_SOME_RCPTS] = {false, OUTCOME_NOUSER, "smarthost rejected some recipients"},
    [RESULT_FAIL_DROPPED] = {true, OUTCOME_TEMPFAIL, "connection to the smarthost was lost"},
    [RESULT_FAIL_PROTOCOL] = {true, OUTCOME_PROTOCOL, "smarthost broke the SMTP protocol"},
    [RESULT_FAIL_EXTENSION] = {false, OUTCOME_UNAVAILABLE,
                               "smarthost lacks a required SMTP extension"},
    [RESULT_FAIL_LOCAL] = {true, OUTCOME_TEMPFAIL, "local error"},
};

enum outcome result_vset(struct result *r, enum outcome o, const char *fmt, va_list ap)
{
    if (r == NULL)
        return o;
    r->outcome = o;
    vsnprintf(r->text, sizeof r->text, fmt, ap);
    for (char *p = r->text; *p != '\0'; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            *p = '?';
    }
    return o;
}

enum outcome result_set(struct result *r, enum outcome o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    result_vset(r, o, fmt, ap);
    va_end(ap);
    return o;
}

void result_clear(struct result *r)
{
    r->outcome = OUTCOME_OK;
    r->text[0] = '\0';
}

int result_exit_code(enum outcome o)
{
    if ((size_t)o >= sizeof result_table / sizeof result_table[0])
        return EX_SOFTWARE;
    return result_table[o].code;
}

const char *result_name(enum outcome o)
{
    if ((size_t)o >= sizeof result_table / sizeof result_table[0])
        return "EX_SOFTWARE";
    return result_table[o].name;
}

static bool result_failure_valid(enum result_failure f)
{
    return (size_t)f < sizeof result_failures / sizeof result_failures[0];
}

bool result_failure_is_temporary(enum result_failure f)
{
    return result_failure_valid(f) && result_failures[f].temporary;
}

const char *result_failure_text(enum result_failure f)
{
    return result_failure_valid(f) ? result_failures[f].text : "unknown failure";
}

enum outcome result_delivery(enum result_failure f, bool queued, bool dsn_mailed)
{
    if (!result_failure_valid(f))
        return OUTCOME_SOFTWARE;
    if (f == RESULT_FAIL_NONE)
        return OUTCOME_OK;
    if (result_failures[f].temporary && queued)
        return OUTCOME_OK;
    if (!result_failures[f].temporary && dsn_mailed)
        return OUTCOME_OK;
    return result_failures[f].unqueued;
}
