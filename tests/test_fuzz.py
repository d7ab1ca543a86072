"""Config fuzzing: every block's config dataclass either refuses a value with a worded error, or the
config it accepts elaborates and its golden model runs.

Each example starts from one of the block's registered configs and replaces one to three fields with
values drawn from the field's annotation: for integers zero, negatives, powers of two and their
neighbours, huge values and the wrong kinds (floats, bools, strings, ``None``); for floats zero, signed
zero, negatives, NaN, infinities, subnormals and huge values; for strings every name the golden module
defines or a registered config uses, and unknown names; for tuples a changed, dropped or added element,
the empty tuple, a list, elements of the wrong kind or value. The contract:

* construction raises ``ValueError`` or ``TypeError`` from one of qarith's own ``raise`` statements (a
  worded message, not an operator's or a library's error), or
* the config survives its canonical text form, its generator elaborates (``Fragment.get``: every line of
  the generator's ``elaborate`` runs, with the config's tables and widths) and the golden model runs on
  the block's bench stimuli (``bench.vectors``, which computes every expected output with it). The
  lowering to RTLIL and Verilog is not repeated here: it costs 10 to 40 times the elaboration (seconds per
  config) and ``tests/test_verilog.py`` runs it on every registered config.

Accepted configs whose hardware is large (:data:`SIZE_LIMITS`: lanes, row lengths, tables) are not
elaborated (``hypothesis.assume``): their construction is still checked. Examples per block:
``QARITH_FUZZ_EXAMPLES`` (default :data:`DEFAULT_EXAMPLES`; ``make test-full`` sets 200). The runs are
derandomized: the same examples every time, no database.
"""

import dataclasses
import math
import os
import sys
import traceback
import types
from pathlib import Path

import pytest
import torch
from amaranth.hdl import Fragment
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

from qarith.golden.common.config import from_text, to_text
from qarith.registry import BLOCKS

