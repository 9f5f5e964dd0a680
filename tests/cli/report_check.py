#!/usr/bin/env python3
"""Checks of report.html for the report tests (standard library only).

usage:
  report_check.py plots PAGE.html [--min N]
      every <svg class="plot"> has at least one data mark (a polyline of 2+
      points, a circle or a bar; class "mark") and no "no data" note; at
      least N plots (default 1); no external resource and no <script>.
  report_check.py equalization PAGE.html REPORT.json [--outliers K] [--min-factor F]
      for every shown layer and fold point, the report's top channels obey
      x_after = x_before / factor, and the page draws each of the first six
      at its value on the plot's log axis, the after marker below the before
      marker by exactly log10(factor) decades. With --outliers K: the K
      channels of largest range at ln1->qkv are outliers (over 5x the median
      channel) and fall by a factor of at least F (default 2).
  report_check.py png SHOT.png [--min-ink P]
      the screenshot is a PNG with at least P (default 0.02) of its pixels
      not white: the page drew something.
Prints one line per check ("ok: ..." / "FAILED: ...") and exits non-zero
if any failed.
"""
import json
import math
import struct
import sys
import zlib
from html.parser import HTMLParser

FAILED = 0


def ok(msg):
    print("ok: " + msg)


def bad(msg):
    global FAILED
    FAILED += 1
    print("FAILED: " + msg)


class Page(HTMLParser):
    """The plots of a page: id -> {marks, notes, markers, axis}."""

    def __init__(self):
        super().__init__()
        self.plots = {}
        self.order = []
        self.cur = None
        self.in_note = False
        self.scripts = 0
        self.external = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            v = a.get(key) or ""
            if v.startswith("http:") or v.startswith("https:") or v.startswith("//"):
                self.external.append(v)
        if tag == "svg" and "plot" in cls:
            pid = a.get("id") or "plot%d" % len(self.order)
            self.cur = {"id": pid, "marks": 0, "notes": [], "markers": [], "axis": None}
            self.plots[pid] = self.cur
            self.order.append(pid)
            return
        if self.cur is None:
            return
        if "mark" in cls:
            if tag == "polyline":
                pts = (a.get("points") or "").split()
                if len(pts) >= 2:
                    self.cur["marks"] += 1
            else:
                self.cur["marks"] += 1
            if tag == "circle" and a.get("data-role"):
                self.cur["markers"].append(a)
        if tag == "text" and "note" in cls:
            self.in_note = True
        if tag == "desc" and "axis-y" in cls:
            self.cur["axis"] = a

    def handle_endtag(self, tag):
        if tag == "svg":
            self.cur = None
        if tag == "text":
            self.in_note = False

    def handle_data(self, data):
        if self.cur is not None and self.in_note:
            self.cur["notes"].append(data)


def parse(path):
    p = Page()
    with open(path, encoding="utf-8") as f:
        p.feed(f.read())
    return p


def cmd_plots(args):
    page = parse(args[0])
    need = int(args[args.index("--min") + 1]) if "--min" in args else 1
    empty = [pid for pid in page.order if page.plots[pid]["marks"] == 0 or page.plots[pid]["notes"]]
    if len(page.order) >= need:
        ok("%d plots (at least %d)" % (len(page.order), need))
    else:
        bad("%d plots, want at least %d" % (len(page.order), need))
    if empty:
        bad("empty plots: %s" % ", ".join(empty[:10]))
    else:
        ok("every plot has data marks")
    if page.scripts:
        bad("%d <script> elements" % page.scripts)
    else:
        ok("no script")
    if page.external:
        bad("external resources: %s" % page.external[:5])
    else:
        ok("no external resource")


