"""ANT's type and decoded-field layouts and the decoder shared by ``ant_decode`` and ``ant_mac``.

The decoder (Guo et al., "ANT: Exploiting Adaptive Numerical Data Type for Low-bit Deep Neural Network
Quantization", MICRO 2022, the processing element's decoder) turns a 4-bit code of a given type into ``sign``, ``mantissa`` and
``shift``, ``value = (-1)^sign * mantissa << shift``; the rule per type is
:func:`qarith.golden.common.ant.decode_fields`. Here every case is a handful of gates on the code bits:
the flint cases are a priority chain on the leading ones.
"""

from amaranth.hdl import Const, Mux, Signal, unsigned
from amaranth.lib import data

from ...golden.common.ant import BITS, KINDS, MANTISSA_WIDTH, SHIFT_WIDTH

__all__ = ["TYPE_LAYOUT", "DECODED_LAYOUT", "decode_code"]

#: A type: ``kind`` indexes :data:`~qarith.golden.common.ant.KINDS` (0 int, 1 PoT, 2 flint; 3 reserved,
#: decoded as flint), ``signed`` selects the signed variant.
TYPE_LAYOUT = data.StructLayout({"kind": unsigned(2), "signed": 1})
#: One decoded code.
DECODED_LAYOUT = data.StructLayout({"mantissa": unsigned(MANTISSA_WIDTH), "shift": unsigned(SHIFT_WIDTH),
                                    "sign": 1})

_INT, _POT, _FLINT = (KINDS.index(name) for name in ("int", "pot", "flint"))


def decode_code(m, kind, is_signed, code, name):
    """Combinational decoder of ``code`` (``BITS`` wide) of kind ``kind`` (a 2-bit value) and
    signedness ``is_signed`` (a 1-bit value, or a Python bool when the signedness is fixed); returns a
    :data:`DECODED_LAYOUT` signal named ``name``."""
    out = Signal(DECODED_LAYOUT, name=name)
    is_signed = Const(int(is_signed), 1) if isinstance(is_signed, bool) else is_signed
    top = code[BITS - 1]
    body = Mux(is_signed, code[:BITS - 1], code)      # the magnitude bits
    sign = is_signed & top
    m.d.comb += out.sign.eq(sign)
    with m.Switch(kind):
        with m.Case(_INT):
            # Two's complement magnitude: 16 - code for a negative code (8 for -8).
            m.d.comb += out.mantissa.eq(Mux(sign, (-code)[:BITS], code))
        with m.Case(_POT):
            m.d.comb += [out.mantissa.eq(body != 0), out.shift.eq(Mux(body != 0, body - 1, 0))]
        with m.Default():
            with m.If(~is_signed):
                # 0abc: abc; 10mm: (4 + mm) << 1; 110m: (2 + m) << 3; 1110: 1 << 5; 1111: 1 << 6.
                with m.If(~code[3]):
                    m.d.comb += out.mantissa.eq(code[:3])
                with m.Elif(~code[2]):
                    m.d.comb += [out.mantissa.eq(4 | code[:2]), out.shift.eq(1)]
                with m.Elif(~code[1]):
                    m.d.comb += [out.mantissa.eq(2 | code[0]), out.shift.eq(3)]
                with m.Elif(~code[0]):
                    m.d.comb += [out.mantissa.eq(1), out.shift.eq(5)]
                with m.Else():
                    m.d.comb += [out.mantissa.eq(1), out.shift.eq(6)]
            with m.Else():
                # Magnitude 0ab: ab; 10m: (2 + m) << 1; 110: 1 << 3; 111: 1 << 4.
                with m.If(~code[2]):
                    m.d.comb += out.mantissa.eq(code[:2])
                with m.Elif(~code[1]):
                    m.d.comb += [out.mantissa.eq(2 | code[0]), out.shift.eq(1)]
                with m.Elif(~code[0]):
                    m.d.comb += [out.mantissa.eq(1), out.shift.eq(3)]
                with m.Else():
                    m.d.comb += [out.mantissa.eq(1), out.shift.eq(4)]
    return out
