"""The ``qarith`` command.

``qarith list [--markdown]``               the registry: blocks, their named configs and parameters
``qarith verilog BLOCK [CONFIG OPTIONS] [--name NAME] [-o DIR]``
                                           emit one configuration's Verilog
``qarith verilog --all [-o DIR]``          every block's named configs plus ``manifest.json``
``qarith sim BLOCK [CONFIG OPTIONS] [--sim icarus|verilator]``
                                           run the block's cocotb bench on the emitted Verilog
``qarith report [--block B ...] [--config NAME ...] [--device D ...] [-o DIR]``
                                           synthesis + place-and-route report (:mod:`qarith.fpga.report`)
``qarith report --block B [--config-file F] [--set ...]``
                                           the same for one custom config of one block
``qarith bench [-o DIR]``                  simulator speed, MAC-array utilisation, accuracy tables
``qarith formal BLOCK [--config NAME] | --all [--fast] [-o DIR]``
                                           formal proofs (:mod:`qarith.sim.common.proofs`); ``--all``
                                           writes ``DIR/formal.md``
``qarith bitstream BLOCK [CONFIG OPTIONS] --board icebreaker|ulx3s [-o DIR]``
                                           a bitstream of the board shell around the block
``qarith program BLOCK [CONFIG OPTIONS] --board B``   load that bitstream into the board
``qarith run BLOCK [CONFIG OPTIONS] --port URL``      play the block's test vectors through a board
``qarith sweep SPEC.toml [-o DIR] [--scheduler tcp://HOST:8786] [--workers N] [--best "M<X" --minimize M]``
                                           a design-space sweep on Dask (:mod:`qarith.fpga.sweep`)

CONFIG OPTIONS pick the configuration: ``--config NAME`` (a named config) or ``--config-file FILE.toml`` (a
TOML table of the config's fields, the text :mod:`qarith.golden.common.config` writes), then any number of
``--set KEY=VALUE`` on top. Values: integers (``8``, ``0x10``), floats (``0.1``, ``1/64`` is not one:
write ``0.015625``), booleans (``true``/``false``), strings, ``none`` for optional fields, tuples as
``1,2,3`` or a TOML array ``[1, 2, 3]``. A custom config's module is named ``<block>__<hash>`` (eight hex
digits of its text) unless ``--name`` is given, so two custom configs never overwrite each other; a config
equal to a named one takes that name.

Bad block names, keys, values, files and conflicting options exit with status 2 and one line naming the
problem and what is allowed.
"""

import argparse
import dataclasses
import re
import sys
import tomllib
import types
from pathlib import Path

__all__ = ["main", "parse_settings", "CliError", "block_table"]

SIMULATORS = ("icarus", "verilator")             # as qarith.sim.common.runner.SIMULATORS (checked by a test)
DEVICES = ("ice40-up5k", "ecp5-85f")             # as qarith.fpga.report.DEVICES (checked by a test)
_VERILOG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


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


