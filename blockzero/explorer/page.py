"""The explorer page: one self-contained HTML document rendered from an `ExplorerSnapshot`.

Everything on it (hotkeys, reasons, repo ids, domain names) may come from a hostile peer, so
every value goes through `html.escape` on its way in; there is no script, and the only links
are the public explorers' pages built by the bittensor SDK. Tables and cells carry `id`s and
`data-*` attributes with the exact values, for tests and for anyone scraping the page.
"""

import math
from html import escape

from blockzero.explorer.chart import Series, line_chart
from blockzero.explorer.evidence import CycleSummary
from blockzero.explorer.snapshot import ExplorerSnapshot, NeuronRow
from blockzero.protocol.expert_groups import ExpertGroupRegistry

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#111827;background:#f9fafb}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px}
.meta{color:#4b5563} .meta span{margin-right:18px} .note{color:#92400e}
table{border-collapse:collapse;background:#fff;font-variant-numeric:tabular-nums}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:right}
th{background:#f3f4f6;text-align:center} td.text,th.text{text-align:left}
.hk{font-family:ui-monospace,monospace;font-size:12px}
.scroll{overflow-x:auto;max-width:100%} .pass{color:#15803d} .fail{color:#b91c1c}
.chart .plot{fill:#fff;stroke:#d1d5db} .chart .grid{stroke:#eef0f3}
.chart text{font-size:11px;fill:#374151} details{margin:6px 0} summary{cursor:pointer}
"""


def render_page(snap: ExplorerSnapshot) -> str:
    title = f"BlockZero netuid {snap.netuid} on {snap.network}"
    return "".join(
        [
            '<!doctype html><html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            _header(snap),
            "<h2>Metagraph</h2>",
            _metagraph(snap),
            "<h2>Weights (validators &times; miners)</h2>",
            _weights(snap),
            "<h2>Global held-out loss</h2>",
            _loss_chart(snap.evidence),
            "<h2>Proof-of-Loss evidence</h2>",
            _evidence(snap.evidence),
            "<h2>Expert groups</h2>",
            _groups(snap.registry, snap.neurons),
            "</body></html>",
        ]
    )


def _header(snap: ExplorerSnapshot) -> str:
    facts = [f"block {snap.block}", f"cycle {snap.cycle}", f"phase {snap.phase}"]
    parts = ['<p class="meta">', *(f"<span>{escape(f)}</span>" for f in facts)]
    parts += [
        f'<span><a href="{escape(link.url)}" rel="noopener">{escape(link.label)}</a></span>'
        for link in snap.links
    ]
    parts.append("</p>")
    if snap.model is not None:
        m = snap.model
        registry = {True: "matches", False: "DIFFERS from", None: "unchecked against"}
        parts.append(
            f'<p class="meta" id="model">global model of cycle {m.cycle}: '
            f'<span class="hk">{escape(m.repo_id)}@{escape(m.revision[:10])}</span> '
            f'published by <span class="hk">{escape(m.publisher)}</span> at block {m.block}; '
            f"registry {registry[m.registry_matches]} the one shown below</p>"
        )
    parts += [f'<p class="note">{escape(n)}</p>' for n in snap.notes]
    return "".join(parts)


def _metagraph(snap: ExplorerSnapshot) -> str:
    names = {g.id: g.name for g in snap.registry.groups} if snap.registry else {}
    heads = ["uid", "hotkey", "role", "stake", "incentive", "permit", "group", "last update"]
    rows = []
    for n in snap.neurons:
        hotkey = escape(n.hotkey)
        if n.url is not None:
            hotkey = f'<a href="{escape(n.url)}" rel="noopener">{hotkey}</a>'
        group = "" if n.group is None else escape(f"{n.group} {names.get(n.group, '')}")
        rows.append(
            f'<tr data-uid="{n.uid}" data-hotkey="{escape(n.hotkey)}" data-stake="{n.stake!r}" '
            f'data-incentive="{n.incentive!r}" data-group="{"" if n.group is None else n.group}">'
            f"<td>{n.uid}</td><td class='text hk'>{hotkey}</td>"
            f"<td class='text'>{'miner' if n.is_miner else 'validator'}</td>"
            f"<td>{n.stake:,.4f}</td><td>{n.incentive:.4f}</td>"
            f"<td class='text'>{'yes' if n.validator_permit else ''}</td>"
            f"<td class='text'>{group}</td><td>{n.last_update}</td></tr>"
        )
    return _table("metagraph", heads, rows)


def _weights(snap: ExplorerSnapshot) -> str:
    if not snap.weights:
        return "<p>No validator has set weights.</p>"
    hotkeys = {n.uid: n.hotkey for n in snap.neurons}
    miners = snap.miner_uids
    heads = ["validator", *(f"uid {m}" for m in miners)]
    rows = []
    for v in snap.validator_uids:
        row = snap.weights[v]
        cells = [
            f'<td class="text" title="{escape(hotkeys.get(v, ""))}">uid {v} '
            f'<span class="hk">{escape(_short(hotkeys.get(v, "")))}</span></td>'
        ]
        for m in miners:
            w = row.get(m, 0.0)
            cells.append(
                f'<td data-miner="{m}" data-weight="{w!r}" '
                f'style="background:rgba(37,99,235,{min(w, 1.0) * 0.6:.3f})">{w:.4f}</td>'
            )
        rows.append(f'<tr data-validator="{v}">{"".join(cells)}</tr>')
    incentive = {n.uid: n.incentive for n in snap.neurons}
    rows.append(
        '<tr class="incentive"><th class="text">incentive</th>'
        + "".join(f"<th>{incentive.get(m, 0.0):.4f}</th>" for m in miners)
        + "</tr>"
    )
    return _table("weights", heads, rows)


def _loss_chart(evidence: list[CycleSummary]) -> str:
    series: Series = {}
    for cycle in evidence:
        for domain, loss in cycle.global_losses.items():
            if math.isfinite(loss):
                series.setdefault(domain, []).append((cycle.cycle, loss))
    if not series:
        return '<p id="loss-chart">No evidence published yet: no loss to plot.</p>'
    chart = line_chart(series, x_label="cycle", y_label="held-out loss (nats)")
    caption = (
        "Mean held-out loss of the global model each cycle starts from, per domain "
        "(each cycle draws fresh samples); general: the other domains' data."
    )
    return f'<div id="loss-chart"><p class="meta">{caption}</p>{chart}</div>'


def _evidence(evidence: list[CycleSummary]) -> str:
    if not evidence:
        return '<p id="evidence">No Proof-of-Loss evidence found on the hub.</p>'
    heads = [
        "uid",
        "hotkey",
        "group",
        "verdict",
        "reason",
        "loss before",
        "loss after",
        "gain",
        "score",
    ]
    blocks = []
    for i, cycle in enumerate(reversed(evidence)):
        rows = []
        for s in cycle.submissions:
            verdict = (
                '<span class="pass">pass</span>' if s.passed else '<span class="fail">fail</span>'
            )
            rows.append(
                f'<tr data-hotkey="{escape(s.hotkey)}" data-passed="{str(s.passed).lower()}">'
                f"<td>{'' if s.uid is None else s.uid}</td>"
                f"<td class='text hk'>{escape(_short(s.hotkey))}</td>"
                f"<td>{'' if s.group is None else s.group}</td><td class='text'>{verdict}</td>"
                f"<td class='text' title=\"{escape(s.detail)}\">{escape(s.reason or '')}</td>"
                f"<td>{_num(s.loss_before)}</td><td>{_num(s.loss_after)}</td>"
                f"<td>{_num(s.improvement)}</td><td>{_num(s.score)}</td></tr>"
            )
        passed = sum(s.passed for s in cycle.submissions)
        merged = ", ".join(map(str, cycle.merged_groups)) or "none"
        summary = escape(
            f"cycle {cycle.cycle}: {passed} of {len(cycle.submissions)} passed, groups merged: "
            f"{merged}; scored by {_short(cycle.validator)} on {cycle.base_revision[:10]}"
        )
        blocks.append(
            f"<details{' open' if i == 0 else ''}><summary>{summary}</summary>"
            f"{_table(f'evidence-{cycle.cycle}', heads, rows)}</details>"
        )
    return f'<div id="evidence">{"".join(blocks)}</div>'


def _groups(registry: ExpertGroupRegistry | None, neurons: list[NeuronRow]) -> str:
    if registry is None:
        return '<p id="groups">No expert-group registry.</p>'
    heads = ["id", "name", "domain", "experts per MoE layer", "miners this cycle"]
    rows = []
    for g in registry.groups:
        experts = "; ".join(
            f"L{layer}: {', '.join(map(str, ex))}" for layer, ex in sorted(g.experts.items())
        )
        num_miners = sum(n.group == g.id for n in neurons)
        rows.append(
            f'<tr data-group="{g.id}"><td>{g.id}</td><td class="text">{escape(g.name)}</td>'
            f'<td class="text">{escape(g.domain)}</td><td class="text">{escape(experts)}</td>'
            f"<td>{num_miners}</td></tr>"
        )
    caption = (
        f"{len(registry.groups)} groups of {registry.num_experts} experts, top-{registry.top_k}"
    )
    return f"<p class='meta'>{caption}</p>{_table('groups', heads, rows)}"


def _table(table_id: str, heads: list[str], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in heads)
    return (
        f'<div class="scroll"><table id="{escape(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _short(hotkey: str) -> str:
    return hotkey if len(hotkey) <= 12 else f"{hotkey[:6]}…{hotkey[-4:]}"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
