"""MkDocs hook: pages generated at build time from the repository itself.

- `reference/config/*.md`: the configuration reference, one page per Hydra config group of
  `conf/` (and one for the top-level keys of `conf/config.yaml`). Every option of a group is
  composed by Hydra as the command line would compose it (`group=option`), so inherited
  keys (`train=supernet` from `train=default`) show their composed defaults; each key's
  meaning is the comment written beside it, or above it, in the YAML file.
- `notebook.md`: `benchmarks/RESULTS.md`, the benchmarks' lab notebook, with its figures,
  so that the results page can link to its sections.

Nothing here is written into `docs/`: the pages exist only in the built site.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"

# The one line of prose per group that the YAML files cannot hold (a group has no file of
# its own); everything else on the pages comes from conf/.
GROUP_TITLES = {
    "space": "the search space (required)",
    "data": "datasets",
    "train": "training and fine-tuning",
    "prune": "pruning methods",
    "schedule": "pruning schedules",
    "sampler": "Optuna samplers",
    "study": "the study: storage, budget, siblings, retries",
    "debug": "debug runs",
}
# Groups picked with `+group=` (not in the defaults list).
PLUS_GROUPS = {"space", "debug"}

KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w.]*)\s*:(?P<rest>(?:\s.*)?)$")
INLINE_COMMENT = re.compile(r"(?:^|\s)#(?P<comment>.*)$")


@dataclass
class KeyComment:
    """A key's comment, or the key it continues the comment of."""

    text: list[str] = field(default_factory=list)
    continues: str | None = None  # dotted key whose comment this key's line continues


@dataclass
class ParsedYaml:
    description: list[str]
    keys: dict[str, KeyComment]


def parse_comments(text: str) -> ParsedYaml:
    """The comments of a Hydra YAML file: the file's leading comment block (its
    description), and for every key (dotted for nested mappings) the comment on its line,
    or the block of comment lines just above it. A comment that goes on (an inline comment
    opening with two spaces or more, `#   ...`, or a comment line indented deeper than the
    key above it) continues the comment of the key above (or of the key whose comment that
    one continues)."""
    lines = text.splitlines()
    description: list[str] = []
    i = 0
    while i < len(lines) and lines[i].lstrip().startswith("#"):
        line = lines[i].strip()[1:].strip()
        if not line.startswith("@package"):
            description.append(line)
        i += 1
    keys: dict[str, KeyComment] = {}
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    pending: list[str] = []  # comment lines above the next key
    owner: str | None = None  # the key whose comment the last key line's comment is
    last_indent = -1  # indentation of the last key line
    for line in lines[i:]:
        stripped = line.strip()
        if not stripped:
            pending = []
            continue
        if stripped.startswith("#"):
            indent = len(line) - len(line.lstrip())
            body = stripped[1:].strip()
            if indent > last_indent >= 0 and owner and not pending:
                keys[owner].text.append(body)
            else:
                pending.append(body)
            continue
        if stripped.startswith("-"):  # a list item (the defaults list): no key
            pending = []
            continue
        match = KEY_LINE.match(line)
        if not match:
            pending = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        dotted = ".".join([key for _, key in stack] + [match["key"]])
        rest = match["rest"] or ""
        comment = INLINE_COMMENT.search(rest)
        entry = KeyComment(text=list(pending))
        if comment:
            raw = comment["comment"]
            if raw.startswith("  ") and owner and not pending:
                keys[owner].text.append(raw.strip())
                entry.continues = owner
            else:
                entry.text.append(raw.strip())
            rest = rest[: comment.start()]
        keys[dotted] = entry
        owner = entry.continues or dotted
        pending = []
        last_indent = indent
        if not rest.strip():  # a mapping opens
            stack.append((indent, match["key"]))
    return ParsedYaml(description, keys)


def inherited_defaults(path: Path) -> list[Path]:
    """The files of the same group that `path`'s own defaults list names (`- default`)."""
    names, in_defaults = [], False
    for line in path.read_text().splitlines():
        if re.match(r"^defaults\s*:", line):
            in_defaults = True
            continue
        if in_defaults:
            item = re.match(r"^\s*-\s*([\w/]+)\s*$", line)
            if item:
                if item[1] != "_self_" and "/" not in item[1]:
                    names.append(item[1])
                continue
            if line.strip() and not line.startswith(" "):
                in_defaults = False
    return [path.with_name(f"{name}.yaml") for name in names]


