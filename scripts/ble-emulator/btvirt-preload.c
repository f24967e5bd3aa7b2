/*
 * LD_PRELOAD shim for BlueZ's `btvirt -s` (Debian bluez-test-tools 5.66) so that its emulated LE
 * controllers work on a kernel without Bluetooth and without AF_ALG crypto sockets, and so that it
 * never loses or tears HCI packets on its client sockets. Built by scripts/ble-emulator/build.sh.
 *
 * What btvirt does and what this changes (read from bluez emulator/server.c, emulator/btdev.c and
 * src/shared/crypto.c):
 *
 * 1. btdev_create() calls bt_crypto_new() for every BR/EDR-LE and LE controller. bt_crypto_new()
 *    opens socket(PF_ALG, SOCK_SEQPACKET|SOCK_CLOEXEC, 0) twice and bind()s them to
 *    "skcipher"/"ecb(aes)" and "hash"/"cmac(aes)". Without AF_ALG in the kernel the socket() fails,
 *    btdev_create() returns NULL and server.c closes the client at once: no LE controller at all.
 *    The crypto operations are setsockopt(SOL_ALG, ALG_SET_KEY) + accept() for an operation socket,
 *    then sendmsg()/send() of the input and read() of the 16-byte result, then close().
 *    Here: socket(AF_ALG) returns a descriptor on /dev/null that we remember as fake; bind,
 *    setsockopt and accept on it succeed (accept returns another /dev/null descriptor);
 *    send/sendmsg/write swallow the input; read/recv return 16 bytes that are NOT AES (a fold of
 *    key and input). LE pairing and link encryption therefore do not work; nothing else needs it.
 *
 * 2. server.c sends every event / ACL packet to its client with sendmsg(fd, iov, MSG_DONTWAIT) and
 *    ignores failures: when the client's socket buffer is full the packet (or its tail) is lost
 *    and the H4 stream is torn. Here: sends on btvirt's client sockets are made reliable: the
 *    whole message is written, waiting for the peer (poll POLLOUT) when needed, with MSG_NOSIGNAL
 *    (a client that went away must not kill btvirt with SIGPIPE). If a client does not take data
 *    for BTVIRT_PRELOAD_SEND_TIMEOUT_MS (default 5000; 0 = wait forever) it is shut down (its
 *    socat sees EOF and exits) rather than silently losing packets: the whole emulator is one
 *    thread, so a stuck client would otherwise freeze every controller.
 *
 * 3. server.c reads clients with recv(fd, buf + pkt_offset, ...) into ONE static 4096-byte buffer
 *    shared by all clients, and keeps partial-header bytes only when they start at the beginning
 *    of that buffer; for ACL packets it reads the header without checking that it is complete. A
 *    packet header split across two reads desynchronises that controller's H4 stream. Here: recv()
 *    on a client socket returns exactly one whole H4 packet (peeking the header, then reading
 *    header + payload, waiting up to BTVIRT_PRELOAD_RECV_TIMEOUT_MS (default 1000) for the rest of
 *    a packet that is already partly there). The kernel socket keeps the following packets, so
 *    btvirt's level-triggered epoll calls back for each of them.
 *
 * 4. btdev removes a connection from BOTH controllers without telling the other host when a
 *    controller goes away (client disconnects: btdev_destroy -> conn_remove) or is reset by its
 *    host (HCI Reset: btdev_reset). The surviving host keeps a zombie connection handle; worse,
 *    btdev drops ACL data for an unknown handle without a Number Of Completed Packets event, and an
 *    emulated LE controller has ONE ACL buffer, so the survivor's next packet to the zombie stalls
 *    every connection of that controller for good. Here: the library follows each client's own
 *    address (Read BD_ADDR / LE Set Random Address) and its connections (LE (Enhanced) Connection
 *    Complete, Disconnection Complete) and, when a client goes away or sends HCI Reset, sends each
 *    peer a Disconnection Complete (reason 0x08, connection timeout) for its side, as a real
 *    controller would after the supervision timeout. BTVIRT_PRELOAD_NO_DISCONNECT_FIX=1 turns it off.
 *
 * 5. btdev numbers connections per controller (the first free handle from 0x002a up), but tells the
 *    peripheral side of a new LE connection the CENTRAL's handle (le_conn_complete sets cc.handle to
 *    conn->handle, not conn->link->handle), and forwards ACL data, LE Connection Update Complete and
 *    LE Remote Connection Parameter Request with the SENDER's handle. While every controller has one
 *    connection the numbers agree by luck; a peripheral's second central gets the handle of its
 *    first, its ATT responses go to the first central and the second link never gets one. Here:
 *    the peripheral's LE Connection Complete carries the handle btdev really gave it (computed like
 *    conn_new does, from the connections tracked for (4)), and a packet forwarded from the client
 *    being served to another client gets the receiver's handle for that connection.
 *    BTVIRT_PRELOAD_NO_HANDLE_FIX=1 turns it off.
 *
 * Also: btvirt's stdout is made line-buffered, so its log lines reach a pipe as they happen; a
 * client shut down by (2) is logged with the PID of the process at the other end (SO_PEERCRED), so
 * the harness can restart that socat.
 *
 * Environment: BTVIRT_PRELOAD_NO_SEND_FIX=1 / BTVIRT_PRELOAD_NO_RECV_FIX=1 turn 2 / 3 off (for
 * measuring stock behaviour); BTVIRT_PRELOAD_DEBUG=1 logs every fake crypto operation. Counters are
 * printed to stderr when btvirt exits (SIGTERM/SIGINT make it leave its main loop cleanly).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef SOL_ALG
#define SOL_ALG 279
#endif

#define MAX_FD 4096

enum fd_kind { FD_NONE = 0, FD_ALG_TFM, FD_ALG_OP, FD_H4_CLIENT };

#define MAX_CONNS 16

struct conn {
	uint16_t handle;
	unsigned char peer[6];
	unsigned char used;
};

struct fd_state {
	unsigned char kind;
	/* fake AF_ALG */
	unsigned char key[32];
	unsigned char data[64];
	size_t data_len;
	/* H4 client: own addresses and open LE connections, learned from the traffic */
	unsigned char own_public[6], own_random[6];
	unsigned char has_public, has_random;
	struct conn conns[MAX_CONNS];
};

