"""``mnist-bench models [--json]``: the registry, with parameters and FLOPs per image."""

from __future__ import annotations

import argparse
import json

from rich.console import Console
from rich.table import Table

from ...models import MODELS, count_parameters, forward_flops
from ..flags import add_json

ORDER = 30  # position in `mnist-bench --help`


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models with parameters and FLOPs per image")
    add_json(p)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    listing = []
    for name, spec in MODELS.items():
        model = spec.builder()
        listing.append({"name": name, "parameters": count_parameters(model), "flops_per_image": forward_flops(model),
                        "description": spec.description})
    if args.json:
        out.file.write(json.dumps({"models": listing}) + "\n")
        out.file.flush()
        return 0
    table = Table(title="Registered models", title_justify="left")
    for column, justify in (("name", "left"), ("parameters", "right"), ("FLOPs/image", "right"),
                            ("description", "left")):
        table.add_column(column, justify=justify)
    for m in listing:
        table.add_row(m["name"], f"{m['parameters']:,}", f"{m['flops_per_image']:,}", m["description"])
    out.print(table)
    out.print("FLOPs: forward pass, 2 per multiply-add, matmul and convolution only.", highlight=False)
    return 0
