"""Pure projections: (a deal's ordered events, rules, evaluation time) -> model."""
