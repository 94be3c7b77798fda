"""Energy accounting arithmetic (issue 14.2). Pure: no database.

The database work (services.compute_period) reduces a month's bills and payments to *atoms*: sums per
(DT, feeder, section, category). `rollup` builds every node's balance from the atoms, the measured
boundary inputs and the network: DT → feeder → section → sub-division → division → circle → utility.
Billed energy and money add up the tree exactly (a property test checks it); input energy is the
boundary meter where there is one and the sum of the nodes below otherwise.

    billing efficiency  BE  = billed energy / input energy
    collection eff.     CE  = collected / billed amount
    AT&C loss               = 1 - BE x CE
Each is None when its denominator is zero or the input is missing: a dashboard never divides by zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)
RATIO = Decimal("0.000001")
FACTS = ("metered_kwh", "estimated_kwh", "assessed_kwh", "prepaid_kwh", "billed_amount", "collected_amount")


@dataclass(frozen=True)
class Atom:
    """The month's sums of one (DT, feeder, section, category)."""

    transformer_id: int | None
    feeder_id: int | None
    section_id: int
    category: str
    metered_kwh: Decimal = ZERO
    estimated_kwh: Decimal = ZERO
    assessed_kwh: Decimal = ZERO
    prepaid_kwh: Decimal = ZERO
    billed_amount: Decimal = ZERO
    collected_amount: Decimal = ZERO
    accounts: int = 0


@dataclass
class Sums:
    metered_kwh: Decimal = ZERO
    estimated_kwh: Decimal = ZERO
    assessed_kwh: Decimal = ZERO
    prepaid_kwh: Decimal = ZERO
    billed_amount: Decimal = ZERO
    collected_amount: Decimal = ZERO
    accounts: int = 0

    def add(self, other) -> None:
        for f in FACTS:
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.accounts += other.accounts

    @property
    def billed_kwh(self) -> Decimal:
        return self.metered_kwh + self.estimated_kwh + self.assessed_kwh + self.prepaid_kwh


@dataclass(frozen=True)
class Input:
    """A node's input energy for the month: kwh None when missing; status measured | estimated |
    sum_of_parts | missing; flags [{code, message}]."""

    kwh: Decimal | None
    status: str
    flags: tuple[dict, ...] = ()


@dataclass
class Node:
    level: str
    node_id: int
    parent: tuple[str, int] | None
    total: Sums = field(default_factory=Sums)
    by_category: dict[str, Sums] = field(default_factory=lambda: defaultdict(Sums))
    input: Input = Input(None, "missing")


@dataclass(frozen=True)
class Network:
    """dt_feeder {dt: feeder}; feeder_office {feeder: office}; office_parent {office: parent or None};
    office_level {office: level}."""

    dt_feeder: Mapping[int, int]
    feeder_office: Mapping[int, int]
    office_parent: Mapping[int, int | None]
    office_level: Mapping[int, str]

    def office_chain(self, office_id: int) -> list[int]:
        chain, seen = [], set()
        current: int | None = office_id
        while current is not None and current not in seen:
            seen.add(current)
            chain.append(current)
            current = self.office_parent.get(current)
        return chain


def ratios(billed_kwh: Decimal, input_kwh: Decimal | None, billed_amount: Decimal, collected: Decimal):
    """(BE, CE, AT&C loss), each None where undefined (no input, nothing billed)."""
    be = (billed_kwh / input_kwh).quantize(RATIO) if input_kwh else None
    ce = (collected / billed_amount).quantize(RATIO) if billed_amount else None
    loss = (1 - be * ce).quantize(RATIO) if be is not None and ce is not None else None
    return be, ce, loss


def _add(node: Node, atom) -> None:
    node.total.add(atom)
    node.by_category[atom.category].add(atom)