static struct fd_state fds[MAX_FD];

static int (*real_socket)(int, int, int);
static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_setsockopt)(int, int, int, const void *, socklen_t);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_close)(int);
static int (*real_epoll_wait)(int, struct epoll_event *, int, int);

static int send_fix = 1, recv_fix = 1, disconnect_fix = 1, handle_fix = 1, debug_on;
/* The client whose packet btvirt is handling (set by recv, cleared when btvirt waits for more). */
static int serving_fd = -1;
static int send_timeout_ms = 5000, recv_timeout_ms = 1000;

static unsigned long n_alg_sockets, n_alg_ops, n_clients, n_send_waits, n_send_bytes_waited,
	n_clients_shut, n_recv_split, n_recv_timeouts, n_conns, n_disconnects_injected, n_handles_fixed;

static void logf_(const char *fmt, ...)
{
	char line[512];
	int len = snprintf(line, sizeof(line), "btvirt-preload: ");
	va_list ap;

	va_start(ap, fmt);
	len += vsnprintf(line + len, sizeof(line) - (size_t)len, fmt, ap);
	va_end(ap);
	if (len > (int)sizeof(line) - 2)
		len = (int)sizeof(line) - 2;
	line[len++] = '\n';
	/* stderr is unbuffered, but go straight to the fd: never through our own write() hook. */
	if (real_write)
		real_write(2, line, (size_t)len);
}

static int env_int(const char *name, int fallback)
{
	const char *value = getenv(name);
	return value && *value ? atoi(value) : fallback;
}

