/*
 * A program written against plain libc, built twice with only the prefix
 * changed: CALL(open) is open on the host and rump_sys_open in the kernel.
 * Both print one line per call (result and errno); the test compares the
 * two transcripts. Compiled as C and as C++ with -Wall -Werror, so the
 * wrappers' signatures must match libc's (variadic open/openat/fcntl/ioctl,
 * libc's faccessat and getcwd, pread/pwrite/fstatat/waitpid/umount).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compat.h"

int main(void) {
	char dir[] = "/tmp/compat_libcXXXXXX";
	if (compat_begin(dir) != 0)
		return 2;
	char buf[256];
	struct stat st;
	int fd = CALL(open)("f", O_RDWR | O_CREAT | O_EXCL, 0640);
	show("open O_CREAT", fd >= 0 ? 0 : -1);
	show("open O_EXCL again", CALL(open)("f", O_RDWR | O_CREAT | O_EXCL, 0640));
	int ro = CALL(open)("f", O_RDONLY);
	show("open two arguments", ro >= 0 ? 0 : -1);
	int dfd = CALL(openat)(AT_FDCWD, ".", O_RDONLY | O_DIRECTORY);
	show("openat three arguments", dfd >= 0 ? 0 : -1);
	show("openat O_CREAT", CALL(close)(CALL(openat)(dfd, "g", O_WRONLY | O_CREAT, 0600)));

	show("pwrite", CALL(pwrite)(fd, "abcdef", 6, 10));
	memset(buf, 0, sizeof buf);
	show("pread", CALL(pread)(ro, buf, sizeof buf, 8));
	printf("pread bytes %02x %02x %c%c\n", buf[0], buf[1], buf[2], buf[7]);

	show("fcntl F_GETFL", CALL(fcntl)(ro, F_GETFL) & O_ACCMODE);
	show("fcntl F_SETFL", CALL(fcntl)(ro, F_SETFL, O_NONBLOCK));
	show("fcntl F_GETFL O_NONBLOCK", (CALL(fcntl)(ro, F_GETFL) & O_NONBLOCK) != 0);
	show("fcntl F_GETFD", CALL(fcntl)(ro, F_GETFD));
	show("fcntl F_SETFD", CALL(fcntl)(ro, F_SETFD, FD_CLOEXEC));
	show("fcntl F_GETFD after", CALL(fcntl)(ro, F_GETFD));
	int d = CALL(fcntl)(ro, F_DUPFD_CLOEXEC, 20);
	show("fcntl F_DUPFD_CLOEXEC >= 20", d >= 20);
	struct flock fl;
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_len = 4;
	show("fcntl F_SETLK", CALL(fcntl)(fd, F_SETLK, &fl));
	fl.l_type = F_RDLCK;
	show("fcntl F_GETLK", CALL(fcntl)(fd, F_GETLK, &fl));
	printf("F_GETLK type %d\n", fl.l_type == F_UNLCK);
	show("fcntl bad command", CALL(fcntl)(fd, 0x7fff));

	int n = -1;
	int p[2];
	show("pipe", CALL(pipe)(p));
	show("write to pipe", CALL(write)(p[1], "xyz", 3));
	show("ioctl FIONREAD", CALL(ioctl)(p[0], FIONREAD, &n));
	printf("FIONREAD %d\n", n);
	show("ioctl unknown", CALL(ioctl)(p[0], 0x12345678, &n));

	show("fstatat", CALL(fstatat)(AT_FDCWD, "f", &st, 0));
	printf("size %lld mode %o\n", (long long)st.st_size, (unsigned)(st.st_mode & 07777));
	show("fstatat AT_SYMLINK_NOFOLLOW missing", CALL(fstatat)(dfd, "nothere", &st, AT_SYMLINK_NOFOLLOW));
	show("faccessat R_OK", CALL(faccessat)(AT_FDCWD, "f", R_OK, 0));
	show("faccessat AT_EACCESS", CALL(faccessat)(AT_FDCWD, "f", W_OK, AT_EACCESS));
	show("faccessat bad flags", CALL(faccessat)(AT_FDCWD, "f", R_OK, 0x40000000));

	show("mkdir", CALL(mkdir)("sub", 0755));
	show("chdir", CALL(chdir)("sub"));
	char *cwd = CALL(getcwd)(buf, sizeof buf);
	show("getcwd returns buf", cwd == buf);
	const char *tail = strrchr(buf, '/');
	printf("getcwd tail %s\n", tail ? tail : "(none)");
	errno = 0;
	char small[2];
	char *none = CALL(getcwd)(small, sizeof small);
	printf("getcwd small %d errno %d\n", none == NULL, errno);
	errno = 0;
	show("chdir ..", CALL(chdir)(".."));

	show("waitpid no children", CALL(waitpid)(-1, NULL, WNOHANG));
	show("umount not a mount point", CALL(umount)("sub"));

	show("close", CALL(close)(fd));
	show("close", CALL(close)(ro));
	show("close", CALL(close)(d));
	show("close", CALL(close)(dfd));
	show("close", CALL(close)(p[0]));
	show("close", CALL(close)(p[1]));
	show("unlink", CALL(unlink)("f"));
	show("unlink", CALL(unlink)("g"));
	show("rmdir", CALL(rmdir)("sub"));
	if (compat_end(dir) != 0)
		return 2;
	return 0;
}
