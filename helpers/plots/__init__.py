"""Figures shared by notebooks (each module names the notebook that shows it)."""
