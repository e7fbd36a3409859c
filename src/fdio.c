/*
 * fdio.c - whole writes and copies on file descriptors; see fdio.h.
 */
#include "config.h"

#include "fdio.h"

#include <errno.h>
#include <unistd.h>

int fdio_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int fdio_copy(int src, int dst, off_t *copied)
{
    char buf[65536];
    off_t off = 0;
    *copied = 0;
    for (;;) {
        ssize_t n = pread(src, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            break;
        int e = fdio_write_all(dst, buf, (size_t)n);
        if (e != 0)
            return e;
        off += n;
        *copied = off;
    }
    return 0;
}
