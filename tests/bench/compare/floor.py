"""Tool ``floor``: the least a Python client of stitch's design must do to update a
many-file install, to tell stitch's own cost from the design's (issue 16.4).

It updates the install the ``stitch`` variant installed, from the same repository, with
none of stitch's bookkeeping: no plan, journal, state, progress, lock or fallback. What it
keeps is what any updater of this design pays:

- the imports an update needs (httpx, cryptography, zstandard);
- the same round trips: the pointer; then the manifest delta and the signature side by
  side; then the pack's entries in one range request, with the changed files the pack does
  not hold fetched whole beside it;
- the signature checked, each file's bytes decoded, written to a staged file, read back and
  compared with the manifest's SHA-256;
- one ``syncfs``, one ``renameat2`` exchange per replaced file (a rename for a new one),
  and the old files deleted.

A changed file the pack does not hold is fetched as its own delta from the installed file,
else whole (never by chunks): on the many-file pair that is 3 files, fetched side by side
with the pack. Linux only.

    python -m tests.bench.compare.floor URL DIR PUBKEY   (URL: the repository's base URL)
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import base64  # noqa: E402  (T0 first: the imports are part of what is measured)
import ctypes  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import zstandard  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402

from core.formats import manifest_delta  # noqa: E402
from core.formats.delta import open_decoder  # noqa: E402
from core.formats.delta_small import decode_whole  # noqa: E402

RENAME_EXCHANGE = 2
AT_FDCWD = -100


def verify(data: bytes, minisig: bytes, pubkey_file: Path) -> None:
    """A minisign signature (prehashed, ``ED``) of ``data`` and its trusted comment."""
    pk = base64.b64decode(pubkey_file.read_text().splitlines()[1])[10:]
    lines = minisig.decode().splitlines()
    sig = base64.b64decode(lines[1])
    key = Ed25519PublicKey.from_public_bytes(pk)
    key.verify(sig[10:], hashlib.blake2b(data).digest())
    comment = lines[2].removeprefix("trusted comment: ").encode()
    key.verify(base64.b64decode(lines[3]), sig[10:] + comment)


def main(argv: list[str]) -> int:
    marks = [("imports", time.perf_counter())]
    url, inst, pubkey = argv[0].rstrip("/") + "/stable", Path(argv[1]), Path(argv[2])
    client = httpx.Client(limits=httpx.Limits(max_connections=8))
    pointer = json.loads(client.get(f"{url}/latest.json").content)
    rel = pointer["manifest"].rsplit("/", 1)[0]
    installed = (inst / ".stitch" / "installed" / "release.json").read_bytes()
    got: dict[str, bytes] = {}

    def get(key: str, path: str, headers: dict[str, str] | None = None) -> None:
        got[key] = client.get(f"{url}/{path}", headers=headers).raise_for_status().content

    def side_by_side(*jobs: tuple[Any, ...]) -> None:
        threads = [threading.Thread(target=get, args=job) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    base = hashlib.sha256(installed).hexdigest()
    side_by_side(("sig", f"{rel}/release.json.minisig"),
                 ("delta", f"{rel}/release.json.{base[:16]}.zdelta"))
    data = manifest_delta.decode(installed, got["delta"], 1 << 26)
    if hashlib.sha256(data).hexdigest() != pointer["sha256"]:
        raise SystemExit("manifest does not match the pointer")
    verify(data, got["sig"], pubkey)
    new = json.loads(data)["files"]
    old = {f["path"]: f["sha256"] for f in json.loads(installed)["files"]}
    marks.append(("check", time.perf_counter()))

    packed: list[tuple[dict[str, Any], int, int, bool]] = []  # entry, offset, size, delta?
    whole: list[dict[str, Any]] = []
    for f in new:
        have = old.get(f["path"])
        if have == f["sha256"]:
            continue
        ref = f.get("pack") or []
        at = [None, None, *f["pack_deltas"]] if "pack_deltas" in f else ref
        froms = [d["from"] for d in f.get("deltas", [])]
        k = froms.index(have) if have in froms else -1
        if k >= 0 and len(at) > 2 + k and at[2 + k] is not None:
            packed.append((f, at[2 + k], f["deltas"][k]["size"], True))
        elif ref:
            packed.append((f, ref[0], ref[1], False))
        else:
            whole.append(f)  # by its own delta from the installed file when there is one
            f["delta_from"] = have if k >= 0 else None
    lo = min(p[1] for p in packed)
    hi = max(p[1] + p[2] for p in packed)
    side_by_side(("pack", f"{rel}/small.pack", {"Range": f"bytes={lo}-{hi - 1}"}),
                 *(("file:" + f["path"], f"{rel}/files/{f['path']}" + (
                     f".{f['delta_from'][:16]}.zdelta" if f["delta_from"] else ""))
                   for f in whole))
    marks.append(("fetch", time.perf_counter()))

    stage = inst / ".stitch" / "floor"
    stage.mkdir(exist_ok=True)
    pack = memoryview(got["pack"])
    dctx = zstandard.ZstdDecompressor()
    moves: list[tuple[str, str, bool]] = []  # staged, final, replaces a file
    for n, (f, at, size, is_delta) in enumerate([*packed, *((f, 0, 0, False) for f in whole)]):
        final = os.path.join(inst, f["path"])
        fetched = got.get("file:" + f["path"])
        if fetched is not None and not f["delta_from"]:
            body: bytes | bytearray = fetched
        elif is_delta or fetched is not None:
            delta = pack[at - lo:at - lo + size] if fetched is None else memoryview(fetched)
            made = decode_whole(Path(final).read_bytes(), delta, f["size"])
            if made is None:  # a delta with a copy table: the streaming decoder
                made = bytearray(f["size"])

                def put(piece: bytes | memoryview, offset: int, out: bytearray = made) -> None:
                    out[offset:offset + len(piece)] = piece
                stream = open_decoder(Path(final), f["size"], put)
                stream.feed(bytes(delta))
                stream.finish()
                stream.close()
            body = made
        else:
            body = dctx.decompress(pack[at - lo:at - lo + size], max_output_size=f["size"])
        staged = str(stage / str(n))
        fd = os.open(staged, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.pwrite(fd, body, 0)
            if hashlib.sha256(os.pread(fd, f["size"], 0)).hexdigest() != f["sha256"]:
                raise SystemExit(f"{f['path']}: bytes do not match the manifest")
        finally:
            os.close(fd)
        moves.append((staged, final, f["path"] in old))
    marks.append(("build", time.perf_counter()))
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(stage, os.O_RDONLY)
    libc.syncfs(fd)
    os.close(fd)
    marks.append(("syncfs", time.perf_counter()))
    for staged, final, replaces in moves:
        if replaces:
            if libc.renameat2(AT_FDCWD, staged.encode(), AT_FDCWD, final.encode(),
                              RENAME_EXCHANGE):
                raise OSError(ctypes.get_errno(), f"{final}: no exchange")
        else:
            os.makedirs(os.path.dirname(final), exist_ok=True)
            os.rename(staged, final)
    marks.append(("swap", time.perf_counter()))
    for staged, _final, replaces in moves:
        if replaces:
            os.unlink(staged)
    for path in set(old) - {f["path"] for f in new}:
        os.unlink(os.path.join(inst, path))
    marks.append(("delete", time.perf_counter()))
    phases = ", ".join(f"{name} {t - before:.3f}" for (name, t), (_, before)
                       in zip(marks, [("start", T0), *marks[:-1]], strict=True))
    print(f"floor: {len(packed)} files from the pack, {len(whole)} whole; {phases}; "
          f"total {time.perf_counter() - T0:.3f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
