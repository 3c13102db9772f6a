"""Hostile-input corpus: small functions that write each bad (or unusual but valid) input.

Nothing here is a committed binary: every file is generated into a test's temporary folder,
the big ones (10,000 members, 1 GB zip bomb) in a few seconds and a few MB on disk.
`CASES` lists the bad inputs with the words their message must contain; `VALID_CSVS` and
`unusual_images` the odd inputs that must simply work. What a demanding user would expect,
case by case, and what the library does:

| input                                        | decision                                                         |
|----------------------------------------------|------------------------------------------------------------------|
| zip with 10,000 members                      | refused: count over MMSTUDIO_MAX_ZIP_MEMBERS (5,000), says so     |
| zip whose members expand past 1 GB           | refused before anything is written: declared size over            |
|                                              | MMSTUDIO_MAX_ZIP_MB (500); real bytes are counted while unpacking |
| zip member expanding 1000x (20 MB of zeros)  | refused as a probable zip bomb (ratio over 200)                   |
| zip bigger than a lowered MMSTUDIO_MAX_ZIP_MB| refused, names the variable that raises the limit                 |
| zip member with '..', absolute path, symlink | refused; nothing is unpacked, nothing lands outside               |
| file named .zip that is no zip               | refused: "not a readable zip"                                     |
| PNG header claiming 100,000 x 100,000 px     | refused at load (header check, nothing decoded), row/column named |
| text file named .jpg                         | refused at load (header check), row/column named                  |
| truncated JPEG (header intact)               | loads (only decoding notices); the Data page's image grid shows   |
|                                              | an error for it and training/CLI stop with a message naming it    |
| image path with '..', absolute, or a symlink | refused, row and column named; the file is never opened           |
| to a file outside the dataset folder         |                                                                   |
| image file that does not exist               | refused, rows and paths listed                                    |
| binary garbage named .csv                    | refused: "is binary, not a text CSV"                              |
| latin-1 CSV                                  | VALID: read with the cp1252/latin-1 fallback, accents kept        |
| CSV with BOM / ';' + decimal commas / CRLF / | VALID: same values as the plain CSV (delimiter sniffed,          |
| quoted newlines                              | utf-8-sig, pandas handles line ends and quotes)                   |
| duplicated header names                      | refused naming the column (pandas would rename it 'x.1')          |
| a row with extra fields                      | refused: "could not be parsed", pandas' line number kept          |
| empty target column                          | refused: empty in every row, choose another target                |
| target missing in some rows                  | refused naming the rows (dropping rows silently hides mistakes)   |
| all-NaN feature column                       | VALID when detected (role ignore: carries nothing); refused when  |
|                                              | the user forces it numeric                                        |
| infinite value in a numeric column           | refused naming column and row (NaN is fine: imputed)              |
| --target naming a column that does not exist | refused listing the available columns                             |
| classification target with one class         | refused, names the class                                          |
| two rows only                                | refused: at least 10 rows                                         |
| more rows than MMSTUDIO_MAX_ROWS             | refused, names the variable                                       |
| upload bigger than MMSTUDIO_MAX_UPLOAD_MB    | refused before anything is saved (Data page only)                 |
"""
from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from support.datasets import make_dataset, med_rows, zip_folder

# Every path that tries to escape uses this name, so a test can look for it anywhere.
ESCAPE_NAME = "mmstudio-hostile-escape.txt"
RED, BLUE, GREEN, WHITE, BLACK = (255, 0, 0), (0, 0, 255), (0, 160, 0), (255, 255, 255), (0, 0, 0)


# ---------------------------------------------------------------- small builders

def _dataset(folder: Path, rows: list[dict] | None = None) -> Path:
    """The 12-row image + table dataset of support.datasets (image_path, age, sex, target)."""
    return make_dataset(folder, rows=rows if rows is not None else med_rows())


def _csv(folder: Path, text: str | bytes, name: str = "data.csv") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(text.encode() if isinstance(text, str) else text)
    return folder / name


