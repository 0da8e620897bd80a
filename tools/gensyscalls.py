#!/usr/bin/env python3
"""Derives everything about system calls from syscalls.master.

Usage:
  gensyscalls.py header  MASTER OUT.h          public <rump/rump_syscalls.h>
  gensyscalls.py protos  MASTER OUT.h          kernel handler prototypes
  gensyscalls.py faction MASTER NAME OUT.cc    a faction's sysent entries
  gensyscalls.py wrappers MASTER OUT.cc        every rump_sys_* wrapper (core)
  gensyscalls.py names   MASTER OUT.cc         the name table (tracing, fuzz)

Wrappers take libc's form: trailing arguments written `...type name` are
variadic in rump_sys_<name> (as libc's open, fcntl, ioctl, prctl), and lines
starting with `@` give libc's and NetBSD's names and forms where they differ
from the raw call (see syscalls.master).
"""
import re
import sys


class Call:
    def __init__(self, name, number, faction, ret, args, variadic=0):
        self.name = name
        self.number = number
        self.faction = faction
        self.ret = ret
        self.args = args  # list of (type, name)
        self.variadic = variadic  # how many trailing arguments are libc's "..."
        self.wrapper_name = f"rump_sys_{name}"  # rump___sysimpl_<name> when a libc form takes the name


    @property
    def nr(self):
        return f"SYS_{self.name}" if self.number == "host" else self.number

    @property
    def ptr_mask(self):
        """Bit i set: argument i is a pointer (a user address)."""
        return sum(1 << i for i, (t, _) in enumerate(self.args) if is_pointer(t))

    @property
    def in_mask(self):
        """Bit i set: argument i is a const pointer (read by the kernel only)."""
        return sum(1 << i for i, (t, _) in enumerate(self.args)
                   if is_pointer(t) and t.replace(" ", "").startswith("const"))

    @property
    def public_nr(self):
        """The number as a public program spells it."""
        return f"SYS_{self.name}" if self.number == "host" else f"RUMP_SYS_{self.name}"


class Form:
    """A libc or NetBSD spelling: rump_sys_<name>(params) returning expr."""
    def __init__(self, name, ret, params, expr):
        self.name = name
        self.ret = ret
        self.params = params
        self.expr = expr


# libc reads open's mode only when the flags create a file.
VARIADIC_READ_IF = {
    "open": "(flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE",
    "openat": "(flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE",
}


