/*
 * testlib.h - what every cmocka unit test includes (cmocka needs these
 * system headers first).
 */
#ifndef POSTIE_TESTLIB_H
#define POSTIE_TESTLIB_H

#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* cmocka returns the number of failures; automake reads 77 and 99 specially. */
#define TESTLIB_RUN(tests) (cmocka_run_group_tests((tests), NULL, NULL) == 0 ? 0 : 1)

#endif
