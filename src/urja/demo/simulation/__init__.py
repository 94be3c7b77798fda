"""`urja simulate`: months of a utility's life through the public services, checked by invariants.

    from urja.demo.simulation import simulate
    report = simulate(months=3, consumers=300, seed=1, faults=True)
    report.ok, report.violations, report.as_dict()

See docs/simulation.md."""

from .driver import SimulationReport, simulate
from .invariants import CHECKS, Checker, Violation

__all__ = ["CHECKS", "Checker", "SimulationReport", "Violation", "simulate"]
