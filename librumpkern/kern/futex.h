// futex.h: fast user-space locking (futex(2)) and what LWP exit owes it.
//
// A futex is a 32-bit word of user memory; the kernel keeps only the LWPs
// waiting on it, in a per-kernel table of hash buckets (FutexTable, the
// state of the "futex" component). A waiter is keyed by what the word is:
//   * private (FUTEX_PRIVATE_FLAG) and shared futexes of a process in the
//     host's address space: the address (every such process shares the
//     host's memory, so one address is one word for all of them);
//   * private futexes in an isolated space: (space, address);
//   * shared futexes in an isolated space: (object, offset) of a MAP_SHARED
//     mapping, so processes mapping one object at different addresses meet
//     (private mappings: (space, address), as for private futexes).
// Keys hold no reference: a key outliving its memory can at worst match a
// later one made at the same place, which is a spurious wake-up, which
// every futex user must tolerate.
//
// Words are read and updated in place (UserSpace::with_word, or the host
// pointer) with atomic operations, under the bucket lock, so a compare in
// FUTEX_WAIT and a wake after a user store cannot miss each other.
//
// Locking: each bucket has a Mutex (rank kNone: held across the user-word
// access, which may take a Vmspace map lock and fault a page in; never
// across anything else). Two buckets are taken in address order. A waiter
// sleeps on its LWP's Parker (kern/parker.h), which its waker unparks
// after dropping the bucket lock, so a wake-up needs no bucket-wide
// broadcast and the sleeper never wakes to wait for the bucket lock.
#pragma once

#include <cstdint>

#include "base/result.h"

namespace rump {

class Lwp;

// LWP exit (rump_lwproc_releaselwp, process exit): walks the LWP's robust
// list (set_robust_list), marking the futexes it still holds
// FUTEX_OWNER_DIED and waking a waiter of each, then stores 0 at its
// set_tid_address word and wakes one waiter there, as Linux does. Runs
// while the LWP's address space is still there; the caller is any LWP of
// the kernel (l need not be the running one).
void futex_lwp_exit(Lwp& l);

}  // namespace rump
