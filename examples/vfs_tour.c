/*
 * vfs_tour.c: files, pipes and host files in a rump kernel.
 *
 * Builds a small tree in the root tmpfs, exposes a host temp file inside
 * the kernel with etfs, pipes data between two rump processes that share
 * one descriptor table (a writer on this thread, a reader on another), and
 * lists the tree with getdents64. The console (fd 1 of init) prints to
 * this program's stdout.
 */
#define _GNU_SOURCE
#include <rump/rump.h>
#include <rump/rump_syscalls.h>
#include <rump/rumpvfs.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void check(int ok, const char *what) {
	if (!ok) {
		fprintf(stderr, "vfs_tour: %s failed: %s\n", what, strerror(errno));
		exit(1);
	}
}

struct linux_dirent64 {
	unsigned long long d_ino;
	long long d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

static void list(const char *path, int depth) {
	int fd = rump_sys_open(path, O_RDONLY | O_DIRECTORY, 0);
	check(fd >= 0, "open dir");
	char buf[4096];
	long n;
	while ((n = rump_sys_getdents64(fd, buf, sizeof buf)) > 0) {
		for (long off = 0; off < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
			off += d->d_reclen;
			if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
				continue;
			char child[512];
			snprintf(child, sizeof child, "%s/%s", strcmp(path, "/") ? path : "", d->d_name);
			struct stat st;
			check(rump_sys_lstat(child, &st) == 0, "lstat");
			printf("%*s%s%s  (%lld bytes)\n", depth * 2, "", d->d_name,
			    S_ISDIR(st.st_mode) ? "/" : "", (long long)st.st_size);
			if (S_ISDIR(st.st_mode) && depth < 3)
				list(child, depth + 1);
		}
	}
	rump_sys_close(fd);
}

static int pipefd[2];
static struct lwp *reader_lwp;
static struct rump_kernel *kernel;

static void *reader(void *arg) {
	(void)arg;
	rump_kernel_set_current(kernel);
	rump_lwproc_switch(reader_lwp);
	char buf[128];
	long n, total = 0;
	while ((n = rump_sys_read(pipefd[0], buf, sizeof buf - 1)) > 0) {
		buf[n] = '\0';
		printf("reader (pid %d) got: %s", rump_sys_getpid(), buf);
		total += n;
	}
	printf("reader: end of file after %ld bytes\n", total);
	rump_lwproc_switch(NULL);
	return NULL;
}

int main(void) {
	int error = rump_init();
	if (error) {
		fprintf(stderr, "vfs_tour: rump_init: %s\n", strerror(error));
		return 1;
	}
	kernel = rump_kernel_current();
	fflush(stdout);
	rump_sys_write(1, "hello from the rump console (init's fd 1)\n", 42);

	/* A small tree in tmpfs. */
	check(rump_sys_mkdir("/home", 0755) == 0, "mkdir /home");
	check(rump_sys_mkdir("/home/user", 0755) == 0, "mkdir /home/user");
	int fd = rump_sys_open("/home/user/notes.txt", O_CREAT | O_WRONLY, 0644);
	check(fd >= 0, "create notes.txt");
	check(rump_sys_write(fd, "tmpfs lives in kernel memory\n", 29) == 29, "write notes");
	rump_sys_close(fd);
	check(rump_sys_symlink("user/notes.txt", "/home/notes") == 0, "symlink");

	/* A host file inside the kernel: etfs. */
	char hostpath[] = "/tmp/vfs_tourXXXXXX";
	int hfd = mkstemp(hostpath);
	check(hfd >= 0, "mkstemp");
	const char *hosttext = "this line lives in a host file\n";
	check(write(hfd, hosttext, strlen(hosttext)) == (ssize_t)strlen(hosttext), "host write");
	error = rump_pub_etfs_register("/host/data.txt", hostpath, RUMP_ETFS_REG);
	if (error) {
		fprintf(stderr, "vfs_tour: etfs: %s\n", strerror(error));
		return 1;
	}
	fd = rump_sys_open("/host/data.txt", O_RDWR, 0);
	check(fd >= 0, "open etfs file");
	char buf[128] = {0};
	check(rump_sys_read(fd, buf, sizeof buf - 1) > 0, "read etfs file");
	printf("etfs /host/data.txt says: %s", buf);
	check(rump_sys_write(fd, "appended from the kernel\n", 25) == 25, "write etfs file");
	rump_sys_close(fd);
	memset(buf, 0, sizeof buf);
	check(pread(hfd, buf, sizeof buf - 1, 0) > 0, "host pread");
	printf("the host file now holds:\n%s", buf);

	/* Two processes sharing one descriptor table: writer and reader. */
	check(rump_lwproc_rfork(RUMP_RFFDG) == 0, "rfork parent");
	struct lwp *parent = rump_lwproc_curlwp();
	check(rump_sys_pipe(pipefd) == 0, "pipe");
	check(rump_lwproc_rfork(0) == 0, "rfork reader");  /* shares the table */
	reader_lwp = rump_lwproc_curlwp();
	pid_t reader_pid = rump_sys_getpid();
	rump_lwproc_switch(parent);
	check(rump_lwproc_rfork(0) == 0, "rfork writer");
	pid_t writer_pid = rump_sys_getpid();
	pthread_t t;
	check(pthread_create(&t, NULL, reader, NULL) == 0, "pthread_create");
	for (int i = 0; i < 3; i++) {
		char msg[64];
		int len = snprintf(msg, sizeof msg, "message %d from writer pid %d\n", i, writer_pid);
		check(rump_sys_write(pipefd[1], msg, len) == len, "pipe write");
	}
	/* The table is shared: this close is the last writer's. */
	check(rump_sys_close(pipefd[1]) == 0, "close write end");
	pthread_join(t, NULL);
	rump_sys_exit(0);
	rump_lwproc_switch(parent);
	int st;
	check(rump_sys_wait4(writer_pid, &st, 0, NULL) == writer_pid, "wait writer");
	rump_lwproc_switch(reader_lwp);
	rump_sys_exit(0);
	rump_lwproc_switch(parent);
	check(rump_sys_wait4(reader_pid, &st, 0, NULL) == reader_pid, "wait reader");
	rump_lwproc_releaselwp();

	printf("the tree:\n");
	list("/", 1);

	check(rump_pub_etfs_remove("/host/data.txt") == 0, "etfs remove");
	close(hfd);
	unlink(hostpath);
	rump_kernel_halt(NULL);
	return 0;
}
