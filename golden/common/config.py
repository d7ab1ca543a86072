"""The canonical text form of a block configuration: a TOML table of its fields.

Every config dataclass of qarith travels as this text: the CLI's ``--config-file``, the cocotb runs (the
runner writes it next to the simulator's build), the manifest and the FPGA report. It is lossless: for
every config ``cfg``, ``from_text(type(cfg), to_text(cfg)) == cfg`` with the same field types, because
TOML keeps integers, floats, booleans and strings apart, and tuples are written as arrays and read back
as tuples. Only what the dataclass itself holds is written: a field that is ``None`` (every optional
field of a qarith config defaults to ``None``) is left out.

Reading goes through the dataclass's own constructor, so a config read from text is validated exactly
like one built in Python.
"""

import dataclasses
import hashlib
import json
import math
import tomllib

__all__ = ["to_dict", "from_dict", "to_text", "from_text", "config_hash"]


def _check_config(cfg):
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"Expected a config dataclass instance, not {cfg!r}")


def to_dict(cfg):
    """The fields of ``cfg`` that are not ``None``, in declaration order, as plain values (tuples kept)."""
    _check_config(cfg)
    data = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is None:
            if f.default is not None:
                raise TypeError(f"{type(cfg).__name__}.{f.name} is None but defaults to {f.default!r}: "
                                f"no text form")
            continue
        data[f.name] = value
    return data


def _as_tuples(value):
    if isinstance(value, list):
        return tuple(_as_tuples(v) for v in value)
    return value


def from_dict(cls, data):
    """A ``cls`` config from a mapping of field names to values (arrays become tuples).

    Raises
    ------
    ValueError
        For a key that is not a field of ``cls``.
    TypeError, ValueError
        As ``cls`` raises them for bad values.
    """
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [key for key in data if key not in names]
    if unknown:
        raise ValueError(f"Unknown field {unknown[0]!r} for {cls.__name__}; fields: {', '.join(names)}")
    return cls(**{key: _as_tuples(value) for key, value in data.items()})


def _toml_value(value, where):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)                    # shortest text that reads back as the same double
    if isinstance(value, str):
        return json.dumps(value)              # a TOML basic string: JSON's escapes are TOML's
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    raise TypeError(f"{where} = {value!r} has no text form (a {type(value).__name__}; only integers, "
                    f"floats, booleans, strings and tuples of them do)")


def to_text(cfg):
    """``cfg`` as TOML text, one ``field = value`` line per field that is not ``None``."""
    return "".join(f"{name} = {_toml_value(value, f'{type(cfg).__name__}.{name}')}\n"
                   for name, value in to_dict(cfg).items())


def from_text(cls, text):
    """A ``cls`` config from TOML text (:func:`to_text`'s form, or any TOML table of its fields).

    Raises
    ------
    ValueError
        For text that is not TOML (the parser's message) or names a field ``cls`` lacks.
    TypeError, ValueError
        As ``cls`` raises them for bad values.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ValueError(f"Not a TOML table of {cls.__name__} fields: {error}") from None
    return from_dict(cls, data)


def config_hash(cfg):
    """Eight hex digits of the SHA-256 of :func:`to_text`: names a custom config's modules and builds."""
    return hashlib.sha256(to_text(cfg).encode()).hexdigest()[:8]
