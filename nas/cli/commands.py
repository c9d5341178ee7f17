"""The commands that look at an existing study: `report`, `dashboard` and `export`."""

from __future__ import annotations

from pathlib import Path

import optuna
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.artifacts import FileSystemArtifactStore
from optuna.trial import FrozenTrial, TrialState

from nas.cli.config_dir import available_spaces
from nas.errors import NasError, UsageError, unwritable
from nas.prune.methods import ChannelPruning
from nas.record.attrs import ARCH, PREPROCESSING, REMOVED_CHANNELS, SPACE, TEST_ACCURACY
from nas.record.candidate import candidate_of
from nas.record.measures import metric, objective_names
from nas.report.dashboard import save_study_plots, serve
from nas.report.front import report_accuracy_at_sizes, report_front
from nas.search.configured import bound
from nas.search.recorded import recorded_config
from nas.search.storage import (
    STORAGE_ERRORS,
    existing_storage,
    load_named_study,
    made_by_nas,
    storage_error,
    storage_location,
)
from nas.studies.joint_search import run_search


class StudyAt:
    """An existing study's storage, artifact store and (lazily) the study itself."""

    def __init__(self, cfg: DictConfig, launch_dir: Path) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.url, store_dir = storage_location(cfg.study.storage, cfg.study.artifacts, launch_dir)
        self.store = FileSystemArtifactStore(store_dir)
        try:
            self.storage = existing_storage(self.url)
        except STORAGE_ERRORS as error:
            raise storage_error(self.url, error) from error
        self.name = given_study_name(cfg)

    def study(self) -> optuna.Study:
        """The study named by study.name (or the storage's only study)."""
        return made_by_nas(load_named_study(self.storage, self.name))


def given_study_name(cfg: DictConfig) -> str | None:
    """study.name; None when it is null, or when it defaults to the name of the space
    (`${hydra:runtime.choices.space}`) and the command names no space."""
    name = OmegaConf.to_container(cfg.study, resolve=False)["name"]
    if name is None or ("space" not in cfg and "runtime.choices.space" in str(name)):
        return None
    return str(cfg.study.name)


def require_space(cfg: DictConfig) -> None:
    """Raise a UsageError unless `cfg` has a search space (+space=NAME)."""
    if "space" not in cfg:
        spaces = ", ".join(available_spaces())
        raise UsageError(f"no search space given: add +space=NAME (available: {spaces})")


