// Runs syscall_fuzz on seeded random inputs (the fuzz target in the test suite).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 3000;
  std::mt19937 rng(20261123);
  std::vector<uint8_t> buf;
  for (int r = 0; r < runs; r++) {
    buf.resize(rng() % 512);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
  }
  std::printf("syscall_fuzz_replay: %d inputs\n", runs);
  return 0;
}
