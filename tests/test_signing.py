"""core.formats.signing: minisign formats, checked against the real minisign binary and libsodium.

Interoperability tests run /usr/bin/minisign (Debian's package; CI installs it) and skip only
when it is absent. The scrypt mapping is checked against libsodium itself through ctypes.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import FormatError, SignatureError
from core.formats import signing
from core.formats.signing import (
    PublicKey,
    SecretKey,
    generate_keypair,
    keygen,
    load_secret_key,
    parse_public_key,
    sign,
    verify,
)

MINISIGN = shutil.which("minisign")
needs_minisign = pytest.mark.skipif(MINISIGN is None, reason="minisign is not installed")
Pair = tuple[SecretKey, PublicKey, bytes, bytes]  # key, public key, their files
MESSAGE = b'{"product": "demo", "version": "1.2.3"}\n' * 10


def fast_keypair(password: bytes | None) -> tuple[bytes, bytes]:
    """A key pair at libsodium's minimum scrypt cost (N=2^10, r=8, p=1): fast tests."""
    return generate_keypair(password, opslimit=32768, memlimit=16777216)


def minisign(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    assert MINISIGN is not None
    return subprocess.run(
        [MINISIGN, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def pair() -> Pair:
    secret_file, public_file = generate_keypair()
    key = load_secret_key(secret_file, None)
    return key, parse_public_key(public_file), secret_file, public_file


@pytest.fixture(scope="module")
def minisign_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PublicKey]:
    """A passwordless key pair made by ``minisign -G -W``: (folder with sec and pub, key)."""
    if MINISIGN is None:
        pytest.skip("minisign is not installed")
    d = tmp_path_factory.mktemp("minisign")
    assert minisign(d, "-G", "-W", "-p", "pub", "-s", "sec").returncode == 0
    return d, parse_public_key((d / "pub").read_text())


def key_id_in_comment(public_file: bytes) -> str:
    """The key id a .pub file's comment names, zero-padded: minisign 0.11 drops leading zeros
    (``%lX``), later versions and stitch print 16 digits (``%016X``)."""
    comment = public_file.split(b"\n")[0].decode()
    assert comment.startswith("untrusted comment: minisign public key ")
    return f"{int(comment.rsplit(' ', 1)[1], 16):016X}"


def swap_line(sig_file: bytes, index: int, line: bytes) -> bytes:
    lines = sig_file.split(b"\n")
    lines[index] = line
    return b"\n".join(lines)


def flip_in_b64_line(sig_file: bytes, index: int, offset: int) -> bytes:
    raw = bytearray(base64.b64decode(sig_file.split(b"\n")[index]))
    raw[offset] ^= 0x01
    return swap_line(sig_file, index, base64.b64encode(bytes(raw)))


# ------------------------------------------------------------------------ stitch alone


@pytest.mark.parametrize("prehash", [True, False])
def test_round_trip(pair: Pair, prehash: bool) -> None:
    key, pub, _, _ = pair
    sig = sign(MESSAGE, key, "release 1.2.3 é", prehash=prehash)
    assert base64.b64decode(sig.split(b"\n")[1])[:2] == (b"ED" if prehash else b"Ed")
    result = verify(MESSAGE, sig, [pub])
    assert (result.key_id, result.trusted_comment, result.prehashed) == (
        pub.key_id,
        "release 1.2.3 é",
        prehash,
    )


def test_public_key_forms(pair: Pair) -> None:
    key, pub, _, public_file = pair
    assert key.public_key == pub
    assert public_file == pub.to_file()
    assert public_file.decode().splitlines() == [
        f"untrusted comment: minisign public key {pub.key_id_hex}",
        pub.b64(),
    ]
    for form in (public_file, public_file.decode(), pub.b64(), f"  {pub.b64()}\r\n"):
        assert parse_public_key(form) == pub
    assert parse_public_key(public_file.replace(b"\n", b"\r\n")) == pub


def test_password_round_trip_and_wrong_password() -> None:
    secret_file, public_file = fast_keypair(b"correct horse")
    key = load_secret_key(secret_file, b"correct horse")
    assert key.public_key == parse_public_key(public_file)
    with pytest.raises(SignatureError, match="wrong password"):
        load_secret_key(secret_file, b"battery staple")
    with pytest.raises(SignatureError, match="password is needed"):
        load_secret_key(secret_file, None)
    with pytest.raises(ValueError):
        fast_keypair(b"two\nlines")


def test_damaged_unencrypted_secret_key_is_refused(pair: Pair) -> None:
    _, _, secret_file, _ = pair
    comment, line, _ = secret_file.split(b"\n")
    for offset in (0, 4, 60, 100, 150):  # algorithm, checksum algorithm, key id, secret, checksum
        raw = bytearray(base64.b64decode(line))
        raw[offset] ^= 0x40
        with pytest.raises(FormatError):
            load_secret_key(comment + b"\n" + base64.b64encode(bytes(raw)) + b"\n", None)


def test_hostile_scrypt_limits_are_refused() -> None:
    secret_file, _ = fast_keypair(b"pw")
    comment, line, _ = secret_file.split(b"\n")
    raw = bytearray(base64.b64decode(line))
    raw[46:54] = (1 << 40).to_bytes(8, "little")  # memlimit: 1 TiB
    raw[38:46] = (1 << 40).to_bytes(8, "little")
    with pytest.raises(FormatError, match="scrypt"):
        load_secret_key(comment + b"\n" + base64.b64encode(bytes(raw)), b"pw")


def test_key_id_mismatch(pair: Pair) -> None:
    key, pub, _, _ = pair
    other = parse_public_key(generate_keypair()[1])
    sig = sign(MESSAGE, key, "c")
    with pytest.raises(SignatureError, match=f"key id {pub.key_id_hex} is not a trusted key"):
        verify(MESSAGE, sig, [other])
    with pytest.raises(SignatureError):
        verify(MESSAGE, sig, [])
    assert verify(MESSAGE, sig, [other, pub]).key_id == pub.key_id


@pytest.mark.parametrize("prehash", [True, False])
def test_any_flipped_byte_is_caught(pair: Pair, prehash: bool) -> None:
    key, pub, _, _ = pair
    sig = sign(MESSAGE, key, "timestamp:1 file:release.json", prehash=prehash)
    tampered = bytearray(MESSAGE)
    tampered[7] ^= 0x01
    with pytest.raises(SignatureError, match="signature verification failed"):
        verify(bytes(tampered), sig, [pub])
    with pytest.raises(SignatureError, match="signature verification failed"):
        verify(MESSAGE, flip_in_b64_line(sig, 1, 40), [pub])  # inside the signature
    with pytest.raises(SignatureError, match="not a trusted key"):
        verify(MESSAGE, flip_in_b64_line(sig, 1, 3), [pub])  # inside the key id
    with pytest.raises(SignatureError, match="trusted comment"):
        verify(MESSAGE, sig.replace(b"file:release", b"file:Release"), [pub])
    with pytest.raises(SignatureError, match="trusted comment"):
        verify(MESSAGE, flip_in_b64_line(sig, 3, 10), [pub])  # inside the global signature
    # The untrusted comment is not signed, by design.
    assert verify(MESSAGE, swap_line(sig, 0, b"untrusted comment: anything"), [pub])


def test_malformed_signature_files(pair: Pair) -> None:
    key, pub, _, _ = pair
    sig = sign(MESSAGE, key, "c")
    assert verify(MESSAGE, sig.replace(b"\n", b"\r\n"), [pub])  # CRLF, e.g. a Windows checkout
    assert verify(MESSAGE, sig + b"\n\n", [pub])
    bad = [
        b"",
        sig[:-10],
        sig + b"extra line\n",
        swap_line(sig, 0, b"comment: x"),
        swap_line(sig, 2, b"trusted: c"),
        swap_line(sig, 1, sig.split(b"\n")[1][:-4]),
        swap_line(sig, 1, b"RXX" + sig.split(b"\n")[1][3:]),  # unknown algorithm
        sig.replace(b"trusted comment: c", b"trusted comment: c\rd"),
        sig.replace(b"trusted comment: c", b"trusted comment: \xff"),
        sig.replace(b"trusted comment: c", b"trusted comment: " + b"x" * 9000),
        b"untrusted comment: " + b"x" * 20000,
    ]
    for data in bad:
        with pytest.raises(SignatureError, match="malformed"):
            verify(MESSAGE, data, [pub])


def test_require_prehash(pair: Pair) -> None:
    key, pub, _, _ = pair
    with pytest.raises(SignatureError, match="legacy"):
        verify(MESSAGE, sign(MESSAGE, key, "c", prehash=False), [pub], require_prehash=True)


def test_comments_minisign_cannot_carry_are_refused(pair: Pair) -> None:
    key = pair[0]
    for comment in ("two\nlines", "cr\r", "nul\0", "x" * 8174):
        with pytest.raises(ValueError):
            sign(MESSAGE, key, comment)
    assert sign(MESSAGE, key, "x" * 8173)


def test_keygen_writes_private_file_and_refuses_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "stitch.key"
    pub = keygen(path, None)
    if sys.platform != "win32":  # Windows has ACLs, not mode bits
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert parse_public_key((tmp_path / "stitch.key.pub").read_bytes()) == pub
    assert load_secret_key(path.read_bytes(), None).public_key == pub
    assert len(list(tmp_path.iterdir())) == 2  # no temp files left behind
    with pytest.raises(FileExistsError):
        keygen(path, None)
    (tmp_path / "stitch.key").unlink()
    with pytest.raises(FileExistsError):  # the .pub alone also blocks
        keygen(path, None)
    assert keygen(path, None, force=True) != pub


# --------------------------------------------------------------------- scrypt vs libsodium

_SODIUM = ctypes.util.find_library("sodium")


@pytest.mark.skipif(_SODIUM is None, reason="libsodium is not installed")
@pytest.mark.parametrize(
    ("opslimit", "memlimit"),
    [(0, 0), (32768, 16777216), (524288, 16777216), (1 << 20, 1 << 25), (1 << 22, 1 << 24),
     (1 << 18, 1 << 30), (3_000_000, 20_000_000), (1 << 22, 1 << 22)],
)  # fmt: skip
def test_scrypt_matches_libsodium(opslimit: int, memlimit: int) -> None:
    assert _SODIUM is not None
    lib = ctypes.CDLL(_SODIUM)
    assert lib.sodium_init() >= 0
    password, salt = b"p\xc3\xa4ssword", bytes(range(32))
    out = ctypes.create_string_buffer(104)
    lib.crypto_pwhash_scryptsalsa208sha256.argtypes = [
        ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_char_p, ctypes.c_ulonglong,
        ctypes.c_char_p, ctypes.c_ulonglong, ctypes.c_size_t,
    ]  # fmt: skip
    rc = lib.crypto_pwhash_scryptsalsa208sha256(
        out, 104, password, len(password), salt, opslimit, memlimit
    )
    assert rc == 0
    assert signing._key_stream(password, salt, opslimit, memlimit) == out.raw


def test_scrypt_params_for_minisign_default() -> None:
    n, r, p = signing._scrypt_params(signing.OPSLIMIT_SENSITIVE, signing.MEMLIMIT_SENSITIVE)
    assert (n, r, p) == (1 << 20, 8, 1)


# ------------------------------------------------------------------ the real minisign


@needs_minisign
@pytest.mark.parametrize("legacy", [False, True])
def test_minisign_signature_verifies_in_stitch(
    minisign_pair: tuple[Path, PublicKey], tmp_path: Path, legacy: bool
) -> None:
    keys, pub = minisign_pair
    (tmp_path / "release.json").write_bytes(MESSAGE)
    args = ["-S", "-s", str(keys / "sec"), "-m", "release.json", "-t", "version 1.2.3"]
    assert minisign(tmp_path, *args, *(["-l"] if legacy else [])).returncode == 0
    sig = (tmp_path / "release.json.minisig").read_bytes()
    result = verify(MESSAGE, sig, [pub])
    assert (result.trusted_comment, result.prehashed) == ("version 1.2.3", not legacy)
    # minisign's .pub comment names the key id as stitch reads it
    assert key_id_in_comment((keys / "pub").read_bytes()) == pub.key_id_hex
    with pytest.raises(SignatureError):
        verify(MESSAGE + b" ", sig, [pub])


@needs_minisign
def test_minisign_secret_key_loads_in_stitch(minisign_pair: tuple[Path, PublicKey]) -> None:
    keys, pub = minisign_pair
    key = load_secret_key((keys / "sec").read_bytes(), None)  # checksum left zero by -W
    assert key.public_key == pub


@needs_minisign
@pytest.mark.parametrize("prehash", [True, False])
def test_stitch_signature_verifies_in_minisign(pair: Pair, tmp_path: Path, prehash: bool) -> None:
    key, pub, _, public_file = pair
    (tmp_path / "stitch.pub").write_bytes(public_file)
    (tmp_path / "release.json").write_bytes(MESSAGE)
    sig = sign(MESSAGE, key, "timestamp:1700000000\tfile:release.json", prehash=prehash)
    (tmp_path / "release.json.minisig").write_bytes(sig)
    ok = minisign(tmp_path, "-V", "-p", "stitch.pub", "-m", "release.json")
    assert ok.returncode == 0, ok.stderr
    assert "Trusted comment: timestamp:1700000000\tfile:release.json" in ok.stdout
    assert minisign(tmp_path, "-V", "-P", pub.b64(), "-m", "release.json").returncode == 0

    (tmp_path / "release.json.minisig").write_bytes(sig.replace(b"1700000000", b"1800000000"))
    bad = minisign(tmp_path, "-V", "-p", "stitch.pub", "-m", "release.json")
    assert bad.returncode != 0
    assert "Comment signature verification failed" in bad.stderr


@needs_minisign
@pytest.mark.parametrize("password", [None, "hunter2 and more"])
def test_stitch_secret_key_signs_with_minisign(tmp_path: Path, password: str | None) -> None:
    pw = None if password is None else password.encode()
    secret_file, public_file = fast_keypair(pw)
    (tmp_path / "stitch.key").write_bytes(secret_file)
    (tmp_path / "stitch.pub").write_bytes(public_file)
    (tmp_path / "f").write_bytes(MESSAGE)
    made = minisign(
        tmp_path, "-S", "-s", "stitch.key", "-m", "f", "-t", "t",
        stdin="" if password is None else password + "\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert verify(MESSAGE, (tmp_path / "f.minisig").read_bytes(), [parse_public_key(public_file)])
    assert minisign(tmp_path, "-V", "-p", "stitch.pub", "-m", "f").returncode == 0
    # minisign rebuilds the public key file from stitch's secret key byte for byte
    args = ["-R", "-s", "stitch.key", "-p", "re.pub"]
    assert minisign(tmp_path, *args, stdin=(password or "") + "\n").returncode == 0
    rebuilt = (tmp_path / "re.pub").read_bytes()
    assert rebuilt.split(b"\n")[1:] == public_file.split(b"\n")[1:]
    assert key_id_in_comment(rebuilt) == key_id_in_comment(public_file)


@needs_minisign
@pytest.mark.slow  # minisign's own scrypt cost: 1 GiB and a few seconds, twice
def test_password_key_made_by_minisign_loads_in_stitch(tmp_path: Path) -> None:
    made = minisign(tmp_path, "-G", "-p", "pub", "-s", "sec", stdin="s3cret pw\ns3cret pw\n")
    assert made.returncode == 0, made.stderr
    pub = parse_public_key((tmp_path / "pub").read_text())
    with pytest.raises(SignatureError, match="wrong password"):
        load_secret_key((tmp_path / "sec").read_bytes(), b"s3cret pW")
    key = load_secret_key((tmp_path / "sec").read_bytes(), b"s3cret pw")
    assert key.public_key == pub
    (tmp_path / "f").write_bytes(MESSAGE)
    (tmp_path / "f.minisig").write_bytes(sign(MESSAGE, key, "from stitch"))
    assert minisign(tmp_path, "-V", "-p", "pub", "-m", "f").returncode == 0


# ----------------------------------------------------------------------------- fuzzing


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_verify_raises_only_signature_error(data: bytes) -> None:
    pub = PublicKey(b"\x01" * 8, b"\x02" * 32)
    with pytest.raises(SignatureError):
        verify(MESSAGE, data, [pub])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fuzz_mutated_signature(pair: Pair, data: st.DataObject) -> None:
    key, pub, _, _ = pair
    sig = bytearray(sign(MESSAGE, key, "trusted"))
    first_line_end = sig.index(b"\n")
    i = data.draw(st.integers(0, len(sig) - 1))
    sig[i] = data.draw(st.integers(0, 255).filter(lambda b: b != sig[i]))
    try:
        verify(MESSAGE, bytes(sig), [pub])
    except SignatureError:
        return
    # Only the unsigned untrusted comment may change and still verify.
    assert i < first_line_end or i == len(sig) - 1  # a final "\r" is a CRLF ending


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_fuzz_parse_public_key_raises_only_format_error(data: bytes | str) -> None:
    try:
        pub = parse_public_key(data)
    except FormatError:
        return
    assert len(pub.key_id) == 8 and len(pub.key) == 32


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=42, max_size=42), st.booleans())
def test_fuzz_public_key_structure(raw: bytes, with_comment: bool) -> None:
    text = base64.b64encode(raw).decode()
    if with_comment:
        text = f"untrusted comment: anything\n{text}\n"
    if raw[:2] != b"Ed":
        with pytest.raises(FormatError, match="algorithm"):
            parse_public_key(text)
    else:
        pub = parse_public_key(text)
        assert (pub.key_id, pub.key, pub.b64()) == (
            raw[2:10],
            raw[10:],
            text.split("\n")[-2 if with_comment else 0],
        )


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_load_secret_key_raises_only_stitch_errors(data: bytes) -> None:
    with pytest.raises((FormatError, SignatureError)):
        load_secret_key(data, b"pw")


def test_oversized_inputs_are_refused_before_decoding(pair: Pair) -> None:
    pub = pair[1]
    with pytest.raises(FormatError, match="too long"):
        parse_public_key(" " * 5000 + pub.b64())
    with pytest.raises(SignatureError, match="too long"):
        verify(MESSAGE, os.urandom(16 * 1024 + 1), [pub])


def test_non_canonical_base64_is_refused(pair: Pair) -> None:
    """Base64's last character before the padding carries unused low bits: a signature
    whose bytes differ only there decodes to the same bytes, but it is not the signature
    that was made, so it is refused (found by test_fuzz_mutated_signature)."""
    key, pub, _, _ = pair
    sig = sign(MESSAGE, key, "trusted")
    lines = sig.split(b"\n")
    line = lines[1]
    assert line.endswith(b"=")  # 74 bytes: two bytes of padding in the encoding
    pad = len(line) - len(line.rstrip(b"="))
    last = line[-pad - 1:-pad]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    value = alphabet.index(last)
    twin = alphabet[value ^ 1:(value ^ 1) + 1]  # same decoded bytes: the flipped bit is unused
    lines[1] = line[:-pad - 1] + twin + line[-pad:]
    assert base64.b64decode(lines[1]) == base64.b64decode(line)
    with pytest.raises(SignatureError):
        verify(MESSAGE, b"\n".join(lines), [pub])
