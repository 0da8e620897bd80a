// Runs vm_fuzz's model check on a fixed number of seeded random inputs, so
// the check is part of the normal test suite. Usage: vm_fuzz_replay [count]
// [seed], or vm_fuzz_replay FILE... to replay saved inputs.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]).find_first_not_of("0123456789") != std::string::npos) {
    for (int i = 1; i < argc; i++) {
      std::ifstream f(argv[i], std::ios::binary);
      std::vector<uint8_t> d((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      LLVMFuzzerTestOneInput(d.data(), d.size());
    }
    return 0;
  }
  int count = argc > 1 ? std::atoi(argv[1]) : 20000;
  uint32_t seed = argc > 2 ? static_cast<uint32_t>(std::atoi(argv[2])) : 20240611;
  std::mt19937 rng(seed);
  std::vector<uint8_t> d;
  for (int i = 0; i < count; i++) {
    d.resize(rng() % 2048);
    for (auto& b : d) b = static_cast<uint8_t>(rng());
    LLVMFuzzerTestOneInput(d.data(), d.size());
  }
  std::printf("vm_fuzz_replay: %d inputs agree with the model\n", count);
  return 0;
}
