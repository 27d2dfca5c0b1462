"""``python -m kms_actors`` is the ``kms-actors`` command."""

from kms_actors.cli import main

main()
