from django.apps import AppConfig


class DecisionsConfig(AppConfig):
    name = "rapport.decisions"
    label = "decisions"
    verbose_name = "Decisions: next best action, adaptive propensities, arbitration"
