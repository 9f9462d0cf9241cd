#!/usr/bin/env bash
# Installs the outside tools the tests read our output with: skopeo (OCI layouts and archives),
# bsdtar (a second tar reader), openssl (reference hashing), script (a pseudo-terminal, to see
# progress drawn), python3-venv (test fixtures), libopenblas0, curl (the demo's prediction);
# zlib1g-dev and pkg-config (building: gzip image layers); libturbojpeg0-dev, libpng-dev and
# libwebp-dev (building: the `image` processing step decodes JPEG, PNG and WebP); docker-registry (a registry on
# loopback for push/pull tests), umoci (a second image unpacker), bubblewrap (runs an image's
# root filesystem for `vessel test --in-image`), apache2-utils (htpasswd, for the registry's basic
# auth in tests), podman and runc (the image loaded and run by a real container engine), chromium
# (the browser pages, driven headless in tests), busybox-static (the shell `vessel image --modelcar`
# ships for KServe's sidecar command).
# Debian packages only; idempotent.
set -euo pipefail
need=()
command -v skopeo >/dev/null || need+=(skopeo)
command -v bsdtar >/dev/null || need+=(libarchive-tools)
command -v openssl >/dev/null || need+=(openssl)
command -v script >/dev/null || need+=(bsdutils)
command -v curl >/dev/null || need+=(curl)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
[ -f /usr/include/turbojpeg.h ] || need+=(libturbojpeg0-dev)
[ -f /usr/include/png.h ] || need+=(libpng-dev)
[ -f /usr/include/webp/decode.h ] || need+=(libwebp-dev)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v umoci >/dev/null || need+=(umoci)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || [ -x /usr/sbin/runc ] || need+=(runc)
command -v chromium >/dev/null || need+=(chromium)
[ -x /bin/busybox ] || need+=(busybox-static)
python3 -c "import venv, ensurepip" 2>/dev/null || need+=(python3-venv)
# The runtime finds OpenBLAS by itself when present (and has a built-in GEMM when not); the
# tests run the large light models with it.
ldconfig -p | grep -q libopenblas.so.0 || need+=(libopenblas0)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
