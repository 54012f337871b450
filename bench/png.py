"""A tiny PNG canvas (zlib + struct, no dependencies): rectangles, lines and a 5x7 pixel font.

Enough for the grouped bar charts in docs/benchmarks.png without adding matplotlib to the project.
"""

from __future__ import annotations

import struct
import zlib

# 5x7 glyphs, one int per row, bit 4 = leftmost pixel.
_FONT = {
    " ": [0, 0, 0, 0, 0, 0, 0],
    "0": [14, 17, 19, 21, 25, 17, 14],
    "1": [4, 12, 4, 4, 4, 4, 14],
    "2": [14, 17, 1, 2, 4, 8, 31],
    "3": [30, 1, 1, 14, 1, 1, 30],
    "4": [2, 6, 10, 18, 31, 2, 2],
    "5": [31, 16, 30, 1, 1, 17, 14],
    "6": [6, 8, 16, 30, 17, 17, 14],
    "7": [31, 1, 2, 4, 8, 8, 8],
    "8": [14, 17, 17, 14, 17, 17, 14],
    "9": [14, 17, 17, 15, 1, 2, 12],
    "A": [14, 17, 17, 31, 17, 17, 17],
    "B": [30, 17, 17, 30, 17, 17, 30],
    "C": [14, 17, 16, 16, 16, 17, 14],
    "D": [30, 17, 17, 17, 17, 17, 30],
    "E": [31, 16, 16, 30, 16, 16, 31],
    "F": [31, 16, 16, 30, 16, 16, 16],
    "G": [14, 17, 16, 23, 17, 17, 15],
    "H": [17, 17, 17, 31, 17, 17, 17],
    "I": [14, 4, 4, 4, 4, 4, 14],
    "J": [7, 2, 2, 2, 2, 18, 12],
    "K": [17, 18, 20, 24, 20, 18, 17],
    "L": [16, 16, 16, 16, 16, 16, 31],
    "M": [17, 27, 21, 21, 17, 17, 17],
    "N": [17, 25, 21, 19, 17, 17, 17],
    "O": [14, 17, 17, 17, 17, 17, 14],
    "P": [30, 17, 17, 30, 16, 16, 16],
    "Q": [14, 17, 17, 17, 21, 18, 13],
    "R": [30, 17, 17, 30, 20, 18, 17],
    "S": [15, 16, 16, 14, 1, 1, 30],
    "T": [31, 4, 4, 4, 4, 4, 4],
    "U": [17, 17, 17, 17, 17, 17, 14],
    "V": [17, 17, 17, 17, 17, 10, 4],
    "W": [17, 17, 17, 21, 21, 21, 10],
    "X": [17, 17, 10, 4, 10, 17, 17],
    "Y": [17, 17, 10, 4, 4, 4, 4],
    "Z": [31, 1, 2, 4, 8, 16, 31],
    ".": [0, 0, 0, 0, 0, 12, 12],
    ",": [0, 0, 0, 0, 12, 4, 8],
    ":": [0, 12, 12, 0, 12, 12, 0],
    "-": [0, 0, 0, 31, 0, 0, 0],
    "+": [0, 4, 4, 31, 4, 4, 0],
    "/": [1, 1, 2, 4, 8, 16, 16],
    "(": [2, 4, 8, 8, 8, 4, 2],
    ")": [8, 4, 2, 2, 2, 4, 8],
    "%": [24, 25, 2, 4, 8, 19, 3],
    "=": [0, 0, 31, 0, 31, 0, 0],
    "<": [2, 4, 8, 16, 8, 4, 2],
    ">": [8, 4, 2, 1, 2, 4, 8],
    "_": [0, 0, 0, 0, 0, 0, 31],
}

Color = tuple[int, int, int]


class Canvas:
    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)):
        self.width, self.height = width, height
        self.pixels = [bytearray(bytes(background) * width) for _ in range(height)]

    def point(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            self.pixels[y][3 * x : 3 * x + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        x0, x1 = sorted((max(0, int(x0)), min(self.width, int(x1))))
        y0, y1 = sorted((max(0, int(y0)), min(self.height, int(y1))))
        row = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            self.pixels[y][3 * x0 : 3 * x1] = row

    def hline(self, x0: int, x1: int, y: int, color: Color, dash: int = 0) -> None:
        for x in range(int(x0), int(x1)):
            if not dash or (x // dash) % 2 == 0:
                self.point(x, int(y), color)

    def vline(self, x: int, y0: int, y1: int, color: Color) -> None:
        for y in range(int(y0), int(y1)):
            self.point(int(x), y, color)

    def text(self, x: int, y: int, text: str, color: Color = (0, 0, 0), scale: int = 1) -> int:
        """Draw ``text`` (upper-cased) with its top-left at (x, y); return the width."""
        cursor = int(x)
        for char in text:
            glyph = _FONT.get(char) or _FONT.get(char.upper()) or _FONT[" "]
            for row, bits in enumerate(glyph):
                for col in range(5):
                    if bits & (16 >> col):
                        px, py = cursor + col * scale, y + row * scale
                        self.rect(px, py, px + scale, py + scale, color)
            cursor += 6 * scale
        return cursor - int(x)

    @staticmethod
    def text_width(text: str, scale: int = 1) -> int:
        return 6 * scale * len(text)

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(row) for row in self.pixels)

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
        return b"\x89PNG\r\n\x1a\n" + body


def bar_chart(
    canvas: Canvas,
    box: tuple[int, int, int, int],
    title: str,
    groups: list[str],
    series: list[tuple[str, Color, list[float]]],
    *,
    unit: str = "",
    target: float | None = None,
    target_label: str = "",
) -> None:
    """Grouped bars in ``box`` = (x, y, width, height); values labelled on top of each bar."""
    x, y, w, h = box
    canvas.text(x, y, title, scale=2)
    top, bottom, left = y + 40, y + h - 30, x + 10
    peak = max([v for _, _, values in series for v in values] + ([target] if target else []) + [1e-9]) * 1.15
    canvas.hline(left, x + w, bottom, (0, 0, 0))
    slot = (w - 20) / max(1, len(groups))
    bar = max(4, int(slot * 0.8 / max(1, len(series))))
    for g, name in enumerate(groups):
        gx = left + g * slot + slot * 0.1
        for s, (_label, color, values) in enumerate(series):
            value = values[g]
            bx = int(gx + s * bar)
            by = int(bottom - (bottom - top) * value / peak)
            canvas.rect(bx + 1, by, bx + bar - 1, bottom, color)
            label = f"{value:.0f}" if value >= 10 else f"{value:.1f}"
            canvas.text(bx + (bar - Canvas.text_width(label)) // 2, by - 10, label)
        canvas.text(int(gx + (len(series) * bar - Canvas.text_width(name)) / 2), bottom + 8, name)
    if target is not None:
        ty = int(bottom - (bottom - top) * target / peak)
        canvas.hline(left, x + w, ty, (200, 0, 0), dash=6)
        canvas.text(x + w - Canvas.text_width(target_label) - 2, ty - 10, target_label, (200, 0, 0))
    lx = x
    for label, color, _ in series:
        canvas.rect(lx, y + 22, lx + 10, y + 32, color)
        lx += 14 + canvas.text(lx + 14, y + 24, label) + 12
    if unit:
        canvas.text(x + w - Canvas.text_width(unit), y + 24, unit, (90, 90, 90))
