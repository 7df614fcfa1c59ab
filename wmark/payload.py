"""Payload coding: bytes/text/hex <-> an L-bit codeword, and soft decoding of model logits.

Layout of the L raw bits, before scrambling:

    [ n Reed-Solomon symbols of m bits ][ L - n*m key-derived pad bits ]

The RS code is systematic over GF(2^m): k data symbols, then nsym parity symbols. The
data symbols hold the user bits (the message, zero-padded to the capacity, and a few
spare zero bits) followed by a CRC over them. The whole codeword is then permuted and
XOR-ed with a mask, both derived from sha256 of the key.
"""

import functools
import hashlib
import math
import threading
from dataclasses import dataclass
from fractions import Fraction

import reedsolo
import torch

from wmark.errors import WmarkError

DEFAULT_KEY = "wmark-default-key"
"""Scrambling key used when none is given, so that an all-zero message is not all-zero bits."""

_CRC_POLYS = {16: 0x1021, 8: 0x07}
_RS_LOCK = threading.RLock()  # reedsolo keeps its Galois tables in module globals


@dataclass(frozen=True)
class DecodeResult:
    """Outcome of decoding one codeword.

    data has trailing zero bytes stripped; text is set when data is printable UTF-8.
    p_value bounds the chance that an unmarked image is accepted this easily (1.0 if invalid).
    bits is the raw hard decision (logits > 0) as a 0/1 string, before descrambling and ECC.
    """

    valid: bool
    data: bytes | None
    text: str | None
    hex: str | None
    corrected_symbols: int
    erasures: int
    p_value: float
    bits: str


def parse_bits(text: str, n: int) -> torch.Tensor:
    """Parse a string of exactly n '0'/'1' characters into a uint8 tensor (n,)."""
    text = text.strip()
    bad = next((c for c in text if c not in "01"), None)
    if bad is not None:
        raise WmarkError(f"bit string may contain only 0 and 1, found {bad!r}")
    if len(text) != n:
        raise WmarkError(f"bit string must have exactly {n} bits, got {len(text)}")
    return torch.tensor([int(c) for c in text], dtype=torch.uint8)


def _crc(bits: list[int], width: int) -> list[int]:
    """Bitwise MSB-first CRC, init all ones: CRC-16/CCITT (0x1021) or CRC-8 (0x07)."""
    poly, top, mask = _CRC_POLYS[width], 1 << (width - 1), (1 << width) - 1
    reg = mask
    for bit in bits:
        feedback = bool(reg & top) ^ bit
        reg = (reg << 1) & mask
        if feedback:
            reg ^= poly
    return _int_to_bits(reg, width)


def _int_to_bits(value: int, width: int) -> list[int]:
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def _bits_to_int(bits) -> int:
    return int("".join(map(str, bits)), 2)


def _to_symbols(bits: list[int], m: int) -> list[int]:
    return [_bits_to_int(bits[i : i + m]) for i in range(0, len(bits), m)]


def _from_symbols(symbols, m: int) -> list[int]:
    return [b for s in symbols for b in _int_to_bits(s, m)]


