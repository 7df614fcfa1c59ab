import pytest
import torch

from wmark.errors import WmarkError
from wmark.payload import DecodeResult, PayloadCode, _crc, parse_bits

LENGTHS = [30, 48, 64, 96, 100, 128, 256]
KEY = "test-key"

# n_bits: (symbol_bits, n_symbols, parity_symbols, crc_bits, data_bits, capacity_bytes)
TABLE = {
    30: (4, 7, 2, 8, 12, 1),
    48: (4, 12, 4, 16, 16, 2),
    64: (5, 12, 4, 16, 24, 3),
    96: (5, 19, 8, 16, 39, 4),
    100: (5, 20, 8, 16, 44, 5),
    128: (5, 25, 10, 16, 59, 7),
    256: (6, 42, 16, 16, 140, 17),
}


def _message(code: PayloadCode, gen: torch.Generator) -> bytes:
    """Random bytes filling the capacity, with a non-zero last byte (trailing zeros are stripped)."""
    data = torch.randint(0, 256, (code.capacity_bytes,), generator=gen).tolist()
    data[-1] = data[-1] or 1
    return bytes(data)


def _logits(bits: torch.Tensor, scale: float = 4.0) -> torch.Tensor:
    return (bits.double() * 2 - 1) * scale


def _distinct_symbol_positions(code: PayloadCode, count: int, gen: torch.Generator) -> list[int]:
    """Scrambled bit positions hitting `count` distinct RS symbols, one bit each."""
    symbol_of = {}
    for pos in torch.randperm(code.n_bits, generator=gen).tolist():
        cw = int(code._perm[pos])
        if cw < code.n_symbols * code.symbol_bits:
            symbol_of.setdefault(cw // code.symbol_bits, pos)
    chosen = list(symbol_of.values())[:count]
    assert len(chosen) == count
    return chosen


@pytest.fixture(params=LENGTHS)
def code(request) -> PayloadCode:
    return PayloadCode(request.param, key=KEY)


def test_capacity_table(code):
    d = code.describe()
    keys = ("symbol_bits", "n_symbols", "parity_symbols", "crc_bits", "data_bits", "capacity_bytes")
    got = tuple(d[k] for k in keys)
    assert got == TABLE[code.n_bits]
    assert d["n_bits"] == code.n_bits
    assert code.n_symbols <= 2**code.symbol_bits - 1


def test_round_trip_bytes(code):
    gen = torch.Generator().manual_seed(code.n_bits)
    for _ in range(3):
        msg = _message(code, gen)
        bits = code.encode(msg)
        assert bits.dtype == torch.uint8 and bits.shape == (code.n_bits,)
        res = code.decode(_logits(bits))
        assert isinstance(res, DecodeResult)
        assert res.valid and res.data == msg and res.hex == msg.hex()
        assert res.corrected_symbols == 0 and res.erasures == 0
        assert res.p_value == code.p_value_bound(0) < 1e-4
        assert res.bits == "".join(map(str, bits.tolist()))


def test_round_trip_text_and_hex(code):
    text = ("wmark-é" * 3).encode()[: code.capacity_bytes].decode("utf-8", "ignore")
    res = code.decode(_logits(code.encode_text(text)))
    assert res.valid and res.text == text
    hexmsg = "0x" + "a5" * code.capacity_bytes
    res = code.decode(_logits(code.encode_hex(hexmsg)))
    assert res.valid and res.hex == "a5" * code.capacity_bytes and res.text is None


def test_short_and_empty_messages(code):
    res = code.decode(_logits(code.encode(b"")))
    assert res.valid and res.data == b"" and res.text == ""
    res = code.decode(_logits(code.encode(b"\x01")))
    assert res.valid and res.data == b"\x01" and res.text is None


def test_too_long_states_capacity(code):
    with pytest.raises(WmarkError, match=rf"at most {code.capacity_bytes} bytes"):
        code.encode(b"x" * (code.capacity_bytes + 1))
    with pytest.raises(WmarkError, match=rf"{code.capacity_bytes} bytes"):
        code.encode_text("é" * code.capacity_bytes)


def test_bad_hex():
    code = PayloadCode(64)
    for bad in ["zz", "abc", "0xg1"]:
        with pytest.raises(WmarkError, match="invalid hex"):
            code.encode_hex(bad)


def test_no_capacity():
    code = PayloadCode(20)
    assert code.capacity_bytes == 0
    with pytest.raises(WmarkError, match="capacity 0 bytes"):
        code.encode(b"")
    with pytest.raises(WmarkError, match="capacity 0 bytes"):
        code.decode(torch.zeros(20))


def test_wrong_logit_count():
    with pytest.raises(WmarkError, match="expected 64 logits"):
        PayloadCode(64).decode(torch.zeros(63))


def test_corrects_symbol_errors(code):
    gen = torch.Generator().manual_seed(1000 + code.n_bits)
    t = code.parity_symbols // 2
    for _ in range(5):
        msg = _message(code, gen)
        logits = _logits(code.encode(msg))
        flip = _distinct_symbol_positions(code, t, gen)
        logits[flip] *= -1
        res = code.decode(logits)
        assert res.valid and res.data == msg
        assert res.corrected_symbols == t and res.erasures == 0


def test_any_few_bit_flips_are_corrected(code):
    """Any nsym/2 flipped bits touch at most nsym/2 symbols, wherever they land."""
    gen = torch.Generator().manual_seed(2000 + code.n_bits)
    msg = _message(code, gen)
    bits = code.encode(msg)
    for _ in range(5):
        logits = _logits(bits)
        flip = torch.randperm(code.n_bits, generator=gen)[: code.parity_symbols // 2]
        logits[flip] *= -1
        res = code.decode(logits)
        assert res.valid and res.data == msg


def test_corrects_erasures(code):
    gen = torch.Generator().manual_seed(3000 + code.n_bits)
    s = code.parity_symbols - 2
    for _ in range(5):
        msg = _message(code, gen)
        logits = _logits(code.encode(msg), scale=5.0)
        logits += torch.rand(code.n_bits, generator=gen, dtype=torch.double) * logits.sign()
        flip = _distinct_symbol_positions(code, s, gen)
        logits[flip] = -0.1 * logits[flip].sign()
        res = code.decode(logits)
        assert res.valid and res.data == msg
        assert res.corrected_symbols == s
        assert res.erasures >= 2 * s - code.parity_symbols  # 2 * errors + erasures <= nsym


def test_beyond_limit_never_crashes(code):
    gen = torch.Generator().manual_seed(4000 + code.n_bits)
    for extra in range(1, 4):
        count = min(code.n_symbols, code.parity_symbols + extra)
        msg = _message(code, gen)
        logits = _logits(code.encode(msg))
        flip = _distinct_symbol_positions(code, count, gen)
        logits[flip] *= -1
        res = code.decode(logits)
        assert not res.valid or res.data != msg
        if not res.valid:
            assert res.p_value == 1.0 and res.data is None


def test_random_logits_rarely_accepted(code):
    gen = torch.Generator().manual_seed(5000 + code.n_bits)
    draws = 300
    accepted = 0
    for _ in range(draws):
        res = code.decode(torch.randn(code.n_bits, generator=gen))
        accepted += res.valid
        if not res.valid:
            assert res.p_value == 1.0
    bound = code.p_value_bound(code.parity_symbols)
    expected = draws * bound
    assert accepted <= expected + 4 * expected**0.5 + 2


def test_false_accept_rate_matches_bound_for_weak_code():
    """L=30 (CRC-8, 2 parity symbols) has a bound large enough to observe false accepts."""
    code = PayloadCode(30, key=KEY)
    gen = torch.Generator().manual_seed(7)
    draws = 3000
    accepted = sum(code.decode(torch.randn(30, generator=gen)).valid for _ in range(draws))
    expected = draws * code.p_value_bound(code.parity_symbols)
    assert accepted <= expected + 4 * expected**0.5 + 2


def test_wrong_key_fails(code):
    other = PayloadCode(code.n_bits, key="another-key")
    gen = torch.Generator().manual_seed(6000 + code.n_bits)
    for _ in range(3):
        msg = _message(code, gen)
        logits = _logits(code.encode(msg))
        assert not other.decode(logits).valid
        assert code.decode(logits).valid


def test_default_key_scrambles_zero_message():
    code = PayloadCode(64)
    bits = code.encode(b"")
    assert 0 < int(bits.sum()) < 64
    assert not torch.equal(bits, PayloadCode(64, key="x").encode(b""))
    assert torch.equal(bits, PayloadCode(64, key=None).encode(b""))


def test_p_value_monotonic_in_corrections():
    code = PayloadCode(128, key=KEY)
    bounds = [code.p_value_bound(b) for b in range(code.parity_symbols + 1)]
    assert all(x <= y for x, y in zip(bounds, bounds[1:]))
    gen = torch.Generator().manual_seed(8)
    msg = _message(code, gen)
    clean = _logits(code.encode(msg))
    flips = _distinct_symbol_positions(code, code.parity_symbols // 2, gen)
    p_values = []
    for t in range(len(flips) + 1):
        logits = clean.clone()
        logits[flips[:t]] *= -1
        res = code.decode(logits)
        assert res.valid and res.data == msg and res.corrected_symbols == t
        p_values.append(res.p_value)
    assert all(x < y for x, y in zip(p_values, p_values[1:]))
    assert p_values[0] < 1e-15 and p_values[-1] < 1e-4


def test_symbol_sizes_coexist():
    """reedsolo keeps global Galois tables; codes over GF(2^4), GF(2^5), GF(2^6) must interleave."""
    codes = [PayloadCode(48, KEY), PayloadCode(128, KEY), PayloadCode(256, KEY), PayloadCode(30, KEY)]
    assert len({c.symbol_bits for c in codes}) == 3
    gen = torch.Generator().manual_seed(9)
    messages = [_message(c, gen) for c in codes]
    encoded = [c.encode(m) for c, m in zip(codes, messages)]
    for _ in range(2):
        for c, m, bits in zip(codes, messages, encoded):
            logits = _logits(bits)
            logits[_distinct_symbol_positions(c, c.parity_symbols // 2, gen)] *= -1
            res = c.decode(logits)
            assert res.valid and res.data == m
            assert torch.equal(c.encode(m), bits)


def test_crc16_check_value():
    bits = [(byte >> (7 - i)) & 1 for byte in b"123456789" for i in range(8)]
    assert int("".join(map(str, _crc(bits, 16))), 2) == 0x29B1


def test_parse_bits():
    assert parse_bits(" 0110 ", 4).tolist() == [0, 1, 1, 0]
    assert parse_bits("0110", 4).dtype == torch.uint8
    with pytest.raises(WmarkError, match="exactly 4 bits"):
        parse_bits("011", 4)
    with pytest.raises(WmarkError, match="only 0 and 1"):
        parse_bits("01x0", 4)


def test_describe_is_json_ready():
    import json

    d = PayloadCode(96).describe()
    assert json.loads(json.dumps(d)) == d
    assert d == {"n_bits": 96, "symbol_bits": 5, "n_symbols": 19, "parity_symbols": 8,
                 "crc_bits": 16, "data_bits": 39, "capacity_bytes": 4}
