/* Test probe for tests/integration/security_oci: compiled by the tests at run time with
 * `gcc -static` into a temp dir (no binaries are kept in the repository), then copied into
 * the container's rootfs. One binary, several sub-commands; each prints one "key=value" line.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* exe DEV INO MS: for MS milliseconds, try to open /proc/<pid>/exe of every other process and
 * count how often the file behind it is the host's interpreter (DEV, INO): CVE-2019-5736. */
static int cmd_exe(char **argv) {
    unsigned long long dev = strtoull(argv[0], NULL, 0), ino = strtoull(argv[1], NULL, 0);
    long long until = now_ms() + atoll(argv[2]);
    long hits = 0, denied = 0, opened = 0, rounds = 0;
    pid_t self = getpid();
    char path[64];
    do {
        DIR *d = opendir("/proc");
        struct dirent *e;
        if (!d) { printf("error=opendir %d\n", errno); return 2; }
        while ((e = readdir(d)) != NULL) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == self) continue;
            snprintf(path, sizeof path, "/proc/%d/exe", pid);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                if (errno == EACCES || errno == EPERM) denied++;
                continue;
            }
            struct stat st;
            opened++;
            if (fstat(fd, &st) == 0 && (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
                hits++;
            close(fd);
        }
        closedir(d);
        rounds++;
    } while (now_ms() < until);
    printf("hits=%ld denied=%ld opened=%ld rounds=%ld\n", hits, denied, opened, rounds);
    return 0;
}

/* tiocsti TEXT: push TEXT into the input queue of the terminal on fd 0 (CVE-2017-5226). */
static int cmd_tiocsti(char **argv) {
    for (const char *p = argv[0]; *p; p++) {
        if (ioctl(0, TIOCSTI, p) != 0) {
            printf("tiocsti=%s\n", strerrorname_np(errno) ? strerrorname_np(errno) : "error");
            return 1;
        }
    }
    printf("tiocsti=ok\n");
    return 0;
}

/* keyctl: the kernel keyring API, which the default seccomp profile denies. */
static int cmd_keyctl(void) {
    /* KEYCTL_GET_KEYRING_ID = 0, KEY_SPEC_SESSION_KEYRING = -3, create = 1 */
    long r = syscall(SYS_keyctl, 0, -3, 1);
    printf("keyctl=%s\n", r >= 0 ? "ok" : strerrorname_np(errno));
    return 0;
}

/* fds: every open fd except the one used to list them, with its target. */
static int cmd_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[64], target[4096];
    if (!d) { printf("error=opendir %d\n", errno); return 2; }
    while ((e = readdir(d)) != NULL) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] == '.' || fd == dirfd(d)) continue;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = 0;
        printf("fd %d %s\n", fd, target);
    }
    closedir(d);
    return 0;
}

/* alloc MB: allocate and touch MB mebibytes (for the memory limit). */
static int cmd_alloc(char **argv) {
    long mb = atol(argv[0]);
    for (long i = 0; i < mb; i++) {
        char *p = malloc(1 << 20);
        if (!p) { printf("alloc=ENOMEM after %ld\n", i); return 1; }
        memset(p, 1, 1 << 20);
    }
    printf("alloc=ok\n");
    return 0;
}

/* forks MAX: fork children that sleep until MAX exist or fork(2) fails (for the pids limit). */
static int cmd_forks(char **argv) {
    long max = atol(argv[0]), n = 0;
    for (; n < max; n++) {
        pid_t pid = fork();
        if (pid < 0) break;
        if (pid == 0) { sleep(30); _exit(0); }
    }
    printf("forked=%ld errno=%s\n", n, n < max ? strerrorname_np(errno) : "none");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 5 && strcmp(argv[1], "exe") == 0) return cmd_exe(argv + 2);
    if (argc >= 3 && strcmp(argv[1], "tiocsti") == 0) return cmd_tiocsti(argv + 2);
    if (argc >= 2 && strcmp(argv[1], "keyctl") == 0) return cmd_keyctl();
    if (argc >= 2 && strcmp(argv[1], "fds") == 0) return cmd_fds();
    if (argc >= 3 && strcmp(argv[1], "alloc") == 0) return cmd_alloc(argv + 2);
    if (argc >= 3 && strcmp(argv[1], "forks") == 0) return cmd_forks(argv + 2);
    fprintf(stderr, "usage: probe exe DEV INO MS | tiocsti TEXT | keyctl | fds | alloc MB | forks MAX\n");
    return 64;
}
