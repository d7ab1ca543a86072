"""Variable-length rows for the row blocks (``softmax_lut``, ``shiftmax``, ``log_softmax_int``,
``ilayernorm``, ``attn_v``) with ``variable_length=True``.

A row is a run of input beats ended by ``last``, of any length ``L`` in ``1 .. n``. The golden models
take such rows as a padded ``(rows, n)`` tensor and a ``lengths`` tensor ``(rows,)``: row ``r``'s
elements are ``x[r, :lengths[r]]``, the rest are ignored, and the outputs beyond a row's length are 0.

A stream row longer than ``n`` (``last`` not seen by its ``n``-th element) is cut: its ``n``-th element
ends a row as if it carried ``last``, and the elements after it start the next row (:func:`cut_rows`).
"""

import torch

__all__ = ["cut_rows", "pad_rows", "check_lengths", "by_length", "check_variable_length"]


def cut_rows(rows, n):
    """The rows a block with row length ``n`` sees in a stream of ``rows`` (lists of elements, each
    ended by ``last``): every row longer than ``n`` is cut after each ``n``-th element."""
    cut = []
    for row in rows:
        row = list(row)
        if not row:
            raise ValueError("A row must have at least one element")
        cut += [row[start:start + n] for start in range(0, len(row), n)]
    return cut


def pad_rows(rows, n, fill=0):
    """``(x, lengths)``: rows of ``1 .. n`` elements (lists, or tuples of parallel lists) as an
    ``(len(rows), n)`` int64 tensor padded with ``fill``, and their lengths."""
    lengths = torch.tensor([len(row) for row in rows], dtype=torch.int64)
    check_lengths(lengths, n)
    x = torch.full((len(rows), n), fill, dtype=torch.int64)
    for index, row in enumerate(rows):
        x[index, :len(row)] = torch.as_tensor(row, dtype=torch.int64)
    return x, lengths


def check_lengths(lengths, n, shape=None):
    """``lengths`` as an int64 tensor, checked: every length in ``1 .. n`` and, given the rows' leading
    ``shape``, one length per row."""
    lengths = torch.as_tensor(lengths, dtype=torch.int64)
    if shape is not None and tuple(lengths.shape) != tuple(shape):
        raise ValueError(f"Row lengths must have the rows' shape {tuple(shape)}, not {tuple(lengths.shape)}")
    if lengths.numel() and not bool(((lengths >= 1) & (lengths <= n)).all()):
        raise ValueError(f"Row lengths must be between 1 and {n}, not {sorted(set(lengths.flatten().tolist()))}")
    return lengths


def by_length(function, n, lengths, *tensors):
    """``function`` applied to the rows of each length ``L`` alone, as ``(rows, L)`` tensors, its results
    scattered back into zero-padded ``(..., n)`` tensors (or ``(...)`` for a result with one value per
    row). ``tensors`` share the leading shape of ``lengths`` and have ``n`` columns; ``function``
    returns a tensor or a tuple of tensors."""
    tensors = [torch.as_tensor(t, dtype=torch.int64) for t in tensors]
    for t in tensors:
        if t.shape[-1] != n:
            raise ValueError(f"Padded rows must have {n} elements, not {t.shape[-1]}")
    lengths = check_lengths(lengths, n, tensors[0].shape[:-1])
    flat = [t.reshape(-1, n) for t in tensors]
    flat_lengths = lengths.reshape(-1)
    results = None
    for length in sorted(set(flat_lengths.tolist())):
        chosen = flat_lengths == length
        got = function(*(t[chosen, :length] for t in flat))
        single = not isinstance(got, tuple)
        got = (got,) if single else got
        if results is None:
            results = [torch.zeros((len(flat_lengths), n) if g.dim() == 2 else (len(flat_lengths),),
                                   dtype=torch.int64) for g in got]
        for result, g in zip(results, got):
            if g.dim() == 2:
                result[chosen, :length] = g
            else:
                result[chosen] = g
    shaped = tuple(r.reshape(lengths.shape + r.shape[1:]) for r in results)
    return shaped[0] if single else shaped


def check_variable_length(cfg):
    """The configs' shared check of the ``variable_length`` field."""
    if not isinstance(cfg.variable_length, bool):
        raise TypeError(f"variable_length must be a bool, not {cfg.variable_length!r}")
