"""Ed25519 signatures in minisign's file formats: key pairs, ``.minisig`` files, sign, verify.

Owns the byte layouts of minisign's public key, secret key and signature files, so that a
publisher may sign with ``minisign -S`` or with stitch, and ``minisign -V`` accepts what stitch
signs; password protection of secret keys (scrypt, exactly as libsodium's
``crypto_pwhash_scryptsalsa208sha256`` derives it); and the one trust decision "these bytes were
signed by one of these keys, with this trusted comment".

Leaves out what is signed and what a trusted comment means (the manifest module decides),
fetching or reading messages and signatures (callers pass bytes), and asking for passwords
(front ends). ``keygen`` is the one function that writes files.

Errors, consistently:
  * ``verify`` raises only ``SignatureError``, for anything wrong with the signature file
    (it does not parse, unknown key id, bad signature, tampered trusted comment).
  * ``parse_public_key`` and ``load_secret_key`` raise ``FormatError`` for key text that does
    not parse; ``load_secret_key`` raises ``SignatureError`` for a missing or wrong password.
  * ``ValueError`` means a bad argument (a comment or password minisign could not carry).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from core.errors import FormatError, SignatureError
from core.fsutil import atomic_write

__all__ = [
    "MEMLIMIT_SENSITIVE",
    "OPSLIMIT_SENSITIVE",
    "PublicKey",
    "SecretKey",
    "Verified",
    "generate_keypair",
    "keygen",
    "load_secret_key",
    "parse_public_key",
    "sign",
    "verify",
]

SIGALG = b"Ed"  # key algorithm; as a signature algorithm: legacy, signs the raw message
SIGALG_HASHED = b"ED"  # signs BLAKE2b-512(message): minisign's default since 0.10
KDF_SCRYPT = b"Sc"
KDF_NONE = b"\0\0"  # ``minisign -G -W``: secret key stored unencrypted
CHKALG = b"B2"  # BLAKE2b-256 checksum of the secret key
COMMENT_PREFIX = b"untrusted comment: "
TRUSTED_PREFIX = b"trusted comment: "

_KEY_ID_LEN = 8
_PK_LEN = 32
_SK_LEN = 64  # libsodium's layout: 32-byte seed, then the 32-byte public key
_SIG_LEN = 64
_SALT_LEN = 32
_KEYNUM_SK_LEN = _KEY_ID_LEN + _SK_LEN + 32  # key id, secret key, checksum
_PUBKEY_LEN = 2 + _KEY_ID_LEN + _PK_LEN
_SECKEY_LEN = 6 + _SALT_LEN + 16 + _KEYNUM_SK_LEN
_SIGSTRUCT_LEN = 2 + _KEY_ID_LEN + _SIG_LEN

# minisign reads each line with fgets() into fixed buffers (1024 bytes for comment lines, 8192
# for the trusted comment line) and rejects a line whose newline does not fit. These limits
# keep every file stitch writes readable by minisign, and bound what stitch reads.
_COMMENT_LINE_MAX = 1022  # bytes of an untrusted comment line, prefix included, no newline
_TRUSTED_COMMENT_MAX = 8192 - 2 - len(TRUSTED_PREFIX)  # after the prefix
_SIG_FILE_MAX = 16 * 1024
_KEY_FILE_MAX = 4096
_PASSWORD_MAX = 1023  # minisign's PASSWORDMAXBYTES buffer, minus its NUL

# libsodium's crypto_pwhash_scryptsalsa208sha256 limits. SENSITIVE is what minisign uses:
# N=2^20, r=8, p=1, i.e. 1 GiB of memory and a few seconds per derivation.
OPSLIMIT_SENSITIVE = 33554432
MEMLIMIT_SENSITIVE = 1073741824
_OPSLIMIT_MIN = 32768
_MEMLIMIT_MIN = 16777216
# A key file decides its own scrypt cost; these caps stop a hostile one from asking for more
# than hashlib can give (maxmem must fit a C int) or hours of CPU. 4x minisign's default work.
_SCRYPT_MAXMEM = 2**31 - 1
_SCRYPT_MAX_WORK = 2**22  # N * p


def _hex_id(key_id: bytes) -> str:
    """A key id as minisign prints it: upper-case hex of the little-endian u64."""
    return f"{int.from_bytes(key_id, 'little'):016X}"


@dataclass(frozen=True)
class PublicKey:
    """A minisign public key: 8-byte key id and 32-byte Ed25519 public key."""

    key_id: bytes
    key: bytes

    @property
    def key_id_hex(self) -> str:
        return _hex_id(self.key_id)

    def b64(self) -> str:
        """The base64 line of a .pub file, as ``minisign -P`` takes it."""
        return base64.b64encode(SIGALG + self.key_id + self.key).decode("ascii")

    def to_file(self) -> bytes:
        """The content of a .pub file as ``minisign -G`` writes it (0.11 drops leading zeros)."""
        return f"untrusted comment: minisign public key {self.key_id_hex}\n{self.b64()}\n".encode()


@dataclass(frozen=True, eq=False)
class SecretKey:
    """An unlocked secret key. Never printed: the private half is left out of ``repr``."""

    key_id: bytes
    private: Ed25519PrivateKey = field(repr=False)

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(self.key_id, self.private.public_key().public_bytes_raw())


@dataclass(frozen=True)
class Verified:
    """What a good signature vouches for besides the message: the signer and the comment."""

    key_id: bytes
    trusted_comment: str
    prehashed: bool  # False for a legacy ("Ed") signature over the raw message

    @property
    def key_id_hex(self) -> str:
        return _hex_id(self.key_id)


def _lines(data: bytes, count: int) -> list[bytes]:
    """The first ``count`` lines of ``data``; only blank lines may follow them.

    Accepts LF or CRLF endings (a .minisig checked out on Windows). A carriage return or NUL
    inside a line is refused rather than silently cut, as minisign's C strings would do.
    """
    lines = [line.removesuffix(b"\r") for line in data.split(b"\n")]
    if len(lines) < count or any(line.strip() for line in lines[count:]):
        raise ValueError(f"expected {count} lines")
    head = lines[:count]
    if any(b"\r" in line or b"\0" in line for line in head):
        raise ValueError("stray carriage return or NUL byte")
    return head


def _unb64(line: bytes, size: int) -> bytes:
    """Strict base64 of exactly ``size`` bytes; the length is checked before decoding."""
    if len(line) != 4 * ((size + 2) // 3):
        raise ValueError(f"base64 line has {len(line)} characters")
    raw = base64.b64decode(line, validate=True)  # binascii.Error is a ValueError
    if len(raw) != size:
        raise ValueError("base64 line decodes to the wrong length")
    if base64.b64encode(raw) != line:  # unused low bits set before the padding
        raise ValueError("base64 line is not in canonical form")
    return raw


def _comment_bytes(text: str, limit: int, what: str) -> bytes:
    raw = text.encode("utf-8")
    if b"\n" in raw or b"\r" in raw or b"\0" in raw:
        raise ValueError(f"{what} must be one line without NUL bytes")
    if len(raw) > limit:
        raise ValueError(f"{what} is {len(raw)} bytes; minisign allows {limit}")
    return raw


def _prehash(message: bytes) -> bytes:
    return hashlib.blake2b(message, digest_size=64).digest()


def _checksum(key_id: bytes, sk: bytes) -> bytes:
    # libsodium's crypto_generichash with a 32-byte output is BLAKE2b with digest_size=32,
    # which is not a truncated BLAKE2b-512.
    return hashlib.blake2b(SIGALG + key_id + sk, digest_size=32).digest()


def _scrypt_params(opslimit: int, memlimit: int) -> tuple[int, int, int]:
    """(N, r, p) from libsodium's opslimit/memlimit: ``pickparams`` in pwhash_scryptsalsa208sha256.

    Raises ValueError when the parameters exceed what stitch is willing to compute.
    """
    opslimit = max(opslimit, 32768)
    r = 8
    cpu_bound = opslimit < memlimit // 32  # then p = 1 and the CPU limit picks N
    max_n = opslimit // (r * 4) if cpu_bound else memlimit // (r * 128)
    n_log2 = 1
    while n_log2 < 63 and (1 << n_log2) <= max_n // 2:
        n_log2 += 1
    n = 1 << n_log2
    p = 1 if cpu_bound else min((opslimit // 4) // n, 0x3FFFFFFF) // r
    if p < 1 or n * p > _SCRYPT_MAX_WORK or 128 * r * (n + 2 + p) > _SCRYPT_MAXMEM:
        raise ValueError(f"scrypt parameters out of range (N={n}, r={r}, p={p})")
    return n, r, p


def _key_stream(password: bytes, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    n, r, p = _scrypt_params(opslimit, memlimit)
    return hashlib.scrypt(
        password, salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=_KEYNUM_SK_LEN
    )


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def parse_public_key(text: str | bytes) -> PublicKey:
    """Parse a .pub file's content, or just its base64 line (what ``minisign -P`` takes).

    Raises FormatError when the text is not a minisign Ed25519 public key.
    """
    raw_text = text.encode("utf-8", "replace") if isinstance(text, str) else text
    if len(raw_text) > _KEY_FILE_MAX:
        raise FormatError("public key text is too long", what="public key")
    stripped = raw_text.strip()
    try:
        count = stripped.count(b"\n") + 1
        if count not in (1, 2):
            raise ValueError("expected a base64 line, or a comment line and a base64 line")
        lines = _lines(stripped, count)
        if count == 2 and not lines[0].startswith(COMMENT_PREFIX.rstrip()):
            raise ValueError('first line does not start with "untrusted comment:"')
        raw = _unb64(lines[-1].strip(), _PUBKEY_LEN)
    except ValueError as e:
        raise FormatError(f"not a minisign public key: {e}", what="public key") from e
    if raw[:2] != SIGALG:
        raise FormatError("unsupported public key algorithm", what="public key")
    return PublicKey(raw[2 : 2 + _KEY_ID_LEN], raw[2 + _KEY_ID_LEN :])


def generate_keypair(
    password: bytes | None = None,
    comment: str = "stitch secret key",
    *,
    opslimit: int = OPSLIMIT_SENSITIVE,
    memlimit: int = MEMLIMIT_SENSITIVE,
) -> tuple[bytes, bytes]:
    """A new key pair: (secret key file content, public key file content), as ``minisign -G``.

    With a password the secret key is encrypted with scrypt at ``opslimit``/``memlimit``
    (minisign's defaults unless given; lower values exist for tests and small machines).
    ``comment`` is the secret key file's untrusted comment. Raises ValueError for a password or
    comment minisign could not read, or limits out of range.
    """
    comment_raw = _comment_bytes(comment, _COMMENT_LINE_MAX - len(COMMENT_PREFIX), "comment")
    private = Ed25519PrivateKey.generate()
    key_id = os.urandom(_KEY_ID_LEN)
    sk = private.private_bytes_raw() + private.public_key().public_bytes_raw()
    # minisign -G -W leaves the checksum zero; stitch always writes it so that a damaged key
    # file is caught. minisign reads both.
    keynum_sk = key_id + sk + _checksum(key_id, sk)
    if password is None:
        kdf, salt, opslimit, memlimit = KDF_NONE, bytes(_SALT_LEN), 0, 0
    else:
        # minisign reads a password as a C string from one line: what it can't type, we refuse.
        if not 0 < len(password) <= _PASSWORD_MAX or any(c in password for c in b"\0\r\n"):
            raise ValueError(f"password must be 1 to {_PASSWORD_MAX} bytes, no NUL, CR or LF")
        if opslimit < _OPSLIMIT_MIN or memlimit < _MEMLIMIT_MIN:
            raise ValueError("scrypt limits below libsodium's minimum")
        kdf, salt = KDF_SCRYPT, os.urandom(_SALT_LEN)
        keynum_sk = _xor(keynum_sk, _key_stream(password, salt, opslimit, memlimit))
    limits = opslimit.to_bytes(8, "little") + memlimit.to_bytes(8, "little")
    raw = SIGALG + kdf + CHKALG + salt + limits + keynum_sk
    secret_file = COMMENT_PREFIX + comment_raw + b"\n" + base64.b64encode(raw) + b"\n"
    return secret_file, PublicKey(key_id, sk[32:]).to_file()


def load_secret_key(data: bytes, password: bytes | None) -> SecretKey:
    """Unlock a minisign secret key file's content (made by ``minisign -G`` or stitch).

    ``password`` is ignored for a key stored without one. Raises FormatError when the file does
    not parse (or its scrypt cost is out of range) and SignatureError when the key is encrypted
    and the password is missing or wrong.
    """
    if len(data) > _KEY_FILE_MAX:
        raise FormatError("secret key file is too long", what="secret key")
    try:
        comment, line = _lines(data.strip(), 2)
        if not comment.startswith(COMMENT_PREFIX.rstrip()):
            raise ValueError('first line does not start with "untrusted comment:"')
        raw = _unb64(line, _SECKEY_LEN)
    except ValueError as e:
        raise FormatError(f"not a minisign secret key: {e}", what="secret key") from e
    sig_alg, kdf, chk_alg = raw[0:2], raw[2:4], raw[4:6]
    salt, limits, keynum_sk = raw[6:38], raw[38:54], raw[54:]
    if sig_alg != SIGALG or chk_alg != CHKALG or kdf not in (KDF_SCRYPT, KDF_NONE):
        raise FormatError("unsupported secret key algorithm", what="secret key")
    if kdf == KDF_SCRYPT:
        if password is None:
            raise SignatureError("the secret key is encrypted: a password is needed")
        opslimit = int.from_bytes(limits[:8], "little")
        memlimit = int.from_bytes(limits[8:], "little")
        try:
            stream = _key_stream(password, salt, opslimit, memlimit)
        except ValueError as e:
            raise FormatError(f"secret key: {e}", what="secret key") from e
        keynum_sk = _xor(keynum_sk, stream)
    key_id, sk, chk = keynum_sk[:8], keynum_sk[8:72], keynum_sk[72:]
    if chk != _checksum(key_id, sk):
        if kdf == KDF_SCRYPT:
            raise SignatureError("wrong password for this secret key")
        if chk != bytes(32):  # zero: written by minisign -G -W, which skips the checksum
            raise FormatError("secret key checksum mismatch: damaged file", what="secret key")
    private = Ed25519PrivateKey.from_private_bytes(sk[:32])
    # Also catches a damaged unencrypted key whose checksum minisign left zero.
    if private.public_key().public_bytes_raw() != sk[32:]:
        raise FormatError("secret key is inconsistent with its public half", what="secret key")
    return SecretKey(key_id, private)


def keygen(path: Path, password: bytes | None, force: bool = False) -> PublicKey:
    """Write a new key pair: ``path`` (secret, mode 0600) and ``path``.pub (the mode the
    umask gives, 0644 usually: it is published). Returns the public key.

    Raises FileExistsError if either file exists and ``force`` is false, ValueError for a
    password minisign could not read, and OSError for disk problems.
    """
    pub_path = path.with_name(path.name + ".pub")
    if not force:
        for p in (path, pub_path):
            if os.path.lexists(p):
                raise FileExistsError(errno.EEXIST, "refusing to overwrite a key file", str(p))
    secret_file, public_file = generate_keypair(password)
    atomic_write(path, secret_file, 0o600)
    atomic_write(pub_path, public_file)  # 0o644 under the usual umask
    return parse_public_key(public_file)


def sign(
    message: bytes,
    key: SecretKey,
    trusted_comment: str,
    prehash: bool = True,
    *,
    untrusted_comment: str = "signature from stitch secret key",
) -> bytes:
    """A .minisig file for ``message``, as ``minisign -S`` (``prehash=False``: ``-l``) writes it.

    Raises ValueError for a comment that is not one line or is longer than minisign allows.
    """
    trusted = _comment_bytes(trusted_comment, _TRUSTED_COMMENT_MAX, "trusted comment")
    untrusted = _comment_bytes(
        untrusted_comment, _COMMENT_LINE_MAX - len(COMMENT_PREFIX), "untrusted comment"
    )
    signature = key.private.sign(_prehash(message) if prehash else message)
    # The global signature binds the trusted comment to this signature.
    global_sig = key.private.sign(signature + trusted)
    alg = SIGALG_HASHED if prehash else SIGALG
    lines = [
        COMMENT_PREFIX + untrusted,
        base64.b64encode(alg + key.key_id + signature),
        TRUSTED_PREFIX + trusted,
        base64.b64encode(global_sig),
    ]
    return b"\n".join(lines) + b"\n"


@dataclass(frozen=True)
class _SigFile:
    prehashed: bool
    key_id: bytes
    signature: bytes
    trusted: bytes
    global_sig: bytes


def _parse_signature(data: bytes) -> _SigFile:
    if len(data) > _SIG_FILE_MAX:
        raise ValueError(f"{len(data)} bytes is too long for a signature file")
    comment, sig_line, trusted_line, global_line = _lines(data, 4)
    if not comment.startswith(COMMENT_PREFIX) or len(comment) > _COMMENT_LINE_MAX:
        raise ValueError('first line is not an "untrusted comment: " of at most 1022 bytes')
    raw = _unb64(sig_line, _SIGSTRUCT_LEN)
    if raw[:2] not in (SIGALG, SIGALG_HASHED):
        raise ValueError("unsupported signature algorithm")
    if not trusted_line.startswith(TRUSTED_PREFIX):
        raise ValueError('third line does not start with "trusted comment: "')
    trusted = trusted_line[len(TRUSTED_PREFIX) :]
    if len(trusted) > _TRUSTED_COMMENT_MAX:
        raise ValueError("trusted comment is too long")
    return _SigFile(
        prehashed=raw[:2] == SIGALG_HASHED,
        key_id=raw[2 : 2 + _KEY_ID_LEN],
        signature=raw[2 + _KEY_ID_LEN :],
        trusted=trusted,
        global_sig=_unb64(global_line, _SIG_LEN),
    )


def verify(
    message: bytes,
    signature_file: bytes,
    trusted_keys: Sequence[PublicKey],
    *,
    require_prehash: bool = False,
) -> Verified:
    """Check a .minisig file for ``message`` against the trusted keys; return what it vouches.

    Legacy (non-prehashed) signatures are accepted unless ``require_prehash`` (``minisign -H``).
    Raises SignatureError when the signature file does not parse, its key id is not one of
    ``trusted_keys``, the signature does not match the message, or the trusted comment was
    altered (its global signature does not match).
    """
    try:
        sig = _parse_signature(signature_file)
        trusted_comment = sig.trusted.decode("utf-8")
    except ValueError as e:  # UnicodeDecodeError is a ValueError
        raise SignatureError(f"malformed signature file: {e}") from e
    if require_prehash and not sig.prehashed:
        raise SignatureError("legacy (non-prehashed) signature refused")
    key = next((k for k in trusted_keys if k.key_id == sig.key_id), None)
    if key is None:
        known = ", ".join(k.key_id_hex for k in trusted_keys) or "none"
        raise SignatureError(f"key id {_hex_id(sig.key_id)} is not a trusted key ({known})")
    try:
        public = Ed25519PublicKey.from_public_bytes(key.key)
        public.verify(sig.signature, _prehash(message) if sig.prehashed else message)
    except (InvalidSignature, ValueError) as e:
        raise SignatureError(
            "signature verification failed: data differs from what was signed"
        ) from e
    try:
        public.verify(sig.global_sig, sig.signature + sig.trusted)
    except InvalidSignature as e:
        raise SignatureError("trusted comment signature verification failed (altered)") from e
    return Verified(sig.key_id, trusted_comment, sig.prehashed)
