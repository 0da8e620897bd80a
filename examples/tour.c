/*
 * tour.c: a first look at the rump anykernel.
 *
 * Boots a kernel inside this process, builds a small process tree in it,
 * changes credentials, waits for the children, prints the kernel's
 * message buffer and halts. Everything below is a plain function call.
 */
#include <rump/rump.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void check(int ok, const char *what) {
	if (!ok) {
		fprintf(stderr, "tour: %s failed: %s\n", what, strerror(errno));
		exit(1);
	}
}

int main(void) {
	int error = rump_init();
	if (error) {
		fprintf(stderr, "tour: rump_init: %s\n", strerror(error));
		return 1;
	}
	printf("booted; the calling thread runs as pid %d (init) in implicit context\n",
	    rump_sys_getpid());

	/* A parent process: a child of init, with its own descriptor table. */
	check(rump_lwproc_rfork(RUMP_RFFDG) == 0, "rfork parent");
	struct lwp *parent = rump_lwproc_curlwp();
	pid_t parent_pid = rump_sys_getpid();
	printf("parent: pid %d, ppid %d, uid %d\n", parent_pid, rump_sys_getppid(),
	    rump_sys_getuid());

	/* Three children; each drops privileges and exits with its own code. */
	pid_t kids[3];
	for (int i = 0; i < 3; i++) {
		rump_lwproc_switch(parent);
		check(rump_lwproc_rfork(RUMP_RFFDG) == 0, "rfork child");
		kids[i] = rump_sys_getpid();
		check(rump_sys_setresuid(1000 + i, 1000 + i, 1000 + i) == 0, "setresuid");
		check(rump_sys_setuid(0) == -1 && errno == EPERM, "setuid(0) refused");
		printf("  child %d: pid %d, ppid %d, uid now %d, setuid(0) -> EPERM\n", i,
		    kids[i], rump_sys_getppid(), rump_sys_getuid());
		rump_sys_exit(10 + i); /* the thread goes on in implicit context */
	}

	/* The parent reaps them. */
	rump_lwproc_switch(parent);
	for (int i = 0; i < 3; i++) {
		int status = 0;
		pid_t pid = rump_sys_wait4(-1, &status, 0, NULL);
		check(pid > 0, "wait4");
		printf("parent: reaped pid %d, exit status %d\n", pid, WEXITSTATUS(status));
	}
	check(rump_sys_wait4(-1, NULL, WNOHANG, NULL) == -1 && errno == ECHILD,
	    "wait4 with no children is ECHILD");

	/* A signal: a grandchild is killed and its parent sees WIFSIGNALED. */
	check(rump_lwproc_rfork(RUMP_RFFDG) == 0, "rfork victim");
	pid_t victim = rump_sys_getpid();
	rump_lwproc_switch(parent);
	check(rump_sys_kill(victim, SIGTERM) == 0, "kill");
	int status = 0;
	check(rump_sys_wait4(victim, &status, 0, NULL) == victim, "wait4 victim");
	printf("parent: pid %d was killed by signal %d\n", victim, WTERMSIG(status));

	rump_lwproc_releaselwp(); /* the parent's last LWP: it exits */
	printf("back in implicit context: pid %d\n", rump_sys_getpid());

	char buf[2048];
	rump_msgbuf_read(buf, sizeof buf);
	printf("--- kernel message buffer ---\n%s-----------------------------\n", buf);
	printf("kernel memory in use: %zu bytes\n", rump_kernel_memory_in_use(NULL));

	error = rump_kernel_halt(NULL);
	printf("halted: %s\n", error ? strerror(error) : "ok");
	return error != 0;
}
