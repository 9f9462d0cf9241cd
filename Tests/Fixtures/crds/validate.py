"""Validates the custom resources in Kubernetes YAML files against their published CRD schemas.

kubernetes-validate knows Kubernetes' own kinds only; the KServe and Prometheus-operator kinds
that `vessel deploy` writes are checked here, against the `openAPIV3Schema` of the CRDs those
projects publish (the *.json beside this file; see README.md for their source and version).
Like `kubectl apply --validate=strict`, a field the schema does not declare is an error, except
under `x-kubernetes-preserve-unknown-fields`.

Usage: validate.py FILE.yaml...   Prints "passed for KIND/NAME" per resource; exits 1 on any
error, and on a non-core kind that has no schema here.
"""

import json
import pathlib
import sys

import jsonschema
import yaml

HERE = pathlib.Path(__file__).parent


def strict(node):
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: strict(value) for key, value in node.items()}
    if "properties" in result and "additionalProperties" not in result and not result.get("x-kubernetes-preserve-unknown-fields"):
        result["additionalProperties"] = False
    return result


def main(paths):
    schemas = {}
    for path in HERE.glob("*.json"):
        crd = json.loads(path.read_text())
        schema = strict(crd["schema"])
        # Every custom resource has these at its root, declared in its CRD or not.
        for field in ("apiVersion", "kind"):
            schema.setdefault("properties", {}).setdefault(field, {"type": "string"})
        schema["properties"].setdefault("metadata", {"type": "object"})
        schemas[(f"{crd['group']}/{crd['version']}", crd["kind"])] = schema
    failed = False
    for path in paths:
        for document in yaml.safe_load_all(pathlib.Path(path).read_text()):
            if not document:
                continue
            key = (document.get("apiVersion", ""), document.get("kind", ""))
            name = f"{key[1].lower()}/{document.get('metadata', {}).get('name', '?')}"
            if key not in schemas:
                # Core groups have no dot (v1, apps/v1, policy/v1): kubernetes-validate's kinds.
                if "." in key[0].split("/")[0]:
                    print(f"{path}: no schema here for {key[0]} {key[1]}")
                    failed = True
                continue
            errors = sorted(jsonschema.Draft7Validator(schemas[key]).iter_errors(document), key=lambda e: list(e.absolute_path))
            for error in errors:
                where = ".".join(str(part) for part in error.absolute_path) or "(top)"
                print(f"{path}: {name}: {where}: {error.message}")
            failed = failed or bool(errors)
            if not errors:
                print(f"passed for {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