def rollup(
    atoms: Iterable[Atom],
    network: Network,
    dt_inputs: Mapping[int, Input],
    feeder_inputs: Mapping[int, Input],
) -> dict[tuple[str, int], Node]:
    """Every node's month: {(level, id): Node}. dt_inputs / feeder_inputs: measured or estimated
    inputs of the nodes with a boundary meter (others absent). Every DT and feeder of the network
    gets a node, billed or not; offices get one when a feeder or an account is under them."""
    nodes: dict[tuple[str, int], Node] = {}

    def office_node(office_id: int) -> Node:
        key = (network.office_level.get(office_id, "section"), office_id)
        if key not in nodes:
            parent = network.office_parent.get(office_id)
            nodes[key] = Node(
                key[0], office_id, (network.office_level.get(parent, "section"), parent) if parent else None
            )
        return nodes[key]

    for feeder_id, office_id in network.feeder_office.items():
        nodes[("feeder", feeder_id)] = Node(
            "feeder", feeder_id, (network.office_level.get(office_id, "section"), office_id)
        )
        for oid in network.office_chain(office_id):
            office_node(oid)
    for dt_id, feeder_id in network.dt_feeder.items():
        nodes[("dt", dt_id)] = Node("dt", dt_id, ("feeder", feeder_id))

    for atom in atoms:
        if atom.transformer_id is not None and ("dt", atom.transformer_id) in nodes:
            _add(nodes[("dt", atom.transformer_id)], atom)
        feeder_id = atom.feeder_id
        if feeder_id is None and atom.transformer_id is not None:
            feeder_id = network.dt_feeder.get(atom.transformer_id)
        if feeder_id is not None and ("feeder", feeder_id) in nodes:
            _add(nodes[("feeder", feeder_id)], atom)
        # money and billed energy go up the account's office chain (its section's ancestors)
        for oid in network.office_chain(atom.section_id):
            _add(office_node(oid), atom)

    # input energy: DTs measured/estimated or missing; feeders measured, else the sum of their DTs
    dts_of: dict[int, list[int]] = defaultdict(list)
    for dt_id, feeder_id in network.dt_feeder.items():
        dts_of[feeder_id].append(dt_id)
        nodes[("dt", dt_id)].input = dt_inputs.get(
            dt_id, Input(None, "missing", ({"code": "no_input_reading", "message": "no DT meter reading"},))
        )
    for feeder_id in network.feeder_office:
        node = nodes[("feeder", feeder_id)]
        if feeder_id in feeder_inputs:
            node.input = feeder_inputs[feeder_id]
        else:
            node.input = _sum_of([nodes[("dt", d)].input for d in sorted(dts_of.get(feeder_id, []))], "feeder")
    # offices: the sum of the feeders whose office is in their subtree
    feeders_under: dict[int, list[Input]] = defaultdict(list)
    for feeder_id, office_id in network.feeder_office.items():
        for oid in network.office_chain(office_id):
            feeders_under[oid].append(nodes[("feeder", feeder_id)].input)
    for (level, node_id), node in nodes.items():
        if level not in ("dt", "feeder"):
            node.input = _sum_of(feeders_under.get(node_id, []), "office")
    return nodes


def _sum_of(parts: list[Input], what: str) -> Input:
    if not parts:
        return Input(None, "missing", ({"code": "no_input_reading", "message": f"no metered {what} below"},))
    if any(p.kwh is None for p in parts):
        missing = sum(1 for p in parts if p.kwh is None)
        return Input(
            None,
            "missing",
            ({"code": "incomplete_input", "message": f"{missing} of {len(parts)} nodes below have no input"},),
        )
    total = sum((p.kwh for p in parts), ZERO)
    estimated = sum(
        1 for p in parts if p.status in ("estimated",) or any(f["code"] == "estimated_previous" for f in p.flags)
    )
    flags = (
        ({"code": "includes_estimates", "message": f"{estimated} of {len(parts)} inputs below are estimated"},)
        if estimated
        else ()
    )
    return Input(total, "sum_of_parts", flags)