__attribute__((constructor)) static void preload_init(void)
{
	real_socket = dlsym(RTLD_NEXT, "socket");
	real_bind = dlsym(RTLD_NEXT, "bind");
	real_setsockopt = dlsym(RTLD_NEXT, "setsockopt");
	real_accept = dlsym(RTLD_NEXT, "accept");
	real_accept4 = dlsym(RTLD_NEXT, "accept4");
	real_send = dlsym(RTLD_NEXT, "send");
	real_sendmsg = dlsym(RTLD_NEXT, "sendmsg");
	real_recv = dlsym(RTLD_NEXT, "recv");
	real_read = dlsym(RTLD_NEXT, "read");
	real_write = dlsym(RTLD_NEXT, "write");
	real_close = dlsym(RTLD_NEXT, "close");
	real_epoll_wait = dlsym(RTLD_NEXT, "epoll_wait");
	send_fix = !env_int("BTVIRT_PRELOAD_NO_SEND_FIX", 0);
	recv_fix = !env_int("BTVIRT_PRELOAD_NO_RECV_FIX", 0);
	disconnect_fix = !env_int("BTVIRT_PRELOAD_NO_DISCONNECT_FIX", 0);
	/* the handle fix needs the connection tracking of the disconnect fix */
	handle_fix = disconnect_fix && !env_int("BTVIRT_PRELOAD_NO_HANDLE_FIX", 0);
	debug_on = env_int("BTVIRT_PRELOAD_DEBUG", 0);
	send_timeout_ms = env_int("BTVIRT_PRELOAD_SEND_TIMEOUT_MS", 5000);
	recv_timeout_ms = env_int("BTVIRT_PRELOAD_RECV_TIMEOUT_MS", 1000);
	/* btvirt's printf()s ("Request for ...", -d packet dumps) reach a pipe: flush them per line. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	logf_("loaded (fake AF_ALG; reliable sends %s, whole-packet reads %s, disconnect on peer loss %s, "
	      "handle fix %s)",
	      send_fix ? "on" : "OFF", recv_fix ? "on" : "OFF", disconnect_fix ? "on" : "OFF",
	      handle_fix ? "on" : "OFF");
}

__attribute__((destructor)) static void preload_fini(void)
{
	logf_("stats: alg_sockets=%lu alg_ops=%lu clients=%lu send_waits=%lu "
	      "bytes_sent_after_wait=%lu clients_shut=%lu recv_split_packets=%lu recv_timeouts=%lu "
	      "le_connections=%lu disconnects_injected=%lu handles_fixed=%lu",
	      n_alg_sockets, n_alg_ops, n_clients, n_send_waits, n_send_bytes_waited, n_clients_shut,
	      n_recv_split, n_recv_timeouts, n_conns, n_disconnects_injected, n_handles_fixed);
}

static struct fd_state *state(int fd)
{
	return fd >= 0 && fd < MAX_FD ? &fds[fd] : NULL;
}

static int kind(int fd)
{
	struct fd_state *s = state(fd);
	return s ? s->kind : FD_NONE;
}

static int fake_fd(int cloexec)
{
	int fd = open("/dev/null", O_RDWR | (cloexec ? O_CLOEXEC : 0));
	if (fd >= MAX_FD) {
		real_close(fd);
		errno = EMFILE;
		return -1;
	}
	return fd;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- 1. fake AF_ALG ---------- */

int socket(int domain, int type, int protocol)
{
	if (domain == AF_ALG) {
		int fd = fake_fd(type & SOCK_CLOEXEC);
		if (fd < 0)
			return -1;
		memset(&fds[fd], 0, sizeof(fds[fd]));
		fds[fd].kind = FD_ALG_TFM;
		n_alg_sockets++;
		if (debug_on)
			logf_("socket(AF_ALG) -> fake fd %d", fd);
		return fd;
	}
	return real_socket(domain, type, protocol);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (kind(fd) == FD_ALG_TFM)
		return 0;
	return real_bind(fd, addr, len);
}

int setsockopt(int fd, int level, int name, const void *value, socklen_t len)
{
	int k = kind(fd);
	if (k == FD_ALG_TFM || k == FD_ALG_OP) {
		if (level == SOL_ALG && value && len > 0) {
			size_t n = len < sizeof(fds[fd].key) ? len : sizeof(fds[fd].key);
			memset(fds[fd].key, 0, sizeof(fds[fd].key));
			memcpy(fds[fd].key, value, n);
		}
		return 0;
	}
	return real_setsockopt(fd, level, name, value, len);
}

static int is_btvirt_server(int listen_fd)
{
	struct sockaddr_un addr;
	socklen_t len = sizeof(addr);

	memset(&addr, 0, sizeof(addr));
	if (getsockname(listen_fd, (struct sockaddr *)&addr, &len) < 0 || addr.sun_family != AF_UNIX)
		return 0;
	/* /tmp/bt-server-{bredrle,bredr,le,amp} carry H4; bt-server-mon is the monitor. */
	return strncmp(addr.sun_path, "/tmp/bt-server-", 15) == 0 &&
	       strcmp(addr.sun_path, "/tmp/bt-server-mon") != 0;
}

static int after_accept(int listen_fd, int fd)
{
	struct fd_state *s = state(fd);
	if (fd < 0 || !s)
		return fd;
	memset(s, 0, sizeof(*s));
	if (is_btvirt_server(listen_fd)) {
		s->kind = FD_H4_CLIENT;
		n_clients++;
	}
	return fd;
}

static int alg_accept(int fd)
{
	int op = fake_fd(0);
	if (op < 0)
		return -1;
	memset(&fds[op], 0, sizeof(fds[op]));
	fds[op].kind = FD_ALG_OP;
	memcpy(fds[op].key, fds[fd].key, sizeof(fds[op].key));
	n_alg_ops++;
	return op;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (kind(fd) == FD_ALG_TFM)
		return alg_accept(fd);
	return after_accept(fd, real_accept(fd, addr, len));
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	if (kind(fd) == FD_ALG_TFM)
		return alg_accept(fd);
	return after_accept(fd, real_accept4(fd, addr, len, flags));
}

static ssize_t alg_input(int fd, const struct iovec *iov, size_t iovlen)
{
	struct fd_state *s = &fds[fd];
	size_t total = 0;

	s->data_len = 0;
	for (size_t i = 0; i < iovlen; i++) {
		const unsigned char *p = iov[i].iov_base;
		for (size_t j = 0; j < iov[i].iov_len; j++) {
			if (s->data_len < sizeof(s->data))
				s->data[s->data_len++] = p[j];
			else
				s->data[(total + j) % sizeof(s->data)] ^= p[j];
		}
		total += iov[i].iov_len;
	}
	return (ssize_t)total;
}

static ssize_t alg_output(int fd, void *buf, size_t len)
{
	struct fd_state *s = &fds[fd];
	unsigned char out[16];
	size_t n = len < sizeof(out) ? len : sizeof(out);

	/* Deterministic, NOT AES/CMAC: key XOR folded input. */
	for (size_t i = 0; i < sizeof(out); i++) {
		unsigned char b = s->key[i];
		for (size_t j = i; j < s->data_len; j += sizeof(out))
			b ^= s->data[j];
		out[i] = b;
	}
	memcpy(buf, out, n);
	if (debug_on)
		logf_("fake crypto op on fd %d: %zu bytes in, %zu out", fd, s->data_len, n);
	return (ssize_t)n;
}

/* ---------- 4. connection tracking and disconnect injection ---------- */

static ssize_t reliable_sendmsg(int fd, const struct msghdr *msg, int flags);

static void fmt_addr(const unsigned char *a, char *out)
{
	snprintf(out, 18, "%02X:%02X:%02X:%02X:%02X:%02X", a[5], a[4], a[3], a[2], a[1], a[0]);
}

static int is_own_addr(const struct fd_state *s, const unsigned char *addr)
{
	return (s->has_public && !memcmp(s->own_public, addr, 6)) ||
	       (s->has_random && !memcmp(s->own_random, addr, 6));
}

static void conn_add(int fd, uint16_t handle, const unsigned char *peer)
{
	struct fd_state *s = &fds[fd];
	for (int i = 0; i < MAX_CONNS; i++) {
		if (!s->conns[i].used || s->conns[i].handle == handle) {
			s->conns[i].used = 1;
			s->conns[i].handle = handle;
			memcpy(s->conns[i].peer, peer, 6);
			n_conns++;
			return;
		}
	}
	logf_("client fd %d: more than %d connections, not tracking handle 0x%04x", fd, MAX_CONNS, handle);
}

static void conn_del(int fd, uint16_t handle)
{
	struct fd_state *s = &fds[fd];
	for (int i = 0; i < MAX_CONNS; i++)
		if (s->conns[i].used && s->conns[i].handle == handle)
			s->conns[i].used = 0;
}

/* Client fd lost all its connections (went away or was reset): tell every peer host. */
static void peers_lost(int fd, const char *why)
{
	struct fd_state *s = &fds[fd];

	for (int i = 0; i < MAX_CONNS; i++) {
		if (!s->conns[i].used)
			continue;
		s->conns[i].used = 0;
		for (int peer = 0; peer < MAX_FD; peer++) {
			struct fd_state *p = &fds[peer];
			if (peer == fd || p->kind != FD_H4_CLIENT || !is_own_addr(p, s->conns[i].peer))
				continue;
			for (int j = 0; j < MAX_CONNS; j++) {
				if (!p->conns[j].used || !is_own_addr(s, p->conns[j].peer))
					continue;
				unsigned char ev[7] = { 0x04, 0x05, 0x04, 0x00, (unsigned char)(p->conns[j].handle & 0xff),
							(unsigned char)(p->conns[j].handle >> 8), 0x08 };
				struct iovec iov = { .iov_base = ev, .iov_len = sizeof(ev) };
				struct msghdr m;
				char a[18], b[18];
				memset(&m, 0, sizeof(m));
				m.msg_iov = &iov;
				m.msg_iovlen = 1;
				p->conns[j].used = 0;
				fmt_addr(s->conns[i].peer, a);
				fmt_addr(p->conns[j].peer, b);
				logf_("%s: connection %s -> %s dropped; sending Disconnection Complete "
				      "(handle 0x%04x, reason 0x08) to %s",
				      why, b, a, p->conns[j].handle, a);
				reliable_sendmsg(peer, &m, 0);
				n_disconnects_injected++;
			}
		}
	}
}

/* An HCI packet the emulator sends to client fd (H4 type byte first). */
static void track_event(int fd, const unsigned char *p, size_t len)
{
	if (len < 3 || p[0] != 0x04)
		return;
	if (p[1] == 0x0e && len >= 13 && p[4] == 0x09 && p[5] == 0x10 && p[6] == 0x00) {
		/* Command Complete, Read BD_ADDR, success */
		memcpy(fds[fd].own_public, p + 7, 6);
		fds[fd].has_public = 1;
	} else if (p[1] == 0x3e && len >= 15 && (p[3] == 0x01 || p[3] == 0x0a) && p[4] == 0x00) {
		/* LE (Enhanced) Connection Complete, success: handle at 5, peer address at 9 */
		conn_add(fd, (uint16_t)(p[5] | (p[6] << 8)) & 0x0fff, p + 9);
	} else if (p[1] == 0x05 && len >= 7 && p[3] == 0x00) {
		/* Disconnection Complete, success */
		conn_del(fd, (uint16_t)(p[4] | (p[5] << 8)) & 0x0fff);
	}
}

static void track_sendmsg(int fd, const struct msghdr *msg)
{
	unsigned char flat[32];
	size_t n = 0;
	for (size_t i = 0; i < msg->msg_iovlen && n < sizeof(flat); i++) {
		size_t take = msg->msg_iov[i].iov_len;
		if (take > sizeof(flat) - n)
			take = sizeof(flat) - n;
		memcpy(flat + n, msg->msg_iov[i].iov_base, take);
		n += take;
	}
	track_event(fd, flat, n);
}

/* A whole H4 packet a client sent to the emulator. */
static void track_command(int fd, const unsigned char *p, size_t len)
{
	if (len < 4 || p[0] != 0x01)
		return;
	if (p[1] == 0x03 && p[2] == 0x0c) {
		/* HCI Reset: btdev_reset drops the controller's connections without telling peers */
		peers_lost(fd, "HCI Reset");
	} else if (p[1] == 0x05 && p[2] == 0x20 && len >= 10) {
		/* LE Set Random Address */
		memcpy(fds[fd].own_random, p + 4, 6);
		fds[fd].has_random = 1;
	}
}

/* ---------- 5. connection handles ---------- */

/* btdev.c ACL_HANDLE: conn_new gives a controller's new connection the first free handle from here. */
#define FIRST_ACL_HANDLE 0x002a
/* Events and ACL packets up to this size are copied to be fixed; btvirt's own buffer is 4096. */
#define MAX_FIXED_PACKET 4096

static int handle_in_use(const struct fd_state *s, uint16_t handle)
{
	for (int i = 0; i < MAX_CONNS; i++)
		if (s->conns[i].used && s->conns[i].handle == handle)
			return 1;
	return 0;
}

/* The handle conn_new just gave client fd's controller: the first one its connections do not use. */
static uint16_t next_handle(int fd)
{
	uint16_t handle = FIRST_ACL_HANDLE;
	while (handle_in_use(&fds[fd], handle))
		handle++;
	return handle;
}

/* The handle client `to` knows for the connection client `from` calls `handle`; -1 if none. */
static int receiver_handle(int from, uint16_t handle, int to)
{
	const struct fd_state *f = &fds[from], *t = &fds[to];
	for (int i = 0; i < MAX_CONNS; i++) {
		if (!f->conns[i].used || f->conns[i].handle != handle || !is_own_addr(t, f->conns[i].peer))
			continue;
		for (int j = 0; j < MAX_CONNS; j++)
			if (t->conns[j].used && is_own_addr(f, t->conns[j].peer))
				return t->conns[j].handle;
	}
	return -1;
}

static void put_handle(unsigned char *at, uint16_t handle)
{
	uint16_t flags = (uint16_t)((at[0] | (at[1] << 8)) & 0xf000);
	at[0] = (unsigned char)(handle & 0xff);
	at[1] = (unsigned char)(((handle >> 8) & 0x0f) | (flags >> 8));
}

/* Fixes the handle in a packet btvirt sends to client fd (H4 type byte first); 1 if it changed. */
static int fix_handle(int fd, unsigned char *p, size_t len)
{
	size_t at = 0;
	if (len >= 15 && p[0] == 0x04 && p[1] == 0x3e && (p[3] == 0x01 || p[3] == 0x0a) && p[4] == 0x00 &&
	    p[7] == 0x01) {
		/* LE (Enhanced) Connection Complete, success, peripheral role: the handle btdev gave us */
		uint16_t handle = next_handle(fd);
		if (((p[5] | (p[6] << 8)) & 0x0fff) == handle)
			return 0;
		put_handle(p + 5, handle);
		n_handles_fixed++;
		return 1;
	}
	if (serving_fd < 0 || serving_fd == fd || kind(serving_fd) != FD_H4_CLIENT)
		return 0;
	if (p[0] == 0x02 && len >= 5)
		at = 1; /* ACL data: handle + flags */
	else if (p[0] == 0x04 && p[1] == 0x3e && len >= 7 && p[3] == 0x03)
		at = 5; /* LE Connection Update Complete: status, then handle */
	else if (p[0] == 0x04 && p[1] == 0x3e && len >= 6 && p[3] == 0x06)
		at = 4; /* LE Remote Connection Parameter Request: handle */
	if (!at)
		return 0;
	int handle = receiver_handle(serving_fd, (uint16_t)((p[at] | (p[at + 1] << 8)) & 0x0fff), fd);
	if (handle < 0 || handle == ((p[at] | (p[at + 1] << 8)) & 0x0fff))
		return 0;
	put_handle(p + at, (uint16_t)handle);
	n_handles_fixed++;
	return 1;
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	serving_fd = -1; /* btvirt is done with the packet it read */
	return real_epoll_wait(epfd, events, maxevents, timeout);
}

/* ---------- 2. reliable sends ---------- */

static ssize_t reliable_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct iovec iov[64];
	struct msghdr m = *msg;
	size_t iovlen = msg->msg_iovlen, total = 0, sent = 0;
	int64_t deadline = 0;
	int waited = 0;

	if (iovlen > 64)
		return real_sendmsg(fd, msg, flags);
	memcpy(iov, msg->msg_iov, iovlen * sizeof(struct iovec));
	for (size_t i = 0; i < iovlen; i++)
		total += iov[i].iov_len;
	m.msg_iov = iov;
	m.msg_iovlen = iovlen;
	flags |= MSG_DONTWAIT | MSG_NOSIGNAL;

	while (sent < total) {
		ssize_t n = real_sendmsg(fd, &m, flags);
		if (n > 0) {
			size_t left = (size_t)n;
			sent += left;
			if (waited)
				n_send_bytes_waited += left;
			/* advance the iovec past what was written */
			while (m.msg_iovlen > 0 && left >= m.msg_iov[0].iov_len) {
				left -= m.msg_iov[0].iov_len;
				m.msg_iov++;
				m.msg_iovlen--;
			}
			if (m.msg_iovlen > 0 && left > 0) {
				m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + left;
				m.msg_iov[0].iov_len -= left;
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			int timeout = -1;
			if (!waited) {
				waited = 1;
				n_send_waits++;
				deadline = now_ms() + send_timeout_ms;
			}
			if (send_timeout_ms > 0) {
				int64_t left_ms = deadline - now_ms();
				if (left_ms <= 0) {
					struct ucred cred = { 0 };
					socklen_t cred_len = sizeof(cred);
					getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len);
					logf_("client fd %d took no data for %d ms: shutting it down "
					      "(%zu of %zu bytes of a packet unsent) shut-client-pid=%d",
					      fd, send_timeout_ms, total - sent, total, (int)cred.pid);
					shutdown(fd, SHUT_RDWR);
					n_clients_shut++;
					errno = EPIPE;
					return -1;
				}
				timeout = (int)left_ms;
			}
			poll(&p, 1, timeout);
			continue;
		}
		/* EPIPE, ECONNRESET, ...: the client is gone; btvirt's epoll sees the hang-up. */
		return sent > 0 ? (ssize_t)sent : -1;
	}
	return (ssize_t)sent;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	int k = kind(fd);
	unsigned char fixed[MAX_FIXED_PACKET];
	struct iovec fixed_iov;
	struct msghdr fixed_msg;
	if (k == FD_ALG_OP || k == FD_ALG_TFM)
		return alg_input(fd, msg->msg_iov, msg->msg_iovlen);
	if (k == FD_H4_CLIENT && handle_fix) {
		size_t n = 0, total = 0;
		for (size_t i = 0; i < msg->msg_iovlen; i++)
			total += msg->msg_iov[i].iov_len;
		if (total <= sizeof(fixed)) {
			for (size_t i = 0; i < msg->msg_iovlen; i++) {
				memcpy(fixed + n, msg->msg_iov[i].iov_base, msg->msg_iov[i].iov_len);
				n += msg->msg_iov[i].iov_len;
			}
			if (fix_handle(fd, fixed, n)) {
				fixed_iov.iov_base = fixed;
				fixed_iov.iov_len = n;
				fixed_msg = *msg;
				fixed_msg.msg_iov = &fixed_iov;
				fixed_msg.msg_iovlen = 1;
				msg = &fixed_msg;
			}
		}
	}
	if (k == FD_H4_CLIENT && disconnect_fix)
		track_sendmsg(fd, msg);
	if (k == FD_H4_CLIENT && send_fix)
		return reliable_sendmsg(fd, msg, flags);
	return real_sendmsg(fd, msg, flags);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	int k = kind(fd);
	unsigned char fixed[MAX_FIXED_PACKET];
	if (k == FD_H4_CLIENT && handle_fix && len <= sizeof(fixed)) {
		memcpy(fixed, buf, len);
		if (fix_handle(fd, fixed, len))
			buf = fixed;
	}
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	if (k == FD_ALG_OP || k == FD_ALG_TFM)
		return alg_input(fd, &iov, 1);
	if (k == FD_H4_CLIENT && disconnect_fix)
		track_event(fd, buf, len);
	if (k == FD_H4_CLIENT && send_fix) {
		struct msghdr m;
		memset(&m, 0, sizeof(m));
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		return reliable_sendmsg(fd, &m, flags);
	}
	return real_send(fd, buf, len, flags);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	int k = kind(fd);
	if (k == FD_ALG_OP || k == FD_ALG_TFM) {
		struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
		return alg_input(fd, &iov, 1);
	}
	return real_write(fd, buf, len);
}

