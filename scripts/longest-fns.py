#!/usr/bin/env python3
"""The three longest Rust functions of each crate's non-test code (outside tests/, benches/,
tests.rs files and the #[cfg(test)] module at the end of a file), counted from the `fn` line to
its closing brace. Run from the repository root (or an exported tree without .git):
    python3 scripts/longest-fns.py [folder ...]
Used for the "Measured" numbers in docs/architecture.md."""
import re, subprocess, sys
from collections import defaultdict
crates = sys.argv[1:] or ["shared-protocol", "device-agent", "companion-app/src", "companion-app/src-tauri/src", "lwa-emulator", "tests/src"]
fn_re = re.compile(r'^\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)')
for crate in crates:
    files = subprocess.run(["git", "ls-files", crate], capture_output=True, text=True).stdout.split() or subprocess.run(["find", crate, "-name", "*.rs"], capture_output=True, text=True).stdout.split()
    files = [f for f in files if f.endswith(".rs") and "/tests/" not in f.replace("tests/src", "") and not f.endswith("/tests.rs") and "/benches/" not in f]
    found = []
    for f in files:
        lines = open(f).read().split("\n")
        skip_until = -1
        i = 0
        while i < len(lines):
            l = lines[i]
            if l.strip().startswith("#[cfg(test)]"):
                break  # test module at the end of the file
            m = fn_re.match(l)
            if m and not l.rstrip().endswith(";"):
                depth = 0; started = False; j = i
                while j < len(lines):
                    code = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j].split("//")[0])
                    depth += code.count("{") - code.count("}")
                    if "{" in code: started = True
                    if started and depth <= 0: break
                    j += 1
                found.append((j - i + 1, f"{f}:{i+1}", m.group(6)))
            i += 1
    found.sort(reverse=True)
    top = ", ".join(f"{n} {name} ({loc})" for n, loc, name in found[:3])
    print(f"{crate}: {top}")