def _table(n: int = 12, **columns: list) -> str:
    """A tabular CSV: x (numbers), group (text), label (two classes), plus/overriding `columns`."""
    cols = {"x": [f"{1.5 * i}" for i in range(n)], "group": ["ab"[i % 2] for i in range(n)],
            "label": ["yes" if i % 3 else "no" for i in range(n)], **columns}
    lines = [",".join(cols)] + [",".join(str(cols[c][i]) for c in cols) for i in range(n)]
    return "\n".join(lines) + "\n"


def _zip_with(folder: Path, add: Callable[[zipfile.ZipFile], None], name: str = "evil.zip",
              compression: int = zipfile.ZIP_DEFLATED, level: int | None = None) -> Path:
    """A zip of a valid dataset (under ds/) plus whatever `add` writes into it."""
    _dataset(folder / "src")
    out = zip_folder(folder / "src", folder / name)
    with zipfile.ZipFile(out, "a", compression, compresslevel=level) as zf:
        add(zf)
    return out


# ---------------------------------------------------------------- zips

def zip_many_members(folder: Path, members: int = 10_000) -> Path:
    def add(zf: zipfile.ZipFile) -> None:
        for i in range(members):
            zf.writestr(f"ds/junk/{i}.txt", "x")
    return _zip_with(folder, add, "many.zip")


def zip_bomb(folder: Path, members: int = 3, member_mb: int = 380) -> Path:
    """Members of zeros declaring members * member_mb MB (> 1 GB) in ~5 MB on disk."""
    chunk = bytes(1 << 20)

    def add(zf: zipfile.ZipFile) -> None:
        for m in range(members):
            with zf.open(f"ds/zeros{m}.bin", "w", force_zip64=True) as out:
                for _ in range(member_mb):
                    out.write(chunk)
    return _zip_with(folder, add, "bomb.zip", level=1)  # fastest deflate: built in ~4 s


def zip_high_ratio(folder: Path) -> Path:
    return _zip_with(folder, lambda zf: zf.writestr("ds/zeros.bin", bytes(20_000_000)), "ratio.zip")


def zip_noise(folder: Path, mb: int = 2) -> Path:
    """A valid dataset plus `mb` MB of incompressible bytes (for lowered size limits)."""
    noise = np.random.default_rng(0).integers(0, 256, mb << 20, dtype=np.uint8).tobytes()
    return _zip_with(folder, lambda zf: zf.writestr("ds/noise.bin", noise), "noise.zip", zipfile.ZIP_STORED)


def zip_dotdot(folder: Path) -> Path:
    return _zip_with(folder, lambda zf: zf.writestr(f"ds/../../{ESCAPE_NAME}", "pwned"))


def zip_absolute(folder: Path) -> Path:
    return _zip_with(folder, lambda zf: zf.writestr(f"/tmp/{ESCAPE_NAME}", "pwned"))


def zip_symlink(folder: Path) -> Path:
    def add(zf: zipfile.ZipFile) -> None:
        info = zipfile.ZipInfo("ds/img/link.png")
        info.external_attr = 0o120777 << 16  # S_IFLNK: unpacked naively, a link to /etc/passwd
        zf.writestr(info, "/etc/passwd")
    return _zip_with(folder, add)


