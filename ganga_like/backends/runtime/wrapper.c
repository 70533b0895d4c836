/*
 * ganga_like Local wrapper, native build: the same contract as wrapper.sh, at the
 * cost of one exec and a posix_spawn instead of a bash start-up (bash alone costs about
 * 2 ms per subjob on this kind of machine; this wrapper, static, about 0.3 ms).
 *
 * Usage: wrapper [--after] <workdir> <exe> [args...]
 *
 *   * --after (primed): the wrapper first waits for fd 3 (a pidfd of the wrapper
 *     whose slot it takes) to end, then goes on at once: the slot changes hands
 *     without a round trip through the actor. If fd 4 (a pipe from the actor) reads
 *     a byte or its end first (the actor called it off, or is gone), it exits 125
 *     without a line and without running anything; a tie goes to fd 4. A signal
 *     while it waits ends it the same way (the default actions: nothing to forward);
 *   * the payload's cwd is <workdir>/output; stdin /dev/null; stdout and stderr
 *     go to <workdir>/output/stdout and .../stderr (truncated);
 *   * <exe> and the args are an argv vector, never parsed by a shell; an <exe>
 *     without '/' is searched in $PATH for an executable regular file;
 *   * status lines, each one O_APPEND write of at most 4096 bytes, to the status
 *     file opened once (close-on-exec) and kept open until the last line:
 *       RUNNING pid=<payload> wrapper=<this> marker=<$GANGA_LIKE_MARKER>
 *       RUN_DONE exit=0 | RUN_FAILED exit=N [signal=NAME] | KILLED exit=N [signal=NAME]
 *       EXEC_FAILED exit=127 not found: ... | exit=126 not executable: ...
 *                   | exit=126 cannot execute <path>: <errno text> (e.g. a bad ELF)
 *       WRAPPER_ERROR exit=126 <reason>
 *   * TERM, INT and HUP are forwarded to the payload as TERM; the wrapper keeps
 *     waiting until the payload has really ended;
 *   * the job is the payload's whole tree: the wrapper is the subreaper of every
 *     descendant (PR_SET_CHILD_SUBREAPER: those that call setsid or clear their
 *     environment too); once the payload's main process has ended, whatever it left
 *     behind is ended (TERM, a grace period of LEFTOVER_GRACE_MS, KILL) before the
 *     final line, whose note then says " leftovers=N";
 *   * each line starts on a line of its own, whatever the payload wrote to the file;
 *   * exit status: the payload's (128+N for a signal; 127/126 when not run);
 *   * every descriptor above 2 that the starter left open is closed first, so the
 *     starter may use posix_spawn (no close_fds pass) without leaking its sockets
 *     into work that outlives it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define LEFTOVER_GRACE_MS 2000
#define LEFTOVER_GIVE_UP_MS 10000  /* a process in D state: stop trying, say so */

extern char **environ;

static char status_path[4096];
static int status_fd = -1;  /* opened by the first line, kept for the last (O_CLOEXEC) */
static volatile sig_atomic_t got_signal = 0;
static volatile pid_t payload = 0;

static void record(const char *state, const char *note) {
    char line[LINE_MAX_BYTES + 1];
    struct timespec now;
    struct tm local;
    clock_gettime(CLOCK_REALTIME, &now);
    localtime_r(&now.tv_sec, &local);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &local);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%06ld", now.tv_nsec / 1000);
    n += strftime(line + n, sizeof line - n, "%z", &local);
    int more = snprintf(line + n, sizeof line - n, " %s %s", state, note);
    n = (more < 0) ? n : n + (size_t)more;
    if (n > LINE_MAX_BYTES - 1) n = LINE_MAX_BYTES - 1;
    for (size_t i = 0; i < n; i++)
        if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
    line[n++] = '\n';
    if (status_fd < 0) status_fd = open(status_path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    int fd = status_fd;
    if (fd >= 0) {
        /* A payload may have left a partial line (or junk) at the end: start afresh. */
        char last = '\n';
        off_t size = lseek(fd, 0, SEEK_END);
        if (size > 0 && pread(fd, &last, 1, size - 1) == 1 && last != '\n') {
            memmove(line + 1, line, n < LINE_MAX_BYTES ? n : LINE_MAX_BYTES - 1);
            line[0] = '\n';
            n = n < LINE_MAX_BYTES ? n + 1 : LINE_MAX_BYTES;
        }
        ssize_t ignored = write(fd, line, n);
        (void)ignored;
    }
}

