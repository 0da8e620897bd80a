// tcp_wire.cc: TCP header and option encoding (RFC 9293 3.1, RFC 7323,
// RFC 2018). Options are written in the order Linux writes them so that
// captures compare easily: MSS, SACK-permitted + timestamps, window scale,
// SACK blocks.
#include "net/inet/tcp/tcp_segment.h"

namespace rump::tcp {
namespace {

enum : uint8_t {
  kOptEnd = 0,
  kOptNop = 1,
  kOptMss = 2,
  kOptWscale = 3,
  kOptSackPermitted = 4,
  kOptSack = 5,
  kOptTimestamp = 8,
};

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

Result<void> parse_options(const uint8_t* p, size_t len, TcpOptions& o) {
  size_t i = 0;
  while (i < len) {
    uint8_t kind = p[i];
    if (kind == kOptEnd) break;
    if (kind == kOptNop) {
      i++;
      continue;
    }
    if (i + 1 >= len) return err(EINVAL);
    size_t olen = p[i + 1];
    if (olen < 2 || i + olen > len) return err(EINVAL);
    const uint8_t* v = p + i + 2;
    switch (kind) {
      case kOptMss:
        if (olen != 4) return err(EINVAL);
        o.has_mss = true;
        o.mss = get16(v);
        break;
      case kOptWscale:
        if (olen != 3) return err(EINVAL);
        o.has_wscale = true;
        // RFC 7323 2.3: a shift above 14 is used as 14.
        o.wscale = v[0] > 14 ? 14 : v[0];
        break;
      case kOptSackPermitted:
        if (olen != 2) return err(EINVAL);
        o.sack_permitted = true;
        break;
      case kOptSack: {
        if ((olen - 2) % 8 != 0) return err(EINVAL);
        size_t n = (olen - 2) / 8;
        o.nsack = 0;
        for (size_t b = 0; b < n && b < kMaxSackBlocks; b++) {
          o.sack[b] = SackBlock{get32(v + 8 * b), get32(v + 8 * b + 4)};
          o.nsack++;
        }
        break;
      }
      case kOptTimestamp:
        if (olen != 10) return err(EINVAL);
        o.has_ts = true;
        o.tsval = get32(v);
        o.tsecr = get32(v + 4);
        break;
      default:
        break;
    }
    i += olen;
  }
  return {};
}

}  // namespace

Result<void> tcp_parse(const uint8_t* buf, size_t len, TcpSegment& seg) {
  if (len < kTcpHeaderLen) return err(EINVAL);
  size_t off = static_cast<size_t>(buf[12] >> 4) * 4;
  if (off < kTcpHeaderLen || off > len) return err(EINVAL);
  seg = TcpSegment{};
  seg.sport = get16(buf);
  seg.dport = get16(buf + 2);
  seg.seq = get32(buf + 4);
  seg.ack = get32(buf + 8);
  seg.flags = buf[13];
  seg.window = get16(buf + 14);
  seg.urp = get16(buf + 18);
  TRY(parse_options(buf + kTcpHeaderLen, off - kTcpHeaderLen, seg.opt));
  seg.data = buf + off;
  seg.len = len - off;
  return {};
}

size_t tcp_header_len(const TcpSegment& seg) {
  const TcpOptions& o = seg.opt;
  size_t n = 0;
  if (o.has_mss) n += 4;
  if (o.has_ts) n += 12;  // NOP NOP TS, or SACK-permitted TS
  else if (o.sack_permitted) n += 4;  // NOP NOP SACK-permitted
  if (o.has_wscale) n += 4;
  if (o.nsack > 0) n += 4 + 8 * o.nsack;
  return kTcpHeaderLen + n;
}

size_t tcp_build_header(const TcpSegment& seg, uint8_t* out) {
  size_t hlen = tcp_header_len(seg);
  put16(out, seg.sport);
  put16(out + 2, seg.dport);
  put32(out + 4, seg.seq);
  put32(out + 8, seg.ack);
  out[12] = static_cast<uint8_t>((hlen / 4) << 4);
  out[13] = seg.flags;
  put16(out + 14, seg.window);
  put16(out + 16, 0);
  put16(out + 18, seg.urp);
  uint8_t* p = out + kTcpHeaderLen;
  const TcpOptions& o = seg.opt;
  if (o.has_mss) {
    p[0] = kOptMss;
    p[1] = 4;
    put16(p + 2, o.mss);
    p += 4;
  }
  if (o.has_ts) {
    if (o.sack_permitted) {
      p[0] = kOptSackPermitted;
      p[1] = 2;
    } else {
      p[0] = kOptNop;
      p[1] = kOptNop;
    }
    p[2] = kOptTimestamp;
    p[3] = 10;
    put32(p + 4, o.tsval);
    put32(p + 8, o.tsecr);
    p += 12;
  } else if (o.sack_permitted) {
    p[0] = kOptNop;
    p[1] = kOptNop;
    p[2] = kOptSackPermitted;
    p[3] = 2;
    p += 4;
  }
  if (o.has_wscale) {
    p[0] = kOptNop;
    p[1] = kOptWscale;
    p[2] = 3;
    p[3] = o.wscale;
    p += 4;
  }
  if (o.nsack > 0) {
    p[0] = kOptNop;
    p[1] = kOptNop;
    p[2] = kOptSack;
    p[3] = static_cast<uint8_t>(2 + 8 * o.nsack);
    p += 4;
    for (int b = 0; b < o.nsack; b++) {
      put32(p, o.sack[b].left);
      put32(p + 4, o.sack[b].right);
      p += 8;
    }
  }
  return hlen;
}

}  // namespace rump::tcp