/* ---------- 3. whole-packet reads ---------- */

/* Bytes of H4 header after the type byte, and the payload length it announces. */
static int h4_header(const unsigned char *p, size_t have, size_t *hdr, size_t *payload)
{
	switch (p[0]) {
	case 0x01: /* command: opcode(2) plen(1) */
		*hdr = 3;
		if (have < 4)
			return 0;
		*payload = p[3];
		return 1;
	case 0x02: /* ACL: handle(2) dlen(2) */
		*hdr = 4;
		if (have < 5)
			return 0;
		*payload = (size_t)p[3] | ((size_t)p[4] << 8);
		return 1;
	case 0x03: /* SCO: handle(2) dlen(1) */
		*hdr = 3;
		if (have < 4)
			return 0;
		*payload = p[3];
		return 1;
	case 0x05: /* ISO: handle(2) dlen(2, 14 bits) */
		*hdr = 4;
		if (have < 5)
			return 0;
		*payload = ((size_t)p[3] | ((size_t)p[4] << 8)) & 0x3fff;
		return 1;
	default:
		return -1;
	}
}

static int wait_readable(int fd, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int64_t left = deadline - now_ms();
	if (left <= 0)
		return 0;
	return poll(&p, 1, (int)left) > 0;
}

/* A packet arrived in part: wait (once per packet, up to recv_timeout_ms) for the rest; 0 on timeout. */
static int wait_for_rest(int fd, int *split, int64_t *deadline)
{
	if (!*split) {
		*split = 1;
		n_recv_split++;
		*deadline = now_ms() + recv_timeout_ms;
	}
	if (wait_readable(fd, *deadline))
		return 1;
	n_recv_timeouts++;
	return 0;
}

