"""What the site shows of quantity claims: each one's period as years, its peers (the claims
its chart sets it beside) and the chart. A mixin of kb.pages.SiteModel."""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import defaultdict
from functools import cached_property
from typing import TYPE_CHECKING

from kb.charts import Point, period_span, quantity_chart

if TYPE_CHECKING:
    from kb import model as m

PEERS = 24  # claims in a quantity chart, at most
SHOWN = 200  # claims of a unit on the figures' page (templates/quantities.html), at most


class QuantityViews:
    """The quantity charts' part of the site model; kept apart as one idea of its own."""

    kb: m.KnowledgeBase
    claim_ids: list[str]
    _peers: dict[str, list[str]]
    _peers_known: bool

    if TYPE_CHECKING:
        def status(self, claim_id: str) -> str: ...

    @cached_property
    def spans_of(self) -> dict[str, tuple[float, float]]:
        """Each quantity claim's period in fractional years, parsed once."""
        out = {}
        for cid in self.claim_ids:
            c = self.kb.claims[cid]
            span = period_span(c.period) if c.quantity else None
            if span is not None:
                out[cid] = span
        return out

    @cached_property
    def quantity_groups(self) -> dict[str, list[str]]:
        """Quantity claims with a period, by unit."""
        groups: dict[str, list[str]] = defaultdict(list)
        for cid in self.spans_of:
            c = self.kb.claims[cid]
            if c.quantity and c.quantity.unit:
                groups[c.quantity.unit].append(cid)
        return dict(sorted(groups.items()))

    @cached_property
    def _quantity_topics(self) -> dict[tuple[str, str], list[str]]:
        """(unit, "tag:x" or "about:y") → quantity claims: peers without comparing all pairs."""
        topics: dict[tuple[str, str], list[str]] = defaultdict(list)
        for unit, ids in self.quantity_groups.items():
            for cid in ids:
                c = self.kb.claims[cid]
                for key in sorted({*(f"tag:{t}" for t in c.tags),
                                   *(f"about:{r.id}" for r in c.about)}):
                    topics[(unit, key)].append(cid)
        return topics

    def quantity_chart(self, ids: list[str], unit: str, chart_id: str, root: str,
                       current: str = "") -> str:
        points = []
        for cid in ids:
            c = self.kb.claims[cid]
            span = self.spans_of.get(cid)
            if c.quantity is None or span is None:
                continue
            points.append(Point(cid, c.claim, self.status(cid), c.quantity.value, span[0],
                                span[1], f"{root}claims/{cid}/", cid == current))
        return quantity_chart(points, unit, chart_id)

    @cached_property
    def _mids(self) -> dict[str, float]:
        return {cid: (a + b) / 2 for cid, (a, b) in self.spans_of.items()}

    def quantity_peers(self, claim_id: str) -> list[str]:
        """Quantity claims sharing this one's unit and a tag or an entity (itself included)."""
        hit = self._peers.get(claim_id)
        if hit is None:
            if self._peers_known:  # from the memo, which holds every claim's non-empty peers
                return []
            hit = self._peers[claim_id] = self._quantity_peers(claim_id)
        return hit

    @cached_property
    def _topic_order(self) -> dict[tuple[str, str], tuple[list[float], list[str], list[float],
                                                           list[str]]]:
        """Each topic's claims by (mid, id) and by (-mid, id): walked right and left of a
        claim's mid, each gives its claims nearest first, ties to the smaller id."""
        mids = self._mids
        out = {}
        for key, ids in self._quantity_topics.items():
            right = sorted(set(ids), key=lambda p: (mids[p], p))
            left = sorted(set(ids), key=lambda p: (-mids[p], p))
            out[key] = ([mids[p] for p in right], right, [-mids[p] for p in left], left)
        return out

    def _quantity_peers(self, claim_id: str) -> list[str]:
        c = self.kb.claims[claim_id]
        mine = self.spans_of.get(claim_id)
        if not c.quantity or mine is None:
            return []
        # The PEERS nearest in time (ties: the smaller id) of the union of the claim's topics,
        # merged from each topic's sorted claims: not a ranking of the whole union per claim.
        mid = sum(mine) / 2
        heap: list[tuple[float, str, int, list[float], list[str], int]] = [
            (0.0, claim_id, 0, [], [], 0)]
        for key in {*(f"tag:{t}" for t in c.tags), *(f"about:{r.id}" for r in c.about)}:
            topic = self._topic_order.get((c.quantity.unit, key))
            if topic is None:
                continue
            rmids, right, lmids, left = topic
            i = bisect_left(rmids, mid)
            if i < len(right):
                heap.append((rmids[i] - mid, right[i], i, rmids, right, 1))
            j = bisect_left(lmids, -mid)
            while j < len(left) and lmids[j] == -mid:  # the right side has those
                j += 1
            if j < len(left):
                heap.append((mid + lmids[j], left[j], j, lmids, left, -1))
        heapq.heapify(heap)
        peers: set[str] = set()
        while heap and len(peers) < PEERS:
            _, p, i, ms, ids, side = heapq.heappop(heap)
            peers.add(p)
            if side and i + 1 < len(ids):
                d = ms[i + 1] - mid if side == 1 else mid + ms[i + 1]
                heapq.heappush(heap, (d, ids[i + 1], i + 1, ms, ids, side))
        return sorted(peers) if len(peers) > 1 else []
