"""``stitch demo``: a game-like release, published, served, installed and updated.

Also the generator of game-like folders that the tests and benchmarks use: a WAD-style lump
archive (lumps listed in ``assets/demo/lumps.txt``), a big packed asset file, an executable
and a texture folder; version 2 changes them the way real patches do (inserted and replaced
lumps, code shifted in the executable, renamed textures, a file added, one removed).
Deterministic for a given seed and scale.
"""

from __future__ import annotations

import random
import shutil
import struct
import threading
from pathlib import Path

from app.assets import asset_path


def _lump(rng: random.Random, kind: str, size: int) -> bytes:
    if kind == "noise":
        return rng.randbytes(size)
    if kind == "pattern":
        unit = rng.randbytes(rng.randrange(16, 256))
        return (unit * (size // len(unit) + 1))[:size]
    words = [b"door", b"key", b"imp", b"hall", b"lava", b"exit", b"secret", b"ammo"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" "
    return bytes(out[:size])


def _wad(lumps: list[tuple[str, bytes]]) -> bytes:
    body = bytearray(b"PWAD" + bytes(8))
    directory = bytearray()
    for name, data in lumps:
        directory += struct.pack("<II8s", len(body), len(data), name.encode()[:8])
        body += data
    struct.pack_into("<II", body, 4, len(lumps), len(body))
    return bytes(body + directory)


def _lump_table(scale: float) -> list[tuple[str, str, int]]:
    table = []
    for line in asset_path("demo/lumps.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, kind, kib = line.split()
            table.append((name, kind, max(1, int(int(kib) * 1024 * scale))))
    return table


def make_game(dest: Path, version: int, scale: float = 1.0, seed: int = 7) -> Path:
    """Write version 1 or 2 of the demo game into ``dest`` (about 7 MB times ``scale``)."""
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    lumps = [(name, _lump(rng, kind, size)) for name, kind, size in _lump_table(scale)]
    exe = rng.randbytes(int(600_000 * scale))
    pak = bytearray(rng.randbytes(int(2_000_000 * scale)))
    textures = {f"textures/wall{i:02d}.tex": rng.randbytes(int(30_000 * scale) + i * 97)
                for i in range(12)}
    readme = asset_path("demo/readme.txt").read_bytes()
    removed = {"docs/changelog-1.txt": b"version 1 notes\n" * 50}
    added: dict[str, bytes] = {}
    if version >= 2:
        prng = random.Random(seed + 1)
        # WAD: two new lumps inserted mid-archive, two replaced, one edited in place.
        lumps.insert(5, ("MAP05", prng.randbytes(int(150_000 * scale))))
        lumps.insert(9, ("DEHACKED", _lump(prng, "text", int(12_000 * scale))))
        lumps[3] = (lumps[3][0], prng.randbytes(len(lumps[3][1])))
        lumps[-2] = (lumps[-2][0], prng.randbytes(len(lumps[-2][1]) + 5000))
        sfx = bytearray(lumps[12][1])
        sfx[1000:1400] = prng.randbytes(400)
        lumps[12] = (lumps[12][0], bytes(sfx))
        # Executable: code inserted at a few places shifts everything after it.
        for at in (50_000, 300_000, 450_000):
            at = int(at * scale)
            exe = exe[:at] + prng.randbytes(700) + exe[at:]
        # Packed assets: scattered small edits.
        for _ in range(20):
            at = prng.randrange(len(pak) - 200)
            pak[at:at + 100] = prng.randbytes(100)
        # Textures: three renamed, one edited.
        for i in (2, 5, 7):
            textures[f"textures/stone{i:02d}.tex"] = textures.pop(f"textures/wall{i:02d}.tex")
        t = bytearray(textures["textures/wall01.tex"])
        t[:64] = prng.randbytes(64)
        textures["textures/wall01.tex"] = bytes(t)
        removed = {}
        added = {"docs/changelog-2.txt": b"version 2 notes: new map, better sounds\n" * 40}
        readme = readme + b"\nVersion 2.\n"
    files = {
        "data/game.wad": _wad(lumps), "data/assets.pak": bytes(pak), "bin/stitchquest": exe,
        "readme.txt": readme, **textures, **removed, **added,
    }
    for rel, data in files.items():
        p = dest / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    (dest / "bin/stitchquest").chmod(0o755)
    return dest


def run_demo(workdir: Path, scale: float = 1.0) -> int:
    """Generate v1 and v2, publish both, serve them, install v1, update to v2, report."""
    from app.serve import make_server
    from core.engine.updater import Updater, UpdaterConfig
    from core.publisher.publish import publish

    if workdir.exists():
        shutil.rmtree(workdir)
    v1 = make_game(workdir / "src-1.0.0", 1, scale)
    v2 = make_game(workdir / "src-1.1.0", 2, scale)
    repo = workdir / "repo"
    install = workdir / "install"
    print(f"demo folder: {workdir}")
    # compressed chunks and deltas: what `stitch publish` does by default
    print(publish(v1, repo, "1.0.0", product="stitchquest", compress=True,
                  deltas=True).lines()[0])
    server = make_server(repo, "127.0.0.1", 0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"serving {repo} at {url}")
    try:
        cfg = UpdaterConfig(url=url, install_dir=install)
        up = Updater(cfg)
        r = up.update()
        up.close()
        print(f"installed {r.to_version}: downloaded {r.bytes_downloaded:,} bytes "
              f"in {r.requests} requests")
        for line in publish(v2, repo, "1.1.0", compress=True, deltas=True).lines():
            print(line)
        up = Updater(cfg)
        plan = up.prepare()
        print(f"update plan: download {plan.bytes_to_download:,} bytes to build "
              f"{plan.disk_needed:,} bytes of changed files")
        r = up.apply()
        up.close()
        built = plan.disk_needed  # the changed files' new bytes, all staged
        print(f"updated {r.from_version} -> {r.to_version}: {r.files_changed} files changed, "
              f"{r.files_removed} removed")
        print(f"  downloaded {r.bytes_downloaded:,} bytes in {r.requests} requests "
              f"(manifest, indexes and deltas included)")
        print(f"  for {built:,} bytes of changed files: the other "
              f"{100 - 100 * r.bytes_downloaded / built:.1f}% came from the old install "
              "(its chunks, and the deltas' old files)")
        same = all((install / p.relative_to(v2)).read_bytes() == p.read_bytes()
                   for p in v2.rglob("*") if p.is_file())
        gone = not (install / "docs/changelog-1.txt").exists()
        print("  every file matches version 1.1.0" if same and gone else "  MISMATCH")
        return 0 if same and gone else 1
    finally:
        server.shutdown()
        server.server_close()
