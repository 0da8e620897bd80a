// Runs packet_fuzz on its seed corpus and on seeded random inputs (the
// fuzz target in the test suite). Usage:
//   packet_fuzz_replay [--corpus DIR] [count] [seed]   seeds, then random inputs
//   packet_fuzz_replay FILE...                          saved inputs
//   packet_fuzz_replay --write-seeds DIR                writes the seed corpus
// Random inputs are records (packet_fuzz.cc) with random selectors and
// bodies, most of them fixed up, so that they get past the first checks.
#include <dirent.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using Bytes = std::vector<uint8_t>;

void record(Bytes& in, uint8_t sel, const Bytes& pkt) {
  in.push_back(sel);
  in.push_back(static_cast<uint8_t>(pkt.size()));
  in.push_back(static_cast<uint8_t>(pkt.size() >> 8));
  in.insert(in.end(), pkt.begin(), pkt.end());
}

// Selector bits (packet_fuzz.cc).
constexpr uint8_t kLo = 1, kFix = 0x20, kDrain = 0x40, kLo6 = 0x80;
constexpr uint8_t kEthIp = 0 << 3, kEthIp6 = 1 << 3, kEthArp = 2 << 3;
constexpr uint8_t kToBcast = 1 << 1, kToSolicited = 2 << 1;

Bytes ip4(uint8_t proto, const Bytes& l4, uint16_t frag = 0) {
  Bytes p = {0x45, 0, 0, 0, 0, 1, static_cast<uint8_t>(frag >> 8), static_cast<uint8_t>(frag), 64, proto, 0, 0};
  p.resize(20);
  p.insert(p.end(), l4.begin(), l4.end());
  return p;
}
Bytes ip6(uint8_t nxt, const Bytes& l4, uint8_t hlim = 64, bool mcast = false) {
  Bytes p(40);
  p[0] = 0x60;
  p[6] = nxt;
  p[7] = hlim;
  if (mcast) {  // ff02::1:ff00:1, the solicited-node group of 2001:db8::1
    p[24] = 0xff;
    p[25] = 0x02;
    p[35] = 0x01;
    p[36] = 0xff;
    p[39] = 0x01;
  }
  p.insert(p.end(), l4.begin(), l4.end());
  return p;
}
Bytes tcp_syn(uint16_t dport) {
  return {0x9c, 0x40, static_cast<uint8_t>(dport >> 8), static_cast<uint8_t>(dport), 0, 0, 0, 1, 0, 0, 0, 0,
          0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 0x05, 0xb4};
}
Bytes udp53(const char* s) {
  size_t n = 8 + std::strlen(s);
  Bytes u = {0x13, 0x88, 0, 53, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n), 0, 0};
  u.insert(u.end(), s, s + std::strlen(s));
  return u;
}

