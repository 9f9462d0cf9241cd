#!/usr/bin/env bash
# Fails when a Swift source is not formatted as `swift format` writes it with the committed
# .swift-format (4-space indents, 160 columns). The toolchain ships swift-format, so this needs
# nothing installed. To fix: scripts/check-format.sh --fix
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find Sources Tests Plugins Fuzz/Sources -name '*.swift' ! -path '*/Generated/*' | sort; echo Package.swift; echo Fuzz/Package.swift)
if [[ "${1:-}" == "--fix" ]]; then
    swift format format --in-place "${files[@]}"
    exit 0
fi
if ! swift format lint --strict "${files[@]}"; then
    echo "check-format: the files above are not as swift-format writes them; run scripts/check-format.sh --fix" >&2
    exit 1
fi
