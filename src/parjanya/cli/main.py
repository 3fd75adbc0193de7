"""`parjanya ...`: every sub-command is registered here, each implemented in its own module."""

from __future__ import annotations

import typer

from parjanya.cli import (
    alive,
    api,
    breakers,
    confidence,
    costs,
    dlq,
    evaluate,
    flower,
    keys,
    outcomes,
    sim,
    tasks,
    train,
    up,
    webhooks,
    worker,
)

app = typer.Typer(
    help="Parjanya: complexity-aware routing of AI-agent tasks over Celery tier pools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("up")(up.up)
app.command("api")(api.api)
app.command("worker")(worker.worker)
app.command("alive")(alive.alive)
app.command("flower", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
    flower.flower
)
app.command("submit")(tasks.submit)
app.command("status")(tasks.status)
app.command("classify")(tasks.classify_text)
app.command("sim")(sim.sim)
app.command("breakers")(breakers.breakers)
app.command("costs")(costs.costs)
app.command("eval")(evaluate.evaluate_command)
app.command("train")(train.train)
app.command("confidence")(confidence.confidence)
app.command("webhooks")(webhooks.webhooks)
app.add_typer(dlq.app, name="dlq", help="Inspect, replay and purge dead letters.")
app.add_typer(keys.app, name="keys", help="API keys and the tenants they act for.")
app.add_typer(outcomes.app, name="outcomes", help="Export routing outcomes to train scorers on.")

if __name__ == "__main__":
    app()
