// A disk that fails on demand, for the proxy tests (LD_PRELOAD): while the file named by
// PALISADE_FAULT_FLAG exists, fdatasync and fsync of a file under PALISADE_FAULT_DIR fail with EIO
// (the flag file holds "sync"), or writes to one fail with ENOSPC (it holds "write"). Every other
// file and every socket is untouched, so Palisade's own output and its clients are not.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

// The fault in force for this descriptor: "sync", "write", or "" (none).
static void fault_for(int fd, char *fault, size_t size) {
    fault[0] = 0;
    const char *flag = getenv("PALISADE_FAULT_FLAG"), *directory = getenv("PALISADE_FAULT_DIR");
    if (!flag || !directory) return;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, path, sizeof path - 1);
    if (length <= 0) return;
    path[length] = 0;
    if (strncmp(path, directory, strlen(directory)) != 0) return;
    // Read with the real calls: open and read are not shimmed.
    int flag_fd = open(flag, O_RDONLY | O_CLOEXEC);
    if (flag_fd < 0) return;
    ssize_t got = read(flag_fd, fault, size - 1);
    close(flag_fd);
    fault[got > 0 ? got : 0] = 0;
    fault[strcspn(fault, "\n")] = 0;
}

// The libc function this library stands in front of.
#define REAL(name) static __typeof__(&name) real_##name; if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

// Whether the fault in force for `fd` is `which`; if so, errno is set to `error`.
static int fails(int fd, const char *which, int error) {
    char fault[16];
    fault_for(fd, fault, sizeof fault);
    if (strcmp(fault, which) != 0) return 0;
    errno = error;
    return 1;
}

int fdatasync(int fd) {
    REAL(fdatasync);
    return fails(fd, "sync", EIO) ? -1 : real_fdatasync(fd);
}

int fsync(int fd) {
    REAL(fsync);
    return fails(fd, "sync", EIO) ? -1 : real_fsync(fd);
}

ssize_t write(int fd, const void *data, size_t count) {
    REAL(write);
    return fails(fd, "write", ENOSPC) ? -1 : real_write(fd, data, count);
}

ssize_t pwrite(int fd, const void *data, size_t count, off_t offset) {
    REAL(pwrite);
    return fails(fd, "write", ENOSPC) ? -1 : real_pwrite(fd, data, count, offset);
}

ssize_t pwrite64(int fd, const void *data, size_t count, off_t offset) {
    REAL(pwrite64);
    return fails(fd, "write", ENOSPC) ? -1 : real_pwrite64(fd, data, count, offset);
}
