#!/bin/bash -eu
# ClusterFuzzLite runs this in its builder image: the tree's OSS-Fuzz build.
exec "$SRC/rump/tests/fuzz/oss-fuzz/build.sh"
