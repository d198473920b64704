"""The running show in memory: the engine (log + state + commands), the fan-out hub that
delivers each view's messages, and the volatile live telemetry. Depends on core and log."""
