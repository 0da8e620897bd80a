// sockaddr6.h: an IPv6 socket address from text, for the network tests.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>

inline sockaddr_in6 in6(const char* a, uint16_t port) {
  sockaddr_in6 s{};
  s.sin6_family = AF_INET6;
  s.sin6_port = htons(port);
  inet_pton(AF_INET6, a, &s.sin6_addr);
  return s;
}
inline sockaddr* sa6(sockaddr_in6& a) { return reinterpret_cast<sockaddr*>(&a); }