def parse(path):
    """Returns (calls, forms)."""
    calls, forms = [], []
    for lineno, line in enumerate(open(path), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("@"):
            cols = [c.strip() for c in line[1:].split("|")]
            if len(cols) != 4:
                sys.exit(f"{path}:{lineno}: expected '@ name | return | params | expression'")
            forms.append(Form(*cols))
            continue
        cols = [c.strip() for c in line.split("|")]
        if len(cols) != 5:
            sys.exit(f"{path}:{lineno}: expected 5 columns")
        name, number, faction, ret, argtext = cols
        args = []
        variadic = 0
        if argtext != "void":
            parts = argtext.split(",")
            for i, a in enumerate(parts):
                a = a.strip()
                if a.startswith("..."):
                    variadic += 1
                    a = a[3:].strip()
                elif variadic:
                    sys.exit(f"{path}:{lineno}: only trailing arguments can be variadic")
                m = re.match(r"^(.*?)(\w+)$", a)
                if not m:
                    sys.exit(f"{path}:{lineno}: bad argument '{a}'")
                args.append((m.group(1).strip(), m.group(2)))
        if len(args) > 6:
            sys.exit(f"{path}:{lineno}: more than 6 arguments")
        calls.append(Call(name, number, faction, ret, args, variadic))
    taken = {f.name for f in forms}
    for c in calls:
        if c.name in taken:
            c.wrapper_name = f"rump___sysimpl_{c.name}"
    return calls, forms


def c_param(t, n):
    return f"{t}{n}" if t.endswith("*") else f"{t} {n}"


def wrapper_params(c):
    """The wrapper's parameter list as libc writes it."""
    fixed = c.args[:-c.variadic] if c.variadic else c.args
    params = ", ".join(c_param(t, n) for t, n in fixed)
    if c.variadic:
        params += ", ..."
    return params or "void"


def is_pointer(t):
    return "*" in t


def va_type(t):
    """The type va_arg reads for an argument of type t (after promotion)."""
    if is_pointer(t):
        return t
    if t in ("mode_t", "unsigned int", "uid_t", "gid_t"):
        return "unsigned int"
    if t in ("int", "short", "char"):
        return "int"
    return t


def kernel_type(t):
    """Type of the argument as the handler sees it."""
    if is_pointer(t):
        base = t.replace("*", "").strip()
        if base.startswith("const "):
            base = base[len("const "):]
        return f"UserPtr<{base}>"
    return t


def unpack(t, expr):
    if is_pointer(t):
        base = kernel_type(t)
        return f"{base}{{static_cast<uintptr_t>({expr})}}"
    return f"static_cast<{t}>({expr})"


HEADER_INCLUDES = """#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

struct timezone;
struct tms;
struct sysinfo;
"""


def gen_header(calls, forms, out):
    w = out.write
    w("/* rump_syscalls.h: the rump_sys_* system call wrappers.\n"
      " * GENERATED from librumpkern/kern/syscalls.master by tools/gensyscalls.py;\n"
      " * do not edit. Each wrapper makes the system call in the calling\n"
      " * thread's current kernel and returns -1 with errno set on failure, as\n"
      " * the host's libc wrapper would. Numbers, flags and structures are the\n"
      " * host's (Linux); calls this kernel adds have RUMP_SYS_* numbers. */\n")
    w("#ifndef RUMP_RUMP_SYSCALLS_H_\n#define RUMP_RUMP_SYSCALLS_H_\n\n")
    w(HEADER_INCLUDES)
    w("\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n")
    for c in calls:
        if c.number != "host":
            w(f"#define RUMP_SYS_{c.name} {c.number}\n")
    w("#define RUMP_SYS_MAXSYSCALL 1024 /* numbers at or above are ENOSYS */\n\n")
    w("/* Raw entry: returns the result, or -errno. Unknown numbers: -ENOSYS. */\n")
    w("long rump_syscall(long nr, const long args[6]);\n")
    w("/* The name of a system call number, or NULL. */\n")
    w("const char *rump_syscall_name(long nr);\n\n")
    for c in calls:
        w(f"{c.ret} {c.wrapper_name}({wrapper_params(c)});\n")
    w("\n/* libc's and NetBSD's names and forms where they differ from the raw\n"
      " * call (the raw call stays reachable through rump_syscall). */\n")
    for f in forms:
        w(f"static inline {f.ret} rump_sys_{f.name}({f.params}) {{\n  return {f.expr};\n}}\n")
    w("\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n")


def gen_protos(calls, out):
    w = out.write
    w("// GENERATED from syscalls.master by tools/gensyscalls.py; do not edit.\n"
      "// Handler prototypes: each returns the call's result or an errno.\n")
    w("#pragma once\n\n")
    w(HEADER_INCLUDES)
    w('\n#include "base/result.h"\n#include "base/user_ptr.h"\n\n')
    w("namespace rump {\nclass Lwp;\n\n")
    for c in calls:
        params = "".join(f", {kernel_type(t)} {n}" for t, n in c.args)
        w(f"Result<long> sys_{c.name}(Lwp& l{params});\n")
    w("\n}  // namespace rump\n")


def gen_faction(calls, faction, out):
    w = out.write
    mine = [c for c in calls if c.faction == faction]
    w("// GENERATED from syscalls.master by tools/gensyscalls.py; do not edit.\n")
    w(f"// The '{faction}' faction's sysent entries.\n")
    w('#include "kern/syscall.h"\n#include "kern/syscall_protos.h"\n\n')
    w("namespace rump {\nnamespace {\n\n")
    for c in mine:
        args = ", ".join(unpack(t, f"a[{i}]") for i, (t, n) in enumerate(c.args))
        sep = ", " if args else ""
        w(f"long entry_{c.name}(Lwp& l, const long* a) {{\n")
        if not c.args:
            w("  (void)a;\n")
        w(f"  Result<long> r = sys_{c.name}(l{sep}{args});\n")
        w("  return r.ok() ? r.value() : -static_cast<long>(r.error());\n}\n\n")
    w("const SysentInit kEntries[] = {\n")
    for c in mine:
        w(f'  {{{c.nr}, entry_{c.name}, "{c.name}", {len(c.args)}}},\n')
    w("};\n\n")
    w(f"const SysentRegistrar registrar(kEntries, sizeof(kEntries) / sizeof(kEntries[0]));\n\n")
    w("}  // namespace\n}  // namespace rump\n")


def gen_wrappers(calls, out):
    """Every rump_sys_* wrapper, whatever faction serves the call: they live
    in the core, so a program that links only the core still links, and a
    call into a faction it left out is ENOSYS from the sysent table."""
    w = out.write
    w("// GENERATED from syscalls.master by tools/gensyscalls.py; do not edit.\n")
    w("// The rump_sys_* wrappers of every system call.\n")
    w('#include <fcntl.h>\n#include <rump/rump_syscalls.h>\n#include <rump/rumpuser.h>\n\n'
      '#include <cstdarg>\n#include <cstdint>\n\n')
    w('extern "C" {\n\n')
    for c in calls:
        w(f"{c.ret} {c.wrapper_name}({wrapper_params(c)}) {{\n")
        if c.variadic:
            va = c.args[-c.variadic:]
            last_fixed = c.args[-c.variadic - 1][1]
            for t, n in va:
                w(f"  {t} {n} = {{}};\n")
            cond = VARIADIC_READ_IF.get(c.name)
            indent = "  "
            if cond:
                w(f"  if ({cond}) {{\n")
                indent = "    "
            # As libc: every variadic argument is read, whether the caller
            # passed it or not (prctl's unused arguments are garbage then).
            w(f"{indent}va_list ap;\n{indent}va_start(ap, {last_fixed});\n")
            for t, n in va:
                w(f"{indent}{n} = ({t})va_arg(ap, {va_type(t)});\n")
            w(f"{indent}va_end(ap);\n")
            if cond:
                w("  }\n")
        vals = ", ".join(
            f"(long)(uintptr_t){n}" if is_pointer(t) else f"(long){n}" for t, n in c.args)
        w(f"  const long a[6] = {{{vals}}};\n")
        w(f"  long r = rump_syscall({c.nr}, a);\n")
        w("  if (r < 0 && r >= -4095) {\n    rumpuser_seterrno((int)-r);\n")
        if is_pointer(c.ret):
            w(f"    return ({c.ret})(intptr_t)-1;\n  }}\n  return ({c.ret})(uintptr_t)r;\n}}\n\n")
        else:
            w(f"    return ({c.ret})-1;\n  }}\n  return ({c.ret})r;\n}}\n\n")
    w('}  // extern "C"\n')


def gen_names(calls, out):
    w = out.write
    w("// GENERATED from syscalls.master by tools/gensyscalls.py; do not edit.\n")
    w('#include <sys/syscall.h>\n\n#include "kern/syscall.h"\n\nnamespace rump {\n\n')
    w("const SyscallName kSyscallNames[] = {\n")
    for c in calls:
        w(f'  {{{c.nr}, "{c.name}", "{c.faction}", {len(c.args)}, '
          f'{c.ptr_mask:#x}, {c.in_mask:#x}}},\n')
    w("};\nconst size_t kSyscallNameCount = sizeof(kSyscallNames) / sizeof(kSyscallNames[0]);\n\n")
    w("}  // namespace rump\n")


def main():
    mode = sys.argv[1]
    calls, forms = parse(sys.argv[2])
    if mode == "header":
        with open(sys.argv[3], "w") as f:
            gen_header(calls, forms, f)
    elif mode == "protos":
        with open(sys.argv[3], "w") as f:
            gen_protos(calls, f)
    elif mode == "faction":
        with open(sys.argv[4], "w") as f:
            gen_faction(calls, sys.argv[3], f)
    elif mode == "wrappers":
        with open(sys.argv[3], "w") as f:
            gen_wrappers(calls, f)
    elif mode == "names":
        with open(sys.argv[3], "w") as f:
            gen_names(calls, f)
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
