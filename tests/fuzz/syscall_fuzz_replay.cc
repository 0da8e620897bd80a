// Runs syscall_fuzz on seeded random inputs (the fuzz target in the test
// suite). With --write-seeds DIR DICT it writes the seed corpus and the
// dictionary of tests/fuzz/ instead (the call bytes depend on the syscall
// table: rerun it when the table changes).
// Inputs run in sim mode (a "sim" kernel seeded from the input, the
// target's default); every fourth one runs twice and must give the same
// trace both times (each call's number and result, in order), and every
// eighth runs on the pthread backend instead.
// With --bench N it times N inputs and prints executions per second;
// --bench-kcov N does the same with each input traced by kcov;
// --bench-pthread N times them on the pthread backend.
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int syscall_fuzz_call_byte(const char* name);
void syscall_fuzz_use_kcov(bool on);
void syscall_fuzz_use_sim(bool on);
uint64_t syscall_fuzz_trace_hash();
void syscall_fuzz_call_shape(uint8_t b, int* nargs, unsigned* ptr_mask);

namespace {

// Argument bytes: 7 is the scratch area's path, 1 a pointer inside it;
// small integers below 128 are themselves (mod 16); 129 is 64 (O_CREAT),
// 134 is 0644.
struct Call {
  const char* name;
  std::vector<uint8_t> args;
};

const std::vector<std::vector<Call>> kSeeds = {
    {{"mkdir", {7, 134}}, {"open", {7, 0, 0}}, {"getdents64", {3, 1, 129}}, {"close", {3}}},
    {{"open", {7, 129, 134}}, {"write", {3, 1, 12}}, {"lseek", {3, 0, 0}}, {"read", {3, 1, 12}},
     {"fstat", {3, 1}}, {"close", {3}}, {"unlink", {7}}},
    {{"pipe2", {2, 0}}, {"write", {4, 1, 3}}, {"poll", {2, 1, 0}}, {"read", {3, 1, 3}}, {"dup", {3}},
     {"close", {4}}, {"read", {5, 1, 3}}},
    {{"mmap", {0, 12, 3, 2 + 32, 6, 0}}, {"mprotect", {2, 12, 1}}, {"munmap", {2, 12}}},
    {{"getpid", {}}, {"getuid", {}}, {"umask", {2}}, {"getcwd", {1, 9}}, {"chdir", {7}}},
    {{"socketpair", {1, 1, 0, 1}}, {"sendto", {3, 1, 4, 0, 0, 0}}, {"recvfrom", {4, 1, 4, 0, 0, 0}}},
    {{"kill", {0, 0}}, {"rt_sigprocmask", {0, 1, 0, 8}}, {"nanosleep", {1, 0}}},
};

bool put(std::vector<uint8_t>& out, const Call& c) {
  int b = syscall_fuzz_call_byte(c.name);
  if (b < 0) return false;
  out.push_back(static_cast<uint8_t>(b));
  out.insert(out.end(), c.args.begin(), c.args.end());
  return true;
}

int write_seeds(const char* dir, const char* dict) {
  int n = 0;
  for (const auto& seq : kSeeds) {
    std::vector<uint8_t> in;
    for (const Call& c : seq) put(in, c);
    if (in.empty()) continue;
    std::ofstream f(std::string(dir) + "/seed" + std::to_string(n++), std::ios::binary);
    f.write(reinterpret_cast<const char*>(in.data()), static_cast<std::streamsize>(in.size()));
  }
  // The dictionary: every call with "interesting" arguments (the path for
  // pointers, 0 for integers).
  std::ofstream d(dict);
  d << "# syscall_fuzz: one entry per call: its selector byte, then an argument\n"
       "# byte each (7: the scratch area's path; 0 for integers).\n"
       "# Written by syscall_fuzz_replay --write-seeds.\n";
  for (int b = 0; b < 256; b++) {
    int nargs;
    unsigned mask;
    syscall_fuzz_call_shape(static_cast<uint8_t>(b), &nargs, &mask);
    char line[64];
    std::snprintf(line, sizeof line, "\"\\x%02x", b);
    std::string e = line;
    for (int j = 0; j < nargs; j++) {
      std::snprintf(line, sizeof line, "\\x%02x", (mask & (1u << j)) ? 7 : 0);
      e += line;
    }
    d << e << "\"\n";
  }
  std::printf("syscall_fuzz_replay: %d seeds\n", n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2], argv[3]);
  bool bench = argc == 3 && std::strcmp(argv[1], "--bench") == 0;
  if (argc == 3 && std::strcmp(argv[1], "--bench-kcov") == 0) {
    syscall_fuzz_use_kcov(true);
    bench = true;
  }
  if (argc == 3 && std::strcmp(argv[1], "--bench-pthread") == 0) {
    syscall_fuzz_use_sim(false);
    bench = true;
  }
  if (bench) {
    // Short random inputs, as a fuzzer's typical ones: one kernel each.
    int runs = std::atoi(argv[2]);
    std::mt19937 rng(1);
    std::vector<std::vector<uint8_t>> inputs(256);
    for (auto& in : inputs) {
      in.resize(8 + rng() % 56);
      for (auto& b : in) b = static_cast<uint8_t>(rng());
    }
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < runs; r++) {
      const auto& in = inputs[static_cast<size_t>(r) % inputs.size()];
      LLVMFuzzerTestOneInput(in.data(), in.size());
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("syscall_fuzz: %d inputs in %.3f s: %.0f executions/s\n", runs, s, runs / s);
    return 0;
  }
  int runs = argc > 1 ? std::atoi(argv[1]) : 3000;
  // --only N: input N of the sequence alone (twice), to read it with
  // SYSCALL_FUZZ_PRINT=1; --from N: the inputs from N on.
  int only = argc > 3 && std::strcmp(argv[2], "--only") == 0 ? std::atoi(argv[3]) : -1;
  int from = argc > 3 && std::strcmp(argv[2], "--from") == 0 ? std::atoi(argv[3]) : 0;
  std::mt19937 rng(20261123);
  std::vector<uint8_t> buf;
  int replayed = 0;
  for (int r = 0; r < runs; r++) {
    buf.resize(rng() % 512);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    if ((only >= 0 && r != only) || r < from) continue;
    syscall_fuzz_use_sim(r % 8 != 7);
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
    if (r % 4 == 0 || only >= 0) {
      uint64_t first = syscall_fuzz_trace_hash();
      LLVMFuzzerTestOneInput(buf.data(), buf.size());
      if (syscall_fuzz_trace_hash() != first) {
        std::fprintf(stderr, "syscall_fuzz_replay: input %d (%zu bytes) gave two different traces in sim mode\n", r,
                     buf.size());
        return 1;
      }
      replayed++;
    }
  }
  std::printf("syscall_fuzz_replay: %d inputs, %d replayed with the same trace\n", runs, replayed);
  return 0;
}
