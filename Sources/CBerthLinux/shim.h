#ifndef BERTH_LINUX_SHIM_H
#define BERTH_LINUX_SHIM_H
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <pthread.h>
#include <malloc.h>

/// Returns freed heap pages to the system (malloc_trim(0)), so that a measurement of resident
/// memory counts what is live, not what the allocator keeps for later (berth-bench kube-memory).
static inline void berth_release_free_memory(void) {
    malloc_trim(0);
}

/// Names the calling thread (shown by top -H, gdb); names longer than 15 bytes are cut.
static inline void berth_set_thread_name(const char *name) {
    char shortName[16];
    strncpy(shortName, name, 15);
    shortName[15] = 0;
    pthread_setname_np(pthread_self(), shortName);
}

/// accept4 behind a plain signature (glibc's transparent-union sockaddr parameter does not import).
static inline int berth_accept_nonblocking(int fd) {
    return accept4(fd, (struct sockaddr *)0, (socklen_t *)0, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
/// glibc declares sched_getaffinity only under _GNU_SOURCE, and defining that here would change
/// fd_set and clash with the Dispatch module's view of the same headers; so it is declared
/// under another name, bound to the same symbol.
extern int berth_sched_getaffinity(int pid, size_t size, unsigned long *mask) __asm__("sched_getaffinity");

/// CPUs this process may run on (taskset, cpusets), or 0 when unknown.
static inline int berth_allowed_cpu_count(void) {
    unsigned long mask[16];  /* 1024 CPUs */
    memset(mask, 0, sizeof(mask));
    if (berth_sched_getaffinity(0, sizeof(mask), mask) != 0) return 0;
    int count = 0;
    for (int i = 0; i < 16; i++) count += __builtin_popcountl(mask[i]);
    return count;
}
#endif
