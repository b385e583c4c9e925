#!/usr/bin/env python3
"""Writes the inputs and outputs tables of terraform/README.md from variables.tf and
outputs.tf (terraform-docs' job; it is not in this machine's registries). `--check` fails when
the README is not what the module says, as CI runs it."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "terraform"
BEGIN, END = "<!-- BEGIN GENERATED: inputs and outputs -->", "<!-- END GENERATED -->"


def blocks(text, kind):
    """(name, body) of each top-level `kind "name" { … }` block, by brace matching."""
    for m in re.finditer(r'^%s "([^"]+)" \{' % kind, text, re.M):
        depth, i = 0, m.end() - 1
        while True:
            c = text[i]
            depth += c == "{"
            depth -= c == "}"
            i += 1
            if depth == 0:
                break
        yield m.group(1), text[m.end():i - 1]


def attr(body, key):
    """A top-level attribute's raw value (one line, or a bracketed/heredoc block's first line)."""
    m = re.search(r'^  %s\s*=\s*(.*)$' % key, body, re.M)
    return m.group(1).strip() if m else None


def cell(s):
    return s.replace("|", "\\|")


def render():
    variables = (ROOT / "variables.tf").read_text()
    outputs = (ROOT / "outputs.tf").read_text()
    rows = ["## Inputs", "", "| name | description | type | default |", "| --- | --- | --- | --- |"]
    for name, body in blocks(variables, "variable"):
        desc = (attr(body, "description") or '""').strip('"').replace('\\"', '"')
        typ = attr(body, "type") or "any"
        if typ.endswith("(") or typ.endswith("[") or typ.endswith("({"):
            typ = typ.rstrip("([{ ") + "(…)"
        default = attr(body, "default")
        if default is None:
            default = "required"
        elif default.endswith("[") or default.endswith("{"):
            default = "see variables.tf"
        rows.append(f"| `{name}` | {cell(desc)} | `{cell(typ)}` | `{cell(default)}` |" if default != "required"
                    else f"| `{name}` | {cell(desc)} | `{cell(typ)}` | required |")
    rows += ["", "## Outputs", "", "| name | description |", "| --- | --- |"]
    for name, body in blocks(outputs, "output"):
        desc = (attr(body, "description") or '""').strip('"').replace('\\"', '"')
        rows.append(f"| `{name}` | {cell(desc)} |")
    return "\n".join(rows)


def main():
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    new = text[:start] + "\n" + render() + "\n" + text[end:]
    if "--check" in sys.argv:
        if new != text:
            sys.exit("terraform/README.md is out of date: run python3 scripts/terraform-docs.py")
        return
    readme.write_text(new)


if __name__ == "__main__":
    main()