static const char *signal_name(int sig) {
    switch (sig) {
    case 1: return "HUP"; case 2: return "INT"; case 3: return "QUIT"; case 4: return "ILL";
    case 5: return "TRAP"; case 6: return "ABRT"; case 7: return "BUS"; case 8: return "FPE";
    case 9: return "KILL"; case 10: return "USR1"; case 11: return "SEGV"; case 12: return "USR2";
    case 13: return "PIPE"; case 14: return "ALRM"; case 15: return "TERM"; case 24: return "XCPU";
    case 25: return "XFSZ"; default: return NULL;
    }
}

static void forward(int sig) {
    (void)sig;
    got_signal = 1;
    if (payload > 0) kill(payload, SIGTERM);
}

static long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

/* The wrapper's children now: the payload's orphans are re-parented here. */
static int own_children(pid_t *out, int max) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    FILE *file = fopen(path, "re");
    int count = 0;
    if (file != NULL) {
        int pid;
        while (count < max && fscanf(file, "%d", &pid) == 1) out[count++] = pid;
        fclose(file);
        return count;
    }
    /* Without /proc/<pid>/task/<tid>/children: scan every process's parent. */
    DIR *dir = opendir("/proc");
    if (dir == NULL) return 0;
    struct dirent *entry;
    pid_t self = getpid();
    while ((entry = readdir(dir)) != NULL && count < max) {
        int pid = atoi(entry->d_name);
        if (pid <= 0) continue;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        FILE *stat = fopen(path, "re");
        if (stat == NULL) continue;
        char buffer[512];
        size_t got = fread(buffer, 1, sizeof buffer - 1, stat);
        fclose(stat);
        buffer[got] = 0;
        char *close_paren = strrchr(buffer, ')');
        int ppid = 0;
        if (close_paren && sscanf(close_paren + 1, " %*c %d", &ppid) == 1 && ppid == self)
            out[count++] = pid;
    }
    closedir(dir);
    return count;
}

/* End what the payload left behind: TERM every descendant (they become our children
 * as their parents end), KILL after the grace period; returns how many there were, or
 * -(that number) when some could not be ended at all. */
static int end_leftovers(void) {
    enum { MAX_SEEN = 4096 };
    static pid_t seen[MAX_SEEN];
    int n_seen = 0;
    long start = now_ms();
    for (;;) {
        int wstatus;
        pid_t reaped;
        while ((reaped = waitpid(-1, &wstatus, WNOHANG)) > 0) {}
        /* No child at all, not even one running: nothing of the tree is left (a
         * descendant whose parent ends is re-parented to us before that parent can be
         * reaped). The common case, answered without reading /proc. */
        if (reaped < 0 && errno == ECHILD) return n_seen;
        pid_t children[1024];
        int count = own_children(children, 1024);
        if (count == 0) return n_seen;
        long elapsed = now_ms() - start;
        if (elapsed > LEFTOVER_GIVE_UP_MS) return -n_seen;
        int sig = elapsed < LEFTOVER_GRACE_MS ? SIGTERM : SIGKILL;
        for (int i = 0; i < count; i++) {
            int known = 0;
            for (int j = 0; j < n_seen; j++) if (seen[j] == children[i]) { known = 1; break; }
            if (!known && n_seen < MAX_SEEN) seen[n_seen++] = children[i];
            if (!known || sig == SIGKILL) {
                kill(children[i], sig);
                if (getpgid(children[i]) == children[i]) kill(-children[i], sig);
            }
        }
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

static int executable_file(const char *path, int *exists) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    *exists = 1;
    return S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Open ``path`` as descriptor ``target`` (0, 1 and 2, in that order): once ``target``
 * is closed it is the lowest free descriptor, so open() lands there and the dup2 and
 * close of an open elsewhere are spared (three system calls per subjob). */
static int open_as(int target, const char *path, int flags) {
    close(target);
    int fd = open(path, flags, 0644);
    if (fd < 0 || fd == target) return fd;
    int moved = dup2(fd, target);
    close(fd);
    return moved;
}

/* A program given as a path that is missing or not an executable file: say which
 * (EXEC_FAILED, exit 127 or 126) and return that code; 0 if it is one. */
static int refused_path(const char *exe) {
    char note[LINE_MAX_BYTES];
    int exists = 0;
    if (executable_file(exe, &exists)) return 0;
    if (!exists) {
        snprintf(note, sizeof note, "exit=127 not found: %s", exe);
        record("EXEC_FAILED", note);
        fprintf(stderr, "ganga_like wrapper: %s: not found\n", exe);
        return 127;
    }
    snprintf(note, sizeof note, "exit=126 not executable: %s", exe);
    record("EXEC_FAILED", note);
    fprintf(stderr, "ganga_like wrapper: %s: not executable\n", exe);
    return 126;
}

/* Close every descriptor above 2: close_range where the kernel has it, else by listing
 * /proc/self/fd (never a loop up to RLIMIT_NOFILE, which may be a million). */
static void close_inherited(unsigned first) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, first, ~0U, 0U) == 0) return;
#endif
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) return;
    int own = dirfd(dir);
    int fds[1024];
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < 1024) {
        int fd = atoi(entry->d_name);
        if (fd >= (int)first && fd != own) fds[count++] = fd;
    }
    closedir(dir);
    for (int i = 0; i < count; i++) close(fds[i]);
}

