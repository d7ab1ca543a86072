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
``qarith bitstream BLOCK [--config NAME] --board icebreaker|ulx3s [-o DIR]``
                                         a bitstream of the board shell around the block
``qarith program --board B BLOCK [--config NAME]``   load that bitstream into the board
``qarith run BLOCK [--config NAME] --port URL``      play the block's test vectors through a board
                                         (``--port sim`` simulates one) and compare with the golden model

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


# Board commands: bitstream, program, run (the board shell, qarith.fpga.bitstream and qarith.host).

def _board_design(args):
    block = _lookup_block(args.block)
    cfg, name = _config(block, args)
    return block, cfg, f"{block.name}:{name}"


def _check_board(name):
    from ..fpga.bitstream import BOARDS
    if name not in BOARDS:
        raise CliError(f"unknown board {name!r}; boards: {', '.join(BOARDS)}")
    return BOARDS[name]


def _cmd_bitstream(args):
    from ..fpga.bitstream import BitstreamError, build_bitstream
    _check_board(args.board)
    block, cfg, name = _board_design(args)
    try:
        summary = build_bitstream(args.board, block.generator, cfg, name, args.output, baud=args.baud)
    except BitstreamError as error:
        raise CliError(str(error)) from None
    used = summary["utilisation"]
    print(f"{name} on {args.board}: " + ", ".join(f"{kind} {v['used']}/{v['available']}" for kind, v in used.items())
          + f"; Fmax {summary['fmax_mhz']} MHz (board clock {summary['clock_mhz']:g} MHz); "
          f"{summary['build_seconds']} s; {Path(args.output) / args.board / name.replace(':', '__') / summary['bitstream']}")


def _cmd_program(args):
    from ..fpga.bitstream import BitstreamError, program
    board = _check_board(args.board)
    _, _, name = _board_design(args)
    path = Path(args.output) / board.name / name.replace(":", "__") / board.bitstream
    try:
        program(board.name, path)
    except BitstreamError as error:
        raise CliError(str(error)) from None
    print(f"programmed {board.description} with {path}")


def _cmd_run(args):
    import contextlib
    import importlib
    from rich.progress import Progress
    from ..host import Board, LinkError, play
    block, cfg, name = _board_design(args)
    component = block.interface(cfg)
    cases = importlib.import_module(block.bench).vectors(cfg)
    if args.max_beats:
        from ..sim.shell import vectors_prefix
        cases = [vectors_prefix(case, args.max_beats) for case in cases]
    total = sum(len(case.beats) for case in cases)
    if args.port == "sim":
        from ..fpga.link_sim import simulated_board
        link = simulated_board(block.generator, cfg, name, baud=args.baud)
        timeout = max(args.timeout, 60)
    else:
        link, timeout = contextlib.nullcontext(args.port), args.timeout
    try:
        with link as url, Board.open(url, baud=args.baud, timeout=timeout) as board:
            identity = board.identify()
            from ..golden.common.frames import config_hash
            if identity.name != name or identity.config_hash != config_hash(cfg):
                raise CliError(f"the board at {url} holds {identity.name} (config hash {identity.config_hash:08x}), "
                               f"not {name} ({config_hash(cfg):08x}): program it with `make program`")
            with Progress(transient=True, disable=total < 2000) as progress:
                task = progress.add_task(f"{name} via {url}", total=total)
                done = [0]

                def advance(case, sent, got):
                    progress.update(task, completed=done[0] + sent)
                summary = None
                for case in cases:
                    part = play(board, component, [case], progress=advance)
                    done[0] += len(case.beats)
                    summary = part if summary is None else _merge(summary, part)
            counters = board.counters()
    except LinkError as error:
        raise CliError(str(error)) from None
    errors = {k: v for k, v in counters.items() if v and k != "frames_ok"}
    print(f"{name} on {args.port}: {summary.cases} cases, {summary.beats_in} beats in, {summary.beats_out} out, "
          f"{len(summary.mismatches)} mismatches against the golden model, "
          f"{summary.beats_per_second:.0f} input beats/s; board error counters: {errors or 'none'}")
    for case_name, index, want, got in summary.mismatches[:5]:
        print(f"  {case_name} output {index}: expected {want}, got {got}")
    if summary.mismatches:
        raise CliError(f"{len(summary.mismatches)} output beats differ from the golden model")


def _merge(summary, part):
    summary.cases += part.cases
    summary.beats_in += part.beats_in
    summary.beats_out += part.beats_out
    summary.mismatches += part.mismatches
    summary.seconds += part.seconds
    return summary


def _board_parsers(sub, config_args):
    from ..fpga.bitstream import DEFAULT_BAUD
    p = sub.add_parser("bitstream", help="build a board bitstream of the shell around a block")
    p.add_argument("block")
    p.add_argument("--board", required=True, help="icebreaker or ulx3s")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    p.add_argument("-o", "--output", default="build/bitstream")
    config_args(p)
    p.set_defaults(func=_cmd_bitstream)

    p = sub.add_parser("program", help="load a built bitstream into the board")
    p.add_argument("block")
    p.add_argument("--board", required=True)
    p.add_argument("-o", "--output", default="build/bitstream")
    config_args(p)
    p.set_defaults(func=_cmd_program)

    p = sub.add_parser("run", help="play a block's test vectors through a board and compare with golden")
    p.add_argument("block")
    p.add_argument("--port", required=True, help="serial device or pyserial URL (socket://..., loop://); "
                                                 "'sim' simulates the board")
    p.add_argument("--baud", type=int, default=DEFAULT_BAUD)
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for a reply")
    p.add_argument("--max-beats", type=int, help="cut every case to its first N input beats")
    config_args(p)
    p.set_defaults(func=_cmd_run)


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
    _board_parsers(sub, config_args)
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
