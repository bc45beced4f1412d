#ifndef BERTH_LINUX_SHIM_H
#define BERTH_LINUX_SHIM_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <pthread.h>

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
/// CPUs this process may run on (taskset, cpusets), or 0 when unknown; CPU_COUNT is a macro.
static inline int berth_allowed_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return CPU_COUNT(&set);
}
#endif