/* Primed (--after): wait until the subjob whose slot this one takes has ended (fd 3, a
 * pidfd of its wrapper), unless the actor calls it off first (fd 4: a byte, or the end of
 * the pipe when the actor is gone). 1: go on; 0: end without running. */
static int wait_for_slot(void) {
    struct pollfd fds[2] = {{.fd = 3, .events = POLLIN}, {.fd = 4, .events = POLLIN}};
    for (;;) {
        int n = poll(fds, 2, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return 0;
        if (fds[1].revents) return 0;  /* called off: checked first, it wins a tie */
        if (fds[0].revents) break;
    }
    close(3);
    close(4);
    return 1;
}

int main(int argc, char **argv) {
    char note[LINE_MAX_BYTES];
    int primed = argc > 1 && strcmp(argv[1], "--after") == 0;
    if (primed) {
        argv++;
        argc--;
    }
    close_inherited(primed ? 5U : 3U);
    /* Orphans of the payload's tree come to us, whatever session or group they chose. */
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: %s [--after] <workdir> <exe> [args...]\n", argv[0]);
        return 126;
    }
    /* Before anything is written: a wrapper called off leaves its directory as it was. */
    if (primed && !wait_for_slot()) return 125;
    snprintf(status_path, sizeof status_path, "%s/status", argv[1]);
    char out_dir[4096];
    snprintf(out_dir, sizeof out_dir, "%s/output", argv[1]);
    const char *exe = argv[2];

    if (chdir(out_dir) != 0) {
        snprintf(note, sizeof note, "exit=126 cannot enter output directory %s", out_dir);
        record("WRAPPER_ERROR", note);
        return 126;
    }
    /* Modes through the umask: the service's keeps them private (077) unless it was
     * asked to open outputs to a group (027). */
    if (open_as(0, "/dev/null", O_RDONLY) < 0 || open_as(1, "stdout", O_WRONLY | O_CREAT | O_TRUNC) < 0
        || open_as(2, "stderr", O_WRONLY | O_CREAT | O_TRUNC) < 0) {
        snprintf(note, sizeof note, "exit=126 cannot open stdout/stderr in %s", out_dir);
        record("WRAPPER_ERROR", note);
        return 126;
    }

    /* Resolve the program: a path as given, or the first executable file in $PATH. */
    char path[4096];
    if (strchr(exe, '/')) {
        /* Checked only if it cannot be run (refused_path): two syscalls fewer per subjob. */
        snprintf(path, sizeof path, "%s", exe);
    } else {
        const char *search = getenv("PATH");
        char seen[4096] = "";
        int found = 0;
        if (search) {
            const char *start = search;
            while (!found) {
                const char *end = strchr(start, ':');
                size_t len = end ? (size_t)(end - start) : strlen(start);
                snprintf(path, sizeof path, "%.*s/%s", (int)len, len ? start : ".", exe);
                int here = 0;
                if (executable_file(path, &here)) found = 1;
                else if (here && !seen[0]) snprintf(seen, sizeof seen, "%s", path);
                if (!end) break;
                start = end + 1;
            }
        }
        if (!found) {
            if (seen[0]) {
                snprintf(note, sizeof note, "exit=126 not executable: %s", seen);
                record("EXEC_FAILED", note);
                fprintf(stderr, "ganga_like wrapper: %s: not executable\n", seen);
                return 126;
            }
            snprintf(note, sizeof note, "exit=127 not found in PATH: %s (PATH=%s)", exe,
                     search ? search : "");
            record("EXEC_FAILED", note);
            fprintf(stderr, "ganga_like wrapper: %s: not found in PATH\n", exe);
            return 127;
        }
    }

    /* Signals that arrive before the payload exists wait until it does. */
    sigset_t forwarded, previous;
    sigemptyset(&forwarded);
    sigaddset(&forwarded, SIGTERM);
    sigaddset(&forwarded, SIGINT);
    sigaddset(&forwarded, SIGHUP);
    sigprocmask(SIG_BLOCK, &forwarded, &previous);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = forward;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGHUP, &action, NULL);

    /* posix_spawn: a vfork-style start (no copy of this process's page tables),
     * with TERM/INT/HUP back to their defaults and the mask restored in the payload;
     * an exec that fails is reported here, with its errno, rather than by a child. */
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setsigdefault(&attributes, &forwarded);
    posix_spawnattr_setsigmask(&attributes, &previous);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    argv[2] = path;
    pid_t child = 0;
    int failure = posix_spawn(&child, path, NULL, &attributes, argv + 2, environ);
    posix_spawnattr_destroy(&attributes);
    if (failure != 0) {
        int refused = strchr(exe, '/') ? refused_path(exe) : 0;
        if (refused) return refused;
        int code = failure == ENOENT ? 127 : 126;
        snprintf(note, sizeof note, "exit=%d cannot execute %s: %s", code, path, strerror(failure));
        record("EXEC_FAILED", note);
        fprintf(stderr, "ganga_like wrapper: cannot execute %s: %s\n", path, strerror(failure));
        return code;
    }
    payload = child;
    snprintf(note, sizeof note, "pid=%d wrapper=%d marker=%s", (int)child, (int)getpid(),
             getenv("GANGA_LIKE_MARKER") ? getenv("GANGA_LIKE_MARKER") : "");
    record("RUNNING", note);
    sigprocmask(SIG_SETMASK, &previous, NULL);

    int wstatus = 0;
    while (waitpid(child, &wstatus, 0) < 0) {
        if (errno != EINTR) {
            wstatus = 0;
            break;
        }
    }
    int rc = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
             : WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : 0;
    int killed = got_signal;
    /* The payload's main process has ended: so has the job. Our own TERM handler must
     * not take the leftovers' ending for a kill of the job. */
    signal(SIGTERM, SIG_IGN);
    int leftovers = end_leftovers();
    int n = snprintf(note, sizeof note, "exit=%d", rc);
    if (rc > 128 && rc <= 192) {
        const char *name = signal_name(rc - 128);
        if (name) n += snprintf(note + n, sizeof note - (size_t)n, " signal=%s", name);
        else n += snprintf(note + n, sizeof note - (size_t)n, " signal=%d", rc - 128);
    }
    if (leftovers > 0)
        snprintf(note + n, sizeof note - (size_t)n, " leftovers=%d (ended)", leftovers);
    else if (leftovers < 0)
        snprintf(note + n, sizeof note - (size_t)n, " leftovers=%d (some would not end)", -leftovers);
    record(killed ? "KILLED" : rc == 0 ? "RUN_DONE" : "RUN_FAILED", note);
    return rc;
}
