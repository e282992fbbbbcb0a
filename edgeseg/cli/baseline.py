"""`edgeseg baseline`: train the FP32 baselines and write benchmarks/baselines.{json,md}."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeseg import baseline
from edgeseg.baseline import DEFAULT_CACHE, RECIPES
from edgeseg.cli.common import parse_size, positive_int, status
from edgeseg.core.errors import InputError
from edgeseg.data.synthetic import write_dataset


def add_parser(sub: argparse._SubParsersAction) -> None:

    p = sub.add_parser("baseline", help="train FP32 baselines on synthetic data",
                       description="Train each model from scratch on the synthetic scenes "
                       "within a wall-clock budget; merge the results into "
                       "BENCH_DIR/baselines.json and regenerate baselines.md. Checkpoints go "
                       "to the cache, outside the repository.")
    p.add_argument("--models", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    p.add_argument("--data", default=None,
                   help="dataset root; default: synthetic scenes generated into the cache")
    p.add_argument("--num", type=positive_int, default=1200,
                   help="synthetic scenes to generate when --data is not given")
    p.add_argument("--size", type=parse_size, default=(128, 256), metavar="HxW")
    p.add_argument("--minutes", type=float, default=None,
                   help="budget per model (default: each recipe's, 15 or 20 min)")
    p.add_argument("--iters", type=positive_int, default=None,
                   help="train for this many iterations instead of a wall-clock budget (the "
                   "same result on a busy machine, only slower)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bench-dir", type=Path, default=Path("benchmarks"))
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--chance", action="store_true",
                   help="only compute the chance levels for the data and rewrite baselines.md")
    p.add_argument("--show", action="store_true",
                   help="print the table of BENCH_DIR/baselines.json and exit (no training)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    if args.show:
        results = baseline.load_results(args.bench_dir / "baselines.json")
        if not results:
            raise InputError(f"no results in {args.bench_dir / 'baselines.json'}; run "
                             "`edgeseg baseline` first")
        print(baseline.render_table(results), end="")
        return 0

    data, data_command = args.data, None
    if data is None:
        h, w = args.size
        data = str(args.cache / f"synth-{h}x{w}-n{args.num}-seed{args.seed}")
        data_command = (f"edgeseg data synth --out {data} --num {args.num} --size {h}x{w} "
                        f"--seed {args.seed}")
        if not Path(data).is_dir():
            status(f"generating {args.num} synthetic scenes in {data}")
            write_dataset(data, args.num, args.size, args.seed, progress=not args.no_progress)
    if args.chance:
        chance = baseline.write_chance(args.bench_dir, data, args.seed)
        baseline.write_results(args.bench_dir,
                               baseline.load_results(args.bench_dir / "baselines.json"))
        status(f"chance levels: {chance}")
        return 0
    baseline.run(args.models, data=data, bench_dir=args.bench_dir, cache=args.cache,
                 size=args.size, minutes=args.minutes, iters=args.iters, seed=args.seed,
                 progress=not args.no_progress, log=status, data_command=data_command)
    status(f"wrote {args.bench_dir / 'baselines.md'} and baselines.json")
    return 0
