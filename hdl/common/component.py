"""The base class of every qarith generator, and the one way to read a generator's ports and derived
facts without building its Verilog.

A generator is a :class:`amaranth.lib.wiring.Component` made from one frozen config dataclass. The config
type is checked in ``__new__``, before the component exists, so a wrong argument raises ``TypeError``
without leaving an unelaborated component behind (Amaranth warns about every elaboratable that is
created and never used).
"""

from functools import lru_cache

from amaranth.hdl import Fragment
from amaranth.lib import wiring

__all__ = ["BlockComponent", "interface"]


class BlockComponent(wiring.Component):
    """A :class:`~amaranth.lib.wiring.Component` built from an instance of :attr:`config_class`.

    Subclasses set ``config_class`` and take the config as their first constructor argument.

    Raises
    ------
    TypeError
        If the first argument is not a ``config_class`` instance.
    """
    config_class = None

    def __new__(cls, cfg, *args, src_loc_at=0, **kwargs):
        if not isinstance(cfg, cls.config_class):
            raise TypeError(f"Configuration must be a {cls.config_class.__name__}, not {cfg!r}")
        return super().__new__(cls, cfg, *args, src_loc_at=src_loc_at + 1, **kwargs)


@lru_cache(maxsize=512)
def interface(generator, cfg):
    """An instance of ``generator`` for ``cfg``, used for its ports and derived properties (``latency``,
    ``throughput``, ``table_bytes``, ``sim_sources``, ...).

    It is elaborated once, here (:meth:`amaranth.hdl.Fragment.get`), so Amaranth counts it as used; the
    result is cached per ``(generator, cfg)``. Never pass it to a simulator or an emitter: build a new
    instance for that.
    """
    component = generator(cfg)
    Fragment.get(component, platform=None)
    return component
