"""Fails when a target of Package.swift declares a dependency its sources never import.

An unused edge costs every build that compiles it (the registry client used to compile the ONNX
runtime through an unused VesselImage dependency) and misstates the module graph in
docs/architecture.md. Executable targets are exempt as dependencies: a test target may depend on
one only to have it built. scripts/test.sh runs this first; by hand:
    python3 scripts/check-dependencies.py
"""
import glob
import json
import re
import subprocess
import sys

package = json.loads(subprocess.run(["swift", "package", "dump-package"], capture_output=True, text=True, check=True).stdout)
executables = {t["name"] for t in package["targets"] if t["type"] == "executable"}
pattern = re.compile(r"\s*(?:@testable\s+|@_exported\s+)?(?:(?:public|internal|package|private|fileprivate)\s+)?"
                     r"import\s+(?:(?:struct|class|enum|protocol|func|typealias|var|let)\s+)?([A-Za-z_]\w*)")
problems = []
for target in package["targets"]:
    if target["type"] in ("system", "binary", "plugin"):
        continue
    declared = set()
    for dependency in target["dependencies"]:
        for kind in ("byName", "product", "target"):
            if kind in dependency:
                declared.add(dependency[kind][0])
    root = target.get("path") or (("Tests/" if target["type"] == "test" else "Sources/") + target["name"])
    imported = set()
    for path in glob.glob(root + "/**/*.swift", recursive=True):
        with open(path) as f:
            for line in f:
                match = pattern.match(line)
                if match:
                    imported.add(match.group(1))
    unused = sorted(declared - imported - executables)
    if unused:
        problems.append(f"{target['name']} declares {', '.join(unused)} but no file of it imports them")
for problem in problems:
    print(f"Package.swift: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
