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
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from os import PathLike
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from . import columns as col
from .client import DDM, SendRequest, validate_number
from .exceptions import SendOptionWarning, SkycoreValidationError
from .manifest import EXPERIMENT_FORMAT, manifest_frame, manifest_from_json, manifest_to_json
from .provenance import attach_design, attach_sources, source_file
from .stats.compare import DEFAULT_WITHIN_S

__all__ = ["DdmExperiment", "ExperimentResult"]

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
            max_rate_per_s: float | None = None) -> pd.DataFrame:
        """Assign, then send every recipient its arm's MMS; return (and keep) the manifest.

        Sends go out in a random order across arms. One failed send never
        stops the experiment; Ctrl-C returns the manifest so far.

        Returns
        -------
        pandas.DataFrame
            The send manifest, one row per recipient in input order:
            ``to, arm, tracking_id, requested_at, status, error_code,
            error_info, sender, stratum``.
        """
        assignment = self.assign(recipients, strata=strata)
        order = np.random.default_rng([self.seed, 1]).permutation(len(assignment))
        arms = assignment[col.ARM].astype(str).to_numpy()
        kwargs = [dict(self.send_kwargs, ddm=self.arms[arms[i]]) for i in order]
        sent = client.send_each(assignment[col.TO].to_numpy()[order].tolist(), self.mms_id, self.sender, kwargs,
                             max_rate_per_s=max_rate_per_s, concurrency=concurrency, progress=progress)
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
    def analyze(self, events: pd.DataFrame, *, control: str | None = None, alpha: float = 0.05,
                within_s: float = DEFAULT_WITHIN_S, sequential: bool = False, as_of=None,
                min_effect: float = DEFAULT_MIN_EFFECT) -> ExperimentResult:
        """Join postbacks to the manifest and compare the arms.

        Parameters
        ----------
        events : pandas.DataFrame
            Postback events (:func:`skycore_lab.read_postbacks`); sends of
            other campaigns in the same log are ignored.
        control : str, optional
            The control arm; default the first arm of the design.
        alpha : float
            Family-wise error rate (Holm-corrected over the arms).
        within_s : float
            Deadline of the ``delivered_within`` comparison, in seconds from
            the request.
        sequential : bool
            Always-valid p-values and intervals, for looking while postbacks
            still arrive.
        as_of : datetime, optional
            When the data were looked at (censoring of pending sends);
            default the latest time in the data.
        min_effect : float
            Change in delivery rate (absolute) the sample-size verdict plans for.
        """
        from .frames import deliveries as make_deliveries

        if self.manifest is None:
            raise SkycoreValidationError("manifest", "the experiment has not been run (or loaded) yet")
        sent = self.manifest[self.manifest[col.TRACKING_ID].notna()]
        frame = make_deliveries(events, sent)
        frame = frame[frame[col.ARM].notna()].reset_index(drop=True)
        return self.analyze_deliveries(frame, control=control, alpha=alpha, within_s=within_s,
                                       sequential=sequential, as_of=as_of, min_effect=min_effect)

    def analyze_deliveries(self, frame: pd.DataFrame, *, control: str | None = None, alpha: float = 0.05,
                           within_s: float = DEFAULT_WITHIN_S, sequential: bool = False, as_of=None,
                           min_effect: float = DEFAULT_MIN_EFFECT) -> ExperimentResult:
        """The analysis of :meth:`analyze`, on deliveries that already carry an ``arm`` column.

        For deliveries from another source (a sending-statistics report
        joined to the manifest, a CSV export); parameters as :meth:`analyze`.
        """
        from .stats import compare_arms, delivery_rates, latency_summary

        control = list(self.arms)[0] if control is None else control
        if control not in self.arms:
            raise SkycoreValidationError("control", f"{control!r} is not an arm ({', '.join(self.arms)})")
        if col.ARM not in frame.columns:
            raise SkycoreValidationError(col.ARM, "deliveries need the arm of each send")
        rates = delivery_rates(frame, by=(col.ARM,), confidence=1 - alpha)
        latency = latency_summary(frame, by=(col.ARM,), column=col.TOTAL_LATENCY_S, confidence=1 - alpha,
                                  as_of=as_of)
        comparisons = pd.concat([
            compare_arms(frame, col.ARM, control, "delivery_rate", alpha, sequential=sequential),
            compare_arms(frame, col.ARM, control, "latency", alpha, sequential=sequential,
                         column=col.TOTAL_LATENCY_S, as_of=as_of),
            compare_arms(frame, col.ARM, control, "delivered_within", alpha, sequential=sequential,
                         within_s=within_s, column=col.TOTAL_LATENCY_S, as_of=as_of),
        ], ignore_index=True)
        return ExperimentResult(
            deliveries=frame, rates=rates, latency=latency, comparisons=comparisons,
            eligibility=self._eligibility(frame), manifest=self.manifest, design=self, control=control,
            alpha=alpha, within_s=within_s, min_effect=min_effect)

    def _eligibility(self, frame: pd.DataFrame) -> pd.DataFrame:
        rows = []
        for name, ddm in self.arms.items():
            sends = frame[frame[col.ARM] == name]
            got_ddm = int((sends[col.DDM].astype(str) != col.DDM_NONE).sum()) if ddm is not None else None
            rows.append({col.ARM: name, "sends": len(sends), "ddm_requested": ddm is not None,
                         "ddm_sent": got_ddm,
                         "eligible_share": (got_ddm / len(sends)) if ddm is not None and len(sends) else math.nan})
        table = pd.DataFrame(rows, columns=list(ELIGIBILITY_COLUMNS))
        table["ddm_sent"] = table["ddm_sent"].astype("Int64")
        return table


