/*
 * ganga_like Local launcher: spawns the Local actor's wrappers for it, so that the
 * actor's watcher does not wait for each wrapper's exec (a third of its time when it
 * spawned them itself: CPython holds the GIL through posix_spawn, and the parent of a
 * vfork waits until the child has exec'd).
 *
 * Usage: launcher   (fd 3: one end of a SOCK_SEQPACKET socketpair; the actor holds the other)
 *
 * Each wrapper is made with clone(CLONE_PARENT): it is the *actor's* child, not the
 * launcher's. The actor reaps it, reads its exit status and may open a pidfd on its pid
 * knowing that the pid cannot be reused before it reaps it: everything the actor does
 * with a wrapper it spawned itself holds for one spawned here.
 *
 * Request (one message):
 *     struct request { uint64 id; uint32 flags; uint32 argc; uint32 envc; uint32 size; }
 *     followed by `size` bytes: argc then envc NUL-terminated strings;
 *     flags & 1 (a follower): two descriptors come with it (SCM_RIGHTS), which the
 *     wrapper gets as fd 3 (its leader's pidfd) and fd 4 (its call-off pipe).
 * Reply (one message per request, in order):
 *     struct reply { uint64 id; int32 pid; int32 error; int64 before_ns; int64 after_ns; }
 *     pid > 0: the wrapper has exec'd (the launcher waits for that, as a vfork); error: the errno of what
 *     failed (clone, or the exec: the child is then a zombie of the actor's, pid given);
 *     before_ns and after_ns: CLOCK_BOOTTIME around the clone (the kernel stamps the
 *     child with that clock: the actor knows its start time without reading /proc).
 *
 * Faults:
 *   * the actor gone (its end closed: EOF, or HUP seen before a spawn): the launcher
 *     exits at once and starts nothing more, even for requests still queued;
 *   * the launcher gone: the actor's end hangs up; the actor finds what it had asked
 *     for by its marker (a wrapper made is its own child) and spawns the rest itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define MAX_MESSAGE (1 << 20)  /* the actor spawns larger requests itself */
#define FOLLOWER 1u
#define SOCKET_FD 100  /* moved out of the way of fds 3 and 4, which a follower gets */

struct request {
    uint64_t id;
    uint32_t flags;
    uint32_t argc;
    uint32_t envc;
    uint32_t size;
};

struct reply {
    uint64_t id;
    int32_t pid;
    int32_t error;
    int64_t before_ns;
    int64_t after_ns;
};

static char message[sizeof(struct request) + MAX_MESSAGE + 1];

static int64_t boot_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_BOOTTIME, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* The actor has closed its end: nothing more is to be started. */
static int actor_gone(int sock) {
    struct pollfd fd = {.fd = sock, .events = POLLIN};
    return poll(&fd, 1, 0) > 0 && (fd.revents & (POLLHUP | POLLERR));
}

static void answer(int sock, const struct reply *reply) {
    while (send(sock, reply, sizeof *reply, MSG_NOSIGNAL) < 0) {
        if (errno != EINTR) _exit(0);  /* the actor is gone */
    }
}

/* Split `size` bytes of NUL-terminated strings into `count` pointers (NULL-terminated
 * vector); 0 if the bytes do not hold that many strings. */
static int split(char *bytes, size_t size, char **vector, uint32_t count, size_t *used) {
    size_t at = *used;
    for (uint32_t i = 0; i < count; i++) {
        char *end = memchr(bytes + at, '\0', size - at);
        if (end == NULL) return 0;
        vector[i] = bytes + at;
        at = (size_t)(end - bytes) + 1;
    }
    vector[count] = NULL;
    *used = at;
    return 1;
}

/* What the child of a spawn needs, and what it tells back (it shares our memory). */
struct spawning {
    char **argv;
    char **envp;
    const int *fds;
    int nfds;
    volatile int error;  /* set by the child when it cannot exec */
};

/* The child: until its exec it runs on `child_stack` in our memory while we wait
 * (CLONE_VFORK), so it makes only system calls; no signal handler can run in it (the
 * launcher installs none). */
