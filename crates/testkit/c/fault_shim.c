/* LD_PRELOAD fault shim for Sluice's storage-fault tests.
 *
 * While the file named by SLUICE_FAULT_CONTROL exists, calls on file descriptors whose
 * path starts with SLUICE_FAULT_DIR "/" fail with EIO, as a dying disk answers:
 *   - the file contains "fsync": fsync, fdatasync, sync_file_range
 *   - the file contains "write": write, pwrite, pwrite64, writev, pwritev, pwritev2
 * Everything else (and everything while the file is absent) goes to libc unchanged.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static int fault_on(int fd, const char *kind) {
    const char *control = getenv("SLUICE_FAULT_CONTROL");
    const char *dir = getenv("SLUICE_FAULT_DIR");
    if (!control || !dir || fd < 0) return 0;
    int saved = errno;
    int cfd = open(control, O_RDONLY | O_CLOEXEC);
    if (cfd < 0) { errno = saved; return 0; }
    char what[64] = {0};
    ssize_t n = read(cfd, what, sizeof what - 1);
    close(cfd);
    if (n <= 0 || !strstr(what, kind)) { errno = saved; return 0; }
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, path, sizeof path - 1);
    errno = saved;
    if (len <= 0) return 0;
    path[len] = 0;
    size_t dlen = strlen(dir);
    return strncmp(path, dir, dlen) == 0 && path[dlen] == '/';
}

#define REAL(name) static __typeof__(name) *real_##name; \
    if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t count) {
    REAL(write);
    if (fault_on(fd, "write")) { errno = EIO; return -1; }
    return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite);
    if (fault_on(fd, "write")) { errno = EIO; return -1; }
    return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    REAL(pwrite64);
    if (fault_on(fd, "write")) { errno = EIO; return -1; }
    return real_pwrite64(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    REAL(writev);
    if (fault_on(fd, "write")) { errno = EIO; return -1; }
    return real_writev(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    REAL(pwritev);
    if (fault_on(fd, "write")) { errno = EIO; return -1; }
    return real_pwritev(fd, iov, iovcnt, offset);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags) {
    REAL(pwritev2);
    if (fault_on(fd, "write")) { errno = EIO; return -1; }
    return real_pwritev2(fd, iov, iovcnt, offset, flags);
}

int fsync(int fd) {
    REAL(fsync);
    if (fault_on(fd, "fsync")) { errno = EIO; return -1; }
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    if (fault_on(fd, "fsync")) { errno = EIO; return -1; }
    return real_fdatasync(fd);
}

int sync_file_range(int fd, off64_t offset, off64_t nbytes, unsigned int flags) {
    REAL(sync_file_range);
    if (fault_on(fd, "fsync")) { errno = EIO; return -1; }
    return real_sync_file_range(fd, offset, nbytes, flags);
}
