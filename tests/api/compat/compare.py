#!/usr/bin/env python3
"""Runs the same libc program on the host and in the kernel and compares
the transcripts line by line (tests/api/compat/libc_calls.c)."""
import subprocess
import sys

host, rump = sys.argv[1], sys.argv[2]
h = subprocess.run([host], capture_output=True, text=True, timeout=60)
r = subprocess.run([rump], capture_output=True, text=True, timeout=60)
if h.returncode != 0 or r.returncode != 0:
    sys.exit(f"exit status: host {h.returncode}, rump {r.returncode}\n{h.stderr}{r.stderr}")
hl, rl = h.stdout.splitlines(), r.stdout.splitlines()
bad = [f"host: {a}\nrump: {b}" for a, b in zip(hl, rl) if a != b]
if len(hl) != len(rl):
    bad.append(f"{len(hl)} lines on the host, {len(rl)} in the kernel")
if bad:
    sys.exit("\n".join(bad))
print(f"{len(hl)} lines equal")
