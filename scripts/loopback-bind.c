/*
 * loopback-bind.so: keeps a process tree's servers on loopback. Preloaded (LD_PRELOAD) by
 * scripts/localstack.sh into LocalStack and so into its DynamoDB Local child (java inherits the
 * environment), it rewrites bind() to a wildcard address into a bind to loopback:
 *   0.0.0.0            -> 127.0.0.1
 *   ::  (IPV6_V6ONLY)  -> ::1
 *   ::  (dual stack)   -> ::ffff:127.0.0.1  (IPv4 loopback clients, as /etc/hosts has them)
 * Any other address is left alone (scripts/loopback-check.sh reports it).
 *
 * Why: LocalStack's default gateway server (twisted) ignores the host of GATEWAY_LISTEN for IPv4
 * and listens on 0.0.0.0; DynamoDB Local has no bind-address option (only -port) and listens on
 * every interface (a random port chosen by LocalStack). Side effect, fine for an offline
 * emulator: a client socket bound to 0.0.0.0:0 before connect() can then reach loopback only.
 *
 * Build: cc -shared -fPIC -O2 -o loopback-bind.so loopback-bind.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static bind_fn real_bind;
    if (!real_bind) {
        real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
        if (!real_bind) {
            errno = ENOSYS;
            return -1;
        }
    }
    if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in a;
        memcpy(&a, addr, sizeof a);
        if (a.sin_addr.s_addr == htonl(INADDR_ANY)) {
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
        }
    } else if (addr && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 a;
        memcpy(&a, addr, sizeof a);
        if (IN6_IS_ADDR_UNSPECIFIED(&a.sin6_addr)) {
            int v6only = 0;
            socklen_t optlen = sizeof v6only;
            if (getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen) == 0 && v6only) {
                a.sin6_addr = in6addr_loopback;
            } else {
                memset(&a.sin6_addr, 0, sizeof a.sin6_addr);
                a.sin6_addr.s6_addr[10] = 0xff;
                a.sin6_addr.s6_addr[11] = 0xff;
                a.sin6_addr.s6_addr[12] = 127;
                a.sin6_addr.s6_addr[15] = 1;
            }
            return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
        }
    }
    return real_bind(fd, addr, len);
}
