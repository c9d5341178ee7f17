"""Command line: `python -m nas <command> [hydra overrides]` (also installed as `nas`).

The command word is taken off the argument list first, then Hydra composes `conf/`
with the remaining overrides and hands the config to the command's plain function.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from pathlib import Path

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nas.cli.config_dir import CONF_DIR, available_spaces
from nas.errors import NasError, SearchInterrupted, UsageError, unwritable
from nas.search.interrupts import INTERRUPTS
from nas.search.secrets import move_password_to_env

USAGE = "usage: python -m nas <command> [hydra overrides]   (or: nas <command> ...)"


def main_help() -> str:
    """The text of `python -m nas --help`."""
    lines = [USAGE, "", "commands:"]
    width = max(map(len, COMMANDS)) + 2
    lines += [f"  {name:<{width}}{summary}" for name, summary in COMMANDS.items()]
    lines += [
        "",
        f"search spaces (+space=NAME): {', '.join(available_spaces())}",
        "`python -m nas <command> --help` shows the config groups and every option.",
    ]
    return "\n".join(lines)


def normalise_overrides(overrides: list[str]) -> list[str]:
    """Accept `space=X` as `+space=X`, reject a space that conf/space/ lacks, and take the
    password out of a `study.storage` URL (see `move_password_to_env`)."""
    result = []
    for override in overrides:
        key, sep, value = override.partition("=")
        if sep and key.lstrip("+~") == "study.storage":
            override = f"{key}={move_password_to_env(value)}"
        if sep and key.lstrip("+") == "space":
            if value not in available_spaces():
                raise UsageError(
                    f"unknown search space {value!r}; available: {', '.join(available_spaces())}"
                )
            override = f"+space={value}"
        result.append(override)
    return result


def composition_error(overrides: list[str]) -> str | None:
    """Why Hydra cannot compose the config with `overrides` (an unknown key, a missing
    group option, bad override syntax), as one line; None when it can."""
    try:
        with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
            compose(config_name="config", overrides=overrides)
    except HydraException as error:
        text = str(error).split("Config search path:")[0]
        head, _, options = text.partition("Available options in")
        lines = [line.strip() for line in head.splitlines()]
        message = " ".join(line for line in lines if line and not line.startswith("See http"))
        if options:
            group, _, names = options.partition(":")
            message += f"; available options in{group}: {', '.join(names.split())}"
        if isinstance(error, OverrideParseException):
            message = f"override {_unparsable(overrides)!r}: {message}"
        return message
    return None


def run_folder_error(overrides: list[str]) -> str | None:
    """Why Hydra could not make the command's run folder (hydra.run.dir): the folder it
    goes in cannot be made or written (a read-only or full disk), as one line; None when
    it can, or when the path is known only once Hydra runs."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF_DIR)):
        config = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    try:
        folder = Path(config.hydra.run.dir).parent
    except OmegaConfBaseException:  # e.g. ${hydra:...}, resolved only in Hydra's run
        return None
    if error := unwritable(folder):
        return f"cannot write the run folder under {folder} (hydra.run.dir): {error}"
    return None


