import click


@click.group()
def sim() -> None:
    """Simulated classes."""