DEFAULT_EXAMPLES = 40
EXAMPLES = int(os.environ.get("QARITH_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))

#: qarith's own source folders: a refusal must be raised from a ``raise`` statement in one of them.
SOURCE_ROOT = Path(__file__).resolve().parent.parent
SOURCE_FOLDERS = tuple(SOURCE_ROOT / folder for folder in ("golden", "hdl", "sim", "fpga", "qarith"))

#: Largest accepted configs that are elaborated and run, per block: a field's value above its limit
#: skips the example after construction. Beyond these sizes the hardware is the same structure, more
#: of it, and its elaboration costs seconds.
SIZE_LIMITS = {
    "mac_array": {"rows": 8, "cols": 8, "max_k": 1024},
    "requant": {"lanes": 8},
    "linear_int8": {"rows": 4, "cols": 8, "max_k": 1024},
    "softmax_lut": {"n": 256},
    "shiftmax": {"n": 256},
    "ilayernorm": {"channels": 192},
    "log_softmax_int": {"n": 256},
    "attn_v": {"n": 256},
    "lns_mul": {"lanes": 16, "width": 12},
    "lns_to_int": {"lanes": 8, "width": 12},
    "lns_dot": {"lanes": 8},
    "lns_add": {"lanes": 4, "width": 12},
    "wino_conv": {"in_channels": 8, "out_channels": 4},
    "encoder_layer": {"d_model": 8, "d_ff": 16, "max_seq": 8, "rows": 8, "cols": 8, "seed": 0},
    "pwl": {"in_width": 12},
    "lut_unary": {},
    "shiftgelu": {},
    "wino_input": {},
    "wino_output": {},
    "lut_gemv": {"lanes": 4, "max_k": 256},
    "octav_stats": {"max_n": 4096},
    "early_exit": {"logit_width": 12},
    "dfp_quant": {},
    "ant_decode": {"lanes": 16},
    "ant_mac": {"rows": 8, "cols": 8, "max_k": 1024},
    "xnor_popcount": {"k": 256, "channels": 8},
    "int8_outlier_linear": {"rows": 8, "cols": 8, "max_k": 256},
}

SPECIAL_INTS = (0, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 24, 25, 30, 31, 32, 33, 48, 49, 62, 63, 64,
                65, 127, 128, 255, 256, 1023, 1024, 4096, 4097, 65536, 65537, (1 << 31) - 1, 1 << 31,
                -(1 << 31), 1 << 63, 10 ** 30, -(10 ** 30))
SPECIAL_FLOATS = (0.0, -0.0, -1.0, 1.0, 0.5, 2.0, 1 / 16, 1 / 64, 1 / 1024, 1e-6, 1e-12, 1e-300, 5e-324, 100.0,
                  1e6, 1e300, math.nan, math.inf, -math.inf)
WRONG_KINDS = (None, True, "8", 1.5, (1,), b"x")


# Special values are drawn more often than the uniform ranges (``one_of`` picks its branches evenly).
def _ints(current):
    near = st.integers(current - 4, current + 4) if isinstance(current, int) else st.nothing()
    special = st.sampled_from(SPECIAL_INTS)
    return st.one_of(special, special, near, st.integers(-80, 300))


def _floats(current):
    scaled = st.floats(1 / 64, 64).map(lambda factor: current * factor) \
        if isinstance(current, float) and math.isfinite(current) else st.nothing()
    special = st.sampled_from(SPECIAL_FLOATS)
    return st.one_of(special, special, scaled, st.floats(allow_nan=True, allow_infinity=True),
                     st.integers(-2, 3))


def _names(block):
    """Every string a registered config of ``block`` holds, every string constant of its golden
    module (the names it accepts), and names it cannot accept."""
    module = sys.modules[block.config.__module__]
    names = {"", "bogus", "GELU", " gelu"}
    for key, value in vars(module).items():
        if key.startswith("_"):                        # __doc__, __file__, ...
            continue
        if isinstance(value, str):
            names.add(value)
        elif isinstance(value, (tuple, list, dict, set, frozenset)):
            names.update(item for item in value if isinstance(item, str))
    for cfg in block.configs.values():
        names.update(value for value in dataclasses.astuple(cfg) if isinstance(value, str))
    return sorted(names)


def _element(example):
    """Values for one element of a tuple whose registered elements look like ``example``."""
    if isinstance(example, float):
        return _floats(example)
    if isinstance(example, int):
        return _ints(example)
    return st.one_of(_ints(0), _floats(1.0))


def _tuples(current, length):
    """Tuples near ``current`` (or, when it is ``None``, of ``length`` elements) and hostile ones."""
    if current is None:
        return st.one_of(
            st.lists(st.one_of(_ints(1), _floats(1.0)), min_size=length, max_size=length).map(tuple),
            st.lists(st.one_of(_ints(1), _floats(1.0)), max_size=length + 2).map(tuple),
            st.sampled_from((1, 1.0, 0, 0.0, -1.0, math.nan)).map(lambda value: (value,) * length))
    current = tuple(current)
    element = _element(current[0]) if current else _ints(0)
    replaced = st.tuples(st.integers(0, max(len(current) - 1, 0)), st.one_of(element, st.sampled_from(WRONG_KINDS)))
    return st.one_of(
        replaced.map(lambda change: current[:change[0]] + (change[1],) + current[change[0] + 1:]),
        st.sampled_from((current[:-1], current + current[-1:], (), list(current), current * 2)),
        st.sampled_from((tuple(float(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in current),
                         tuple(-v if isinstance(v, (int, float)) else v for v in current))),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda v: (v,) * len(current)))


def _callables():
    return st.sampled_from([
        torch.exp, torch.sin, lambda x: x * math.nan, lambda x: torch.ones(3, dtype=torch.float64),
        lambda x: x.to(torch.int64), lambda x: 1.0])


def _annotation_kinds(annotation):
    if isinstance(annotation, types.UnionType):
        return set(annotation.__args__)
    return {annotation}


def _field_values(block, field, current, length):
    """A strategy for hostile values of ``field`` (a dataclass field of ``block``'s config)."""
    kinds = _annotation_kinds(field.type)
    options = [st.sampled_from(WRONG_KINDS)]
    if type(None) in kinds:
        options.append(st.none())
    if bool in kinds:
        options.append(st.booleans())
        options.append(st.sampled_from((0, 1, "true", 1.0)))
    if int in kinds:
        options.append(_ints(current))
    if float in kinds:
        options.append(_floats(current))
    if str in kinds:
        options.append(st.sampled_from(_names(block)))
        options.append(st.text(max_size=6))
    if tuple in kinds:
        options.append(_tuples(current, length))
    if object in kinds:                                # a name or a callable
        options.append(st.sampled_from(_names(block)))
        options.append(_callables())
    return st.one_of(options)


@st.composite
def mutated_configs(draw, block):
    """``(base config, {field: value})``: a registered config and one to three fields changed."""
    base = draw(st.sampled_from(list(block.configs.values())))
    fields = dataclasses.fields(base)
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=3, unique_by=lambda f: f.name))
    # The length a per-channel (or per-element) tuple should have: the registered config's lengths.
    lengths = [len(v) for v in dataclasses.astuple(base) if isinstance(v, tuple)]
    length = next((getattr(base, name) for name in ("channels", "out_channels") if hasattr(base, name)),
                  lengths[0] if lengths else 4)
    changes = {f.name: draw(_field_values(block, f, getattr(base, f.name), length)) for f in chosen}
    return base, changes


