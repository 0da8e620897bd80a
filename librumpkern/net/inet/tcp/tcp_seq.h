// tcp_seq.h: TCP sequence-number arithmetic (RFC 9293 section 3.4).
//
// Sequence numbers live in a 32-bit circle: a < b means b is ahead of a by
// less than 2^31. Every comparison of sequence numbers in the TCP engine goes
// through these helpers so that wrap-around is handled in one place.
#pragma once

#include <cstdint>

namespace rump::tcp {

using Seq = uint32_t;

inline constexpr bool seq_lt(Seq a, Seq b) { return static_cast<int32_t>(a - b) < 0; }
inline constexpr bool seq_leq(Seq a, Seq b) { return static_cast<int32_t>(a - b) <= 0; }
inline constexpr bool seq_gt(Seq a, Seq b) { return static_cast<int32_t>(a - b) > 0; }
inline constexpr bool seq_geq(Seq a, Seq b) { return static_cast<int32_t>(a - b) >= 0; }
inline constexpr Seq seq_max(Seq a, Seq b) { return seq_gt(a, b) ? a : b; }
inline constexpr Seq seq_min(Seq a, Seq b) { return seq_lt(a, b) ? a : b; }
// lo <= s < hi on the circle.
inline constexpr bool seq_in(Seq s, Seq lo, Seq hi) { return seq_leq(lo, s) && seq_lt(s, hi); }

}  // namespace rump::tcp
