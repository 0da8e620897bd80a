// net_stats.h: the counters of a net.*.stats sysctl node ("name value"
// lines), by name, read from the calling thread's kernel.
#pragma once

#include <rump/rump_syscalls.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>

inline std::map<std::string, uint64_t> net_stats(const char* node) {
  char buf[4096];
  size_t len = sizeof buf;
  REQUIRE(rump_sys_sysctlbyname(node, buf, &len, nullptr, 0) == 0);
  std::map<std::string, uint64_t> m;
  std::istringstream in(std::string(buf, len > 0 ? len - 1 : 0));
  std::string k;
  uint64_t v;
  while (in >> k >> v) m[k] = v;
  return m;
}
