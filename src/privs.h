/*
 * privs.h - the setgid privilege model (doc/SECURITY.md).
 *
 * postie may be installed setgid to a dedicated group so that users can send
 * without being able to read the smarthost password.  While privileged it
 * opens only the system configuration and the queue; before it touches
 * anything a user chose (-C, ~/.config, paths from the environment) it drops
 * the group for good.
 */
#ifndef POSTIE_PRIVS_H
#define POSTIE_PRIVS_H

#include <stdbool.h>

#include "result.h"

/* Records the real and effective ids; call first in main(). */
void privs_init(void);

/* true while the effective group differs from the real one. */
bool privs_elevated(void);

/* Drops the setgid group permanently and verifies it cannot come back. */
enum outcome privs_drop(struct result *r);

#endif
