// Runs ext_image_fuzz in the test suite: each seed image of
// tests/fuzz/corpus/ext_image_fuzz as it is (it must mount read-write, and
// after the writes e2fsck -fn must call it clean), then a bounded number
// of mutations of each (bytes changed at random in its metadata blocks,
// from a fixed seed), which must only ever fail cleanly.
// Usage: ext_image_fuzz_replay SEED_DIR [MUTATIONS_PER_SEED [SEED]], or
// ext_image_fuzz_replay FILE... to replay saved inputs.
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "ext_image_fuzz.h"

namespace {

std::vector<uint8_t> load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

bool fsck_clean(const char* img) {
  std::string cmd = std::string("e2fsck -fn '") + img + "' >/dev/null 2>&1";
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool have_e2fsck() { return std::system("command -v e2fsck >/dev/null 2>&1") == 0; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s SEED_DIR [MUTATIONS [SEED]] | FILE...\n", argv[0]);
    return 2;
  }
  struct stat st;
  if (stat(argv[1], &st) == 0 && !S_ISDIR(st.st_mode)) {
    for (int i = 1; i < argc; i++) {
      std::vector<uint8_t> d = load(argv[i]);
      int r = ext_image_fuzz_run(d.data(), d.size(), true);
      std::printf("%s: %s\n", argv[i], r == 2 ? "read-write" : r == 1 ? "read-only" : "not mounted");
    }
    return 0;
  }
  std::string dir = argv[1];
  int mutations = argc > 2 ? std::atoi(argv[2]) : 40;
  std::mt19937 rng(argc > 3 ? static_cast<uint32_t>(std::atoi(argv[3])) : 20261201);
  std::vector<std::string> seeds;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') seeds.push_back(dir + "/" + e->d_name);
    closedir(d);
  }
  std::sort(seeds.begin(), seeds.end());
  if (seeds.empty()) {
    std::fprintf(stderr, "no seeds in %s\n", dir.c_str());
    return 1;
  }
  bool fsck = have_e2fsck();
  int failures = 0, mounted = 0, runs = 0;
  for (const std::string& s : seeds) {
    std::vector<uint8_t> img = load(s);
    int r = ext_image_fuzz_run(img.data(), img.size(), true);
    if (r != 2) {
      std::fprintf(stderr, "%s: the seed did not mount read-write\n", s.c_str());
      failures++;
    } else if (fsck && !fsck_clean(ext_image_fuzz_path())) {
      std::fprintf(stderr, "%s: e2fsck -fn finds the image unclean after the writes\n", s.c_str());
      failures++;
    }
    // Metadata lives in the first blocks of these small images: the
    // superblock, group descriptors, bitmaps, the inode table, directories.
    size_t span = std::min<size_t>(img.size(), 96 << 10);
    for (int m = 0; m < mutations; m++) {
      std::vector<uint8_t> x = img;
      int changes = 1 + static_cast<int>(rng() % 16);
      for (int c = 0; c < changes; c++) {
        size_t at = 1024 + rng() % (span - 1024);
        switch (rng() % 4) {
          case 0: x[at] = static_cast<uint8_t>(rng()); break;
          case 1: x[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
          case 2: x[at] = 0xff; break;
          default: x[at] = 0; break;
        }
      }
      mounted += ext_image_fuzz_run(x.data(), x.size(), true) != 0;
      runs++;
    }
  }
  std::printf("ext_image_fuzz_replay: %zu seeds, %d mutated images (%d mounted), %d failures\n", seeds.size(), runs,
              mounted, failures);
  return failures == 0 ? 0 : 1;
}
