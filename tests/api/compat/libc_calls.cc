// The same program as C++ (stricter about variadics and pointer types).
#include "libc_calls.c"