def not_a_zip(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notzip.zip").write_text("this is plain text, not a zip archive\n")
    return folder / "notzip.zip"


# ---------------------------------------------------------------- images inside a dataset

def png_header_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 1x1 PNG whose IHDR chunk (CRC fixed up) claims width x height pixels."""
    png = bytearray(_encoded(Image.new("RGB", (1, 1)), "PNG"))
    png[16:24] = struct.pack(">II", width, height)           # IHDR data starts after 8+4+4 bytes
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))  # CRC over type + data
    return bytes(png)


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _dataset_with_file(folder: Path, row: int, name: str, content: bytes) -> Path:
    """The dataset with row `row` (0-based) pointing at a file holding `content`."""
    rows = med_rows()
    rows[row]["image_path"] = name
    csv = _dataset(folder, rows)
    (folder / name).write_bytes(content)
    return csv


def image_pixel_bomb(folder: Path) -> Path:
    return _dataset_with_file(folder, 3, "img/bomb.png", png_header_bomb())


def image_text_as_jpg(folder: Path) -> Path:
    return _dataset_with_file(folder, 1, "img/notes.jpg", b"hello, this is a text file\n")


def image_truncated_jpeg(folder: Path) -> Path:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    full = _encoded(Image.fromarray(noise), "JPEG")
    return _dataset_with_file(folder, 2, "img/cut.jpg", full[: len(full) // 2])


def _dataset_with_path(folder: Path, row: int, value: str) -> Path:
    rows = med_rows()
    rows[row]["image_path"] = value
    return _dataset(folder / "ds", rows)


def _outside_image(folder: Path) -> Path:
    """A real image just outside the dataset folder: escaping to it must still be refused."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (20, 20), RED).save(folder / "outside.png")
    return folder / "outside.png"


def image_path_dotdot(folder: Path) -> Path:
    _outside_image(folder)
    return _dataset_with_path(folder, 3, "../outside.png")


def image_path_absolute(folder: Path) -> Path:
    return _dataset_with_path(folder, 1, str(_outside_image(folder)))


def image_symlink_outside(folder: Path) -> Path:
    outside = _outside_image(folder)
    csv = _dataset_with_path(folder, 0, "link.png")
    (csv.parent / "link.png").symlink_to(outside)
    return csv


def image_missing(folder: Path) -> Path:
    return _dataset_with_path(folder, 6, "lost/gone.png")


# ---------------------------------------------------------------- CSVs

def csv_binary(folder: Path) -> Path:
    return _csv(folder, bytes(range(256)) * 8)


def csv_duplicate_headers(folder: Path) -> Path:
    return _csv(folder, _table().replace("x,group,label", "x,group,x", 1))


def csv_extra_fields(folder: Path) -> Path:
    lines = _table().splitlines()
    lines[7] += ",surplus,values"
    return _csv(folder, "\n".join(lines) + "\n")


def csv_empty_target(folder: Path) -> Path:
    return _csv(folder, _table(label=[""] * 12))


def csv_target_missing_some(folder: Path) -> Path:
    labels = ["yes" if i % 3 else "no" for i in range(12)]
    labels[2] = labels[4] = ""
    return _csv(folder, _table(label=labels))


def csv_all_nan_feature(folder: Path) -> Path:
    return _csv(folder, _table(empty=[""] * 12))


def csv_infinite(folder: Path) -> Path:
    xs = [f"{1.5 * i}" for i in range(12)]
    xs[4] = "inf"
    return _csv(folder, _table(x=xs))


def csv_one_class(folder: Path) -> Path:
    return _csv(folder, _table(label=["yes"] * 12))


def csv_two_rows(folder: Path) -> Path:
    return _csv(folder, _table(n=2))


def csv_many_rows(folder: Path, n: int = 25) -> Path:
    return _csv(folder, _table(n=n))


# ---------------------------------------------------------------- the bad cases

@dataclass(frozen=True)
class Case:
    """One bad input and what its message must say (file / row / column, and what to do)."""

    id: str
    build: Callable[[Path], Path]          # writes the input under a folder, returns the DATA source
    expect: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)        # limits lowered for this case
    load_kwargs: dict = field(default_factory=dict)          # load_dataset(...) choices ...
    cli_args: tuple[str, ...] = ()                           # ... and the same as `train` flags
    stage: str = "load"      # load: load_dataset refuses; decode: only decoding the images does
    app: bool = True         # deliverable as a Data page upload (a symlink cannot be uploaded)


