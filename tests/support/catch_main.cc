// The Catch2 main of every test program, compiled once and linked by all
// (catch2_dep in tests/meson.build): Catch2's runner is the costliest
// translation unit of the suite to compile.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