def _unparsable(overrides: list[str]) -> str:
    """The first of `overrides` that Hydra's override grammar rejects."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException:
            return override
    return " ".join(overrides)


# Each command is the function of that name in nas/cli/commands.py.
COMMANDS = {
    "search": "run or resume a joint architecture + per-layer sparsity search; print its front",
    "report": "print the front of a study; write CSV, JSON and plots",
    "dashboard": "open optuna-dashboard on the study storage",
    "export": "write a trial's pruned network (trial=N or best) to files",
    "train-supernet": "train a train=supernet study's supernet, on all processes torchrun starts",
    "baseline": "prune one architecture by a heuristic (method=lamp, ...) or run two_stage",
    "sensitivity": "prune each layer alone at a grid of sparsities; plot accuracy, write caps",
    "predict": "label a folder of images with an exported network (predict.model, predict.images)",
    "space-info": "print what a space searches (groups, widths, frozen layers), training nothing",
}


# Commands that train every network from scratch, whatever a space searches with: a
# space may default to weight sharing (conf/space/mlp.yaml), these keep train=default
# unless told otherwise.
FROM_SCRATCH = ("baseline", "sensitivity")


def command_overrides(command: str, overrides: list[str]) -> list[str]:
    """`overrides` with what `command` implies: `train=default` for the commands that
    train from scratch, unless a `train=` override is given."""
    if command in FROM_SCRATCH and not any(o.startswith("train=") for o in overrides):
        return [*overrides, "train=default"]
    return overrides


def fail(message: str, exit_code: int = 2) -> int:
    """Print one error line; returns `exit_code` (2: bad input)."""
    print(f"nas: error: {message}", file=sys.stderr)
    return exit_code


def ended(error: NasError) -> int:
    """Print `error` as one line, `nas: error: ...` or, for an interrupt (not an error),
    `nas: ...`; returns its exit code."""
    if error.is_error:
        return fail(str(error), error.exit_code)
    print(f"nas: {error}", file=sys.stderr)
    return error.exit_code


def drop_unused_run_dir(run_dir: Path) -> None:
    """Remove the run folder of a refused command when it holds nothing but Hydra's own
    record of the run (`.hydra`) and empty files."""
    if not run_dir.is_dir():
        return
    entries = list(run_dir.iterdir())
    if all(e.name == ".hydra" or (e.is_file() and not e.stat().st_size) for e in entries):
        shutil.rmtree(run_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m nas` and the `nas` script; returns the exit code. Ctrl-C
    or SIGTERM ends any command with one line and 128 + the signal number (see
    `nas.search.interrupts`)."""
    try:
        with INTERRUPTS.catching():
            return run_command(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt as interrupt:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        signum = getattr(interrupt, "signum", signal.SIGINT)
        return ended(SearchInterrupted(f"interrupted by {signal.Signals(signum).name}", signum))


def run_command(args: list[str]) -> int:
    """Run the command `args` names with its overrides; returns the exit code."""
    if not args or args[0] in ("-h", "--help"):
        print(main_help())
        return 0 if args else 2
    command, overrides = args[0], args[1:]
    if command not in COMMANDS:
        return fail(f"unknown command {command!r}; commands: {', '.join(COMMANDS)}")
    # Hydra's own flags (`--help`, `--cfg`, `-m`, ...) and its full errors are left to Hydra
    full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
    checked = not full_error and not any(override.startswith("-") for override in overrides)
    try:
        overrides = command_overrides(command, normalise_overrides(overrides))
    except UsageError as error:
        return fail(str(error))
    if checked and (error := composition_error(overrides)):
        return fail(error)
    OmegaConf.register_new_resolver("pid", os.getpid, replace=True)  # used by hydra.run.dir
    if checked and (error := run_folder_error(overrides)):
        return fail(error, 1)

    @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
    def app(cfg: DictConfig) -> None:
        try:
            from nas.cli import commands  # torch and optuna load only when a command runs

            run_dir = Path(HydraConfig.get().runtime.output_dir)
            run = getattr(commands, command.replace("-", "_"))
            run(cfg, launch_dir=Path.cwd(), run_dir=run_dir)
        except NasError as error:
            if full_error:
                raise
            drop_unused_run_dir(Path(HydraConfig.get().runtime.output_dir))
            sys.exit(ended(error))
        except Exception as error:
            from nas.search.storage import io_failure

            if full_error or (message := io_failure(error)) is None:
                raise
            drop_unused_run_dir(Path(HydraConfig.get().runtime.output_dir))
            sys.exit(fail(message, 1))

    sys.argv = [f"nas {command}", *overrides]
    app()
    return 0


if __name__ == "__main__":
    sys.exit(main())
