// The same program as C++.
#include "netbsd_rump.c"
