#!/usr/bin/env python3
"""Converts an X window dump (`xwd -root`, TrueColor ZPixmap at 24 or 32 bits per pixel, as Xvfb
gives) to PNG, stdlib only.

    xwd -root -silent -display :N | xwd2png.py out.png

Prints the number of distinct colours (a blank, still-loading window has one or two), so a
caller can wait until the window has content.
"""
import struct
import sys
import zlib


def main() -> int:
    data = sys.stdin.buffer.read()
    if len(data) < 100:
        print("xwd2png: no image on stdin", file=sys.stderr)
        return 1
    # XWDFileHeader: 25 CARD32, big-endian.
    h = struct.unpack(">25I", data[:100])
    header_size, version, fmt, depth, width, height = h[0], h[1], h[2], h[3], h[4], h[5]
    byte_order, bits_per_pixel, bytes_per_line, ncolors = h[7], h[11], h[12], h[19]
    red_mask, green_mask, blue_mask = h[14], h[15], h[16]
    if version != 7 or fmt != 2 or bits_per_pixel not in (24, 32) or depth < 24:
        print(f"xwd2png: unsupported dump (version {version}, format {fmt}, {bits_per_pixel} bpp)", file=sys.stderr)
        return 1
    start = header_size + ncolors * 12
    pixels = data[start:start + bytes_per_line * height]

    def shift(mask: int) -> int:
        return (mask & -mask).bit_length() - 1

    rs, gs, bs = shift(red_mask), shift(green_mask), shift(blue_mask)
    step = bits_per_pixel // 8
    little = byte_order == 0
    rows = bytearray()
    colours = set()
    for y in range(height):
        rows.append(0)
        line = pixels[y * bytes_per_line:y * bytes_per_line + width * step]
        for x in range(0, len(line), step):
            p = int.from_bytes(line[x:x + step], "little" if little else "big")
            rgb = ((p & red_mask) >> rs, (p & green_mask) >> gs, (p & blue_mask) >> bs)
            rows += bytes(rgb)
            if len(colours) < 1000:
                colours.add(rgb)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b"")
    with open(sys.argv[1], "wb") as f:
        f.write(png)
    print(len(colours))
    return 0


if __name__ == "__main__":
    sys.exit(main())
