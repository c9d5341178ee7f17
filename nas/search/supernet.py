"""The study's one supernet (`train=supernet`): trained once, by one worker, kept in the
study's artifact store after every epoch, resumed after a crash and reused by every
worker and every later run of the study.

The study's user attr `supernet` records the settings it is trained with, the epochs
done and the budget they cost; only the worker training it writes it. Who trains it is
decided by the storage itself: claim number n is the creation of a study named
`<study>:supernet-claim-<n>`, which only one worker can create (study names are unique
in every storage). The winner records `supernet_claims` = n + 1 and renews
`supernet_heartbeat` every `study.heartbeat_interval` seconds while it trains. Every
other worker waits, polling at that interval, until the epochs are done; when the
heartbeat is older than `study.grace_period` (the trainer died), they race for claim
n + 1 the same way, and the winner resumes after the last saved epoch. The claim studies
are deleted once the supernet is trained; `report`, `export` and the dashboard never list
them. A saved state that cannot be read (cut short,
overwritten) is reported and deleted, and the record set back to the last epoch whose
state can be read, so that training resumes after it (from scratch if none can).
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import optuna
import torch
from optuna.artifacts import get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

from nas.data import Splits
from nas.errors import UsageError
from nas.optuna_internals import storage_of
from nas.progress import progress
from nas.record.attrs import SUPERNET
from nas.search.checkpoints import UnreadableCheckpoint, load_checkpoint
from nas.search.interrupts import INTERRUPTS
from nas.search.storage import claim_study_name
from nas.space import Candidate
from nas.supernet.elastic import Supernet
from nas.supernet.ranks import ALONE, Ranks
from nas.supernet.sandwich import RandomArchitectures, SupernetSettings, sandwich_epoch

log = logging.getLogger(__name__)

CLAIMS = "supernet_claims"
HEARTBEAT = "supernet_heartbeat"


def checkpoint_name(epoch: int) -> str:
    """The artifact file name of the supernet state after `epoch`."""
    return f"supernet-epoch{epoch:03d}.pt"


def record_of(study: optuna.Study) -> dict:
    """The study's supernet record, read from the storage now (empty before the supernet
    is first claimed)."""
    return dict(SUPERNET.of(study))


class SupernetTrainer:
    """Makes sure `study` holds its trained supernet and hands it out.

    Args:
        study: the study the supernet belongs to.
        store: the study's artifact store.
        make: builds the untrained supernet (the space's `supernet` for the data).
        splits: the data, on the training device.
        settings: how to train it.
        smallest: the space's smallest architecture (the sandwich's bottom).
        sample: the space's `sample`, to draw random architectures.
        batch_size: training batch size.
        seed: the search's seed.
        heartbeat_interval, grace_period: the study's (see nas.search.settings).
        ranks: the processes training it together (`nas.supernet.ranks`): rank 0 alone
            claims, saves and records it, every rank trains on its share of each batch.
    """

    def __init__(
        self,
        study: optuna.Study,
        store: optuna.artifacts.FileSystemArtifactStore,
        make: Callable[[], Supernet],
        splits: Splits,
        settings: SupernetSettings,
        smallest: Candidate,
        sample: Callable[[optuna.Trial], Candidate],
        batch_size: int,
        seed: int,
        heartbeat_interval: int,
        grace_period: int,
        ranks: Ranks = ALONE,
    ) -> None:
        self.study, self.store, self.make = study, store, make
        self.splits, self.settings, self.smallest, self.sample = splits, settings, smallest, sample
        self.batch_size, self.seed = batch_size, seed
        self.heartbeat_interval, self.grace_period = heartbeat_interval, grace_period
        self.ranks = ranks

    def ready(self) -> Supernet:
        """The trained supernet: loaded when it is done, else trained here or waited for.
        Rank 0 decides which, and every rank follows."""
        announced = False
        while True:
            step, value = self.ranks.from_leader(self._next_step() if self.ranks.leader else None)
            if step == "trained":
                return self._built(value)
            if step == "train":
                return self._train(value)
            if not announced:
                log.info("waiting for another worker to train the study's supernet")
                announced = True
            time.sleep(self.heartbeat_interval)

    def _next_step(self) -> tuple[str, object]:
        """("trained", its weights) when the supernet is done and readable; else ("train",
        the epochs done) when this worker won the claim to train it; else ("wait", None)."""
        if record_of(self.study).get("epochs_done", 0) >= self.settings.epochs:
            done, state = self._last_readable(self.settings.epochs)
            if done == self.settings.epochs:
                return "trained", state["supernet"]
        if self._claim():
            return "train", record_of(self.study).get("epochs_done", 0)
        return "wait", None

    def _claim(self) -> bool:
        """Whether this worker won the next claim: the first one, or the one after a
        trainer whose heartbeat is older than the grace period. A signal waits until the
        claim is recorded: a claim study without its count would block every later run."""
        with INTERRUPTS.holding():
            return self._try_claim()

    def _try_claim(self) -> bool:
        attrs = self.study.user_attrs
        claims = attrs.get(CLAIMS, 0)
        if claims and time.time() - attrs.get(HEARTBEAT, 0.0) < self.grace_period:
            return False
        try:
            optuna.create_study(study_name=self._claim_name(claims), storage=storage_of(self.study))
        except optuna.exceptions.DuplicatedStudyError:
            return False
        self.study.set_user_attr(HEARTBEAT, time.time())
        self.study.set_user_attr(CLAIMS, claims + 1)
        self._write()
        return True

    def _claim_name(self, number: int) -> str:
        return claim_study_name(self.study.study_name, number)

    def _release(self) -> None:
        """Delete the claim studies, once the supernet is trained."""
        for number in range(self.study.user_attrs.get(CLAIMS, 0)):
            try:
                optuna.delete_study(
                    study_name=self._claim_name(number), storage=storage_of(self.study)
                )
            except KeyError:  # deleted already
                pass

    def _write(self, **changes) -> None:
        """Update the study's supernet record (only the worker training it writes it)."""
        record = record_of(self.study)
        record.update(changes, settings=asdict(self.settings))
        SUPERNET.set(self.study, record)

    def _train(self, done: int) -> Supernet:
        """Train epochs `done + 1` to the last, saving the state after each; returns it."""
        leader = self.ranks.leader
        stop = threading.Event()
        beat = threading.Thread(target=self._beat, args=(stop,), daemon=True)
        if leader:
            beat.start()  # first: building and loading must not look like a dead trainer
        try:
            done, state = self.ranks.from_leader(self._last_readable(done) if leader else None)
            supernet = self._built(state["supernet"]) if state else self._initial()
            optimizer = torch.optim.Adam(supernet.parameters(), lr=self.settings.lr)
            if state:
                optimizer.load_state_dict(state["optimizer"])
            record = record_of(self.study)  # what training cost so far, lost epochs too
            spent, flops = record.get("train_epochs", 0), record.get("train_flops", 0)
            for epoch in progress(
                range(done + 1, self.settings.epochs + 1), desc="supernet", unit="epoch",
                initial=done, total=self.settings.epochs, leave=False, disable=not leader,
            ):  # fmt: skip
                draws = RandomArchitectures(self.sample, seed=self.seed * 1000 + epoch)
                generator = torch.Generator().manual_seed(self.seed * 1000 + epoch)
                tally = sandwich_epoch(
                    supernet, optimizer, self.splits, self.settings, self.smallest, draws,
                    self.batch_size, generator, epoch, self.ranks,
                )  # fmt: skip
                spent, flops = spent + tally.passes, flops + 3 * tally.flops
                if leader:
                    self._save(epoch, supernet, optimizer)
                    self._write(epochs_done=epoch, train_epochs=round(spent, 6), train_flops=flops)
                    log.info(
                        "supernet epoch %d of %d: loss %.4f",
                        epoch, self.settings.epochs, tally.loss,
                    )  # fmt: skip
        finally:
            stop.set()
            if leader:
                beat.join()
        if leader:
            self._release()
        return supernet.eval()

    def _initial(self) -> Supernet:
        """The untrained supernet, its weights drawn from the search's seed (not from
        whatever torch's global generator holds), on the training device."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return self.make().to(self.splits.train_x.device)

    def _beat(self, stop: threading.Event) -> None:
        """Renew the heartbeat until `stop` is set; a failed write is logged and retried."""
        while not stop.wait(self.heartbeat_interval):
            try:
                self.study.set_user_attr(HEARTBEAT, time.time())
            except Exception:  # the storage is busy: the next beat tries again
                log.debug("supernet heartbeat not written", exc_info=True)

    def _save(self, epoch: int, supernet: Supernet, optimizer: torch.optim.Optimizer) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / checkpoint_name(epoch)
            torch.save(
                {"supernet": supernet.state_dict(), "optimizer": optimizer.state_dict()}, path
            )
            upload_artifact(
                artifact_store=self.store, file_path=str(path), study_or_trial=self.study
            )

    def _state(self, epoch: int) -> dict:
        """The saved state after `epoch`; UnreadableCheckpoint (the file deleted) when it
        cannot be read."""
        name = checkpoint_name(epoch)
        metas = [m for m in get_all_artifact_meta(self.study) if m.filename == name]
        missing = UsageError(
            f"study {self.study.study_name!r} records {epoch} supernet epochs but its "
            f"artifact store has no {name}; point study.artifacts at the study's store"
        )
        if not metas:
            raise missing
        try:
            return load_checkpoint(self.store, metas[-1], self.splits.train_x.device)
        except ArtifactNotFound:  # recorded, but the file is not in this store
            raise missing from None

    def _last_readable(self, epoch: int) -> tuple[int, dict | None]:
        """The last epoch up to `epoch` whose saved state can be read, with that state;
        (0, None) when none can. Each state that cannot be read is reported in one line
        and deleted, and the record set back to the epoch found, to train on from there."""
        for done in range(epoch, 0, -1):
            try:
                state = self._state(done)
            except UnreadableCheckpoint as error:
                log.warning(
                    "%s of study %r cannot be read (%s): deleted it; %s",
                    checkpoint_name(done), self.study.study_name, error,
                    f"trying the state after epoch {done - 1}" if done > 1
                    else "training it again from scratch",
                )  # fmt: skip
                continue
            if done < epoch:
                self._write(epochs_done=done)
            return done, state
        if epoch:
            self._write(epochs_done=0)
        return 0, None

    def _built(self, state: dict) -> Supernet:
        """The supernet with the weights of `state`; a UsageError when its tensors are not
        the space's (saved by another version of the space)."""
        supernet = self.make().to(self.splits.train_x.device)
        differing = sorted(supernet.state_dict().keys() ^ state.keys())
        if differing:
            raise UsageError(
                f"study {self.study.study_name!r} holds a supernet whose tensors are not the "
                f"space's ({', '.join(differing[:3])}): another version of the space saved "
                f"it; use another study.name"
            )
        supernet.load_state_dict(state)
        return supernet.eval()
