"""`recsec list {models,attacks,defenses,datasets,families}`: what the registries hold."""

from __future__ import annotations

import dataclasses

import typer

app = typer.Typer(no_args_is_help=True)


def _fields(config_cls) -> str:
    parts = []
    for f in dataclasses.fields(config_cls):
        default = f.default if f.default is not dataclasses.MISSING else "?"
        parts.append(f"{f.name}={default}")
    return ", ".join(parts) or "-"


@app.command("models")
def list_models():
    """Recommenders usable as targets and clones, with their parameters and defaults."""
    from recsec import models
    for name in models.model_names():
        typer.echo(f"{name:12s} {_fields(models.model_class(name).Config)}")


@app.command("attacks")
def list_attacks():
    """Attacks by family, with their parameters and defaults."""
    from recsec import attacks
    for name in attacks.attack_names():
        cls = attacks.attack_class(name)
        typer.echo(f"{name:12s} [{cls.family}] {_fields(cls.Config)}")


@app.command("defenses")
def list_defenses():
    """Defenses by kind, with their parameters and defaults."""
    from recsec import defenses
    for name in defenses.defense_names():
        cls = defenses.defense_class(name)
        typer.echo(f"{name:12s} [{cls.kind}] {_fields(cls.Config)}")


@app.command("families")
def list_families():
    """Attack families and their threat models: the axes a grid may sweep for their attacks (what
    each takes, its default) and their grid sections."""
    from recsec.harness.families import family_names, get_family
    from recsec.harness.plugins import load_plugins
    from recsec.harness.threat_model import describe, shown_default

    load_plugins()
    for name in family_names():
        threat = get_family(name).threat_model
        typer.echo(name)
        for axis, info in threat.axes().items():
            meaning = f"  {info.description}" if info.description else ""
            typer.echo(f"  {axis:15s} {describe(info)}, default {shown_default(info)}{meaning}")
        for section, model in threat.section_models().items():
            typer.echo(f"  {section + ':':15s} a section: {', '.join(model.model_fields)}")


@app.command("datasets")
def list_datasets():
    """Dataset loaders (see `recsec data list` for which are present in the data directory)."""
    from recsec.harness.data import dataset_names, get_dataset

    for name in dataset_names():
        typer.echo(f"{name:15s} {get_dataset(name).description}")
