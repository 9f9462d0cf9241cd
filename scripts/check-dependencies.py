"""Fails when a target of Package.swift declares a dependency its sources never import, when
the module graph drawn in docs/architecture.md is not the package's, or when a library module
has no test target of its own (`<Module>Tests`: tests mirror sources).

An unused edge costs every build that compiles it (the registry client used to compile the ONNX
runtime through an unused VesselImage dependency) and misstates the module graph in
docs/architecture.md. Executable targets are exempt as dependencies: a test target may depend on
one only to have it built. scripts/test.sh runs this first; by hand:
    python3 scripts/check-dependencies.py            # check
    python3 scripts/check-dependencies.py --graph    # print the graph to paste into the doc
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
# Tests mirror sources: every Swift library module has its own test target (a C one, such as the
# kernels' prefetch header, is tested through the Swift module that uses it).
tests = {t["name"] for t in package["targets"] if t["type"] == "test"}
for target in package["targets"]:
    swift = glob.glob((target.get("path") or "Sources/" + target["name"]) + "/**/*.swift", recursive=True)
    if target["type"] == "regular" and swift and target["name"] != "VesselTestSupport" and target["name"] + "Tests" not in tests:
        problems.append(f"{target['name']} has no test target (Tests/{target['name']}Tests)")
# The module graph: edges between the package's own non-test targets.
own = {t["name"] for t in package["targets"] if t["type"] != "test" and t["name"] != "VesselTestSupport"}
edges = set()
for target in package["targets"]:
    if target["name"] not in own:
        continue
    for dependency in target["dependencies"]:
        for kind in ("byName", "target"):
            if kind in dependency and dependency[kind][0] in own:
                edges.add((target["name"].replace("-", "_"), dependency[kind][0].replace("-", "_")))
graph = "```mermaid\ngraph BT\n" + "".join(f"  {a} --> {b}\n" for a, b in sorted(edges)) + "```"
if "--graph" in sys.argv:
    print(graph)
    sys.exit(0)
with open("docs/architecture.md") as f:
    document = f.read()
drawn = {tuple(line.strip().split(" --> ")) for line in document.split("```mermaid\ngraph BT\n", 1)[-1].split("```", 1)[0].splitlines() if " --> " in line}
if drawn != edges:
    missing = sorted(edges - drawn)
    extra = sorted(drawn - edges)
    problems.append(f"docs/architecture.md's module graph differs from the package: missing {missing}, not in the package {extra} "
                    "(paste the output of `python3 scripts/check-dependencies.py --graph`)")
for problem in problems:
    print(f"check-dependencies: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
