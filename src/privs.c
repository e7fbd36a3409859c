/*
 * privs.c - the setgid privilege model; see privs.h and doc/SECURITY.md.
 */
#include "config.h"

#include "privs.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#define PRIVS_SAFE_PATH "/usr/sbin:/usr/bin:/sbin:/bin"

static gid_t privs_rgid;
static gid_t privs_egid;
static bool privs_initialised;
static bool privs_dropped; /* privs_drop() succeeded: the group is gone for good */

/* Opens /dev/null on any of 0, 1, 2 that is closed. */
static void privs_std_fds(void)
{
    /* One poll() tells which are closed (POLLNVAL); fcntl() each if it fails. */
    struct pollfd p[3] = {{.fd = 0}, {.fd = 1}, {.fd = 2}};
    bool polled = poll(p, 3, 0) >= 0;
    for (int fd = 0; fd <= 2; fd++) {
        if (polled ? !(p[fd].revents & POLLNVAL) : (fcntl(fd, F_GETFD) != -1 || errno != EBADF))
            continue;
        int nfd = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (nfd < 0)
            abort(); /* cannot even open /dev/null: do not run with holes */
        if (nfd != fd) {
            /* a lower descriptor was closed as well and got nfd; loop fills fd next */
            if (dup2(nfd, fd) < 0)
                abort();
            close(nfd);
        }
    }
}

void privs_init(void)
{
    privs_rgid = getgid();
    privs_egid = getegid();
    privs_initialised = true;
    privs_std_fds();
}

bool privs_elevated(void)
{
    if (!privs_initialised)
        return getegid() != getgid();
    return !privs_dropped && privs_egid != privs_rgid;
}

enum outcome privs_drop(struct result *r)
{
    if (!privs_initialised)
        privs_init();
    gid_t rg, eg, sg;
    if (getresgid(&rg, &eg, &sg) != 0)
        return result_set(r, OUTCOME_OSERR, "cannot read the group ids: %s", strerror(errno));
    if (rg == privs_rgid && eg == privs_rgid && sg == privs_rgid) {
        privs_dropped = true;
        return OUTCOME_OK;
    }
    if (setresgid(privs_rgid, privs_rgid, privs_rgid) != 0)
        return result_set(r, OUTCOME_OSERR, "cannot drop group privileges: %s", strerror(errno));
    if (getresgid(&rg, &eg, &sg) != 0 || rg != privs_rgid || eg != privs_rgid || sg != privs_rgid)
        return result_set(r, OUTCOME_OSERR, "group privileges were not dropped");
    /*
     * The group must be gone for good.  Only a process with CAP_SETGID (root)
     * could switch back, and root may read everything anyway; for everyone
     * else a successful setegid() means the drop did not hold.
     */
    if (geteuid() != 0 && privs_egid != privs_rgid && setegid(privs_egid) == 0) {
        if (setresgid(privs_rgid, privs_rgid, privs_rgid) != 0)
            abort(); /* regained and cannot drop again: stop here */
        return result_set(r, OUTCOME_OSERR,
                          "group privileges could be regained after dropping them");
    }
    privs_dropped = true;
    return OUTCOME_OK;
}

unsigned privs_sanitize_env(void)
{
    if (!privs_elevated())
        return 0;
    unsigned removed = 0;
    for (char **e = environ; e != NULL && *e != NULL; e++)
        if (strncmp(*e, "PATH=", 5) != 0)
            removed++;
    if (clearenv() != 0)
        environ = NULL; /* clearenv cannot fail in glibc; be sure anyway */
    if (setenv("PATH", PRIVS_SAFE_PATH, 1) != 0)
        environ = NULL; /* no PATH at all is safe too: execvp then uses its default */
    return removed;
}

enum outcome privs_no_dumps(struct result *r)
{
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        return result_set(r, OUTCOME_OSERR, "cannot disable core dumps: %s", strerror(errno));
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        return result_set(r, OUTCOME_OSERR, "cannot make the process non-dumpable: %s",
                          strerror(errno));
    return OUTCOME_OK;
}