@dataclass(frozen=True, repr=False, eq=False)
class ExperimentResult:
    """What :meth:`DdmExperiment.analyze` found.

    Attributes
    ----------
    deliveries : DataFrame
        One row per send of the experiment (:func:`skycore_lab.deliveries`
        columns plus the manifest's, incl. ``arm``).
    rates : DataFrame
        :func:`skycore_lab.delivery_rates` by arm.
    latency : DataFrame
        :func:`skycore_lab.latency_summary` of ``total_latency_s`` by arm.
    comparisons : DataFrame
        :func:`skycore_lab.compare_arms` rows for the metrics
        ``delivery_rate``, ``latency`` and ``delivered_within``.
    eligibility : DataFrame
        Per arm: ``arm, sends, ddm_requested, ddm_sent, eligible_share`` —
        how many sends of a DDM arm actually got a DDM (the others' handsets
        were already cached). Missing for arms without DDM.
    """

    deliveries: pd.DataFrame
    rates: pd.DataFrame
    latency: pd.DataFrame
    comparisons: pd.DataFrame
    eligibility: pd.DataFrame
    manifest: pd.DataFrame
    design: DdmExperiment
    control: str
    alpha: float
    within_s: float
    min_effect: float

    def sample_verdict(self) -> tuple[int, int, float]:
        """(sends per arm needed to detect ``min_effect``, smallest arm, control rate)."""
        from .stats import plan_sample_size

        control_rate = float(self.rates.loc[self.rates[col.ARM].astype(str) == self.control, col.RATE].iloc[0])
        smallest = int(self.rates[col.SENT].min())
        baseline = min(max(control_rate, 0.01), 0.99 - self.min_effect)
        needed = plan_sample_size(baseline, self.min_effect, alpha=self.alpha, arms=len(self.design.arms))
        return needed, smallest, control_rate

    def summary(self) -> str:
        """Plain-language findings: which arm wins on what, with intervals.

        Each interval is the plain 95 % (1 − alpha) interval of its own
        comparison, while the verdict follows the Holm-adjusted p-value over
        all arms; near the threshold the two can disagree, so both are named.
        """
        level = f"{1 - self.alpha:.0%}"
        lines = [f"DDM experiment: {len(self.deliveries):,} sends in {len(self.design.arms)} arms; "
                 f"control arm {self.control!r}."]
        for row in self.rates.itertuples(index=False):
            arm = getattr(row, col.ARM)
            lines.append(f"  {arm}: {getattr(row, col.DELIVERED):,}/{getattr(row, col.SENT):,} delivered "
                         f"= {getattr(row, col.RATE):.1%} ({level} CI {getattr(row, col.CI_LOW):.1%}–"
                         f"{getattr(row, col.CI_HIGH):.1%}), {getattr(row, col.PENDING):,} still pending")
        described = {"delivery_rate": "delivery rate", "latency": "median request→delivery time (s)",
                     "delivered_within": f"share delivered within {self.within_s:g} s"}
        for row in self.comparisons.itertuples(index=False):
            what = described.get(row.metric, row.metric)
            percent = row.metric != "latency"
            fmt = (lambda v: f"{v:+.1%}") if percent else (lambda v: f"{v:+.0f}")
            value = (lambda v: f"{v:.1%}") if percent else (lambda v: f"{v:.0f}")
            verdict = "a real difference" if row.significant else "no difference shown"
            lines.append(f"  {row.arm} vs {self.control}, {what}: {value(row.arm_estimate)} vs "
                         f"{value(row.control_estimate)}, difference {fmt(row.diff)} "
                         f"({level} CI {fmt(row.ci_low)} to {fmt(row.ci_high)}, unadjusted; "
                         f"p = {row.p_adjusted:.3g}, Holm-adjusted) — {verdict}.")
        for row in self.eligibility.itertuples(index=False):
            if row.ddm_requested:
                rest = "; the others' handsets were already cached" if row.ddm_sent < row.sends else ""
                lines.append(f"  {row.arm}: {row.ddm_sent:,} of {row.sends:,} sends got a DDM "
                             f"({row.eligible_share:.0%}){rest}. Comparisons are intention-to-treat "
                             "(all sends as assigned).")
        needed, smallest, control_rate = self.sample_verdict()
        enough = "large enough" if smallest >= needed else "too small"
        lines.append(f"  Sample: the smallest arm has {smallest:,} sends; detecting a {self.min_effect:.0%}-point "
                     f"change from the control's {control_rate:.0%} with 80% power needs {needed:,} per arm, "
                     f"so the sample is {enough}.")
        return "\n".join(lines)

    def print_summary(self) -> None:
        """Print :meth:`summary` and the comparison table."""
        print(self.summary())
        print()
        print(self.comparisons.to_string(index=False))

    def __repr__(self) -> str:
        return f"<ExperimentResult: {len(self.deliveries)} sends, arms {list(self.design.arms)}>"

    def _repr_html_(self) -> str:
        from html import escape

        text = "".join(f"<li>{escape(line.strip())}</li>" for line in self.summary().splitlines()[1:])
        return (f"<div><p>{escape(self.summary().splitlines()[0])}</p><ul>{text}</ul>"
                f"{self.comparisons.to_html(index=False, float_format=lambda v: f'{v:.4g}')}</div>")

    def plot(self, axes=None):
        """Delivery rate by arm and request→delivery time curves, side by side.

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
        plot_latency(self.deliveries, hue=col.ARM, kind="km", column=col.TOTAL_LATENCY_S, ax=axes[1])
        return np.asarray(axes)
