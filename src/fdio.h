/*
 * fdio.h - whole writes and copies on file descriptors.
 */
#ifndef POSTIE_FDIO_H
#define POSTIE_FDIO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Writes all len bytes of buf to fd, retrying short writes and EINTR.
 * Returns 0, or the errno of the failed write (EIO for a write of 0).
 */
int fdio_write_all(int fd, const void *buf, size_t len);

/*
 * Copies src, from offset 0 to its end (src's own offset is left alone), to
 * dst at dst's offset, with sendfile() where the two allow it; *copied gets
 * the octet count.  Returns 0, or the errno of the failed read or write.
 */
int fdio_copy(int src, int dst, off_t *copied);

#endif