def _toml_value(text):
    """``text`` read as one TOML value, or ``None`` if it is not one."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return None


def _parse_tuple(key, text):
    value = _toml_value(text) if text.lstrip().startswith("[") else None
    if value is None:
        items = [item.strip() for item in text.split(",")]
        value = [_toml_value(item) for item in items] if all(items) else [None]
    if not isinstance(value, list) or any(isinstance(v, (str, dict)) or v is None for v in value):
        raise CliError(f"{key}={text}: expected a list of numbers, e.g. 1,2,3 or [1, 2, 3]")
    return tuple(tuple(v) if isinstance(v, list) else v for v in value)


def _parse_value(key, text, annotation):
    """``text`` as a value of a field annotated ``annotation`` (``int``, ``float | None``, ``tuple``, ...)."""
    options = annotation.__args__ if isinstance(annotation, types.UnionType) else (annotation,)
    options = tuple(getattr(option, "__origin__", option) for option in options)
    optional = type(None) in options
    if optional and text.lower() == "none":
        return None
    or_none = " or none" if optional else ""
    if bool in options:
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise CliError(f"{key}={text}: expected true or false{or_none}")
    if int in options:
        try:
            return int(text, 0)
        except ValueError:
            raise CliError(f"{key}={text}: expected an integer{or_none}") from None
    if float in options:
        value = _toml_value(text)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CliError(f"{key}={text}: expected a number{or_none}")
        return float(value)
    if tuple in options:
        return _parse_tuple(key, text)
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
        if key in changes:
            raise CliError(f"--set {key} given twice")
        changes[key] = _parse_value(key, text, fields[key])
    return _checked(lambda: dataclasses.replace(base, **changes))


def _checked(make):
    try:
        return make()
    except (TypeError, ValueError) as error:
        raise CliError(str(error)) from None


def _read_config_file(block, path):
    from .golden.common.config import from_text
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise CliError(f"cannot read config file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CliError(f"config file {path} is not UTF-8 text") from None
    return _checked(lambda: from_text(block.config, text))


def _config(block, args):
    """The config the options select and its module name: ``(cfg, name)``."""
    from .golden.common.config import config_hash
    if args.config is not None and args.config_file is not None:
        raise CliError("give either --config or --config-file, not both")
    if args.config_file is not None:
        base = _read_config_file(block, args.config_file)
    elif args.config is None:
        base = _checked(block.config)
    elif args.config in block.configs:
        base = block.configs[args.config]
    else:
        raise CliError(f"unknown config {args.config!r} for {block.name}; configs: {', '.join(block.configs)}")
    cfg = parse_settings(block, base, args.set or [])
    name = getattr(args, "name", None)
    if name is not None:
        if not _VERILOG_NAME.match(name):
            raise CliError(f"--name {name!r}: expected a Verilog identifier (letters, digits, _; not starting "
                           f"with a digit)")
        return cfg, name
    named = block.config_name(cfg)
    return cfg, f"{block.name}__{named if named is not None else _checked(lambda: config_hash(cfg))}"


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


def _uses_config_options(args):
    return any(getattr(args, option, None) is not None
               for option in ("config", "config_file", "set", "name"))


def _cmd_verilog(args):
    from .hdl.common.verilog import emit
    out = Path(args.output)
    if args.all:
        if args.block is not None or _uses_config_options(args):
            raise CliError("--all emits every named config: give no block, --config, --config-file, --set or "
                           "--name with it")
        from .manifest import write_all
        manifest = write_all(out)
        print(f"wrote {len(manifest)} modules and manifest.json to {out}")
        return
    if args.block is None:
        raise CliError("give a block name or --all")
    block = _lookup_block(args.block)
    cfg, name = _config(block, args)
    print(emit(block.generator, cfg, name, out))


def _cmd_sim(args):
    from .sim.common.runner import run_cocotb
    block = _lookup_block(args.block)
    if args.sim not in SIMULATORS:
        raise CliError(f"unknown simulator {args.sim!r}; simulators: {', '.join(SIMULATORS)}")
    cfg, name = _config(block, args)
    run_cocotb(block.generator, block.bench, cfg, args.sim, name)
    print(f"{name} on {args.sim}: all cocotb tests passed")


def _cmd_report(args):
    for block in args.block or []:
        _lookup_block(block)
    for device in args.device or []:
        if device not in DEVICES:
            raise CliError(f"unknown device {device!r}; devices: {', '.join(DEVICES)}")
    if args.config_file is not None or args.set:
        return _custom_report(args)
    for config in args.config or []:
        if not any(config in _lookup_block(block).configs for block in args.block or _blocks()):
            raise CliError(f"unknown config {config!r} for {', '.join(args.block or ['any block'])}")
    from .fpga.report import run_report
    run_report(Path(args.output), _blocks(), blocks=args.block, devices=args.device, seeds=args.seeds,
               configs=args.config, scheduler=args.scheduler, router=args.router, placer=args.placer)


def _custom_report(args):
    """One custom config of one block on the devices: ``<output>/custom/<name>.json`` and a summary."""
    import json
    from dataclasses import asdict

    from .fpga.report import DEVICES as devices
    from .fpga.report import implement
    if len(args.block or []) != 1:
        raise CliError("--config-file and --set report one custom config: give exactly one --block")
    if args.config is not None and len(args.config) > 1:
        raise CliError("--config-file and --set take at most one --config as the base")
    block = _lookup_block(args.block[0])
    args.config = args.config[0] if args.config else None
    cfg, name = _config(block, args)
    out = Path(args.output) / "custom"
    records = [asdict(implement(block, name, devices[d], args.seeds, out / "work", cfg=cfg, router=args.router,
                                placer=args.placer))
               for d in args.device or devices]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(records, indent=2) + "\n")
    for r in records:
        print(f"{name} {r['device']}: {r['status']}, Fmax {r['fmax_mhz']} MHz, cells {r['cells']}")


def _cmd_bench(args):
    from .fpga.bench import run_benchmark
    run_benchmark(Path(args.output), _blocks())


# Board commands: bitstream, program, run (the board shell, qarith.fpga.bitstream and qarith.host).

def _board_design(args):
    """The block, config and design name (``block:config``, the name ``identify`` reports)."""
    block = _lookup_block(args.block)
    cfg, module = _config(block, args)
    return block, cfg, f"{block.name}:{module.removeprefix(block.name + '__')}"


def _check_board(name):
    from .fpga.bitstream import BOARDS
    if name not in BOARDS:
        raise CliError(f"unknown board {name!r}; boards: {', '.join(BOARDS)}")
    return BOARDS[name]


def _cmd_bitstream(args):
    from .fpga.bitstream import BitstreamError, build_bitstream
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
    from .fpga.bitstream import BitstreamError, program
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

    from rich.progress import Progress

    from .host import Board, LinkError, play
    block, cfg, name = _board_design(args)
    component = block.interface(cfg)
    cases = block.bench.vectors(cfg)
    if args.max_beats:
        from .sim.common.shell import vectors_prefix
        cases = [vectors_prefix(case, args.max_beats) for case in cases]
    total = sum(len(case.beats) for case in cases)
    if args.port == "sim":
        from .fpga.link_sim import simulated_board
        link = simulated_board(block.generator, cfg, name, baud=args.baud)
        timeout = max(args.timeout, 60)
    else:
        link, timeout = contextlib.nullcontext(args.port), args.timeout
    try:
        with link as url, Board.open(url, baud=args.baud, timeout=timeout) as board:
            identity = board.identify()
            from .golden.common.frames import config_hash
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
    from .fpga.bitstream import DEFAULT_BAUD
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


def _cmd_formal(args):
    from .sim.common.formal import proof_table, run_proofs
    from .sim.common.proofs import block_proofs
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
    # A proof the solver could not finish in time is reported as not proved; a failed proof, a tool error
    # or a mutant that passes fails the command.
    failed = [row.proof.name for row in rows if not row.ok and row.result.status != "TIMEOUT"]
    unfinished = [row.proof.name for row in rows if row.result.status == "TIMEOUT"]
    if unfinished:
        print(f"not proved within {args.timeout} s per solver run ({len(unfinished)}): {', '.join(unfinished)}")
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


def _cmd_sweep(args):
    from .fpga.sweep import MAXIMIZED, SpecError, best, check_metric, describe, load_spec, parse_constraints, run_sweep
    try:
        spec = load_spec(args.spec, _blocks())
        constraint_text = args.best if args.best is not None else spec.best
        objective = args.minimize or args.maximize or spec.minimize
        if (args.minimize or args.maximize) and constraint_text is None:
            raise CliError("--minimize / --maximize go with --best CONSTRAINTS")
        if args.minimize and args.maximize:
            raise CliError("give either --minimize or --maximize, not both")
        if constraint_text is not None and objective is None:
            raise CliError("--best needs --minimize METRIC or --maximize METRIC")
        constraints = parse_constraints(constraint_text) if constraint_text is not None else None
        if objective is not None:
            check_metric(objective)
    except SpecError as error:
        raise CliError(str(error)) from None
    if args.workers is not None and (args.workers < 1 or args.scheduler):
        raise CliError("--workers takes a positive count, for the local cluster only (not with --scheduler)")
    output = Path(args.output or Path("build/sweep") / Path(args.spec).stem)
    records = run_sweep(spec, output, cache=args.cache, scheduler=args.scheduler, workers=args.workers)
    failed = sum(r["status"] != "ok" for r in records)
    cached = sum(bool(r.get("cached")) for r in records)
    print(f"{len(records)} points ({failed} failed, {cached} from the cache): {output / 'sweep.json'}, "
          f"{output / 'sweep.md'}")
    if constraints is not None:
        maximize = bool(args.maximize) or (not args.minimize and objective in MAXIMIZED)
        choice = best(records, constraints, objective, maximize=maximize)
        goal = f"{'max' if maximize else 'min'} {objective} with {constraint_text}"
        print(f"best ({goal}): {describe(choice)}" if choice else f"best ({goal}): no point satisfies it")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError(message)


def _parser():
    blocks = list(_blocks())
    parser = _Parser(prog="qarith", description="qarith block generators and flows")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("list", help="list blocks and configs")
    p.add_argument("--markdown", action="store_true", help="print the README's block table")
    p.set_defaults(func=_cmd_list)

    def config_args(p, name=True):
        p.add_argument("--config", metavar="NAME", help="a named config of the block (default: the config "
                                                        "class's defaults)")
        p.add_argument("--config-file", metavar="FILE", help="a TOML table of the config's fields")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a field (repeatable)")
        if name:
            p.add_argument("--name", help="Verilog module name (default: <block>__<config> or <block>__<hash>)")

    p = sub.add_parser("verilog", help="emit Verilog")
    p.add_argument("block", nargs="?", metavar="BLOCK", help=f"one of: {', '.join(blocks)}")
    p.add_argument("--all", action="store_true", help="every block's named configs and the manifest")
    p.add_argument("-o", "--output", default="build/verilog")
    config_args(p)
    p.set_defaults(func=_cmd_verilog)

    p = sub.add_parser("sim", help="run a block's cocotb bench")
    p.add_argument("block", metavar="BLOCK", help=f"one of: {', '.join(blocks)}")
    p.add_argument("--sim", default="icarus", metavar="{" + ",".join(SIMULATORS) + "}",
                   help="simulator (default: icarus)")
    config_args(p)
    p.set_defaults(func=_cmd_sim)

    p = sub.add_parser("report", help="synthesis and place-and-route report")
    p.add_argument("-o", "--output", default="build/report")
    p.add_argument("--block", action="append", metavar="BLOCK",
                   help=f"only this block (repeatable); one of: {', '.join(blocks)}")
    p.add_argument("--device", action="append", metavar="{" + ",".join(DEVICES) + "}",
                   help="only this device (repeatable)")
    p.add_argument("--config", action="append", metavar="NAME", help="only this named config (repeatable)")
    p.add_argument("--config-file", metavar="FILE", help="one custom config of the one --block")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a custom config of the one --block")
    p.add_argument("--seeds", type=int, default=1, help="place-and-route seeds per design (median Fmax)")
    p.add_argument("--router", choices=("router1", "router2"),
                   help="nextpnr's router (default: nextpnr's own, router1); router2 routes large designs sooner")
    p.add_argument("--placer", choices=("heap", "static"),
                   help="nextpnr's placer (default: nextpnr's own, heap); static places large designs so that "
                        "they route")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786", help="run the designs on an existing dask "
                                                                 "scheduler (default: a LocalCluster)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("bench", help="simulator speed, MAC-array utilisation and accuracy benchmark")
    p.add_argument("-o", "--output", default="build/report")
    p.set_defaults(func=_cmd_bench)
    _board_parsers(sub, config_args)
    _formal_parser(sub)

    p = sub.add_parser("sweep", help="design-space sweep of one block on Dask")
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep spec (see qarith.fpga.sweep)")
    p.add_argument("-o", "--output", help="output folder (default: build/sweep/<spec name>)")
    p.add_argument("--cache", metavar="DIR", help="record cache (default: build/sweep/cache)")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786", help="an existing dask scheduler (default: a "
                                                                 "LocalCluster)")
    p.add_argument("--workers", type=int, help="local cluster workers (default: one per core)")
    p.add_argument("--best", metavar="CONSTRAINTS", help='e.g. "max_error<0.01,dsp==0"')
    p.add_argument("--minimize", metavar="METRIC", help="the metric --best minimises")
    p.add_argument("--maximize", metavar="METRIC", help="the metric --best maximises")
    p.set_defaults(func=_cmd_sweep)
    return parser


def main(argv=None):
    try:
        args = _parser().parse_args(argv)
        args.func(args)
    except CliError as error:
        print(f"qarith: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
