"""check_notebook_html.py: independent checks of a page written by
`ecgwb notebook run` (used by tests/test_notebooks.sh).

  check_notebook_html.py page NOTEBOOK.lua HTML [--figures k=n,...] [--status ok|error]
      the page parses with html.parser with balanced tags; each code cell of
      the notebook (split here by the format's rules, independently of
      lua/ecgwb/notebook.lua) appears, in order, as a <pre class="src">;
      every embedded image is a PNG that decodes (zlib, scanline filters);
      cell k holds n or more images; prints a JSON summary of the cells.
  check_notebook_html.py screenshot FILE.png [MIN]
      a PNG that decodes and is not blank: at least MIN (default 0.02) of its
      pixels are not white, and it has 20 colours or more.
"""
import base64, html, json, re, struct, sys, zlib
from html.parser import HTMLParser

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def decode_png(data):
    """-> (width, height, rows of bytes per pixel); checks every chunk's CRC"""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("no PNG signature")
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if zlib.crc32(kind + body) & 0xffffffff != crc:
            raise ValueError("bad CRC in chunk %r" % kind)
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or interlace != 0 or ctype not in (0, 2, 4, 6):
        raise ValueError("unsupported PNG layout %r" % (ihdr,))
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = w * bpp
    if len(raw) != h * (stride + 1):
        raise ValueError("IDAT holds %d bytes, expected %d" % (len(raw), h * (stride + 1)))
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
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
            elif f != 0:
                raise ValueError("bad filter %d" % f)
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.cells, self.errors = [], [], []
        self.cur = None          # the code cell <section> being read
        self.in_src = self.in_out = self.in_err = False
        self.depth_section = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "section" and "code" in cls:
            self.cur = {"id": a.get("id"), "classes": cls, "src": "", "out": "", "error": "", "images": []}
            self.cells.append(self.cur)
            self.depth_section = len(self.stack)
        elif self.cur is not None and tag == "pre":
            self.in_src = "src" in cls
            self.in_out = "out" in cls
            self.in_err = "traceback" in cls
        elif self.cur is not None and tag == "img":
            self.cur["images"].append(a.get("src", ""))
        if tag == "script":
            self.errors.append("a <script> element")

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes <%s>" % (tag, self.stack[-1] if self.stack else "nothing"))
            return
        if tag == "section" and self.cur is not None and len(self.stack) == self.depth_section:
            self.cur = None
        if tag == "pre":
            self.in_src = self.in_out = self.in_err = False
        self.stack.pop()

    def handle_data(self, d):
        if self.cur is None:
            return
        if self.in_src:
            self.cur["src"] += d
        elif self.in_out:
            self.cur["out"] += d
        elif self.in_err:
            self.cur["error"] += d


def code_cells(text):
    """the notebook's code cells, by the format's rules"""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    cells, cur, i = [], [], 0
    if lines and lines[0].startswith("#!"):
        i = 1

    def flush():
        # blank lines at either end are dropped; the rest is verbatim
        ls = list(cur)
        while ls and not ls[0].strip():
            ls.pop(0)
        while ls and not ls[-1].strip():
            ls.pop()
        if ls:
            cells.append("\n".join(ls))
        cur.clear()

    while i < len(lines):
        m = re.match(r"^\s*--\[(=*)\[md\s*$", lines[i])
        if m:
            flush()
            close = "]" + m.group(1) + "]"
            i += 1
            while close not in lines[i]:
                i += 1
            i += 1
        elif lines[i].startswith("--%%"):
            flush()
            i += 1
        else:
            cur.append(lines[i])
            i += 1
    flush()
    return cells


def page(args):
    nb_file, html_file = args[0], args[1]
    want_fig, status = {}, "ok"
    k = 2
    while k < len(args):
        if args[k] == "--figures":
            for kv in args[k + 1].split(","):
                c, n = kv.split("=")
                want_fig[int(c)] = int(n)
            k += 2
        elif args[k] == "--status":
            status = args[k + 1]
            k += 2
        else:
            fail("unknown argument " + args[k])
    text = open(nb_file, encoding="utf-8").read()
    doc = open(html_file, encoding="utf-8").read()
    if not doc.startswith("<!DOCTYPE html>"):
        fail("no doctype")
    p = Page()
    p.feed(doc)
    p.close()
    if p.errors:
        fail("html: " + "; ".join(p.errors[:5]))
    if p.stack:
        fail("unclosed tags: %r" % p.stack)
    expected = code_cells(text)
    if len(expected) != len(p.cells):
        fail("%d code cells in the notebook, %d on the page" % (len(expected), len(p.cells)))
    summary = []
    for i, (src, cell) in enumerate(zip(expected, p.cells), 1):
        if cell["src"] != src:
            fail("cell %d: code on the page differs from the notebook:\n%r\n%r" % (i, cell["src"][:200], src[:200]))
        pngs = 0
        for uri in cell["images"]:
            if not uri.startswith("data:image/png;base64,"):
                fail("cell %d: image is not an embedded PNG: %r" % (i, uri[:40]))
            try:
                w, h, _, _ = decode_png(base64.b64decode(uri.split(",", 1)[1], validate=True))
            except Exception as e:  # noqa
                fail("cell %d: embedded PNG does not decode: %s" % (i, e))
            if w < 50 or h < 50:
                fail("cell %d: %dx%d image" % (i, w, h))
            pngs += 1
        if pngs < want_fig.get(i, 0):
            fail("cell %d: %d PNGs, expected at least %d" % (i, pngs, want_fig[i]))
        summary.append({"cell": i, "classes": cell["classes"], "pngs": pngs, "out": cell["out"], "error": cell["error"]})
    bad = [c for c in summary if "error" in c["classes"]]
    if status == "ok" and (bad or "all cells ran" not in doc):
        fail("the page shows an error: " + (bad[0]["error"][:300] if bad else "status line"))
    if status == "error" and (len(bad) != 1 or "stopped at an error" not in doc):
        fail("expected exactly one cell marked as an error, got %d" % len(bad))
    print(json.dumps(summary))


def screenshot(args):
    data = open(args[0], "rb").read()
    w, h, bpp, rows = decode_png(data)
    nonwhite, colours = 0, set()
    for y in range(0, h, 2):
        r = rows[y]
        for x in range(0, w, 2):
            px = r[x * bpp:x * bpp + min(bpp, 3)]
            colours.add(px)
            if min(px) < 235:
                nonwhite += 1
    frac = nonwhite / float(((h + 1) // 2) * ((w + 1) // 2))
    print("screenshot %dx%d: %.1f%% non-white samples, %d colours" % (w, h, 100 * frac, len(colours)))
    if frac < (float(args[1]) if len(args) > 1 else 0.02) or len(colours) < 20:
        fail("the screenshot looks blank")


if __name__ == "__main__":
    {"page": page, "screenshot": screenshot}[sys.argv[1]](sys.argv[2:])
