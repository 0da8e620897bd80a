// The same program as C++ (stricter about variadics and pointer types).
#include "process_calls.c"
