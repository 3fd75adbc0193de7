"""Routing quality: outcome data, metrics, learned scorers and the fitted heuristic.

Offline code (`parjanya eval`, `parjanya train`) and the scorer a classifier loads live here; the
classifier itself stays in `classify/` and imports only the scorer it is given.
"""
