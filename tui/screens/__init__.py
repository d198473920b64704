"""The console's sections, one screen a module; tui/app.py lists them in key order."""