static int child_main(void *arg) {
    struct spawning *s = arg;
    if (setsid() >= 0) {
        int i = 0;
        while (i < s->nfds && dup2(s->fds[i], 3 + i) >= 0) i++;  /* dup2 clears close-on-exec */
        if (i == s->nfds) execve(s->argv[0], s->argv, s->envp);
    }
    s->error = errno ? errno : EINVAL;
    _exit(127);
}

static char child_stack[64 * 1024] __attribute__((aligned(16)));

/* Make the wrapper, the actor's child, as posix_spawn makes one (a vfork: no copy of our
 * memory; we go on once it has exec'd or failed to); its pid once it has exec'd, else
 * -errno (and, when it was made, its pid in *made: the actor reaps it). */
static int spawn(char **argv, char **envp, const int *fds, int nfds, pid_t *made) {
    struct spawning s = {.argv = argv, .envp = envp, .fds = fds, .nfds = nfds, .error = 0};
    pid_t pid = clone(child_main, child_stack + sizeof child_stack,
                      CLONE_VM | CLONE_VFORK | CLONE_PARENT | SIGCHLD, &s);
    if (pid < 0) return -errno;
    *made = pid;
    return s.error ? -s.error : pid;
}

int main(void) {
    /* The socket out of the way; fds 3 and 4 held on /dev/null so that descriptors
     * received never land there (a follower's dup2 to 3 and 4 then never clobbers). */
    int sock = fcntl(3, F_DUPFD_CLOEXEC, SOCKET_FD);
    if (sock < 0) return 2;
    int null = open("/dev/null", O_RDWR);
    if (null < 0) return 2;
    if (dup2(null, 3) < 0 || dup2(null, 4) < 0) return 2;
    if (null > 4) close(null);
    /* Wrappers start with every signal at its default and none blocked, whatever the
     * actor's runtime ignores or blocks (CPython ignores SIGPIPE): what it ignores, an
     * exec keeps ignored, down to the payload. */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < 65; sig++) signal(sig, SIG_DFL);  /* (the C library's own refused) */

    for (;;) {
        struct iovec iov = {.iov_base = message, .iov_len = sizeof message};
        union {
            char buffer[CMSG_SPACE(2 * sizeof(int))];
            struct cmsghdr align;
        } control;
        struct msghdr header = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buffer,
                                .msg_controllen = sizeof control.buffer};
        ssize_t n = recvmsg(sock, &header, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;  /* the actor is gone */

        int fds[2] = {-1, -1};
        int nfds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&header); c != NULL; c = CMSG_NXTHDR(&header, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int *given = (int *)CMSG_DATA(c);
            for (size_t i = 0; i < count; i++) {
                if (nfds < 2) fds[nfds++] = given[i];
                else close(given[i]);
            }
        }
        struct reply reply = {0};
        struct request request;
        if ((size_t)n < sizeof request) {
            reply.error = EINVAL;
        } else {
            memcpy(&request, message, sizeof request);
            reply.id = request.id;
            char *strings = message + sizeof request;
            size_t size = (size_t)n - sizeof request;
            size_t used = 0;
            char **argv = NULL;
            char **envp = NULL;
            if ((header.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || request.size != size) {
                reply.error = E2BIG;
            } else if (request.argc == 0 || request.argc > size || request.envc > size
                       || (request.flags & FOLLOWER && nfds != 2)) {
                reply.error = EINVAL;
            } else if ((argv = malloc((request.argc + 1) * sizeof *argv)) == NULL
                       || (envp = malloc((request.envc + 1) * sizeof *envp)) == NULL) {
                reply.error = ENOMEM;
            } else if (!split(strings, size, argv, request.argc, &used)
                       || !split(strings, size, envp, request.envc, &used)) {
                reply.error = EINVAL;
            } else if (actor_gone(sock)) {
                return 0;  /* nothing new starts for an actor that has ended */
            } else {
                pid_t made = 0;
                reply.before_ns = boot_ns();
                int result = spawn(argv, envp, fds, (request.flags & FOLLOWER) ? 2 : 0, &made);
                reply.after_ns = boot_ns();
                reply.pid = made;
                reply.error = result < 0 ? -result : 0;
            }
            free(argv);
            free(envp);
        }
        for (int i = 0; i < nfds; i++) close(fds[i]);
        answer(sock, &reply);
    }
}
