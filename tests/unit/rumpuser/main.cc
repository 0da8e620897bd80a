// The Catch2 main of the librumpuser unit tests.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
