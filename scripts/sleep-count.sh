#!/usr/bin/env bash
# Sums the fixed sleeps written in the Rust tests and the code they run (tests/, src/): every
# `sleep(Duration::from_secs|millis|micros(N))`, each counted once as written (a sleep inside
# a retry loop counts once; computed durations are listed, not summed). Product code has
# none: it never sleeps on the loop's path. Measures only; the before/after figure of issue 16.
#
# Usage: scripts/sleep-count.sh [DIR]   (default: this checkout)
set -euo pipefail
root=${1:-"$(dirname "$0")/.."}
exec python3 - "$root" <<'PY'
import pathlib, re, sys
root = pathlib.Path(sys.argv[1])
fixed = re.compile(r"from_(secs|millis|micros)\(([0-9_]+)\)")
total_ms, count, computed = 0.0, 0, 0
for path in sorted(list(root.glob("tests/**/*.rs")) + list(root.glob("src/**/*.rs"))):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if "sleep(" not in line or line.lstrip().startswith("//"):
            continue
        where = f"{path.relative_to(root)}:{number}"
        m = fixed.search(line.split("sleep(", 1)[1])
        if m:
            n = int(m.group(2).replace("_", ""))
            ms = {"secs": n * 1000, "millis": n, "micros": n / 1000}[m.group(1)]
            total_ms += ms
            count += 1
            print(f"{ms:9.1f} ms  {where}")
        else:
            computed += 1
            print(f"   computed  {where}: {line.strip()}")
print(f"\n{count} fixed sleeps, {total_ms / 1000:.1f} s in all; "
      f"{computed} computed (a deadline or a random wait)")
PY
