"""`/`: the dashboard page. Its script and D3 are static files served from the package (no CDN)."""

from __future__ import annotations

from flask import Blueprint, Response, render_template

from telemetry.series import ENERGY_DAY_PREFIX, FORMULA_PREFIX, OUTLET_PREFIX
from web import state

bp = Blueprint("dashboard", __name__, template_folder="templates")


@bp.get("/")
def index() -> Response:
    cfg = state().config
    html = render_template("index.html", prefix=cfg.url_prefix, default_series=cfg.blip_default or "",
                           price_per_kwh=cfg.price_per_kwh, currency=cfg.currency, outlet_prefix=OUTLET_PREFIX,
                           formula_prefix=FORMULA_PREFIX, energy_day_prefix=ENERGY_DAY_PREFIX,
                           alert_history=state().alert_history is not None)
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'"
    )
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "same-origin"
    return resp
