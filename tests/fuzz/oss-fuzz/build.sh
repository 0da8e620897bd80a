#!/bin/bash -eu
# Builds the fuzz targets the way OSS-Fuzz and ClusterFuzzLite expect: run
# from the source tree inside their builder image, with $CC, $CXX, $CFLAGS,
# $CXXFLAGS (sanitizers, -fsanitize=fuzzer-no-link), $LIB_FUZZING_ENGINE and
# $OUT set. Each target goes to $OUT with its seed corpus (TARGET_seed_corpus.zip)
# and dictionary (TARGET.dict); the kernel's shared libraries go to
# $OUT/lib, found through the targets' $ORIGIN run path.
cd "$(dirname "$0")/../../.."
export LDFLAGS="${LDFLAGS:-} -Wl,-rpath,\$ORIGIN/lib"
meson setup "$WORK/build" -Dfuzz=true -Dfuzzing_engine="$LIB_FUZZING_ENGINE" \
  -Db_lundef=false -Dbench=false --buildtype=debugoptimized
ninja -C "$WORK/build" tests/fuzz/syscall_fuzz tests/fuzz/vm_fuzz tests/fuzz/ext_image_fuzz
mkdir -p "$OUT/lib"
find "$WORK/build" -name 'lib*.so*' -type f -exec cp {} "$OUT/lib/" \;
# The libraries' sonames point at their versioned names: keep both.
find "$WORK/build" -name 'lib*.so*' -type l -exec cp -P {} "$OUT/lib/" \;
for t in syscall_fuzz vm_fuzz ext_image_fuzz; do
  cp "$WORK/build/tests/fuzz/$t" "$OUT/"
  (cd "tests/fuzz/corpus/$t" && zip -q -j "$OUT/${t}_seed_corpus.zip" ./*)
  cp "tests/fuzz/$t.dict" "$OUT/"
done
