/* codecorpus sandbox launcher: join cgroups, set rlimits, drop to a uid, exec.
 *
 * The bwrap backend starts every step through this one small exec instead of a Python
 * preexec_fn (which forbids vfork and costs ~15 ms in a large process) or a chain of
 * sh + prlimit + setpriv (three execs). Compiled once per machine by sandbox/backends/bwrap.py.
 *
 * usage: launcher N_CGROUP_FILES FILE... N_RLIMITS RES:SOFT:HARD... UID GID -- PROGRAM ARGS...
 *        (UID -1: keep the current uid)
 * Exit 125 when a step before exec fails (message on stderr), 127 when exec fails.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int fail(const char *what, const char *arg) {
    fprintf(stderr, "codecorpus-launcher: %s %s: ", what, arg ? arg : "");
    perror("");
    return 125;
}

int main(int argc, char **argv) {
    int i = 1;
    if (argc < 6) return fail("usage", "N FILE... N RES:SOFT:HARD... UID GID -- PROGRAM ARGS...");
    int ncg = atoi(argv[i++]);
    for (int k = 0; k < ncg && i < argc; k++, i++) {
        int fd = open(argv[i], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) return fail("cannot join cgroup", argv[i]);
        close(fd);
    }
    int nrl = i < argc ? atoi(argv[i++]) : 0;
    for (int k = 0; k < nrl && i < argc; k++, i++) {
        int res;
        unsigned long long soft, hard;
        if (sscanf(argv[i], "%d:%llu:%llu", &res, &soft, &hard) != 3) return fail("bad rlimit", argv[i]);
        struct rlimit rl = {(rlim_t)soft, (rlim_t)hard};
        if (setrlimit(res, &rl) != 0) return fail("setrlimit", argv[i]);
    }
    if (i + 3 > argc) return fail("usage", "missing UID GID --");
    long uid = atol(argv[i++]);
    long gid = atol(argv[i++]);
    if (uid >= 0) {
        if (setgroups(0, NULL) != 0) return fail("setgroups", NULL);
        if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0) return fail("setresgid", argv[i - 1]);
        if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) return fail("setresuid", argv[i - 2]);
    }
    if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) return fail("usage", "missing -- PROGRAM");
    i++;
    execv(argv[i], argv + i);
    fail("exec", argv[i]);
    return 127;
}
