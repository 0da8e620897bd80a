/*
 * The process and file calls Linux added late, written against plain
 * libc and built twice with only the prefix changed (CALL(memfd_create) is
 * memfd_create on the host and rump_sys_memfd_create in the kernel): a
 * sealed memfd, a pidfd of the program itself, getcpu with libc's two
 * arguments, personality, mlockall, and a file handle's size negotiation.
 * Both print one line per call; the test compares the two transcripts.
 * Compiled as C and as C++ with -Wall -Werror.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
/* glibc 2.36's <sys/pidfd.h> has no C++ linkage markers of its own. */
#ifdef __cplusplus
extern "C" {
#endif
#include <sys/pidfd.h>
#ifdef __cplusplus
}
#endif
#include <sys/stat.h>
#include <unistd.h>

#include "compat.h"

#ifndef COMPAT_RUMP
#include <sys/syscall.h>
/* The sanitizers' runtime replaces libc's mlockall and munlockall with
 * stubs that return 0 and lock nothing, so the host side asks the host
 * kernel directly. */
static int host_mlockall(int flags) { return (int)syscall(SYS_mlockall, flags); }
static int host_munlockall(void) { return (int)syscall(SYS_munlockall); }
#define MLOCKALL host_mlockall
#define MUNLOCKALL host_munlockall
#else
#define MLOCKALL CALL(mlockall)
#define MUNLOCKALL CALL(munlockall)
#endif

int main(void) {
	char dir[] = "/tmp/compat_procXXXXXX";
	if (compat_begin(dir) != 0)
		return 2;
	int m = CALL(memfd_create)("compat", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	show("memfd_create", m >= 0 ? 0 : -1);
	show("write", CALL(write)(m, "sealed", 6));
	show("F_ADD_SEALS grow|shrink", CALL(fcntl)(m, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK));
	show("F_GET_SEALS", CALL(fcntl)(m, F_GET_SEALS));
	show("ftruncate grow", CALL(ftruncate)(m, 4096));
	show("pwrite past the end", CALL(pwrite)(m, "x", 1, 6));
	show("pwrite inside", CALL(pwrite)(m, "S", 1, 0));
	char buf[16] = {0};
	show("pread", CALL(pread)(m, buf, sizeof buf, 0));
	printf("contents %s\n", buf);
	show("memfd_create bad flags", CALL(memfd_create)("x", 0x1000));

	int p = CALL(pidfd_open)(CALL(getpid)(), 0);
	show("pidfd_open self", p >= 0 ? 0 : -1);
	show("pidfd_send_signal 0", CALL(pidfd_send_signal)(p, 0, NULL, 0));
	show("pidfd_send_signal bad flags", CALL(pidfd_send_signal)(p, 0, NULL, 0x100));
	int g = CALL(pidfd_getfd)(p, m, 0);
	show("pidfd_getfd own memfd", g >= 0 ? 0 : -1);
	show("F_GET_SEALS through it", CALL(fcntl)(g, F_GET_SEALS));
	show("pidfd_open bad flags", CALL(pidfd_open)(CALL(getpid)(), 1));

	unsigned cpu = 99999, node = 99999;
	show("getcpu", CALL(getcpu)(&cpu, &node));
	printf("cpu set %d node %u\n", cpu != 99999, node);
	show("personality query", CALL(personality)(0xffffffff));
	show("mlockall bad flags", MLOCKALL(MCL_ONFAULT));
	show("mlockall future", MLOCKALL(MCL_FUTURE));
	show("munlockall", MUNLOCKALL());

	int f = CALL(open)("f", O_RDWR | O_CREAT, 0600);
	show("open", f >= 0 ? 0 : -1);
	struct file_handle *fh = (struct file_handle *)malloc(sizeof *fh + 128);
	int mount_id = -1;
	fh->handle_bytes = 0;
	show("name_to_handle_at size 0", CALL(name_to_handle_at)(AT_FDCWD, "f", fh, &mount_id, 0));
	printf("size given %d\n", fh->handle_bytes > 0);
	show("name_to_handle_at missing", CALL(name_to_handle_at)(AT_FDCWD, "nothere", fh, &mount_id, 0));
	free(fh);

	show("close", CALL(close)(f));
	show("unlink", CALL(unlink)("f"));
	show("close", CALL(close)(g));
	show("close", CALL(close)(p));
	show("close", CALL(close)(m));
	if (compat_end(dir) != 0)
		return 2;
	return 0;
}
