"""The ``qarith`` command.

``qarith list [--markdown]``             the registry: blocks, their named configs and parameters
``qarith verilog BLOCK [--config NAME] [--set KEY=VALUE ...] [-o DIR]``
                                         emit one configuration's Verilog
``qarith verilog --all [-o DIR]``        every block's named configs plus ``manifest.json``
``qarith sim BLOCK [--config NAME] [--set ...] [--sim icarus|verilator]``
                                         run the block's cocotb bench on the emitted Verilog
``qarith report [-o DIR] [--block B ...] [--device D ...]``
                                         synthesis + place-and-route report (see :mod:`qarith.fpga.report`)
``qarith bench [-o DIR]``                simulator speed and MAC-array utilisation benchmark
``qarith formal BLOCK [--config NAME] | --all [--fast] [-o DIR]``
                                         formal proofs (see :mod:`qarith.sim.proofs`); ``--all`` writes
                                         ``DIR/formal.md``

Bad block names, keys and values exit with status 2 and one line naming the problem and what is
allowed.
"""

import argparse
import dataclasses
import sys
import types
from pathlib import Path

__all__ = ["main", "parse_settings", "CliError"]


class CliError(Exception):
    """A user error, reported as one line."""


def _blocks():
    from .registry import BLOCKS
    return BLOCKS


def _lookup_block(name):
    blocks = _blocks()
    if name not in blocks:
        raise CliError(f"unknown block {name!r}; blocks: {', '.join(blocks)}")
    return blocks[name]


def _parse_value(key, text, annotation):
    options = annotation.__args__ if isinstance(annotation, types.UnionType) else (annotation,)
    if type(None) in options and text.lower() == "none":
        return None
    if bool in options:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise CliError(f"{key}={text}: expected true or false")
    if int in options:
        try:
            return int(text, 0)
        except ValueError:
            allowed = "an integer or none" if type(None) in options else "an integer"
            raise CliError(f"{key}={text}: expected {allowed}") from None
    return text


def parse_settings(block, base, settings):
    """Apply ``KEY=VALUE`` strings to config ``base`` of ``block``; raise :class:`CliError`."""
    fields = {f.name: f.type for f in dataclasses.fields(block.config)}
    changes = {}
    for setting in settings:
        key, sep, text = setting.partition("=")
        if not sep:
            raise CliError(f"--set takes KEY=VALUE, not {setting!r}")
        if key not in fields:
            raise CliError(f"unknown key {key!r} for {block.name}; keys: {', '.join(fields)}")
        changes[key] = _parse_value(key, text, fields[key])
    try:
        return dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as error:
        raise CliError(str(error)) from None


def _config(block, args):
    if args.config is None:
        base, name = block.config(), "custom" if args.set else "default"
    elif args.config in block.configs:
        base, name = block.configs[args.config], args.config
    else:
        raise CliError(f"unknown config {args.config!r} for {block.name}; configs: {', '.join(block.configs)}")
    if args.set:
        name = "custom"
    return parse_settings(block, base, args.set or []), name


def block_table():
    """The registry as a Markdown table (the README's block table)."""
    lines = ["| block | what it computes | named configs |", "|---|---|---|"]
    for block in _blocks().values():
        lines.append(f"| `{block.name}` | {block.summary} | {', '.join(f'`{c}`' for c in block.configs)} |")
    return "\n".join(lines) + "\n"


def _cmd_list(args):
    if args.markdown:
        print(block_table(), end="")
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(title="qarith blocks")
    for column in ("block", "configs", "parameters", "what it computes"):
        table.add_column(column)
    for block in _blocks().values():
        table.add_row(block.name, "\n".join(block.configs),
                      ", ".join(f.name for f in dataclasses.fields(block.config)), block.summary)
    Console(width=160).print(table)


def _cmd_verilog(args):
    from .verilog import emit, write_all
    out = Path(args.output)
    if args.all:
        if args.block is not None:
            raise CliError("give either a block or --all, not both")
        manifest = write_all(out)
        print(f"wrote {len(manifest)} modules and manifest.json to {out}")
        return
    if args.block is None:
        raise CliError("give a block name or --all")
    block = _lookup_block(args.block)
    cfg, name = _config(block, args)
    path = emit(block, cfg, f"{block.name}__{name}", out)
    print(path)


def _cmd_sim(args):
    from ..sim.runner import SIMULATORS, run_cocotb
    block = _lookup_block(args.block)
    cfg, name = _config(block, args)
    if args.sim not in SIMULATORS:
        raise CliError(f"unknown simulator {args.sim!r}; simulators: {', '.join(SIMULATORS)}")
    run_cocotb(block.name, cfg, args.sim, config_name=name)
    print(f"{block.name} {name} on {args.sim}: all cocotb tests passed")


