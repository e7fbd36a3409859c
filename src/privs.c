/*
 * privs.c - the setgid privilege model; see privs.h.
 */
#include "config.h"

#include "privs.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static gid_t privs_rgid;
static gid_t privs_egid;

void privs_init(void)
{
    privs_rgid = getgid();
    privs_egid = getegid();
}

bool privs_elevated(void)
{
    return getegid() != getgid();
}

enum outcome privs_drop(struct result *r)
{
    if (getegid() == privs_rgid && getgid() == privs_rgid)
        return OUTCOME_OK;
    if (setresgid(privs_rgid, privs_rgid, privs_rgid) != 0)
        return result_set(r, OUTCOME_OSERR, "cannot drop group privileges: %s", strerror(errno));
    if (privs_rgid != privs_egid && (setegid(privs_egid) == 0 || getegid() != privs_rgid))
        return result_set(r, OUTCOME_OSERR, "group privileges could be regained after dropping them");
    return OUTCOME_OK;
}