static ssize_t whole_packet_recv(int fd, unsigned char *buf, size_t len, int flags)
{
	unsigned char head[5];
	size_t hdr = 0, payload = 0, want;
	ssize_t n;
	int64_t deadline = 0;
	int split = 0;

	for (;;) {
		n = real_recv(fd, head, sizeof(head), MSG_PEEK | MSG_DONTWAIT);
		if (n <= 0)
			return real_recv(fd, buf, len, flags); /* EOF, error or nothing: as btvirt expects */
		int r = h4_header(head, (size_t)n, &hdr, &payload);
		if (r < 0)
			return real_recv(fd, buf, len, flags); /* not H4 we know: pass through */
		if (r > 0)
			break;
		/* header incomplete: wait a little for the rest (it is in flight from socat) */
		if (!wait_for_rest(fd, &split, &deadline))
			return real_recv(fd, buf, len, flags);
	}

	want = 1 + hdr + payload;
	if (want > len)
		want = len; /* larger than btvirt's buffer: hand over what fits, it copes with the rest */

	size_t got = 0;
	while (got < want) {
		n = real_recv(fd, buf + got, want - got, MSG_DONTWAIT);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			break; /* EOF mid-packet */
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			break;
		if (!wait_for_rest(fd, &split, &deadline))
			break;
	}
	if (got == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (ssize_t)got;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	int k = kind(fd);
	if (k == FD_ALG_OP || k == FD_ALG_TFM)
		return alg_output(fd, buf, len);
	if (k == FD_H4_CLIENT && recv_fix && !(flags & MSG_PEEK) && len > 0) {
		ssize_t n = whole_packet_recv(fd, buf, len, flags);
		if (n > 0)
			serving_fd = fd;
		if (n > 0 && disconnect_fix)
			track_command(fd, buf, (size_t)n);
		return n;
	}
	return real_recv(fd, buf, len, flags);
}

ssize_t read(int fd, void *buf, size_t len)
{
	int k = kind(fd);
	if (k == FD_ALG_OP || k == FD_ALG_TFM)
		return alg_output(fd, buf, len);
	return real_read(fd, buf, len);
}

int close(int fd)
{
	struct fd_state *s = state(fd);
	if (s) {
		/* btvirt's client_destroy: btdev_destroy (drops its connections silently), then close */
		if (s->kind == FD_H4_CLIENT && disconnect_fix)
			peers_lost(fd, "controller gone");
		memset(s, 0, sizeof(*s));
	}
	return real_close(fd);
}
