"""DDM timeout A/B experiments: design, randomise, send, analyse.

A :class:`DdmExperiment` holds the *design* (arms → DDM settings, the saved
MMS, the shortcode, the seed) and, once run, the *manifest* of every send
with its arm. :meth:`DdmExperiment.analyze` joins postbacks to the manifest
and returns an :class:`ExperimentResult`.

Decisions
---------
* **Assignment** is balanced complete randomisation within strata: each
  stratum's numbers are shuffled and dealt to the arms in turn, starting at
  a random arm, so arm sizes differ by at most one per stratum. The default
  stratum is the number's country (from its calling code), because carriers
  and delivery behaviour differ by country.
* **Send order** is shuffled across arms (same seed), so a change on the
  platform during the run (a carrier outage, a busy hour) hits every arm
  alike instead of the arm that happened to be sent last.
* **Each number once.** A second send to the same number would find its
  handset cached by the first, so duplicate numbers are refused.
* **Intention to treat.** A number whose handset is already cached gets no
  DDM whatever its arm (unless the DDM is forced). Sends are compared as
  assigned, which is unbiased for the question "what happens if we switch
  this setting on"; how many sends a DDM arm could actually affect is
  reported as ``eligibility`` (sends that produced a DDM notification).
  Eligibility cannot be observed in an arm without DDM, so a per-protocol
  comparison would be biased and is not offered.
* **Latency** is compared on ``total_latency_s`` (request → delivery): the
  DDM wait happens before the MMS is sent, so ``latency_s`` (sent →
  delivered) would hide exactly the cost a longer timeout adds.
* **Looking while it runs.** Every comparison counts a send only once its
  outcome window has closed (:mod:`skycore_lab.stats.windows`): the
  delivery rate after the longest DDM timeout plus 30 min
  (:attr:`DdmExperiment.settle_s`), the deadline and latency metrics after
  ``within_s``. ``sequential=True`` makes every test always-valid.
* **One family.** The summary's verdicts are adjusted together over every
  arm × metric (Holm by default); the delivery rate is the primary metric
  (see :class:`ExperimentResult`).
* **Sample ratio.** Sends that went out per arm are tested against the
  allocation (:func:`skycore_lab.sample_ratio_mismatch`); a mismatch is the
  summary's first line.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from . import columns as col
from .client import DDM, SendRequest, validate_number
from .exceptions import SendOptionWarning, SkycoreValidationError
from .manifest import EXPERIMENT_FORMAT, manifest_frame, manifest_from_json, manifest_to_json
from .provenance import attach_design, attach_sources, source_file
from .stats.compare import (
    DEFAULT_WITHIN_S,
    METRIC_DELIVERED_WITHIN,
    METRIC_DELIVERY_RATE,
    METRIC_LATENCY,
    arm_labels,
)

if TYPE_CHECKING:
    from .stats import SampleRatioCheck, SampleSizeCheck

__all__ = ["DdmExperiment", "ExperimentResult", "METRIC_ORDER", "PRIMARY_METRIC"]

STRATUM = "stratum"
ASSIGNMENT_COLUMNS: tuple[str, ...] = (col.TO, col.ARM, STRATUM)
#: Columns of :attr:`ExperimentResult.eligibility`.
ELIGIBILITY_COLUMNS: tuple[str, ...] = (col.ARM, "sends", "ddm_requested", "ddm_sent", "eligible_share")
#: Smallest change in delivery rate the "large enough" verdict plans for.
DEFAULT_MIN_EFFECT = 0.05
_FORMAT = EXPERIMENT_FORMAT
#: How :meth:`DdmExperiment.assign` allocates recipients (recorded in the design).
ALLOCATION_METHOD = ("balanced complete randomisation within strata (default: the number's country), "
                     "equal shares per arm; send order shuffled across arms")


def _ddm_from(value) -> DDM | None:
    if value is None or isinstance(value, DDM):
        return value
    if isinstance(value, Mapping):
        return DDM(**value)
    raise TypeError(f"an arm's setting must be a DDM, a dict of DDM fields or None, got {type(value).__name__}")


def _numbers(recipients) -> pd.DataFrame:
    """Recipients as a frame with a cleaned ``to`` column (other columns kept for strata)."""
    if isinstance(recipients, pd.DataFrame):
        if col.TO not in recipients.columns:
            raise SkycoreValidationError("recipients", f"a DataFrame of recipients needs a {col.TO!r} column")
        frame = recipients.reset_index(drop=True).copy()
    elif isinstance(recipients, (str, bytes)) or not isinstance(recipients, Iterable):
        raise SkycoreValidationError("recipients", "must be an iterable of phone numbers or a DataFrame with 'to'")
    else:
        frame = pd.DataFrame({col.TO: list(recipients)})
    if frame.empty:
        raise SkycoreValidationError("recipients", "no recipients given")
    cleaned, invalid = [], []
    for position, number in enumerate(frame[col.TO].tolist()):
        try:
            cleaned.append(validate_number(number))
        except SkycoreValidationError as exc:
            cleaned.append(None)
            invalid.append(f"row {position}: {exc.message}")
    if invalid:
        raise SkycoreValidationError(
            "recipients", f"{len(invalid)} invalid number(s), e.g. {'; '.join(invalid[:3])}")
    frame[col.TO] = pd.array(cleaned, dtype="str")
    repeated = frame[col.TO][frame[col.TO].duplicated()].unique()
    if len(repeated):
        raise SkycoreValidationError(
            "recipients", f"{len(repeated)} number(s) listed more than once (e.g. {', '.join(repeated[:3])}): "
            "a second send would find the handset cached by the first, so each number may be in one arm only")
    return frame


def _stratum_of(frame: pd.DataFrame, strata) -> pd.Series:
    from .reference import country_of_number

    if strata is False:
        return pd.Series("all", index=frame.index)
    if strata is None:
        return frame[col.TO].map(lambda number: country_of_number(number) or "unknown")
    if isinstance(strata, str):
        if strata not in frame.columns:
            raise SkycoreValidationError("strata", f"recipients have no column {strata!r} to stratify by")
        return frame[strata].astype("object").where(frame[strata].notna(), "missing").astype(str)
    raise SkycoreValidationError("strata", "must be None (country), False (none) or a column name")


class DdmExperiment:
    """A DDM A/B(/n) test: which DDM setting delivers more MMS, sooner.

    Parameters
    ----------
    arms : mapping of str to DDM or None
        Arm name → the DDM sent with that arm's MMS (``None``: no DDM). The
        first arm is the control unless :meth:`analyze` is told otherwise.
    mms_id, sender
        The saved MMS and the shortcode every arm sends.
    seed : int
        Seeds the assignment and the send order; the same seed and
        recipients give the same experiment.
    **send_kwargs
        Further :meth:`SkycoreClient.send_saved_mms` arguments shared by all
        arms (``campaign_ref``, ``custom_text``, ...).

    Examples
    --------
    >>> exp = DdmExperiment(arms={"no_ddm": None, "ddm_5": DDM("Hi", timeout_min=5)},
    ...                     mms_id=1001, sender="12345")          # doctest: +SKIP
    >>> manifest = exp.run(client, numbers)                       # doctest: +SKIP
    >>> result = exp.analyze(read_postbacks("postbacks.log"))     # doctest: +SKIP
    >>> print(result.summary())                                   # doctest: +SKIP

    Attributes
    ----------
    arms, mms_id, sender, seed, send_kwargs
        The design, fixed at creation (read-only: a new design is a new
        experiment).
    manifest : pandas.DataFrame or None
        The manifest once :meth:`run` has sent (or :meth:`load` restored it).
    """

    def __init__(self, arms, mms_id, sender, *, seed: int = 0, manifest=None, **send_kwargs):
        if not isinstance(arms, Mapping) or len(arms) < 2:
            raise SkycoreValidationError("arms", "give at least two arms as {name: DDM or None}")
        clean: dict[str, DDM | None] = {}
        for name, setting in arms.items():
            if not isinstance(name, str) or not name.strip():
                raise SkycoreValidationError("arms", f"arm names must be non-empty strings, got {name!r}")
            try:
                clean[name] = _ddm_from(setting)
            except TypeError as exc:
                raise SkycoreValidationError("arms", f"arm {name!r}: {exc}") from None
        for forbidden in ("ddm", "to", "recipients"):
            if forbidden in send_kwargs:
                raise SkycoreValidationError(forbidden, "is set per arm/recipient by the experiment")
        for name, setting in clean.items():  # fail before anything is sent
            try:
                with warnings.catch_warnings():  # the stand-in's country is no recipient's: each send warns for its own
                    warnings.simplefilter("ignore", SendOptionWarning)
                    SendRequest.create(mms_id, "10000000000", sender, ddm=setting, **send_kwargs)
            except SkycoreValidationError as exc:
                raise SkycoreValidationError(exc.field, f"arm {name!r}: {exc.message}") from None
        if not isinstance(seed, (int, np.integer)):
            raise SkycoreValidationError("seed", "must be an integer")
        self._arms = MappingProxyType(clean)
        self._mms_id = mms_id
        self._sender = str(sender)
        self._seed = int(seed)
        self._send_kwargs = MappingProxyType(dict(send_kwargs))
        self.manifest: pd.DataFrame | None = manifest

    arms = property(lambda self: self._arms, doc="Arm name → DDM settings (None: no DDM), in design order.")
    mms_id = property(lambda self: self._mms_id, doc="The saved MMS every arm sends.")
    sender = property(lambda self: self._sender, doc="The shortcode every arm sends from.")
    seed = property(lambda self: self._seed, doc="Seeds the assignment and the send order.")
    send_kwargs = property(lambda self: self._send_kwargs, doc="Send arguments shared by all arms.")

    def __repr__(self) -> str:
        ran = "not run" if self.manifest is None else f"{len(self.manifest):,} sends"
        return (f"DdmExperiment(arms={list(self._arms)}, mms_id={self._mms_id!r}, sender={self._sender!r}, "
                f"seed={self._seed}, {ran})")

    # --- design -----------------------------------------------------------
    def assign(self, recipients, strata=None) -> pd.DataFrame:
        """Randomly assign each recipient to one arm, balanced within strata.

        Parameters
        ----------
        recipients : iterable of str or DataFrame
            Phone numbers (international digits), or a frame with a ``to``
            column (and the ``strata`` column, if named).
        strata : None, False or str
            ``None``: stratify by the number's country; ``False``: no strata;
            a column name of ``recipients``: stratify by it.

        Returns
        -------
        pandas.DataFrame
            One row per recipient, in input order: ``to`` (cleaned number),
            ``arm``, ``stratum``.
        """
        frame = _numbers(recipients)
        stratum = _stratum_of(frame, strata)
        rng = np.random.default_rng(self.seed)
        names = np.array(list(self.arms), dtype=object)
        arm = np.empty(len(frame), dtype=object)
        for key in sorted(stratum.unique()):  # sorted: independent of input order
            rows = np.flatnonzero((stratum == key).to_numpy())
            shuffled = rng.permutation(rows)
            offset = int(rng.integers(len(names)))
            arm[shuffled] = names[(np.arange(len(rows)) + offset) % len(names)]
        return pd.DataFrame({
            col.TO: frame[col.TO],
            col.ARM: pd.Categorical(arm, categories=list(self.arms)),
            STRATUM: stratum.to_numpy(),
        })

    def run(self, client, recipients, progress: bool = True, *, strata=None, concurrency: int = 4,
            max_rate_per_s: float | None = None, confirm: bool = False, dry_run: bool = False,
            price_per_mms: float | None = None):
        """Assign, then send every recipient its arm's MMS; return (and keep) the manifest.

        Sends go out in a random order across arms. One failed send never
        stops the experiment; Ctrl-C returns the manifest so far. The
        client's send guard checks the whole experiment before the first
        send (:mod:`skycore_lab.guard`): more than 50 recipients on
        production need ``confirm=True``, and numbers off the allow-list
        are refused, named.

        Parameters
        ----------
        client : SkycoreClient
        recipients : iterable of str or DataFrame
            As for :meth:`assign`.
        progress : bool
            Show a progress bar.
        strata, concurrency, max_rate_per_s
            As for :meth:`assign` and :meth:`SkycoreClient.send_batch`.
        confirm : bool
            Confirm a production experiment above the threshold.
        dry_run : bool
            Assign, validate every send and return a
            :class:`~skycore_lab.guard.DryRun` (its requests in send order,
            the API key masked; ``.assignment`` and ``.frame()``'s ``arm``
            column say which arm each goes to); nothing is sent and
            :attr:`manifest` is left as it was.
        price_per_mms : float, optional
            Price of one MMS, for the estimated cost.

        Returns
        -------
        pandas.DataFrame (a DryRun with ``dry_run=True``)
            The send manifest, one row per recipient in input order:
            ``to, arm, tracking_id, requested_at, status, error_code,
            error_info, sender, stratum``.
        """
        assignment = self.assign(recipients, strata=strata)
        order = np.random.default_rng([self.seed, 1]).permutation(len(assignment))
        arms = assignment[col.ARM].astype(str).to_numpy()
        kwargs = [dict(self.send_kwargs, ddm=self.arms[arms[i]]) for i in order]
        sent = client.send_each(assignment[col.TO].to_numpy()[order].tolist(), self.mms_id, self.sender, kwargs,
                                max_rate_per_s=max_rate_per_s, concurrency=concurrency, progress=progress,
                                confirm=confirm, dry_run=dry_run, price_per_mms=price_per_mms)
        if dry_run:
            return replace(sent, assignment=assignment)
        sent.index = order
        sent = sent.sort_index()
        manifest = pd.concat([assignment[[col.TO, col.ARM]], sent.drop(columns=[col.TO]),
                              assignment[[STRATUM]]], axis=1)
        manifest = manifest[[col.TO, col.ARM, col.TRACKING_ID, col.REQUESTED_AT, col.STATUS,
                             col.ERROR_CODE, col.ERROR_INFO, col.SENDER, STRATUM]]
        manifest = manifest_frame(manifest, arms=list(self.arms))
        attach_design(manifest, self.design_record())
        self.manifest = manifest
        return manifest

    def design_record(self) -> dict:
        """The design as a JSON-ready dict (recorded in every report's provenance).

        Returns
        -------
        dict
            ``arms`` (name → DDM fields, or None for no DDM), ``control``
            (the first arm), ``seed``, ``mms_id``, ``sender``, ``send_kwargs``
            and ``allocation`` (how recipients were assigned).
        """
        return {
            "arms": {name: (asdict(ddm) if ddm is not None else None) for name, ddm in self.arms.items()},
            "control": next(iter(self.arms)),
            "seed": self.seed,
            "mms_id": self.mms_id,
            "sender": self.sender,
            "send_kwargs": {key: value for key, value in self.send_kwargs.items()},
            "allocation": {"method": ALLOCATION_METHOD},
        }

    # --- persistence ---------------------------------------------------------
    def save(self, path: str | PathLike) -> Path:
        """Write design and manifest to one JSON file (never the API key)."""
        path = Path(path)
        design = self.design_record()
        manifest = None
        if self.manifest is not None:
            manifest = manifest_to_json(manifest_frame(self.manifest, arms=list(self.arms)))
        document = {"format": _FORMAT, "saved_at": datetime.now(timezone.utc).isoformat(),
                    "design": design, "manifest": manifest}
        path.write_text(json.dumps(document, indent=1, default=str), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | PathLike) -> DdmExperiment:
        """Read an experiment written by :meth:`save`."""
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SkycoreValidationError("path", f"cannot read experiment file {str(path)!r}: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise SkycoreValidationError("path", f"{str(path)!r} is not a {_FORMAT} file")
        design = document["design"]
        manifest = None
        if document.get("manifest") is not None:
            manifest = manifest_from_json({**document["manifest"], "arms": list(design["arms"])}, str(path))
        experiment = cls(design["arms"], design["mms_id"], design["sender"], seed=design["seed"],
                         manifest=manifest, **design["send_kwargs"])
        if manifest is not None:
            attach_sources(manifest, [source_file(path, "experiment", records=len(manifest))])
            attach_design(manifest, experiment.design_record())
        return experiment

    # --- analysis ---------------------------------------------------------------
    @property
    def settle_s(self) -> float:
        """The delivery-rate outcome window of this design, seconds: its longest DDM timeout plus
        :data:`skycore_lab.stats.DEFAULT_DELIVERY_ALLOWANCE_S` (no DDM arm: the allowance alone)."""
        from .reference import DEFAULT_DDM_TIMEOUT_MIN
        from .stats.windows import default_settle_s

        timeouts = [DEFAULT_DDM_TIMEOUT_MIN if ddm.timeout_min is None else ddm.timeout_min
                    for ddm in self.arms.values() if ddm is not None]  # fmt: skip
        return default_settle_s(timeouts or [0])

    def analyze(self, events: pd.DataFrame, *, control: str | None = None, alpha: float = 0.05,
                within_s: float = DEFAULT_WITHIN_S, sequential: bool = False, as_of=None,
                min_effect: float = DEFAULT_MIN_EFFECT, correction: str = "holm", settle_s: float | None = None,
                horizon_s: float | None = None, strata: str | None = None) -> ExperimentResult:
        """Join postbacks to the manifest and compare the arms.

        Parameters
        ----------
        events : pandas.DataFrame
            Postback events (:func:`skycore_lab.read_postbacks`); sends of
            other campaigns in the same log are ignored.
        control : str, optional
            The control arm; default the first arm of the design.
        alpha : float
            Error rate of the verdicts over the whole family of comparisons
            (every treatment arm × every metric).
        within_s : float
            Deadline of the ``delivered_within`` comparison, in seconds from
            the request.
        sequential : bool
            Always-valid p-values and intervals for every metric, for looking
            while postbacks still arrive, as often as you like.
        as_of : datetime, optional
            When the data were looked at: sends count in a comparison once
            their outcome window has closed by then; pending sends are
            censored there in the curves. Default the latest time in the data.
        min_effect : float
            Change in delivery rate (absolute) the sample-size verdict plans for.
        correction : {"holm", "bonferroni", "bh", "none"}
            Adjustment over the family: Holm (default; family-wise error ≤
            alpha), Bonferroni, Benjamini–Hochberg (false discovery rate ≤
            alpha: for screens of many arms), or none.
        settle_s : float, optional
            Delivery-rate window; default :attr:`DdmExperiment.settle_s`.
        horizon_s : float, optional
            Horizon of the latency comparison (restricted mean time to
            delivery); default ``within_s``.
        strata : str, optional
            Column to stratify the rate comparisons by (``"country"``,
            ``"carrier"``): Mantel–Haenszel differences and CMH tests.
        """
        from .frames import deliveries as make_deliveries

        if self.manifest is None:
            raise SkycoreValidationError("manifest", "the experiment has not been run (or loaded) yet")
        sent = self.manifest[self.manifest[col.TRACKING_ID].notna()]
        frame = make_deliveries(events, sent)
        frame = frame[frame[col.ARM].notna()].reset_index(drop=True)
        return self.analyze_deliveries(frame, control=control, alpha=alpha, within_s=within_s,
                                       sequential=sequential, as_of=as_of, min_effect=min_effect,
                                       correction=correction, settle_s=settle_s, horizon_s=horizon_s, strata=strata)

    def analyze_deliveries(self, frame: pd.DataFrame, *, control: str | None = None, alpha: float = 0.05,
                           within_s: float = DEFAULT_WITHIN_S, sequential: bool = False, as_of=None,
                           min_effect: float = DEFAULT_MIN_EFFECT, correction: str = "holm",
                           settle_s: float | None = None, horizon_s: float | None = None,
                           strata: str | None = None) -> ExperimentResult:
        """The analysis of :meth:`analyze`, on deliveries that already carry an ``arm`` column.

        For deliveries from another source (a sending-statistics report
        joined to the manifest, a CSV export); parameters as :meth:`analyze`.
        The sample-ratio check uses the manifest when the experiment has
        one (refused sends included), else the deliveries against the
        design's equal shares.
        """
        from .stats import (
            adjust_p_values,
            check_sample_size,
            compare_arms,
            cumulative_incidence,
            delivery_rates,
            latency_summary,
            sample_ratio_mismatch,
        )
        from .stats.inputs import check_level, resolve_as_of
        from .stats.planning import check_correction
        from .stats.windows import check_window

        control = list(self.arms)[0] if control is None else control
        if control not in self.arms:
            raise SkycoreValidationError("control", f"{control!r} is not an arm ({', '.join(self.arms)})")
        if col.ARM not in frame.columns:
            raise SkycoreValidationError(col.ARM, "deliveries need the arm of each send")
        alpha = check_level(alpha, "alpha")
        method = check_correction(correction)
        within_s = check_window(within_s, "within_s")
        settle_s = self.settle_s if settle_s is None else check_window(settle_s, "settle_s")
        horizon_s = within_s if horizon_s is None else check_window(horizon_s, "horizon_s")
        moment = resolve_as_of(frame, as_of)
        looked_at = None if moment is None else pd.Timestamp(moment).tz_localize("UTC")
        codes, labels = arm_labels(frame[col.ARM])  # as strings; 1 and "1" together is an error
        unknown = sorted(set(labels) - set(self.arms))
        if unknown:
            raise SkycoreValidationError(col.ARM, f"arm(s) {unknown} are not in the design ({', '.join(self.arms)})")
        design = list(self.arms)
        position = np.append(np.array([design.index(label) for label in labels], dtype=np.int64), -1)
        frame = frame.assign(**{col.ARM: pd.Categorical.from_codes(position[codes], categories=design)})

        # Per-arm rates on settled sends only, like the comparisons: a young pending send is not "not delivered".
        rates = delivery_rates(frame, by=(col.ARM,), confidence=1 - alpha, settle_s=settle_s, as_of=moment)
        latency = latency_summary(frame, by=(col.ARM,), column=col.TOTAL_LATENCY_S, confidence=1 - alpha,
                                  as_of=moment)
        deadlines = sorted({60.0, 300.0, within_s, horizon_s, settle_s})
        share = cumulative_incidence(frame, by=(col.ARM,), times=deadlines, as_of=moment,
                                     column=col.TOTAL_LATENCY_S, confidence=1 - alpha)
        options = {"arm": col.ARM, "control": control, "alpha": alpha, "correction": None, "sequential": sequential,
                   "as_of": moment}  # fmt: skip
        parts = [
            compare_arms(frame, metric=METRIC_DELIVERY_RATE, settle_s=settle_s, strata=strata, **options),
            compare_arms(frame, metric=METRIC_LATENCY, horizon_s=horizon_s, column=col.TOTAL_LATENCY_S, **options),
            compare_arms(frame, metric=METRIC_DELIVERED_WITHIN, within_s=within_s, column=col.TOTAL_LATENCY_S,
                         strata=strata, **options),
        ]
        comparisons = pd.concat([part for part in parts if len(part)], ignore_index=True) if any(
            len(part) for part in parts) else parts[0]
        if len(comparisons):
            # One family: every arm × metric adjusted together.
            comparisons[col.P_ADJUSTED] = adjust_p_values(comparisons[col.P_VALUE].to_numpy(dtype=float), method)
            comparisons[col.SIGNIFICANT] = (comparisons[col.P_ADJUSTED] < alpha).astype(bool)

        if self.manifest is not None and col.ARM in self.manifest.columns:
            srm = sample_ratio_mismatch(self.manifest)
        else:
            srm = sample_ratio_mismatch(frame, allocation=dict.fromkeys(self.arms, 1.0))

        primary = comparisons[comparisons[col.METRIC] == METRIC_DELIVERY_RATE] if len(comparisons) else comparisons
        if len(primary):
            control_n = int(primary[col.N_CONTROL].iloc[0])
            control_x = int(round(float(primary[col.CONTROL_ESTIMATE].iloc[0]) * control_n)) if control_n else 0
            smallest = int(min(control_n, primary[col.N_ARM].min()))
        else:
            control_n = control_x = smallest = 0
        sample = check_sample_size(control_x, control_n, smallest, min_effect, alpha=alpha, arms=len(self.arms),
                                   correction=method, metrics=len(METRIC_ORDER), sequential=sequential)  # fmt: skip
        return ExperimentResult(
            deliveries=frame, rates=rates, latency=latency, comparisons=comparisons,
            eligibility=self._eligibility(frame), manifest=self.manifest, design=self, control=control,
            alpha=alpha, within_s=within_s, min_effect=min_effect, share_delivered=share, srm=srm,
            sample_size=sample, correction=method, sequential=bool(sequential), settle_s=settle_s,
            horizon_s=horizon_s, as_of=looked_at, strata=strata)

    def _eligibility(self, frame: pd.DataFrame) -> pd.DataFrame:
        rows = []
        arms = frame[col.ARM].astype("object").to_numpy()
        got = (frame[col.DDM].astype(str) != col.DDM_NONE).to_numpy() if col.DDM in frame.columns else None
        for name, ddm in self.arms.items():
            mine = arms == name
            sends = int(mine.sum())
            got_ddm = int((got & mine).sum()) if ddm is not None and got is not None else None
            rows.append({col.ARM: name, "sends": sends, "ddm_requested": ddm is not None, "ddm_sent": got_ddm,
                         "eligible_share": (got_ddm / sends) if got_ddm is not None and sends else math.nan})
        table = pd.DataFrame(rows, columns=list(ELIGIBILITY_COLUMNS))
        table["ddm_sent"] = table["ddm_sent"].astype("Int64")
        return table


# --- the result ---------------------------------------------------------------------------
#: The metrics an experiment compares, in the summary's order; the first is the primary one.
METRIC_ORDER: tuple[str, ...] = (METRIC_DELIVERY_RATE, METRIC_LATENCY, METRIC_DELIVERED_WITHIN)
#: The metric the decision turns on: the headline verdict, and the one the sample is planned for.
PRIMARY_METRIC = METRIC_DELIVERY_RATE
_CORRECTION_WORDS = {
    "holm": "Holm over the whole family: the chance of any false verdict is at most {alpha:.0%}",
    "bonferroni": "Bonferroni over the whole family: the chance of any false verdict is at most {alpha:.0%}",
    "bh": "Benjamini–Hochberg over the whole family: on average at most {alpha:.0%} of the differences "
          "reported are false (a screen of many arms; not a family-wise guarantee)",
    "none": "none: each comparison at {alpha:.0%} on its own, so with several the chance of a false verdict is higher",
}


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


def _points(value: float) -> str:
    """A difference of shares in percentage points: ``+1.2 points``."""
    return f"{value * 100:+.1f} points"


@dataclass(frozen=True, repr=False, eq=False)
class ExperimentResult:
    """What :meth:`DdmExperiment.analyze` found.

    **Reading the result.** The verdict rests on four parts, each an attribute a report can read
    without parsing text:

    * **the primary metric** — :attr:`primary`: the delivery-rate
      comparisons (``PRIMARY_METRIC``), the decision's headline;
    * **the sample ratio** — :attr:`srm`: did each arm send as many
      messages as the allocation says (a flagged mismatch voids the rest);
    * **power** — :attr:`sample_size`: the sends needed for
      ``min_effect`` from the control's rate, and the smallest change
      detectable at the current size;
    * **the latency cost** — :attr:`latency_cost`: the restricted mean time
      to delivery and the share delivered within the deadline, per arm
      against the control, and :attr:`share_delivered`, the share of sends
      delivered by 1 min, 5 min, the deadline and the settle window.

    **One family.** The verdicts (``significant``) of every comparison — every treatment
    arm × the 3 metrics — are adjusted together (``correction``, Holm by
    default), so the chance that the summary reports any difference that is
    not there is at most ``alpha``. The delivery rate is the primary metric:
    the summary leads with it, and the sample size is planned for it at the
    family's per-comparison level. (Gatekeeping the other metrics behind it
    would leave the latency cost of a DDM untested whenever the rates do not
    differ, the common case; Holm over all keeps every metric testable.)

    Attributes
    ----------
    deliveries : DataFrame
        One row per send of the experiment (:func:`skycore_lab.deliveries`
        columns plus the manifest's, incl. ``arm`` as a categorical in design order).
    rates : DataFrame
        :func:`skycore_lab.delivery_rates` by arm over the settled sends
        (``settle_s``): sends at least that old, delivered within it; at
        the end of an experiment, every send.
    latency : DataFrame
        :func:`skycore_lab.latency_summary` of ``total_latency_s`` by arm:
        time to delivery among delivered sends (pending censored, failures excluded).
    comparisons : DataFrame
        :func:`skycore_lab.compare_arms` rows for the metrics
        ``delivery_rate``, ``latency`` and ``delivered_within``, with
        ``p_adjusted`` and ``significant`` over the whole family.
    share_delivered : DataFrame
        :func:`skycore_lab.cumulative_incidence` by arm at 60 s, 300 s,
        ``within_s``, ``horizon_s`` and ``settle_s``.
    eligibility : DataFrame
        Per arm: ``arm, sends, ddm_requested, ddm_sent, eligible_share`` —
        how many sends of a DDM arm actually got a DDM (the others' handsets
        were already cached). Missing for arms without DDM.
    srm : SampleRatioCheck
        The sample-ratio-mismatch check (``srm.p_value``, ``srm["p_value"]``,
        ``srm.flagged``, ``srm.table``).
    sample_size : SampleSizeCheck
        The sample-size verdict for the primary metric.
    control, alpha, within_s, min_effect, correction, sequential, settle_s, horizon_s, as_of, strata
        How the analysis was run (``as_of``: the look, UTC).
    """

    deliveries: pd.DataFrame
    rates: pd.DataFrame
    latency: pd.DataFrame
    comparisons: pd.DataFrame
    eligibility: pd.DataFrame
    manifest: pd.DataFrame | None
    design: DdmExperiment
    control: str
    alpha: float
    within_s: float
    min_effect: float
    share_delivered: pd.DataFrame
    srm: SampleRatioCheck
    sample_size: SampleSizeCheck
    correction: str = "holm"
    sequential: bool = False
    settle_s: float = math.nan
    horizon_s: float = math.nan
    as_of: pd.Timestamp | None = None
    strata: str | None = None

    primary_metric = PRIMARY_METRIC

    @property
    def primary(self) -> pd.DataFrame:
        """The comparisons of the primary metric (delivery rate), one row per treatment arm."""
        return self._rows(PRIMARY_METRIC)

    @property
    def latency_cost(self) -> pd.DataFrame:
        """The comparisons of the latency metrics: restricted mean time to delivery and share within the deadline."""
        return self._rows(METRIC_LATENCY, METRIC_DELIVERED_WITHIN)

    @property
    def family_size(self) -> int:
        """Comparisons in the adjusted family (those with a p-value)."""
        return int(self.comparisons[col.P_VALUE].notna().sum()) if len(self.comparisons) else 0

    def _rows(self, *metrics: str) -> pd.DataFrame:
        if not len(self.comparisons):
            return self.comparisons
        return self.comparisons[self.comparisons[col.METRIC].isin(metrics)].reset_index(drop=True)

    def sample_verdict(self) -> tuple[int | None, int, float | None]:
        """(sends per arm needed to detect ``min_effect``, smallest arm, baseline rate used); see :attr:`sample_size`."""
        check = self.sample_size
        return check.needed_per_arm, check.smallest_arm, check.baseline_rate

    # --- text ------------------------------------------------------------------------------
    def _describe(self, metric: str) -> str:
        if metric == METRIC_DELIVERY_RATE:
            return f"delivery rate [primary] (delivered within {self.settle_s / 60:g} min of the request)"
        if metric == METRIC_LATENCY:
            return (f"mean time to delivery within {self.horizon_s:g} s (a send not delivered by then counts "
                    f"as {self.horizon_s:g} s)")
        return f"share delivered within {self.within_s:g} s"

    def _comparison_line(self, row) -> str:
        what = self._describe(row.metric)
        shares = row.metric != METRIC_LATENCY
        if not (row.n_control and row.n_arm) or pd.isna(row.p_value):
            window = getattr(row, col.WINDOW_S)
            why = (f"no send of one arm has passed its {window:g} s window yet" if pd.notna(window)
                   and not (row.n_control and row.n_arm) else "too few sends to compare")
            return f"  {row.arm} vs {self.control}, {what}: not yet comparable ({why})."
        if shares:
            values = f"{row.arm_estimate:.1%} vs {row.control_estimate:.1%}, difference {_points(row.diff)}"
            interval = f"{row.ci_low * 100:+.1f} to {row.ci_high * 100:+.1f} points"
        else:
            values = f"{row.arm_estimate:.0f} s vs {row.control_estimate:.0f} s, difference {row.diff:+.0f} s"
            interval = f"{row.ci_low:+.0f} to {row.ci_high:+.0f} s"
        level = f"{1 - self.alpha:.0%}"
        kind = "always-valid " if self.sequential else ""
        verdict = "a real difference" if row.significant else "no difference shown"
        counted = f"{row.n_arm:,} vs {row.n_control:,} sends"
        return (f"  {row.arm} vs {self.control}, {what}: {values} ({level} {kind}CI {interval}; {counted}); "
                f"{_p_text(row.p_adjusted)} adjusted — {verdict}.")

    def summary(self) -> str:
        """Plain-language findings: which arm wins on what, with intervals.

        Lines, in order: a sample ratio mismatch when flagged (first, with
        those words); the experiment; per-arm delivery rates; how the
        verdicts are adjusted and which metric is primary; every comparison,
        primary metric first (a comparison whose sends are not old enough
        yet says so); the time to delivery among delivered sends ("not
        reached" where the median is not); eligibility; the sample-size
        verdict with the detectable effect at the current size.
        """
        from .stats import format_seconds

        level = f"{1 - self.alpha:.0%}"
        lines = []
        if self.srm.flagged:
            lines.append(self.srm.text())
        looked = f"; looked at {self.as_of:%Y-%m-%d %H:%M:%S} UTC" if self.as_of is not None else ""
        lines.append(f"DDM experiment: {len(self.deliveries):,} sends in {len(self.design.arms)} arms; "
                     f"control arm {self.control!r}{looked}.")
        window = f"{self.settle_s / 60:g} min"
        rates = {str(getattr(row, col.ARM)): row for row in self.rates.itertuples(index=False)}
        sends = self.deliveries[col.ARM].value_counts()
        for arm in self.design.arms:
            row = rates.get(arm)
            counted = 0 if row is None else getattr(row, col.SENT)
            younger = int(sends.get(arm, 0)) - counted
            later = f"; {younger:,} younger sends not counted yet" if younger else ""
            if row is None:
                lines.append(f"  {arm}: no send is {window} old yet ({younger:,} sent)")
                continue
            lines.append(f"  {arm}: {getattr(row, col.DELIVERED):,}/{counted:,} delivered within {window} "
                         f"= {getattr(row, col.RATE):.1%} ({level} CI {getattr(row, col.CI_LOW):.1%}–"
                         f"{getattr(row, col.CI_HIGH):.1%}), {getattr(row, col.PENDING):,} without a delivery "
                         f"report{later}")
        if not self.srm.flagged:
            lines.append("  " + self.srm.text())
        words = _CORRECTION_WORDS[self.correction].format(alpha=self.alpha)
        mode = " Always-valid (sequential) tests: you may look as often as you like." if self.sequential else ""
        strata = f" Rate comparisons stratified by {self.strata} (Mantel–Haenszel)." if self.strata else ""
        lines.append(f"  Primary metric: delivery rate. Verdicts adjusted over {self.family_size} comparisons "
                     f"({len(self.design.arms) - 1} arms × {len(METRIC_ORDER)} metrics): {words}. Intervals are "
                     f"per comparison ({level}, unadjusted). A send counts once its outcome window has closed.{mode}"
                     f"{strata}")
        if len(self.comparisons):
            for metric in METRIC_ORDER:
                for row in self._rows(metric).itertuples(index=False):
                    lines.append(self._comparison_line(row))
        medians = []
        for row in self.latency.itertuples(index=False):
            median = getattr(row, col.KM_P50) if hasattr(row, col.KM_P50) else math.nan
            bounds = ""
            if pd.notna(median):
                bounds = (f" ({level} CI {format_seconds(getattr(row, col.KM_P50_LOW))}–"
                          f"{format_seconds(getattr(row, col.KM_P50_HIGH))})")
            medians.append(f"{getattr(row, col.ARM)} {format_seconds(median)}{bounds}")
        if medians:
            lines.append("  Median time to delivery among delivered sends (request → delivery; pending censored, "
                         "failures excluded): " + ", ".join(medians) + ".")
        for row in self.eligibility.itertuples(index=False):
            if row.ddm_requested and not pd.isna(row.ddm_sent):
                rest = "; the others' handsets were already cached" if row.ddm_sent < row.sends else ""
                share = f" ({row.eligible_share:.0%})" if pd.notna(row.eligible_share) else ""
                lines.append(f"  {row.arm}: {row.ddm_sent:,} of {row.sends:,} sends got a DDM{share}{rest}. "
                             "Comparisons are intention-to-treat (all sends as assigned).")
        lines.append("  " + self.sample_size.text())
        return "\n".join(lines)

    def print_summary(self) -> None:
        """Print :meth:`summary` and the comparison table."""
        print(self.summary())
        print()
        print(self.comparisons.to_string(index=False))

    def __repr__(self) -> str:
        flag = ", SAMPLE RATIO MISMATCH" if self.srm.flagged else ""
        return f"<ExperimentResult: {len(self.deliveries)} sends, arms {list(self.design.arms)}{flag}>"

    def _repr_html_(self) -> str:
        from html import escape

        lines = self.summary().splitlines()
        head = [line for line in lines if not line.startswith("  ")]
        body = "".join(f"<li>{escape(line.strip())}</li>" for line in lines if line.startswith("  "))
        first = "".join(f"<p>{escape(line)}</p>" for line in head)
        return (f"<div>{first}<ul>{body}</ul>"
                f"{self.comparisons.to_html(index=False, float_format=lambda v: f'{v:.4g}')}</div>")

    def plot(self, axes=None):
        """Delivery rate by arm and the share delivered by time t (request → delivery), side by side.

        Parameters
        ----------
        axes : sequence of two matplotlib Axes, optional

        Returns
        -------
        numpy.ndarray of Axes
        """
        import matplotlib.pyplot as plt

        from .plots import plot_delivery_rates, plot_latency

        if axes is None:
            _, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
        plot_delivery_rates(self.deliveries, by=col.ARM, hue=None, ax=axes[0])
        plot_latency(self.deliveries, hue=col.ARM, kind="cif", column=col.TOTAL_LATENCY_S, as_of=self.as_of,
                     ax=axes[1])
        return np.asarray(axes)
