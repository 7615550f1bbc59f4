"""Checks crate licences from `cargo metadata` JSON on stdin against an allowlist.

Firmware vendors ship what they flash: every crate linked into the agent must carry a licence
that is permissive and needs no more than a notice. Dev-dependencies are not shipped.
"""
import json
import re
import sys

# Add one only after reading what it asks of a firmware vendor.
ALLOWED = {
    "MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "Unicode-3.0", "Unicode-DFS-2016",
    "Zlib", "CC0-1.0", "Unlicense",
    # xxhash-rust (tile hashes) is BSL-1.0 only: permissive, no notice needed in binaries.
    "BSL-1.0",
}


def satisfiable(expr):
    """True if the SPDX expression can be met with allowed licences (OR: any, AND: all)."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expr.replace("/", " OR "))
    pos = 0

    def parse_or():
        nonlocal pos
        value = parse_and()
        while pos < len(tokens) and tokens[pos] == "OR":
            pos += 1
            value = parse_and() or value
        return value

    def parse_and():
        nonlocal pos
        value = parse_atom()
        while pos < len(tokens) and tokens[pos] == "AND":
            pos += 1
            value = parse_atom() and value
        return value

    def parse_atom():
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError("unexpected end")
        token = tokens[pos]
        pos += 1
        if token == "(":
            value = parse_or()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise ValueError("missing )")
            pos += 1
            return value
        if pos < len(tokens) and tokens[pos] == "WITH":
            pos += 2  # an exception only loosens the licence it follows
        return token.rstrip("+") in ALLOWED

    value = parse_or()
    if pos != len(tokens):
        raise ValueError(f"trailing '{tokens[pos]}'")
    return value


def shipped_packages(meta):
    """Packages reachable from the workspace through normal and build dependencies."""
    nodes = {node["id"]: node for node in meta["resolve"]["nodes"]}
    todo = list(meta["workspace_members"])
    seen = set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(kind["kind"] in (None, "build") for kind in dep["dep_kinds"]):
                todo.append(dep["pkg"])
    return [p for p in meta["packages"] if p["id"] in seen and p["id"] not in meta["workspace_members"]]


def main():
    meta = json.load(sys.stdin)
    packages = sorted(shipped_packages(meta), key=lambda p: p["name"])
    bad = []
    for package in packages:
        name = f"{package['name']} {package['version']}"
        expr = package.get("license")
        if "--list" in sys.argv:
            print(f"{name}: {expr or package.get('license_file')}")
        if not expr:
            bad.append(f"{name}: no SPDX licence field (license-file {package.get('license_file')})")
            continue
        try:
            if not satisfiable(expr):
                bad.append(f"{name}: {expr} is not in the allowlist")
        except ValueError as e:
            bad.append(f"{name}: cannot read '{expr}': {e}")
    for line in bad:
        print(f"check-licenses: {line}", file=sys.stderr)
    print(f"check-licenses: {len(packages)} shipped crates, {len(bad)} problems")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