def _cmd_report(args):
    from ..fpga.report import DEVICES, run_report
    for block in args.block or []:
        _lookup_block(block)
    for device in args.device or []:
        if device not in DEVICES:
            raise CliError(f"unknown device {device!r}; devices: {', '.join(DEVICES)}")
    for config in args.config or []:
        if not any(config in _lookup_block(block).configs for block in args.block or _blocks()):
            raise CliError(f"unknown config {config!r} for {', '.join(args.block or ['any block'])}")
    run_report(Path(args.output), blocks=args.block, devices=args.device, seeds=args.seeds, configs=args.config)


def _cmd_bench(args):
    from ..fpga.bench import run_benchmark
    run_benchmark(Path(args.output))


def _cmd_formal(args):
    from ..sim.common.formal import proof_table, run_proofs
    from ..sim.proofs import block_proofs
    if args.all == (args.block is not None):
        raise CliError("give either a block name or --all")
    if args.all and args.config is not None:
        raise CliError("--config needs a block name, not --all")
    proofs = []
    for block in _blocks().values() if args.all else [_lookup_block(args.block)]:
        default_name, default_cfg = next(iter(block.configs.items()))
        if args.config is None or args.config == default_name:
            proofs += block_proofs(block.name, block.generator, default_name, default_cfg)
        elif args.config in block.configs:
            proofs += block_proofs(block.name, block.generator, args.config, block.configs[args.config],
                                   default=False)
        else:
            raise CliError(f"unknown config {args.config!r} for {block.name}; configs: {', '.join(block.configs)}")
    if args.fast:
        proofs = [proof for proof in proofs if proof.fast]
    out = Path(args.output)

    def report(row):
        print(" ".join(str(cell) for cell in row.cells()), flush=True)

    rows = run_proofs(proofs, out, timeout=args.timeout, report=report)
    table = proof_table(rows)
    if args.all:
        (out / "formal.md").write_text(table)
        print(f"wrote {out / 'formal.md'}")
    failed = [row.proof.name for row in rows if not row.ok]
    if failed:
        raise CliError(f"{len(failed)} proofs failed or their mutants passed: {', '.join(failed)}")


def _formal_parser(sub):
    p = sub.add_parser("formal", help="formal proofs of a block (or --all) with SymbiYosys")
    p.add_argument("block", nargs="?")
    p.add_argument("--all", action="store_true", help="every block's proofs; writes DIR/formal.md")
    p.add_argument("--config", help="named config for the stream proofs (default: the block's first)")
    p.add_argument("--fast", action="store_true", help="only the proofs of the normal test run")
    p.add_argument("--timeout", type=int, default=900, help="seconds per solver run (then TIMEOUT)")
    p.add_argument("-o", "--output", default="build/formal")
    p.set_defaults(func=_cmd_formal)


def _parser():
    parser = argparse.ArgumentParser(prog="qarith", description="qarith block generators and flows")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list blocks and configs")
    p.add_argument("--markdown", action="store_true", help="print the README's block table")
    p.set_defaults(func=_cmd_list)

    def config_args(p):
        p.add_argument("--config", help="named config of the block (default: the config's defaults)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a parameter")

    p = sub.add_parser("verilog", help="emit Verilog")
    p.add_argument("block", nargs="?")
    p.add_argument("--all", action="store_true", help="every block's named configs and the manifest")
    p.add_argument("-o", "--output", default="build/verilog")
    config_args(p)
    p.set_defaults(func=_cmd_verilog)

    p = sub.add_parser("sim", help="run a block's cocotb bench")
    p.add_argument("block")
    p.add_argument("--sim", default="icarus")
    config_args(p)
    p.set_defaults(func=_cmd_sim)

    p = sub.add_parser("report", help="synthesis and place-and-route report")
    p.add_argument("-o", "--output", default="build/report")
    p.add_argument("--block", action="append", help="only this block (repeatable)")
    p.add_argument("--device", action="append", help="only this device (repeatable)")
    p.add_argument("--config", action="append", help="only this named config (repeatable)")
    p.add_argument("--seeds", type=int, default=1, help="place-and-route seeds per design (median Fmax)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("bench", help="simulator speed and MAC-array utilisation benchmark")
    p.add_argument("-o", "--output", default="build/report")
    p.set_defaults(func=_cmd_bench)
    _formal_parser(sub)
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as error:
        print(f"qarith: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
