"""What optuna-dashboard shows beyond Optuna's own records: a markdown note per trial,
the study's custom plots, and the server itself."""

from __future__ import annotations

import logging
import socket
import threading

import optuna
from optuna.trial import TrialState
from optuna_dashboard import run_server, save_note, save_plotly_graph_object
from torch import nn

from nas.errors import UsageError
from nas.trial.result import TrialResult

log = logging.getLogger(__name__)

# The study's custom plots (optuna-dashboard draws neither a 3-D front nor hypervolume).
DASHBOARD_PLOTS = ("front_3d", "hypervolume", "layer_sparsity", "compression")
# Study user attr: the complete trials the stored custom plots were drawn from.
PLOTS_DRAWN_FOR = "dashboard_plots_drawn_for"


def trial_note(result: TrialResult, model: nn.Module) -> str:
    """A markdown summary of one finished trial: its numbers and a per-layer sparsity table."""
    compression = result.dense_params / max(result.nonzero_params, 1)
    lines = [
        f"**{result.arch}**",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| validation accuracy | {result.accuracy:.4f} (dense {result.dense_accuracy:.4f}) |",
        f"| test accuracy | {result.test_accuracy:.4f} |",
        f"| nonzero parameters | {result.nonzero_params:,} of {result.dense_params:,} "
        f"({compression:.1f}x smaller) |",
        f"| FLOPs per sample | {result.flops:,} of {result.dense_flops:,} |",
        f"| macro F1 / worst class accuracy | {result.macro_f1:.4f} / "
        f"{result.worst_class_accuracy:.4f} |",
        f"| agreement with the dense model | {result.agreement:.4f} "
        f"(KL {result.kl_divergence:.4f} nats) |",
        f"| expected calibration error | {result.ece:.4f} |",
        "",
        "| layer | weights | target sparsity | achieved |",
        "| --- | ---: | ---: | ---: |",
    ]
    for layer, target in result.sparsity_target.items():
        weights = model.get_submodule(layer).weight.numel()
        achieved = result.sparsity_achieved[layer]
        lines.append(f"| `{layer}` | {weights:,} | {target:.1%} | {achieved:.1%} |")
    return "\n".join(lines)


def save_trial_note(trial: optuna.Trial, result: TrialResult, model: nn.Module) -> None:
    """Attach `trial_note` to `trial` for the dashboard."""
    save_note(trial, trial_note(result, model))


def complete_trials_stamp(study: optuna.Study) -> dict:
    """How many complete trials `study` has and when the last one completed (ISO 8601,
    None without any): what its plots are drawn from."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    last = max((trial.datetime_complete for trial in trials), default=None)
    return {"complete_trials": len(trials), "last_complete": last.isoformat() if last else None}


def save_study_plots(study: optuna.Study) -> list[str]:
    """Store the 3-D front, hypervolume history and per-layer sparsity chart in `study`
    as dashboard custom plots, replacing earlier versions, unless they were drawn from the
    complete trials it has now; log a line for each plot that cannot be drawn. Returns the
    names of the plots stored."""
    stamp = complete_trials_stamp(study)
    if study.user_attrs.get(PLOTS_DRAWN_FOR) == stamp:
        return []
    from nas.report.plots import front_figures  # plotly and matplotlib load only when needed

    figures = front_figures(study, DASHBOARD_PLOTS)
    for name, reason in figures.skipped.items():
        log.info("study %r: dashboard plot %s not drawn (%s)", study.study_name, name, reason)
    for name, figure in figures.items():
        save_plotly_graph_object(study, figure, graph_object_id=name)
    study.set_user_attr(PLOTS_DRAWN_FOR, stamp)
    return list(figures)


def check_port(host: str, port: int) -> None:
    """Raise a one-line UsageError when the server could not listen on `host`:`port`."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UsageError(f"cannot serve the dashboard on {host}:{port}: {error}") from error


def serve(
    storage: optuna.storages.BaseStorage,
    artifact_store: optuna.artifacts.FileSystemArtifactStore,
    host: str,
    port: int,
) -> None:
    """Run optuna-dashboard over `storage` and `artifact_store` until Ctrl-C.

    The server runs in a daemon thread and the main thread only waits, so Ctrl-C always
    lands in the wait: inside a request, the WSGI server would catch it and go on serving.
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            run_server(storage, host=host, port=port, artifact_store=artifact_store)
        except Exception as error:  # e.g. the port is taken: reported by the main thread
            failure.append(error)

    check_port(host, port)
    print(f"optuna-dashboard: http://{host}:{port}/dashboard/  (Ctrl-C stops it)", flush=True)
    server = threading.Thread(target=run, name="optuna-dashboard", daemon=True)
    server.start()
    try:
        while server.is_alive():
            server.join(timeout=0.5)
    except KeyboardInterrupt:
        print("dashboard stopped")
        return
    if failure:
        raise UsageError(f"cannot serve the dashboard on {host}:{port}: {failure[0]}")