def _is_worded_refusal(error):
    """``error`` was raised by a ``raise`` statement in qarith's own source, with a message."""
    frames = traceback.extract_tb(error.__traceback__)
    if not frames or not str(error):
        return False
    last = frames[-1]
    inside = any(Path(last.filename).resolve().is_relative_to(folder) for folder in SOURCE_FOLDERS)
    return inside and last.line.lstrip().startswith("raise ")


def _small_enough(block_name, cfg):
    return all(getattr(cfg, name) <= limit for name, limit in SIZE_LIMITS[block_name].items())


def _uses_callable(cfg):
    return any(callable(value) for value in dataclasses.astuple(cfg))


def check_contract(block_name, base, changes):
    block = BLOCKS[block_name]
    note(f"{block_name}: {base!r} with {changes!r}")
    try:
        cfg = dataclasses.replace(base, **changes)
    except (ValueError, TypeError) as error:
        assert _is_worded_refusal(error), \
            f"{type(error).__name__} not raised by qarith's validation: {error!r}\n" \
            + "".join(traceback.format_tb(error.__traceback__))
        return None
    if not _uses_callable(cfg):                        # only Python can hold a callable
        assert from_text(type(cfg), to_text(cfg)) == cfg
    assume(_small_enough(block_name, cfg))
    Fragment.get(block.generator(cfg), platform=None)
    cases = block.bench.vectors(cfg)
    assert cases
    return cfg


def _special_values(block, field, current):
    """The special values of ``field``'s kinds, one list (the sweep's; the fuzz draws from the same)."""
    kinds = _annotation_kinds(field.type)
    values = list(WRONG_KINDS)
    if int in kinds:
        values += SPECIAL_INTS
    if float in kinds:
        values += SPECIAL_FLOATS
    if str in kinds or object in kinds:
        values += _names(block)
    if tuple in kinds and isinstance(current, tuple) and current:
        values += [(value,) + current[1:] for value in (0, -1, 1 << 40, math.nan, math.inf, -math.inf, 5e-324,
                                                        1e300, True, "x")]
        values += [current[:-1], current + current[-1:], ()]
    return values


@pytest.mark.parametrize("block_name", list(BLOCKS))
def test_every_special_value(block_name):
    """Every registered config with each field set to each special value in turn (construction and, for
    the configs it accepts, the text form; the fuzz elaborates): the values that hide among many."""
    block = BLOCKS[block_name]
    for base in block.configs.values():
        for field in dataclasses.fields(base):
            for value in _special_values(block, field, getattr(base, field.name)):
                try:
                    cfg = dataclasses.replace(base, **{field.name: value})
                except (ValueError, TypeError) as error:
                    assert _is_worded_refusal(error), f"{field.name}={value!r}: {error!r}"
                    continue
                if not _uses_callable(cfg):
                    assert from_text(type(cfg), to_text(cfg)) == cfg, f"{field.name}={value!r}"


def test_size_limits_name_fields():
    for name, limits in SIZE_LIMITS.items():
        fields = {f.name for f in dataclasses.fields(BLOCKS[name].config)}
        assert set(limits) <= fields, name
    assert set(SIZE_LIMITS) == set(BLOCKS)


@pytest.mark.parametrize("block_name", list(BLOCKS))
def test_config_fuzz(block_name):
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])
    @given(mutated_configs(BLOCKS[block_name]))
    def fuzz(example):
        check_contract(block_name, *example)

    fuzz()
