"""The teams' model endpoints: the OpenAI-compatible client and its measurements
(``upstream``), the registry of team clients with health checks and demos (``teams``), and
the project's own mock team server (``mock``). Never imported by the core."""
