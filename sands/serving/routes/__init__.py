"""The service's routes, one module per concern, and what they share (`common`). Handlers have
no docstrings: FastAPI would publish them in /openapi.json."""