CASES = [
    Case("zip_10000_members", zip_many_members, ("'many.zip'", "10,014 files", "limit 5,000",
                                                  "MMSTUDIO_MAX_ZIP_MEMBERS")),
    Case("zip_bomb_over_1gb", zip_bomb, ("'bomb.zip'", "unpacks to 1,140 MB", "limit 500 MB",
                                         "MMSTUDIO_MAX_ZIP_MB")),
    Case("zip_member_ratio_bomb", zip_high_ratio, ("'ds/zeros.bin'", "'ratio.zip'", "zip bomb",
                                                   "re-create the zip")),
    Case("zip_over_lowered_limit", zip_noise, ("'noise.zip'", "limit 1 MB", "MMSTUDIO_MAX_ZIP_MB"),
         env={"MMSTUDIO_MAX_ZIP_MB": "1"}),
    Case("zip_member_dotdot", zip_dotdot, (f"'ds/../../{ESCAPE_NAME}'", "outside the folder", "re-create")),
    Case("zip_member_absolute", zip_absolute, (f"'/tmp/{ESCAPE_NAME}'", "absolute path", "re-create")),
    Case("zip_member_symlink", zip_symlink, ("'ds/img/link.png'", "symbolic link", "zip the real files")),
    Case("zip_not_a_zip", not_a_zip, ("'notzip.zip'", "not a readable zip", "re-create")),
    Case("png_claims_100000x100000", image_pixel_bomb, ("row 4", "column 'image_path'", "'img/bomb.png'",
                                                         "too large", "remove it")),
    Case("text_file_named_jpg", image_text_as_jpg, ("row 2", "column 'image_path'", "'img/notes.jpg'",
                                                    "not an image", "replace or remove it")),
    Case("truncated_jpeg", image_truncated_jpeg, ("cut.jpg", "truncated", "replace or remove it"),
         stage="decode"),
    Case("image_path_dotdot", image_path_dotdot, ("row 4", "column 'image_path'", "'../outside.png'",
                                                  "outside the dataset folder", "move the image")),
    Case("image_path_absolute", image_path_absolute, ("row 2", "column 'image_path'", "outside.png'",
                                                      "is absolute", "relative to the CSV")),
    Case("image_symlink_outside", image_symlink_outside, ("row 1", "column 'image_path'", "'link.png'",
                                                          "outside the dataset folder"), app=False),
    Case("image_missing", image_missing, ("column 'image_path'", "row 7: 'lost/gone.png'", "not found",
                                          "fix the paths")),
    Case("csv_binary_garbage", csv_binary, ("'data.csv'", "binary", "export it as CSV")),
    Case("csv_duplicate_headers", csv_duplicate_headers, ("'data.csv'", "duplicate column name", "'x'",
                                                          "rename")),
    Case("csv_row_with_extra_fields", csv_extra_fields, ("'data.csv'", "could not be parsed", "line 8",
                                                         "check the delimiter")),
    Case("csv_empty_target_column", csv_empty_target, ("target column 'label'", "empty in every row",
                                                       "choose another target")),
    Case("csv_target_missing_in_rows", csv_target_missing_some, ("rows 3, 5", "target 'label' is empty",
                                                                 "fill or drop")),
    Case("all_nan_feature_forced_numeric", csv_all_nan_feature, ("column 'empty'", "empty in every row",
                                                                 "role to ignore"),
         load_kwargs={"overrides": {"empty": "numeric"}}, cli_args=("--numeric-cols", "empty"), app=False),
    Case("infinite_value", csv_infinite, ("column 'x'", "row 5", "infinite", "replace it")),
    Case("unknown_target_column", csv_one_class, ("'nope'", "available: x, group, label"),
         load_kwargs={"target": "nope"}, cli_args=("--target", "nope"), app=False),
    Case("one_class_target", csv_one_class, ("target 'label'", "only one class ('yes')", "add rows")),
    Case("two_rows_only", csv_two_rows, ("'data.csv'", "only 2 data rows", "at least 10")),
    Case("rows_over_limit", csv_many_rows, ("'data.csv'", "more than 20 data rows", "MMSTUDIO_MAX_ROWS"),
         env={"MMSTUDIO_MAX_ROWS": "20"}),
]


# ---------------------------------------------------------------- valid variants

