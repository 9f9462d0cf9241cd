"""The Python reference of Vessel's `image` processing step: Pillow + numpy, as torchvision's
and Ultralytics' pipelines on PIL images compute it.

Writes, into the directory given: test images (JPEG 4:2:0 and 4:4:4, progressive, with EXIF
orientations; PNG RGB, RGBA, palette, grey, grey+alpha; odd and tiny sizes), and for each case
in cases.tsv the expected float32 tensor as .npy. The Swift test runs the same step on the same
bytes and compares.
"""
import io, os, sys
import numpy as np
from PIL import Image, ImageOps

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)


def photo(w, h):
    # Smooth gradients plus texture and hard edges: what resampling filters disagree on.
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0)
    g = 255 * x / max(w - 1, 1)
    b = 255 * (((x // 9) + (y // 9)) % 2)
    noise = rng.normal(0, 12, (h, w, 3))
    return np.clip(np.stack([r, g, b], -1) + noise, 0, 255).astype(np.uint8)


images = {}
def save(name, image, **options):
    path = os.path.join(out, name)
    image.save(path, **options)
    images[name] = path

base = Image.fromarray(photo(97, 64))
save("photo420.jpg", base, quality=90, subsampling=2)
save("photo444.jpg", base, quality=95, subsampling=0)
save("progressive.jpg", Image.fromarray(photo(64, 97)), quality=85, progressive=True)
save("rgb.png", base)
save("rgba.png", Image.fromarray(np.dstack([photo(50, 33), rng.integers(0, 256, (33, 50, 1), dtype=np.uint8)])))
save("palette.png", base.convert("P", palette=Image.ADAPTIVE, colors=64))
save("gray.png", base.convert("L"))
save("gray_alpha.png", Image.fromarray(np.dstack([photo(40, 30)[..., 0], photo(40, 30)[..., 1]]), "LA"))
save("tiny.png", Image.fromarray(photo(3, 2)))
save("lossy.webp", base, quality=80)
save("lossless.webp", Image.fromarray(np.dstack([photo(45, 38), rng.integers(0, 256, (38, 45, 1), dtype=np.uint8)])), lossless=True)
save("gray.jpg", base.convert("L"), quality=90)
for orientation in (3, 6, 8):
    exif = Image.Exif()
    exif[0x0112] = orientation
    save(f"exif{orientation}.jpg", Image.fromarray(photo(48, 30)), quality=92, exif=exif.tobytes())

filters = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def expected(path, size, resize, filt, color, shorter, layout, scale, pad):
    image = ImageOps.exif_transpose(Image.open(path))
    image = image.convert("L" if color == "gray" else "RGB")
    h, w = size
    f = filters[filt]
    if resize == "stretch":
        image = image.resize((w, h), f)
    elif resize == "center_crop":
        # torchvision.transforms.Resize(shorter) + CenterCrop(size) on a PIL image.
        iw, ih = image.size
        short, long = (iw, ih) if iw <= ih else (ih, iw)
        new_short, new_long = shorter, int(shorter * long / short)
        nw, nh = (new_short, new_long) if iw <= ih else (new_long, new_short)
        image = image.resize((nw, nh), f)
        iw, ih = image.size
        if w > iw or h > ih:
            pl, pt = (w - iw) // 2 if w > iw else 0, (h - ih) // 2 if h > ih else 0
            pr, pb = (w - iw + 1) // 2 if w > iw else 0, (h - ih + 1) // 2 if h > ih else 0
            image = ImageOps.expand(image, (pl, pt, pr, pb), fill=0)
            iw, ih = image.size
        top, left = int(round((ih - h) / 2.0)), int(round((iw - w) / 2.0))
        image = image.crop((left, top, left + w, top + h))
    else:
        # Ultralytics LetterBox arithmetic, with Pillow resampling.
        iw, ih = image.size
        r = min(h / ih, w / iw)
        nw, nh = max(1, int(round(iw * r))), max(1, int(round(ih * r)))
        image = image.resize((nw, nh), f)
        dw, dh = (w - nw) / 2, (h - nh) / 2
        top, left = int(round(dh - 0.1)), int(round(dw - 0.1))
        canvas = Image.new(image.mode, (w, h), (pad,) * len(image.getbands()) if image.mode != "L" else pad)
        canvas.paste(image, (left, top))
        image = canvas
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    if color == "bgr":
        a = a[..., ::-1]
    a = a * np.float32(scale)
    if layout == "NCHW":
        a = a.transpose(2, 0, 1)
    return np.ascontiguousarray(a[None])


cases = []
for name in images:
    for filt in filters:
        cases.append((name, (24, 32), "stretch", filt, "rgb", 0, "NCHW", 1 / 255, 114))
    cases.append((name, (16, 16), "center_crop", "bilinear", "rgb", 20, "NCHW", 1 / 255, 114))
    cases.append((name, (40, 40), "letterbox", "bilinear", "bgr", 0, "NHWC", 1.0, 114))
    cases.append((name, (13, 21), "stretch", "bicubic", "gray", 0, "NCHW", 1 / 255, 114))
# Upscaling, a crop larger than the resized image, a letterbox pad colour.
cases.append(("tiny.png", (9, 14), "stretch", "bicubic", "rgb", 0, "NHWC", 1.0, 114))
cases.append(("photo420.jpg", (80, 80), "center_crop", "bicubic", "rgb", 50, "NCHW", 1.0, 114))
cases.append(("rgb.png", (50, 30), "letterbox", "lanczos", "rgb", 0, "NCHW", 1.0, 0))

with open(os.path.join(out, "cases.tsv"), "w") as table:
    for k, (name, size, resize, filt, color, shorter, layout, scale, pad) in enumerate(cases):
        np.save(os.path.join(out, f"case{k}.npy"), expected(images[name], size, resize, filt, color, shorter or min(size), layout, scale, pad))
        table.write("\t".join(map(str, [k, name, size[0], size[1], resize, filt, color, shorter, layout, repr(scale), pad])) + "\n")

# Hostile images: a header announcing 30000×30000 pixels with almost no data (a decompression
# bomb), a JPEG cut in half, a PNG cut in half, a zero-size PNG header, bytes that are no image.
import struct, zlib
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
signature = b"\x89PNG\r\n\x1a\n"
bomb = signature + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
empty = signature + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")
hostile = {
    "bomb.png": bomb,
    "half.jpg": open(images["photo420.jpg"], "rb").read()[:1500],
    "half.png": open(images["rgb.png"], "rb").read()[:600],
    "empty.png": empty,
    "text.txt": b"hello, not an image",
}
for name, data in hostile.items():
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
