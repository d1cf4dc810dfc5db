"""What ``mnist-bench models`` does (``cli/commands/models.py``): build each model once, count its parameters
and FLOPs, print a table or ``--json``."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from ...models import MODELS, check_model, count_parameters, entry_points, get_model, model_flops, parse_model_args


def describe(spec: str, model_args: tuple[str, ...] = ()) -> dict:
    """One listing row: the spec, where it comes from, its parameters and forward FLOPs per image."""
    source = check_model(spec, model_args)
    model = get_model(spec, **parse_model_args(model_args))
    description = MODELS[spec].description if spec in MODELS else (type(model).__doc__ or "").strip().split("\n")[0]
    return {"name": spec, "source": source.kind, "qualname": source.qualname, "sha256": source.sha256,
            "parameters": count_parameters(model), "flops_per_image": model_flops(spec, model_args)["forward"],
            "description": description, "quick_suite": spec in MODELS and MODELS[spec].quick}


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    model_args = tuple(args.model_args or ())
    specs = args.specs or [*MODELS, *entry_points()]
    listing = [describe(spec, model_args if args.specs else ()) for spec in specs]
    if args.json:
        out.file.write(json.dumps({"models": listing}) + "\n")
        out.file.flush()
        return 0
    table = Table(title="Models" if args.specs else "Registered models", title_justify="left")
    for column, justify in (("name", "left"), ("source", "left"), ("parameters", "right"), ("FLOPs/image", "right"),
                            ("quick suite", "left"), ("description", "left")):
        table.add_column(column, justify=justify, overflow="fold")
    for m in listing:
        where = m["source"] if m["source"] == "built-in" else f"{m['source']}: {m['qualname']}"
        table.add_row(m["name"], where, f"{m['parameters']:,}", f"{m['flops_per_image']:,}",
                      "yes" if m["quick_suite"] else "–", m["description"])
    out.print(table)
    out.print("FLOPs: forward pass, 2 per multiply-add, matmul and convolution only. Quick suite: run by `make "
              "bench` by default; every model runs with --bench-models all or by name.", highlight=False)
    return 0
