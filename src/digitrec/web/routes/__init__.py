"""The HTTP routes, one router per concern; web/app.py includes them all."""

from __future__ import annotations

from digitrec.web.routes import admin, feedback, health, insight, predict

ROUTERS = (predict.router, health.router, health.page_router, insight.router, feedback.router, admin.router)
