/*
 * A program written against NetBSD's rump API as its manual pages show it:
 * <rump/rump.h> alone brings the etfs and lwproc interfaces
 * (rump_pub_etfs_register, rump_pub_lwproc_*), and the rump_sys_* calls
 * take libc's forms. Compiled as C and as C++ with -Wall -Werror; exits 0
 * when every call behaves as on NetBSD.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rump/rump.h>

#define EXPECT(cond)                                                   \
	do {                                                           \
		if (!(cond)) {                                         \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
			return 1;                                      \
		}                                                      \
	} while (0)

int main(void) {
	char host[] = "/tmp/compat_rumpXXXXXX";
	int hfd = mkstemp(host);
	EXPECT(hfd >= 0);
	EXPECT(write(hfd, "hello", 5) == 5);
	close(hfd);

	EXPECT(rump_init() == 0);
	EXPECT(rump_pub_etfs_register("/hostfile", host, RUMP_ETFS_REG) == 0);
	int fd = rump_sys_open("/hostfile", O_RDONLY);
	EXPECT(fd >= 0);
	char buf[8] = {0};
	EXPECT(rump_sys_pread(fd, buf, 5, 0) == 5);
	EXPECT(memcmp(buf, "hello", 5) == 0);
	EXPECT(rump_sys_close(fd) == 0);
	EXPECT(rump_pub_etfs_remove("/hostfile") == 0);
	EXPECT(rump_pub_etfs_remove("/hostfile") == ENOENT);

	EXPECT(rump_pub_lwproc_curlwp() == NULL);
	EXPECT(rump_pub_lwproc_rfork(RUMP_RFFDG) == 0);
	struct lwp *child = rump_pub_lwproc_curlwp();
	EXPECT(child != NULL);
	pid_t pid = rump_sys_getpid();
	EXPECT(pid > 1);
	EXPECT(rump_pub_lwproc_newlwp(pid) == 0);
	struct lwp *second = rump_pub_lwproc_curlwp();
	EXPECT(second != NULL && second != child);
	EXPECT(rump_sys_getpid() == pid);
	rump_pub_lwproc_releaselwp();
	rump_pub_lwproc_switch(child);
	EXPECT(rump_pub_lwproc_curlwp() == child);
	rump_pub_lwproc_releaselwp();
	EXPECT(rump_pub_lwproc_curlwp() == NULL);

	unlink(host);
	return 0;
}
