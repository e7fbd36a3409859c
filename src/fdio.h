/*
 * fdio.h - whole writes on file descriptors.
 */
#ifndef POSTIE_FDIO_H
#define POSTIE_FDIO_H

#include <stddef.h>

/*
 * Writes all len bytes of buf to fd, retrying short writes and EINTR.
 * Returns 0, or the errno of the failed write (EIO for a write of 0).
 */
int fdio_write_all(int fd, const void *buf, size_t len);

#endif
