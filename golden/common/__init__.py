"""Shared model machinery: integer code ranges, the config text form, score distributions, the shift
and polynomial exponentials, the LNS word, the Winograd matrices and the PWL fitters."""