std::vector<Bytes> seeds() {
  std::vector<Bytes> out;
  Bytes in;
  // TCP SYNs to the listener over IPv4 and IPv6 on eth0 (the answers go
  // through ARP and ND), then UDP to port 53.
  record(in, kFix | kEthIp, ip4(IPPROTO_TCP, tcp_syn(80)));
  record(in, kFix | kEthIp6, ip6(IPPROTO_TCP, tcp_syn(80)));
  record(in, kFix | kEthIp | kDrain, ip4(IPPROTO_UDP, udp53("q4")));
  record(in, kFix | kEthIp6 | kDrain, ip6(IPPROTO_UDP, udp53("q6")));
  out.push_back(in);
  in.clear();
  // ARP request for 10.0.0.1, and a neighbour solicitation for
  // 2001:db8::1 with a source link-layer option, then an advertisement.
  record(in, kEthArp | kToBcast,
         {0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1});
  Bytes ns = {135, 0, 0, 0, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
              1, 1, 2, 0, 0, 0, 0, 2};
  record(in, kFix | kEthIp6 | kToSolicited, ip6(IPPROTO_ICMPV6, ns, 255, true));
  Bytes na = {136, 0, 0, 0, 0x60, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
              2, 1, 2, 0, 0, 0, 0, 2};
  record(in, kFix | kEthIp6, ip6(IPPROTO_ICMPV6, na, 255));
  out.push_back(in);
  in.clear();
  // Echo requests on lo, both families, and IPv4 and IPv6 fragments.
  record(in, kFix | kLo, ip4(IPPROTO_ICMP, {8, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'}));
  record(in, kFix | kLo | kLo6, ip6(IPPROTO_ICMPV6, {128, 0, 0, 0, 0, 1, 0, 1, 'p', 'i', 'n', 'g'}));
  Bytes u = udp53("0123456789abcdef");
  record(in, kFix | kLo, ip4(IPPROTO_UDP, Bytes(u.begin(), u.begin() + 16), 0x2000));
  record(in, kFix | kLo | kDrain, ip4(IPPROTO_UDP, Bytes(u.begin() + 16, u.end()), 2));
  Bytes f1 = {IPPROTO_UDP, 0, 0, 1, 0, 0, 0, 7};
  f1.insert(f1.end(), u.begin(), u.begin() + 16);
  Bytes f2 = {IPPROTO_UDP, 0, 0, 16, 0, 0, 0, 7};
  f2.insert(f2.end(), u.begin() + 16, u.end());
  record(in, kLo | kLo6 | kFix, ip6(IPPROTO_FRAGMENT, f1));
  record(in, kLo | kLo6 | kFix | kDrain, ip6(IPPROTO_FRAGMENT, f2));
  out.push_back(in);
  in.clear();
  // Extension headers, then a packet too big about a packet to us.
  record(in, kFix | kEthIp6, ip6(IPPROTO_DSTOPTS, {IPPROTO_UDP, 0, 1, 4, 0, 0, 0, 0, 0x13, 0x88, 0, 53, 0, 8, 0, 0}));
  Bytes ptb = {2, 0, 0, 0, 0, 0, 0x05, 0x00};
  Bytes q = ip6(IPPROTO_UDP, udp53("x"));
  ptb.insert(ptb.end(), q.begin(), q.end());
  record(in, kFix | kEthIp6, ip6(IPPROTO_ICMPV6, ptb));
  out.push_back(in);
  return out;
}

Bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "--write-seeds") == 0) {
    int n = 0;
    for (const Bytes& s : seeds()) {
      std::string path = std::string(argv[2]) + "/seed" + std::to_string(n++);
      std::ofstream f(path, std::ios::binary);
      f.write(reinterpret_cast<const char*>(s.data()), static_cast<std::streamsize>(s.size()));
    }
    return 0;
  }
  int arg = 1;
  int replayed = 0;
  if (argc > 2 && std::strcmp(argv[1], "--corpus") == 0) {
    if (DIR* d = opendir(argv[2])) {
      while (dirent* e = readdir(d)) {
        if (e->d_name[0] == '.') continue;
        Bytes b = read_file(std::string(argv[2]) + "/" + e->d_name);
        LLVMFuzzerTestOneInput(b.data(), b.size());
        replayed++;
      }
      closedir(d);
    }
    arg = 3;
  } else if (argc > 1 && std::string(argv[1]).find_first_not_of("0123456789") != std::string::npos) {
    for (int i = 1; i < argc; i++) {
      Bytes b = read_file(argv[i]);
      LLVMFuzzerTestOneInput(b.data(), b.size());
    }
    return 0;
  }
  for (const Bytes& s : seeds()) LLVMFuzzerTestOneInput(s.data(), s.size());
  int count = argc > arg ? std::atoi(argv[arg]) : 2000;
  uint32_t seed = argc > arg + 1 ? static_cast<uint32_t>(std::atoi(argv[arg + 1])) : 20261201;
  std::mt19937 rng(seed);
  std::vector<Bytes> base = seeds();
  for (int i = 0; i < count; i++) {
    Bytes in;
    if (rng() % 2) {
      // A seed with some bytes changed.
      in = base[rng() % base.size()];
      for (int k = 0, n = 1 + static_cast<int>(rng() % 8); k < n && !in.empty(); k++)
        in[rng() % in.size()] = static_cast<uint8_t>(rng());
    } else {
      for (int r = 0, n = 1 + static_cast<int>(rng() % 6); r < n; r++) {
        Bytes pkt(rng() % 200);
        for (auto& b : pkt) b = static_cast<uint8_t>(rng());
        if (pkt.size() > 6 && rng() % 2) pkt[6] = static_cast<uint8_t>(rng() % 2 ? 6 : 17);  // a transport
        uint8_t sel = static_cast<uint8_t>(rng());
        if (rng() % 4) sel |= kFix;
        record(in, sel, pkt);
      }
    }
    LLVMFuzzerTestOneInput(in.data(), in.size());
  }
  std::printf("packet_fuzz_replay: %d corpus inputs, %zu seeds and %d random inputs taken\n", replayed,
              base.size(), count);
  return 0;
}
