"""The command layer: each `python -m nas <command>` as a plain function of the composed
Hydra config (`commands`), and where that config lives (`config_dir`).

The top of the house: it may import every other subpackage; nothing imports it except
`nas/__main__.py`, which parses the command line and hands over.
"""
