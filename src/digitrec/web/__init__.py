"""The web service: `create_app()` (FastAPI app factory) and `serve()`; see app.py."""
