// tcp_segment.h: a TCP segment as the engine sees it, and its wire format.
//
// The engine works on parsed header fields (TcpSegment); the IP layer turns
// wire bytes into one with tcp_parse() after it has checked the checksum
// over the pseudo-header, and turns the engine's output into wire bytes
// with tcp_build(). Payload is borrowed: an input segment points into the
// packet it came from, an output segment into the sender's buffer (in at
// most two pieces, since that buffer is a ring).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/result.h"
#include "net/inet/tcp/tcp_seq.h"

namespace rump::tcp {

enum TcpFlag : uint8_t {
  kFin = 0x01,
  kSyn = 0x02,
  kRst = 0x04,
  kPsh = 0x08,
  kAck = 0x10,
  kUrg = 0x20,
  kEce = 0x40,
  kCwr = 0x80,
};

struct SackBlock {
  Seq left;
  Seq right;  // one past the last byte
};

inline constexpr int kMaxSackBlocks = 4;
inline constexpr size_t kTcpHeaderLen = 20;
inline constexpr size_t kTcpMaxHeaderLen = 60;

struct TcpOptions {
  bool has_mss = false;
  uint16_t mss = 0;
  bool has_wscale = false;
  uint8_t wscale = 0;
  bool sack_permitted = false;
  bool has_ts = false;
  uint32_t tsval = 0;
  uint32_t tsecr = 0;
  uint8_t nsack = 0;
  SackBlock sack[kMaxSackBlocks] = {};
};

struct TcpSegment {
  uint16_t sport = 0;
  uint16_t dport = 0;
  Seq seq = 0;
  Seq ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;  // as on the wire: not yet scaled
  uint16_t urp = 0;
  TcpOptions opt;
  // Payload, in up to two pieces (a ring's wrap, or a packet's segments).
  const uint8_t* data = nullptr;
  size_t len = 0;
  const uint8_t* data2 = nullptr;
  size_t len2 = 0;
  // On send: a payload longer than this is cut into segments of this many
  // bytes by the device or below (TSO); 0 for a segment of one MSS.
  uint16_t gso_size = 0;
  // On receive: the send-ring store the payload was lent from (a segment
  // over lo, see ByteRing::share), or null.
  void* lender = nullptr;

  size_t payload_len() const { return len + len2; }
  // Drops the first d payload bytes, or keeps only the first n.
  void drop_front(size_t d) {
    if (d < len) {
      data += d;
      len -= d;
      return;
    }
    d -= len;
    data = data2 + d;
    len = len2 - d;
    data2 = nullptr;
    len2 = 0;
  }
  void keep_front(size_t n) {
    if (n <= len) {
      len = n;
      data2 = nullptr;
      len2 = 0;
    } else {
      len2 = n - len;
    }
  }
  // Sequence space the segment occupies: payload plus one each for SYN, FIN.
  uint32_t seq_len() const {
    return static_cast<uint32_t>(payload_len()) + ((flags & kSyn) ? 1 : 0) + ((flags & kFin) ? 1 : 0);
  }
  bool has(uint8_t f) const { return (flags & f) != 0; }
};

// Parses the TCP header and options in buf (the whole TCP segment, header
// and payload; the checksum is the caller's business). A truncated header,
// a bad data offset or a malformed option is EINVAL; unknown options are
// skipped. seg.data points into buf.
Result<void> tcp_parse(const uint8_t* buf, size_t len, TcpSegment& seg);

// Length of the header tcp_build() writes for seg (options padded to 4).
size_t tcp_header_len(const TcpSegment& seg);
// Writes header and options (checksum field zero) to out, which has room
// for tcp_header_len(seg) bytes; the payload is not copied. Returns the
// header length.
size_t tcp_build_header(const TcpSegment& seg, uint8_t* out);

}  // namespace rump::tcp