def search(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> None:
    """Run or resume the study for the chosen space (see `nas.studies.joint_search.run_search`)."""
    from nas.studies.sensitivity import check_layer_names

    require_space(cfg)
    check_layer_names(cfg)
    run_search(cfg, launch_dir, run_dir)


def train_supernet(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> None:
    """Train a train=supernet study's supernet, on every process torchrun started (see
    `nas.studies.supernet_training`); rank 0 prints what the study holds."""
    from nas.studies.supernet_training import run_supernet_training

    require_space(cfg)
    line = run_supernet_training(cfg, launch_dir)
    if line is not None:
        print(line)


def baseline(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> None:
    """Run or resume a baseline study beside the search (see `nas.studies.baseline`)."""
    from nas.studies.baseline import run_baseline
    from nas.studies.sensitivity import check_layer_names

    require_space(cfg)
    check_layer_names(cfg)
    run_baseline(cfg, launch_dir, run_dir)


def report(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> None:
    """Print the front of an existing study; write it as CSV and JSON, with its plots.
    With `retrain_seeds=N`, retrain the front with N other seeds (see `nas.studies.retrain`);
    with `cv_folds=K`, on K folds of its training pool (`nas.studies.cross_validation`)."""
    from nas.report.plots import write_plots
    from nas.studies.cross_validation import Folds, fold_count
    from nas.studies.retrain import Retrainer, Seeds, retrain_count, revalidate_front

    count = retrain_count(cfg.retrain_seeds)
    folds = fold_count(cfg.cv_folds)
    study = StudyAt(cfg, launch_dir).study()
    variations = []
    if count or folds:  # every value checked before any output
        retrainer = Retrainer.of_study(study, cfg, launch_dir)
        if count:
            variations.append(Seeds(retrainer.seed, count, retrainer.resolution))
        if folds:
            variations.append(Folds.of(retrainer, folds))
    report_front(study, run_dir)
    report_accuracy_at_sizes(study)
    paths = write_plots(study, run_dir, script_folder=run_dir.parent)  # shared by every run
    names = sorted({path.stem for path in paths if path.suffix == ".png"})
    print(f"plots written to {run_dir} as .html and .png: {', '.join(names)}")
    for name, reason in paths.skipped.items():
        print(f"  not drawn: {name} ({reason})")
    for variation in variations:
        revalidate_front(study, retrainer, variation, run_dir)


def dashboard(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> None:
    """Refresh the custom plots of every nas study in the storage, then serve the dashboard."""
    at = StudyAt(cfg, launch_dir)
    for summary in optuna.get_all_study_summaries(at.storage):
        study = optuna.load_study(study_name=summary.study_name, storage=at.storage)
        if SPACE.on(study):
            save_study_plots(study)
    serve(at.storage, at.store, str(cfg.dashboard.host), int(cfg.dashboard.port))


def pick_trial(study: optuna.Study, choice, best_within: float) -> FrozenTrial:
    """Trial number `choice`, or for `best` the one with the fewest nonzero parameters
    among finished trials whose validation accuracy is within `best_within` of the best."""
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not finished:
        raise UsageError(f"study {study.study_name!r} has no finished trial to export")
    if choice == "best":
        names = objective_names(study)
        accuracy = {trial.number: metric(trial, "accuracy", names) for trial in finished}
        top = max(accuracy.values())
        close = [trial for trial in finished if accuracy[trial.number] >= top - best_within]
        return min(
            close,
            key=lambda t: (metric(t, "nonzero_params", names), -accuracy[t.number]),
        )
    by_number = {trial.number: trial for trial in finished}
    if isinstance(choice, bool) or not isinstance(choice, int) or choice not in by_number:
        numbers = ", ".join(str(n) for n in sorted(by_number))
        raise UsageError(f"trial={choice!r} is not a finished trial; finished: {numbers}")
    return by_number[choice]


def export_stem(out: str | None, launch_dir: Path, default_name: str) -> Path:
    """The absolute path stem `export` writes to: `out`, a relative one taken from
    `launch_dir`; by default `exports/<default_name>` under `launch_dir`."""
    return launch_dir.absolute() / (out or Path("exports", default_name))


def export(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> None:
    """Rebuild a trial's pruned network, write it in the three export formats and print
    their sizes and the CPU latency of the dense and the exported network."""
    from nas.report.export import compare_latency, export_model
    from nas.search.weights import load_pruned_weights

    at = StudyAt(cfg, launch_dir)
    study = at.study()
    trial = pick_trial(study, cfg.trial, float(cfg.export.best_within))
    attrs = study.user_attrs
    space = instantiate(OmegaConf.create(recorded_config(study, "space")))
    in_shape, n_classes = tuple(attrs["in_shape"]), attrs["n_classes"]
    bound(space, in_shape, n_classes)
    candidate = candidate_of(space, trial.params, trial.number)
    model = space.build(candidate, in_shape, n_classes)
    removed_channels = REMOVED_CHANNELS.of(trial)
    if removed_channels:  # prune=channel: give the network its pruned shapes first
        ChannelPruning().replay(model, removed_channels, torch.zeros(2, *in_shape))
    try:
        model.load_state_dict(load_pruned_weights(at.store, at.storage, trial))
    except LookupError as error:
        raise UsageError(str(error)) from error
    model.eval()
    out = export_stem(cfg.out, launch_dir, f"{study.study_name}-trial{trial.number}")
    if error := unwritable(out.parent):
        raise NasError(f"cannot write the exported files in {out.parent} (out): {error}")
    files = export_model(model, in_shape, out, PREPROCESSING.of(study))
    dense = space.build(candidate, in_shape, n_classes).eval()
    print(
        f"trial {trial.number} of study {study.study_name!r}: {ARCH.of(trial)}, "
        f"validation accuracy {metric(trial, 'accuracy', objective_names(study)):.4f}, "
        f"test {TEST_ACCURACY.of(trial):.4f}"
    )
    for path, size in files.sizes():
        print(f"  {path}  {size:,} bytes")
    if PREPROCESSING.of(study) is None:
        print("  no preprocessing: the study's data were generated, not read from image files")
    else:
        print(f"  preprocessing and class names beside them: {out}.preprocessing.json")
    latency = compare_latency(dense, files.program, in_shape)
    print(f"CPU latency, dense network vs exported program: {latency}")


def sensitivity(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> None:
    """Prune each layer of one architecture alone at each sparsity of sensitivity.grid:
    the space's largest, `baseline.arch`, or trial `sensitivity.trial` of study.name
    (see `nas.studies.sensitivity`)."""
    from nas.studies.sensitivity import run_sensitivity, with_trial

    require_space(cfg)
    if cfg.sensitivity.trial is None:
        run_sensitivity(cfg, launch_dir, run_dir)
        return
    if cfg.baseline.arch:
        raise UsageError("give baseline.arch or sensitivity.trial, not both")
    study = StudyAt(cfg, launch_dir).study()
    trial = pick_trial(study, cfg.sensitivity.trial, float(cfg.export.best_within))
    source = f"trial {trial.number} of study {study.study_name!r}"
    run_sensitivity(with_trial(cfg, study, trial), launch_dir, run_dir, source)


def space_info(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> None:
    """Print what the space searches, on the configured data, without training: for a
    space derived from a network its groups, their layers and widths, and every frozen
    layer with its reason; for any space the parameters one candidate draws."""
    from nas.search.configured import configured_space

    require_space(cfg)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = configured_space(cfg)
    for line in getattr(space, "summary", lambda: [])():
        print(line)
    trial = optuna.create_study().ask()
    candidate = space.sample(trial)
    print(f"trial parameters ({len(trial.distributions)}), one candidate drawn:")
    for name, distribution in trial.distributions.items():
        print(f"  {name}: {_choices(distribution)}")
    print(f"e.g. {space.describe(candidate)}")


def _choices(distribution: optuna.distributions.BaseDistribution) -> str:
    """What a trial parameter may take, in a few words."""
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return ", ".join(map(str, distribution.choices))
    step = getattr(distribution, "step", None)
    return f"{distribution.low} to {distribution.high}" + (f" step {step}" if step else "")


def predict(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> None:
    """Label every image under folder `predict.images` with the exported network
    `predict.model`: print a line per image (path, class, probability) and write them to
    predictions.csv in the run folder."""
    import csv

    from torchvision.datasets.folder import IMG_EXTENSIONS

    from nas.report.predictor import load_predictor

    model, images = cfg.predict.model, cfg.predict.images
    if model is None or images is None:
        raise UsageError("predict needs predict.model=EXPORTED_FILE and predict.images=FOLDER")
    folder = launch_dir / str(images)
    # the files `data=folder` reads as images
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS)
    if not files:
        raise UsageError(
            f"predict.images: no image files ({', '.join(IMG_EXTENSIONS)}) under '{folder}'"
        )
    try:
        predictor = load_predictor(launch_dir / str(model))
    except (OSError, ValueError) as error:
        raise UsageError(f"predict.model: {str(error).splitlines()[0]}") from error
    run_dir.mkdir(parents=True, exist_ok=True)
    table = run_dir / "predictions.csv"
    with table.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["image", "class", "probability"])
        for path in files:
            try:
                label, probability = predictor(path)
            except OSError as error:
                raise UsageError(
                    f"predict.images: cannot read '{path}' ({type(error).__name__})"
                ) from error
            writer.writerow([path.relative_to(folder), label, f"{probability:.4f}"])
            print(f"{path.relative_to(folder)}\t{label}\t{probability:.4f}")
    print(f"predictions written to {table}")
