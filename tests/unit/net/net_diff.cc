// The differential harness (see net_diff.h).
#include "net_diff.h"

#include <linux/if_tun.h>
#include <net/if.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <rump/rumpnet.h>

#include <atomic>
#include <memory>
#include <sstream>
#include <vector>

namespace net_test {

namespace {

std::atomic<int> g_serial{0};

std::vector<std::string> lines(const Log& l) {
  std::vector<std::string> out;
  std::istringstream in(std::string(l.buf, l.n));
  for (std::string s; std::getline(in, s);) out.push_back(s);
  return out;
}

// The directory a rump scenario works in, parents included.
void rump_mkdirs(const char* dir) {
  std::string p;
  for (const char* c = dir + 1;; c++) {
    if (*c == '/' || *c == '\0') {
      p.assign(dir, c - dir);
      rump_sys_mkdir(p.c_str(), 0777);
      if (*c == '\0') break;
    }
  }
}

}  // namespace

int make_ether_rump(const char* name) {
  char t[] = "/tmp/rump-ether-XXXXXX";
  if (!mkdtemp(t)) return -1;
  std::string bus = std::string(t) + "/bus";
  int unit = -1;
  int e = rump_pub_shmif_create(bus.c_str(), &unit);
  unlink(bus.c_str());
  rmdir(t);
  return e == 0 && unit >= 0 && std::string(name) == "shmif" + std::to_string(unit) ? 0 : -1;
}

int make_ether_host(const char* name) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  int r = ioctl(fd, TUNSETIFF, &ifr);
  if (r == 0) r = ioctl(fd, TUNSETPERSIST, 1);
  close(fd);
  return r;
}

Env make_env() {
  Env e{};
  snprintf(e.dir, sizeof e.dir, "/tmp/rumpnet-XXXXXX");
  REQUIRE(mkdtemp(e.dir) != nullptr);
  snprintf(e.abstract, sizeof e.abstract, "rumpnet-%d-%d", static_cast<int>(getpid()), g_serial.fetch_add(1));
  return e;
}

void in_rump(const Env& env, const std::function<void()>& fn) {
  rump_test::on_fresh_thread([&] {
    rump_test::KernelUp up;
    rump_test::Kid kid = rump_test::fork_kid();
    rump_lwproc_switch(kid.l);
    REQUIRE(rump_set_action(SIGPIPE, kSigIgn) == 0);
    rump_mkdirs(env.dir);
    fn();
    rump_lwproc_switch(nullptr);
  });
}

void run_diff(ScenarioFn host, ScenarioFn rump) {
  Env env = make_env();
  auto hl = std::make_unique<Log>();
  *hl = rump_test::host_child<Log>([&] {
    signal(SIGPIPE, SIG_IGN);
    Log l{};
    l.n = 0;
    host(l, env);
    return l;
  });
  std::error_code ec;
  std::filesystem::remove_all(env.dir, ec);
  auto rl = std::make_unique<Log>();
  rl->n = 0;
  rl->overflow = false;
  in_rump(env, [&] { rump(*rl, env); });
  REQUIRE(!hl->overflow);
  REQUIRE(!rl->overflow);
  std::vector<std::string> h = lines(*hl), r = lines(*rl);
  if (getenv("RUMPNET_DIFF_DUMP")) fprintf(stderr, "%.*s", static_cast<int>(rl->n), rl->buf);
  if (getenv("RUMPNET_DIFF_HOST")) fprintf(stderr, "%.*s", static_cast<int>(hl->n), hl->buf);
  size_t n = h.size() > r.size() ? h.size() : r.size();
  int shown = 0;
  for (size_t i = 0; i < n && shown < 10; i++) {
    std::string a = i < h.size() ? h[i] : "(none)";
    std::string b = i < r.size() ? r[i] : "(none)";
    if (a != b) {
      INFO("host: " << a << "\nrump: " << b);
      CHECK(a == b);
      shown++;
    }
  }
  CHECK(h.size() == r.size());
  CHECK(h.size() > 0);
}

bool can_unshare_net() {
  pid_t p = fork();
  if (p == 0) _exit(unshare(CLONE_NEWNET) == 0 ? 0 : 1);
  int st = 0;
  waitpid(p, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

}  // namespace net_test
