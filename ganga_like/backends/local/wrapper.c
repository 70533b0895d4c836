/*
 * ganga_like Local wrapper, native build: the same contract as wrapper.sh, at the
 * cost of one exec and a posix_spawn instead of a bash start-up (bash alone costs about
 * 2 ms per subjob on this kind of machine; this wrapper, static, about 0.3 ms).
 *
 * Usage: wrapper <workdir> <exe> [args...]
 *
 *   * the payload's cwd is <workdir>/output; stdin /dev/null; stdout and stderr
 *     go to <workdir>/output/stdout and .../stderr (truncated);
 *   * <exe> and the args are an argv vector, never parsed by a shell; an <exe>
 *     without '/' is searched in $PATH for an executable regular file;
 *   * status lines, each one O_APPEND write of at most 4096 bytes:
 *       RUNNING pid=<payload> wrapper=<this> marker=<$GANGA_LIKE_MARKER>
 *       RUN_DONE exit=0 | RUN_FAILED exit=N [signal=NAME] | KILLED exit=N [signal=NAME]
 *       EXEC_FAILED exit=127 not found: ... | exit=126 not executable: ...
 *                   | exit=126 cannot execute <path>: <errno text> (e.g. a bad ELF)
 *       WRAPPER_ERROR exit=126 <reason>
 *   * TERM, INT and HUP are forwarded to the payload as TERM; the wrapper keeps
 *     waiting until the payload has really ended;
 *   * exit status: the payload's (128+N for a signal; 127/126 when not run);
 *   * every descriptor above 2 that the starter left open is closed first, so the
 *     starter may use posix_spawn (no close_fds pass) without leaking its sockets
 *     into work that outlives it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

extern char **environ;

static char status_path[4096];
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
    int fd = open(status_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t ignored = write(fd, line, n);
        (void)ignored;
        close(fd);
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

static int executable_file(const char *path, int *exists) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    *exists = 1;
    return S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Close every descriptor above 2: close_range where the kernel has it, else by listing
 * /proc/self/fd (never a loop up to RLIMIT_NOFILE, which may be a million). */
static void close_inherited(void) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
#endif
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) return;
    int own = dirfd(dir);
    int fds[1024];
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL && count < 1024) {
        int fd = atoi(entry->d_name);
        if (fd > 2 && fd != own) fds[count++] = fd;
    }
    closedir(dir);
    for (int i = 0; i < count; i++) close(fds[i]);
}

int main(int argc, char **argv) {
    char note[LINE_MAX_BYTES];
    close_inherited();
    if (argc < 3) {
        fprintf(stderr, "usage: %s <workdir> <exe> [args...]\n", argv[0]);
        return 126;
    }
    snprintf(status_path, sizeof status_path, "%s/status", argv[1]);
    char out_dir[4096];
    snprintf(out_dir, sizeof out_dir, "%s/output", argv[1]);
    const char *exe = argv[2];

    if (chdir(out_dir) != 0) {
        snprintf(note, sizeof note, "exit=126 cannot enter output directory %s", out_dir);
        record("WRAPPER_ERROR", note);
        return 126;
    }
    int in = open("/dev/null", O_RDONLY);
    int out = open("stdout", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open("stderr", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) {
        snprintf(note, sizeof note, "exit=126 cannot open stdout/stderr in %s", out_dir);
        record("WRAPPER_ERROR", note);
        return 126;
    }
    close(in); close(out); close(err);

    /* Resolve the program: a path as given, or the first executable file in $PATH. */
    char path[4096];
    int exists = 0;
    if (strchr(exe, '/')) {
        snprintf(path, sizeof path, "%s", exe);
        if (!executable_file(path, &exists)) {
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
    int n = snprintf(note, sizeof note, "exit=%d", rc);
    if (rc > 128 && rc <= 192) {
        const char *name = signal_name(rc - 128);
        if (name) snprintf(note + n, sizeof note - (size_t)n, " signal=%s", name);
        else snprintf(note + n, sizeof note - (size_t)n, " signal=%d", rc - 128);
    }
    record(got_signal ? "KILLED" : rc == 0 ? "RUN_DONE" : "RUN_FAILED", note);
    return rc;
}
