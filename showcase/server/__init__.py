"""The web edge: the Starlette app and its endpoints, the command path, the event streams
(SSE and WebSocket), tokens and roles, and the proxy to the teams. The only layer that
speaks HTTP to clients; it maps the core's errors to statuses."""
