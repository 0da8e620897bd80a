/*
 * rumpuser_net.h: the hypercalls of the network interfaces that reach
 * outside the kernel: the shared-memory bus of shmif and the host tap
 * devices of virt. Part of the hypercall interface of <rump/rumpuser.h>
 * (same rules: librumpuser implements them, kernel code calls them), kept
 * in a header of its own so that only the interface drivers depend on it.
 */
#ifndef RUMP_RUMPUSER_NET_H_
#define RUMP_RUMPUSER_NET_H_

#include <rump/rumpuser.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Shared memory between kernels (the shmif bus): a host file mapped shared
 * by every kernel that names it, in this process or in others.
 *
 * rumpuser_shm_map opens path (made if absent, mode 0644), makes it at
 * least size bytes long (new bytes read as zero) and maps its first size
 * bytes shared; the mapping stays after the descriptor is closed and goes
 * with rumpuser_unmap(*memp, size). 0, or the host's errno (EISDIR,
 * EACCES ...); EINVAL for a size of 0. Fault class IO (EMFILE).
 *
 * rumpuser_shm_wait blocks while the 32-bit word at addr (in such a
 * mapping) holds val, for at most timeout_ns nanoseconds (a futex wait
 * that works across processes); it may return early and spuriously.
 * Releases the CPU. 0, or ETIMEDOUT. A kernel on the sim backend polls
 * instead: it sleeps on the virtual clock for at most 1 ms and returns.
 * rumpuser_shm_wake wakes every thread, in any process, waiting on addr.
 */
int rumpuser_shm_map(const char *path, size_t size, void **memp);
int rumpuser_shm_wait(const volatile uint32_t *addr, uint32_t val,
    int64_t timeout_ns);
void rumpuser_shm_wake(const volatile uint32_t *addr);

/*
 * A lock in such a mapping that outlives a holder's death:
 * rumpuser_shm_lock takes the 32-bit word at addr, which holds 0 while
 * the lock is free and else the holding host process's id, with bit 31
 * (RUMPUSER_SHM_LOCK_WAITERS) set while others may wait. It waits (CPU
 * released) while another live process holds it; when the holder's
 * process has ended (or is a zombie) it takes the lock over and returns
 * EOWNERDEAD, the lock then being held, so the caller can repair what
 * the dead holder left half done. Else 0. A holder's id reused by a new
 * process before anyone looks keeps the lock held, as a live holder's.
 * rumpuser_shm_unlock releases it (held by the calling process).
 */
#define RUMPUSER_SHM_LOCK_WAITERS 0x80000000u
int rumpuser_shm_lock(volatile uint32_t *addr);
void rumpuser_shm_unlock(volatile uint32_t *addr);

/*
 * Host tap devices (the virt interface). rumpuser_tap_open attaches to
 * the host's tap interface name (IFNAMSIZ bounds it), making the tap if it
 * does not exist (a tap made here lives until its last descriptor is
 * closed), as an Ethernet tap without packet information; the descriptor
 * is non-blocking and goes with rumpuser_close. 0, or ENOENT (no tap
 * driver), EPERM, EBUSY, EINVAL (a bad name). Fault class NET (EIO).
 *
 * rumpuser_tap_send sends nframes whole Ethernet frames, frames[i] being
 * frame i; *nsent is how many went (a frame the host has no room for is
 * dropped, as a wire would). 0, or the error of the first frame that could
 * not be sent when none was. Fault class NET (EIO).
 *
 * rumpuser_tap_recv receives up to nbufs frames, frame i into bufs[i] with
 * its length in lens[i] (a longer frame is cut to the buffer), waiting at
 * most timeout_ns for the first (releasing the CPU while it waits; 0: do
 * not wait). *nrecv is how many came. 0 (also when none came), or the
 * host's errno. Fault class NET (EIO).
 */
int rumpuser_tap_open(const char *name, int *fdp);
int rumpuser_tap_send(int fd, const struct rumpuser_iovec *frames,
    size_t nframes, size_t *nsent);
int rumpuser_tap_recv(int fd, struct rumpuser_iovec *bufs, size_t nbufs,
    size_t *lens, size_t *nrecv, int64_t timeout_ns);

/*
 * Taps with offloads. rumpuser_tap_open_vnet attaches as rumpuser_tap_open
 * does, but every frame either way then starts with a virtio-net header
 * (struct rumpuser_vnet_hdr: the virtio specification's, 5.1.6, without
 * num_buffers; fields little-endian), and the host is asked to send
 * partial checksums (VIRTIO_NET_HDR_F_NEEDS_CSUM) and TCP segments of up
 * to 64 KiB (VIRTIO_NET_HDR_GSO_TCPV4/TCPV6) and takes both from us.
 * 0, the errors of rumpuser_tap_open, or EOPNOTSUPP when the host has no
 * such taps or offloads (the caller then uses a plain tap).
 *
 * rumpuser_tap_sendv and rumpuser_tap_recvv are rumpuser_tap_send and
 * rumpuser_tap_recv with each frame in pieces: frame i is niov[i] (1 to
 * 64) iovecs of iov, after those of the frames before it; a received
 * frame fills its pieces in order, lens[i] being its whole length. EINVAL
 * for a piece count out of range.
 */
struct rumpuser_vnet_hdr {
	uint8_t flags;		/* RUMPUSER_VNET_F_* */
	uint8_t gso_type;	/* RUMPUSER_VNET_GSO_* */
	uint16_t hdr_len;	/* GSO: bytes of headers in front of the payload */
	uint16_t gso_size;	/* GSO: payload bytes per segment */
	uint16_t csum_start;	/* NEEDS_CSUM: where the summed part starts */
	uint16_t csum_offset;	/* ... and where in it the checksum goes */
};
#define RUMPUSER_VNET_F_NEEDS_CSUM 1	/* finish the checksum as described */
#define RUMPUSER_VNET_F_DATA_VALID 2	/* received: the checksum is known good */
#define RUMPUSER_VNET_GSO_NONE 0
#define RUMPUSER_VNET_GSO_TCPV4 1
#define RUMPUSER_VNET_GSO_UDP 3
#define RUMPUSER_VNET_GSO_TCPV6 4
#define RUMPUSER_VNET_GSO_ECN 0x80

int rumpuser_tap_open_vnet(const char *name, int *fdp);
int rumpuser_tap_sendv(int fd, const struct rumpuser_iovec *iov,
    const size_t *niov, size_t nframes, size_t *nsent);
int rumpuser_tap_recvv(int fd, const struct rumpuser_iovec *iov,
    const size_t *niov, size_t nframes, size_t *lens, size_t *nrecv,
    int64_t timeout_ns);

#ifdef __cplusplus
}
#endif

#endif /* RUMP_RUMPUSER_NET_H_ */
