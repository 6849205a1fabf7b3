#!/usr/bin/env python3
"""Print the configuration reference (docs/reference.md), generated from the code's own docstrings.

The construct documents its props in the ``:param name: ... Default: ...`` lines of
``FlaskBackend.__init__``, and the option dataclasses document each field in the string literal
under it. This script turns both into Markdown tables, so the reference cannot drift from the code:
`tests/test_readme.py` fails when the section in docs/reference.md differs from this output.

    .venv/bin/python scripts/gen_reference.py           # print the tables
    .venv/bin/python scripts/gen_reference.py --write   # replace the section in docs/reference.md

It also fails (exit 1) when the documentation and the code disagree: a prop without a
``:param``, a ``:param`` for no prop, or a literal ``Default:`` that differs from the real default.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference.md"
START, END = "<!-- reference:start -->", "<!-- reference:end -->"
# The option groups, in the order FlaskBackend takes them.
OPTION_CLASSES = (
    "Resources",
    "Probes",
    "Shutdown",
    "Autoscaling",
    "NetworkPolicyOptions",
    "EgressRule",
    "Scheduling",
    "Migrations",
    "Metrics",
    "Ingress",
    "HttpRoute",
    "GatewayRef",
    "EnvFrom",
    "ExtraContainer",
)


class DocError(Exception):
    """The docstrings and the code disagree; the message says where."""


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    type: str
    default: str  # Markdown, ready for the table
    meaning: str


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"replace the section in {REFERENCE}")
    args = parser.parse_args(argv)
    try:
        reference = generate()
    except DocError as error:
        print(f"gen_reference.py: error: {error}", file=sys.stderr)
        return 1
    if args.write:
        REFERENCE.write_text(replace_section(REFERENCE.read_text(encoding="utf-8"), reference))
        print(f"updated the reference section of {REFERENCE}")
    else:
        print(reference, end="")
    return 0


def generate() -> str:
    import flask_backend
    from flask_backend.backend import FlaskBackend

    parts = [
        "## `FlaskBackend(scope, id, *, ...)`\n",
        "`id` is the construct id; it also names every object unless `name` is given. "
        "The props are keyword-only:\n",
        table(construct_rows(FlaskBackend)),
    ]
    for class_name in OPTION_CLASSES:
        # Each option class lives in the module of its concern: its attribute docstrings are
        # read from that module's source.
        cls = getattr(flask_backend, class_name)
        tree = ast.parse(Path(inspect.getfile(cls)).read_text(encoding="utf-8"))
        (node,) = (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
        summary = " ".join((inspect.getdoc(cls) or "").split())
        parts += [
            f"## `{class_name}`\n",
            f"{markdown(summary)}\n",
            table(dataclass_rows(cls, node)),
        ]
    return "\n".join(parts)


def construct_rows(construct: type) -> list[Row]:
    # inspect.signature(FlaskBackend) sees the jsii metaclass's (*args, **kwargs): read __init__.
    signature = inspect.signature(construct.__init__)
    params = parse_params(inspect.getdoc(construct.__init__) or "")
    props = [p for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
    missing = [p.name for p in props if p.name not in params]
    unknown = sorted(set(params) - {p.name for p in props})
    if missing or unknown:
        raise DocError(
            f"FlaskBackend.__init__ docstring: props without :param {missing}, "
            f":param for no prop {unknown}"
        )
    return [
        row(f"FlaskBackend {p.name}", p.name, str(p.annotation), p.default, params[p.name])
        for p in props
    ]


def dataclass_rows(cls: type, node: ast.ClassDef) -> list[Row]:
    docs = attribute_docs(node)
    rows = []
    for f in dataclasses.fields(cls):
        if f.name not in docs:
            raise DocError(f"{cls.__name__}.{f.name} has no docstring")
        default: Any = f.default
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        rows.append(row(f"{cls.__name__}.{f.name}", f.name, str(f.type), default, docs[f.name]))
    return rows


def parse_params(docstring: str) -> dict[str, str]:
    """`:param name: text` entries, continuation lines joined."""
    params: dict[str, str] = {}
    current = None
    for line in docstring.splitlines():
        match = re.match(r":param (\w+):\s*(.*)", line.strip())
        if match:
            current = match.group(1)
            params[current] = match.group(2)
        elif current and line.startswith((" ", "\t")) and line.strip():
            params[current] += " " + line.strip()
        else:
            current = None
    return params


def attribute_docs(node: ast.ClassDef) -> dict[str, str]:
    """The string literal right under each annotated field: `x: int = 1` then `\"\"\"doc\"\"\"`."""
    docs = {}
    for field, after in zip(node.body, node.body[1:], strict=False):
        if (
            isinstance(field, ast.AnnAssign)
            and isinstance(field.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field.target.id] = " ".join(after.value.value.split())
    return docs


def row(where: str, name: str, type_: str, default: Any, doc: str) -> Row:
    """Split `doc` into meaning and `Default:` text, checking a literal default against the code."""
    meaning, _, default_doc = " ".join(doc.split()).partition("Default:")
    meaning, default_doc = meaning.strip(), default_doc.strip().removesuffix(".")
    required = default is inspect.Parameter.empty or default is dataclasses.MISSING
    if required:
        if default_doc:
            raise DocError(f"{where} is required but documents Default: {default_doc}")
        shown = "required"
    elif not default_doc:
        raise DocError(f"{where} has a default ({default!r}) but its doc names no Default:")
    elif default_doc.startswith("- "):
        # The CDK convention: "- text" describes what happens, for computed defaults.
        shown = markdown(default_doc[2:])
    else:
        # A literal ("2", "\"FLASK_\"", "True (a note)"): must equal the real default.
        token = re.match(r'"[^"]*"|[^\s,(]+', default_doc)
        literal = token.group(0).rstrip(".") if token else ""
        try:
            documented = ast.literal_eval(literal)
        except (ValueError, SyntaxError):
            raise DocError(f"{where}: cannot read the literal in Default: {default_doc}") from None
        if documented != default or type(documented) is not type(default):
            raise DocError(f"{where} documents Default: {literal}, but the code has {default!r}")
        # Keep the note after the literal as written: "250 (a quarter core)", "256, equal to ...".
        shown = f"`{literal}`" + markdown(default_doc[len(token.group(0)) :] if token else "")
    return Row(name=name, type=type_, default=shown, meaning=markdown(meaning))


def markdown(text: str) -> str:
    """reST ``code`` to Markdown `code`; pipes escaped so table cells stay cells."""
    return re.sub(r"``(.+?)``", r"`\1`", text).replace("|", "\\|")


def table(rows: list[Row]) -> str:
    lines = ["| Name | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{r.name}` | `{r.type.replace('|', chr(92) + '|')}` | {r.default} | {r.meaning} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def replace_section(document: str, reference: str) -> str:
    """The document with the text between the markers replaced by `reference`."""
    before, start, rest = document.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"gen_reference.py: error: {REFERENCE} lacks the {START} / {END} markers")
    return f"{before}{START}\n{reference}{END}{after}"


def section(document: str) -> str:
    """The text between the markers, as `replace_section` writes it."""
    return document.partition(START)[2].partition(END)[0].removeprefix("\n")


if __name__ == "__main__":
    sys.exit(main())