# name -> (CSV bytes, how it was written); each must read to the same table as PLAIN_ROWS.
PLAIN_ROWS = [("a b", 1.5, "yes"), ('say "hi"', 2.0, "no"), ("line\nbreak", -3.25, "yes")] * 4


def _variant(sep: str = ",", newline: str = "\n", decimal: str = ".", encoding: str = "utf-8") -> bytes:
    def cell(v: object) -> str:
        text = str(v).replace(".", decimal) if isinstance(v, float) else str(v)
        needs_quotes = any(ch in text for ch in (sep, '"', "\n"))
        return '"' + text.replace('"', '""') + '"' if needs_quotes else text
    lines = [sep.join(("name", "value", "label"))] + [sep.join(cell(v) for v in row) for row in PLAIN_ROWS]
    return (newline.join(lines) + newline).encode(encoding)


VALID_CSVS = {
    "bom": _variant(encoding="utf-8-sig"),
    "semicolon_decimal_comma": _variant(sep=";", decimal=","),
    "crlf": _variant(newline="\r\n"),
    "everything_at_once": _variant(sep=";", newline="\r\n", decimal=",", encoding="utf-8-sig"),
    "tab": _variant(sep="\t"),
}


# ---------------------------------------------------------------- unusual but valid images

# name -> probes: (row fraction, column fraction, expected RGB, tolerance) on the decoded image.
Probe = tuple[float, float, tuple[int, int, int], int]


def unusual_images(folder: Path) -> dict[str, tuple[Path, list[Probe]]]:
    """Images in every odd mode a camera, scanner or editor writes, with where colours must land."""
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, list[Probe]]] = {}

    def save(name: str, img: Image.Image, probes: list[Probe], **kw) -> None:
        img.save(folder / name, **kw)
        out[name] = (folder / name, probes)

    left_right = lambda left, right, tol=0: [(0.5, 0.1, left, tol), (0.5, 0.9, right, tol)]  # noqa: E731
    save("cmyk.jpg", Image.new("CMYK", (32, 32), (0, 255, 255, 0)), [(0.5, 0.5, RED, 60)], quality=95)
    sixteen = np.zeros((32, 32), dtype=np.uint16)
    sixteen[:, :16] = 65535
    save("gray16.png", Image.fromarray(sixteen), left_right(WHITE, BLACK, 2))   # mode I;16
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (16, 0, 32, 32))
    save("palette.png", palette, left_right(WHITE, RED), transparency=0)      # transparent -> white
    save("gray.png", Image.new("L", (32, 32), 100), [(0.5, 0.5, (100, 100, 100), 0)])
    rgba = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    rgba.paste((0, 160, 0, 255), (0, 0, 16, 32))
    save("rgba.png", rgba, left_right(GREEN, WHITE))
    save("la.png", Image.new("LA", (32, 32), (50, 0)), [(0.5, 0.5, WHITE, 0)])
    upright = Image.new("RGB", (32, 64), BLUE)
    upright.paste(RED, (0, 0, 32, 32))                                           # red on top
    top_bottom = [(0.1, 0.1, RED, 40), (0.1, 0.9, RED, 40), (0.9, 0.1, BLUE, 40), (0.9, 0.9, BLUE, 40)]
    for orientation, stored in ((6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)):
        exif = Image.Exif()
        exif[0x0112] = orientation      # how a sideways phone camera says "rotate me when shown"
        save(f"exif{orientation}.jpg", upright.transpose(stored), top_bottom, exif=exif.tobytes(), quality=95)
    wide = Image.new("RGB", (2000, 20), RED)
    wide.paste(BLUE, (1000, 0, 2000, 20))
    save("wide.png", wide, left_right(RED, BLUE, 1))
    tall = Image.new("RGB", (20, 2000), RED)
    tall.paste(BLUE, (0, 1000, 20, 2000))
    save("tall.png", tall, [(0.1, 0.5, RED, 1), (0.9, 0.5, BLUE, 1)])
    return out