def format_value(value) -> str:
    """A config value as YAML's flow style writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def markdown_text(text: str) -> str:
    """Comment text for a table cell: code spans kept, HTML and table syntax escaped."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for part in parts:
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(part)
        else:
            escaped = html.escape(part, quote=False)
            for char in "|*_[]":
                escaped = escaped.replace(char, "\\" + char)
            out.append(escaped)
    return "".join(out)


def code(value: str) -> str:
    """`value` as a code span that a table cell can hold."""
    value = value.replace("|", "\\|")
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def flatten(node, prefix: str) -> list[tuple[str, object, bool]]:
    """(dotted key, value, is a mapping) for every key under `node`, depth first."""
    rows = []
    for key, value in node.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            rows.append((dotted, None, True))
            rows += flatten(value, dotted)
        else:
            rows.append((dotted, value, False))
    return rows


def compose(overrides: list[str]) -> dict:
    """conf/ composed by Hydra with `overrides`, interpolations left as written."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = hydra_compose(config_name="config", overrides=overrides)
    return OmegaConf.to_container(cfg, resolve=False)


def defaults_list() -> dict[str, str]:
    """Group -> default option, from conf/config.yaml's defaults list."""
    defaults = {}
    for line in (CONF / "config.yaml").read_text().splitlines():
        item = re.match(r"^\s*-\s*(\w+)\s*:\s*(\w+)\s*$", line)
        if item:
            defaults[item[1]] = item[2]
    return defaults


def groups() -> list[str]:
    """The config groups of conf/, in the order of the defaults list, then the others."""
    found = sorted(p.name for p in CONF.iterdir() if p.is_dir() and any(p.glob("*.yaml")))
    ordered = [g for g in defaults_list() if g in found]
    return (
        ["space"] * ("space" in found)
        + ordered
        + [g for g in found if g not in ordered and g != "space"]
    )


def key_table(
    rows: list[tuple[str, object, bool]], comments: dict[str, KeyComment], origin: dict[str, str]
) -> list[str]:
    """The markdown table of `rows`: key, default, meaning."""
    out = ["| key | default | meaning |", "| --- | --- | --- |"]
    for dotted, value, is_mapping in rows:
        entry = comments.get(dotted, KeyComment())
        if entry.continues:
            meaning = f"see `{entry.continues}` above"
        else:
            meaning = markdown_text(" ".join(entry.text))
        if dotted in origin:
            meaning = (meaning + " " if meaning else "") + f"(from `{origin[dotted]}`)"
        default = "" if is_mapping else code(format_value(value))
        out.append(f"| {code(dotted)} | {default} | {meaning} |")
    return out


def option_comments(path: Path, group: str) -> tuple[dict[str, KeyComment], dict[str, str]]:
    """The comments of an option's keys, dotted from the config root, with those of the
    options it inherits from; and for inherited keys, the option they come from."""
    comments: dict[str, KeyComment] = {}
    origin: dict[str, str] = {}
    for parent in inherited_defaults(path):
        for key, entry in parse_comments(parent.read_text()).keys.items():
            dotted = f"{group}.{key}"
            comments[dotted] = _rooted(entry, group)
            origin[dotted] = f"{group}={parent.stem}"
    own = parse_comments(path.read_text())
    for key, entry in own.keys.items():
        dotted = f"{group}.{key}"
        comments[dotted] = _rooted(entry, group)
        origin.pop(dotted, None)
    return comments, origin


def _rooted(entry: KeyComment, prefix: str) -> KeyComment:
    continues = f"{prefix}.{entry.continues}" if entry.continues and prefix else entry.continues
    return KeyComment(list(entry.text), continues)


