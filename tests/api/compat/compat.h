/*
 * What the compat programs share. Each is built twice with only the
 * prefix changed: CALL(open) is open on the host and rump_sys_open in the
 * kernel. show() prints one line per call (result and errno), so the two
 * transcripts compare line by line. compat_begin() boots the kernel, or on
 * the host enters a fresh directory under /tmp; compat_end() removes it.
 */
#ifndef COMPAT_H
#define COMPAT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef COMPAT_RUMP
#include <rump/rump.h>
#define CALL(name) rump_sys_##name
#else
#define CALL(name) name
#endif

static void show(const char *what, long r) {
	printf("%s = %ld errno %d\n", what, r < 0 ? -1L : r, r < 0 ? errno : 0);
	errno = 0;
}

/* dir: a mkdtemp template, used on the host only. 0 on success. */
static int compat_begin(char *dir) {
#ifdef COMPAT_RUMP
	(void)dir;
	return rump_init() != 0;
#else
	return !mkdtemp(dir) || chdir(dir) != 0;
#endif
}

static int compat_end(const char *dir) {
#ifdef COMPAT_RUMP
	(void)dir;
	return 0;
#else
	return chdir("/") != 0 || rmdir(dir) != 0;
#endif
}

#endif
