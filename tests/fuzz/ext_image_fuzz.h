// The body of ext_image_fuzz (ext_image_fuzz.cc), shared by the libFuzzer
// target and its replay in the test suite.
#pragma once

#include <cstddef>
#include <cstdint>

// Mounts the image in data[0, size) in a fresh kernel and walks it; with
// write, mounts read-write (read-only if that is refused) and changes it.
// Returns 0 if no mount worked, 1 if read-only, 2 if read-write. The image
// stays in the host file ext_image_fuzz_path() until the next call.
int ext_image_fuzz_run(const uint8_t* data, size_t size, bool write);
const char* ext_image_fuzz_path();