def cmd_equalization(args):
    page, rep = parse(args[0]), json.load(open(args[1]))
    k_out = int(args[args.index("--outliers") + 1]) if "--outliers" in args else 0
    min_f = float(args[args.index("--min-factor") + 1]) if "--min-factor" in args else 2.0
    eq = rep.get("equalization")
    if not eq:
        bad("no equalization section in the report")
        return
    depth = {d["layer"]: d for d in eq["depth"]}
    n_layers = len(rep["layers"]) // 6
    if sorted(depth) == list(range(n_layers)):
        ok("depth summary for all %d layers" % n_layers)
    else:
        bad("depth summary layers %s" % sorted(depth)[:10])
    worst_ratio, checked, drawn = 0.0, 0, 0
    for li, lay in enumerate(eq["layers"]):
        for ti, tap in enumerate(lay["taps"]):
            for c in tap["top_channels"]:
                r = c["x_before"] / c["x_after"] / c["factor"]
                worst_ratio = max(worst_ratio, abs(r - 1))
                checked += 1
            pid = "eq-%d-%d" % (lay["layer"], ti)
            plot = page.plots.get(pid)
            if plot is None or plot["axis"] is None:
                bad("%s: no plot with an axis description" % pid)
                continue
            ax = plot["axis"]
            top, bot = float(ax["data-log10-top"]), float(ax["data-log10-bottom"])
            ptop, pbot = float(ax["data-px-top"]), float(ax["data-px-bottom"])
            per_decade = (pbot - ptop) / (top - bot)

            def py(v):
                return ptop + (top - math.log10(v)) * per_decade

            by = {}
            for m in plot["markers"]:
                by.setdefault(m["data-channel"], {})[m["data-role"]] = m
            for c in tap["top_channels"][:6]:
                pair = by.get(str(c["channel"]))
                if not pair or "x_before" not in pair or "x_after" not in pair:
                    bad("%s: channel %d not marked" % (pid, c["channel"]))
                    continue
                yb, ya = float(pair["x_before"]["cy"]), float(pair["x_after"]["cy"])
                drop = (ya - yb) / per_decade
                want = math.log10(c["factor"])
                # coordinates are printed with one decimal: 0.05 px each
                tol = 0.11 / per_decade + 1e-6
                if abs(yb - py(c["x_before"])) > 0.06 or abs(ya - py(c["x_after"])) > 0.06 or abs(drop - want) > tol:
                    bad("%s channel %d: drawn drop %.4f decades, factor says %.4f (y %.1f/%.1f)"
                        % (pid, c["channel"], drop, want, yb, ya))
                else:
                    drawn += 1
    if checked and worst_ratio < 1e-5:
        ok("%d top channels: x_before / x_after == factor (worst relative difference %.2g)" % (checked, worst_ratio))
    else:
        bad("x_before / x_after != factor: worst relative difference %.3g over %d channels" % (worst_ratio, checked))
    if drawn:
        ok("%d outlier markers drawn at their values, each falling by log10(factor) decades" % drawn)
    if k_out:
        first = eq["layers"][0]
        layer = first["layer"]
        tap = first["taps"][0]
        med = depth[layer]["ln1->qkv"]["x_median_before"]
        tops = tap["top_channels"][:k_out]
        ratios = [c["x_before"] / med for c in tops]
        factors = [c["factor"] for c in tops]
        if min(ratios) > 5 and min(factors) >= min_f:
            ok("layer %d ln1->qkv: the %d outlier channels %s span %.0f-%.0fx the median range and fall by "
               "factors %.1f-%.1f" % (layer, k_out, [c["channel"] for c in tops], min(ratios), max(ratios),
                                      min(factors), max(factors)))
        else:
            bad("layer %d ln1->qkv outliers: ranges %s x median, factors %s" % (layer, ratios, factors))
        d = depth[layer]["ln1->qkv"]
        before = d["x_max_before"] / d["x_median_before"]
        after = d["x_max_after"] / d["x_median_after"]
        if after < before / 2:
            ok("layer %d ln1->qkv: largest / median channel range %.1f -> %.1f" % (layer, before, after))
        else:
            bad("layer %d ln1->qkv: outlier ratio %.1f -> %.1f did not halve" % (layer, before, after))


def png_pixels(path):
    """(width, height, bytes per pixel, rows) of an 8-bit RGB(A) PNG."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise ValueError("unsupported PNG (depth %d, color type %d)" % (depth, ctype))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride, rows, prev = w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, bpp, rows


def cmd_png(args):
    min_ink = float(args[args.index("--min-ink") + 1]) if "--min-ink" in args else 0.02
    try:
        w, h, bpp, rows = png_pixels(args[0])
    except (OSError, ValueError, zlib.error) as e:
        bad("%s: %s" % (args[0], e))
        return
    ink = sum(1 for r in rows for i in range(0, w * bpp, bpp) if min(r[i], r[i + 1], r[i + 2]) < 230)
    share = ink / float(w * h)
    if share >= min_ink:
        ok("%s: %dx%d, %.1f%% of the pixels drawn" % (args[0], w, h, 100 * share))
    else:
        bad("%s: %dx%d, only %.2f%% of the pixels drawn" % (args[0], w, h, 100 * share))


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    {"plots": cmd_plots, "equalization": cmd_equalization, "png": cmd_png}[cmd](args)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
