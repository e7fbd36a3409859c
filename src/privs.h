/*
 * privs.h - the setgid privilege model (doc/SECURITY.md).
 *
 * postie may be installed setgid to a dedicated group so that users can send
 * without being able to read the smarthost password.  While privileged it
 * opens only the system configuration and the queue; before it touches
 * anything a user chose (-C, ~/.config, paths from the environment) it drops
 * the group for good.
 *
 * Order in main(): privs_init() first, then privs_sanitize_env() and
 * privs_no_dumps() before the configuration (and so any secret) is read;
 * privs_drop() before opening anything the user named.
 */
#ifndef POSTIE_PRIVS_H
#define POSTIE_PRIVS_H

#include <stdbool.h>

#include "result.h"

/*
 * Records the real and effective ids; call first in main().  It also makes
 * sure descriptors 0, 1 and 2 are open (on /dev/null when the caller closed
 * them), so that no file postie opens later can become stdout or stderr and
 * receive its messages.
 */
void privs_init(void);

/* true while the effective group differs from the real one. */
bool privs_elevated(void);

/*
 * Drops the setgid group permanently (real, effective and saved group id all
 * become the real one) and verifies it cannot come back.  OUTCOME_OK at once
 * when the process was not privileged.  OUTCOME_OSERR when the group cannot
 * be dropped or could be regained.
 */
enum outcome privs_drop(struct result *r);

/*
 * While privileged, replaces the environment by a fixed safe one: PATH is
 * "/usr/sbin:/usr/bin:/sbin:/bin", and every other variable (HOME, TMPDIR,
 * TZ, LANG/LC_*, LOCPATH, NLSPATH, OPENSSL_*, SSL_CERT_*, IFS, ENV, BASH_ENV,
 * ...) is removed, so that nothing the caller put there names a file opened
 * with the group or a program run with it (password_command).  Does nothing
 * when not privileged: the caller's environment is then the caller's own.
 * Returns the number of variables removed.
 */
unsigned privs_sanitize_env(void);

/*
 * No core dumps and no ptrace by the same user while postie holds secrets:
 * prctl(PR_SET_DUMPABLE, 0) and RLIMIT_CORE 0.  OUTCOME_OSERR if either
 * call fails.
 */
enum outcome privs_no_dumps(struct result *r);

#endif
