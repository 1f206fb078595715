"""Formulas: series derived from the stored ones (`[formulas] enabled = [...]`). Importing registers the built-ins."""

from hub.formulas import energy, load_model, machine_power, reconcile, rollup
from hub.formulas.base import FORMULAS, Formula, register
from hub.formulas.runner import FormulaRunner

__all__ = ["FORMULAS", "Formula", "FormulaRunner", "energy", "load_model", "machine_power", "reconcile", "register",
           "rollup"]
