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
/// accept4 that also reports the peer's address as 128 bits (IPv4 as ::ffff:a.b.c.d), for
/// per-client accounting; hi/lo are the address's first and last 8 bytes, big-endian.
static inline int berth_accept_nonblocking_peer(int fd, unsigned long long *hi, unsigned long long *lo) {
    struct sockaddr_storage address;
    socklen_t length = sizeof(address);
    int accepted = accept4(fd, (struct sockaddr *)&address, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    unsigned char bytes[16] = {0};
    if (accepted >= 0) {
        if (address.ss_family == AF_INET6) {
            memcpy(bytes, &((struct sockaddr_in6 *)&address)->sin6_addr, 16);
        } else if (address.ss_family == AF_INET) {
            bytes[10] = 0xff; bytes[11] = 0xff;
            memcpy(bytes + 12, &((struct sockaddr_in *)&address)->sin_addr, 4);
        }
    }
    unsigned long long h = 0, l = 0;
    for (int i = 0; i < 8; i++) { h = (h << 8) | bytes[i]; l = (l << 8) | bytes[i + 8]; }
    *hi = h; *lo = l;
    return accepted;
}

/// Gives free heap memory back to the system (glibc keeps it in its arenas otherwise).
static inline void berth_malloc_trim(void) {
    malloc_trim(0);
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
