"""Placeholder."""


def main(argv: list[str] | None = None) -> None:
    pass
