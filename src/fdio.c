/*
 * fdio.c - whole writes and copies on file descriptors; see fdio.h.
 */
#include "config.h"

#include "fdio.h"

#include <errno.h>
#include <sys/sendfile.h>
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
    off_t off = 0;
    *copied = 0;
    /* In the kernel: no buffer here (the spill runs on every large message,
     * and a stack buffer would stay in its resident set). */
    for (;;) {
        ssize_t n = sendfile(dst, src, &off, 1 << 30);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EINVAL || errno == ENOSYS) && off == 0)
            break; /* not for these two: copy by hand */
        if (n < 0)
            return errno;
        *copied = off;
        if (n == 0)
            return 0;
    }
    char buf[8192];
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
