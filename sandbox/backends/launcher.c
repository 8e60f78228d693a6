/* codecorpus sandbox launcher: join cgroups, set rlimits, drop to a uid, exec.
 *
 * The bwrap backend starts every step through this one small exec instead of a Python
 * preexec_fn (which forbids vfork and costs ~15 ms in a large process) or a chain of
 * sh + prlimit + setpriv (three execs). Compiled once per machine by sandbox/backends/bwrap.py
 * (the binary's name carries a hash of this source, so an edit rebuilds it).
 *
 * usage: launcher N_CGROUP_FILES FILE... N_RLIMITS RES:SOFT:HARD... UID GID SEP PROGRAM ARGS...
 *        (UID -1: keep the current uid)
 * SEP "--": apply the settings to this process and exec PROGRAM.
 * SEP "--reap": stay behind as a child subreaper (in the caller's cgroup, with the caller's uid
 *        and limits) and fork; the child applies the settings and execs PROGRAM. The parent
 *        reaps every descendant that gets orphaned (bwrap's inner init when bwrap is killed),
 *        so none is left as a zombie for a PID 1 that never reaps, and exits only when none
 *        is left, with PROGRAM's status: the same exit code, or killed by the same signal.
 *        SIGTERM, SIGINT or SIGHUP to the parent SIGKILLs PROGRAM (and so, through bwrap's
 *        --die-with-parent, the whole sandbox); so does the parent's parent dying. SIGKILL
 *        the parent only as a last resort: orphans would then go to PID 1 again.
 * Exit 125 when a step before exec fails (message on stderr), 127 when exec fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PR_SET_CHILD_SUBREAPER
#define PR_SET_CHILD_SUBREAPER 36
#endif

static int fail(const char *what, const char *arg) {
    fprintf(stderr, "codecorpus-launcher: %s %s: ", what, arg ? arg : "");
    perror("");
    return 125;
}

/* Join the cgroups, set the rlimits, drop to uid/gid; 0 or 125 (message printed). */
static int apply(char **cg, int ncg, char **rls, int nrl, long uid, long gid, char **argv_uid) {
    for (int k = 0; k < ncg; k++) {
        int fd = open(cg[k], O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1) return fail("cannot join cgroup", cg[k]);
        close(fd);
    }
    for (int k = 0; k < nrl; k++) {
        int res;
        unsigned long long soft, hard;
        if (sscanf(rls[k], "%d:%llu:%llu", &res, &soft, &hard) != 3) return fail("bad rlimit", rls[k]);
        struct rlimit rl = {(rlim_t)soft, (rlim_t)hard};
        if (setrlimit(res, &rl) != 0) return fail("setrlimit", rls[k]);
    }
    if (uid >= 0) {
        if (setgroups(0, NULL) != 0) return fail("setgroups", NULL);
        if (setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) != 0) return fail("setresgid", argv_uid[1]);
        if (setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) != 0) return fail("setresuid", argv_uid[0]);
    }
    return 0;
}

static volatile sig_atomic_t child_pid = 0, kill_pending = 0;

static void on_stop(int sig) {
    (void)sig;
    kill_pending = 1;
    if (child_pid > 0) kill(child_pid, SIGKILL);
}

static void close_from(int lo) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lo, ~0U, 0) == 0) return;
#endif
    long hi = sysconf(_SC_OPEN_MAX);
    if (hi < 0 || hi > 65536) hi = 65536;
    for (int fd = lo; fd < hi; fd++) close(fd);
}

static int reap_and_run(char **cg, int ncg, char **rls, int nrl, long uid, long gid, char **argv_uid, char **prog) {
    static const int stops[] = {SIGTERM, SIGINT, SIGHUP};
    sigset_t block, old;
    sigemptyset(&block);
    for (unsigned k = 0; k < sizeof stops / sizeof *stops; k++) sigaddset(&block, stops[k]);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;  /* no SA_RESTART: waitpid returns EINTR, the loop goes on */
    sigemptyset(&sa.sa_mask);
    for (unsigned k = 0; k < sizeof stops / sizeof *stops; k++) sigaction(stops[k], &sa, NULL);
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);  /* the host gone: stop the sandbox, reap, exit */
    if (getppid() != parent) kill_pending = 1;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return fail("cannot become a child subreaper", NULL);
    pid_t pid = fork();
    if (pid < 0) return fail("fork", NULL);
    if (pid == 0) {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        for (unsigned k = 0; k < sizeof stops / sizeof *stops; k++) sigaction(stops[k], &dfl, NULL);
        prctl(PR_SET_PDEATHSIG, 0);
        sigprocmask(SIG_SETMASK, &old, NULL);
        int rc = apply(cg, ncg, rls, nrl, uid, gid, argv_uid);
        if (rc != 0) _exit(rc);
        execv(prog[0], prog);
        fail("exec", prog[0]);
        _exit(127);
    }
    child_pid = pid;
    /* Hold none of the step's pipes or fds: the caller sees EOF when the sandbox is gone. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    close_from(3);
    if (kill_pending) kill(pid, SIGKILL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    int status = 0, have = 0;
    for (;;) {
        int st;
        pid_t w = waitpid(-1, &st, __WALL);
        if (w < 0) {
            if (errno == EINTR) continue;
            break;  /* ECHILD: no descendant left */
        }
        if (w == pid) {
            status = st;
            have = 1;
            child_pid = 0;
        }
    }
    if (!have) return 125;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    return 128 + sig;  /* a signal whose default is to ignore */
}

int main(int argc, char **argv) {
    int i = 1;
    if (argc < 6) return fail("usage", "N FILE... N RES:SOFT:HARD... UID GID -- PROGRAM ARGS...");
    int ncg = atoi(argv[i++]);
    if (ncg < 0 || ncg > argc - i) return fail("usage", "bad cgroup count");
    char **cg = argv + i;
    i += ncg;
    int nrl = i < argc ? atoi(argv[i++]) : 0;
    if (nrl < 0 || nrl > argc - i) return fail("usage", "bad rlimit count");
    char **rls = argv + i;
    i += nrl;
    if (i + 3 > argc) return fail("usage", "missing UID GID --");
    char **argv_uid = argv + i;
    long uid = atol(argv[i++]);
    long gid = atol(argv[i++]);
    int reap;
    if (i < argc && strcmp(argv[i], "--") == 0) reap = 0;
    else if (i < argc && strcmp(argv[i], "--reap") == 0) reap = 1;
    else return fail("usage", "missing -- PROGRAM");
    i++;
    if (i >= argc) return fail("usage", "missing PROGRAM");
    if (reap) return reap_and_run(cg, ncg, rls, nrl, uid, gid, argv_uid, argv + i);
    int rc = apply(cg, ncg, rls, nrl, uid, gid, argv_uid);
    if (rc != 0) return rc;
    execv(argv[i], argv + i);
    fail("exec", argv[i]);
    return 127;
}