def group_page(group: str) -> str:
    """The reference page of one config group."""
    default = defaults_list().get(group)
    options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
    if default in options:
        options.remove(default)
        options.insert(0, default)
    pick = f"+{group}=NAME" if group in PLUS_GROUPS else f"{group}=NAME"
    lines = [
        f"# `{group}`: {GROUP_TITLES.get(group, 'config group')}",
        "",
        "*Generated from `conf/" + group + "/*.yaml` when the site is built.*",
        "",
        f"Pick an option with `{pick}`"
        + (f"; the default is `{default}`." if default else "; there is no default.")
        + " Any key below can then be set on the command line, e.g. "
        + f"`{_example(group, options)}`.",
        "",
        "| option | file |",
        "| --- | --- |",
    ]
    lines += [f"| [`{name}`](#{name}) | `conf/{group}/{name}.yaml` |" for name in options]
    for name in options:
        path = CONF / group / f"{name}.yaml"
        parsed = parse_comments(path.read_text())
        lines += ["", f"## `{name}`", ""]
        if name == default:
            lines += ["*The default option.*", ""]
        selector = f"+{group}={name}" if group in PLUS_GROUPS else f"{group}={name}"
        if parsed.description:
            lines += [markdown_text(" ".join(parsed.description)), ""]
        lines += [f"Selected with `{selector}`.", ""]
        if group == "debug":  # a global package: its keys are the config root's
            lines += _global_option(path, parsed)
            continue
        composed = compose(_with_space([selector]))
        node = composed.get(group) or {}
        comments, origin = option_comments(path, group)
        lines += key_table(flatten(node, group), comments, origin)
    return "\n".join(lines) + "\n"


def _global_option(path: Path, parsed: ParsedYaml) -> list[str]:
    """The rows of an `@package _global_` option: the keys it sets anywhere in the config,
    with the values it gives them, and the group options it overrides."""
    composed = compose(_with_space([f"+{path.parent.name}={path.stem}"]))
    lines = []
    overrides = re.findall(r"^\s*-\s*override\s+/(\w+)\s*:\s*(\w+)", path.read_text(), re.M)
    if overrides:
        lines += [
            "It also picks " + ", ".join(f"`{g}={o}`" for g, o in overrides) + ".",
            "",
        ]
    rows = []
    for dotted, _entry in parsed.keys.items():
        node = composed
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if dotted == "defaults" or isinstance(node, dict):
            continue
        rows.append((dotted, node, False))
    return lines + key_table(rows, parsed.keys, {})


def _with_space(overrides: list[str]) -> list[str]:
    """Overrides with a space picked (interpolations such as study.name need one)."""
    if any(o.startswith("+space=") for o in overrides):
        return overrides
    return ["+space=cnn", *overrides]


def _example(group: str, options: list[str]) -> str:
    composed = compose(_with_space([]))
    node = composed.get(group)
    if group in PLUS_GROUPS or not isinstance(node, dict):
        return f"+{group}={options[0]}" if options else f"+{group}=NAME"
    for key, value in node.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"{group}.{key}={format_value(value)}"
    return f"{group}={options[0]}"


def top_level_page() -> str:
    """The reference page of the keys conf/config.yaml sets itself."""
    parsed = parse_comments((CONF / "config.yaml").read_text())
    composed = compose(["+space=cnn"])
    skip = set(groups())
    rows = []
    for key, value in composed.items():
        if key in skip:
            continue
        if isinstance(value, dict) and value:
            rows.append((key, None, True))
            rows += flatten(value, key)
        else:
            rows.append((key, value, False))
    lines = [
        "# Top-level keys",
        "",
        "*Generated from `conf/config.yaml` when the site is built.*",
        "",
        markdown_text(" ".join(parsed.description)),
        "",
        "The defaults list picks one option of each group:",
        "",
        "| group | default | reference |",
        "| --- | --- | --- |",
    ]
    defaults = defaults_list()
    for group in groups():
        pick = defaults.get(group, f"none: `+{group}=NAME`")
        pick = f"`{pick}`" if group in defaults else pick
        lines.append(f"| `{group}` | {pick} | [{group}]({group}.md) |")
    lines += [
        "",
        "Beside the groups, `conf/config.yaml` sets these keys (the commands other than "
        "`search` read most of them):",
        "",
    ]
    lines += key_table(rows, parsed.keys, {})
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    """Every generated page: site path -> markdown."""
    result = {"reference/config/index.md": top_level_page()}
    for group in groups():
        result[f"reference/config/{group}.md"] = group_page(group)
    title, _, rest = RESULTS.read_text().partition("\n")
    result["notebook.md"] = (
        f"{title}\n\n*This page is `benchmarks/RESULTS.md`, the benchmarks' lab notebook, "
        "as it stands in the repository.*\n" + rest
    )
    return result


def on_files(files, config):
    """MkDocs hook: add the generated pages and the notebook's figures to the site."""
    from mkdocs.structure.files import File

    for path, content in pages().items():
        files.append(File.generated(config, path, content=content))
    for figure in sorted(RESULTS.parent.glob("*.png")):  # the images the notebook shows
        files.append(File.generated(config, figure.name, abs_src_path=str(figure)))
    return files
