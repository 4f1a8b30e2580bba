"""The report's latency: the share-delivered figure (failures competing) and unreached quantiles in words."""

from __future__ import annotations

import lxml.html
import numpy as np
import pandas as pd

from skycore_lab import columns as col
from skycore_lab.report import export_report
from skycore_lab.report.content import DEFINITIONS
from skycore_lab.report.htmlpage import column_label


def _frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    t0 = pd.Timestamp("2024-05-01 12:00", tz="UTC")
    requested = t0 + pd.to_timedelta(rng.uniform(0, 600, n), unit="s")
    arm = np.where(np.arange(n) < n // 2, "control", "slow")
    # "slow" delivers a fifth of its sends: its median time to delivery is never reached
    delivered = np.where(arm == "control", rng.random(n) < 0.9, rng.random(n) < 0.2)
    latency = rng.lognormal(np.log(30), 0.5, n)
    return pd.DataFrame({
        col.ARM: pd.Categorical(arm, categories=["control", "slow"]),
        col.CARRIER: "AT&T",
        col.OUTCOME: np.where(delivered, "delivered", "pending"),
        col.REQUESTED_AT: requested,
        col.SENT_AT: requested,
        col.DELIVERED_AT: requested + pd.to_timedelta(np.where(delivered, latency, np.nan), unit="s"),
        col.LATENCY_S: np.where(delivered, latency, np.nan),
        col.TOTAL_LATENCY_S: np.where(delivered, latency, np.nan),
    })  # fmt: skip


def test_figure_is_the_share_delivered_and_unreached_medians_say_so(tmp_path):
    text = export_report(_frame(), tmp_path / "r.html", by=(col.CARRIER, col.ARM)).read_text(encoding="utf-8")
    tree = lxml.html.fromstring(text)
    captions = [c.text_content() for c in tree.xpath("//figcaption")]
    assert any(c.startswith("Share of sends delivered by time t (failures competing") for c in captions)
    latency = tree.xpath('//h3[@id="latency"]/following-sibling::div[@class="table-scroll"][1]/table')[0]
    header = [th.text_content() for th in latency.xpath(".//thead//th")]
    rows = [[td.text_content() for td in tr.xpath("td")] for tr in latency.xpath(".//tbody/tr")]
    slow = [row for row in rows if "slow" in row]
    assert slow and slow[0][header.index(column_label(col.KM_P50))] == "not reached"
    assert slow[0][header.index("KM median 95 % CI (s)")].endswith("– ∞")  # the band never reaches it either
    assert "Aalen–Johansen" in DEFINITIONS["share delivered by time t"]
    assert "failures excluded" in DEFINITIONS["km_p50, km_p90"]