def _key_stream(key: str, label: str, count: int) -> list[int]:
    """count 64-bit integers from sha256 of the key, in counter mode."""
    seed = hashlib.sha256(key.encode()).digest()
    words = []
    for block in range(-(-count // 4)):
        digest = hashlib.sha256(seed + label.encode() + block.to_bytes(8, "big")).digest()
        words += [int.from_bytes(digest[i : i + 8], "big") for i in range(0, 32, 8)]
    return words[:count]


def _key_permutation(key: str, n: int) -> list[int]:
    """Fisher-Yates shuffle of range(n) driven by the key stream."""
    perm = list(range(n))
    for i, r in zip(range(n - 1, 0, -1), _key_stream(key, "perm", n)):
        j = r % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def _key_bits(key: str, label: str, n: int) -> list[int]:
    return [r & 1 for r in _key_stream(key, label, n)]


@functools.lru_cache(maxsize=None)
def _codec(n: int, nsym: int, m: int) -> reedsolo.RSCodec:
    with _RS_LOCK:
        return reedsolo.RSCodec(nsym, nsize=n, c_exp=m)


def _rs(code: "PayloadCode", method: str, *args, **kwargs):
    """Call an RSCodec method after re-initialising reedsolo's global tables for its field."""
    codec = _codec(code.n_symbols, code.parity_symbols, code.symbol_bits)
    with _RS_LOCK:
        reedsolo.init_tables(codec.prim, codec.generator, codec.c_exp)
        return getattr(codec, method)(*args, **kwargs)


class PayloadCode:
    """Reed-Solomon + CRC + key scrambling for a model with n_bits raw message bits."""

    def __init__(self, n_bits: int, key: str | None = None, *, symbol_bits: int | None = None,
                 parity_symbols: int | None = None, crc_bits: int | None = None):
        """The layout is derived from ``n_bits`` unless given (a model card's ``payload`` block, :meth:`from_layout`)."""
        if n_bits < 1:
            raise WmarkError(f"a payload needs at least 1 bit, got {n_bits}")
        self.n_bits = n_bits
        self.key = DEFAULT_KEY if key is None else key
        m = 3
        while n_bits // m > 2**m - 1:
            m += 1
        self.symbol_bits = m if symbol_bits is None else symbol_bits
        self.n_symbols = n_bits // self.symbol_bits
        derived_parity = max(2, 2 * math.floor(0.4 * self.n_symbols / 2 + 0.5))
        self.parity_symbols = derived_parity if parity_symbols is None else parity_symbols
        self._k = self.n_symbols - self.parity_symbols
        derived_crc = 16 if self._k * self.symbol_bits - 16 >= 16 else 8
        self.crc_bits = derived_crc if crc_bits is None else crc_bits
        self.data_bits = max(0, self._k * self.symbol_bits - self.crc_bits)
        self.capacity_bytes = self.data_bits // 8

    @classmethod
    def from_layout(cls, layout: dict, key: str | None = None) -> "PayloadCode":
        """The code a model card's ``payload`` block describes (:meth:`describe`); a block whose derived fields
        disagree with its own layout is a WmarkError."""
        try:
            code = cls(int(layout["n_bits"]), key, symbol_bits=int(layout["symbol_bits"]),
                       parity_symbols=int(layout["parity_symbols"]), crc_bits=int(layout["crc_bits"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise WmarkError(f"a payload block needs n_bits, symbol_bits, parity_symbols and crc_bits: {exc!r}") from None
        if any(layout.get(name, value) != value for name, value in code.describe().items()):
            raise WmarkError(f"the payload block {layout} disagrees with its code {code.describe()}")
        return code

    def keyed(self, key: str | None) -> "PayloadCode":
        """The same layout under ``key``."""
        return PayloadCode(self.n_bits, key, symbol_bits=self.symbol_bits, parity_symbols=self.parity_symbols,
                           crc_bits=self.crc_bits)

    def describe(self) -> dict:
        """The code's parameters, for model cards and JSON output."""
        names = (
            "n_bits", "symbol_bits", "n_symbols", "parity_symbols", "crc_bits", "data_bits", "capacity_bytes"
        )
        return {name: getattr(self, name) for name in names}

    # -- key material (computed on first use) --

    @functools.cached_property
    def _perm(self) -> torch.Tensor:
        return torch.tensor(_key_permutation(self.key, self.n_bits), dtype=torch.long)

    @functools.cached_property
    def _mask(self) -> torch.Tensor:
        return torch.tensor(_key_bits(self.key, "mask", self.n_bits), dtype=torch.uint8)

    @functools.cached_property
    def _pad(self) -> list[int]:
        return _key_bits(self.key, "pad", self.n_bits - self.n_symbols * self.symbol_bits)

    def _check_capacity(self, size: int, what: str = "payload") -> None:
        if self.capacity_bytes == 0:
            raise WmarkError(f"a {self.n_bits}-bit model has no room for a payload (capacity 0 bytes)")
        if size > self.capacity_bytes:
            raise WmarkError(
                f"{what} is {size} bytes but a {self.n_bits}-bit model holds at most "
                f"{self.capacity_bytes} bytes"
            )

    # -- encoding --

    def encode(self, data: bytes) -> torch.Tensor:
        """Codeword bits (uint8, shape (n_bits,)) for data, zero-padded to the capacity."""
        self._check_capacity(len(data))
        user = _from_symbols(data, 8) + [0] * (self.data_bits - 8 * len(data))
        symbols = _to_symbols(user + _crc(user, self.crc_bits), self.symbol_bits)
        coded = _rs(self, "encode", symbols)
        bits = torch.tensor(_from_symbols(coded, self.symbol_bits) + self._pad, dtype=torch.uint8)
        return bits[self._perm] ^ self._mask

    def encode_text(self, text: str) -> torch.Tensor:
        """Codeword for a UTF-8 text message."""
        data = text.encode("utf-8")
        if len(data) != len(text):
            self._check_capacity(len(data), f"the {len(text)}-character message, in UTF-8,")
        else:
            self._check_capacity(len(data), "the message")
        return self.encode(data)

    def encode_hex(self, text: str) -> torch.Tensor:
        """Codeword for a hex message (an optional 0x prefix and spaces are allowed)."""
        digits = text.strip().removeprefix("0x").removeprefix("0X")
        try:
            data = bytes.fromhex(digits)
        except ValueError:
            raise WmarkError(f"invalid hex message {text!r}: use pairs of digits 0-9a-f") from None
        return self.encode(data)

    # -- decoding --

    def _descramble(self, logits: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(logits)
        out[self._perm] = logits * (1 - 2 * self._mask.to(logits.dtype))
        return out

    def _erasure_schedule(self) -> list[int]:
        return [0] + list(range(2, self.parity_symbols - 1, 2))

    def p_value_bound(self, budget: int) -> float:
        """Chance that iid uniform bits are accepted with effort 2*errors + erasures <= budget.

        Union bound over the decoding attempts. With e symbols erased, the other n - e
        symbols of a random word are uniform over q^(n-e) words (q = 2^m), and the code
        punctured there is MDS with q^k codewords, so the chance of landing within i
        errors of a codeword is sum_i C(n-e, i) (q-1)^i / q^(nsym-e). A random decode
        then passes the CRC with chance 2^-crc_bits. Summed over the attempted e <= budget
        and capped at 1.
        """
        n, nsym, q = self.n_symbols, self.parity_symbols, 2**self.symbol_bits
        total = Fraction(0)
        for e in (e for e in self._erasure_schedule() if e <= budget):
            balls = sum(math.comb(n - e, i) * (q - 1) ** i for i in range((budget - e) // 2 + 1))
            total += Fraction(balls, q ** (nsym - e))
        return min(1.0, float(total / 2**self.crc_bits))

    def _try_decode(self, symbols: list[int], erase: list[int]):
        """(corrected codeword symbols, errors found), or None when RS decoding or the CRC fails."""
        try:
            _, full, errata = _rs(self, "decode", symbols, erase_pos=erase)
        except reedsolo.ReedSolomonError:
            return None
        bits = _from_symbols(full[: self._k], self.symbol_bits)
        user, crc = bits[: self.data_bits], bits[self.data_bits :]
        if _crc(user, self.crc_bits) != crc:
            return None
        return list(full), len(set(errata) - set(erase))

    def decode(self, logits) -> DecodeResult:
        """Soft-decode model logits (n_bits,), positive meaning 1.

        Tries plain RS decoding, then erases the 2, 4, ... nsym-2 least confident symbols
        (confidence = min |logit| over a symbol's bits), and keeps the first attempt that
        decodes and passes the CRC.
        """
        self._check_capacity(0)
        logits = torch.as_tensor(logits).detach().cpu().double().reshape(-1)
        if logits.numel() != self.n_bits:
            raise WmarkError(f"expected {self.n_bits} logits, got {logits.numel()}")
        raw = "".join("1" if v > 0 else "0" for v in logits.tolist())
        m, used = self.symbol_bits, self.n_symbols * self.symbol_bits
        soft = self._descramble(logits)[:used]
        symbols = _to_symbols((soft > 0).int().tolist(), m)
        confidence = soft.abs().reshape(self.n_symbols, m).amin(1).tolist()
        order = sorted(range(self.n_symbols), key=lambda j: (confidence[j], j))
        for e in self._erasure_schedule():
            found = self._try_decode(symbols, order[:e])
            if found is not None:
                return self._result(symbols, *found, e, raw)
        return DecodeResult(False, None, None, None, 0, 0, 1.0, raw)

    def _result(self, received, full, errors, erasures, raw) -> DecodeResult:
        bits = _from_symbols(full[: self._k], self.symbol_bits)[: 8 * self.capacity_bytes]
        data = bytes(_to_symbols(bits, 8)).rstrip(b"\0")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return DecodeResult(
            valid=True,
            data=data,
            text=text if text is not None and text.isprintable() else None,
            hex=data.hex(),
            corrected_symbols=sum(a != b for a, b in zip(received, full)),
            erasures=erasures,
            p_value=self.p_value_bound(2 * errors + erasures),
            bits=raw,
        )
